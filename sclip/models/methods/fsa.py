"""FSA (Chi et al., ICCV 2025), feedback self-adaptive attention, plugged into ProxyCLIP.

ProxyCLIP's last block gives the patch output ``o = out_proj(A · v)`` with ``A`` the proxy
attention (proxyclip.py). FSA feeds the segmentation that output implies back into the attention:

    P  = 20 · cos(proj(o), T)               patch logits against the class embeddings T
    U  = 35 · cos(proj(out_proj(ū)), T)     the same for uniform attention (ū: mean of v)
    p  = softmax(P - U)                     per token, over the classes
    S  = 1 / (1 + max(KL(p_i ‖ p_j), 0))    (I·J × I·J)
    S' = S kept on the smallest top set of each row whose softmax mass is <= top_p (0.45),
         the row's largest always kept; the rest -inf
    Â  = softmax(S' · exp(λ S'))
    X  = proj(out_proj(((Â·A + A·Â + Â) / 3) · v))

``Â`` is shared by the heads, as ``A`` is. The last line is computed as ``(Â·(A·v) + A·(Â·v) +
Â·v) / 3`` (tokens² × width operations instead of tokens³; equal up to rounding, and the
fidelity tests hold labels and logits to the official order). Everything else (foundation model, values, windows,
post-processing) is ProxyCLIP's. The KL matrix is computed in row chunks: the official code
materialises (I·J)² × classes at once; the chunks compute the same elements.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import Trunk
from .base import TextSide, register_method
from .proxyclip import ProxyCLIP

KL_CHUNK_ELEMENTS = 1 << 24  # rows of the pairwise KL computed at once: rows × tokens × classes <= this


def class_logits(trunk: Trunk, out: Tensor, text: Tensor, scale: float) -> Tensor:
    """``scale`` · cosine similarity of the projected tokens ``out`` (B, M, C) with ``text`` (Q, D)."""
    x = trunk.vit.project(out)
    x = x / x.norm(dim=-1, keepdim=True)
    return (x @ text.T) * scale


def pairwise_kl(p: Tensor) -> Tensor:
    """KL(p_i ‖ p_j) (B, M, M) for distributions p (B, M, Q), with log(p + 1e-10), clamped at 0."""
    log_p = torch.log(p + 1e-10)
    rows = max(1, KL_CHUNK_ELEMENTS // max(1, p.shape[1] * p.shape[2]))
    out = []
    for start in range(0, p.shape[1], rows):
        chunk = slice(start, start + rows)
        out.append(torch.sum(p[:, chunk, None] * (log_p[:, chunk, None] - log_p[:, None]), dim=3))
    return torch.cat(out, dim=1).clamp(min=0.0)


def top_p_mask(similarity: Tensor, top_p: float) -> Tensor:
    """``similarity`` with -inf outside each row's top set: sorted descending, the entries whose
    cumulative softmax mass is <= ``top_p``, and always the largest."""
    ordered, order = torch.sort(similarity, descending=True, dim=-1)
    keep_sorted = ordered.softmax(dim=-1).cumsum(dim=-1) <= top_p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return similarity.masked_fill(~keep, float('-inf'))


@register_method('fsa')
class FSA(ProxyCLIP):
    """ProxyCLIP with FSA's feedback attention; the foundation model is ``model.vfm``.

    Args:
        beta, gamma: ProxyCLIP's proxy-attention settings (official 1.2, 3.0).
        lamda: sharpness of the feedback attention, ``S' · exp(lamda · S')`` (official 3.0 for
            SAM, DINO and DINOv2 with ViT-B/16 and ViT-L/14, 2.3 with ViT-H/14, 4.5 with MAE).
        top_p: softmax mass of each row's kept similarities (official 0.45, hard-coded).
        feedback_scale, uniform_scale: the logit scales of the proxy output and of the uniform
            attention's output (official 20 and 35, hard-coded).
    """
    needs_text = True

    def __init__(self, beta: float = 1.2, gamma: float = 3.0, lamda: float = 3.0, top_p: float = 0.45,
                 feedback_scale: float = 20.0, uniform_scale: float = 35.0):
        super().__init__(beta=beta, gamma=gamma)
        self.lamda, self.top_p = float(lamda), float(top_p)
        self.feedback_scale, self.uniform_scale = float(feedback_scale), float(uniform_scale)

    def feedback_attention(self, trunk: Trunk, v: Tensor, proxy_values: Tensor, attention: Tensor,
                           text: Tensor) -> Tensor:
        """Â (B, M, M) from the class distribution of the proxy output (``proxy_values`` = A·v)
        against the uniform attention's."""
        vit = trunk.vit
        proxy = class_logits(trunk, vit.attention_output(vit.depth, proxy_values), text, self.feedback_scale)
        uniform = torch.ones_like(attention).softmax(dim=-1)
        flat = class_logits(trunk, vit.attention_output(vit.depth, uniform[:, None] @ v), text,
                            self.uniform_scale)
        similarity = 1 / (pairwise_kl(F.softmax(proxy - flat, dim=-1)) + 1.0)
        pruned = top_p_mask(similarity, self.top_p)
        sharpened = pruned * torch.exp(self.lamda * pruned)
        sharpened[pruned == float('-inf')] = float('-inf')  # -inf · exp(-inf) is NaN
        return sharpened.to(proxy.dtype).softmax(dim=-1)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        if text is None:
            raise SCLIPError('FSA needs the class embeddings (text side); run it through the segmentor.')
        vit = trunk.vit
        v, attention, (rows, cols) = self.values_and_attention(trunk)
        proxy_values = attention[:, None] @ v
        feedback = self.feedback_attention(trunk, v, proxy_values, attention, text.embeddings.to(v.dtype))[:, None]
        # ((Â·A + A·Â + Â) / 3)·v, associated as Â·(A·v) + A·(Â·v) + Â·v: tokens² × width instead of tokens³
        feedback_values = feedback @ v
        ensemble = (feedback @ proxy_values + attention[:, None] @ feedback_values + feedback_values) / 3.0
        out = vit.attention_output(vit.depth, ensemble)
        return vit.project(out).reshape(v.shape[0], rows, cols, -1)
