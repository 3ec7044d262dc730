"""Oracle: the official SC-CLIP inference (SuleBai/SC-CLIP, ``scclip_segmentor.py`` +
``clip/model.py`` ``VisionTransformer.forward`` / ``lof_pytorch`` / ``mean_interpolation`` /
``adaptively_aggregate`` / ``custom_attn``).

Quirks kept (see also common.py):
- Needs a ViT of depth >= max(pre_adjust_idx, multi_end_idx - 1) + 2 (``feats_list`` holds the
  outputs of blocks 1 .. L-1 and is indexed 0-based: index 8 = block 9's output).
- After the penultimate block: LOF (``lof_pytorch``, 30 neighbours, 5 % contamination) over the
  patch tokens (``squeeze(1)``: batch of one). The LOF uses squared distances and each point's
  own k-distance as every reach distance, so LOF(p) = mean over its neighbours o of
  kdist(p) / kdist(o); outliers are LOF > the fp32 0.95-quantile. Fewer than 31 patch tokens
  make ``topk`` raise; no outlier makes ``mean_interpolation``'s ``indices[:, 0]`` raise.
- ``top_indices = (index // feat_w, index % feat_w)``: feat_w (the grid height) for both the
  division and the modulo, right only for square windows; for non-square ones the outliers
  land on wrong cells or out of range (an IndexError here, a device assert on CUDA).
- Outlier tokens are replaced by the mean of their non-outlier 8-neighbours (zero padding,
  none valid: kept).
- The CLS token is dropped from the running sequence after the penultimate block (kept aside
  as ``cls_token``); the output has no CLS token, and ``forward_feature`` uses all tokens.
- ``mid_simi`` = cosine similarity of block (pre_adjust_idx + 1)'s mean-interpolated patch
  tokens; ``before_simi`` = ``mid_simi`` with values < beta = 0.4 set to 0 (beta hard-coded);
  ``after_simi`` from block (post_adjust_idx + 1)'s tokens, not interpolated.
- Last block: ``custom_attn`` only (no residual, no MLP) + ``res_cls * cls_token``; attention =
  (``softmax((mid_simi - mean) * 3, -inf below 0)`` + ``softmax(bmm(k, kᵀ) * scale)``) / 2,
  ``mid_simi.repeat(num_heads, 1, 1)`` (batch of one), ``mean`` over the whole tensor.
- The multi-level branch sums blocks multi_start_idx + 1 .. multi_end_idx (``zeros_like`` +
  ``+=``), runs the same last-block attention on it, adds ``res_cls`` times its summed CLS
  token, aggregates with ``after_simi`` and is added (``x += re_feats``).
- ``adaptively_aggregate``: ``corrs / (corrs.sum(-1) + 1e-6) @ feats``.
- fp16 (``half=True``): as SCLIP (window cast in ``encode_image``, fp32 canvas, PAMR output cast
  to fp16). Final resizes use align_corners=False (PAMR's input resize: default).
- ``postprocess_result``: SCLIP's (with ``area_thd``).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import embed, layer_norm, residual_block
from .sclip import OfficialSCLIP

BETA = 0.4  # VisionTransformer.beta, hard-coded


def lof_pytorch(x: Tensor, n_neighbors: int = 30, contamination: float = 0.05) -> Tuple[Tensor, Tensor]:
    distances = torch.norm(x[:, None] - x[None, :], dim=2, p=2) ** 2

    knn_distances, knn_indices = torch.topk(distances, k=n_neighbors + 1, largest=False)
    knn_distances, knn_indices = knn_distances[:, 1:], knn_indices[:, 1:]

    k_distances = knn_distances[:, -1].unsqueeze(1).expand_as(knn_distances)
    reach_distances = torch.max(knn_distances, k_distances)

    LRD = n_neighbors / torch.nan_to_num(reach_distances.mean(dim=1), nan=1e-6)

    LRD_ratios = LRD[knn_indices] / LRD.unsqueeze(1)
    LOF_scores = LRD_ratios.mean(dim=1)

    threshold = torch.quantile(LOF_scores.to(torch.float32), 1 - contamination)

    outlier_mask = LOF_scores > threshold
    outlier_indices = torch.where(outlier_mask)[0]

    return outlier_indices, LOF_scores


def outlier_cells(outlier_indices: Tensor, feat_w: int) -> List[Tuple[Tensor, Tensor]]:
    """``top_indices``: feat_w for both div and mod (see the module docstring)."""
    return [(torch.div(index, feat_w, rounding_mode='trunc'), index % feat_w) for index in outlier_indices]


def mean_interpolation(feature_map: Tensor, top_indices) -> Tensor:
    B, C, H, W = feature_map.shape
    device = feature_map.device
    dtype = feature_map.dtype

    kernel = torch.ones(C, 1, 3, 3, device=device, dtype=dtype)
    kernel[:, 0, 1, 1] = 0
    mask = torch.ones((H, W), device=device, dtype=dtype)
    indices = torch.tensor(top_indices, dtype=torch.long, device=device)
    mask[indices[:, 0], indices[:, 1]] = 0
    mask = mask.unsqueeze(0).unsqueeze(0)
    masked_feature_map = feature_map * mask
    padded_feature_map = F.pad(masked_feature_map, (1, 1, 1, 1), mode='constant', value=0)
    padded_mask = F.pad(mask, (1, 1, 1, 1), mode='constant', value=0)
    neighbor_sum = F.conv2d(padded_feature_map, kernel, groups=C)
    valid_neighbors = F.conv2d(padded_mask, kernel[:, :1, :, :], groups=1)
    valid_neighbor_mask = (valid_neighbors > 0).to(dtype)
    safe_valid_neighbors = valid_neighbors.clone()
    safe_valid_neighbors[safe_valid_neighbors == 0] = 1
    mean_neighbors = neighbor_sum / safe_valid_neighbors
    top_indices_mask = torch.zeros((H, W), device=device, dtype=dtype)
    top_indices_mask[indices[:, 0], indices[:, 1]] = 1
    top_indices_mask = top_indices_mask.unsqueeze(0).unsqueeze(0)
    update_mask = top_indices_mask * valid_neighbor_mask
    feature_map = feature_map * (1 - update_mask) + mean_neighbors * update_mask
    return feature_map


def adaptively_aggregate(maskclip_feats: Tensor, corrs: Tensor) -> Tensor:
    corrs_normalized = corrs / (corrs.sum(dim=-1, keepdim=True) + 1e-6)
    maskclip_feats_ref = torch.matmul(corrs_normalized, maskclip_feats.permute(1, 0, 2))
    return maskclip_feats_ref.permute(1, 0, 2)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, mid_simi: Tensor) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    mid_simi = (mid_simi - torch.mean(mid_simi)) * 3.0
    mid_simi[mid_simi < 0.0] = float('-inf')
    mid_simi = mid_simi.repeat(num_heads, 1, 1)
    attn_weights = F.softmax(mid_simi, dim=-1)
    k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
    attn_weights += F.softmax(k_attn, dim=-1)
    attn_weights /= 2

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, image: Tensor, pre_adjust_idx: int = 8, post_adjust_idx: int = 3,
                 multi_start_idx: int = 3, multi_end_idx: int = 10, res_cls: float = 0.3) -> Tensor:
    """``CLIP.encode_image(image, return_all=True)``: (B, N, D), no CLS token."""
    x = image.type(visual.conv1.weight.dtype)  # encode_image: image.type(self.dtype)
    B, nc, w, h = x.shape
    x, (feat_w, feat_h) = embed(visual, x)
    width = visual.transformer.width
    resblocks = visual.transformer.resblocks

    x = x.permute(1, 0, 2)
    feats_list = []
    for idx, blk in enumerate(resblocks[:-1], start=1):
        x = residual_block(blk, x)
        feats_list.append(x)
        if idx == len(resblocks) - 1:
            cls_token = x[:1, ...]
            outlier_indices, LOF_scores = lof_pytorch(x[1:, ...].squeeze(1), n_neighbors=30, contamination=0.05)
            top_indices = outlier_cells(outlier_indices, feat_w)
            feature_map = x[1:, :, :].permute(1, 2, 0).reshape(B, width, feat_w, feat_h)
            feature_map = mean_interpolation(feature_map, top_indices)
            x = feature_map.reshape(B, width, feat_w * feat_h).permute(2, 0, 1)  # the CLS token is gone

    feats = feats_list[pre_adjust_idx][1:, ...].clone()
    feats = feats.permute(1, 2, 0).reshape(B, width, feat_w, feat_h)
    feats = mean_interpolation(feats, top_indices)
    feats = feats.reshape(B, width, feat_w * feat_h).permute(2, 0, 1)
    feats = feats / feats.norm(dim=2, keepdim=True)
    before_simi = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    mid_simi = before_simi.clone()
    before_simi[before_simi < BETA] = 0.0
    x = adaptively_aggregate(x, before_simi)

    for blk in resblocks[-1:]:
        x = custom_attn(blk.attn, layer_norm(blk.ln_1, x), mid_simi=mid_simi) + res_cls * cls_token

    feats = feats_list[post_adjust_idx][1:, ...].clone()
    feats = feats / feats.norm(dim=2, keepdim=True)
    after_simi = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    after_simi[after_simi < BETA] = 0.0
    x = adaptively_aggregate(x, after_simi)

    re_feats = torch.zeros_like(feats_list[0])
    for i in range(multi_start_idx, multi_end_idx):
        re_feats += feats_list[i]
    cls_token = re_feats[:1, ...]
    blk = resblocks[-1]
    re_feats = custom_attn(blk.attn, layer_norm(blk.ln_1, re_feats[1:, ...]), mid_simi=mid_simi) + res_cls * cls_token
    re_feats = adaptively_aggregate(re_feats, after_simi)
    x += re_feats

    x = x.permute(1, 0, 2)
    return layer_norm(visual.ln_post, x) @ visual.proj  # return_all


class OfficialSCCLIP(OfficialSCLIP):
    """``SCCLIPForSegmentation`` of the official code, from an already built model and text features.

    The official class is SCLIP's ``CLIPForSegmentation`` with another image encoder: the sliding
    window, its PAMR and the post-processing are SCLIP's to the letter (``align_corners=False``
    written out where SCLIP leaves the default), so they are inherited here."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 pre_adjust_idx: int = 8, post_adjust_idx: int = 3, multi_start_idx: int = 3,
                 multi_end_idx: int = 10, res_cls: float = 0.3, **sclip_settings):
        super().__init__(clip_model, query_features, query_idx, **sclip_settings)
        self.adjust = dict(pre_adjust_idx=pre_adjust_idx, post_adjust_idx=post_adjust_idx,
                           multi_start_idx=multi_start_idx, multi_end_idx=multi_end_idx, res_cls=res_cls)

    def encode(self, img: Tensor) -> Tensor:
        """``self.net.encode_image(img, return_all=True)``: patch tokens only (SFP: its own)."""
        return encode_image(self.net.visual, img, **self.adjust)

    def forward_feature(self, img: Tensor, logit_size=None) -> Tensor:
        image_features = self.encode(img)  # patch tokens only
        image_features /= image_features.norm(dim=-1, keepdim=True)
        logits = image_features @ self.query_features.T

        patch_size = self.net.visual.patch_size[0]  # OpenAI's ViT: an int
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)

        if logit_size == None:  # noqa: E711 (official)
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear', align_corners=False)
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear', align_corners=False)
        return logits


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official SC-CLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): logit_scale=40, prob_thd=0.0, area_thd=None, slide_stride=112,
    slide_crop=224 (0: whole image), pamr_steps=0, pamr_stride=(8, 16), pre_adjust_idx=8,
    post_adjust_idx=3, multi_start_idx=3, multi_end_idx=10, res_cls=0.3; half=False."""
    segmentor = OfficialSCCLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
