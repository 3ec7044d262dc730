"""CLIP's vision transformer with a different attention in its last block(s).

Why: SCLIP (and its successors) keep every weight of CLIP and change only how the last
block mixes tokens. We borrow the open_clip ``VisionTransformer``'s modules and weights and
re-implement only its forward pass, so that

* blocks before the modified ones run CLIP's own attention (fused SDPA or explicit);
* the last ``num_modified_blocks`` blocks run a registered attention variant;
* the very last block may drop its residual connection and/or its MLP (ClearCLIP, NACLIP);
* every token goes through ``ln_post`` and the projection, CLS is dropped, and patch
  features come back on their grid.

Positional embeddings are resized bicubically to the input's patch grid with the official
scale factor ``(n + 0.1) / native`` per axis.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import SCLIPError
from .attention import AttentionInputs, attend, get_attention


def resize_positional_embedding(pos: Tensor, native_grid: Tuple[int, int], grid: Tuple[int, int]) -> Tensor:
    """Resize CLIP's (1 + gh*gw, C) positional embedding to ``grid`` as the official code does."""
    if tuple(grid) == tuple(native_grid):
        return pos
    cls_pos, patch_pos = pos[:1], pos[1:]
    rows, cols = native_grid
    patch_pos = patch_pos.reshape(1, rows, cols, -1).permute(0, 3, 1, 2)
    scale = ((grid[0] + 0.1) / rows, (grid[1] + 0.1) / cols)
    patch_pos = F.interpolate(patch_pos.float(), scale_factor=scale, mode='bicubic').to(pos.dtype)
    if tuple(patch_pos.shape[-2:]) != tuple(grid):  # the +0.1 guards against this
        raise RuntimeError(f'positional embedding resized to {tuple(patch_pos.shape[-2:])}, not {grid}')
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
    return torch.cat([cls_pos, patch_pos], dim=0)


def qkv_heads(block: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """q, k, v of a ResidualAttentionBlock's attention, (B, heads, N, d), biases included."""
    attn = block.attn
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    batch, length, width = x.shape
    heads = attn.num_heads

    def split(t: Tensor) -> Tensor:
        return t.reshape(batch, length, heads, width // heads).transpose(1, 2)
    return split(q), split(k), split(v)


class CLIPDenseViT(nn.Module):
    """Patch features of an open_clip ViT whose last block(s) use ``attention``.

    Args:
        visual: ``open_clip`` ``VisionTransformer`` (its modules are used, not copied).
        attention: ``dict(type=name, **kwargs)`` of a registered variant (see attention.py).
        num_modified_blocks: how many final blocks use ``attention`` (SCLIP: 1).
        last_block_residual: keep the last block's attention residual connection.
        last_block_mlp: keep the last block's MLP (with its residual).
        fused: use fused scaled-dot-product attention where a variant has it.
    """

    def __init__(self, visual: nn.Module, attention=None, num_modified_blocks: int = 1,
                 last_block_residual: bool = True, last_block_mlp: bool = True, fused: bool = True):
        super().__init__()
        check_supported(visual)
        self.visual = visual
        self.variant, self.attention_kwargs = get_attention(attention or dict(type='csa'))
        depth = len(visual.transformer.resblocks)
        if not 1 <= int(num_modified_blocks) <= depth:
            raise SCLIPError(f'model.num_modified_blocks={num_modified_blocks} must be between 1 and '
                             f'the number of blocks ({depth}).')
        self.num_modified_blocks = int(num_modified_blocks)
        self.last_block_residual = bool(last_block_residual)
        self.last_block_mlp = bool(last_block_mlp)
        self.fused = bool(fused)
        self.record_block = self._record_block(depth)
        self.vanilla, _ = get_attention('vanilla')

    def _record_block(self, depth: int) -> Optional[int]:
        if self.variant.records_layer is None:
            return None
        name = self.variant.records_layer
        default = inspect.signature(self.variant.weights).parameters[name].default
        layer = int(self.attention_kwargs.get(name, default))
        first_modified = depth - self.num_modified_blocks + 1
        if not 1 <= layer < first_modified:
            raise SCLIPError(f'model.attention.{name}={layer} must name an '
                             f'unmodified block, 1 to {first_modified - 1}.')
        self.attention_kwargs[name] = layer
        return layer

    @property
    def patch_size(self) -> Tuple[int, int]:
        return tuple(self.visual.patch_size)

    @property
    def native_grid(self) -> Tuple[int, int]:
        return tuple(self.visual.grid_size)

    @property
    def image_size(self) -> Tuple[int, int]:
        return tuple(self.visual.image_size)

    @property
    def embed_dim(self) -> int:
        return self.visual.proj.shape[1]

    def embed(self, images: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch embedding + CLS + positional embedding + ln_pre, (B, 1 + gh*gw, C)."""
        visual = self.visual
        x = visual.conv1(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + resize_positional_embedding(visual.positional_embedding, self.native_grid, grid).to(x.dtype)
        return visual.ln_pre(x), grid

    def run_block(self, block: nn.Module, x: Tensor, t_grid: Tuple[int, int], recorded: Dict[int, Tensor],
                  modified: bool, last: bool, record: bool = False) -> Tensor:
        """One transformer block with the chosen attention (B, N, C) -> (B, N, C)."""
        h = block.ln_1(x)
        q, k, v = qkv_heads(block, h)
        t = AttentionInputs(x=h, q=q, k=k, v=v, grid=t_grid, recorded=recorded)
        if record:
            weights = self.vanilla.weights(t)
            recorded[self.record_block] = weights
            out = weights @ v
        elif modified:
            out = attend(self.variant, self.attention_kwargs, t, self.fused)
        else:
            out = attend(self.vanilla, {}, t, self.fused)
        out = block.attn.out_proj(out.transpose(1, 2).reshape(x.shape))
        out = block.ls_1(out)
        x = x + out if (self.last_block_residual or not last) else out
        if self.last_block_mlp or not last:
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        return x

    def forward(self, images: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> projected patch features (B, gh, gw, D), not normalised."""
        x, grid = self.embed(images)
        blocks = self.visual.transformer.resblocks
        depth = len(blocks)
        recorded: Dict[int, Tensor] = {}
        for index, block in enumerate(blocks, start=1):
            x = self.run_block(block, x, grid, recorded,
                               modified=index > depth - self.num_modified_blocks,
                               last=index == depth, record=index == self.record_block)
        x = self.visual.ln_post(x[:, 1:]) @ self.visual.proj
        return x.reshape(x.shape[0], grid[0], grid[1], -1)

    @torch.no_grad()
    def attention_maps(self, images: Tensor) -> Tensor:
        """The last block's attention weights (B, heads, N, N) under this variant (for figures)."""
        x, grid = self.embed(images)
        blocks = self.visual.transformer.resblocks
        depth = len(blocks)
        recorded: Dict[int, Tensor] = {}
        for index, block in enumerate(blocks[:-1], start=1):
            x = self.run_block(block, x, grid, recorded, modified=index > depth - self.num_modified_blocks,
                               last=False, record=index == self.record_block)
        h = blocks[-1].ln_1(x)
        q, k, v = qkv_heads(blocks[-1], h)
        return self.variant.weights(AttentionInputs(x=h, q=q, k=k, v=v, grid=grid, recorded=recorded),
                                    **self.attention_kwargs)


def check_supported(visual: nn.Module) -> None:
    """SCLIP needs a plain CLIP ViT: class token, nn.MultiheadAttention blocks, no attention pool."""
    blocks = getattr(getattr(visual, 'transformer', None), 'resblocks', None)
    if blocks is None or not hasattr(visual, 'conv1'):
        raise SCLIPError(f'model.arch: {type(visual).__name__} is not a CLIP ViT; SCLIP needs a '
                         'ViT image tower (ResNet and timm towers are not supported).')
    if getattr(visual, 'attn_pool', None) is not None or not isinstance(blocks[0].attn, nn.MultiheadAttention):
        raise SCLIPError('model.arch: this ViT uses attention pooling or a custom attention block; '
                         'pick a plain CLIP ViT (e.g. ViT-B-16, ViT-L-14).')
    if not getattr(visual.transformer, 'batch_first', True):
        raise SCLIPError('model.arch: sequence-first transformers are not supported; '
                         'upgrade open_clip to 3.x.')
