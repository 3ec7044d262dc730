"""Oracle: the official SCLIP inference (wangf3014/SCLIP, ``clip_segmentor.py`` +
``clip/model.py`` ``VisionTransformer.forward(return_all=True, csa=True)``).

Quirks kept (see also common.py):
- CSA: ``softmax(bmm(q, qᵀ) * scale) + softmax(bmm(k, kᵀ) * scale)``, scale applied after
  the product; the last block keeps its residual and MLP.
- ``forward_feature`` normalises all tokens, then drops the CLS token.
- fp16 (``half=True``): ``encode_image`` casts the window with ``image.type(self.dtype)``
  (the model's conv1 dtype); the canvas (``img.new_zeros``) stays fp32, so fp16 window logits
  are accumulated into fp32; with PAMR the refined logits are cast back with
  ``.to(self.dtype)`` (the fp16 text features' dtype) and post-processed in fp16; the
  whole-image path (``slide_crop=0``) post-processes the fp16 logits directly.
- PAMR runs on the normalised input resized to ``ori_shape`` (bilinear, align_corners=False),
  the logits resized inside PAMR with align_corners=True.
- ``postprocess_result``: batch-of-one rebinding, 0-d tensor ``num_cls``, ``area_thd``
  (common.postprocess_sclip).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import (PAMR, averaged_windows, embed, layer_norm, mlp, official_fp16, postprocess_sclip,
                     query_index_tensor, residual_block)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, csa: bool = False) -> Tensor:
    """``VisionTransformer.custom_attn`` (LND in, LND out)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    if csa:
        q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
    else:
        attn_weights = torch.bmm(q * scale, k.transpose(1, 2))
        attn_weights = F.softmax(attn_weights, dim=-1)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, image: Tensor, csa: bool = True) -> Tensor:
    """``CLIP.encode_image(image, return_all=True, csa=True)``: (B, 1 + N, D)."""
    x = image.type(visual.conv1.weight.dtype)  # encode_image: image.type(self.dtype)
    x, _ = embed(visual, x)

    x = x.permute(1, 0, 2)  # NLD -> LND
    for blk in visual.transformer.resblocks[:-1]:
        x = residual_block(blk, x)
    for blk in visual.transformer.resblocks[-1:]:
        x = x + custom_attn(blk.attn, layer_norm(blk.ln_1, x), csa=csa)
        x = x + mlp(blk, x)
    x = x.permute(1, 0, 2)  # LND -> NLD

    return layer_norm(visual.ln_post, x) @ visual.proj  # return_all


class OfficialSCLIP:
    """``CLIPForSegmentation`` of the official code, from an already built model and text features."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 pamr_steps: int = 0, pamr_stride: Tuple[int, ...] = (8, 16), prob_thd: float = 0.0,
                 logit_scale: float = 40, slide_stride: int = 112, slide_crop: int = 224,
                 area_thd: Optional[float] = None, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        device = query_features.device
        self.query_idx = query_index_tensor(query_idx, device)
        self.num_queries = len(query_idx)
        self.num_classes = max(query_idx) + 1
        self.query_features = query_features
        self.dtype = self.query_features.dtype
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False
        if pamr_steps > 0:
            self.pamr = PAMR(pamr_steps, dilations=pamr_stride).to(device)
        else:
            self.pamr = None

    def forward_feature(self, img: Tensor, logit_size=None) -> Tensor:
        image_features = encode_image(self.net.visual, img, csa=True)
        image_features /= image_features.norm(dim=-1, keepdim=True)
        image_features = image_features[:, 1:]
        logits = image_features @ self.query_features.T

        patch_size = self.net.visual.patch_size[0]  # OpenAI's ViT: an int
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)

        if logit_size == None:  # noqa: E711 (official)
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear')
        return logits

    def forward_slide(self, img: Tensor, ori_shape, stride=112, crop_size=224) -> Tensor:
        preds = averaged_windows(img, stride, crop_size, self.num_queries, self.forward_feature)
        img_size = tuple(ori_shape)[:2]
        logits = nn.functional.interpolate(preds, size=img_size, mode='bilinear')

        if self.pamr:
            img = nn.functional.interpolate(img, size=img_size, mode='bilinear')
            logits = self.pamr(img, logits.to(img.dtype)).to(self.dtype)
        return logits

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        """``predict`` up to ``postprocess_result``."""
        if self.slide_crop > 0:
            return self.forward_slide(inputs, ori_shape, self.slide_stride, self.slide_crop)
        return self.forward_feature(inputs, tuple(ori_shape))

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = postprocess_sclip(seg_logits.clone(), self.query_idx, self.logit_scale, self.prob_thd,
                                     self.area_thd)
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official SCLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): logit_scale=40, prob_thd=0.0, area_thd=None, slide_stride=112,
    slide_crop=224 (0: whole image), pamr_steps=0, pamr_stride=(8, 16); half=False."""
    segmentor = OfficialSCLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
