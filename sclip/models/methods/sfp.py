"""SFP (Jin et al., "Feature Purification Matters", ICCV 2025; Kimsure/SFP, folder SFP_ICCV).

With ``F_i`` CLIP's output of block ``i + 1`` (the official ``hidden_states[i]``, 0-based) and
``X`` the patch tokens after block L-1 (its CLS token ``c`` set aside):

1. outlier purification (``purify``): up to 10 (SOM, L2) or 5 % (LOF) patches of ``X`` are
   outliers and take the mean of their non-outlier 8-neighbours (an outlier with none becomes
   zero). ``pm`` picks the detector:
   - ``SOM``: block L-1's attention, its CLS row scaled by ``res_cls * 5`` in every head, then
     averaged over heads; patches whose CLS attention exceeds their self-attention, the 10
     largest of them;
   - ``L2``: the 10 patches of largest norm;
   - ``LOF``: SC-CLIP's local outlier factor (30 neighbours, above the 95th percentile);
2. ``P = cos(F_pre) ⊙ [≥ 0.4]`` (F_pre repaired the same way), ``X = norm(P) · X``;
3. last block, no residual, no MLP: ``X = out_proj(A·v) + r·c`` with
   ``A = (softmax(k·kᵀ/√d) + softmax(q·qᵀ/√d) + softmax(3·(P - mean P), masked where < 0)) / 3``;
4. ``T = cos(F_post) ⊙ [≥ 0.4]``, ``X = norm(T) · X``;
5. cross-layer fusion: ``Z = Σ_{i=cross_s}^{cross_e-1} F_i``; the last block's values of Z's
   patches weighted by the similarity term of ``A`` alone, ``+ r·Z_cls``, aggregated by ``T``;
   ``X = X + that``.

Shares SC-CLIP's pieces (LOF, outlier placement, neighbour repair, aggregation). Computed per
window whatever the batch (the official code runs one window at a time: its means, top-10 and
LOF percentile are over one window). Quirks of the official code kept on purpose are marked
"official:"; where it would crash, the natural generalisation is computed and said so.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from .base import Method, TextSide, register_method
from .scclip import aggregate, cosine_similarity, lof_outliers, outlier_grid, repair_tokens, thresholded

DETECTORS = ('SOM', 'L2', 'LOF')
TOP_OUTLIERS = 10     # official: order_idx[:10] (SOM), norm_order[:10] (L2)
CLS_ATTENTION_GAIN = 5.0  # official: VisionTransformer.res_scale; the CLS row is scaled by res_cls * 5
SIMILARITY_GAIN = 3.0  # official: (sim - mean) * 3.0 in custom_attn and sinkhorn_attn


def top_outliers(scores: Tensor, candidates: Optional[Tensor] = None, count: int = TOP_OUTLIERS) -> Tensor:
    """Boolean (B, n): the ``count`` largest ``scores`` of each window among ``candidates``
    (all patches when None); fewer when fewer are candidates."""
    if candidates is not None:
        scores = scores.masked_fill(~candidates, float('-inf'))
    values, indices = scores.topk(min(count, scores.shape[-1]), dim=-1)
    flags = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    return flags.scatter(1, indices, torch.isfinite(values))


def som_outliers(attention: Tensor, res_cls: float) -> Tensor:
    """SOM: patches attended by CLS more than by themselves, the 10 strongest.

    official: the CLS row of every head is multiplied in place by ``res_cls * res_scale``
    before the head average (so ``res_cls`` changes which patches are outliers)."""
    scaled = attention.clone()
    scaled[:, :, 0, 1:] *= res_cls * CLS_ATTENTION_GAIN
    mean = scaled.mean(dim=1)
    cls_to_patch = mean[:, 0, 1:]
    patch_self = mean[:, 1:, 1:].diagonal(dim1=-2, dim2=-1)
    return top_outliers(cls_to_patch, candidates=cls_to_patch > patch_self)


@register_method('sfp')
class SFP(Method):
    """SFP. Indices follow the official code: ``F_i`` is the output of block ``i + 1``.

    Args:
        pm: outlier detector, ``'SOM'`` (official default), ``'L2'`` or ``'LOF'``.
        purify: repair the outliers (official True; False: no repair, where the official code
            stops with a NameError).
        cross_s, cross_e: ``F_cross_s .. F_(cross_e - 1)`` are fused (official 3, 10; the official
            forward reads ``hidden_states[3:10]`` whatever the config says).
        res_cls: weight of the CLS token added to the outputs, and of the SOM's CLS row (official 0.3).
        pre_adjust_idx, post_adjust_idx: ``F`` whose similarity guides the attention and the first
            aggregation / aggregates the outputs (official, hard-coded: 8 and 3).
        beta: similarities below it are dropped (official, hard-coded: 0.4).
    """

    def __init__(self, pm: str = 'SOM', purify: bool = True, cross_s: int = 3, cross_e: int = 10,
                 res_cls: float = 0.3, pre_adjust_idx: int = 8, post_adjust_idx: int = 3, beta: float = 0.4):
        super().__init__()
        if pm not in DETECTORS:
            raise SCLIPError(f'model.method.pm={pm!r} is unknown; SFP\'s outlier detectors are '
                             f'{", ".join(DETECTORS)} (official default SOM).')
        self.pm, self.purify = pm, bool(purify)
        self.cross_s, self.cross_e = int(cross_s), int(cross_e)
        if self.cross_s >= self.cross_e:
            raise SCLIPError(f'model.method.cross_s={cross_s} must be below cross_e={cross_e} '
                             '(fused: F_cross_s .. F_(cross_e - 1); official 3, 10).')
        self.res_cls, self.beta = float(res_cls), float(beta)
        self.pre_adjust_idx, self.post_adjust_idx = int(pre_adjust_idx), int(post_adjust_idx)

    def setup(self, vit: CLIPViT) -> None:
        last = vit.depth - 2  # F_{L-2} is the penultimate block's output
        for key in ('pre_adjust_idx', 'post_adjust_idx', 'cross_s'):
            if not 0 <= getattr(self, key) <= last:
                raise SCLIPError(f'model.method.{key}={getattr(self, key)} must index an intermediate '
                                 f'block output, 0 to {last} (F_i is the output of block i + 1).')
        if not self.cross_e <= last + 1:
            raise SCLIPError(f'model.method.cross_e={self.cross_e} must be in {self.cross_s + 1}..{last + 1} '
                             '(fused: F_cross_s .. F_(cross_e - 1)).')

    def outliers(self, trunk: Trunk, patches: Tensor) -> Tensor:
        """(B, n) outlier flags of the penultimate block's patch tokens."""
        if self.pm == 'SOM':
            return som_outliers(trunk.attention(trunk.vit.depth - 1), self.res_cls)
        if self.pm == 'L2':
            return top_outliers(patches.norm(dim=-1))
        return lof_outliers(patches)

    @staticmethod
    def similarity_weights(similarity: Tensor) -> Tensor:
        """``softmax(3·(P - mean P))`` with negative entries masked, one window's mean, (B, 1, n, n)."""
        centred = (similarity - similarity.mean(dim=(1, 2), keepdim=True)) * SIMILARITY_GAIN
        centred[centred < 0.0] = float('-inf')
        return centred.softmax(dim=-1)[:, None]

    def last_block(self, trunk: Trunk, tokens: Tensor, similarity: Tensor) -> Tensor:
        """The last block's attention (k·kᵀ, q·qᵀ and similarity terms averaged) on ``tokens``."""
        vit, depth = trunk.vit, trunk.vit.depth
        q, k, v = vit.qkv(depth, vit.block(depth).ln_1(tokens))
        scale = k.shape[-1] ** -0.5
        weights = (k @ k.transpose(-2, -1) * scale).softmax(dim=-1) + (q @ q.transpose(-2, -1) * scale).softmax(dim=-1)
        weights = (weights + self.similarity_weights(similarity)) / 3
        return vit.attention_output(depth, weights @ v)

    def similarity_block(self, trunk: Trunk, tokens: Tensor, similarity: Tensor) -> Tensor:
        """The last block's values weighted by the similarity term alone (official ``sinkhorn_attn``)."""
        vit, depth = trunk.vit, trunk.vit.depth
        _, _, v = vit.qkv(depth, vit.block(depth).ln_1(tokens))
        return vit.attention_output(depth, self.similarity_weights(similarity) @ v)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        vit, grid = trunk.vit, trunk.grid
        penultimate = trunk.tokens(vit.depth - 1)
        cls, x = penultimate[:, :1], penultimate[:, 1:]
        guide_tokens = trunk.tokens(self.pre_adjust_idx + 1)[:, 1:]
        if self.purify:
            outliers = outlier_grid(self.outliers(trunk, x), grid)
            x = repair_tokens(x, outliers, grid, keep_isolated=False)
            guide_tokens = repair_tokens(guide_tokens, outliers, grid, keep_isolated=False)
        pre = thresholded(cosine_similarity(guide_tokens), self.beta)
        x = self.last_block(trunk, aggregate(x, pre), pre) + self.res_cls * cls
        post = thresholded(cosine_similarity(trunk.tokens(self.post_adjust_idx + 1)[:, 1:]), self.beta)
        x = aggregate(x, post)
        # official: torch.sum(torch.stack(hidden_states[3:10]), dim=0), the same summation order
        fused = torch.stack([trunk.tokens(i + 1) for i in range(self.cross_s, self.cross_e)]).sum(dim=0)
        fused_out = self.similarity_block(trunk, fused[:, 1:], pre) + self.res_cls * fused[:, :1]
        x = x + aggregate(fused_out, post)
        features = vit.project(x)
        return features.reshape(features.shape[0], grid[0], grid[1], -1)
