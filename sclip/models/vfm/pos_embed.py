"""Positional-embedding resizing exactly as each VFM's official code does it.

Why: the three families resize their learned (1, 1 + M*M, C) embedding differently, and
the differences are visible in the features (timm's ``resample_abs_pos_embed`` matches none
of them):

* DINO (``VisionTransformer.interpolate_pos_encoding``): bicubic with a scale factor
  ``(n + 0.1) / M`` per axis, in the embedding's own dtype (fp16 when the model is);
* DINOv2 (``DinoVisionTransformer.interpolate_pos_encoding``): in float32, then back to
  the tokens' dtype; a scale factor ``(n + offset) / M`` when ``interpolate_offset`` is
  non-zero, else an output size; ``antialias`` as the hub entry point sets it;
* MAE (``util/pos_embed.interpolate_pos_embed``): once, when the checkpoint is loaded into a
  model built for ``img_size=crop``: bicubic to an output size, in the checkpoint's float32.

DINO and DINOv2 keep the embedding unchanged only when the token count equals the native
one *and* the input is square in pixels (their ``npatch == N and w == h`` test), so a
224x230 input to a /16 model is resampled (by a factor 14.1/14) although its grid is 14x14.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _split(pos: Tensor) -> Tuple[Tensor, Tensor, int]:
    """(1, 1 + M*M, C) -> class embedding (1, 1, C), patch embeddings (1, C, M, M), M."""
    count = pos.shape[1] - 1
    side = int(math.sqrt(count))
    if side * side != count:
        raise ValueError(f'positional embedding of {count} patches is not a square grid')
    patches = pos[:, 1:].reshape(1, side, side, pos.shape[-1]).permute(0, 3, 1, 2)
    return pos[:, :1], patches, side


def _join(cls_pos: Tensor, patches: Tensor, grid: Tuple[int, int]) -> Tensor:
    if tuple(patches.shape[-2:]) != tuple(grid):
        raise RuntimeError(f'positional embedding resized to {tuple(patches.shape[-2:])}, not {tuple(grid)}')
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat((cls_pos, patches), dim=1)


def keeps_native(pos: Tensor, grid: Tuple[int, int], pixels: Tuple[int, int]) -> bool:
    """DINO's and DINOv2's test for using the embedding as it is."""
    return grid[0] * grid[1] == pos.shape[1] - 1 and pixels[0] == pixels[1]


def dino_pos_embed(pos: Tensor, grid: Tuple[int, int], pixels: Tuple[int, int]) -> Tensor:
    """DINO: (1, 1 + M*M, C) -> (1, 1 + rows*cols, C), bicubic by (n + 0.1) / M, own dtype."""
    if keeps_native(pos, grid, pixels):
        return pos
    cls_pos, patches, side = _split(pos)
    scale = ((grid[0] + 0.1) / side, (grid[1] + 0.1) / side)
    patches = F.interpolate(patches, scale_factor=scale, mode='bicubic')
    return _join(cls_pos, patches, grid)


def dinov2_pos_embed(pos: Tensor, grid: Tuple[int, int], pixels: Tuple[int, int], dtype: torch.dtype,
                     offset: float, antialias: bool) -> Tensor:
    """DINOv2: resized in float32 (scale factor with ``offset``, else a size), cast to ``dtype``."""
    if keeps_native(pos, grid, pixels):
        return pos
    cls_pos, patches, side = _split(pos.float())
    if offset:
        resize = dict(scale_factor=(float(grid[0] + offset) / side, float(grid[1] + offset) / side))
    else:
        resize = dict(size=tuple(grid))
    patches = F.interpolate(patches, mode='bicubic', antialias=antialias, **resize)
    return _join(cls_pos, patches, grid).to(dtype)


def mae_pos_embed(pos_float32: Tensor, grid: Tuple[int, int]) -> Tensor:
    """MAE: bicubic to ``grid`` (align_corners=False) from the float32 checkpoint embedding.

    The official code resizes square grids only (the input is resized to crop x crop);
    a non-square ``grid`` is resized the same way to (rows, cols).
    """
    cls_pos, patches, side = _split(pos_float32)
    if tuple(grid) == (side, side):
        return pos_float32
    patches = F.interpolate(patches, size=tuple(grid), mode='bicubic', align_corners=False)
    return _join(cls_pos, patches, grid)
