"""SC-CLIP (Bai et al., "Self-Calibrated CLIP for Training-Free Open-Vocabulary Segmentation").

With ``F_i`` CLIP's output of block ``i + 1`` (the official code's ``feats_list[i]``, 0-based)
and ``X`` the patch tokens after block L-1:

1. outlier repair: patches whose local outlier factor (LOF, 30 neighbours, squared Euclidean
   distance) is above the 95th percentile are replaced by the mean of their non-outlier
   8-neighbours; the CLS token is set aside (``c``) and dropped from the sequence;
2. ``S = cos(F_pre)`` (F_pre repaired the same way), ``X = norm(S ⊙ [S ≥ β]) · X``;
3. last block, no residual, no MLP: ``X = out_proj(A·v) + r·c`` with
   ``A = (softmax(3·(S - mean S), masked where < 0) + softmax(k·kᵀ/√d)) / 2``;
4. ``T = cos(F_post) ⊙ [≥ β]``, ``X = norm(T) · X``;
5. multi-level fusion: ``Z = Σ_{i=start}^{end-1} F_i``; the last block again on Z's patches
   with the same ``A`` construction, ``+ r·Z_cls``, aggregated by ``T``; ``X = X + Z``.

Computed per window whatever the batch (the official code runs one window at a time: its
``torch.mean(mid_simi)`` and LOF percentile are over one window). Quirks of the official
code kept on purpose are marked "official:".
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from .base import Method, TextSide, register_method


def squared_distances(x: Tensor, max_elements: int = 2 ** 25) -> Tensor:
    """(B, n, n) squared Euclidean distances, computed as ``‖x_i - x_j‖₂²`` (norm of the
    difference, then square, as the official LOF does), a few rows of one window at a time so
    the (rows, n, C) differences stay under ``max_elements``."""
    n, channels = x.shape[1], x.shape[2]
    rows = max(1, max_elements // (n * channels))
    return torch.stack([
        torch.cat([torch.norm(window[start:start + rows, None] - window[None], dim=-1, p=2) ** 2
                   for start in range(0, n, rows)])
        for window in x])


def lof_outliers(x: Tensor, n_neighbors: int = 30, contamination: float = 0.05) -> Tensor:
    """Boolean (B, n): tokens whose local outlier factor exceeds the ``1 - contamination`` quantile.

    official: the reachability distance uses the k-distance of the point itself (not of its
    neighbour), and the local reachability density is ``k / mean reach`` (the constant cancels
    in the ratios). Windows with fewer than ``n_neighbors + 1`` patches (the official code fails
    on them) use every other patch as a neighbour.
    """
    k = min(n_neighbors, x.shape[1] - 1)
    distances = squared_distances(x)
    knn_distances, knn_indices = torch.topk(distances, k=k + 1, largest=False)
    knn_distances, knn_indices = knn_distances[..., 1:], knn_indices[..., 1:]
    k_distances = knn_distances[..., -1:].expand_as(knn_distances)
    reach = torch.max(knn_distances, k_distances)
    density = n_neighbors / torch.nan_to_num(reach.mean(dim=-1), nan=1e-6)
    neighbour_density = torch.gather(density[:, None, :].expand(-1, x.shape[1], -1), 2, knn_indices)
    scores = (neighbour_density / density[..., None]).mean(dim=-1)
    threshold = torch.quantile(scores.float(), 1 - contamination, dim=-1, keepdim=True)
    return scores > threshold


def outlier_grid(outliers: Tensor, grid: Tuple[int, int]) -> Tensor:
    """(B, n) flat outlier flags -> (B, rows, cols) positions, as the official code places them.

    official: a flat index ``f`` goes to ``(f // rows, f % rows)`` (it divides by the grid's
    first side for both). That is the row-major position on square grids, which every
    official configuration produces; on a non-square grid the official position is kept when
    it lies inside the grid and the row-major one used where the official code would fail
    (row past the last row on wide grids, column past the last column on tall ones).
    """
    rows, cols = grid
    batch, flat = torch.nonzero(outliers, as_tuple=True)
    row, col = flat // rows, flat % rows
    outside = (row >= rows) | (col >= cols)
    row = torch.where(outside, flat // cols, row)
    col = torch.where(outside, flat % cols, col)
    mask = torch.zeros(outliers.shape[0], rows, cols, dtype=torch.bool, device=outliers.device)
    mask[batch, row, col] = True
    return mask


def replace_by_neighbour_mean(feature_map: Tensor, outliers: Tensor, keep_isolated: bool = True) -> Tensor:
    """Outlier positions (B, H, W) of ``feature_map`` (B, C, H, W) take the mean of their
    non-outlier 8-neighbours (zero padding is not a neighbour); without any, they stay
    (SC-CLIP) or, with ``keep_isolated=False``, become zero (SFP: the empty mean is 0 / 1)."""
    channels, dtype = feature_map.shape[1], feature_map.dtype
    kernel = torch.ones(channels, 1, 3, 3, device=feature_map.device, dtype=dtype)
    kernel[:, 0, 1, 1] = 0
    keep = (~outliers).to(dtype)[:, None]
    neighbour_sum = F.conv2d(F.pad(feature_map * keep, (1, 1, 1, 1)), kernel, groups=channels)
    valid = F.conv2d(F.pad(keep, (1, 1, 1, 1)), kernel[:1])
    safe = valid.clone()
    safe[safe == 0] = 1
    update = outliers[:, None].to(dtype)
    if keep_isolated:
        update = update * (valid > 0).to(dtype)
    return feature_map * (1 - update) + (neighbour_sum / safe) * update


def repair_tokens(tokens: Tensor, outliers: Tensor, grid: Tuple[int, int], keep_isolated: bool = True) -> Tensor:
    """Patch tokens (B, n, C) with their outliers (B, rows, cols) replaced by neighbour means."""
    batch, n, channels = tokens.shape
    feature_map = tokens.transpose(1, 2).reshape(batch, channels, *grid)
    repaired = replace_by_neighbour_mean(feature_map, outliers, keep_isolated)
    return repaired.reshape(batch, channels, n).transpose(1, 2)


def cosine_similarity(tokens: Tensor) -> Tensor:
    """(B, n, n) cosine similarity of patch tokens (official: ``f / f.norm()``, no epsilon)."""
    unit = tokens / tokens.norm(dim=-1, keepdim=True)
    return unit @ unit.transpose(1, 2)


def aggregate(tokens: Tensor, similarity: Tensor) -> Tensor:
    """Tokens averaged with row-normalised ``similarity`` weights (official: ``+ 1e-6``)."""
    return similarity / (similarity.sum(dim=-1, keepdim=True) + 1e-6) @ tokens


def thresholded(similarity: Tensor, beta: float) -> Tensor:
    out = similarity.clone()
    out[out < beta] = 0.0
    return out


@register_method('scclip')
class SCCLIP(Method):
    """SC-CLIP. Indices follow the official code: ``F_i`` is the output of block ``i + 1``.

    Args:
        pre_adjust_idx: ``F`` whose similarity guides the last block's attention and the first
            aggregation (official 8).
        post_adjust_idx: ``F`` whose similarity aggregates the outputs (official 3).
        multi_start_idx, multi_end_idx: ``F_start .. F_{end-1}`` are fused (official 3, 10).
        res_cls: weight of the CLS token added to every output token (official 0.3).
        beta: similarities below it are dropped from the aggregations (official 0.4).
        attention_gain: the official ``* 3.0`` on the centred similarity in the attention.
        lof_neighbors, lof_contamination: the outlier detector (official 30, 0.05).
        repair_outliers, guided_attention, aggregate, multi_level: ablation switches (all on in
            the paper's method): off removes, respectively, step 1, the similarity term of the
            attention (A = softmax(k·kᵀ/√d)), the two aggregations (steps 2, 4 and in 5), and step 5.
    """

    def __init__(self, pre_adjust_idx: int = 8, post_adjust_idx: int = 3, multi_start_idx: int = 3,
                 multi_end_idx: int = 10, res_cls: float = 0.3, beta: float = 0.4,
                 attention_gain: float = 3.0, lof_neighbors: int = 30, lof_contamination: float = 0.05,
                 repair_outliers: bool = True, guided_attention: bool = True, aggregate: bool = True,
                 multi_level: bool = True):
        super().__init__()
        self.pre_adjust_idx, self.post_adjust_idx = int(pre_adjust_idx), int(post_adjust_idx)
        self.multi_start_idx, self.multi_end_idx = int(multi_start_idx), int(multi_end_idx)
        self.res_cls, self.beta, self.attention_gain = float(res_cls), float(beta), float(attention_gain)
        self.lof_neighbors, self.lof_contamination = int(lof_neighbors), float(lof_contamination)
        if self.lof_neighbors < 1 or not 0 < self.lof_contamination < 1:
            raise SCLIPError(f'model.method: lof_neighbors={lof_neighbors} must be >= 1 and '
                             f'lof_contamination={lof_contamination} between 0 and 1 (official 30, 0.05).')
        self.repair_outliers, self.guided_attention = bool(repair_outliers), bool(guided_attention)
        self.aggregate, self.multi_level = bool(aggregate), bool(multi_level)

    def setup(self, vit: CLIPViT) -> None:
        last = vit.depth - 2  # F_{L-2} is the penultimate block's output
        for key in ('pre_adjust_idx', 'post_adjust_idx', 'multi_start_idx'):
            if not 0 <= getattr(self, key) <= last:
                raise SCLIPError(f'model.method.{key}={getattr(self, key)} must index an intermediate '
                                 f'block output, 0 to {last} (F_i is the output of block i + 1).')
        if not self.multi_start_idx < self.multi_end_idx <= last + 1:
            raise SCLIPError(f'model.method.multi_end_idx={self.multi_end_idx} must be in '
                             f'{self.multi_start_idx + 1}..{last + 1} (fused: F_start .. F_(end-1)).')

    def features(self, trunk: Trunk, index: int) -> Tensor:
        """``F_index``: the output of block ``index + 1``."""
        return trunk.tokens(index + 1)

    def last_block(self, trunk: Trunk, tokens: Tensor, guide: Tensor) -> Tensor:
        """The last block's attention on ``tokens`` (no CLS), guided by the similarity ``guide``."""
        vit, depth = trunk.vit, trunk.vit.depth
        q, k, v = vit.qkv(depth, vit.block(depth).ln_1(tokens))
        weights = (k @ k.transpose(-2, -1) * k.shape[-1] ** -0.5).softmax(dim=-1)
        if self.guided_attention:
            centred = (guide - guide.mean(dim=(1, 2), keepdim=True)) * self.attention_gain
            centred[centred < 0.0] = float('-inf')
            weights = (centred.softmax(dim=-1)[:, None] + weights) / 2
        return vit.attention_output(depth, weights @ v)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        vit, grid = trunk.vit, trunk.grid
        penultimate = trunk.tokens(vit.depth - 1)
        cls, x = penultimate[:, :1], penultimate[:, 1:]
        guide_tokens = self.features(trunk, self.pre_adjust_idx)[:, 1:]
        if self.repair_outliers:
            outliers = outlier_grid(lof_outliers(x, self.lof_neighbors, self.lof_contamination), grid)
            x = repair_tokens(x, outliers, grid)
            guide_tokens = repair_tokens(guide_tokens, outliers, grid)
        guide = cosine_similarity(guide_tokens)
        if self.aggregate:
            x = aggregate(x, thresholded(guide, self.beta))
        x = self.last_block(trunk, x, guide) + self.res_cls * cls
        post = thresholded(cosine_similarity(self.features(trunk, self.post_adjust_idx)[:, 1:]), self.beta)
        if self.aggregate:
            x = aggregate(x, post)
        if self.multi_level:
            fused = torch.zeros_like(penultimate)
            for index in range(self.multi_start_idx, self.multi_end_idx):
                fused = fused + self.features(trunk, index)
            fused_out = self.last_block(trunk, fused[:, 1:], guide) + self.res_cls * fused[:, :1]
            x = x + (aggregate(fused_out, post) if self.aggregate else fused_out)
        features = vit.project(x)
        return features.reshape(features.shape[0], grid[0], grid[1], -1)
