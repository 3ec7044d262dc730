"""Oracle: the official NACLIP inference (sinahmr/NACLIP, ``naclip.py`` + ``clip/model.py``).

Quirks kept (see also common.py):
- ``arch='reduced'`` (default): the last block is the custom attention alone (no residual, no
  MLP); 'vanilla': ``x + attn``, ``+ mlp``.
- ``attn_strategy='naclip'``: ``softmax(bmm(k, kᵀ) * scale + ω)`` with ω the Gaussian
  neighbourhood addition (std ``gaussian_std`` patches; zero row / column for the CLS token),
  computed in fp32 and cast to the activation dtype, cached per patch grid for the model's
  lifetime (here: per call; the values are the same). 'nonly': zero logits plus ω scaled by the
  mean of ``scale * |q_i| |k_j|`` (``.item()``; ``torch.zeros((num_heads, ...))``: batch of one);
  'kk': ``softmax(bmm(k * scale, kᵀ))`` (scale before the product); 'csa' (needs arch
  'vanilla'); 'vanilla': ``softmax(bmm(q * scale, kᵀ))``.
- ``n_patches = (H // p, W // p)`` from the window's height / width.
- ``forward_feature`` drops the CLS token, then normalises.
- ``forward_slide`` returns the averaged canvas at input size; ``predict`` then resizes to
  ``ori_shape`` (bilinear, align_corners=False). The whole-image path (``slide_crop=0``, the
  VOC configs) resizes twice: patch logits -> input size inside ``forward_feature``, then ->
  ``ori_shape``.
- PAMR is on by default (``pamr_steps=10``, dilations (8, 16)) on the normalised input resized to
  ``ori_shape``; a RuntimeError inside PAMR (the official guard against running out of memory)
  is logged and the unrefined logits are kept.
- fp16 (``half=True``): window cast by ``encode_image`` (``image.type(self.dtype)``), fp32
  canvas, PAMR in fp32 then ``.to(self.dtype)`` (fp16) before the post-processing; without PAMR
  the post-processing sees the fp32 canvas.
- ``postprocess_result``: ``softmax(seg_logits[i] * logit_scale)``, per-class max over queries,
  ``prob_thd`` -> 0 (no area threshold); batch of one.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import (PAMR, embed, layer_norm, mlp, official_fp16, query_index_tensor, raise_not_implemented,
                     residual_block, NACLIPFamilySegmentor)

ARCHS = ('reduced', 'vanilla')
ATTN_STRATEGIES = ('naclip', 'nonly', 'kk', 'csa', 'vanilla')


def gaussian_window(dim1: int, dim2: int, std: float = 1.) -> Tensor:
    """``VisionTransformer.gaussian_window``: exp(-d² / (2 std²)) on a (dim1, dim2) grid centred on its middle."""
    constant = 1 / (std * math.sqrt(2))
    ks = list()
    for dim in [dim1, dim2]:
        start = -(dim - 1) / 2.0
        k = torch.linspace(start=start * constant,
                           end=(start + (dim - 1)) * constant,
                           steps=dim,
                           dtype=torch.float)
        ks.append(k)
    dist_square_to_mu = (torch.stack(torch.meshgrid(*ks, indexing='ij')) ** 2).sum(0)
    return torch.exp(-dist_square_to_mu)


def get_attention_addition(dim1: int, dim2: int, window: Tensor, adjust_for_cls: bool = True) -> Tensor:
    """``VisionTransformer.get_attention_addition``: ω[p, q] = window centred on patch p, read at q."""
    m = torch.einsum('ij,kl->ijkl', torch.eye(dim1), torch.eye(dim2))
    m = m.permute((0, 3, 1, 2)).contiguous()  # m[ijkl] = 1 iff (i, j) == (k, l)
    out = F.conv2d(m.view(-1, dim1, dim2).unsqueeze(1), window.unsqueeze(0).unsqueeze(1), padding='same').squeeze(1)
    out = out.view(dim1 * dim2, dim1 * dim2)
    if adjust_for_cls:
        v_adjusted = torch.vstack([torch.zeros((1, dim1 * dim2)), out])
        out = torch.hstack([torch.zeros((dim1 * dim2 + 1, 1)), v_adjusted])
    return out


class OfficialVisual:
    """The NACLIP ``VisionTransformer`` (its forward, custom_attn and addition cache) on open_clip weights."""

    def __init__(self, visual: nn.Module, arch: str, attn_strategy: str, gaussian_std: float):
        # set_params
        assert arch in ['reduced', 'vanilla']
        assert attn_strategy in ['naclip', 'nonly', 'kk', 'csa', 'vanilla']
        assert attn_strategy != 'csa' or arch == 'vanilla'
        assert gaussian_std > 0 or attn_strategy not in ['naclip', 'nonly']
        self.visual = visual
        self.patch_size = visual.patch_size[0]  # OpenAI's ViT: an int
        self.arch, self.attn_strategy, self.gaussian_std = arch, attn_strategy, gaussian_std
        self.addition_cache: Dict[Tuple[int, int], Tensor] = dict()

    def forward(self, x: Tensor) -> Tensor:
        """``VisionTransformer.forward(x, return_all=True)`` (after ``encode_image``'s cast)."""
        B, nc, w, h = x.shape
        n_patches = (w // self.patch_size, h // self.patch_size)

        x, _ = embed(self.visual, x, align_corners=False, recompute_scale_factor=False)

        x = x.permute(1, 0, 2)  # NLD -> LND
        for blk in self.visual.transformer.resblocks[:-1]:
            x = residual_block(blk, x)
        blk = self.visual.transformer.resblocks[-1]
        if self.arch == 'vanilla':
            x = x + self.custom_attn(blk.attn, layer_norm(blk.ln_1, x), n_patches)
            x = x + mlp(blk, x)
        elif self.arch == 'reduced':
            x = self.custom_attn(blk.attn, layer_norm(blk.ln_1, x), n_patches)
        else:
            raise_not_implemented(f'arch {self.arch}')

        x = x.permute(1, 0, 2)  # LND -> NLD
        return layer_norm(self.visual.ln_post, x) @ self.visual.proj  # return_all

    def custom_attn(self, attn_layer: nn.MultiheadAttention, x: Tensor, n_patches: Tuple[int, int]) -> Tensor:
        num_heads = attn_layer.num_heads
        num_tokens, bsz, embed_dim = x.size()
        head_dim = embed_dim // num_heads
        scale = head_dim ** -0.5

        q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
        q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
        v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

        if self.attn_strategy in ['naclip', 'nonly']:
            addition = self.addition_cache.get(n_patches)
            if addition is None:
                window_size = [side * 2 - 1 for side in n_patches]
                window = gaussian_window(*window_size, std=self.gaussian_std)
                addition = get_attention_addition(*n_patches, window).unsqueeze(0).to(x.dtype).to(x.device)
                self.addition_cache[n_patches] = addition

            if self.attn_strategy == 'naclip':
                attn_weights = torch.bmm(k, k.transpose(1, 2)) * scale
                omega = addition
            else:  # 'nonly'
                attn_weights = torch.zeros((num_heads, num_tokens, num_tokens)).to(x.dtype).to(x.device)
                omega = addition * (scale * torch.einsum('hop,hPO->hpP', q.norm(dim=2).unsqueeze(1),
                                                         k.norm(dim=2).unsqueeze(2)).mean().item())

            attn_weights += omega
            attn_weights = F.softmax(attn_weights, dim=-1)

        elif self.attn_strategy == 'csa':
            q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
            k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
            attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
        elif self.attn_strategy == 'vanilla':
            attn_weights = torch.bmm(q * scale, k.transpose(1, 2))
            attn_weights = F.softmax(attn_weights, dim=-1)
        elif self.attn_strategy == 'kk':
            attn_weights = torch.bmm(k * scale, k.transpose(1, 2))
            attn_weights = F.softmax(attn_weights, dim=-1)
        else:
            raise_not_implemented(f'attn_strategy {self.attn_strategy}')

        attn_output = torch.bmm(attn_weights, v)
        attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
        attn_output = attn_layer.out_proj(attn_output)
        return attn_output


class OfficialNACLIP(NACLIPFamilySegmentor):
    """``NACLIP`` segmentor of the official code, from an already built model and text features."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 arch: str = 'reduced', attn_strategy: str = 'naclip', gaussian_std: float = 5., pamr_steps: int = 10,
                 pamr_stride: Tuple[int, ...] = (8, 16), prob_thd: float = 0.0, logit_scale: float = 40,
                 slide_stride: int = 112, slide_crop: int = 224, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        device = query_features.device
        self.query_idx = query_index_tensor(query_idx, device)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.dtype = self.query_features.dtype
        self.visual = OfficialVisual(self.net.visual, arch, attn_strategy, gaussian_std)
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False
        self.pamr = PAMR(pamr_steps, dilations=pamr_stride).to(device) if pamr_steps > 0 else None

    def encode_image(self, image: Tensor) -> Tensor:
        return self.visual.forward(image.type(self.net.visual.conv1.weight.dtype))

    def forward_feature(self, img: Tensor) -> Tensor:
        image_features = self.encode_image(img)
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
            try:
                seg_logits = self.pamr(img, seg_logits.to(img.dtype)).to(self.dtype)
            except RuntimeError as e:
                logging.warning(f"Couldn't apply PAMR for image of size {img_size}, probably due to low memory. "
                                f"Error message: \"{str(e)}\"")
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

            seg_pred = seg_probs.argmax(0, keepdim=True)
            seg_pred[seg_probs.max(0, keepdim=True)[0] < self.prob_thd] = 0
            seg_probs /= seg_probs.sum(0, keepdim=True)
        return seg_pred

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = self.postprocess_result(seg_logits)
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official NACLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): arch='reduced', attn_strategy='naclip', gaussian_std=5.0,
    pamr_steps=10, pamr_stride=(8, 16), prob_thd=0.0, logit_scale=40, slide_stride=112,
    slide_crop=224 (0: whole image); half=False."""
    segmentor = OfficialNACLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
