"""Oracle: the official FSA inference (chi-chi-zx/FSA @ dbd2da5, ``FSA_Proxy_segmentor.py`` and
the vendored open_clip ``transformer.py`` ``VisionTransformer.forward`` / ``custom_attn`` /
``compute_logits`` / ``kl_divergence`` / ``SparseAtten`` / ``FSA`` / ``attend_v`` /
``attend_v_ens``).

``FSAProxySegmentation`` is ProxyCLIP's segmentor line for line (VFM branches, input
normalisation, windows, padding to 56, post-processing), except that ``encode_image`` also takes
the query features and ``lamda``: so the oracle is ``official.proxyclip.OfficialProxyCLIP`` with
its ``encode_image`` replaced by the transcription below (see proxyclip.py for the quirks kept).

Differences from ProxyCLIP's ``custom_attn`` transcribed here:
- the values come from ``F.linear`` with the value rows of ``in_proj_weight`` (``narrow``);
- after the proxy attention's output, FSA's feedback (``is_FSA=True``, official ``FSA=True``):
  ``compute_logits`` of that output (``ln_post``, ``proj``, unit norm, ``@ query_features.T``,
  scale 20, no softmax) and of the output of uniform attention (``softmax(ones)``, scale 35);
  ``softmax`` of their difference over the classes; pairwise KL with ``log(p + 1e-10)``, clamped
  at 0; ``1 / (kl + 1)``; ``SparseAtten`` (p=0.45: sort descending, keep where the cumulative
  softmax of the sorted row is <= p, always the first, the rest -inf); ``s · exp(lamda · s)``
  with the -inf restored; cast, repeated per head, softmax; ``attend_v_ens``:
  ``(Â·A + A·Â + Â) / 3`` applied to the values, out-projection.
- ``VisionTransformer.forward`` also runs CLIP's full last block and projects it
  (``final_CLIP_feature``); only its CLS token reaches ``custom_attn``, which never reads it:
  dead code, not transcribed.
- ``compute_logits`` reshapes the logits to ``H = W = int(sqrt(L))`` and back: a no-op on the
  square windows the official VFM branches allow (transcribed as the identity).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import embed, layer_norm, residual_block
from .proxyclip import OfficialProxyCLIP


def attend_v(v: Tensor, attn_weights: Tensor, attn_layer: nn.MultiheadAttention, bsz: int,
             embed_dim: int) -> Tensor:
    v_attended = torch.bmm(attn_weights, v)
    attn_output = v_attended.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(attn_output)


def compute_logits(im: Tensor, text: Tensor, ln_post: nn.Module, proj: Tensor, logits_scale: float) -> Tensor:
    """``compute_logits(..., soft_max=False)``: (B, L, Q)."""
    im = im.permute(1, 0, 2)  # LND -> NLD
    im = layer_norm(ln_post, im)
    im = im @ proj
    im /= im.norm(dim=-1, keepdim=True)
    logits = im @ text.T
    return logits * logits_scale


def kl_divergence(patch_probs: Tensor) -> Tensor:
    log_patch_probs = torch.log(patch_probs + 1e-10)
    log_patch_probs_i = log_patch_probs.unsqueeze(2)
    log_patch_probs_j = log_patch_probs.unsqueeze(1)
    kl_div_i_to_j = torch.sum(patch_probs.unsqueeze(2) * (log_patch_probs_i - log_patch_probs_j), dim=3)
    return torch.clamp(kl_div_i_to_j, min=0.0)


def sparse_atten(similarity: Tensor, p: float = 0.45) -> Tensor:
    sorted_similarity, sorted_indices = torch.sort(similarity, descending=True, dim=-1)
    sorted_probs = F.softmax(sorted_similarity, dim=-1)
    cumulative_probs = torch.cumsum(sorted_probs, dim=-1)
    mask = cumulative_probs <= p
    mask[..., 0] = True
    pruned_sorted_similarity = sorted_similarity.clone()
    pruned_sorted_similarity[~mask] = float('-inf')
    B, N, _ = similarity.shape
    indices_range = torch.arange(N, device=similarity.device).view(1, 1, N).expand(B, N, N)
    inverse_indices = torch.empty_like(sorted_indices)
    inverse_indices.scatter_(-1, sorted_indices, indices_range)
    return pruned_sorted_similarity.gather(-1, inverse_indices)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, text_feature: Tensor, ln_post: nn.Module,
                proj: Tensor, ex_feats: Tensor, beta: float, gamma: float, token_size, lamda: float) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads

    v_proj_weight = attn_layer.in_proj_weight.narrow(0, 2 * embed_dim, embed_dim)
    v_proj_bias = attn_layer.in_proj_bias.narrow(0, 2 * embed_dim, embed_dim)
    v = F.linear(x, v_proj_weight, v_proj_bias)
    v = v[1:, :, :]
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    B, C, H, W = ex_feats.shape
    v = v.reshape(bsz * num_heads, token_size[0], token_size[1], head_dim).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(H, W), mode='bilinear', align_corners=False)
    v = v.permute(0, 2, 3, 1).reshape(bsz * num_heads, H * W, head_dim)
    q_k = F.normalize(ex_feats.flatten(2, 3), dim=1)
    sim_orig = torch.einsum("b c m, b c n -> b m n", q_k, q_k)
    sim_orig = (sim_orig - torch.mean(sim_orig) * beta) * gamma
    sim_orig[sim_orig < 0.0] = float('-inf')
    mask = sim_orig.to(v.dtype).unsqueeze(1).repeat(1, num_heads, 1, 1)
    mask = mask.reshape(bsz * num_heads, mask.shape[2], mask.shape[3])
    attn_weights = F.softmax(mask, dim=-1)
    attn_output = attend_v(v, attn_weights, attn_layer, bsz, embed_dim)

    # FSA (is_FSA=True)
    patch_probs = compute_logits(attn_output, text_feature, ln_post, proj, logits_scale=20)
    uniform_attention = F.softmax(torch.ones_like(attn_weights), dim=-1)
    uniform_output = attend_v(v, uniform_attention, attn_layer, bsz, embed_dim)
    uni_probs = compute_logits(uniform_output, text_feature, ln_post, proj, logits_scale=35)

    diff_prob = (patch_probs - uni_probs)
    diff_prob_soft = F.softmax(diff_prob, dim=-1)
    kl_div = kl_divergence(diff_prob_soft)
    sim = 1 / (kl_div + 1.0)
    sim_pruned = sparse_atten(sim, p=0.45)
    idx = (sim_pruned == float('-inf'))
    similarity = sim_pruned * torch.exp(lamda * sim_pruned)
    similarity[idx] = float('-inf')
    mask = similarity.to(patch_probs.dtype).unsqueeze(1).repeat(1, num_heads, 1, 1)
    mask = mask.reshape(bsz * num_heads, mask.shape[2], mask.shape[3])
    attn_weights_new = F.softmax(mask, dim=-1)

    # attend_v_ens(v, attn_weights, attn_layer, attn_weights_new)
    Attn_1 = torch.bmm(attn_weights_new, attn_weights)
    Attn_2 = torch.bmm(attn_weights, attn_weights_new)
    Attn_3 = attn_weights_new
    Attn_ens = (Attn_1 + Attn_2 + Attn_3) / 3.0
    v_attended = torch.bmm(Attn_ens, v)
    attn_output = v_attended.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(attn_output)


def encode_image(visual: nn.Module, x: Tensor, text_feature: Tensor, ex_feats: Tensor, beta: float,
                 gamma: float, lamda: float) -> Tensor:
    """``VisionTransformer.forward(x, text_feature, ex_feats, beta, gamma, lamda, is_FSA=True)``."""
    B, nc, w, h = x.shape
    x, _ = embed(visual, x)
    token_size = h // visual.patch_size[0], w // visual.patch_size[1]  # swapped, as ProxyCLIP's
    x = x.permute(1, 0, 2)  # NLD -> LND
    for blk in visual.transformer.resblocks[:-1]:
        x = residual_block(blk, x)
    blk = visual.transformer.resblocks[-1]
    x = custom_attn(blk.attn, layer_norm(blk.ln_1, x), text_feature, visual.ln_post, visual.proj, ex_feats,
                    beta, gamma, token_size, lamda)
    x = x.permute(1, 0, 2)  # final_proj
    x = layer_norm(visual.ln_post, x)
    return x @ visual.proj


class OfficialFSA(OfficialProxyCLIP):
    """``FSAProxySegmentation`` of the official code: ProxyCLIP's with FSA's ``encode_image``."""

    def __init__(self, *args, lamda: float = 3.0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.vfm_model is None:
            raise ValueError('FSA runs with a VFM (its no-VFM branch returns CLIP\'s own features)')
        self.lamda = lamda

    def encode_image(self, visual: nn.Module, x: Tensor, ex_feats: Optional[Tensor]) -> Tensor:
        return encode_image(visual, x, self.query_features, ex_feats, self.beta, self.gamma, self.lamda)


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official FSA labels (1, h, w); settings as ``official.proxyclip.predict`` plus lamda=3.0."""
    segmentor = OfficialFSA(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
