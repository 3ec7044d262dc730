"""What every vision foundation model (VFM) looks like to ProxyCLIP.

Why: ProxyCLIP only needs dense patch features of a label-free ViT, on its own patch
grid, from an ImageNet-normalised image; this interface hides which family gives them.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch.nn as nn
from torch import Tensor

from .specs import VFMSpec


def as_hw(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """An int or an (h, w) pair as (h, w)."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


class VFM(nn.Module):
    """Dense features of a VFM: ``forward(images) -> (B, C, I, J)``.

    Attributes:
        name: the ``model.vfm.type`` it was built as.
        spec: its architecture (see specs.py).
        patch_size: pixels per feature cell of the input the VFM sees.
        embed_dim: C, the number of feature channels.
        resizes_input: whether ProxyCLIP resizes the crop before this VFM (SAM, MAE).
        fused: use PyTorch's fused scaled-dot-product attention instead of the explicit
            ``softmax(q k^T * scale) v`` of the official code (equal up to rounding).
    """

    resizes_input = False

    def __init__(self, spec: VFMSpec, fused: bool = False):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.patch_size = spec.patch_size
        self.fused = bool(fused)

    @property
    def embed_dim(self) -> int:
        raise NotImplementedError

    def input_size(self, crop_hw: Union[int, Sequence[int]]) -> Tuple[int, int]:
        """The (h, w) the VFM's input has for a sliding-window crop of ``crop_hw``.

        DINO and DINOv2 see the crop as it is; MAE sees it resized to (crop, crop) (the
        configured ``slide_crop``); SAM always sees 1024x1024.
        """
        return as_hw(crop_hw)

    def feature_grid(self, input_hw: Union[int, Sequence[int]]) -> Tuple[int, int]:
        """(I, J) of the features for an input of ``input_hw`` pixels."""
        height, width = as_hw(input_hw)
        return height // self.patch_size, width // self.patch_size

    def extra_repr(self) -> str:
        return f'name={self.name}, patch_size={self.patch_size}, fused={self.fused}'
