"""The VFM's input, made from the CLIP-normalised crop exactly as ProxyCLIP makes it.

Why: ProxyCLIP's ``forward_feature`` gives the VFM ``self.norm(self.unnorm(img))``: the
crop, normalised for CLIP, un-normalised (``UnNormalize``: a clone, then ``x * std + mean``
per channel in place) and normalised again with ImageNet's statistics (torchvision's
``Normalize``: ``(x - mean) / std``). It then casts to fp16 (``.half()``, the VFM's dtype)
and, for SAM and MAE only, resizes bilinearly (``align_corners=False``) in that dtype to
1024x1024 (SAM) or to ``slide_crop`` x ``slide_crop`` (MAE). DINO and DINOv2 see the crop
at its own size.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.functional import normalize

from .base import VFM, as_hw

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def unnormalise(images: Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> Tensor:
    """ProxyCLIP's ``UnNormalize`` on a batch: a copy with ``x * std + mean`` per channel."""
    out = images.clone()
    for channel, (m, s) in enumerate(zip(mean, std)):
        out[:, channel].mul_(s).add_(m)
    return out


def proxy_input(images_clip_normalised: Tensor, vfm: VFM, crop: Union[int, Sequence[int]],
                dtype: Optional[torch.dtype] = None) -> Tensor:
    """The VFM's input (B, 3, h, w) for CLIP-normalised crops (B, 3, H, W).

    Args:
        images_clip_normalised: the crops as CLIP sees them (OpenAI mean/std).
        vfm: the model the input is for (decides the resize, see ``vfm.input_size``).
        crop: the configured sliding-window crop (``slide_crop``), an int or (h, w).
        dtype: the cast before the resize; by default the VFM's parameter dtype (ProxyCLIP
            runs the VFM in fp16 and casts the input with ``.half()``).
    """
    if images_clip_normalised.ndim != 4 or images_clip_normalised.shape[1] != 3:
        raise ValueError(f'expected images (B, 3, H, W), got {tuple(images_clip_normalised.shape)}')
    images = normalize(unnormalise(images_clip_normalised), list(IMAGENET_MEAN), list(IMAGENET_STD))
    if dtype is None:
        dtype = next(vfm.parameters()).dtype
    images = images.to(dtype)
    if vfm.resizes_input:
        images = F.interpolate(images, size=vfm.input_size(as_hw(crop)), mode='bilinear', align_corners=False)
    return images
