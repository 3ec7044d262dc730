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


def class_scores(logits: Tensor, query_class: Tensor, num_classes: int, logit_scale: float) -> Tensor:
    """(Q, H, W) cosine logits -> (C, H, W) class scores (max over each class's names)."""
    probs = (logits * logit_scale).softmax(dim=0)
    if probs.shape[0] == num_classes:
        return probs
    ranges = contiguous_ranges(query_class)
    if ranges is not None and len(ranges) == num_classes:  # each class's names are adjacent rows
        return torch.stack([probs[a] if b - a == 1 else probs[a:b].amax(dim=0) for a, b in ranges])
    index = query_class.to(probs.device).view(-1, 1, 1).expand_as(probs)
    scores = probs.new_zeros((num_classes,) + probs.shape[1:])
    return scores.scatter_reduce(0, index, probs, reduce='amax', include_self=True)


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
    num_classes = scores.shape[0]
    # max(dim).indices is argmax (the first maximum), several times faster over dim 0
    area = torch.bincount(scores.max(dim=0)[1].flatten(), minlength=num_classes).to(scores.dtype)
    foreground = torch.ones(num_classes, dtype=torch.bool, device=scores.device)
    foreground[bg_idx] = False
    keep = (area > area_thd * area[foreground].sum()) | ~foreground
    return scores * keep.to(scores.dtype).view(-1, 1, 1)


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
