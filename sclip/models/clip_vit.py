"""CLIP's vision transformer as primitives, and its unmodified blocks as a shared trunk.

Why: every training-free method keeps CLIP's weights and rewrites only part of the forward
pass (the last block's attention, a second pass through the last block, token repair, a
proxy attention from another model...). ``CLIPViT`` exposes the pieces such a forward
program is written with (embedding, q/k/v of a block, a block with any attention, the
output projection), borrowing the open_clip ``VisionTransformer``'s modules and weights.

``Trunk`` holds one chunk of windows and computes CLIP's *unmodified* blocks on demand,
memoising every block output and attention map it computes. A method asks for what it
reads (``trunk.tokens(11)``, ``trunk.attention(6)``); several methods (or several cells of
a sweep) reading the same windows share one computation.
"""
from __future__ import annotations

from typing import Callable, Dict, Hashable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import SCLIPError
from .precision import splits_exactly


def resize_positional_embedding(pos: Tensor, native_grid: Tuple[int, int], grid: Tuple[int, int]) -> Tensor:
    """Resize CLIP's (1 + gh*gw, C) positional embedding to ``grid`` as the official code does:
    bicubic, with the scale factor ``(n + 0.1) / native`` per axis, computed in float32.

    official: the embedding is used as it is whenever the number of patches equals the native
    one (``x.shape[1] == pos.shape[0]``), even for a non-square grid such as 7×28.
    """
    if grid[0] * grid[1] == native_grid[0] * native_grid[1]:
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


def check_supported(visual: nn.Module) -> None:
    """Training-free CLIP segmentation needs a plain CLIP ViT: class token, nn.MultiheadAttention
    blocks, no attention pool."""
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


class CLIPViT(nn.Module):
    """The pieces of an open_clip ``VisionTransformer`` that forward programs are written with.

    Blocks are numbered from 1 (CLIP's first block) to ``depth``; token 0 is CLS and tokens
    1..N are patches in row-major order over the patch grid.
    """

    def __init__(self, visual: nn.Module, fused: bool = True):
        super().__init__()
        check_supported(visual)
        self.visual = visual
        self.fused = bool(fused)

    # --- shapes ----------------------------------------------------------------------------
    @property
    def blocks(self) -> nn.ModuleList:
        return self.visual.transformer.resblocks

    @property
    def depth(self) -> int:
        return len(self.blocks)

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
    def width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def num_heads(self) -> int:
        return self.blocks[0].attn.num_heads

    @property
    def embed_dim(self) -> int:
        return self.visual.proj.shape[1]

    def block(self, index: int) -> nn.Module:
        """Block ``index`` (1-based)."""
        return self.blocks[index - 1]

    # --- pieces ----------------------------------------------------------------------------
    def embed(self, images: Tensor, resize_positional: Callable[[Tensor, Tuple[int, int], Tuple[int, int]], Tensor]
              = resize_positional_embedding) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch embedding + CLS + positional embedding + ln_pre, (B, 1 + gh*gw, C); the positional
        embedding is resized to the grid by ``resize_positional(pos, native_grid, grid)`` (GEM
        resizes it its own way)."""
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + resize_positional(visual.positional_embedding, self.native_grid, grid).to(x.dtype)
        return visual.ln_pre(x), grid

    def qkv(self, index: int, h: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """q, k, v (B, heads, N, d) of block ``index`` for its normalised input ``h``."""
        return qkv_heads(self.block(index), h)

    def attention_output(self, index: int, weighted_values: Tensor) -> Tensor:
        """Heads (B, heads, N, d) merged and passed through block ``index``'s out_proj, (B, N, C)."""
        batch, heads, length, dim = weighted_values.shape
        merged = weighted_values.transpose(1, 2).reshape(batch, length, heads * dim)
        return self.block(index).attn.out_proj(merged)

    def mlp(self, index: int, x: Tensor) -> Tensor:
        """The MLP branch of block ``index`` (layer scale included), without its residual."""
        block = self.block(index)
        return block.ls_2(block.mlp(block.ln_2(x)))

    def clip_attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """CLIP's own attention ``softmax(q·kᵀ·d^-½)·v``, fused or explicit."""
        scale = q.shape[-1] ** -0.5
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v, scale=scale)
        return (q @ k.transpose(-2, -1) * scale).softmax(dim=-1) @ v

    def standard_block(self, index: int, x: Tensor) -> Tensor:
        """Block ``index`` exactly as CLIP runs it."""
        return self.finish_block(index, x, *self.qkv(index, self.block(index).ln_1(x)))

    def finish_block(self, index: int, x: Tensor, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Block ``index`` as CLIP runs it on ``x``, given the q, k, v of ``ln_1(x)`` already."""
        x = x + self.block(index).ls_1(self.attention_output(index, self.clip_attention(q, k, v)))
        return x + self.mlp(index, x)

    def project(self, tokens: Tensor) -> Tensor:
        """ln_post and the projection to the joint embedding space, (B, N, D)."""
        return self.visual.ln_post(tokens) @ self.visual.proj

    def patch_features(self, tokens: Tensor, grid: Tuple[int, int]) -> Tensor:
        """Project the patch tokens (CLS dropped) and put them on their grid, (B, gh, gw, D)."""
        features = self.project(tokens[:, 1:])
        return features.reshape(features.shape[0], grid[0], grid[1], -1)


class Trunk:
    """CLIP's unmodified blocks on one chunk of windows, computed on demand and memoised.

    ``tokens(i)`` is the output of block ``i`` (``tokens(0)``: the embeddings after ln_pre),
    ``attention(i)`` the attention weights (B, heads, N, N) block ``i`` computes, and
    ``memo(key, fn)`` caches any other value derived from these windows (e.g. a second
    backbone's features) under ``key``. ``positional`` resizes the positional embedding (GEM's
    wrapper resizes it its own way, for CLIP's path too). ``sources``: the whole image each
    window was cut from (CASS reads the image's CLS), None when the windows are whole images.
    """

    def __init__(self, vit: CLIPViT, images: Tensor,
                 positional: Callable[[Tensor, Tuple[int, int], Tuple[int, int]], Tensor] = resize_positional_embedding,
                 sources: Optional[List[Tensor]] = None):
        self.vit = vit
        self.images = images
        self.positional = positional
        self.sources = sources
        tokens, self.grid = vit.embed(images, positional)
        self._tokens: Dict[int, Tensor] = {0: tokens}
        self._attention: Dict[int, Tensor] = {}
        self._memo: Dict[Hashable, object] = {}

    @property
    def batch_size(self) -> int:
        return self.images.shape[0]

    def tokens(self, block: int) -> Tensor:
        """Output of CLIP's block ``block`` (1-based), running only the blocks not yet run."""
        if not 0 <= block <= self.vit.depth:
            raise IndexError(f'block {block} outside 0..{self.vit.depth}')
        if block not in self._tokens:
            start = max(i for i in self._tokens if i < block)
            x = self._tokens[start]
            for index in range(start + 1, block + 1):
                qkv = self._memo.get(('qkv', index))  # asked for already (attention, a last block)
                x = self.vit.standard_block(index, x) if qkv is None else self.vit.finish_block(index, x, *qkv)
                self._tokens[index] = x
        return self._tokens[block]

    def attention(self, block: int, head: Optional[int] = None) -> Tensor:
        """CLIP's own attention weights ``softmax(q·kᵀ·d^-½)`` of block ``block``, (B, heads, N, N);
        of one ``head`` alone (B, N, N) when only that one is read (FreeCP over GEM: a twelfth of
        the work, the same numbers: ``splits_exactly``). The block's q, k, v are kept for its
        output (``tokens``)."""
        if head is not None and block in self._attention:
            return self._attention[block][:, head]
        key = block if head is None else (block, head)
        if key not in self._attention:
            q, k, _ = self.qkv(block, self.tokens(block - 1))
            if head is not None:
                if not splits_exactly(q):
                    return self.attention(block)[:, head]
                q, k = q[:, head], k[:, head]
            self._attention[key] = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self._attention[key]

    def qkv(self, block: int, tokens: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """q, k, v of ``block`` for its input ``tokens``; when ``tokens`` is CLIP's own output of
        the block before (as for every last-block variant), computed once for all callers."""
        if self._tokens.get(block - 1) is tokens:
            return self.memo(('qkv', block), lambda: self.vit.qkv(block, self.vit.block(block).ln_1(tokens)))
        return self.vit.qkv(block, self.vit.block(block).ln_1(tokens))

    def memo(self, key: Hashable, compute: Callable[[], object]):
        """``compute()`` once per ``key`` for these windows."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]
