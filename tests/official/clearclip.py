"""Oracle: the official ClearCLIP inference (mc-lan/ClearCLIP, ``clearclip_segmentor.py`` +
the vendored open_clip ``transformer.py`` ``VisionTransformer.forward`` / ``custom_attn``),
for ``clip_type='CLIP'`` with a ViT (the BLIP branch is not transcribed; the GEM branch is
tests/official/gem.py).

Quirks kept (see also common.py):
- ``model_type`` selects the last block's attention: 'ClearCLIP' ``softmax(bmm(q, qᵀ) * scale)``,
  'SCLIP' (CSA), 'MaskCLIP' (identity via a -inf mask), 'vanilla' ``softmax(bmm(q, kᵀ) * scale)``.
  The official configs/base_config.py sets ``model_type='vanilla'``; the oracle's default is
  'ClearCLIP', the method the repository is named after (pass 'vanilla' for the config as is).
  Any other value leaves ``attn_weights`` unbound in the official code (UnboundLocalError); so
  here.
- ``ignore_residual=True`` (default): the features are the attention output alone (no residual,
  no MLP) -> ``ln_post`` -> ``proj``; ``False``: ``x + attn``, ``+ mlp`` as CLIP. Either way the
  official code then also runs ``x = blk(x)`` on the unmodified last block, whose result is never
  used: not computed here.
- ``ln_post`` on all tokens, then ``_global_pool`` ('tok') drops the CLS token before ``proj``.
- ``forward_slide`` zero-pads each window to a multiple of the patch size (split left / right,
  odd pixel right / bottom), then cuts the logits back; the whole-image path does not pad.
- fp16 (``half=True``): ``predict`` casts the input with ``inputs.half()`` before the slide, so
  the canvas (``img.new_zeros``), the count matrix, the average, the final resize and the whole
  post-processing are fp16; the model is open_clip ``precision='fp16'`` (LayerNormFp32).
- Default windows: ``slide_crop=448``, ``slide_stride=224``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import (PaddedWindowSegmentor, embed, layer_norm, mlp, official_fp16, query_index_tensor,
                     residual_block)

MODEL_TYPES = ('vanilla', 'MaskCLIP', 'SCLIP', 'ClearCLIP')


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, model_type: str = 'ClearCLIP') -> Tensor:
    """``VisionTransformer.custom_attn`` of the vendored open_clip (LND)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    if model_type == 'vanilla':
        qk_attn = torch.bmm(q, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(qk_attn, dim=-1)
    elif model_type == 'MaskCLIP':
        mask = torch.empty(q.shape[1], q.shape[1], dtype=q.dtype).to(q.device)
        mask.fill_(float('-inf'))
        mask.fill_diagonal_(0)
        mask = mask.unsqueeze(0).repeat(q.shape[0], 1, 1)
        attn_weights = F.softmax(mask, dim=-1)
    elif model_type == 'SCLIP':
        qq_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        kk_attn = torch.bmm(k, k.transpose(1, 2)) * scale
        attn_weights = F.softmax(qq_attn, dim=-1) + F.softmax(kk_attn, dim=-1)
    elif model_type == 'ClearCLIP':
        qq_attn = torch.bmm(q, q.transpose(1, 2)) * scale
        attn_weights = F.softmax(qq_attn, dim=-1)
    else:
        raise UnboundLocalError(f"official code: model_type={model_type!r} leaves attn_weights unbound")

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, x: Tensor, model_type: str = 'ClearCLIP', ignore_residual: bool = True) -> Tensor:
    """``CLIP.encode_image(img, model_type, ignore_residual)`` -> patch tokens (B, N, D).

    open_clip's ``encode_image`` does not cast the input (the caller did: ``inputs.half()``)."""
    assert visual.attn_pool is None and not visual.final_ln_after_pool and visual.pool_type == 'tok', \
        'only the OpenAI ViT configuration of the official code is transcribed'
    last_n_layers = 1
    x, _ = embed(visual, x)

    x = x.permute(1, 0, 2)  # NLD -> LND

    for blk in visual.transformer.resblocks[:-last_n_layers]:
        x = residual_block(blk, x)

    output = 0
    for blk in visual.transformer.resblocks[-last_n_layers:]:
        if ignore_residual:
            output += custom_attn(blk.attn, layer_norm(blk.ln_1, x), model_type=model_type)
            # x = blk(x): dead, its result is never read
        else:
            x_out = x + custom_attn(blk.attn, layer_norm(blk.ln_1, x), model_type=model_type)
            x_out = x_out + mlp(blk, x_out)
            output += x_out
            # x = blk(x): dead, its result is never read

    x = output.permute(1, 0, 2)  # LND -> NLD

    x = layer_norm(visual.ln_post, x)
    _pooled, tokens = x[:, 0], x[:, 1:]  # _global_pool, pool_type 'tok'
    tokens = tokens @ visual.proj
    return tokens


class OfficialClearCLIP(PaddedWindowSegmentor):
    """``ClearCLIPSegmentation`` of the official code, from an already built model and text features."""

    @property
    def pad_multiple(self) -> int:
        return self.patch_size[0]

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 model_type: str = 'ClearCLIP', ignore_residual: bool = True, prob_thd: float = 0.0,
                 logit_scale: float = 50, slide_stride: int = 224, slide_crop: int = 448, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        self.half = half
        self.model_type = model_type
        self.patch_size = self.net.visual.patch_size
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.num_classes = max(query_idx) + 1
        self.query_features = query_features
        self.dtype = self.query_features.dtype
        self.ignore_residual = ignore_residual
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop

    def encode(self, img: Tensor) -> Tensor:
        """``self.net.encode_image(img, model_type, ignore_residual)`` (the GEM branch's
        ``self.net.visual(img)`` is tests/official/gem.py)."""
        return encode_image(self.net.visual, img, self.model_type, self.ignore_residual)

    def forward_feature(self, img: Tensor, logit_size=None) -> Tensor:
        image_features = self.encode(img)
        image_features /= image_features.norm(dim=-1, keepdim=True)
        logits = image_features @ self.query_features.T

        w, h = img[0].shape[-2] // self.patch_size[0], img[0].shape[-1] // self.patch_size[1]
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)

        if logit_size == None:  # noqa: E711 (official)
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear')
        return logits

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        """``predict`` up to ``postprocess_result``."""
        if self.half:
            inputs = inputs.half()  # official: always (its model is always fp16)
        if self.slide_crop > 0:
            return self.forward_slide(inputs, ori_shape, self.slide_stride, self.slide_crop)
        return self.forward_feature(inputs, tuple(ori_shape))



@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official ClearCLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): model_type='ClearCLIP' (no constructor default; base_config.py
    says 'vanilla'), ignore_residual=True, prob_thd=0.0, logit_scale=50, slide_stride=224,
    slide_crop=448 (0: whole image); half=False (True: official fp16, pass fp16 query_features)."""
    segmentor = OfficialClearCLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
