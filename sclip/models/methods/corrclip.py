"""CorrCLIP (Zhang et al., ICCV 2025): CLIP's patch correlations rebuilt from DINO and region masks.

Per window (zdk258/CorrCLIP ``CorrCLIPv1/open_clip/transformer.py`` ``VisionTransformer.forward``),
with ``E`` the unit-norm ``q + k`` of DINO's last block on its grid (I×J = M tokens) and the
window's class-agnostic region masks (sclip/models/region_masks.py) resized to that grid:

* mask merging: with more than two mask values, each region but the first (smallest value)
  gets its mean DINO feature; DBSCAN (precomputed distance ``max(S) - S`` of their cosine
  similarities, ``eps`` 0.2, one sample) clusters them and a cluster's regions become one
  (value ``10000 + cluster``: the padding's value, as officially);
* value and scope: ``S = E·Eᵀ``, kept inside each region (the first region's tokens keep their
  pairs with ``S > mean(S)``), the rest -inf; ``A = softmax(τ · S)`` (τ = 4), one map for all heads;
* main and spatial branches: CLIP's last-block values of its input (main) and of the mean of
  the ``num_spatial`` block outputs before it (spatial: blocks 6-10 of 12), resized bilinearly to
  DINO's grid, ``out_proj(A · v)``; no residual, no MLP;
* semantic branch: one copy of the CLS embedding per region (mask class token) runs through
  every block attending to CLS and its region's patches only (the patches never see it); each
  token of DINO's grid gets its region's output;
* ``ln_post`` on each, ``main + α · spatial + β · semantic`` (α 1, β 0.5), ``proj``.

The segmentor then gives every region (at the image file's size) its majority label.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import Trunk
from ..region_masks import PAD_VALUE
from .base import Method, TextSide, register_method

# official: blocks feeding the spatial branch, by CLIP depth (else depth - 4)
NUM_SPATIAL = {12: 5, 24: 12, 32: 28}


def dbscan(distances: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """scikit-learn's ``DBSCAN(metric='precomputed')`` labels: neighbours are ``d <= eps`` (row
    by row), core points have at least ``min_samples`` of them, clusters grow from the first
    unlabelled core point by a depth-first stack (``dbscan_inner``); noise is -1."""
    distances = np.asarray(distances, dtype=np.float64)
    neighbours = [np.flatnonzero(row <= eps) for row in distances]
    core = np.array([len(found) >= min_samples for found in neighbours])
    labels = np.full(len(distances), -1, dtype=np.int64)
    label = 0
    for start in range(len(distances)):
        if labels[start] != -1 or not core[start]:
            continue
        stack, i = [], start
        while True:
            if labels[i] == -1:
                labels[i] = label
                if core[i]:
                    stack.extend(j for j in neighbours[i] if labels[j] == -1)
            if not stack:
                break
            i = stack.pop()
        label += 1
    return labels


def merge_regions(regions: Tensor, features: Tensor, eps: float, min_samples: int) -> Tensor:
    """Regions (I, J) int whose mean DINO features (``features`` (I, J, C), unit norm) are close
    merged into one (``PAD_VALUE + cluster``); the first region is left as it is."""
    values = torch.unique(regions)
    if values.shape[0] <= 2:
        return regions
    masks = [value == regions for value in values]
    means = F.normalize(torch.stack([features[mask].mean(dim=0) for mask in masks]), dim=1)[1:]
    similarity = means @ means.T
    clusters = dbscan((similarity.max() - similarity).float().cpu().numpy(), eps, min_samples)
    merged = regions.clone()
    for index, cluster in enumerate(clusters.tolist(), start=1):
        if cluster != -1:
            merged[masks[index]] = cluster + PAD_VALUE
    return merged


def scope_attention(similarity: Tensor, regions: Tensor, tau: float) -> Tensor:
    """``softmax(τ · S)`` over each token's region: (M, M) from the similarity (M, M) and the
    tokens' regions (M,); tokens of the first region keep the pairs with ``S > mean(S)``."""
    first = regions == regions.min()
    allowed = (regions[:, None] == regions[None, :]) & ~first[:, None]
    allowed |= (first[:, None] | first[None, :]) & (similarity > similarity.mean())
    return (similarity.masked_fill(~allowed, float('-inf')) * tau).softmax(dim=-1)


def nearest(mask: Tensor, size: Tuple[int, int]) -> Tensor:
    """An int map resized as the official ``F.interpolate(m.float(), size, mode='nearest').int()``."""
    return F.interpolate(mask[None, None].float(), size=size, mode='nearest')[0, 0].int()


@register_method('corrclip')
class CorrCLIP(Method):
    """CorrCLIP; the DINO model is ``model.vfm`` and the region masks ``model.region_masks``
    (the segmentor sets ``window_masks`` (B, H, W) for each chunk of windows).

    Args:
        alpha / beta: weights of the spatial / semantic branch (official 1.0 / 0.5).
        tau: temperature of the rebuilt correlation (official 4).
        eps / min_samples: DBSCAN's for merging regions (official 0.2 / 1).
        num_spatial: how many block outputs the spatial branch averages, those before the last
            block's input (None: the official 5 / 12 / 28 for 12 / 24 / 32 blocks, else depth - 4).
        merge_regions: merge regions of similar DINO features (official: always).
    """
    needs_vfm = True
    needs_region_masks = True

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, tau: float = 4.0, eps: float = 0.2,
                 min_samples: int = 1, num_spatial: Optional[int] = None, merge_regions: bool = True):
        super().__init__()
        self.alpha, self.beta, self.tau, self.eps = float(alpha), float(beta), float(tau), float(eps)
        self.min_samples = int(min_samples)
        self.num_spatial = num_spatial
        self.merge = bool(merge_regions)
        self.vfm = None
        self.crop = None
        self.window_masks: Optional[Tensor] = None

    def setup(self, vit) -> None:
        depth = vit.depth
        if self.num_spatial is None:
            self.num_spatial = NUM_SPATIAL.get(depth, depth - 4)
        self.num_spatial = int(self.num_spatial)
        if not 1 <= self.num_spatial <= depth - 2:
            raise SCLIPError(f'model.method.num_spatial={self.num_spatial} must be within 1..{depth - 2} '
                             f'(the outputs of blocks 1..{depth - 2} of this {depth}-block CLIP; official: '
                             'depth - 4 below 12 blocks, so CorrCLIP needs at least 5).')

    def dino_features(self, trunk: Trunk) -> Tensor:
        """Unit-norm ``q + k`` of DINO's last block, (B, I, J, C)."""
        from ..vfm import proxy_input

        def compute():
            features = self.vfm.last_qk(proxy_input(trunk.images, self.vfm, self.crop)).permute(0, 2, 3, 1)
            return F.normalize(features, dim=-1)
        return trunk.memo(('corrclip_dino', id(self.vfm), self.crop), compute)

    def spatial_tokens(self, trunk: Trunk) -> Tensor:
        """The mean of the ``num_spatial`` block outputs before the last block's input (blocks
        6-10 of 12), (B, N, C)."""
        last = trunk.vit.depth - 1  # the last block's input is the main branch, not part of this mean
        blocks = range(last - self.num_spatial, last)
        return trunk.memo(('corrclip_spatial', self.num_spatial),
                          lambda: torch.stack([trunk.tokens(i) for i in blocks]).mean(dim=0))

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        masks = self.window_masks
        if masks is None or masks.shape[0] != trunk.batch_size or masks.shape[-2:] != trunk.images.shape[-2:]:
            raise SCLIPError('CorrCLIP needs region masks for its windows; run it through SCLIPSegmentor '
                             'with model.region_masks set.')
        features = self.dino_features(trunk)
        spatial = self.spatial_tokens(trunk)
        return torch.stack([self.window(trunk, b, features[b], spatial[b], masks[b])
                            for b in range(trunk.batch_size)])

    def window(self, trunk: Trunk, b: int, features: Tensor, spatial: Tensor, mask: Tensor) -> Tensor:
        """One window's features (I, J, D)."""
        vit, grid = trunk.vit, trunk.grid
        rows, cols, channels = features.shape
        unit = features.reshape(rows * cols, channels)
        similarity = unit @ unit.T
        regions = nearest(mask, (rows, cols))
        if self.merge:
            regions = merge_regions(regions, features, self.eps, self.min_samples)
        attention = scope_attention(similarity, regions.flatten(), self.tau)

        token_regions = nearest(regions, grid)
        region_masks = torch.unique(token_regions)[:, None, None] == token_regions  # (R, gh, gw)
        region_tokens = self.region_tokens(trunk, b, region_masks.flatten(1))
        expand = F.interpolate(region_masks[:, None].to(region_tokens.dtype), size=(rows, cols),
                               mode='nearest').flatten(1)  # (R, M): each token's region
        semantic = expand.T @ region_tokens  # (M, C)

        depth = vit.depth
        block = vit.block(depth)
        width = vit.width
        weight = block.attn.in_proj_weight[2 * width:]
        bias = block.attn.in_proj_bias[2 * width:]
        branches = []
        for tokens in (trunk.tokens(depth - 1)[b], spatial):
            v = F.linear(block.ln_1(tokens), weight, bias)[1:]
            v = v.T.reshape(1, width, grid[0], grid[1])
            v = F.interpolate(v, size=(rows, cols), mode='bilinear', align_corners=False)
            branches.append(block.attn.out_proj(attention @ v.flatten(2)[0].T))
        main, spatial_branch = branches
        ln_post = vit.visual.ln_post
        out = ln_post(main) + ln_post(spatial_branch) * self.alpha + ln_post(semantic) * self.beta
        return (out @ vit.visual.proj).reshape(rows, cols, -1)

    def region_tokens(self, trunk: Trunk, b: int, region_masks: Tensor) -> Tensor:
        """The mask class tokens after every block, (R, C): CLS embeddings attending, in every
        block, to CLS and their region's patches (``region_masks`` (R, gh·gw) bool) of CLIP's
        own tokens."""
        vit = trunk.vit
        x = trunk.tokens(0)[b]
        tokens = x[:1].expand(region_masks.shape[0], -1)
        allowed = torch.cat([region_masks.new_ones(region_masks.shape[0], 1), region_masks], dim=1)
        heads = vit.num_heads
        for index in range(1, vit.depth + 1):
            block = vit.block(index)
            _, k, v = trunk.qkv(index, trunk.tokens(index - 1))
            k, v = k[b], v[b]  # (heads, N, d)
            q = F.linear(block.ln_1(tokens), block.attn.in_proj_weight[:vit.width], block.attn.in_proj_bias[:vit.width])
            q = q.reshape(q.shape[0], heads, -1).transpose(0, 1)  # (heads, R, d)
            if vit.fused:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            else:
                scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
                out = scores.masked_fill(~allowed, float('-inf')).softmax(dim=-1) @ v
            tokens = tokens + block.ls_1(vit.attention_output(index, out[None])[0])
            tokens = tokens + vit.mlp(index, tokens)
        return tokens
