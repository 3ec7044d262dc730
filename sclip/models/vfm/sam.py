"""SAM's image encoder (segment_anything's ``ImageEncoderViT``) as a VFM.

Why: ProxyCLIP takes ``sam.image_encoder(x)`` (B, 256, 64, 64) of a 1024x1024 input. The
segment_anything package is the official code, so the explicit path simply calls it. The
fused path is our forward over its modules that gives each attention, windowed or global,
to PyTorch's SDPA with SAM's decomposed relative-position term as an additive mask.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from .base import VFM
from .specs import VFMSpec


def segment_anything_modules():
    """segment_anything's image-encoder module, or a one-line error naming the package."""
    try:
        from segment_anything.modeling import image_encoder
    except ImportError:
        raise SCLIPError('model.vfm.type=sam_* needs the segment-anything package: '
                         'pip install segment-anything') from None
    return image_encoder


def build_sam_encoder(spec: VFMSpec) -> nn.Module:
    """The encoder ``segment_anything.build_sam`` builds for this spec."""
    image_encoder = segment_anything_modules()
    return image_encoder.ImageEncoderViT(
        depth=spec.depth, embed_dim=spec.width, img_size=spec.image_size, mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=spec.heads,
        patch_size=spec.patch_size, qkv_bias=True, use_rel_pos=True,
        global_attn_indexes=list(spec.global_attn_indexes), window_size=spec.window_size,
        out_chans=spec.out_chans)


def relative_position_bias(attn: nn.Module, q: Tensor, hw: Tuple[int, int]) -> Tensor:
    """SAM's ``add_decomposed_rel_pos`` term alone: (B*heads, H*W, H*W)."""
    get_rel_pos = segment_anything_modules().get_rel_pos
    height, width = hw
    rel_h = get_rel_pos(height, height, attn.rel_pos_h)
    rel_w = get_rel_pos(width, width, attn.rel_pos_w)
    r_q = q.reshape(q.shape[0], height, width, q.shape[-1])
    bias_h = torch.einsum('bhwc,hkc->bhwk', r_q, rel_h)
    bias_w = torch.einsum('bhwc,wkc->bhwk', r_q, rel_w)
    bias = bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]
    return bias.reshape(q.shape[0], height * width, height * width)


def fused_attention(attn: nn.Module, x: Tensor) -> Tensor:
    """SAM ``Attention.forward`` with SDPA: (B, H, W, C) -> (B, H, W, C)."""
    batch, height, width, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, batch * heads, height * width, -1).unbind(0)
    bias = relative_position_bias(attn, q, (height, width)) if attn.use_rel_pos else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = out.view(batch, heads, height, width, -1).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    return attn.proj(out)


def fused_block(block: nn.Module, x: Tensor) -> Tensor:
    """SAM ``Block.forward`` (window partition included) with the fused attention."""
    modules = segment_anything_modules()
    shortcut = x
    x = block.norm1(x)
    if block.window_size > 0:
        hw = (x.shape[1], x.shape[2])
        x, padded_hw = modules.window_partition(x, block.window_size)
    x = fused_attention(block.attn, x)
    if block.window_size > 0:
        x = modules.window_unpartition(x, block.window_size, padded_hw, hw)
    x = shortcut + x
    return x + block.mlp(block.norm2(x))


class SAMVFM(VFM):
    """SAM image-encoder features (B, out_chans, 64, 64) of a 1024x1024 input."""

    resizes_input = True

    def __init__(self, spec: VFMSpec, fused: bool = False):
        super().__init__(spec, fused)
        self.encoder = build_sam_encoder(spec)

    @property
    def embed_dim(self) -> int:
        return self.spec.out_chans

    def input_size(self, crop_hw: Union[int, Sequence[int]]) -> Tuple[int, int]:
        """SAM's fixed input, whatever the crop (ProxyCLIP resizes to 1024x1024)."""
        return self.spec.image_size, self.spec.image_size

    def forward(self, images: Tensor) -> Tensor:
        """ImageNet-normalised images (B, 3, 1024, 1024) -> (B, 256, 64, 64)."""
        expected = (self.spec.image_size, self.spec.image_size)
        if tuple(images.shape[-2:]) != expected:
            raise ValueError(f'{self.name} takes {expected[0]}x{expected[1]} images (its positional '
                             f'embedding is fixed), got {tuple(images.shape[-2:])}; use proxy_input().')
        if not self.fused:
            return self.encoder(images)
        encoder = self.encoder
        x = encoder.patch_embed(images)
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        for block in encoder.blocks:
            x = fused_block(block, x)
        return encoder.neck(x.permute(0, 3, 1, 2))
