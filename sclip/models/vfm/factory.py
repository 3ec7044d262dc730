"""``build_vfm``: one call from a type name and a checkpoint to a frozen VFM.

Why: ProxyCLIP's config names its VFM (``model.vfm.type``) and, offline, its weights
(``model.vfm.checkpoint``); everything else (architecture, layout, download) follows from
the name. The checkpoint is read and checked before the model is built, so a wrong file
fails in a second even for ViT-H.
"""
from __future__ import annotations

from typing import Optional

from .base import VFM
from .checkpoint import check_fits, load_into, official_state_dict, read_checkpoint, resolve_checkpoint
from .sam import SAMVFM
from .specs import get_spec
from .vit import ViTVFM


def official_name(module_key: str) -> str:
    """Our parameter name -> the checkpoint's (timm's ViT is ``vit.``, SAM's encoder ``encoder.``)."""
    prefix, _, rest = module_key.partition('.')
    return rest if prefix in ('vit', 'encoder') else module_key


def build_vfm(type: str, checkpoint: Optional[str] = None, download: bool = True, *, fused: bool = False,
              tiny: bool = False, config_overrides: Optional[dict] = None,
              cache_dir: Optional[str] = None) -> VFM:
    """A frozen, eval-mode VFM of ``type`` with official weights.

    Args:
        type: one of ``specs.SPECS`` (``dino_vitb8``, ``dinov2_vitb14_reg``, ``sam_vit_b``,
            ``mae_vit_b16``, ...).
        checkpoint: a local file in the official layout; ``None`` downloads the official
            file into ``$SCLIP_CACHE_DIR/vfm`` (default ``~/.cache/sclip/vfm``) once.
        download: with ``checkpoint=None`` and ``download=False`` the weights stay random
            (tests, benchmarks).
        fused: fused SDPA attention instead of the official explicit arithmetic.
        tiny: two blocks of width 64 (tests); ``config_overrides`` replaces spec fields.
        cache_dir: where downloads go (default as above).
    """
    spec = get_spec(type, tiny=tiny, config_overrides=config_overrides)
    path = resolve_checkpoint(spec, checkpoint, download, cache_dir)
    state = None
    if path is not None:
        state = official_state_dict(read_checkpoint(path, spec), spec, path)
        check_fits(state, spec, path)
    model = SAMVFM(spec, fused) if spec.family == 'sam' else ViTVFM(spec, fused)
    if state is not None:
        load_into(model, state, spec, path, official_name)
    model.eval()
    model.requires_grad_(False)
    return model
