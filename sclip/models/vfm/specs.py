"""The architecture and official weights of every vision foundation model (VFM) we build.

Why: each ``model.vfm.type`` name stands for one official model (a torch.hub entry point or
a released checkpoint). Its spec holds everything needed to build it, to check that a
checkpoint fits it, to name the model a wrong checkpoint belongs to, and to download the
official file. The numbers are copied from the official builders (DINO's and DINOv2's
hubconf, segment_anything's ``build_sam``, MAE's ``models_vit``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ...errors import SCLIPError

DINO_URL = 'https://dl.fbaipublicfiles.com/dino'
DINOV2_URL = 'https://dl.fbaipublicfiles.com/dinov2'
SAM_URL = 'https://dl.fbaipublicfiles.com/segment_anything'
MAE_URL = 'https://dl.fbaipublicfiles.com/mae/pretrain'


@dataclass(frozen=True)
class VFMSpec:
    """One VFM: family ('dino', 'dinov2', 'sam', 'mae'), transformer shape and official file.

    ``image_size`` is the pre-training resolution the positional embedding was learned at
    (its grid is ``image_size // patch_size`` squared). DINOv2 fields: ``registers`` (extra
    tokens after CLS), ``layer_scale`` (``ls1``/``ls2`` gammas) and the positional-embedding
    interpolation its hub entry point sets (``pos_offset``: 0 means resize to a size, else a
    scale factor ``(n + offset) / M``; ``pos_antialias``). SAM fields: windowed attention
    ``window_size``, the blocks with global attention, the neck's ``out_chans``, and the prompt
    encoder's and mask decoder's shapes (``build_sam``'s ``mask_in_chans=16``,
    ``TwoWayTransformer(depth=2, mlp_dim=2048, num_heads=8)``, ``iou_head_depth=3``,
    ``iou_head_hidden_dim=256``; only read by Trident's SAM refinement).
    """
    name: str
    family: str
    patch_size: int
    width: int
    depth: int
    heads: int
    image_size: int
    url: str
    hub: str                      # the official entry point, for messages and docs
    registers: int = 0
    layer_scale: bool = False
    pos_offset: float = 0.1
    pos_antialias: bool = False
    window_size: int = 0
    global_attn_indexes: Tuple[int, ...] = ()
    out_chans: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp: int = 2048
    decoder_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden: int = 256
    md5_prefix: Optional[str] = None  # published by MAE's README; checked after a download

    @property
    def filename(self) -> str:
        return self.url.rsplit('/', 1)[-1]

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def describe(self) -> str:
        return f'patch {self.patch_size}, width {self.width}'


def _dino(name: str, patch: int, width: int, heads: int, file: str) -> VFMSpec:
    return VFMSpec(name, 'dino', patch, width, 12, heads, 224, f'{DINO_URL}/{file}/{file}.pth',
                   f"torch.hub.load('facebookresearch/dino:main', '{name}')")


def _dinov2(name: str, width: int, depth: int, heads: int, registers: int) -> VFMSpec:
    base = name.replace('_reg', '')
    file = f'{base}_reg{registers}_pretrain.pth' if registers else f'{base}_pretrain.pth'
    # hubconf: plain models interpolate with offset 0.1 and no antialias; *_reg models
    # with interpolate_offset=0.0 (an output size) and interpolate_antialias=True.
    return VFMSpec(name, 'dinov2', 14, width, depth, heads, 518, f'{DINOV2_URL}/{base}/{file}',
                   f"torch.hub.load('facebookresearch/dinov2', '{name}')", registers=registers,
                   layer_scale=True, pos_offset=0.0 if registers else 0.1, pos_antialias=bool(registers))


def _sam(name: str, width: int, depth: int, heads: int, global_attn: Tuple[int, ...], file: str) -> VFMSpec:
    return VFMSpec(name, 'sam', 16, width, depth, heads, 1024, f'{SAM_URL}/{file}',
                   f"segment_anything.sam_model_registry['{name[4:]}']", window_size=14,
                   global_attn_indexes=global_attn, out_chans=256)


def _mae(name: str, patch: int, width: int, depth: int, heads: int, size: str, md5: str) -> VFMSpec:
    return VFMSpec(name, 'mae', patch, width, depth, heads, 224, f'{MAE_URL}/mae_pretrain_vit_{size}.pth',
                   f"mae models_vit.vit_{size}_patch{patch}(img_size=crop, num_classes=0, global_pool=False)",
                   md5_prefix=md5)


SPECS: Dict[str, VFMSpec] = {spec.name: spec for spec in [
    _dino('dino_vits16', 16, 384, 6, 'dino_deitsmall16_pretrain'),
    _dino('dino_vits8', 8, 384, 6, 'dino_deitsmall8_pretrain'),
    _dino('dino_vitb16', 16, 768, 12, 'dino_vitbase16_pretrain'),
    _dino('dino_vitb8', 8, 768, 12, 'dino_vitbase8_pretrain'),
    _dinov2('dinov2_vits14', 384, 12, 6, 0),
    _dinov2('dinov2_vitb14', 768, 12, 12, 0),
    _dinov2('dinov2_vitl14', 1024, 24, 16, 0),
    _dinov2('dinov2_vits14_reg', 384, 12, 6, 4),
    _dinov2('dinov2_vitb14_reg', 768, 12, 12, 4),
    _dinov2('dinov2_vitl14_reg', 1024, 24, 16, 4),
    _sam('sam_vit_b', 768, 12, 12, (2, 5, 8, 11), 'sam_vit_b_01ec64.pth'),
    _sam('sam_vit_l', 1024, 24, 16, (5, 11, 17, 23), 'sam_vit_l_0b3195.pth'),
    _sam('sam_vit_h', 1280, 32, 16, (7, 15, 23, 31), 'sam_vit_h_4b8939.pth'),
    _mae('mae_vit_b16', 16, 768, 12, 12, 'base', '8cad7c'),
    _mae('mae_vit_l16', 16, 1024, 24, 16, 'large', 'b8b06e'),
    _mae('mae_vit_h14', 14, 1280, 32, 16, 'huge', '9bdbb0'),
]}

# Tiny random models for tests: the official patch size, resolution and token layout,
# two blocks of width 64. SAM's tiny encoder works at 224 pixels with 4x4 windows (the
# 14x14 grid is padded to 16x16, as SAM pads its 64x64 grid to 70x70) and one global block.
TINY: Dict[str, dict] = {
    'dino': dict(width=64, depth=2, heads=2),
    'dinov2': dict(width=64, depth=2, heads=2),
    'mae': dict(width=64, depth=2, heads=2),
    'sam': dict(width=64, depth=2, heads=2, image_size=224, window_size=4, global_attn_indexes=(1,),
                out_chans=32, mask_in_chans=4, decoder_depth=1, decoder_mlp=32, decoder_heads=2, iou_head_depth=1,
                iou_head_hidden=16),
}


def known_types() -> str:
    return ', '.join(SPECS)


def get_spec(vfm_type: str, tiny: bool = False, config_overrides: Optional[dict] = None) -> VFMSpec:
    """The spec of ``vfm_type``, made tiny and/or with some fields replaced."""
    if vfm_type not in SPECS:
        from ...config_check import closest
        raise SCLIPError(f'model.vfm.type={vfm_type!r} is not a known vision foundation model'
                         f'{closest(vfm_type, SPECS)} (choose one of: {known_types()}).')
    spec = SPECS[vfm_type]
    overrides = dict(TINY[spec.family]) if tiny else {}
    overrides.update(config_overrides or {})
    fields = {f.name for f in dataclasses.fields(VFMSpec)} - {'name', 'family', 'url', 'hub'}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise SCLIPError(f'VFM config override {unknown[0]!r} is not a field of {vfm_type} '
                         f'(fields: {", ".join(sorted(fields))}).')
    if 'global_attn_indexes' in overrides:
        overrides['global_attn_indexes'] = tuple(overrides['global_attn_indexes'])
    return dataclasses.replace(spec, **overrides)


def guess_type(family: str, patch: int, width: int, registers: int, depth: int,
               prefer_family: Optional[str] = None) -> Optional[str]:
    """The known type a checkpoint of this shape most likely is (None if none fits).

    DINO and MAE ViT-B/16 checkpoints have the same layout and shapes; for such a
    'vit' checkpoint the family asked for (``prefer_family``) wins.
    """
    families = ('dino', 'mae') if family == 'vit' else (family,)
    candidates = [s for s in SPECS.values() if s.family in families and s.patch_size == patch
                  and s.width == width and s.registers == registers]
    candidates.sort(key=lambda s: (s.depth != depth, s.family != prefer_family))
    return candidates[0].name if candidates else None
