"""SegEarth-OV (Li et al., "SegEarth-OV: Towards Training-Free Open-Vocabulary Segmentation for
Remote Sensing Images", CVPR 2025), as likyoo/SegEarth-OV @ 3e22a96 computes it
(``segearth_segmentor.py``, its vendored open_clip ``VisionTransformer.forward`` /
``custom_attn`` with ``model_type='SegEarth'``, ``simfeatup_dev/upsamplers.py``):

    h = ln_1(x_{L-1})
    o = out_proj((softmax(q·qᵀ·s) + softmax(k·kᵀ·s) + softmax(v·vᵀ·s)) · v)   (no residual, no MLP)
    t = ln_post(o) · proj                          (all tokens; t_0 is the modified [CLS] token)
    F = SimFeatUp(t_1..N on the patch grid, guided by the window)      (16x, to the window's pixels)
    f = F / ‖F‖ + λ · t_0 / ‖t_0‖                  (global bias subtraction: λ = -0.3)

so that ``f · text = cos(F, text) + λ · cos(t_0, text)``: the class scores of the window's
[CLS] token, the bias every patch shares, are subtracted from every pixel's. The official code
adds ``cls_logits * cls_token_lambda`` to the logits; adding the unit [CLS] vector to the unit
features first is the same sum (to float rounding), hence ``normalizes = True``.

``ignore_residual=False`` keeps the residual and the MLP (official ``x + attn``, ``+ mlp``);
``cls_token_lambda=0`` drops the bias subtraction (official xBD config); ``upsampler=None`` is
the official ``feature_up=False`` (patch logits resized bilinearly by the segmentor).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk
from ..simfeatup import JBUUpsampler, load_upsampler
from .base import Method, TextSide, register_method
from .last_block import LastBlockAttention

UPSAMPLER_KEYS = ('type', 'checkpoint')


@register_method('segearth_ov')
class SegEarthOV(Method):
    """SegEarth-OV's last block, [CLS] bias subtraction and SimFeatUp upsampling."""
    normalizes = True

    def __init__(self, attention='csa_qkv', ignore_residual: bool = True, cls_token_lambda: float = -0.3,
                 upsampler: Optional[dict] = None):
        super().__init__()
        self.ignore_residual = bool(ignore_residual)
        self.last_block = LastBlockAttention(attention, num_modified_blocks=1,
                                             last_block_residual=not self.ignore_residual,
                                             last_block_mlp=not self.ignore_residual)
        self.cls_token_lambda = float(cls_token_lambda)
        if upsampler is not None:
            upsampler = dict(upsampler)
            for key in upsampler:
                if key not in UPSAMPLER_KEYS:
                    raise SCLIPError(f'model.method.upsampler.{key}: no such setting (it takes: '
                                     f'{", ".join(UPSAMPLER_KEYS)}).')
            upsampler.setdefault('type', 'jbu_one')
        self.upsampler_spec = upsampler
        self.upsampler = None

    def setup(self, vit: CLIPViT) -> None:
        self.last_block.setup(vit)
        if self.upsampler_spec is None:
            return
        upsampler = load_upsampler(self.upsampler_spec['type'], vit.embed_dim, self.upsampler_spec.get('checkpoint'))
        if isinstance(upsampler, JBUUpsampler) and tuple(vit.patch_size) != (upsampler.factor, upsampler.factor):
            raise SCLIPError(f"model.method.upsampler.type={self.upsampler_spec['type']!r} upsamples "
                             f'{upsampler.factor}x, but model.arch has {vit.patch_size[0]}-pixel patches (the '
                             "official code fails there too); use type='bilinear' or upsampler=None.")
        self.upsampler = upsampler

    def official_fp16(self) -> None:
        """Official: ``get_upsampler(...).cuda().half()``."""
        if self.upsampler is not None:
            self.upsampler.half()

    def upsample(self, features: Tensor, images: Tensor) -> Tensor:
        """(B, D, gh, gw) -> (B, D, H, W) guided by the windows (B, 3, H, W). Official: the fp16
        upsampler under ``torch.cuda.amp.autocast()``, its output ``.half()``."""
        dtype = next(self.upsampler.parameters(), features).dtype
        official = dtype == torch.float16 and features.is_cuda
        with torch.autocast('cuda', dtype=torch.float16, enabled=official):
            out = self.upsampler(features.to(dtype), images.to(dtype))
        return out.to(features.dtype)

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        vit = trunk.vit
        x = self.last_block.modified_block(trunk, vit.depth, trunk.tokens(vit.depth - 1))
        tokens = vit.visual.ln_post(x)
        cls = tokens[:, 0] @ vit.visual.proj                      # pooled ('tok')
        patches = tokens[:, 1:] @ vit.visual.proj                 # (B, gh*gw, D)
        batch, (rows, cols) = patches.shape[0], trunk.grid
        if self.upsampler is None:
            features = patches.reshape(batch, rows, cols, -1)
        else:
            grid = patches.transpose(1, 2).reshape(batch, -1, rows, cols)
            features = self.upsample(grid, trunk.images).permute(0, 2, 3, 1)
        features = features / features.norm(dim=-1, keepdim=True)
        if self.cls_token_lambda != 0:  # official: output_cls_token = cls_token_lambda != 0
            cls = cls / cls.norm(dim=-1, keepdim=True)
            features = features + self.cls_token_lambda * cls[:, None, None, :]
        return features

    def attention_maps(self, trunk: Trunk) -> Tensor:
        return self.last_block.attention_maps(trunk)
