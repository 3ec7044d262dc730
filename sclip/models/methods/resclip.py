"""ResCLIP (Yang et al., CVPR 2025): residual cross-correlation self-attention (RCS) and semantic
feedback refinement (SFR) on top of NACLIP's last block.

With ``A_base = k·kᵀ/√d`` (NACLIP), ``Ω`` NACLIP's Gaussian neighbourhood term and
``R = mean(attention maps of blocks rcs_blocks)`` (blocks 6-9 of ViT-B/16):

1. provisional pass: ``A = τ_r((1-λ_r)·softmax(A_base + Ω) + λ_r·R)`` in the last block (no
   residual, no MLP), patch logits against the class embeddings, upsampled to the window,
   refined by PAMR (10 steps, dilations 8, 16), ``softmax(logit_scale ·)``; each patch takes
   the most frequent query of its pixels (pixels below ``temp_thd`` count as query 0);
2. ``S``: 1 between patches of the same query (diagonal 1); with ``delete_same_entity``, pairs
   whose straight path leaves the entity decay by ``exp(-steps / max_steps)``; each row is
   blurred by a 1-D Gaussian (σ = 5, over the flattened patch index), clipped at 0 and
   normalised; ``S ← S / max S``;
3. final pass: ``A = τ_r((1-λ_r)·softmax(τ_s((1-λ_s)·A_base + λ_s·S) + Ω) + λ_r·R)``.

Everything in steps 1-3 runs per window, as the official one-window-at-a-time loop does.
Quirks of the official code kept on purpose are marked "official:".
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..attention import gaussian_window
from ..clip_vit import CLIPViT, Trunk
from ..pamr import PAMR
from .base import Method, TextSide, register_method

STRATEGIES = ('naclip', 'resclip', 'sclip', 'clearclip', 'vanilla')


def patch_queries(probabilities: Tensor, patch: int, grid: Tuple[int, int], temp_thd: float) -> Tensor:
    """(Q, H, W) query probabilities of one window -> (rows, cols) most frequent query per patch.

    Pixels whose best probability is below ``temp_thd`` count as query 0; pixels beyond the
    last whole patch are dropped (``unfold``); ties go to ``torch.mode``'s choice, as officially.
    """
    queries = probabilities.argmax(dim=0)
    queries[probabilities.max(dim=0)[0] < temp_thd] = 0
    patches = queries.unfold(0, patch, patch).unfold(1, patch, patch).reshape(grid[0], grid[1], -1)
    return torch.mode(patches, dim=-1)[0]


def same_entity_paths(labels: Tensor, pairs_per_chunk: int = 1 << 16) -> Tuple[Tensor, Tensor]:
    """For every patch pair (p, q): whether the sampled straight path from p towards q stays on
    p's label, and the Chebyshev distance (steps) between them, both (T, T).

    official: the path is sampled at ``t = s / max_steps`` for ``s = 0..steps(p, q)``, with
    ``max_steps`` the largest distance in the window, so a short pair's path covers only
    ``steps / max_steps`` of the way to q; coordinates are rounded half to even. Pairs are
    processed in chunks (the same arithmetic per pair) so memory stays bounded on whole images.
    """
    rows, cols = labels.shape
    index = torch.arange(rows * cols, device=labels.device)
    i, j = torch.meshgrid(index, index, indexing='ij')
    start = torch.stack((i // cols, i % cols), dim=-1).view(-1, 2)
    end = torch.stack((j // cols, j % cols), dim=-1).view(-1, 2)
    steps = torch.max(torch.abs(end - start), dim=1)[0]
    max_steps = int(steps.max())
    t = torch.linspace(0, 1, steps=max_steps + 1, device=labels.device).unsqueeze(1).unsqueeze(0)
    sample = torch.arange(max_steps + 1, device=labels.device).unsqueeze(0)
    on_entity = torch.empty(start.shape[0], dtype=torch.bool, device=labels.device)
    for first in range(0, start.shape[0], pairs_per_chunk):
        a, b, s = start[first:first + pairs_per_chunk], end[first:first + pairs_per_chunk], steps[first:first + pairs_per_chunk]
        points = (a.unsqueeze(1) * (1 - t) + b.unsqueeze(1) * t).round().long()
        start_labels = labels[a[:, 0], a[:, 1]].unsqueeze(1)
        on_path = (labels[points[:, :, 0], points[:, :, 1]] == start_labels) | ~(sample <= s.unsqueeze(1))
        on_entity[first:first + pairs_per_chunk] = on_path.all(dim=1)
    total = rows * cols
    return on_entity.view(total, total), steps.view(total, total)


def semantic_attention(labels: Tensor, sigma: float, delete_same_entity: bool) -> Tensor:
    """(1, T+1, T+1) SFR attention of one window from its patch labels (rows, cols); CLS row and
    column 0 (float32, as the official code allocates it)."""
    rows, cols = labels.shape
    total = rows * cols
    flat = labels.flatten()
    same = (flat[:, None] == flat[None, :]).float()
    same.diagonal().fill_(1)
    if delete_same_entity:
        on_entity, steps = same_entity_paths(labels)
        decay = torch.exp(-steps / steps.max())
        same = torch.where(on_entity, same, same * decay)
    size = min(total, int(6 * sigma + 1))
    size = size if size % 2 == 1 else size + 1
    offsets = torch.arange(size, device=labels.device) - size // 2
    kernel = torch.exp(-(offsets ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    blurred = F.relu(F.conv1d(same.unsqueeze(1), kernel.view(1, 1, -1), padding=size // 2).squeeze(1))
    attention = torch.zeros(total + 1, total + 1, device=labels.device)
    attention[1:, 1:] = blurred / (blurred.sum(dim=1, keepdim=True) + 1e-8)
    return attention.unsqueeze(0)


@register_method('resclip')
class ResCLIP(Method):
    """ResCLIP. ``rcs_weights = (τ_r, λ_r)``, ``sfr_weights = (τ_s, λ_s)`` per benchmark in the
    configs; ``rcs`` / ``sfr`` switch the two components (the paper's ablations).

    official: the flags ``use_rcs``/``use_sfr`` of the official segmentor are stored as
    one-element tuples (``self.use_rcs=use_rcs,``), hence always true: the official code
    always runs both; here ``rcs=False`` / ``sfr=False`` really switch them off.
    ``attn_strategy`` is the base attention (official 'resclip' = NACLIP's k·kᵀ + Ω);
    ``last_block_residual``/``last_block_mlp`` correspond to the official ``arch='w_resi'``.
    """
    needs_text = True

    def __init__(self, rcs_weights: Sequence[float] = (2.0, 0.3), sfr_weights: Sequence[float] = (2.1, 0.7),
                 temp_thd: Optional[float] = None, delete_same_entity: bool = True, rcs: bool = True, sfr: bool = True,
                 rcs_blocks: Sequence[int] = (6, 7, 8, 9), gaussian_std: float = 5.0,
                 attn_strategy: str = 'resclip', last_block_residual: bool = False,
                 last_block_mlp: bool = False, provisional_pamr_steps: int = 10,
                 provisional_pamr_dilations: Sequence[int] = (8, 16)):
        super().__init__()
        self.rcs_weights = tuple(float(v) for v in rcs_weights)
        self.sfr_weights = tuple(float(v) for v in sfr_weights)
        if len(self.rcs_weights) != 2 or len(self.sfr_weights) != 2:
            raise SCLIPError('model.method: rcs_weights and sfr_weights are pairs (tau, lambda), '
                             f'got {list(rcs_weights)} and {list(sfr_weights)}.')
        self.rcs, self.sfr = bool(rcs), bool(sfr)
        if self.sfr and temp_thd is None:
            raise SCLIPError('model.method.temp_thd is required for SFR (the official configs set it per '
                             'benchmark, e.g. 0.5 for VOC21).')
        self.temp_thd = None if temp_thd is None else float(temp_thd)
        self.delete_same_entity = bool(delete_same_entity)
        self.rcs_blocks = tuple(int(b) for b in rcs_blocks)
        self.gaussian_std = float(gaussian_std)
        if self.gaussian_std <= 0:
            raise SCLIPError(f'model.method.gaussian_std={gaussian_std} must be positive (official 5).')
        if attn_strategy not in STRATEGIES:
            from ...config_check import closest
            raise SCLIPError(f'model.method.attn_strategy={attn_strategy!r} is unknown{closest(attn_strategy, STRATEGIES)} '
                             f'(one of {", ".join(STRATEGIES)}).')
        self.attn_strategy = attn_strategy
        self.last_block_residual, self.last_block_mlp = bool(last_block_residual), bool(last_block_mlp)
        self.pamr = PAMR(provisional_pamr_steps, provisional_pamr_dilations) if provisional_pamr_steps > 0 else None

    def setup(self, vit: CLIPViT) -> None:
        bad = [b for b in self.rcs_blocks if not 1 <= b < vit.depth]
        if bad or not self.rcs_blocks:
            raise SCLIPError(f'model.method.rcs_blocks={list(self.rcs_blocks)} must name blocks 1 to '
                             f'{vit.depth - 1} (official: 6, 7, 8, 9).')

    # --- the last block --------------------------------------------------------------------
    def attention(self, trunk: Trunk, q: Tensor, k: Tensor, rcs: Optional[Tensor],
                  sfr: Optional[Tensor]) -> Tensor:
        """The last block's attention weights (B, heads, N, N) for the configured strategy."""
        scale = q.shape[-1] ** -0.5
        prior = gaussian_window(trunk.grid, self.gaussian_std, q.dtype, q.device)

        def mix_sfr(logits: Tensor) -> Tensor:
            if sfr is None:
                return logits
            tau, lam = self.sfr_weights
            return tau * ((1 - lam) * logits + lam * sfr[:, None])

        if self.attn_strategy in ('resclip', 'naclip'):
            weights = (mix_sfr(k @ k.transpose(-2, -1) * scale) + prior).softmax(dim=-1)
        elif self.attn_strategy == 'sclip':
            weights = (mix_sfr(q @ q.transpose(-2, -1) * scale).softmax(dim=-1)
                       + mix_sfr(k @ k.transpose(-2, -1) * scale).softmax(dim=-1))
        elif self.attn_strategy == 'clearclip':
            weights = mix_sfr(q @ q.transpose(-2, -1) * scale).softmax(dim=-1)
        else:  # vanilla: official bmm(q * scale, kᵀ)
            weights = mix_sfr((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        if rcs is not None:
            tau, lam = self.rcs_weights
            weights = tau * ((1 - lam) * weights + lam * rcs)
        return weights

    def last_block(self, trunk: Trunk, rcs: Optional[Tensor], sfr: Optional[Tensor]) -> Tensor:
        vit, depth = trunk.vit, trunk.vit.depth
        x = trunk.tokens(depth - 1)
        q, k, v = vit.qkv(depth, vit.block(depth).ln_1(x))
        out = vit.attention_output(depth, self.attention(trunk, q, k, rcs, sfr) @ v)
        if self.last_block_residual:
            out = x + out
        if self.last_block_mlp:
            out = out + vit.mlp(depth, out)
        return out

    # --- semantic feedback -----------------------------------------------------------------
    def feedback(self, trunk: Trunk, tokens: Tensor, text: TextSide) -> Tensor:
        """(B, T+1, T+1) SFR attention of each window, from a provisional segmentation."""
        vit, grid = trunk.vit, trunk.grid
        features = vit.project(tokens)[:, 1:]
        features = features / features.norm(dim=-1, keepdim=True)
        logits = (features @ text.embeddings.to(features.dtype).T).permute(0, 2, 1)
        logits = logits.reshape(logits.shape[0], -1, grid[0], grid[1])
        images = trunk.images
        logits = F.interpolate(logits, size=images.shape[-2:], mode='bilinear', align_corners=False)
        patch = vit.patch_size[0]
        attentions = []
        for image, window_logits in zip(images, logits):
            window_logits = window_logits[None]
            if self.pamr is not None:
                try:  # official: PAMR failures (out of memory) are skipped
                    window_logits = self.pamr.to(image.device)(image[None], window_logits.to(image.dtype))
                except RuntimeError:
                    pass
                window_logits = window_logits.to(logits.dtype)
            probabilities = (window_logits[0] * text.logit_scale).softmax(dim=0)
            labels = patch_queries(probabilities, patch, grid, self.temp_thd)
            attentions.append(semantic_attention(labels, self.gaussian_std, self.delete_same_entity))
        attention = torch.cat(attentions)
        attention = attention / attention.flatten(1).max(dim=1)[0].view(-1, 1, 1)
        return attention.to(torch.float16)  # official: S is cast to fp16 (so λ·S is an fp16 product)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        if text is None:
            raise SCLIPError('ResCLIP needs the class embeddings (text side); run it through the segmentor.')
        rcs = torch.stack([trunk.attention(b) for b in self.rcs_blocks]).mean(dim=0) if self.rcs else None
        sfr = self.feedback(trunk, self.last_block(trunk, rcs, None), text) if self.sfr else None
        x = self.last_block(trunk, rcs, sfr)
        return trunk.vit.patch_features(x, trunk.grid)
