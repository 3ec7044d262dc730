"""``SCLIPSegmentor``: training-free open-vocabulary segmentation with a CLIP ViT.

Pipeline per image (see PROTOCOL.md): sliding windows through the dense ViT, patch
features · class-name embeddings (cosine), canvas averaging, upsampling to the original
size, optional PAMR, then post-processing to a label map. Everything method-specific
(attention variant, last-block structure, logit scale, thresholds) is a constructor
argument, hence one config key.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..class_names import load_class_names
from ..errors import SCLIPError
from .backbone import CLIPDenseViT
from .clip_loader import load_clip
from .pamr import PAMR
from .postprocess import predict_labels
from .sliding_window import slide_inference
from .text_classifier import default_cache_dir, load_or_build, resolve_templates

OPENAI_CLIP_MEAN = [122.771, 116.746, 104.094]
OPENAI_CLIP_STD = [68.501, 66.632, 70.323]
PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def palette_for(num_classes: int) -> List[List[int]]:
    """A fixed, distinguishable colour per class (seeded, so every run draws the same)."""
    generator = torch.Generator().manual_seed(2024)
    colours = torch.randint(0, 256, (num_classes, 3), generator=generator)
    return colours.tolist()


def windows_per_chunk(backbone: CLIPDenseViT, crop, memory_budget_mb: float) -> int:
    """How many windows fit a forward pass within ``memory_budget_mb`` (a rough estimate)."""
    tokens = (crop[0] // backbone.patch_size[0]) * (crop[1] // backbone.patch_size[1]) + 1
    width = backbone.visual.conv1.out_channels
    heads = backbone.visual.transformer.resblocks[0].attn.num_heads
    floats = tokens * width * 12 + heads * tokens * tokens * 3  # activations + attention maps
    return max(1, int(memory_budget_mb * 2 ** 20 // (floats * 4)))


@MODELS.register_module()
class SCLIPSegmentor(BaseSegmentor):
    """Training-free CLIP segmentor (SCLIP and its successors).

    Args:
        class_names: class-name file (one class a line, synonyms separated by ", ").
        pretrained: ``'openai'`` (or another open_clip tag of ``arch``) or a local checkpoint.
        arch: open_clip model name, used with tags and open_clip checkpoints.
        clip_format: ``'auto'``, ``'openai'`` or ``'open_clip'`` for local checkpoints.
        attention: the modified blocks' attention, ``dict(type=name, **kwargs)``.
        num_modified_blocks: how many final blocks use ``attention``.
        last_block_residual / last_block_mlp: keep the last block's residual / MLP.
        logit_scale, prob_thd, area_thd, bg_idx: post-processing (see postprocess.py).
        slide_crop / slide_stride: sliding window; ``None`` = the model's input size / half
            of the crop; ``slide_crop=0`` runs the whole image in one pass.
        slide_mode: ``'batched'`` (fast) or ``'simple'`` (one window at a time, for checking).
        window_batch_size: windows per forward pass; ``None`` derives it from ``memory_budget_mb``.
        fused_attention: use fused scaled-dot-product attention where identical.
        precision: ``'fp16'``, ``'bf16'`` or ``'fp32'`` autocast for the vision tower on CUDA
            (always fp32 on CPU).
        templates: ``'openai_imagenet'`` (80 templates) or a list of strings with ``{}``.
        text_cache_dir: where class embeddings are cached (``None``: $SCLIP_CACHE_DIR or
            ~/.cache/sclip; ``False`` disables the cache).
        pamr_steps / pamr_dilations: PAMR refinement (0 steps = off).
        train_cfg / test_cfg: accepted for mmseg.apis.init_model, unused.
    """

    def __init__(self,
                 class_names: str,
                 pretrained: Optional[str] = 'openai',
                 arch: Optional[str] = 'ViT-B-16',
                 clip_format: str = 'auto',
                 attention: Union[dict, str, None] = None,
                 num_modified_blocks: int = 1,
                 last_block_residual: bool = True,
                 last_block_mlp: bool = True,
                 logit_scale: float = 40.0,
                 prob_thd: float = 0.0,
                 area_thd: Optional[float] = None,
                 bg_idx: int = 0,
                 slide_crop: Optional[int] = None,
                 slide_stride: Optional[int] = None,
                 slide_mode: str = 'batched',
                 window_batch_size: Optional[int] = None,
                 memory_budget_mb: float = 2048,
                 fused_attention: bool = True,
                 precision: str = 'fp16',
                 templates: Union[str, Sequence[str]] = 'openai_imagenet',
                 text_cache_dir: Union[str, bool, None] = None,
                 text_batch_size: int = 256,
                 pamr_steps: int = 0,
                 pamr_dilations: Sequence[int] = (8, 16),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='SCLIPDataPreProcessor', mean=OPENAI_CLIP_MEAN,
                                     std=OPENAI_CLIP_STD, bgr_to_rgb=True)
        if isinstance(data_preprocessor, dict):  # mmseg's registry, whatever the default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.names = load_class_names(class_names)
        self.templates = resolve_templates(templates)
        if pretrained is None:
            # mmseg.apis.init_model sets model.pretrained = None before building the model.
            pretrained = os.environ.get('SCLIP_PRETRAINED', 'openai')
            logging.getLogger('sclip').warning(
                'model.pretrained is None (mmseg.apis.init_model clears it); using %r '
                '(set SCLIP_PRETRAINED=/path/to/ViT-B-16.pt to use a local file)', pretrained)
        self.weights_name = f'{arch}:{pretrained}'
        clip = load_clip(pretrained, arch, clip_format)
        self.backbone = CLIPDenseViT(clip.visual, attention, num_modified_blocks,
                                     last_block_residual, last_block_mlp, fused_attention)
        clip.visual = None  # the vision tower lives in the backbone; `clip` keeps the text tower
        self.text_model = clip
        self.tokenizer = self._tokenizer(arch, clip)

        self.register_buffer('query_class', torch.tensor(self.names.query_class), persistent=False)
        self.num_classes = self.names.num_classes
        self.logit_scale = float(logit_scale)
        self.prob_thd = float(prob_thd)
        self.area_thd = None if area_thd is None else float(area_thd)
        if not 0 <= int(bg_idx) < self.num_classes:
            raise SCLIPError(f'model.bg_idx={bg_idx} is outside the {self.num_classes} classes of '
                             f'{class_names}.')
        self.bg_idx = int(bg_idx)

        native = self.backbone.image_size
        crop = native[0] if slide_crop is None else int(slide_crop)
        stride = max(crop // 2, 1) if slide_stride is None else int(slide_stride)
        self.slide_crop, self.slide_stride = (crop, crop), (stride, stride)
        if crop > 0 and stride <= 0:
            raise SCLIPError(f'model.slide_stride={slide_stride} must be positive.')
        if slide_mode not in ('batched', 'simple'):
            raise SCLIPError(f"model.slide_mode={slide_mode!r} must be 'batched' or 'simple'.")
        self.slide_mode = slide_mode
        if window_batch_size is None and crop > 0:
            window_batch_size = windows_per_chunk(self.backbone, self.slide_crop, memory_budget_mb)
        self.window_batch_size = int(window_batch_size or 1)
        if precision not in PRECISIONS:
            raise SCLIPError(f"model.precision={precision!r} must be one of {', '.join(PRECISIONS)}.")
        self.precision = precision
        self.text_cache_dir = (None if text_cache_dir is False else
                               (text_cache_dir or default_cache_dir()))
        self.text_batch_size = int(text_batch_size)
        self.pamr = PAMR(pamr_steps, pamr_dilations) if pamr_steps and pamr_steps > 0 else None
        self._class_embeddings: Optional[Tensor] = None
        self.dataset_meta = dict(classes=tuple(self.names.display_names),
                                 palette=palette_for(self.num_classes))

    @staticmethod
    def _tokenizer(arch: Optional[str], clip):
        import open_clip
        context_length = getattr(clip, 'context_length', 77)
        if arch and arch in open_clip.list_models():
            return open_clip.get_tokenizer(arch, context_length=context_length)
        return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)

    # --- text side --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.query_class.device

    @property
    def class_embeddings(self) -> Tensor:
        """(Q, D) normalised embeddings of every class name, built once per device."""
        if self._class_embeddings is None:
            self._class_embeddings = load_or_build(
                self.text_model, self.tokenizer, self.names.queries, self.templates, self.device,
                self.weights_name, self.text_cache_dir, self.text_batch_size)
        if self._class_embeddings.device != self.device:
            self._class_embeddings = self._class_embeddings.to(self.device)
        return self._class_embeddings

    # --- vision side ------------------------------------------------------------------------
    def autocast(self):
        dtype = PRECISIONS[self.precision]
        if self.device.type != 'cuda' or dtype is None:
            return contextlib.nullcontext()
        return torch.autocast('cuda', dtype=dtype)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Normalised patch features (B, gh, gw, D)."""
        with self.autocast():
            features = self.backbone(inputs)
        return F.normalize(features.float(), dim=-1)

    def patch_logits(self, crops: Tensor) -> Tensor:
        """Cosine similarity of every patch with every class name, (B, Q, gh, gw)."""
        logits = self.extract_feat(crops) @ self.class_embeddings.T
        return logits.permute(0, 3, 1, 2)

    @torch.no_grad()
    def encode_decode(self, inputs: Tensor, batch_data_samples=None) -> Tensor:
        """Per-query logits at input resolution (B, Q, H, W)."""
        images = list(inputs)
        return torch.stack(self.query_logits(images, [tuple(image.shape[-2:]) for image in images]))

    def query_logits(self, images: List[Tensor], sizes: List[tuple]) -> List[Tensor]:
        """Per-query logits (Q, h, w) of each normalised image (3, H, W), resized to ``sizes``.

        Sliding window: canvas at input resolution, then bilinear to the size. Whole image
        (``slide_crop=0``): patch logits straight to the size, as the official code does.
        """
        def resize(logits: Tensor, size) -> Tensor:
            return F.interpolate(logits[None], size=size, mode='bilinear', align_corners=False)[0]
        if self.slide_crop[0] <= 0:
            return [resize(self.patch_logits(image[None])[0], size) for image, size in zip(images, sizes)]
        batch = self.window_batch_size if self.slide_mode == 'batched' else 1
        canvases = slide_inference(images, self.patch_logits, len(self.names.queries),
                                   self.slide_crop, self.slide_stride, batch)
        return [resize(canvas, size) for canvas, size in zip(canvases, sizes)]

    @torch.no_grad()  # training-free: never build an autograd graph
    def predict(self, inputs: Union[Tensor, List[Tensor]], data_samples=None) -> List[SegDataSample]:
        images = list(inputs)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(ori_shape=tuple(image.shape[-2:]),
                                                        img_shape=tuple(image.shape[-2:])))
                            for image in images]
        sizes = [tuple(sample.metainfo.get('ori_shape', image.shape[-2:]))[:2]
                 for image, sample in zip(images, data_samples)]
        for image, sample, size, logits in zip(images, data_samples, sizes, self.query_logits(images, sizes)):
            if self.pamr is not None:
                resized = F.interpolate(image[None], size=size, mode='bilinear', align_corners=False)
                logits = self.pamr(resized, logits[None])[0]
            scores, labels = predict_labels(logits, self.query_class, self.num_classes, self.logit_scale,
                                            self.prob_thd, self.area_thd, self.bg_idx)
            sample.set_data(dict(seg_logits=PixelData(data=scores), pred_sem_seg=PixelData(data=labels)))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self.encode_decode(inputs, data_samples)

    def loss(self, inputs, data_samples):
        raise SCLIPError('SCLIPSegmentor is training-free: run tools/test.py, not a training loop.')
