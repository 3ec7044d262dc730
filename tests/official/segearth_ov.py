"""Oracle: the official SegEarth-OV inference (likyoo/SegEarth-OV @ 3e22a96:
``segearth_segmentor.py``, the vendored open_clip ``VisionTransformer.forward`` /
``custom_attn``, ``simfeatup_dev/upsamplers.py``), for ``clip_type='CLIP'`` with a ViT (the
BLIP and GEM branches are not transcribed).

Quirks kept (see also common.py and clearclip.py, whose harness SegEarth-OV copies):
- ``model_type='SegEarth'``: ``softmax(qqᵀ·s) + softmax(kkᵀ·s) + softmax(vvᵀ·s)``, rows sum to 3.
- ``output_cls_token = cls_token_lambda != 0``: the pooled token ``ln_post(out)[:, 0] @ proj`` of
  the MODIFIED last block (not CLIP's own [CLS]); ``logits += cls_logits * cls_token_lambda``.
- ``feature_up``: the patch features (1, D, gh, gw) go through the upsampler guided by the padded
  window ``img`` under ``torch.cuda.amp.autocast()`` (a no-op in fp32 on the CPU) and
  ``.half()`` (skipped with ``half=False``); logits are then at pixel resolution and the
  bilinear resize to ``img``'s size is an identity.
- JBU: FeatUp's compiled ``AdaptiveConv.apply`` is the official Python fallback
  ``adaptive_conv_py_simple`` (unfold + einsum, the function the official file keeps for it).
- ``postprocess_result``: pixels whose best class probability is under ``prob_thd`` get
  ``bg_idx`` (not 0).
- The checkpoint: ``torch.load(path)['state_dict']``, every key's first 10 characters
  (``upsampler.``) dropped, ``load_state_dict(strict=True)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import clearclip
from .common import PaddedWindowSegmentor, embed, layer_norm, mlp, query_index_tensor, residual_block  # noqa: F401


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, model_type: str = 'SegEarth') -> Tensor:
    """``VisionTransformer.custom_attn`` (LND), its 'SegEarth' branch; the others are ClearCLIP's."""
    if model_type != 'SegEarth':
        return clearclip.custom_attn(attn_layer, x, model_type)
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    qq_attn = torch.bmm(q, q.transpose(1, 2)) * scale
    kk_attn = torch.bmm(k, k.transpose(1, 2)) * scale
    vv_attn = torch.bmm(v, v.transpose(1, 2)) * scale
    attn_weights = F.softmax(qq_attn, dim=-1) + F.softmax(kk_attn, dim=-1) + F.softmax(vv_attn, dim=-1)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, x: Tensor, model_type: str = 'SegEarth', ignore_residual: bool = True,
                 output_cls_token: bool = False):
    """``CLIP.encode_image(img, model_type, ignore_residual, output_cls_token)``."""
    assert visual.attn_pool is None and not visual.final_ln_after_pool and visual.pool_type == 'tok'
    last_n_layers = 1
    x, _ = embed(visual, x)
    x = x.permute(1, 0, 2)  # NLD -> LND
    for blk in visual.transformer.resblocks[:-last_n_layers]:
        x = residual_block(blk, x)

    output = 0
    for blk in visual.transformer.resblocks[-last_n_layers:]:
        if ignore_residual:
            output += custom_attn(blk.attn, layer_norm(blk.ln_1, x), model_type=model_type)
        else:
            x_out = x + custom_attn(blk.attn, layer_norm(blk.ln_1, x), model_type=model_type)
            x_out = x_out + mlp(blk, x_out)
            output += x_out
        # x = blk(x): dead

    x = output.permute(1, 0, 2)  # LND -> NLD
    x = layer_norm(visual.ln_post, x)
    pooled, tokens = x[:, 0], x[:, 1:]  # _global_pool, 'tok'
    pooled = pooled @ visual.proj
    tokens = tokens @ visual.proj
    if output_cls_token:
        return pooled, tokens
    return tokens


# --- simfeatup_dev/upsamplers.py ------------------------------------------------------------

def adaptive_conv_py_simple(input, filters):
    b, c, h1, w1 = input.shape
    b, h2, w2, f1, f2 = filters.shape
    assert f1 == f2
    kernel_size = f1

    t_filters = filters.reshape(b, h2, w2, f1 * f2)

    patches = torch.nn.Unfold(kernel_size)(input) \
        .view((b, c, f1 * f2, h2, w2))

    return torch.einsum('bhwf,bcfhw->bchw', t_filters, patches)


class JBULearnedRange(torch.nn.Module):
    def __init__(self, guidance_dim, feat_dim, key_dim, scale=2, radius=3):
        super().__init__()
        self.scale = scale
        self.radius = radius
        self.diameter = self.radius * 2 + 1

        self.guidance_dim = guidance_dim
        self.key_dim = key_dim
        self.feat_dim = feat_dim

        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.range_proj = torch.nn.Sequential(
            torch.nn.Conv2d(guidance_dim, key_dim, 1, 1),
            torch.nn.GELU(),
            torch.nn.Dropout2d(.1),
            torch.nn.Conv2d(key_dim, key_dim, 1, 1),
        )

        self.fixup_proj = torch.nn.Sequential(
            torch.nn.Conv2d(guidance_dim + self.diameter ** 2, self.diameter ** 2, 1, 1),
            torch.nn.GELU(),
            torch.nn.Dropout2d(.1),
            torch.nn.Conv2d(self.diameter ** 2, self.diameter ** 2, 1, 1),
        )

        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))

    def get_range_kernel(self, x):
        GB, GC, GH, GW = x.shape
        proj_x = self.range_proj(x)
        proj_x_padded = F.pad(proj_x, pad=[self.radius] * 4, mode='reflect')
        queries = torch.nn.Unfold(self.diameter)(proj_x_padded) \
            .reshape((GB, self.key_dim, self.diameter * self.diameter, GH, GW)) \
            .permute(0, 1, 3, 4, 2)
        pos_temp = self.range_temp.exp().clamp_min(1e-4).clamp_max(1e4)
        return F.softmax(pos_temp * torch.einsum("bchwp,bchw->bphw", queries, proj_x), dim=1)

    def get_spatial_kernel(self, device):
        dist_range = torch.linspace(-1, 1, self.diameter, device=device)
        x, y = torch.meshgrid(dist_range, dist_range, indexing='ij')  # the official default ('ij')
        patch = torch.cat([x.unsqueeze(0), y.unsqueeze(0)], dim=0)
        return torch.exp(- patch.square().sum(0) / (2 * self.sigma_spatial ** 2)) \
            .reshape(1, self.diameter * self.diameter, 1, 1)

    def forward(self, source, guidance):
        GB, GC, GH, GW = guidance.shape
        SB, SC, SH, SQ = source.shape
        assert (SB == GB)

        spatial_kernel = self.get_spatial_kernel(source.device)
        range_kernel = self.get_range_kernel(guidance)

        combined_kernel = range_kernel * spatial_kernel
        combined_kernel /= combined_kernel.sum(1, keepdim=True).clamp(1e-7)

        combined_kernel += .1 * self.fixup_proj(torch.cat([combined_kernel, guidance], dim=1))
        combined_kernel = combined_kernel.permute(0, 2, 3, 1) \
            .reshape(GB, GH, GW, self.diameter, self.diameter)

        hr_source = torch.nn.Upsample((GH, GW), mode='bicubic', align_corners=False)(source)
        hr_source_padded = F.pad(hr_source, pad=[self.radius] * 4, mode='reflect')

        combined_kernel = combined_kernel.to(hr_source_padded.dtype)
        result = adaptive_conv_py_simple(hr_source_padded, combined_kernel)  # official: AdaptiveConv.apply
        return result


class JBUStack(torch.nn.Module):

    def __init__(self, feat_dim, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.up1 = JBULearnedRange(3, feat_dim, 32, radius=3)
        self.up2 = JBULearnedRange(3, feat_dim, 32, radius=3)
        self.up3 = JBULearnedRange(3, feat_dim, 32, radius=3)
        self.up4 = JBULearnedRange(3, feat_dim, 32, radius=3)
        self.fixup_proj = torch.nn.Sequential(
            torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(feat_dim, feat_dim, kernel_size=1))

    def upsample(self, source, guidance, up):
        _, _, h, w = source.shape
        small_guidance = F.adaptive_avg_pool2d(guidance, (h * 2, w * 2))
        upsampled = up(source, small_guidance)
        return upsampled

    def forward(self, source, guidance):
        source_2 = self.upsample(source, guidance, self.up1)
        source_4 = self.upsample(source_2, guidance, self.up2)
        source_8 = self.upsample(source_4, guidance, self.up3)
        source_16 = self.upsample(source_8, guidance, self.up4)
        return self.fixup_proj(source_16) * 0.1 + source_16


class JBUOne(torch.nn.Module):

    def __init__(self, feat_dim, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.up = JBULearnedRange(3, feat_dim, 32, radius=5)

        self.fixup_proj = torch.nn.Sequential(
            torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(feat_dim, feat_dim, kernel_size=1))

    def upsample(self, source, guidance, up):
        _, _, h, w = source.shape
        small_guidance = F.adaptive_avg_pool2d(guidance, (h * 2, w * 2))
        upsampled = up(source, small_guidance)
        return upsampled

    def forward(self, source, guidance):
        source_2 = self.upsample(source, guidance, self.up)
        source_4 = self.upsample(source_2, guidance, self.up)
        source_8 = self.upsample(source_4, guidance, self.up)
        source_16 = self.upsample(source_8, guidance, self.up)
        return self.fixup_proj(source_16) * 0.1 + source_16


class Bilinear(torch.nn.Module):

    def forward(self, feats, img):
        _, _, h, w = img.shape
        return F.interpolate(feats, (h, w), mode="bilinear")


def get_upsampler(upsampler, dim):
    if upsampler == 'bilinear':
        return Bilinear()
    elif upsampler == 'jbu_stack':
        return JBUStack(dim)
    elif upsampler == 'jbu_one':
        return JBUOne(dim)
    else:
        raise ValueError(f"Unknown upsampler {upsampler}")  # (resize_conv, carafe, sapa, ifa: not transcribed)


def load_upsampler(model_name: str, feat_dim: int, model_path: str) -> nn.Module:
    """The segmentor's ``if feature_up:`` block (without ``.cuda().half()``)."""
    upsampler = get_upsampler(model_name, feat_dim)
    ckpt = torch.load(model_path, weights_only=False)['state_dict']
    weights_dict = {k[10:]: v for k, v in ckpt.items()}
    upsampler.load_state_dict(weights_dict, strict=True)
    return upsampler.eval()


# --- segearth_segmentor.py ------------------------------------------------------------------

def postprocess(seg_logits: Tensor, query_idx: Tensor, logit_scale: float, prob_thd: float, bg_idx: int) -> Tensor:
    """``postprocess_result`` for one image (``seg_pred``)."""
    seg_logits = seg_logits[0] * logit_scale
    seg_logits = seg_logits.softmax(0)  # n_queries * w * h

    num_cls, num_queries = max(query_idx) + 1, len(query_idx)
    if num_cls != num_queries:
        seg_logits = seg_logits.unsqueeze(0)
        cls_index = nn.functional.one_hot(query_idx)
        cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
        seg_logits = (seg_logits * cls_index).max(1)[0]

    seg_pred = seg_logits.argmax(0, keepdim=True)
    seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = bg_idx
    return seg_pred


class OfficialSegEarthOV(PaddedWindowSegmentor):
    """``SegEarthSegmentation`` from an already built CLIP, text features and upsampler."""

    @property
    def pad_multiple(self) -> int:
        return self.patch_size[0]

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 upsampler: nn.Module = None, model_type: str = 'SegEarth', ignore_residual: bool = True,
                 prob_thd: float = 0.0, logit_scale: float = 50, slide_stride: int = 112, slide_crop: int = 224,
                 cls_token_lambda: float = 0, bg_idx: int = 0):
        self.net = clip_model
        self.model_type = model_type
        self.feature_up = upsampler is not None
        self.upsampler = upsampler
        self.cls_token_lambda = cls_token_lambda
        self.output_cls_token = cls_token_lambda != 0
        self.bg_idx = bg_idx
        self.patch_size = self.net.visual.patch_size
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.num_classes = max(query_idx) + 1
        self.query_features = query_features
        self.feat_dim = self.query_features.shape[-1]
        self.ignore_residual = ignore_residual
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop

    def forward_feature(self, img: Tensor, logit_size=None) -> Tensor:
        image_features = encode_image(self.net.visual, img, self.model_type, self.ignore_residual,
                                      self.output_cls_token)
        if self.output_cls_token:
            image_cls_token, image_features = image_features
            image_cls_token /= image_cls_token.norm(dim=-1, keepdim=True)
            cls_logits = image_cls_token @ self.query_features.T

        # featup
        if self.feature_up:
            feature_w, feature_h = img[0].shape[-2] // self.patch_size[0], img[0].shape[-1] // self.patch_size[1]
            image_w, image_h = img[0].shape[-2], img[0].shape[-1]
            image_features = image_features.permute(0, 2, 1).view(1, self.feat_dim, feature_w, feature_h)
            image_features = self.upsampler(image_features, img)  # official: under autocast, then .half()
            image_features = image_features.view(1, self.feat_dim, image_w * image_h).permute(0, 2, 1)

        image_features /= image_features.norm(dim=-1, keepdim=True)
        logits = image_features @ self.query_features.T

        if self.output_cls_token:
            logits = logits + cls_logits * self.cls_token_lambda

        if self.feature_up:
            w, h = img[0].shape[-2], img[0].shape[-1]
        else:
            w, h = img[0].shape[-2] // self.patch_size[0], img[0].shape[-1] // self.patch_size[1]
        out_dim = logits.shape[-1]
        logits = logits.permute(0, 2, 1).reshape(-1, out_dim, w, h)

        if logit_size == None:  # noqa: E711 (official)
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear')
        return logits

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        if self.slide_crop > 0:
            return self.forward_slide(inputs, ori_shape, self.slide_stride, self.slide_crop)
        return self.forward_feature(inputs, tuple(ori_shape))

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = postprocess(seg_logits, self.query_idx, self.logit_scale, self.prob_thd, self.bg_idx)
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official SegEarth-OV labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults; base_config.py: ``cls_token_lambda=-0.3``, ``jbu_one``):
    upsampler=None (``feature_up=False``) or a module from ``load_upsampler``, model_type='SegEarth',
    ignore_residual=True, prob_thd=0.0, logit_scale=50, slide_stride=112, slide_crop=224,
    cls_token_lambda=0, bg_idx=0."""
    return OfficialSegEarthOV(clip_model, query_features, query_idx, **settings).predict(
        img, ori_shape, return_logits=return_logits)
