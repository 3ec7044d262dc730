"""Sliding-window inference as the official evaluations do it, batched or one by one.

Why: CLIP sees 224×224 inputs; larger images are covered by overlapping windows whose
patch logits are upsampled to the window, summed on a canvas and divided by the number of
windows covering each pixel. A window that would cross the border is shifted back inside
(no padding), and an axis shorter than the crop gets one window of its own length. Some
methods pad each window to a multiple of a size first (ClearCLIP: the patch size, ProxyCLIP:
56; zeros, centred) and crop the upsampled logits back.

The ``simple`` path runs windows one at a time (the official loop, kept for checking); the
``batched`` path stacks all same-sized windows of all images into chunks of at most
``window_batch_size`` and runs each chunk in one forward pass. Both then upsample and add
the windows to the canvas in the official row-major order, so they agree to float rounding
(exactly, when the model's per-window computation is batch-independent).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

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


def coverage(height: int, width: int, windows: Sequence[Window], device=None, dtype=torch.float32) -> Tensor:
    """How many windows cover each pixel, (1, H, W)."""
    count = torch.zeros(1, height, width, device=device, dtype=dtype)
    for y1, y2, x1, x2 in windows:
        count[:, y1:y2, x1:x2] += 1
    return count


def padding(height: int, width: int, multiple: int) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) zeros that bring a window to a multiple of ``multiple``, centred
    (the extra pixel of an odd amount goes right/bottom), as the official ``compute_padsize``."""
    def split(size: int) -> Tuple[int, int]:
        if multiple <= 0 or size % multiple == 0:
            return 0, 0
        total = multiple - size % multiple
        return total // 2, total - total // 2
    left, right = split(width)
    top, bottom = split(height)
    return left, right, top, bottom


def pad_windows(crops: Tensor, multiple: int) -> Tuple[Tensor, Tuple[int, int, int, int]]:
    pad = padding(crops.shape[-2], crops.shape[-1], multiple)
    return (F.pad(crops, pad) if any(pad) else crops), pad


def upsample_window(logits: Tensor, size: Tuple[int, int], pad: Tuple[int, int, int, int]) -> Tensor:
    """Patch logits (n, Q, gh, gw) -> (n, Q, h, w): bilinear to the (padded) window, padding cut off."""
    left, right, top, bottom = pad
    logits = F.interpolate(logits, size=(size[0] + top + bottom, size[1] + left + right), mode='bilinear',
                           align_corners=False)
    return logits[..., top:top + size[0], left:left + size[1]]


def window_logits(encode: Callable[[Tensor], Tensor], crops: Tensor, pad_multiple: int = 0) -> Tensor:
    """Per-window logits (n, Q, h, w) of crops (n, 3, h, w)."""
    padded, pad = pad_windows(crops, pad_multiple)
    return upsample_window(encode(padded), tuple(crops.shape[-2:]), pad)


def slide_inference(images: Sequence[Tensor], encode: Callable[..., Tensor], num_queries: int,
                    crop: Tuple[int, int], stride: Tuple[int, int], window_batch_size: int = 0,
                    pad_multiple: int = 0, keyed: bool = False,
                    upsample: Callable[[Tensor, Tuple[int, int], Tuple[int, int, int, int]], Tensor] = upsample_window
                    ) -> List[Tensor]:
    """Canvas logits (Q, H, W) of each image (3, H, W), averaged over covering windows.

    ``encode`` maps windows (n, 3, h, w) to patch logits (n, Q, gh, gw); with ``keyed`` it is
    called as ``encode(make_windows, key)``, ``make_windows()`` building the windows on demand and
    ``key`` naming the chunk (which windows of which images, and their padding), so callers can
    share work on the same chunk. ``window_batch_size``
    <= 1 runs the simple one-window-at-a-time loop. The canvas has the images' dtype when
    they are half precision (ClearCLIP's official fp16 input), else float32. ``upsample`` takes a
    window's patch scores (1, C, gh, gw) to its (Q, h, w) logits (default: ``upsample_window``;
    a method with several views or a text side with experts combines them at the window's size).
    """
    jobs: List[Tuple[int, Window]] = []
    canvases, counts = [], []
    for index, image in enumerate(images):
        height, width = image.shape[-2:]
        windows = window_grid(height, width, crop, stride)
        jobs.extend((index, window) for window in windows)
        dtype = image.dtype if image.dtype in (torch.float16, torch.bfloat16) else torch.float32
        canvases.append(image.new_zeros(num_queries, height, width, dtype=dtype))
        counts.append(coverage(height, width, windows, image.device, dtype))

    def crop_of(job) -> Tensor:
        index, (y1, y2, x1, x2) = job
        return images[index][:, y1:y2, x1:x2]

    grid_logits: Dict[int, Tuple[Tensor, Tuple[int, int, int, int]]] = {}
    if window_batch_size <= 1:
        groups = [[number] for number in range(len(jobs))]
    else:
        by_size: Dict[Tuple[int, int], List[int]] = {}
        for number, job in enumerate(jobs):
            by_size.setdefault(tuple(crop_of(job).shape[-2:]), []).append(number)
        groups = [group[start:start + window_batch_size] for group in by_size.values()
                  for start in range(0, len(group), window_batch_size)]
    for group in groups:
        height, width = crop_of(jobs[group[0]]).shape[-2:]
        pad = padding(height, width, pad_multiple)

        def windows(group=group) -> Tensor:
            return pad_windows(torch.stack([crop_of(jobs[number]) for number in group]), pad_multiple)[0]
        # keyed: the windows are built only if the caller has not computed this chunk already
        chunk_logits = encode(windows, (tuple(jobs[number] for number in group), pad)) if keyed else encode(windows())
        for number, logits in zip(group, chunk_logits):
            grid_logits[number] = (logits, pad)
    for number, (index, (y1, y2, x1, x2)) in enumerate(jobs):  # the official order
        logits, pad = grid_logits.pop(number)
        window = upsample(logits[None], (y2 - y1, x2 - x1), pad)[0]
        canvases[index][:, y1:y2, x1:x2] += window.to(canvases[index].dtype)
    return [canvas / count for canvas, count in zip(canvases, counts)]
