"""Oracle: the official SFP inference (Kimsure/SFP @ 2804f5b7, ``SFP_ICCV/SFP_segmentor.py`` +
``SFP_ICCV/clip/model.py`` ``VisionTransformer.forward`` / ``custom_attn`` / ``sinkhorn_attn`` /
``mean_interpolation`` / ``adaptively_aggregate`` / ``lof_pytorch``).

Quirks kept (see also common.py and scclip.py):
- Every block runs ``nn.MultiheadAttention(..., need_weights=True, average_attn_weights=False)``
  (torch 2.0: the explicit path, ``softmax(bmm(q / sqrt(E), kᵀ))``) and returns its per-head
  weights; after each of blocks 1..L-1 the CLS row of those weights is multiplied in place by
  ``res_cls * res_scale`` (0.3 * 5.0). Only SOM reads them (block L-1's); the accumulated
  attention the loop also computes is never used (``sinkhorn_attn`` is given ``pre_sim``).
- ``cross_s`` / ``cross_e`` are stored on the model but never read: the fusion is
  ``torch.sum(torch.stack(hidden_states[3:10]), dim=0)`` (blocks 4..10) whatever the config. The
  oracle takes them as arguments so that a config with other values can be checked against what
  they would mean; every official config has 3 and 10.
- Outliers after block L-1 (``purify``): SOM (head mean of block L-1's scaled weights; patches with
  CLS attention > self-attention, the 10 largest), L2 (the 10 largest token norms) or LOF (SC-CLIP's
  ``lof_pytorch``); placed at ``(index // feat_w, index % feat_w)`` (the grid height for both, as
  SC-CLIP). Unknown ``pm`` or ``purify=False``: NameError (``outlier_index`` / ``patch_token`` are
  never bound); raised here as such.
- ``mean_interpolation`` updates every listed cell, also one without a non-outlier neighbour (it
  becomes 0 / 1 = 0; SC-CLIP's keeps it).
- ``pre_sim`` (block 9's repaired tokens, cosine, < 0.4 -> 0) is thresholded before it enters
  ``custom_attn``: ``(softmax(k·kᵀ·s) + softmax(q·qᵀ·s) + softmax(3·(pre_sim - mean), -inf < 0)) / 3``.
- ``post_sim`` from block 4's tokens, not repaired; the fused branch is ``sinkhorn_attn``:
  ``softmax(3·(pre_sim - mean), -inf < 0) @ v`` only, + ``res_cls`` times the fused CLS token.
- The segmentor is SCLIP's (``forward_feature`` on patch tokens only, explicit
  ``align_corners=False``; SCLIP's ``postprocess_result`` with ``area_thd``).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import embed, layer_norm, mlp
from .scclip import OfficialSCCLIP, lof_pytorch

RES_SCALE = 5.0  # VisionTransformer.res_scale


def attention_with_weights(attn: nn.MultiheadAttention, x: Tensor) -> Tuple[Tensor, Tensor]:
    """``attn(x, x, x, need_weights=True, average_attn_weights=False)`` on LND input (torch 2.0)."""
    tgt_len, bsz, embed_dim = x.shape
    num_heads = attn.num_heads
    head_dim = embed_dim // num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    B, Nt, E = q.shape
    q_scaled = q / math.sqrt(E)
    attn_output_weights = torch.bmm(q_scaled, k.transpose(-2, -1))
    attn_output_weights = F.softmax(attn_output_weights, dim=-1)
    attn_output = torch.bmm(attn_output_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(tgt_len * bsz, embed_dim)
    attn_output = F.linear(attn_output, attn.out_proj.weight, attn.out_proj.bias)
    attn_output = attn_output.view(tgt_len, bsz, attn_output.size(1))
    attn_output_weights = attn_output_weights.view(bsz, num_heads, tgt_len, tgt_len)
    return attn_output, attn_output_weights


def block_forward(blk: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
    """``ResidualAttentionBlock.forward``: ``(x, attn_weight)``."""
    attn_res, attn_weight = attention_with_weights(blk.attn, layer_norm(blk.ln_1, x))
    x = x + blk.ls_1(attn_res)
    x = x + blk.ls_2(mlp(blk, x))
    return x, attn_weight


def mean_interpolation(fmap: Tensor, keep_pixels) -> Tensor:
    if len(keep_pixels) == 0:
        return fmap
    b, c, h, w = fmap.shape
    dev = fmap.device
    dt = fmap.dtype
    neigh_kernel = torch.ones((c, 1, 3, 3), device=dev, dtype=dt)
    neigh_kernel[:, :, 1, 1] = 0

    xy = torch.tensor(keep_pixels, device=dev, dtype=torch.long)
    spatial_mask = torch.ones((1, 1, h, w), device=dev, dtype=dt)
    spatial_mask[:, :, xy[:, 0], xy[:, 1]] = 0
    blocked_fmap = fmap * spatial_mask
    pad_fmap = F.pad(blocked_fmap, (1, 1, 1, 1))
    pad_mask = F.pad(spatial_mask, (1, 1, 1, 1))

    neigh_sum = F.conv2d(pad_fmap, neigh_kernel, groups=c)
    neigh_count = F.conv2d(pad_mask, neigh_kernel[:, :1], groups=1)
    neigh_count_safe = neigh_count.clone()
    neigh_count_safe[neigh_count_safe == 0] = 1
    neigh_mean = neigh_sum / neigh_count_safe
    update_geo = torch.zeros((1, 1, h, w), device=dev, dtype=dt)
    update_geo[:, :, xy[:, 0], xy[:, 1]] = 1
    updated_fmap = fmap * (1 - update_geo) + neigh_mean * update_geo
    return updated_fmap


def adaptively_aggregate(feat: Tensor, sim: Tensor) -> Tensor:
    sim_normalized = sim / (sim.sum(dim=-1, keepdim=True) + 1e-6)
    feat_output = torch.matmul(sim_normalized, feat.permute(1, 0, 2))
    return feat_output.permute(1, 0, 2)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, sim: Tensor) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
    k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
    sim = (sim - torch.mean(sim)) * 3.0
    sim[sim < 0.0] = float('-inf')
    sim = sim.repeat(num_heads, 1, 1)
    attn_weights = F.softmax(k_attn, dim=-1) + F.softmax(q_attn, dim=-1) + F.softmax(sim, dim=-1)
    attn_weights /= 3
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def sinkhorn_attn(attn_layer: nn.MultiheadAttention, x: Tensor, accumulated_attn: Tensor) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    _, _, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    accumulated_attn = (accumulated_attn - torch.mean(accumulated_attn)) * 3.0
    accumulated_attn[accumulated_attn < 0.0] = float('-inf')
    accumulated_attn = accumulated_attn.repeat(num_heads, 1, 1)
    attn_weights = F.softmax(accumulated_attn, dim=-1)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def outlier_index_of(pm: str, x: Tensor, attn_map: Tensor, feat_w: int) -> List[Tuple[Tensor, Tensor]]:
    """The ``if self.pm == ...`` branches of ``forward`` (``x``: block L-1's output, LND)."""
    if pm == 'SOM':
        attn_map = attn_map.squeeze(0)
        attn_map = attn_map.mean(dim=0)
        cls_to_patch = attn_map[0, 1:]
        patch_self = torch.diag(attn_map[1:, 1:])
        salient_mask = cls_to_patch > patch_self
        salient_values = cls_to_patch[salient_mask]
        salient_locs = torch.nonzero(salient_mask, as_tuple=False).squeeze(1)
        ordered_values, order_idx = torch.sort(salient_values, descending=True)
        selected_patches = salient_locs[order_idx[:10]]
        return [(torch.div(loc.detach().cpu(), feat_w, rounding_mode='trunc'), loc.detach().cpu() % feat_w)
                for loc in selected_patches]
    if pm == 'L2':
        patch_norms = torch.norm(x[1:, ...].squeeze(1), dim=1)
        ordered_norms, norm_order = torch.sort(patch_norms, descending=True)
        return [(torch.div(pos.detach().cpu(), feat_w, rounding_mode='trunc'), pos.detach().cpu() % feat_w)
                for pos in norm_order[:10]]
    if pm == 'LOF':
        indices, LOF_scores = lof_pytorch(x[1:, ...].squeeze(1), n_neighbors=30, contamination=0.05)
        return [(torch.div(loc, feat_w, rounding_mode='trunc'), loc % feat_w) for loc in indices]
    raise NameError("name 'outlier_index' is not defined")


def encode_image(visual: nn.Module, image: Tensor, pm: str = 'SOM', purify: bool = True, cross_s: int = 3,
                 cross_e: int = 10, res_cls: float = 0.3) -> Tensor:
    """``CLIP.encode_image(image, return_each=True)``: (B, N, D), patch tokens only."""
    x = image.type(visual.conv1.weight.dtype)
    B, nc, w, h = x.shape
    x, (feat_w, feat_h) = embed(visual, x)
    width = visual.transformer.width
    resblocks = visual.transformer.resblocks
    x = x.permute(1, 0, 2)

    hidden_states = []
    for idx, blk in enumerate(resblocks[:-1], start=1):
        x, attn_map = block_forward(blk, x)
        attn_map[:, :, 0, 1:] *= res_cls * RES_SCALE
        hidden_states.append(x)
        if idx == len(resblocks) - 1:
            if not purify:
                raise NameError("name 'patch_token' is not defined")
            outlier_index = outlier_index_of(pm, x, attn_map, feat_w)
            spatial_feat = x[1:, :, :].permute(1, 2, 0).reshape(B, width, feat_w, feat_h)
            spatial_feat = mean_interpolation(spatial_feat, outlier_index)
            patch_token = spatial_feat.reshape(B, width, feat_w * feat_h).permute(2, 0, 1)
            hidden_states.append(x)

    patch_state = torch.sum(torch.stack(hidden_states[cross_s:cross_e]), dim=0)  # official: [3:10]
    ref_feat = hidden_states[8][1:, ...].clone()
    ref_feat = ref_feat.permute(1, 2, 0).reshape(B, width, feat_w, feat_h)
    ref_feat = mean_interpolation(ref_feat, outlier_index)
    ref_feat = ref_feat.reshape(B, width, feat_w * feat_h).permute(2, 0, 1)
    ref_feat = ref_feat / ref_feat.norm(dim=2, keepdim=True)
    pre_sim = torch.matmul(ref_feat.permute(1, 0, 2), ref_feat.permute(1, 2, 0))
    pre_sim[pre_sim < 0.4] = 0.0
    patch_token = adaptively_aggregate(patch_token, pre_sim)
    for blk in resblocks[-1:]:
        cls_token = x[:1, ...]
        patch_token = custom_attn(blk.attn, layer_norm(blk.ln_1, patch_token), pre_sim) + res_cls * cls_token
    aux_feat = hidden_states[3][1:, ...].clone()
    aux_feat = aux_feat / aux_feat.norm(dim=2, keepdim=True)
    post_sim = torch.matmul(aux_feat.permute(1, 0, 2), aux_feat.permute(1, 2, 0))
    post_sim[post_sim < 0.4] = 0.0
    patch_token = adaptively_aggregate(patch_token, post_sim)

    last_blk = resblocks[-1]
    patch_state = sinkhorn_attn(last_blk.attn, layer_norm(last_blk.ln_1, patch_state[1:, ...]), pre_sim) \
        + res_cls * patch_state[:1, ...]
    patch_state = adaptively_aggregate(patch_state, post_sim)
    patch_token += patch_state

    patch_token = patch_token.permute(1, 0, 2)
    return layer_norm(visual.ln_post, patch_token) @ visual.proj  # return_each


class OfficialSFP(OfficialSCCLIP):
    """``SFPForSegmentation``: SCLIP's segmentor (as SC-CLIP's, patch tokens only) with SFP's encoder."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 pm: str = 'SOM', purify: bool = True, cross_s: int = 3, cross_e: int = 10, res_cls: float = 0.3,
                 **sclip_settings):
        super().__init__(clip_model, query_features, query_idx, **sclip_settings)
        self.sfp = dict(pm=pm, purify=purify, cross_s=cross_s, cross_e=cross_e, res_cls=res_cls)

    def encode(self, img: Tensor) -> Tensor:
        return encode_image(self.net.visual, img, **self.sfp)


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official SFP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): logit_scale=40, prob_thd=0.0, area_thd=None, slide_stride=112,
    slide_crop=224 (0: whole image), pamr_steps=0, pamr_stride=(8, 16), pm='SOM', purify=True,
    cross_s=3, cross_e=10, res_cls=0.3; half=False."""
    segmentor = OfficialSFP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
