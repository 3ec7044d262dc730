"""Oracle: the official ITACLIP inference (m-arda-aydn/ITACLIP @ 521a33c4, ``itaclip_segmentor.py``
+ ``clip/model.py`` ``VisionTransformer.forward(return_all=True, attn_self=True)``).

Quirks kept (see also common.py):
- Vision: blocks 1..11 unmodified; ``custom_attn(return_attn=True)`` of blocks 7, 8, 10 (the
  1-based ``layer_count``) on ``ln_1`` of their inputs, averaged; the last block's own weights
  averaged 0.5/0.5 with them; ``x = x + out_proj(A·v)`` (no MLP); ``ln_post(x) @ proj`` on all
  tokens. ``attn_self``: ``softmax(q·qᵀ·s) + softmax(k·kᵀ·s)``; otherwise ``softmax((q·s)·kᵀ)``.
- ``forward_feature`` normalises all tokens, then drops CLS. Image engineering: ``manual_seed(0)``;
  original, ``T.Grayscale()`` (expanded to 3 channels) and ``T.GaussianBlur(11, sigma=5)``
  features, each normalised, averaged (not re-normalised); vertically / horizontally flipped
  windows' logits upsampled to the window, flipped back by the same transform, averaged;
  ``w·logits + (1 - w)·flip_logits``.
- Text: each query in the 80 templates (normalised mean); with ``auxiliary_text_path`` each line's
  text after ``>=`` also in the 80 templates; datasets with a background class keep its queries'
  features and mix ``(1 - d)·name + d·aux[class - 1]`` into the others, else ``aux[class]``;
  no re-normalisation.
- ``forward_slide``: SCLIP's loop, resize to ``ori_shape``, PAMR on the resized input.
- ``postprocess_result``: SCLIP's (softmax, per-class max, ``area_thd``, ``prob_thd``) then
  ``cv2.morphologyEx(seg_pred.astype(uint8), MORPH_CLOSE, 3×3 rect)``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torch import Tensor

from .common import (PAMR, averaged_windows, embed, get_cls_idx, layer_norm, official_fp16, query_index_tensor,
                     residual_block)


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, attn_self: bool) -> Tensor:
    """``VisionTransformer.custom_attn(return_attn=True)``: weights (B·heads, N, N)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    if attn_self:
        q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
    else:
        attn_weights = torch.bmm(q * scale, k.transpose(1, 2))
        attn_weights = F.softmax(attn_weights, dim=-1)
    return attn_weights


def use_saved_attn(attn_layer: nn.MultiheadAttention, x: Tensor, saved_attn: Tensor) -> Tensor:
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    _, _, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    attn_output = torch.bmm(saved_attn, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, x: Tensor, attn_self: bool = True) -> Tensor:
    """``CLIP.encode_image(img, return_all=True, attn_self=...)``: (B, 1 + N, D)."""
    x = x.type(visual.conv1.weight.dtype)
    x, _ = embed(visual, x)
    x = x.permute(1, 0, 2)  # NLD -> LND

    layer_count = 0
    attn_list = []
    selected_intermediate_layers = [7, 8, 10]
    for blk in visual.transformer.resblocks[:-1]:
        layer_count += 1
        if layer_count in selected_intermediate_layers:
            saved_attn = custom_attn(blk.attn, layer_norm(blk.ln_1, x), attn_self=attn_self)
            attn_list.append(saved_attn)  # attention maps from intermediate layers
            x = residual_block(blk, x)
        else:
            x = residual_block(blk, x)

    avg_attn = torch.mean(torch.stack(attn_list), dim=0)
    for blk in visual.transformer.resblocks[-1:]:
        custom = custom_attn(blk.attn, layer_norm(blk.ln_1, x), attn_self=attn_self)
        avg_attn = 0.5 * custom + 0.5 * avg_attn
        x = x + use_saved_attn(blk.attn, layer_norm(blk.ln_1, x), avg_attn)

    x = x.permute(1, 0, 2)  # LND -> NLD
    return layer_norm(visual.ln_post, x) @ visual.proj


def get_cls_idx_itaclip(path: str) -> Tuple[List[str], List[int]]:
    """``get_cls_idx`` (names split on ', ', line breaks removed)."""
    return get_cls_idx(path, ', ')


def imagenet_templates() -> List[Callable]:
    """prompts/imagenet_template.py ``openai_imagenet_template``: OpenAI's 80, in open_clip's order
    (the same list, compared while transcribing)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    return list(OPENAI_IMAGENET_TEMPLATES)


def text_feature(encode_text: Callable, tokenize: Callable, query_words: Sequence[str],
                 templates: Sequence[Callable]) -> Tensor:
    """``ITACLIP_Segmentor.text_feature``."""
    query_features = []
    with torch.no_grad():
        for qw in query_words:
            query = tokenize([temp(qw) for temp in templates])
            feature = encode_text(query)
            feature /= feature.norm(dim=-1, keepdim=True)
            feature = feature.mean(dim=0)
            feature /= feature.norm()
            query_features.append(feature.unsqueeze(0))
        return torch.cat(query_features, dim=0)


def get_aux_text(path: str) -> List[str]:
    with open(path, 'r') as f:
        aux_text = f.readlines()
    for i, name in enumerate(aux_text):
        name = name.replace('\n', '')
        aux_text[i] = name.split('>=')[1]
    return aux_text


def query_features(encode_text: Callable, tokenize: Callable, query_words: Sequence[str], query_idx: Tensor,
                   templates: Sequence[Callable], auxiliary_text_path: Optional[str], bg: bool,
                   def_coefficient: float) -> Tensor:
    """The constructor's text side."""
    if auxiliary_text_path is None:
        return text_feature(encode_text, tokenize, query_words, templates)
    auxiliary_texts = get_aux_text(auxiliary_text_path)
    original_features = text_feature(encode_text, tokenize, query_words, templates)
    aux_features = text_feature(encode_text, tokenize, auxiliary_texts, templates)
    if bg:
        features = torch.zeros_like(original_features)
        num_bg_words = (query_idx == 0).sum().item()
        aux_features = aux_features[query_idx[num_bg_words:] - 1]
        features[num_bg_words:] = ((1 - def_coefficient) * original_features[num_bg_words:]
                                   + (def_coefficient) * aux_features)
        features[:num_bg_words] = original_features[:num_bg_words]
    else:
        aux_features = aux_features[query_idx]
        features = (1 - def_coefficient) * original_features + (def_coefficient) * aux_features
    return features


class OfficialITACLIP:
    """``ITACLIP_Segmentor`` of the official code, from an already built model."""

    def __init__(self, clip_model: nn.Module, query_feats: Tensor, query_idx: Sequence[int], pamr_steps: int = 0,
                 pamr_stride: Tuple[int, ...] = (8, 16), prob_thd: float = 0.0, logit_scale: float = 40,
                 slide_stride: int = 112, slide_crop: int = 224, area_thd=None, img_engineering: bool = False,
                 attn_self: bool = True, img_eng_coefficient: float = 0.75, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        device = query_feats.device
        self.query_idx = query_index_tensor(query_idx, device)
        self.num_queries = len(query_idx)
        self.query_features = query_feats
        self.img_engineering = img_engineering
        self.transforms = ([T.Grayscale(), T.GaussianBlur(kernel_size=11, sigma=5)])
        self.flip_transforms = ([T.RandomVerticalFlip(p=1), T.RandomHorizontalFlip(p=1)])
        self.attn_self = attn_self
        self.img_eng_coefficient = img_eng_coefficient
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.pamr = PAMR(pamr_steps, dilations=pamr_stride).to(device) if pamr_steps > 0 else None

    def encode(self, img: Tensor) -> Tensor:
        return encode_image(self.net.visual, img, attn_self=self.attn_self)

    def get_flipped_logits(self, flip_logits, transforms, size, w, h, out_dim):
        logit_list = []
        for i, flip_logit in enumerate(flip_logits):
            flip_logit = flip_logit.permute(0, 2, 1).reshape(-1, out_dim, w, h)
            logit = nn.functional.interpolate(flip_logit, size=size, mode='bilinear')
            logit = transforms[i](logit)
            logit_list.append(logit)
        logits = torch.mean(torch.stack(logit_list), dim=0)
        return logits

    def forward_feature(self, img: Tensor, text_features: Tensor, logit_size=None) -> Tensor:
        img_list = []
        flip_list = []
        if not self.img_engineering:
            image_features = self.encode(img)
            image_features /= image_features.norm(dim=-1, keepdim=True)
            img_list.append(image_features)
        else:
            torch.manual_seed(0)
            image_features = self.encode(img)
            image_features /= image_features.norm(dim=-1, keepdim=True)
            img_list.append(image_features)
            for transform in self.transforms:
                new_img = transform(img.squeeze())
                new_img = new_img.unsqueeze(0)
                if new_img.shape[1] == 1:
                    new_img = new_img.expand(1, 3, -1, -1)
                image_features = self.encode(new_img)
                image_features /= image_features.norm(dim=-1, keepdim=True)
                img_list.append(image_features)

            for transform in self.flip_transforms:
                new_img = transform(img.squeeze())
                new_img = new_img.unsqueeze(0)
                if new_img.shape[1] == 1:
                    new_img = new_img.expand(1, 3, -1, -1)
                flipped_image_features = self.encode(new_img)
                flipped_image_features /= flipped_image_features.norm(dim=-1, keepdim=True)
                flip_list.append(flipped_image_features)

            image_features = torch.mean(torch.stack(img_list), dim=0)

        image_features = image_features[:, 1:]
        logits = image_features @ text_features.T
        if self.img_engineering:
            flip_logit_list = []
            for flip_img_features in flip_list:
                flip_img_features = flip_img_features[:, 1:]
                flip_logit_list.append(flip_img_features @ text_features.T)

        patch_size = self.net.visual.patch_size[0]  # OpenAI's ViT: an int
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)

        size = img.shape[-2:] if logit_size is None else logit_size
        logits = nn.functional.interpolate(logits, size=size, mode='bilinear')
        if self.img_engineering:
            flip_logits = self.get_flipped_logits(flip_logit_list, self.flip_transforms, size=size, w=w, h=h,
                                                  out_dim=out_dim)
            logits = (self.img_eng_coefficient) * logits + (1 - self.img_eng_coefficient) * flip_logits
        return logits

    def forward_slide(self, img: Tensor, ori_shape, stride=112, crop_size=224) -> Tensor:
        preds = averaged_windows(img, stride, crop_size, self.num_queries,
                                 lambda crop: self.forward_feature(crop, text_features=self.query_features))
        img_size = tuple(ori_shape)[:2]
        logits = nn.functional.interpolate(preds, size=img_size, mode='bilinear')
        if self.pamr:
            img = nn.functional.interpolate(img, size=img_size, mode='bilinear')
            logits = self.pamr(img, logits.to(img.dtype)).to(img.dtype)
        return logits

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        if self.slide_crop > 0:
            return self.forward_slide(inputs, ori_shape, self.slide_stride, self.slide_crop)
        return self.forward_feature(inputs, self.query_features, tuple(ori_shape))

    def postprocess_result(self, seg_logits: Tensor) -> Tensor:
        query_idx = self.query_idx
        batch_size = seg_logits.shape[0]
        for i in range(batch_size):
            seg_logits = seg_logits[i] * self.logit_scale
            seg_logits = seg_logits.softmax(0)  # n_queries * w * h

            num_cls, num_queries = max(query_idx) + 1, len(query_idx)
            if num_cls != num_queries:
                seg_logits = seg_logits.unsqueeze(0)
                cls_index = nn.functional.one_hot(query_idx)
                cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
                seg_logits = (seg_logits * cls_index).max(1)[0]

            if self.area_thd is not None:
                predictions = nn.functional.one_hot(seg_logits.argmax(0), num_cls).to(seg_logits.dtype)
                area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)
                area_pred = (area_pred > self.area_thd * area_pred.sum()).to(seg_logits.dtype)
                seg_logits[1:] *= area_pred.transpose(0, -1)

            seg_pred = seg_logits.argmax(0, keepdim=True)
            seg_pred[seg_logits.max(0, keepdim=True)[0] < self.prob_thd] = 0

            kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
            seg_pred = torch.from_numpy(cv2.morphologyEx(seg_pred.squeeze().cpu().numpy().astype(np.uint8),
                                                         cv2.MORPH_CLOSE, kernel)).unsqueeze(0)
        return seg_pred

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = self.postprocess_result(seg_logits.clone())
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_feats: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official ITACLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W); settings
    as the constructor's (official defaults: img_engineering=False, slide 224/112, no PAMR)."""
    return OfficialITACLIP(clip_model, query_feats, query_idx, **settings).predict(img, ori_shape, return_logits)
