"""SAM's prompt encoder and mask decoder (segment_anything's modules), from the full SAM file.

Why: Trident's optional refinement (``--sam_refine``) prompts SAM with boxes, points and a
mask made from its coarse label map. The image encoder is a VFM (sam.py); the two small prompt
modules are built here with ``build_sam``'s shapes (or the tiny spec's) and loaded from the
same official checkpoint, whose ``prompt_encoder.*`` and ``mask_decoder.*`` tensors an
encoder-only file lacks (one line then).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch.nn as nn

from ...errors import SCLIPError
from .checkpoint import load_into, read_checkpoint, resolve_checkpoint
from .specs import VFMSpec, get_spec

PARTS = ('prompt_encoder', 'mask_decoder')


def build_prompt_encoder(spec: VFMSpec) -> nn.Module:
    from segment_anything.modeling import PromptEncoder
    return PromptEncoder(embed_dim=spec.out_chans, image_embedding_size=(spec.grid, spec.grid),
                         input_image_size=(spec.image_size, spec.image_size), mask_in_chans=spec.mask_in_chans)


def build_mask_decoder(spec: VFMSpec) -> nn.Module:
    from segment_anything.modeling import MaskDecoder, TwoWayTransformer
    transformer = TwoWayTransformer(depth=spec.decoder_depth, embedding_dim=spec.out_chans,
                                    mlp_dim=spec.decoder_mlp, num_heads=spec.decoder_heads)
    return MaskDecoder(num_multimask_outputs=3, transformer=transformer, transformer_dim=spec.out_chans,
                       iou_head_depth=spec.iou_head_depth, iou_head_hidden_dim=spec.iou_head_hidden)


class SAMPromptModules(nn.Module):
    """``prompt_encoder`` and ``mask_decoder`` of one SAM, frozen, in float32 (as Trident keeps them)."""

    def __init__(self, spec: VFMSpec):
        super().__init__()
        self.spec = spec
        self.prompt_encoder = build_prompt_encoder(spec)
        self.mask_decoder = build_mask_decoder(spec)

    @property
    def mask_input_size(self) -> Tuple[int, int]:
        return tuple(self.prompt_encoder.mask_input_size)


def build_sam_prompt_modules(type: str, checkpoint: Optional[str] = None, download: bool = True, *,
                             tiny: bool = False, config_overrides: Optional[dict] = None,
                             cache_dir: Optional[str] = None) -> SAMPromptModules:
    """The prompt encoder and mask decoder of the SAM ``type`` from its full official checkpoint
    (``download=False`` without a checkpoint: random weights, for tests and benchmarks)."""
    spec = get_spec(type, tiny=tiny, config_overrides=config_overrides)
    modules = SAMPromptModules(spec)
    path = resolve_checkpoint(spec, checkpoint, download, cache_dir)
    if path is not None:
        contents = read_checkpoint(path, spec)
        state = contents if isinstance(contents, dict) else {}
        state = {key: value for key, value in state.items() if key.split('.', 1)[0] in PARTS}
        if not state:
            raise SCLIPError(f'model.vfm.checkpoint={path!r} has no prompt_encoder.* / mask_decoder.* tensors '
                             "(an image-encoder-only file?); SAM's refinement needs the full official "
                             f'{spec.filename}.')
        load_into(modules, state, spec, path, lambda key: key)
    modules.eval()
    modules.requires_grad_(False)
    return modules
