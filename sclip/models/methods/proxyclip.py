"""ProxyCLIP (Lan et al., ECCV 2024): a vision foundation model's patch correspondence as CLIP's
last-block attention.

With ``E`` the foundation model's patch features (B, C, I, J) of the window and ``v`` CLIP's
last-block values of the patches (upsampled bilinearly from CLIP's grid to I×J):

    S = cos(E)                                   (I·J × I·J)
    S = γ · (S - β · mean(S)),  S[S < 0] = -inf   (adaptive normalisation and masking)
    X = out_proj(softmax(S) · v)                  (no residual, no MLP, no CLS)

so the output lives on the foundation model's grid. ``mean(S)`` is per window (the official
code runs one window at a time).
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..clip_vit import Trunk
from .base import Method, TextSide, register_method


def proxy_attention(features: Tensor, beta: float, gamma: float, dtype, per_window: bool = True) -> Tensor:
    """(B, M, M) attention from foundation-model features (B, C, I, J); the masked similarity is
    cast to CLIP's dtype before the softmax, as officially. The similarity's mean is each
    window's (ProxyCLIP runs one window at a time) or, ``per_window=False``, the whole batch's
    (Trident runs an image's windows as one batch)."""
    unit = F.normalize(features.flatten(2, 3), dim=1)
    similarity = torch.einsum('bcm,bcn->bmn', unit, unit)
    mean = similarity.mean(dim=(1, 2), keepdim=True) if per_window else similarity.mean()
    similarity = (similarity - mean * beta) * gamma
    similarity[similarity < 0.0] = float('-inf')
    return similarity.to(dtype).softmax(dim=-1)


@register_method('proxyclip')
class ProxyCLIP(Method):
    """ProxyCLIP; the foundation model is ``model.vfm`` (attached by the segmentor as ``self.vfm``).

    Args:
        beta: shift of the similarity's mean before masking (official 1.2).
        gamma: scale of the shifted similarity (official 3.0).
    """
    needs_vfm = True

    def __init__(self, beta: float = 1.2, gamma: float = 3.0):
        super().__init__()
        self.beta, self.gamma = float(beta), float(gamma)
        self.vfm = None
        self.crop = None  # the configured window size, which MAE resizes its input to

    def vfm_features(self, trunk: Trunk) -> Tensor:
        from ..vfm import proxy_input
        key = ('vfm', id(self.vfm), self.crop)
        return trunk.memo(key, lambda: self.vfm(proxy_input(trunk.images, self.vfm, self.crop)))

    def values_and_attention(self, trunk: Trunk):
        """CLIP's last-block values resized to the foundation model's grid (B, heads, I·J, d),
        the proxy attention (B, I·J, I·J) and the grid (I, J)."""
        vit, depth, grid = trunk.vit, trunk.vit.depth, trunk.grid
        features = self.vfm_features(trunk)
        rows, cols = features.shape[-2:]
        x = trunk.tokens(depth - 1)
        _, _, v = vit.qkv(depth, vit.block(depth).ln_1(x))
        batch, heads, _, dim = v.shape
        v = v[:, :, 1:].reshape(batch * heads, grid[0], grid[1], dim).permute(0, 3, 1, 2)
        v = F.interpolate(v, size=(rows, cols), mode='bilinear', align_corners=False)
        v = v.permute(0, 2, 3, 1).reshape(batch, heads, rows * cols, dim)
        attention = proxy_attention(features, self.beta, self.gamma, v.dtype)
        if torch.isnan(attention).any():  # official too: a flat window masks every similarity
            logging.getLogger('sclip').warning(
                f'{type(self).__name__}: the proxy attention of a window masked every token (a flat image '
                'region); its logits are NaN, as in the official code')
        return v, attention, (rows, cols)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        vit = trunk.vit
        v, attention, (rows, cols) = self.values_and_attention(trunk)
        out = vit.attention_output(vit.depth, attention[:, None] @ v)
        return vit.project(out).reshape(v.shape[0], rows, cols, -1)
