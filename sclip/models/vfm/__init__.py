"""Vision foundation models (VFMs) for ProxyCLIP's proxy attention.

ProxyCLIP pairs CLIP with a label-free ViT whose patch features give the attention; this
package builds those ViTs so that their features equal the official code's:

* ``build_vfm(type, checkpoint=None, download=True, *, fused=False, tiny=False,
  config_overrides=None, cache_dir=None) -> VFM``; ``VFM.forward(images) -> (B, C, I, J)``;
* ``proxy_input(images_clip_normalised, vfm, crop, dtype=None)``: the VFM's input from
  CLIP's crop, as ProxyCLIP makes it (un-normalise, ImageNet-normalise, cast, resize).

=================  ==========================================  ==================================================
type               official model                              checkpoint, under https://dl.fbaipublicfiles.com/
=================  ==========================================  ==================================================
dino_vits16        hub facebookresearch/dino:main dino_vits16  dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth
dino_vits8         ... dino_vits8                              dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth
dino_vitb16        ... dino_vitb16                             dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth
dino_vitb8         ... dino_vitb8 (ProxyCLIP's DINO)           dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth
dinov2_vits14      hub facebookresearch/dinov2 dinov2_vits14   dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth
dinov2_vitb14      ... dinov2_vitb14                           dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth
dinov2_vitl14      ... dinov2_vitl14                           dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth
dinov2_vits14_reg  ... dinov2_vits14_reg                       dinov2/dinov2_vits14/dinov2_vits14_reg4_pretrain.pth
dinov2_vitb14_reg  ... dinov2_vitb14_reg (ProxyCLIP's DINOv2)  dinov2/dinov2_vitb14/dinov2_vitb14_reg4_pretrain.pth
dinov2_vitl14_reg  ... dinov2_vitl14_reg                       dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth
sam_vit_b          segment_anything sam_model_registry vit_b   segment_anything/sam_vit_b_01ec64.pth
sam_vit_l          ... vit_l                                   segment_anything/sam_vit_l_0b3195.pth
sam_vit_h          ... vit_h                                   segment_anything/sam_vit_h_4b8939.pth
mae_vit_b16        MAE models_vit.vit_base_patch16             mae/pretrain/mae_pretrain_vit_base.pth (md5 8cad7c...)
mae_vit_l16        ... vit_large_patch16                       mae/pretrain/mae_pretrain_vit_large.pth (md5 b8b06e...)
mae_vit_h14        ... vit_huge_patch14                        mae/pretrain/mae_pretrain_vit_huge.pth (md5 9bdbb0...)
=================  ==========================================  ==================================================

What each gives and sees (input: ImageNet-normalised, see ``proxy_input``):

* DINO: ``get_intermediate_layers(x)[0][:, 1:]`` (last block, final norm, patch tokens) as
  (B, C, H/p, W/p); the crop as it is; positional embedding resized bicubically by
  ``(n + 0.1) / M`` in the model's dtype.
* DINOv2: ``get_intermediate_layers(x, reshape=True)[0]`` (CLS and registers dropped); the
  crop as it is; positional embedding resized in float32 from 37x37, by ``(n + 0.1) / 37``
  without antialias for the plain models, to the size with antialias for ``*_reg`` (the
  hub's ``interpolate_offset=0.0, interpolate_antialias=True``); layer scale; 4 registers.
* SAM: ``image_encoder(x)`` (B, 256, 64, 64); the crop resized to 1024x1024 (bilinear);
  needs ``pip install segment-anything``.
* MAE: ``vit_*(img_size=crop, num_classes=0, global_pool=False).forward_features`` (final
  norm on the patch tokens); the crop resized to (crop, crop) (bilinear); positional
  embedding resized bicubically to crop/p from the float32 checkpoint.

All URLs start with ``https://dl.fbaipublicfiles.com/``. No project publishes sha256 sums;
MAE's README publishes the md5 prefixes above (checked after a download). Every model runs
the official explicit attention unless ``fused=True`` (PyTorch SDPA; equal up to rounding).
"""
from .base import VFM
from .factory import build_vfm
from .preprocess import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, proxy_input
from .specs import SPECS, VFMSpec, get_spec

VFM_TYPES = tuple(SPECS)

__all__ = ['VFM', 'VFMSpec', 'VFM_TYPES', 'SPECS', 'build_vfm', 'get_spec', 'proxy_input',
           'CLIP_MEAN', 'CLIP_STD', 'IMAGENET_MEAN', 'IMAGENET_STD']
