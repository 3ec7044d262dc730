"""DINO, DINOv2 and MAE patch features from timm's ViT modules, computed as the official code does.

Why: the three families are plain pre-norm ViTs that timm builds with the same parameter
names as their checkpoints (``blocks.N.attn.qkv``, ``ls1.gamma``, ...). What timm's own
forward does not match is the arithmetic around them, so the forward here is ours:

* the positional embedding is resized the family's way (see pos_embed.py);
* DINOv2's registers go in after the positional embedding, between CLS and the patches;
* explicit attention multiplies by the scale where the official code does: after ``q k^T``
  for DINO and for MAE (timm 0.4.12, which ProxyCLIP pins), on ``q`` for DINOv2 (its
  explicit ``Attention`` before it moved to SDPA); ``fused`` uses SDPA instead;
* the output is the last block's tokens after the final norm, CLS and registers dropped,
  as (B, C, rows, cols): DINO's ``get_intermediate_layers(x)[0][:, 1:]``, DINOv2's
  ``get_intermediate_layers(x, reshape=True)[0]`` and MAE's ``forward_features``.
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..precision import each_head, splits_exactly
from .base import VFM
from .pos_embed import dino_pos_embed, dinov2_pos_embed, mae_pos_embed
from .specs import VFMSpec

# Where the explicit attention applies the 1/sqrt(d) scale, per family.
SCALE_AFTER_PRODUCT = {'dino': True, 'mae': True, 'dinov2': False}

# The explicit attention's weights computed at once at most (CPU, float32): one head of a DINO
# ViT-B/8 view at 336 px is 12 MB, so it goes one head at a time; all 12 heads of a ViT-B/16
# window are 9 MB, so a chunk of windows goes at once (Trident's 18 windows of a Cityscapes
# image one head at a time took three times the official attention's time: 2,592 small products).
SPLIT_BYTES = 16 * 2 ** 20


def build_timm_vit(spec: VFMSpec) -> nn.Module:
    """timm's ViT with the spec's shape, CLS token, no head, no registers (we hold those)."""
    from timm.models.vision_transformer import VisionTransformer
    return VisionTransformer(
        img_size=spec.image_size, patch_size=spec.patch_size, num_classes=0, global_pool='',
        embed_dim=spec.width, depth=spec.depth, num_heads=spec.heads, mlp_ratio=4.0, qkv_bias=True,
        init_values=1.0 if spec.layer_scale else None, class_token=True, reg_tokens=0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU)


def attention(attn: nn.Module, x: Tensor, fused: bool, scale_after_product: bool) -> Tensor:
    """timm ``Attention``'s weights, official arithmetic: (B, N, C) -> (B, N, C)."""
    batch, length, width = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scale = (width // heads) ** -0.5
    if fused:
        out = F.scaled_dot_product_attention(q, k, v)
    elif not splits_exactly(q):
        out = explicit_head(q, k, v, scale, scale_after_product)
    else:
        out = torch.empty_like(q)
        per_image = heads * length * length * q.element_size()
        if per_image <= SPLIT_BYTES:  # small views (DINO ViT-B/16 windows): several images at once
            step = SPLIT_BYTES // per_image
            for start in range(0, batch, step):
                some = slice(start, start + step)
                out[some] = explicit_head(q[some], k[some], v[some], scale, scale_after_product)
        else:  # one image's head at a time: the same numbers, far less memory
            each_head(out, lambda one: explicit_head(q[one], k[one], v[one], scale, scale_after_product))
    return attn.proj(out.transpose(1, 2).reshape(batch, length, width))


def explicit_head(q: Tensor, k: Tensor, v: Tensor, scale: float, scale_after_product: bool) -> Tensor:
    """``softmax(q·kᵀ·scale)·v`` (..., N, d), the scale where the official code applies it.
    On the CPU in float32 the caller passes one image's head at a time: all heads' weights of a
    DINO ViT-B/8 view (12 × N², 150 MB at 336 px) are fresh allocations far beyond the caches,
    three a block, which cost as much as the products (half the attention's time here); one
    head's are 12 MB, and its products are the batched form's (``splits_exactly``)."""
    if scale_after_product:
        weights = q @ k.transpose(-2, -1)
        weights *= scale
    else:
        weights = (q * scale) @ k.transpose(-2, -1)
    return weights.softmax(dim=-1) @ v


def _refresh_float32_pos_embed(module: 'ViTVFM', incompatible_keys) -> None:
    module.keep_float32_pos_embed()


class ViTVFM(VFM):
    """Patch features (B, C, H/p, W/p) of a DINO, DINOv2 or MAE ViT."""

    def __init__(self, spec: VFMSpec, fused: bool = False):
        super().__init__(spec, fused)
        self.vit = build_timm_vit(spec)
        self.register_tokens = nn.Parameter(torch.zeros(1, spec.registers, spec.width)) if spec.registers else None
        self.scale_after_product = SCALE_AFTER_PRODUCT[spec.family]
        self.resizes_input = spec.family == 'mae'
        # MAE resizes the float32 checkpoint embedding once, before the model is cast to
        # fp16; we keep a float32 copy (a plain attribute, which .half() leaves alone).
        self._pos_embed_float32: Optional[Tensor] = None
        self.register_load_state_dict_post_hook(_refresh_float32_pos_embed)
        self.keep_float32_pos_embed()

    @property
    def embed_dim(self) -> int:
        return self.spec.width

    def keep_float32_pos_embed(self, pos: Optional[Tensor] = None) -> None:
        """Remember the positional embedding in float32 (MAE resizes from it)."""
        source = self.vit.pos_embed if pos is None else pos
        self._pos_embed_float32 = source.detach().float().clone()

    def positional_embedding(self, tokens: Tensor, grid: Tuple[int, int], pixels: Tuple[int, int]) -> Tensor:
        family = self.spec.family
        if family == 'dino':
            return dino_pos_embed(self.vit.pos_embed, grid, pixels)
        if family == 'dinov2':
            return dinov2_pos_embed(self.vit.pos_embed, grid, pixels, tokens.dtype,
                                    self.spec.pos_offset, self.spec.pos_antialias)
        self._pos_embed_float32 = self._pos_embed_float32.to(tokens.device)
        return mae_pos_embed(self._pos_embed_float32, grid).to(self.vit.pos_embed.dtype)

    def embed(self, images: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch embedding, CLS, positional embedding, registers: (B, 1 + R + rows*cols, C)."""
        vit = self.vit
        x = vit.patch_embed.proj(images)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.positional_embedding(x, grid, (images.shape[-2], images.shape[-1]))
        if self.register_tokens is not None:
            x = torch.cat((x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]), dim=1)
        return x, grid

    def block(self, block: nn.Module, x: Tensor) -> Tensor:
        x = x + block.ls1(attention(block.attn, block.norm1(x), self.fused, self.scale_after_product))
        return x + block.ls2(block.mlp(block.norm2(x)))

    def last_qk(self, images: Tensor) -> Tensor:
        """``q + k`` of the last block's attention (heads concatenated), CLS and registers dropped,
        (B, C, H // p, W // p): CorrCLIP's DINO features (a forward hook on the last block's
        ``attn.qkv`` during ``get_intermediate_layers``; the last block's output is never used)."""
        x, grid = self.embed(images)
        for block in self.vit.blocks[:-1]:
            x = self.block(block, x)
        last = self.vit.blocks[-1]
        q, k, _ = last.attn.qkv(last.norm1(x)).chunk(3, dim=-1)
        x = (q + k)[:, 1 + self.spec.registers:]
        return x.reshape(x.shape[0], grid[0], grid[1], -1).permute(0, 3, 1, 2)

    def last_block_keys(self, images: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """The last block's attention keys of the patch tokens (B, heads, rows*cols, d), CLS and
        registers dropped, and the grid: what CASS reads (DINO's ``get_intermediate_feat`` qkv,
        DINOv2's ``get_last_self_attention`` qkv, index 1); the last block's own output is not needed."""
        x, grid = self.embed(images)
        for block in self.vit.blocks[:-1]:
            x = self.block(block, x)
        last = self.vit.blocks[-1]
        h = last.norm1(x)
        batch, length, width = h.shape
        heads = last.attn.num_heads
        keys = last.attn.qkv(h).reshape(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)[1]
        return keys[:, :, 1 + self.spec.registers:], grid

    def forward(self, images: Tensor) -> Tensor:
        """ImageNet-normalised images (B, 3, H, W) -> features (B, C, H // p, W // p)."""
        x, grid = self.embed(images)
        for block in self.vit.blocks:
            x = self.block(block, x)
        x = self.vit.norm(x)[:, 1 + self.spec.registers:]
        return x.reshape(x.shape[0], grid[0], grid[1], -1).permute(0, 3, 1, 2)
