"""Oracle: the official ProxyCLIP inference (mc-lan/ProxyCLIP, ``proxyclip_segmentor.py``
``forward_feature`` / ``forward_slide`` / ``compute_padsize``, the vendored open_clip
``transformer.py`` ``VisionTransformer.forward`` / ``custom_attn``, ``myutils.UnNormalize``).

The vision foundation model (VFM) is injected: ``vfm_features(imgs_norm) -> (B, C, h, w)``
runs the network only (SAM's ``image_encoder``; DINO's ``get_intermediate_layers(x)[0][:, 1:]``
laid out on its grid; DINOv2's ``get_intermediate_layers(x, reshape=True)[0]``; MAE's
``forward_features`` laid out on its grid) and returns its output in the VFM's dtype (fp16 for
the official ``.half()`` VFM). The oracle builds its input exactly as the official code does:
un-normalise with CLIP's mean / std (0-1 scale), ImageNet-normalise (torchvision), ``.half()``
(``half=True``), and for SAM resize to 1024 x 1024, for MAE to ``slide_crop`` x ``slide_crop``
(bilinear, align_corners=False, in fp16).

Quirks kept (see also common.py):
- ``I, J`` are both computed from the (resized) window's HEIGHT (``shape[-2]`` twice): for
  DINO / MAE the token sequence is reshaped to (I, J) (a non-square window raises here, as the
  official reshape does), and the logits are reshaped to (I, J) for every VFM (DINOv2 on a
  non-square window raises there).
- The DINO branch's qkv forward hook (re-registered on every call, never removed) and the
  q / k / v it reshapes are dead code: the features used are ``feat[:, 1:]``. Not transcribed.
- ``token_size = (w // p, h // p)`` with ``B, nc, w, h = x.shape``: (width / p, height / p),
  swapped; CLIP's value tokens are reshaped to it before being resized to the VFM grid, which
  scrambles them on non-square windows.
- Proxy attention: cosine similarity of the VFM tokens, ``(s - mean(s) * beta) * gamma``
  (mean over the whole tensor: batch of one), values < 0 -> -inf (a row left all -inf gives
  NaN), cast to the activation dtype, repeated per head; values = CLIP's last-block value
  tokens (CLS dropped) bilinearly resized to the VFM grid; out-projection; no residual, no MLP;
  ``ln_post`` and ``proj`` on the VFM-grid tokens.
- ``forward_slide`` zero-pads each window (in normalised space) to a multiple of 56 (split left
  / right, odd pixel right / bottom) and cuts the logits back; the whole-image path does not pad.
- Without a VFM the last block is CLIP's own, CLS dropped: a branch of forward_feature that the
  official constructor cannot reach (an unknown ``vfm_model`` crashes at ``self.vfm.half()``);
  kept for cross-checks (``vfm_model=None``).
- fp16 (``half=True``): the CLIP input is ``img.half()`` and the VFM input ``imgs_norm.half()``;
  the canvas stays fp32 (``img`` is never cast in ``predict``), so fp16 window logits are
  accumulated into fp32 and post-processed in fp32.
- ``postprocess_result``: ClearCLIP's (no area threshold).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torchvision import transforms

from .common import (PaddedWindowSegmentor, embed, layer_norm, official_fp16, query_index_tensor,
                     residual_block)

PAD_MULTIPLE = 56
# patch size of the official VFMs: SAM vit_b, DINO dino_vitb8, DINOv2 dinov2_vitb14_reg, MAE vit_base_patch16
VFM_PATCH_SIZES = {'sam': 16, 'dino': 8, 'dinov2': 14, 'mae': 16}
CLIP_MEAN_01 = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD_01 = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class UnNormalize(object):
    """``myutils.UnNormalize``: x * std + mean per channel, on a clone."""

    def __init__(self, mean, std):
        self.mean = mean
        self.std = std

    def __call__(self, image: Tensor) -> Tensor:
        image2 = torch.clone(image)
        for t, m, s in zip(image2, self.mean, self.std):
            t.mul_(s).add_(m)
        return image2


def custom_attn(attn_layer: nn.MultiheadAttention, x: Tensor, ex_feats: Tensor, beta: float = 1.2,
                gamma: float = 3.0, token_size=(16, 16)) -> Tensor:
    """``VisionTransformer.custom_attn`` (proxy attention) of the vendored open_clip (LND)."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads

    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    B, C, H, W = ex_feats.shape
    q_k = F.normalize(ex_feats.flatten(2, 3), dim=1)
    similarity = torch.einsum("b c m, b c n -> b m n", q_k, q_k)

    similarity = (similarity - torch.mean(similarity) * beta) * gamma
    similarity[similarity < 0.0] = float('-inf')

    mask = similarity.to(q.dtype).unsqueeze(1).repeat(1, num_heads, 1, 1)
    mask = mask.reshape(bsz * num_heads, mask.shape[2], mask.shape[3])
    attn_weights = F.softmax(mask, dim=-1)

    v = v[:, 1:, :].reshape(bsz * num_heads, token_size[0], token_size[1], head_dim).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(H, W), mode='bilinear', align_corners=False)
    v = v.permute(0, 2, 3, 1).reshape(bsz * num_heads, H * W, head_dim)

    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    return attn_output


def encode_image(visual: nn.Module, x: Tensor, ex_feats: Optional[Tensor] = None, beta: float = 1.2,
                 gamma: float = 3.0) -> Tensor:
    """``CLIP.encode_image(image, external_feats, beta, gamma)``: (B, H_vfm * W_vfm, D)."""
    B, nc, w, h = x.shape
    x, _ = embed(visual, x)

    token_size = h // visual.patch_size[0], w // visual.patch_size[1]  # swapped (see module docstring)

    x = x.permute(1, 0, 2)  # NLD -> LND
    for blk in visual.transformer.resblocks[:-1]:
        x = residual_block(blk, x)
    for blk in visual.transformer.resblocks[-1:]:
        if ex_feats is not None:
            x = custom_attn(blk.attn, layer_norm(blk.ln_1, x), ex_feats=ex_feats, beta=beta, gamma=gamma,
                            token_size=token_size)
        else:
            x = residual_block(blk, x)
            x = x[1:]

    x = x.permute(1, 0, 2)  # LND -> NLD

    x = layer_norm(visual.ln_post, x)
    x = x @ visual.proj
    return x


def tokens_on_grid(spatial: Tensor, I: int, J: int) -> Tensor:
    """DINO's ``feat[:, 1:, :].reshape(nb_im, I, J, -1).permute(0, 3, 1, 2)`` (MAE's
    ``rearrange('b (h w) c -> b c h w', h=I, w=J)``): the VFM's row-major token sequence, read
    back from the callable's (B, C, h, w) map, laid out on (I, J)."""
    tokens = spatial.flatten(2).transpose(1, 2)  # (B, h * w, C) = feat[:, 1:, :]
    nb_im = tokens.shape[0]
    return tokens.reshape(nb_im, I, J, -1).permute(0, 3, 1, 2)


class OfficialProxyCLIP(PaddedWindowSegmentor):
    """``ProxyCLIPSegmentation`` of the official code, from an already built model, text features and VFM."""

    pad_multiple = PAD_MULTIPLE

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 vfm_features: Optional[Callable[[Tensor], Tensor]] = None, vfm_model: Optional[str] = 'dino',
                 vfm_patch_size: Optional[int] = None, prob_thd: float = 0.0, logit_scale: float = 40,
                 beta: float = 1.2, gamma: float = 3.0, slide_stride: int = 112, slide_crop: int = 336,
                 half: bool = False):
        self.clip = official_fp16(clip_model) if half else clip_model
        self.half = half
        if vfm_model is not None and vfm_features is None:
            raise ValueError(f'vfm_model={vfm_model!r} needs vfm_features')
        self.vfm_model = vfm_model
        self.vfm = vfm_features
        self.vfm_patch_size = vfm_patch_size or VFM_PATCH_SIZES.get(vfm_model)
        self.unnorm = UnNormalize(CLIP_MEAN_01, CLIP_STD_01)
        self.norm = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.dtype = self.query_features.dtype
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.beta = beta
        self.gamma = gamma

    def forward_feature(self, img: Tensor, logit_size=None) -> Tensor:
        visual = self.clip.visual
        clip_token_size = img.shape[-2] // visual.patch_size[0], img.shape[-1] // visual.patch_size[1]

        imgs_norm = [self.norm(self.unnorm(img[i])) for i in range(len(img))]
        imgs_norm = torch.stack(imgs_norm, dim=0)

        if self.half:
            imgs_norm = imgs_norm.half()  # official: always (its VFM is always fp16)

        p = self.vfm_patch_size
        if self.vfm_model == 'sam':
            imgs_norm = F.interpolate(imgs_norm, size=(1024, 1024), mode='bilinear', align_corners=False)
            I, J = imgs_norm.shape[-2] // p, imgs_norm.shape[-2] // p
            ex_feats = self.vfm(imgs_norm)
        elif self.vfm_model == 'dino':
            # (the qkv hook and the q / k / v built from it are dead code)
            I, J = imgs_norm[0].shape[-2] // p, imgs_norm[0].shape[-2] // p
            ex_feats = tokens_on_grid(self.vfm(imgs_norm), I, J)
        elif self.vfm_model == 'dinov2':
            I, J = imgs_norm.shape[-2] // p, imgs_norm.shape[-2] // p
            ex_feats = self.vfm(imgs_norm)
        elif self.vfm_model == 'mae':
            imgs_norm = F.interpolate(imgs_norm, size=(self.slide_crop, self.slide_crop), mode='bilinear',
                                      align_corners=False)
            I, J = imgs_norm.shape[-2] // p, imgs_norm.shape[-2] // p
            ex_feats = tokens_on_grid(self.vfm(imgs_norm), I, J)
        else:
            I, J = clip_token_size
            ex_feats = None

        image_features = self.encode_image(visual, img.half() if self.half else img, ex_feats)

        image_features /= image_features.norm(dim=-1, keepdim=True)
        logits = image_features @ self.query_features.T
        logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], I, J)

        if logit_size == None:  # noqa: E711 (official)
            logits = nn.functional.interpolate(logits, size=img.shape[-2:], mode='bilinear')
        else:
            logits = nn.functional.interpolate(logits, size=logit_size, mode='bilinear')
        return logits

    def encode_image(self, visual: nn.Module, x: Tensor, ex_feats: Optional[Tensor]) -> Tensor:
        """``self.clip.encode_image(img, external_feats=ex_feats, beta, gamma)``."""
        return encode_image(visual, x, ex_feats, self.beta, self.gamma)

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        """``predict`` up to ``postprocess_result``."""
        if self.slide_crop > 0:
            return self.forward_slide(inputs, ori_shape, self.slide_stride, self.slide_crop)
        return self.forward_feature(inputs, tuple(ori_shape))



@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official ProxyCLIP labels (1, h, w) for one pre-processed image ``img`` (1, 3, H, W).

    Settings (official defaults): vfm_features (the injected VFM, required unless
    vfm_model=None), vfm_model='dino' (base_config.py), vfm_patch_size (default by vfm_model: sam 16,
    dino 8, dinov2 14, mae 16), prob_thd=0.0, logit_scale=40, beta=1.2, gamma=3.0,
    slide_stride=112, slide_crop=336 (0: whole image); half=False."""
    segmentor = OfficialProxyCLIP(clip_model, query_features, query_idx, **settings)
    return segmentor.predict(img, ori_shape, return_logits=return_logits)
