"""The dense CLIP backbone: CLIP's vision transformer running a method's forward program.

Why: the segmentor needs one module that turns windows into patch features; what happens
inside is the method's business (``sclip/models/methods``). ``CLIPDenseViT`` pairs the
``CLIPViT`` primitives with a ``Method``; without an explicit method it runs SCLIP's family
(``attention`` in the last ``num_modified_blocks`` blocks, optional residual/MLP), so the
SCLIP, ClearCLIP and NACLIP configs are a few keys each.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from .clip_vit import CLIPViT, Trunk, check_supported, qkv_heads, resize_positional_embedding
from .methods import LastBlockAttention, Method, TextSide, build_method

__all__ = ['CLIPDenseViT', 'check_supported', 'qkv_heads', 'resize_positional_embedding']


class CLIPDenseViT(nn.Module):
    """Patch features of an open_clip ViT under a method.

    Args:
        visual: ``open_clip`` ``VisionTransformer`` (its modules are used, not copied).
        attention, num_modified_blocks, last_block_residual, last_block_mlp: settings of the
            default ``attention`` method (SCLIP and its family).
        fused: fused scaled-dot-product attention where it is identical to the explicit form.
        method: another method, ``dict(type=name, **settings)`` or a ``Method``.
    """

    def __init__(self, visual: nn.Module, attention=None, num_modified_blocks: int = 1,
                 last_block_residual: bool = True, last_block_mlp: bool = True, fused: bool = True,
                 method: Union[dict, str, Method, None] = None):
        super().__init__()
        self.vit = CLIPViT(visual, fused)
        if method is None:
            method = LastBlockAttention(attention, num_modified_blocks, last_block_residual, last_block_mlp)
        elif not isinstance(method, Method):
            method = build_method(method)
        method.setup(self.vit)
        self.method = method

    @property
    def visual(self) -> nn.Module:
        return self.vit.visual

    @property
    def fused(self) -> bool:
        return self.vit.fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self.vit.fused = bool(value)

    @property
    def variant(self):
        """The attention variant of an attention method (for introspection and figures)."""
        return getattr(self.method, 'variant', None)

    @property
    def patch_size(self) -> Tuple[int, int]:
        return self.vit.patch_size

    @property
    def native_grid(self) -> Tuple[int, int]:
        return self.vit.native_grid

    @property
    def image_size(self) -> Tuple[int, int]:
        return self.vit.image_size

    @property
    def embed_dim(self) -> int:
        return self.vit.embed_dim

    def embed(self, images: Tensor):
        return self.vit.embed(images)

    def forward(self, images, text: Optional[TextSide] = None, shared: Optional[Dict] = None,
                key=None, signature: str = '', sources: Optional[List[Tensor]] = None) -> Tensor:
        """Windows (B, 3, H, W) -> patch features (B, gh, gw, D), not normalised.

        ``shared`` (a dict living as long as these windows, e.g. one loader batch of a sweep)
        with ``key`` (what identifies the windows: which images, which crops) lets several
        models on the same CLIP weights share CLIP's unmodified blocks (the ``Trunk``), and the
        whole output when their ``signature`` (method and text side) is equal too. ``sources``:
        the whole image of each window (``Trunk.sources``).
        """
        if shared is None or key is None:
            return self.method(Trunk(self.vit, images() if callable(images) else images, sources=sources), text)
        device = self.vit.visual.conv1.weight.device
        trunk_key = ('trunk', id(self.vit.visual), self.vit.fused, torch.is_autocast_enabled(device.type), key)
        trunk = shared.get(trunk_key)
        if trunk is None:
            trunk = shared[trunk_key] = Trunk(self.vit, images() if callable(images) else images, sources=sources)
        feature_key = ('features', trunk_key, signature)
        if feature_key not in shared:
            shared[feature_key] = self.method(trunk, text)
        return shared[feature_key]

    @torch.no_grad()
    def attention_maps(self, images: Tensor) -> Tensor:
        """The last block's attention weights (B, heads, N, N) under this method (for figures)."""
        return self.method.attention_maps(Trunk(self.vit, images))
