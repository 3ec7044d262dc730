"""GEM (Bousselham et al., "Grounding Everything", CVPR 2024), as its ``gem_torch`` package computes it.

The last ``gem_depth - 1`` blocks (6 by default) run two paths side by side. CLIP's own path
(``x``) is unchanged; GEM's path (``g``, starting as the input of the first of those blocks)
adds, in each of them, a self-self attention of the *same* block input ``h = ln_1(x)``:

    τ = mean_tokens ‖h‖₂ · d^-½                           (adaptive temperature, per image;
                                                            a fixed ``ss_attn_temp`` replaces it)
    for p in (v, k, q):  repeat ss_attn_iter times:  p = softmax(τ · p̂·p̂ᵀ) · p̂   (p̂ = p/‖p‖₂)
                         A_p = softmax(τ · p̂·p̂ᵀ)
    g = g + out_proj((A_v + A_k + A_q)·v / 3)             (no MLP on GEM's path)

and the patch features are ``proj(ln_post(g))``. GEM resizes the positional embedding its own
way (timm's ``resample_abs_pos_embed``: bicubic to the grid's size with antialiasing), unless
the grid is CLIP's native one. ``ignore_residual=True`` is ClearCLIP's re-implementation
(``g = out_proj(...)`` of the last block alone: its ``GEMResidualBlock(ignore_residual)``).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from ..precision import each_head, splits_exactly
from .base import Method, TextSide, register_method


def gem_positional_embedding(pos: Tensor, native_grid: Tuple[int, int], grid: Tuple[int, int]) -> Tensor:
    """GEM's ``resample_abs_pos_embed``: CLIP's (1 + gh*gw, C) embedding, its patch part resized
    bicubically (antialiased) to ``grid`` by size, or returned as it is on the native grid."""
    if tuple(grid) == tuple(native_grid):
        return pos
    patch = pos[1:].reshape(1, native_grid[0], native_grid[1], -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=tuple(grid), mode='bicubic', antialias=True)
    patch = patch.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
    return torch.cat([pos[:1], patch], dim=0)


def self_self_weights(p: Tensor, inv_temp, iterations: int, fused: bool) -> Tensor:
    """``p`` refined ``iterations`` times by its own L2-normalised self-attention, then that
    attention's weights (B, heads, N, N) — applied to v by the caller."""
    for _ in range(iterations):
        p = F.normalize(p, dim=-1)
        if fused:
            p = F.scaled_dot_product_attention(p * inv_temp, p, p, scale=1.0)
        else:
            p = (p @ p.transpose(-2, -1) * inv_temp).softmax(dim=-1) @ p
    p = F.normalize(p, dim=-1)
    return (p @ p.transpose(-2, -1) * inv_temp).softmax(dim=-1)


@register_method('gem')
class GEM(Method):
    """GEM's self-self attention ensemble over the last ``gem_depth - 1`` blocks."""

    def __init__(self, gem_depth: int = 7, ss_attn_iter: int = 1, ss_attn_temp: Optional[float] = None,
                 ignore_residual: bool = False):
        super().__init__()
        self.gem_depth = int(gem_depth)
        self.ss_attn_iter = int(ss_attn_iter)
        self.ss_attn_temp = None if ss_attn_temp is None else float(ss_attn_temp)
        self.ignore_residual = bool(ignore_residual)
        if self.ss_attn_iter < 0:
            raise SCLIPError(f'model.method.ss_attn_iter={self.ss_attn_iter} must be 0 or more.')
        if self.ss_attn_temp is not None and not self.ss_attn_temp > 0:
            raise SCLIPError(f'model.method.ss_attn_temp={self.ss_attn_temp} must be positive (or None: '
                             'the adaptive temperature).')

    def setup(self, vit: CLIPViT) -> None:
        if not 2 <= self.gem_depth <= vit.depth + 1:
            raise SCLIPError(f'model.method.gem_depth={self.gem_depth} must be between 2 and {vit.depth + 1} '
                             f'(GEM modifies the last gem_depth - 1 of the {vit.depth} blocks).')

    @staticmethod
    def shares_trunk(trunk: Trunk) -> bool:
        """Whether CLIP's path here is the trunk's own (GEM's embedding, or the native grid)."""
        return tuple(trunk.grid) == trunk.vit.native_grid or trunk.positional is gem_positional_embedding

    def clip_tokens(self, trunk: Trunk, block: int) -> Tensor:
        """CLIP's own output of ``block`` after GEM's embedding (the shared trunk's on the native grid)."""
        vit = trunk.vit
        if self.shares_trunk(trunk):
            return trunk.tokens(block)

        def run() -> Tensor:
            x, _ = vit.embed(trunk.images, gem_positional_embedding)
            for index in range(1, block + 1):
                x = vit.standard_block(index, x)
            return x
        return trunk.memo(('gem_tokens', block), run)

    def gem_block(self, trunk: Trunk, index: int, g: Tensor, x: Tensor, shared: bool = False) -> Tuple[Tensor, Tensor]:
        """One block of both paths: (GEM's, CLIP's); CLIP's is not computed after the last block.
        ``shared``: ``x`` is the trunk's own output of the block before, and CLIP's path (its
        q, k, v and output) is the trunk's, computed once for whoever reads it (FreeCP's maps)."""
        vit = trunk.vit
        block = vit.block(index)
        h = block.ln_1(x)
        q, k, v = trunk.qkv(index, x) if shared else vit.qkv(index, h)
        scale = q.shape[-1] ** -0.5
        if self.ss_attn_temp is None:
            inv_temp = torch.norm(h, dim=-1).mean(dim=-1)[:, None, None, None] * scale
        else:
            inv_temp = self.ss_attn_temp
        out = block.ls_1(vit.attention_output(index, self.ensemble(q, k, v, inv_temp, vit.fused)))
        g = out if self.ignore_residual else g + out
        if index < vit.depth:
            x = trunk.tokens(index) if shared else vit.finish_block(index, x, q, k, v)
        return g, x

    def ensemble(self, q: Tensor, k: Tensor, v: Tensor, inv_temp, fused: bool) -> Tensor:
        """``(A_v + A_k + A_q)·v / 3`` (B, heads, N, d); on the CPU in float32 one window's head
        at a time: all heads' weights of a chunk of windows are fresh allocations far beyond the
        caches, several a block, which cost more than the products; a head's are the batched
        form's bits (``splits_exactly``)."""
        if not splits_exactly(v):
            weights = [self_self_weights(p, inv_temp, self.ss_attn_iter, fused) for p in (v, k, q)]
            return (weights[0] @ v + weights[1] @ v + weights[2] @ v) / 3

        def one_head(one):
            temp = inv_temp[one[0]] if isinstance(inv_temp, Tensor) else inv_temp  # (B, 1, 1, 1): per image
            weights = [self_self_weights(p[one], temp, self.ss_attn_iter, fused) for p in (v, k, q)]
            return (weights[0] @ v[one] + weights[1] @ v[one] + weights[2] @ v[one]) / 3
        return each_head(torch.empty_like(v), one_head)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        first = trunk.vit.depth - (self.gem_depth - 1)
        shared = self.shares_trunk(trunk)
        x = self.clip_tokens(trunk, first)
        g = x
        for index in range(first + 1, trunk.vit.depth + 1):
            g, x = self.gem_block(trunk, index, g, x, shared)
        return trunk.vit.patch_features(g, trunk.grid)
