"""From per-query logits to a label map, as the official SCLIP post-processing does.

1. ``p = softmax(logit_scale · logits)`` over all queries (names);
2. a class scores the max of ``p`` over its names (synonyms);
3. with ``area_thd``: classes (other than ``bg_idx``) whose argmax area is not above
   ``area_thd`` × the total area of those classes get score 0;
4. prediction = argmax; pixels whose best score is below ``prob_thd`` become ``bg_idx``;
5. with ``closing`` (ITACLIP: 3): a morphological closing of the label map (labels as grey
   values, a ``closing``×``closing`` square), as its ``cv2.morphologyEx(MORPH_CLOSE)``.
All steps are tensor operations, no per-pixel Python loops.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def class_scores(logits: Tensor, query_class: Tensor, num_classes: int, logit_scale: float,
                 aligned: bool = False) -> Tensor:
    """(Q, H, W) cosine logits -> (C, H, W) class scores (max over each class's names).
    ``aligned``: softmax through ``aligned_softmax`` (for tiles of a larger map)."""
    probs = aligned_softmax(logits * logit_scale) if aligned else (logits * logit_scale).softmax(dim=0)
    if probs.shape[0] == num_classes:
        return probs
    ranges = contiguous_ranges(query_class)
    if ranges is not None and len(ranges) == num_classes:  # each class's names are adjacent rows
        return torch.stack([probs[a] if b - a == 1 else probs[a:b].amax(dim=0) for a, b in ranges])
    index = query_class.to(probs.device).view(-1, 1, 1).expand_as(probs)
    scores = probs.new_zeros((num_classes,) + probs.shape[1:])
    return scores.scatter_reduce(0, index, probs, reduce='amax', include_self=True)


def aligned_softmax(logits: Tensor) -> Tensor:
    """Softmax over dim 0 of a tile, every pixel through the kernel's vectorised arithmetic.

    Why: the CPU kernel computes each pixel alone, with its vector code except in the scalar
    tail of each thread's range, whose exp may differ in the last bit. Padding the tile's pixels
    to a multiple of 64 per thread leaves no tail inside it, so a tile's probabilities are
    those of the whole map, bar the few pixels that the whole map's own thread split sends
    through the scalar tail (which already differ between machines of other thread counts)."""
    rows = logits.shape[0]
    flat = logits.reshape(rows, -1)
    count = flat.shape[1]
    pad = -count % (64 * max(torch.get_num_threads(), 1)) if flat.device.type == 'cpu' else 0
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    return flat.softmax(dim=0)[:, :count].reshape(logits.shape)


def contiguous_ranges(query_class: Tensor):
    """[(first, end) row range of each class 0..C-1] when the names of every class are adjacent
    and in class order (as a class-name file lists them), else None."""
    values = query_class.tolist()
    ranges, start = [], 0
    for row in range(1, len(values) + 1):
        if row == len(values) or values[row] != values[start]:
            if values[start] != len(ranges):
                return None
            ranges.append((start, row))
            start = row
    return ranges


def suppress_small_areas(scores: Tensor, area_thd: float, bg_idx: int = 0) -> Tensor:
    """Zero the scores of non-background classes covering ``<= area_thd`` of the foreground."""
    return scores * area_keep(argmax_areas(scores), area_thd, bg_idx, scores.dtype).view(-1, 1, 1)


def argmax_areas(scores: Tensor) -> Tensor:
    """Pixels won by each class, (C,) integers."""
    # max(dim).indices is argmax (the first maximum), several times faster over dim 0
    return torch.bincount(scores.max(dim=0)[1].flatten(), minlength=scores.shape[0])


def area_keep(areas: Tensor, area_thd: float, bg_idx: int, dtype: torch.dtype) -> Tensor:
    """(C,) 1 for the classes ``suppress_small_areas`` keeps, 0 for the others."""
    area = areas.to(dtype)
    foreground = torch.ones(area.shape[0], dtype=torch.bool, device=area.device)
    foreground[bg_idx] = False
    keep = (area > area_thd * area[foreground].sum()) | ~foreground
    return keep.to(dtype)


def close_labels(labels: Tensor, size: int) -> Tensor:
    """Grey-value closing (dilation, then erosion) of a label map (1, H, W) by a ``size`` square;
    outside the map counts as neither (OpenCV's default border for morphology)."""
    pad = size // 2
    values = labels[None].float()
    dilated = F.max_pool2d(values, size, stride=1, padding=pad)
    closed = -F.max_pool2d(-dilated, size, stride=1, padding=pad)
    return closed[0].to(labels.dtype)


def predict_labels(logits: Tensor, query_class: Tensor, num_classes: int, logit_scale: float,
                   prob_thd: float = 0.0, area_thd: Optional[float] = None,
                   bg_idx: int = 0, closing: int = 0) -> Tuple[Tensor, Tensor]:
    """Class scores (C, H, W) and the label map (1, H, W) of one image."""
    scores = class_scores(logits, query_class, num_classes, logit_scale)
    if area_thd is not None:
        scores = suppress_small_areas(scores, area_thd, bg_idx)
    best, labels = scores.max(dim=0, keepdim=True)
    labels[best < prob_thd] = bg_idx
    if closing > 1:
        labels = close_labels(labels, closing)
    return scores, labels


def upsampled_columns(logits: Tensor, size: Tuple[int, int], tile_width: int):
    """``F.interpolate(logits[None], size, 'bilinear')[0]`` as (first column, (Q, H, w) tile)
    pairs: bilinear interpolation is separable (the columns first at the input's height, then
    the rows of each column tile), and a tile of columns needs only its columns of the first
    pass. The values are those of the whole interpolation, in most sizes bit for bit, else to
    float32 rounding (the kernel's vector and scalar code round differently). Only for float32
    (half precision would round between the passes)."""
    import torch.nn.functional as F
    height, width = size
    rows = F.interpolate(logits[None], size=(logits.shape[-2], width), mode='bilinear', align_corners=False)
    for start in range(0, width, tile_width):
        stop = min(start + tile_width, width)
        yield start, F.interpolate(rows[..., start:stop], size=(height, stop - start), mode='bilinear',
                                   align_corners=False)[0]


def predict_labels_tiled(logits: Tensor, size: Tuple[int, int], query_class: Tensor, num_classes: int,
                         logit_scale: float, prob_thd: float = 0.0, area_thd: Optional[float] = None,
                         bg_idx: int = 0, tile_width: int = 64) -> Tensor:
    """The label map (1, H, W) of ``predict_labels(F.interpolate(logits, size), ...)``, computed
    by column tiles of ``tile_width``: memory of one tile's (Q, H, tile_width) maps instead of
    the whole image's, for images whose full-resolution scores would not fit. Same labels as
    the whole map (its scores to float32 rounding: a pixel can differ only where two classes,
    or a class and ``prob_thd``, tie to the last bit). ``area_thd`` needs the whole image's
    argmax areas first: a first pass over the tiles counts them."""
    def tiles():
        for start, tile in upsampled_columns(logits, size, tile_width):
            yield start, class_scores(tile, query_class, num_classes, logit_scale, aligned=True)
    keep = None
    if area_thd is not None:
        areas = torch.zeros(num_classes, dtype=torch.long, device=logits.device)
        for _, scores in tiles():
            areas += argmax_areas(scores)
        keep = area_keep(areas, area_thd, bg_idx, logits.dtype).view(-1, 1, 1)
    labels = torch.empty((1,) + tuple(size), dtype=torch.long, device=logits.device)
    for start, scores in tiles():
        if keep is not None:
            scores = scores * keep
        best, tile_labels = scores.max(dim=0, keepdim=True)
        tile_labels[best < prob_thd] = bg_idx
        labels[..., start:start + tile_labels.shape[-1]] = tile_labels
    return labels
