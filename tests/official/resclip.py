"""Oracle: the official ResCLIP inference (yvhangyang/ResCLIP, ``resclip_segmentor.py`` +
``clip/model.py`` ``VisionTransformer.forward`` / ``create_logit_temp`` / ``create_patch_matrix``
/ ``check_path`` / ``generate_attention_sfr`` / ``custom_attn``; ``pamr.py``).

Quirks kept (see also common.py):
- ``self.use_rcs=use_rcs,`` / ``self.use_sfr=use_sfr,``: the trailing commas store 1-tuples,
  always truthy, so RCS and SFR are on whatever the flags say.
- Every block but the last runs ``custom_attn(use_custom_attn=False)``:
  ``softmax(bmm(q * scale, kᵀ))`` (scale before the product; not nn.MultiheadAttention), and
  keeps its attention map. RCS = mean of the maps of blocks 6..9 (``attn_map[5:9]``): needs
  depth >= 10.
- SFR (``create_logit_temp``): a first pass of the last block with the same attention but no SFR
  term, CLS token dropped, normalised, logits resized to the window (align_corners=False),
  refined by a hard-coded PAMR(10, dilations=(8, 16)) on the window (a RuntimeError there is
  logged and ignored), ``softmax(* logit_scale)`` over queries.
- ``create_patch_matrix``: argmax over QUERIES (not classes), pixels whose max probability is
  below ``temp_thd`` -> query 0, then per patch the ``torch.mode`` of its p x p pixels (ties: CPU
  takes the smallest value; CUDA's choice is unspecified). ``temp_thd=None`` -> TypeError
  (``raise NotImplemented``).
- ``generate_attention_sfr``: 1 where two patches have the same query label (CLS row / column 0);
  with ``delete_same_entity`` pairs without a same-label straight path (``check_path``) are
  multiplied by exp(-steps / max_steps) (Chebyshev steps); then a 1-D Gaussian blur along the
  flattened row (kernel min(T, int(6 std + 1)) made odd, zero padding), ReLU, row-normalised (+1e-8).
- ``check_path`` samples every pair at t = k / max_steps for k <= its own steps, so a pair
  shorter than the longest one is only checked on the first steps/max_steps of its segment;
  coordinates round half to even. (Official: ``@torch.jit.script``; eager here.)
- ``custom_attn`` (last block, 'resclip' == 'naclip'): ``bmm(k, kᵀ) * scale``; SFR:
  ``attn_sfr / max`` cast ``.to(torch.float16)`` even in fp32, ``tau * ((1 - λ) A + λ SFR)``;
  ``+ ω`` (NACLIP's Gaussian, cached per grid in the activation dtype, ``.clone()`` each use);
  softmax; RCS: ``tau * ((1 - λ) A + λ RCS)`` after the softmax. Weights ``None`` -> TypeError.
- ``arch='wo_resi'`` (default): last block without residual / MLP; 'w_resi': with.
- Whole-image path (``slide_crop=0``, the VOC configs): logits -> input size -> ``ori_shape``.
- ``postprocess_result``: NACLIP's, plus an ``area_thd`` branch that works on the 4-D
  ``seg_logits`` batch instead of ``seg_probs``: it raises (shape mismatch) for any real input
  and could never change ``seg_pred`` (no official config sets ``area_thd``).
- fp16 (``half=True``): as NACLIP; the SFR pass PAMRs in fp32 and casts back to fp16.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import (PAMR, embed, layer_norm, mlp, official_fp16, query_index_tensor, raise_not_implemented,
                     NACLIPFamilySegmentor)
from .naclip import gaussian_window, get_attention_addition

ATTN_STRATEGIES = ('resclip', 'naclip', 'sclip', 'clearclip', 'vanilla')


def check_path(start_coords: Tensor, end_coords: Tensor, patch_logit_temp: Tensor) -> Tensor:
    # V: the function of mask where V_mn = 1, if there is a valid path from (m,n) to (i', j')
    steps = torch.max(torch.abs(end_coords - start_coords), dim=1)[0]
    max_steps = steps.max().item()
    t = torch.linspace(0, 1, steps=max_steps + 1, device=start_coords.device).unsqueeze(1).unsqueeze(0)

    current_coords = start_coords.unsqueeze(1) * (1 - t) + end_coords.unsqueeze(1) * t
    current_coords = current_coords.round().long()

    valid_steps = torch.arange(max_steps + 1, device=start_coords.device).unsqueeze(0) <= steps.unsqueeze(1)

    start_values = patch_logit_temp[start_coords[:, 0], start_coords[:, 1]].unsqueeze(1)
    current_values = patch_logit_temp[current_coords[:, :, 0], current_coords[:, :, 1]]

    path_valid = (current_values == start_values) | ~valid_steps
    return path_valid.all(dim=1)


def generate_attention_sfr(patch_logit_temp: Tensor, n_patches: Tuple[int, int], gaussian_std: float = 1.0,
                           adjust_for_cls: bool = True, delete_same_entity: bool = True) -> Tensor:
    h, w = n_patches
    total_patches = h * w

    attention_sfr = torch.zeros((total_patches + 1, total_patches + 1), device=patch_logit_temp.device)

    patch_indices = torch.arange(total_patches, device=patch_logit_temp.device)
    i, j = torch.meshgrid(patch_indices, patch_indices, indexing='ij')
    i_w, i_h = torch.div(i, w, rounding_mode='floor'), i % w
    j_w, j_h = torch.div(j, w, rounding_mode='floor'), j % w

    mask = (patch_logit_temp[i_w, i_h] == patch_logit_temp[j_w, j_h])
    attention_sfr[1:, 1:] = mask.float()

    attention_sfr.diagonal().fill_(1)
    attention_sfr[0, :] = 0
    attention_sfr[:, 0] = 0

    non_cls_attention = attention_sfr[1:, 1:]

    if delete_same_entity:
        start_coords = torch.stack((i_w, i_h), dim=-1).view(-1, 2)
        end_coords = torch.stack((j_w, j_h), dim=-1).view(-1, 2)

        valid_paths = check_path(start_coords, end_coords, patch_logit_temp)
        valid_paths = valid_paths.view(total_patches, total_patches)

        steps = torch.max(torch.abs(end_coords - start_coords), dim=1)[0]
        max_steps = steps.max().item()
        steps = steps.view(total_patches, total_patches)
        decay_factor = torch.exp(-steps / max_steps)
        non_cls_attention = torch.where(valid_paths,
                                        non_cls_attention,
                                        non_cls_attention * decay_factor)

    kernel_size = min(total_patches, int(6 * gaussian_std + 1))
    kernel_size = kernel_size if kernel_size % 2 == 1 else kernel_size + 1

    x = torch.arange(kernel_size, device=attention_sfr.device) - kernel_size // 2
    gaussian_kernel_1d = torch.exp(-(x ** 2) / (2 * gaussian_std ** 2))
    kernel = gaussian_kernel_1d / gaussian_kernel_1d.sum()

    padding = kernel_size // 2
    non_cls_attention_blurred = F.conv1d(
        non_cls_attention.unsqueeze(1),
        kernel.view(1, 1, -1),
        padding=padding
    ).squeeze(1)

    non_cls_attention_blurred = F.relu(non_cls_attention_blurred)
    row_sums = non_cls_attention_blurred.sum(dim=1, keepdim=True)
    non_cls_attention_normalized = non_cls_attention_blurred / (row_sums + 1e-8)

    attention_sfr[1:, 1:] = non_cls_attention_normalized
    attention_sfr = attention_sfr.unsqueeze(0)
    return attention_sfr


class OfficialVisual:
    """The ResCLIP ``VisionTransformer`` (forward, SFR helpers, custom_attn, addition cache) on open_clip weights."""

    def __init__(self, visual: nn.Module, arch: str, attn_strategy: str, gaussian_std: float):
        # set_params
        assert arch in ['w_resi', 'wo_resi']
        assert attn_strategy != 'sclip' or arch == 'w_resi'
        assert gaussian_std > 0
        self.visual = visual
        self.patch_size = visual.patch_size[0]  # OpenAI's ViT: an int
        self.arch, self.attn_strategy, self.gaussian_std = arch, attn_strategy, gaussian_std
        self.addition_cache: Dict[Tuple[int, int], Tensor] = dict()

    def ln_post_proj(self, x: Tensor, return_all: bool) -> Tensor:
        if return_all:
            return layer_norm(self.visual.ln_post, x) @ self.visual.proj
        x = layer_norm(self.visual.ln_post, x[:, 0, :])
        if self.visual.proj is not None:
            x = x @ self.visual.proj
        return x

    def last_block(self, x: Tensor, **attn_kwargs) -> Tensor:
        blk = self.visual.transformer.resblocks[-1]
        if self.arch == 'w_resi':
            x = x + self.custom_attn(blk.attn, layer_norm(blk.ln_1, x), **attn_kwargs)
            x = x + mlp(blk, x)
        elif self.arch == 'wo_resi':
            x = self.custom_attn(blk.attn, layer_norm(blk.ln_1, x), **attn_kwargs)
        else:
            raise_not_implemented(f'arch {self.arch}')
        return x

    def create_patch_matrix(self, seg_logit_temp: Tensor, n_patches: Tuple[int, int], temp_thd=None) -> Tensor:
        seg_logit_temp = seg_logit_temp.squeeze(0)  # (official: .cuda() first)
        seg_pred = seg_logit_temp.argmax(0, keepdim=True)

        # AdaThr
        if temp_thd is not None:
            seg_pred[seg_logit_temp.max(0, keepdim=True)[0] < temp_thd] = 0
        else:
            raise_not_implemented('temp_thd=None')

        seg_pred = seg_pred.squeeze(0)
        patches = seg_pred.unfold(0, self.patch_size, self.patch_size).unfold(1, self.patch_size, self.patch_size)
        patches = patches.reshape(n_patches[0], n_patches[1], -1)
        patch_matrix = torch.mode(patches, dim=-1)[0]
        return patch_matrix

    def create_logit_temp(self, x: Tensor, n_patches, attn_rcs, attn_rcs_weights, use_custom_attn, query_features,
                          img, patch_size, logit_scale, dtype, return_all, align_corners) -> Tensor:
        x = self.last_block(x, n_patches=n_patches, attn_rcs=attn_rcs, attn_rcs_weights=attn_rcs_weights,
                            use_custom_attn=use_custom_attn)
        x = x.permute(1, 0, 2)
        x = self.ln_post_proj(x, return_all)

        image_features = x[:, 1:]
        image_features /= image_features.norm(dim=-1, keepdim=True)

        logits = image_features @ query_features.T

        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)
        logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear', align_corners=align_corners)
        seg_logits_temp = logits

        pamr_simi_reuse = PAMR(10, dilations=(8, 16)).to(img.device)  # official: torch.device('cuda')
        try:
            seg_logits_temp = pamr_simi_reuse(img, seg_logits_temp.to(img.dtype)).to(dtype)
        except RuntimeError:
            logging.warning("")
        batch_size = seg_logits_temp.shape[0]
        for i in range(batch_size):
            seg_logits_temp = torch.softmax(seg_logits_temp[i] * logit_scale, dim=0)
            seg_logits_temp = seg_logits_temp.unsqueeze(0)
        return seg_logits_temp

    def forward(self, x: Tensor, return_all=False, use_rcs=True, use_sfr=True, temp_thd=None,
                attn_sfr_weights=None, attn_rcs_weights=None, delete_same_entity=True, use_custom_attn=True,
                query_features=None, img=None, patch_size=None, logit_scale=None, dtype=None,
                align_corners=None) -> Tensor:
        B, nc, w, h = x.shape
        n_patches = (w // self.patch_size, h // self.patch_size)

        x, _ = embed(self.visual, x, align_corners=False, recompute_scale_factor=False)

        x = x.permute(1, 0, 2)  # NLD -> LND

        attn_map = []
        for blk in self.visual.transformer.resblocks[:-1]:
            x_i, attn_i = self.custom_attn(blk.attn, layer_norm(blk.ln_1, x), n_patches=n_patches, with_attn=True)
            x = x + x_i
            x = x + mlp(blk, x)
            attn_map.append(attn_i)

        # 1. RCS: Residual Cross-correlation Self-attention
        if use_rcs:
            selected_attns = torch.stack([attn_map[i] for i in range(5, 9)])
            attention_rcs = selected_attns.mean(dim=0)
        else:
            attention_rcs = None

        # 2. SFR: Semantic Feedback Refinement
        if use_sfr:
            seg_logit_temp = self.create_logit_temp(x, n_patches=n_patches, attn_rcs=attention_rcs,
                                                    attn_rcs_weights=attn_rcs_weights, use_custom_attn=use_custom_attn,
                                                    query_features=query_features, img=img, patch_size=patch_size,
                                                    logit_scale=logit_scale, dtype=dtype, return_all=return_all,
                                                    align_corners=align_corners)
            patch_logit_temp = self.create_patch_matrix(seg_logit_temp, n_patches, temp_thd=temp_thd)
            attention_sfr = generate_attention_sfr(patch_logit_temp, n_patches, gaussian_std=self.gaussian_std,
                                                   delete_same_entity=delete_same_entity)
        else:
            attention_sfr = None

        x = self.last_block(x, n_patches=n_patches, attn_rcs=attention_rcs, attn_sfr=attention_sfr,
                            attn_sfr_weights=attn_sfr_weights, attn_rcs_weights=attn_rcs_weights,
                            use_custom_attn=use_custom_attn)
        x = x.permute(1, 0, 2)  # LND -> NLD
        return self.ln_post_proj(x, return_all)

    def custom_attn(self, attn_layer, x, return_attn=False, with_attn=False, n_patches=None, attn_rcs=None,
                    attn_sfr=None, attn_sfr_weights=None, attn_rcs_weights=None, use_custom_attn=False):
        num_heads = attn_layer.num_heads
        num_tokens, bsz, embed_dim = x.size()
        head_dim = embed_dim // num_heads
        scale = head_dim ** -0.5

        q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
        q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
        v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

        def sfr_mix(logits: Tensor) -> Tensor:
            """The SFR term, identical in every strategy."""
            sfr = attn_sfr / torch.max(attn_sfr)
            sfr = sfr.to(torch.float16)
            if attn_sfr_weights is not None:
                tau_attn_sfr, lambda_attn_sfr = attn_sfr_weights
            else:
                raise_not_implemented('attn_sfr_weights=None')
            return tau_attn_sfr * ((1 - lambda_attn_sfr) * logits + lambda_attn_sfr * sfr)

        def rcs_mix(weights: Tensor) -> Tensor:
            """The RCS term, identical in every strategy."""
            if attn_rcs_weights is not None:
                tau_attn_rcs, lambda_attn_rcs = attn_rcs_weights
            else:
                raise_not_implemented('attn_rcs_weights=None')
            return tau_attn_rcs * ((1 - lambda_attn_rcs) * weights + lambda_attn_rcs * attn_rcs)

        if use_custom_attn:
            addition = self.addition_cache.get(n_patches)
            if addition is None:
                window_size = [side * 2 - 1 for side in n_patches]
                window = gaussian_window(*window_size, std=self.gaussian_std)
                addition = get_attention_addition(*n_patches, window).unsqueeze(0).to(x.dtype).to(x.device)
                self.addition_cache[n_patches] = addition
            omega = addition.clone()

            if self.attn_strategy in ('resclip', 'naclip'):  # two identical official branches
                attn_weights = torch.bmm(k, k.transpose(1, 2)) * scale
                if attn_sfr is not None:
                    attn_weights = sfr_mix(attn_weights)
                attn_weights += omega
                attn_weights = F.softmax(attn_weights, dim=-1)
                if attn_rcs is not None:
                    attn_weights = rcs_mix(attn_weights)
            elif self.attn_strategy == 'sclip':
                q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
                k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
                if attn_sfr is not None:
                    q_attn = sfr_mix(q_attn)
                    k_attn = sfr_mix(k_attn)
                attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
                if attn_rcs is not None:
                    attn_weights = rcs_mix(attn_weights)
            elif self.attn_strategy == 'clearclip':
                attn_weights = torch.bmm(q, q.transpose(1, 2)) * scale
                if attn_sfr is not None:
                    attn_weights = sfr_mix(attn_weights)
                attn_weights = F.softmax(attn_weights, dim=-1)
                if attn_rcs is not None:
                    attn_weights = rcs_mix(attn_weights)
            elif self.attn_strategy == 'vanilla':
                attn_weights = torch.bmm(q * scale, k.transpose(1, 2))
                if attn_sfr is not None:
                    attn_weights = sfr_mix(attn_weights)
                attn_weights = F.softmax(attn_weights, dim=-1)
                if attn_rcs is not None:
                    attn_weights = rcs_mix(attn_weights)
            else:
                raise_not_implemented(f'attn_strategy {self.attn_strategy}')
        else:  # non-last layers of Clip attention
            attn_weights = torch.bmm(q * scale, k.transpose(1, 2))
            attn_weights = F.softmax(attn_weights, dim=-1)

        if return_attn:
            return attn_weights

        attn_output = torch.bmm(attn_weights, v)
        attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
        attn_output = attn_layer.out_proj(attn_output)

        if with_attn:
            return attn_output, attn_weights
        return attn_output


class OfficialResCLIP(NACLIPFamilySegmentor):
    """``ResCLIPSegmentation`` of the official code, from an already built model and text features."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 arch: str = 'wo_resi', attn_strategy: str = 'resclip', gaussian_std: float = 5., pamr_steps: int = 0,
                 use_rcs: bool = True, use_sfr: bool = True, pamr_stride: Tuple[int, ...] = (8, 16),
                 prob_thd: float = 0.0, area_thd: Optional[float] = None, logit_scale: float = 40,
                 slide_stride: int = 112, slide_crop: int = 224, temp_thd: Optional[float] = None,
                 attn_sfr_weights=None, attn_rcs_weights=None, delete_same_entity: bool = False, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        device = query_features.device
        self.query_idx = query_index_tensor(query_idx, device)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.dtype = self.query_features.dtype
        self.visual = OfficialVisual(self.net.visual, arch, attn_strategy, gaussian_std)
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False
        self.pamr = PAMR(pamr_steps, dilations=pamr_stride).to(device) if pamr_steps > 0 else None

        self.temp_thd = temp_thd
        self.attn_sfr_weights = attn_sfr_weights
        self.attn_rcs_weights = attn_rcs_weights
        self.delete_same_entity = delete_same_entity
        self.use_rcs = use_rcs,  # a 1-tuple (official trailing comma): always truthy
        self.use_sfr = use_sfr,  # a 1-tuple (official trailing comma): always truthy

    def forward_feature(self, img: Tensor) -> Tensor:
        image_features = self.visual.forward(
            img.type(self.net.visual.conv1.weight.dtype),  # encode_image: image.type(self.dtype)
            return_all=True, use_rcs=self.use_rcs, use_sfr=self.use_sfr,
            temp_thd=self.temp_thd, attn_sfr_weights=self.attn_sfr_weights,
            attn_rcs_weights=self.attn_rcs_weights, delete_same_entity=self.delete_same_entity,
            query_features=self.query_features, img=img,
            patch_size=self.visual.patch_size, logit_scale=self.logit_scale, dtype=self.dtype,
            align_corners=self.align_corners)
        return self.patch_logits(image_features, img)

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        """``predict`` up to ``postprocess_result``."""
        if self.slide_crop > 0:
            seg_logits = self.forward_slide(inputs, self.slide_stride, self.slide_crop)
        else:
            seg_logits = self.forward_feature(inputs)

        img_size = tuple(ori_shape)
        seg_logits = nn.functional.interpolate(seg_logits, size=img_size, mode='bilinear',
                                               align_corners=self.align_corners)

        if self.pamr:
            img = nn.functional.interpolate(inputs, size=img_size, mode='bilinear', align_corners=self.align_corners)
            seg_logits = self.pamr(img, seg_logits.to(img.dtype)).to(self.dtype)
        return seg_logits

    def postprocess_result(self, seg_logits: Tensor) -> Tensor:
        batch_size = seg_logits.shape[0]
        for i in range(batch_size):
            seg_probs = torch.softmax(seg_logits[i] * self.logit_scale, dim=0)  # n_queries * w * h
            num_cls, num_queries = max(self.query_idx) + 1, len(self.query_idx)
            if num_cls != num_queries:
                seg_probs = seg_probs.unsqueeze(0)
                cls_index = nn.functional.one_hot(self.query_idx)
                cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
                seg_probs = (seg_probs * cls_index).max(1)[0]

            if self.area_thd is not None:  # official: on seg_logits (1, Q, h, w), not seg_probs
                predictions = nn.functional.one_hot(seg_logits.argmax(0), num_cls).to(seg_logits.dtype)
                area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)
                area_pred = (area_pred > self.area_thd * area_pred.sum()).to(seg_logits.dtype)
                seg_logits[1:] *= area_pred.transpose(0, -1)

            seg_pred = seg_probs.argmax(0, keepdim=True)
            seg_pred[seg_probs.max(0, keepdim=True)[0] < self.prob_thd] = 0
            seg_probs /= seg_probs.sum(0, keepdim=True)
        return seg_pred

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = self.postprocess_result(seg_logits.clone())
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official ResCLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): arch='wo_resi', attn_strategy='resclip', gaussian_std=5.0,
    pamr_steps=0, use_rcs=True, use_sfr=True (both ignored: always on), pamr_stride=(8, 16),
    prob_thd=0.0, area_thd=None, logit_scale=40, slide_stride=112, slide_crop=224,
    temp_thd=None, attn_sfr_weights=None, attn_rcs_weights=None (the three None defaults raise:
    every official config sets them), delete_same_entity=False; half=False."""
    segmentor = OfficialResCLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
