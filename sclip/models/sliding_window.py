"""Sliding-window inference as the official SCLIP evaluation does it, batched or one by one.

Why: CLIP sees 224×224 inputs; larger images are covered by overlapping windows whose
patch logits are upsampled to the window, summed on a canvas and divided by the number of
windows covering each pixel. A window that would cross the border is shifted back inside
(no padding), and an axis shorter than the crop gets one window of its own length.

The ``simple`` path runs windows one at a time (the official loop, kept for checking);
the ``batched`` path stacks all same-sized windows of all images into chunks of at most
``window_batch_size`` and runs each chunk in one forward pass. Both add windows to the
canvas in the same order, so they agree to float rounding.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Window = Tuple[int, int, int, int]  # y1, y2, x1, x2


def grid_count(size: int, crop: int, stride: int) -> int:
    """Windows along one axis: ``max(size - crop + stride - 1, 0) // stride + 1``."""
    return max(size - crop + stride - 1, 0) // stride + 1


def window_grid(height: int, width: int, crop: Tuple[int, int], stride: Tuple[int, int]) -> List[Window]:
    """All windows of an image, row-major, shifted inside the image at the borders."""
    windows = []
    for row in range(grid_count(height, crop[0], stride[0])):
        for col in range(grid_count(width, crop[1], stride[1])):
            y2 = min(row * stride[0] + crop[0], height)
            x2 = min(col * stride[1] + crop[1], width)
            windows.append((max(y2 - crop[0], 0), y2, max(x2 - crop[1], 0), x2))
    return windows


def coverage(height: int, width: int, windows: Sequence[Window], device=None) -> Tensor:
    """How many windows cover each pixel, (1, H, W)."""
    count = torch.zeros(1, height, width, device=device)
    for y1, y2, x1, x2 in windows:
        count[:, y1:y2, x1:x2] += 1
    return count


def window_logits(encode: Callable[[Tensor], Tensor], crops: Tensor) -> Tensor:
    """Per-window logits (n, Q, h, w): ``encode`` gives (n, Q, gh, gw), upsampled bilinearly."""
    logits = encode(crops)
    return F.interpolate(logits, size=crops.shape[-2:], mode='bilinear', align_corners=False)


def slide_inference(images: Sequence[Tensor], encode: Callable[[Tensor], Tensor], num_queries: int,
                    crop: Tuple[int, int], stride: Tuple[int, int], window_batch_size: int = 0) -> List[Tensor]:
    """Canvas logits (Q, H, W) of each image (3, H, W), averaged over covering windows.

    ``window_batch_size`` <= 1 runs the simple one-window-at-a-time loop.
    """
    jobs = []  # (image index, window)
    canvases, counts = [], []
    for index, image in enumerate(images):
        height, width = image.shape[-2:]
        windows = window_grid(height, width, crop, stride)
        jobs.extend((index, window) for window in windows)
        canvases.append(image.new_zeros(num_queries, height, width, dtype=torch.float32))
        counts.append(coverage(height, width, windows, image.device))

    def accumulate(chunk, logits):
        for (index, (y1, y2, x1, x2)), window in zip(chunk, logits):
            canvases[index][:, y1:y2, x1:x2] += window.float()

    if window_batch_size <= 1:
        for job in jobs:
            index, (y1, y2, x1, x2) = job
            accumulate([job], window_logits(encode, images[index][None, :, y1:y2, x1:x2]))
    else:
        by_size = {}
        for job in jobs:
            _, (y1, y2, x1, x2) = job
            by_size.setdefault((y2 - y1, x2 - x1), []).append(job)
        for group in by_size.values():
            for start in range(0, len(group), window_batch_size):
                chunk = group[start:start + window_batch_size]
                crops = torch.stack([images[i][:, y1:y2, x1:x2] for i, (y1, y2, x1, x2) in chunk])
                accumulate(chunk, window_logits(encode, crops))
    return [canvas / count for canvas, count in zip(canvases, counts)]
