"""``SCLIPSegmentor``: training-free open-vocabulary segmentation with a CLIP ViT.

Pipeline per image (docs/PROTOCOL.md): sliding windows (or the whole image) through CLIP
running a method's forward program, patch features · class-name embeddings (cosine),
canvas averaging, upsampling to the original size, optional PAMR, then post-processing to
a label map. Everything method-specific (the method and its settings, logit scale,
thresholds, windows) is a constructor argument, hence one config key.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..class_names import load_class_names
from ..config_check import check_arguments, closest, refuse_unknown_keys, unknown_key_error
from ..errors import SCLIPError
from ..visualize import palette_for_classes
from .backbone import CLIPDenseViT
from .clip_loader import load_clip
from .methods import TextSide
from .pamr import PAMR
from .postprocess import predict_labels, predict_labels_tiled
from .methods.floss import expert_patch_probabilities, fuse_experts
from .precision import PRECISIONS, resolve_precision, to_official_fp16
from .sliding_window import slide_inference, upsample_window
from .text_classifier import TextClassifier, default_cache_dir, load_or_build, load_or_build_sets, tensor_checksum

OPENAI_CLIP_MEAN = [122.771, 116.746, 104.094]
OPENAI_CLIP_STD = [68.501, 66.632, 70.323]
AUTOCAST = {'fp16': torch.float16, 'bf16': torch.bfloat16}
WHOLE_IMAGE_UPSAMPLING = ('direct', 'via_input')


def windows_per_chunk(vit, crop, memory_budget_mb: float) -> int:
    """How many windows fit a forward pass within ``memory_budget_mb`` (a rough estimate)."""
    tokens = (crop[0] // vit.patch_size[0]) * (crop[1] // vit.patch_size[1]) + 1
    floats = tokens * vit.width * 12 + vit.num_heads * tokens * tokens * 3  # activations + attention maps
    return max(1, int(memory_budget_mb * 2 ** 20 // (floats * 4)))


@functools.lru_cache(maxsize=8)
def tokenizer_for(arch: Optional[str], context_length: int):
    """open_clip's tokenizer of ``arch`` (built once per process: it reads a 1.3 MB vocabulary)."""
    import open_clip
    if arch and arch in open_clip.list_models():
        return open_clip.get_tokenizer(arch, context_length=context_length)
    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)


def resolve_weights(clip_path: Optional[str], pretrained: Optional[str]) -> str:
    """``model.clip_path`` (the official codes' key) or its alias ``model.pretrained``."""
    if pretrained is not None and clip_path is not None and str(pretrained) != str(clip_path) \
            and str(clip_path) != 'openai':
        raise SCLIPError(f'model.clip_path={clip_path!r} and model.pretrained={pretrained!r} disagree; '
                         'set only model.clip_path.')
    weights = pretrained if pretrained is not None else clip_path
    if weights is None:
        weights = os.environ.get('SCLIP_PRETRAINED', 'openai')
        logging.getLogger('sclip').warning(
            'model.clip_path is not set; using %r (set model.clip_path=/path/to/ViT-B-16.pt)', weights)
    return str(weights)


@dataclass
class DeferredUpsample:
    """Per-query logits (Q, h, w) whose bilinear upsampling to ``size`` would not fit
    ``memory_budget_mb``: post-processed by column tiles of ``tile_width`` (postprocess.py)."""
    logits: Tensor
    size: tuple
    tile_width: int

    def full(self) -> Tensor:
        return F.interpolate(self.logits[None], size=self.size, mode='bilinear', align_corners=False)[0]


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes a run can still allocate on ``device`` (None when unknown)."""
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@MODELS.register_module()
class SCLIPSegmentor(BaseSegmentor):
    """Training-free CLIP segmentor (SCLIP and its successors).

    Args:
        class_names: class-name file (one class a line, synonyms separated by
            ``class_name_separator``).
        clip_path: ``'openai'`` (or another open_clip tag of ``arch``) or a local checkpoint;
            ``pretrained`` is an alias kept for older configs and commands.
        arch: open_clip model name, used with tags and open_clip checkpoints.
        clip_format: ``'auto'``, ``'openai'`` or ``'open_clip'`` for local checkpoints.
        method: the forward program, ``dict(type=name, **settings)`` (sclip/models/methods);
            ``None`` is the ``attention`` method, configured by the four keys below.
        attention: the modified blocks' attention, ``dict(type=name, **kwargs)``.
        num_modified_blocks: how many final blocks use ``attention``.
        last_block_residual / last_block_mlp: keep the last block's residual / MLP.
        vfm: a second backbone for methods that use one (ProxyCLIP), ``dict(type, checkpoint)``.
        region_masks: class-agnostic region masks for methods that use them (CorrCLIP),
            ``dict(type='files', root=...)`` or ``dict(type='sam2', checkpoint=..., ...)``
            (region_masks.py); a region mask map is read or generated once per image file.
        logit_scale, prob_thd, area_thd, bg_idx: post-processing (see postprocess.py).
        label_closing: a morphological closing of the label map by this square (ITACLIP: 3; 0 = off).
        slide_crop / slide_stride: sliding window; ``None`` = the model's input size / half
            of the crop; ``slide_crop=0`` runs the whole image in one pass.
        slide_pad: pad each window (zeros, centred) to a multiple of this before the model
            and crop the logits back (ClearCLIP: the patch size; ProxyCLIP: 56); 0 = off.
        whole_image_upsample: with ``slide_crop=0``, patch logits go straight to the original
            size (``'direct'``: SCLIP, ClearCLIP, SC-CLIP, ProxyCLIP) or first to the input size
            (``'via_input'``: NACLIP, ResCLIP).
        slide_mode: ``'batched'`` (fast) or ``'simple'`` (one window at a time, for checking).
        window_batch_size: windows per forward pass; ``None`` derives it from ``memory_budget_mb``.
        memory_budget_mb: bounds the windows per pass and the post-processing at the original
            size: above it, labels are computed by column tiles (the same labels; no seg_logits).
        fused_attention: use fused scaled-dot-product attention where identical.
        precision: ``'auto'`` (default): the official numerics of the machine, i.e. ``'official'``
            where CUDA is available and ``'fp32'`` otherwise (precision.py); ``'official'``: the
            official codes' fp16 casts on any device; ``'fp16'``/``'bf16'``: autocast on CUDA, the
            faster opt-in (``'bf16'`` also on the CPU); ``'fp32'``.
        official_cast_input: with ``precision='official'``, cast the input image to fp16 before
            the windows, as ClearCLIP's code does (its canvas and softmax are then fp16 too).
        templates: ``'openai_imagenet'`` (80 templates) or a list of strings with ``{}``.
        text: the pluggable text side (class_texts.py): ``dict(descriptions=dict(file, templates,
            weight, first_class), template_ranking=dict(file, top_n, aliases))``; None = names only.
        text_cache_dir: where class embeddings are cached (``None``: $SCLIP_CACHE_DIR or
            ~/.cache/sclip; ``False`` disables the cache).
        pamr_steps / pamr_dilations: PAMR refinement (0 steps = off).
        train_cfg / test_cfg: accepted for mmseg.apis.init_model, unused.
    """

    # A sweep's cells on the same weights share one CLIP (``backbone.vit.visual``, ``text_model``) and
    # one foundation model (``backbone.method.vfm``): sclip/group_eval.py.
    shares_clip_towers = True

    def __init__(self,
                 class_names: str,
                 clip_path: Optional[str] = None,
                 pretrained: Optional[str] = None,
                 arch: Optional[str] = 'ViT-B-16',
                 clip_format: str = 'auto',
                 method: Union[dict, str, None] = None,
                 attention: Union[dict, str, None] = None,
                 num_modified_blocks: Optional[int] = None,
                 last_block_residual: Optional[bool] = None,
                 last_block_mlp: Optional[bool] = None,
                 vfm: Optional[dict] = None,
                 region_masks: Optional[dict] = None,
                 logit_scale: float = 40.0,
                 prob_thd: float = 0.0,
                 area_thd: Optional[float] = None,
                 bg_idx: int = 0,
                 label_closing: int = 0,
                 slide_crop: Optional[int] = None,
                 slide_stride: Optional[int] = None,
                 slide_pad: int = 0,
                 whole_image_upsample: str = 'direct',
                 slide_mode: str = 'batched',
                 window_batch_size: Optional[int] = None,
                 memory_budget_mb: float = 2048,
                 fused_attention: bool = True,
                 precision: str = 'auto',
                 official_cast_input: bool = False,
                 templates: Union[str, Sequence[str]] = 'openai_imagenet',
                 text: Optional[dict] = None,
                 class_name_separator: str = ', ',
                 text_cache_dir: Union[str, bool, None] = None,
                 text_batch_size: int = 256,
                 pamr_steps: int = 0,
                 pamr_dilations: Sequence[int] = (8, 16),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 **unknown):
        refuse_unknown_keys(SCLIPSegmentor.__init__, unknown)
        check_arguments(SCLIPSegmentor.__init__, {
            k: v for k, v in locals().items() if k not in ('self', 'unknown', '__class__')})
        if data_preprocessor is None:
            data_preprocessor = dict(type='SCLIPDataPreProcessor', mean=OPENAI_CLIP_MEAN,
                                     std=OPENAI_CLIP_STD, bgr_to_rgb=True)
        if isinstance(data_preprocessor, dict):  # mmseg's registry, whatever the default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.names = load_class_names(class_names, class_name_separator)
        self.text_classifier = TextClassifier(self.names, templates, text)
        self.templates = self.text_classifier.templates
        weights = resolve_weights(clip_path, pretrained)
        self.weights_name = f'{arch}:{weights}'
        if precision not in PRECISIONS:
            raise SCLIPError(f"model.precision={precision!r} is unknown{closest(str(precision), PRECISIONS)} "
                             f"(one of {', '.join(PRECISIONS)}).")
        self.precision = precision = resolve_precision(precision)
        self.official = precision == 'official'
        clip = load_clip(weights, arch, clip_format)
        method_spec = self._method_spec(method, attention, num_modified_blocks, last_block_residual, last_block_mlp)
        self.backbone = CLIPDenseViT(clip.visual, fused=bool(fused_attention) and not self.official,
                                     method=method_spec)
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
        self.label_closing = int(label_closing)

        native = self.backbone.image_size
        crop = native[0] if slide_crop is None else int(slide_crop)
        stride = max(crop // 2, 1) if slide_stride is None else int(slide_stride)
        self.slide_crop, self.slide_stride = (crop, crop), (stride, stride)
        if crop > 0 and stride > crop:
            raise SCLIPError(f'model.slide_stride={stride} is larger than model.slide_crop={crop}: pixels '
                             'between windows would get no logits; use a stride of at most the crop.')
        if 0 < crop < self.backbone.patch_size[0]:
            raise SCLIPError(f'model.slide_crop={crop} is smaller than one {self.backbone.patch_size[0]}-pixel '
                             'patch; use 0 (whole image) or at least the patch size.')
        self.slide_pad = int(slide_pad)
        if whole_image_upsample not in WHOLE_IMAGE_UPSAMPLING:
            raise SCLIPError(f'model.whole_image_upsample={whole_image_upsample!r} must be '
                             f"{' or '.join(map(repr, WHOLE_IMAGE_UPSAMPLING))}.")
        self.whole_image_upsample = whole_image_upsample
        if slide_mode not in ('batched', 'simple'):
            raise SCLIPError(f"model.slide_mode={slide_mode!r} must be 'batched' or 'simple'.")
        self.slide_mode = slide_mode
        if window_batch_size is None and crop > 0:
            window_batch_size = windows_per_chunk(self.backbone.vit, self.slide_crop, memory_budget_mb)
        self.window_batch_size = int(window_batch_size or 1)
        self.memory_budget_mb = float(memory_budget_mb)
        self.official_cast_input = bool(official_cast_input)
        self._attach_vfm(vfm, crop)
        self._attach_presence_clip(clip_format)
        self._attach_region_masks(region_masks)
        if getattr(self.backbone.method, 'whole_image', False):  # Trident: its own windows over whole images
            self.backbone.method.check_windows(crop, stride, self.backbone.patch_size[0])
        # what decides this model's patch features besides CLIP's weights and the windows
        self.method_signature = json.dumps(dict(method=method_spec, vfm=vfm, crop=crop, precision=precision,
                                                region_masks=region_masks), sort_keys=True, default=str)
        if self.official:
            to_official_fp16(self.backbone.vit.visual)
            to_official_fp16(self.text_model)
            for name in ('vfm', 'sam'):  # the official codes run their foundation models in fp16 (CASS: not DINO)
                module = getattr(self.backbone.method, name, None)
                if module is not None and (name != 'vfm' or getattr(self.backbone.method, 'official_vfm_fp16', True)):
                    module.half()
            if self.presence_text_model is not None:  # official: clip.load on the GPU, fp16 as the first
                to_official_fp16(self.backbone.method.presence_vit.visual)
                to_official_fp16(self.presence_text_model)
            self.backbone.method.official_fp16()
        self.text_cache_dir = (None if text_cache_dir is False else
                               (text_cache_dir or default_cache_dir()))
        self.text_batch_size = int(text_batch_size)
        self.pamr = PAMR(pamr_steps, pamr_dilations) if pamr_steps and pamr_steps > 0 else None
        self._check_own_postprocess()
        self._class_embeddings: Optional[Tensor] = None
        self._sam_views_by_sample: dict = {}  # Trident's SAM work of each sample, for its refinement
        self._text: Optional[dict] = None
        self.dataset_meta = dict(classes=tuple(self.names.display_names),
                                 palette=palette_for_classes(self.names.classes))

    def _check_own_postprocess(self) -> None:
        """A method with its own post-processing (FreeCP) has no thresholds, PAMR or closing: a set
        one would be silently ignored, so it is refused."""
        method = self.backbone.method
        if not method.own_postprocess:
            return
        unused = dict(prob_thd=self.prob_thd != 0, area_thd=self.area_thd is not None,
                      pamr_steps=self.pamr is not None, label_closing=self.label_closing != 0)
        for key, used in unused.items():
            if used:
                raise SCLIPError(f'model.{key}: model.method.type={method.name!r} makes its labels with its own '
                                 'post-processing, which has no such step; leave it at its default.')

    @staticmethod
    def _method_spec(method, attention, num_modified_blocks, residual, mlp):
        """The method to build: an explicit ``method``, or the attention method from its four keys."""
        spec = {'type': method} if isinstance(method, str) else dict(method or {})
        spec.setdefault('type', 'attention')
        attention_keys = dict(attention=attention, num_modified_blocks=num_modified_blocks,
                              last_block_residual=residual, last_block_mlp=mlp)
        given = {k: v for k, v in attention_keys.items() if v is not None}
        if spec['type'] != 'attention':
            if given:
                raise SCLIPError(f'model.{sorted(given)[0]} configures the attention method, but '
                                 f"model.method.type is {spec['type']!r}; set its own settings under model.method.")
            return spec
        for key, value in given.items():
            if key in spec and spec[key] != value:
                raise SCLIPError(f'model.{key} and model.method.{key} disagree; set one of them.')
            spec[key] = value
        return spec

    def _attach_vfm(self, vfm: Optional[dict], crop: int) -> None:
        method = self.backbone.method
        if not getattr(method, 'needs_vfm', False):
            if vfm:
                raise SCLIPError(f'model.vfm is set but model.method.type={method.name!r} uses no second '
                                 'backbone; remove model.vfm.')
            return
        if not vfm or not vfm.get('type'):
            raise SCLIPError(f'model.method.type={method.name!r} needs a foundation model: set '
                             "model.vfm=dict(type='dino_vitb8', checkpoint=None or '/path/to/weights').")
        from .vfm import build_vfm
        spec = dict(vfm)
        vfm_type = spec.pop('type')
        allowed = ('checkpoint', 'download', 'fused', 'tiny', 'config_overrides')
        for key in spec:
            if key not in allowed:
                raise unknown_key_error('model.vfm', key, ('type',) + allowed)
        spec.setdefault('fused', False)  # the official explicit attention: fused moves masked similarities
        method.vfm = build_vfm(vfm_type, **spec)
        method.crop = crop
        self.vfm_name = f"{vfm_type}:{vfm.get('checkpoint') or 'official-url'}"

    def _attach_presence_clip(self, clip_format: str) -> None:
        """A method's second CLIP (CASS's scale-up: ViT-L/14 for the object-presence prior): its
        vision tower goes to the method, its text tower encodes the same queries (``text_side``)."""
        method = self.backbone.method
        spec = getattr(method, 'presence_clip', None)
        self.presence_text_model = None
        if not spec:
            return
        from .clip_vit import CLIPViT
        key = 'model.method.presence_clip.clip_path'
        try:
            clip = load_clip(spec['clip_path'], spec['arch'], clip_format)
        except SCLIPError as error:  # its messages name the main CLIP's keys
            raise SCLIPError(str(error).replace('model.clip_path', key).replace('model.arch',
                                                                              'model.method.presence_clip.arch')) \
                from None
        method.presence_vit = CLIPViT(clip.visual, self.backbone.fused)
        clip.visual = None
        self.presence_text_model = clip
        self.presence_tokenizer = self._tokenizer(spec['arch'], clip)
        self.presence_weights_name = f"{spec['arch']}:{spec['clip_path']}"

    def _attach_region_masks(self, spec: Optional[dict]) -> None:
        self.region_masks = None
        method = self.backbone.method
        if not getattr(method, 'needs_region_masks', False):
            if spec:
                raise SCLIPError(f'model.region_masks is set but model.method.type={method.name!r} uses no '
                                 'region masks; remove model.region_masks.')
            return
        if not spec or not spec.get('type'):
            raise SCLIPError(f"model.method.type={method.name!r} needs region masks: set model.region_masks="
                             "dict(type='files', root='data/region_masks/voc') or dict(type='sam2', checkpoint=...).")
        from .region_masks import RegionMasks
        self.region_masks = RegionMasks(spec, half=self.official)
        self._masks_by_sample = {}
        self._input_masks: List[Tensor] = []

    def _set_window_masks(self, chunk) -> None:
        """Give the method the region masks of a chunk of windows (``slide_inference``'s key:
        which windows of which images, and their padding, filled with the official 10000)."""
        if self.region_masks is None:
            return
        from .region_masks import PAD_VALUE
        jobs, pad = chunk
        crops = torch.stack([self._input_masks[index][y1:y2, x1:x2] for index, (y1, y2, x1, x2) in jobs])
        self.backbone.method.window_masks = F.pad(crops, pad, value=PAD_VALUE) if any(pad) else crops

    def _load_region_masks(self, images: List[Tensor], data_samples, shared) -> None:
        """Each image's masks at its file's size (for the map correction) and at the input size
        (for the windows: nearest, as officially)."""
        self._masks_by_sample, self._input_masks = {}, []
        for image, sample in zip(images, data_samples):
            masks = self.region_masks.for_image(sample.metainfo.get('img_path'), self.device, shared)
            self._masks_by_sample[id(sample)] = masks
            self._input_masks.append(F.interpolate(masks[None, None].float(), size=tuple(image.shape[-2:]),
                                                   mode='nearest')[0, 0].int())

    @staticmethod
    def _tokenizer(arch: Optional[str], clip):
        return tokenizer_for(arch, getattr(clip, 'context_length', 77))

    # --- text side --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.query_class.device

    @property
    def class_embeddings(self) -> Tensor:
        """(Q, D) embeddings of every class name (unit norm unless descriptions are mixed in),
        built once per device."""
        return self.text_embeddings['embeddings']

    @property
    def text_embeddings(self) -> dict:
        """``embeddings`` (Q, D), ``descriptions`` (Q, D) and ``experts`` (Q, Q, D) (None when
        ``model.text`` does not configure them), each encoded once and cached on disk."""
        if self._text is None or self._class_embeddings is None:
            def names(templates):
                return load_or_build(self.text_model, self.tokenizer, self.names.queries, templates, self.device,
                                     self.weights_name, self.text_cache_dir, self.text_batch_size,
                                     official=self.official)

            def sets(prompt_sets):
                return load_or_build_sets(self.text_model, self.tokenizer, prompt_sets, self.device,
                                          self.weights_name, self.text_cache_dir, self.text_batch_size,
                                          official=self.official)
            self._text = self.text_classifier.build(names, sets)
            self._text['presence'] = None if self.presence_text_model is None else load_or_build(
                self.presence_text_model, self.presence_tokenizer, self.names.queries, self.templates, self.device,
                self.presence_weights_name, self.text_cache_dir, self.text_batch_size, official=self.official)
            self._class_embeddings = self._text['embeddings']
        if self._text['embeddings'].device != self.device:
            self._text = {k: None if v is None else v.to(self.device) for k, v in self._text.items()}
        self._class_embeddings = self._text['embeddings']
        return self._text

    def text_side(self) -> TextSide:
        text = self.text_embeddings
        return TextSide(text['embeddings'], self.logit_scale, text['descriptions'], text['experts'], self.query_class,
                        text['presence'])

    def text_signature(self) -> str:
        """Identifies the text side by content (two models with the same names, templates, texts
        and weights share it), for sharing work between models in a sweep."""
        if getattr(self, '_text_signature', None) is None:
            self._text_signature = ':'.join(tensor_checksum(v) for v in self.text_embeddings.values() if v is not None)
        return self._text_signature

    # --- vision side ------------------------------------------------------------------------
    def autocast(self):
        dtype = AUTOCAST.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        if self.device.type == 'cuda':
            return torch.autocast('cuda', dtype=dtype)
        if self.device.type == 'cpu' and dtype == torch.bfloat16:
            return torch.autocast('cpu', dtype=dtype)  # opt-in CPU bf16 (never the default)
        return contextlib.nullcontext()

    def features_signature(self) -> str:
        """What, besides the windows and CLIP's weights, decides this model's patch features."""
        text = (self.text_signature(), self.logit_scale) if self.backbone.method.needs_text else None
        return json.dumps([self.method_signature, text])

    def extract_feat(self, inputs, shared=None, key=None, whole_images=None) -> Tensor:
        """Normalised patch features (B, gh, gw, D); fp16 under the official precision.
        ``whole_images``: the image tensor each window was cut from (for a method that reads it, CASS)."""
        text = self.text_side() if self.backbone.method.needs_text else None
        signature = self.features_signature() if shared is not None else ''
        with self.autocast():
            features = self.backbone(inputs, text, shared, key, signature, whole_images)
        if self.backbone.method.normalizes:  # the method's own (e.g. a mean of unit vectors)
            return features if self.official else features.float()
        if self.official:  # official: f /= f.norm(), in fp16
            return features / features.norm(dim=-1, keepdim=True)
        return F.normalize(features.float(), dim=-1)

    def patch_logits(self, crops, shared=None, key=None, whole_images=None) -> Tensor:
        """Cosine similarity of every patch with every class name, (B, Q, gh, gw). ``crops``: the
        windows, or a function that builds them (only called when their features are not shared).

        With experts (FLOSS) each query's score is a probability per expert, (B, (E+1)·Q, gh, gw);
        with a method's views (ITACLIP), the views' scores follow each other, (B, V·C, gh, gw);
        ``window_logits`` turns them into the window's (Q, h, w)."""
        features = self.extract_feat(crops, shared, key, whole_images)
        if self.backbone.method.scores_queries:  # the method's own window scores (FreeCP's class maps)
            return features
        text = self.text_embeddings
        if getattr(self.backbone.method, 'gives_scores', False):  # the method's own class scores (CASS)
            scores = features
        elif text['experts'] is not None:
            scores = expert_patch_probabilities(features, text['experts'], text['embeddings'], self.logit_scale)
            scores = scores.flatten(-2)
        else:
            scores = features @ text['embeddings'].to(features.dtype).T
        if features.ndim == 5:  # (B, V, gh, gw, C)
            return scores.permute(0, 1, 4, 2, 3).flatten(1, 2)
        return scores.permute(0, 3, 1, 2)

    def window_logits(self, scores: Tensor, size, pad=(0, 0, 0, 0)) -> Tensor:
        """Patch scores (n, C, gh, gw) of ``patch_logits`` -> logits (n, Q, h, w) at ``size``:
        bilinear upsampling, then the experts' fusion and the method's view combination."""
        def upsample(patch):
            return upsample_window(patch, tuple(size), pad)
        experts = self.text_embeddings['experts'] is not None
        views = self.backbone.method.views
        if not experts and views == 1:
            return upsample(scores)
        per_view = scores.unflatten(1, (views, -1))
        out = []
        for view in range(views):
            if experts:
                out.append(fuse_experts(upsample, per_view[:, view].unflatten(1, (-1, len(self.names.queries)))))
            else:
                out.append(upsample(per_view[:, view]))
        return out[0] if views == 1 else self.backbone.method.combine_views(torch.stack(out, dim=1))

    @torch.no_grad()
    def encode_decode(self, inputs: Tensor, batch_data_samples=None) -> Tensor:
        """Per-query logits at input resolution (B, Q, H, W)."""
        images = list(inputs)
        logits = self.query_logits(images, [tuple(image.shape[-2:]) for image in images])
        return torch.stack([item.full() if isinstance(item, DeferredUpsample) else item for item in logits])

    def query_logits(self, images: List[Tensor], sizes: List[tuple], shared=None,
                     sources: Optional[List[Optional[str]]] = None) -> List[Tensor]:
        """Per-query logits (Q, h, w) of each normalised image (3, H, W), resized to ``sizes``.

        Sliding window: canvas at input resolution, then bilinear to the size. Whole image
        (``slide_crop=0``): patch logits to the size directly or through the input size.
        ``shared``: a dict that lives as long as these images (one loader batch of a sweep);
        models given the same dict share whatever they compute identically. ``sources``: the
        images' files, for a method that reads the original image (Trident's SAM).
        """
        if getattr(self.backbone.method, 'whole_image', False):
            return self.whole_image_logits(images, sizes, sources or [None] * len(images), shared)
        if shared is None:
            return self._query_logits(images, sizes, None)
        key = ('logits', id(self.backbone.vit.visual), self.backbone.fused, self.features_signature(),
               self.text_signature(), self.slide_crop, self.slide_stride, self.slide_pad,
               self.whole_image_upsample, self.window_batch_size if self.slide_mode == 'batched' else 1,
               self.official_cast_input, tuple(sizes), tuple(tuple(i.shape) for i in images))
        if key not in shared:
            shared[key] = self._query_logits(images, sizes, shared)
        return shared[key]

    def whole_image_logits(self, images: List[Tensor], sizes: List[tuple], sources, shared=None) -> List[Tensor]:
        """Per-query logits (Q, h, w) of a method that segments whole images (Trident): its
        features (gh, gw, D) · the class embeddings, bilinearly resized to the size."""
        method = self.backbone.method
        embeddings = self.class_embeddings
        out = []
        for index, (image, size, source) in enumerate(zip(images, sizes, sources)):
            views = self.sam_views(index, image, source, shared)
            with self.autocast():
                features = method.image_features(self.backbone.vit, image, None, self.slide_crop[0],
                                                 self.slide_stride[0], views)
            if self.official:  # official: f /= f.norm(), in fp16
                features = features / features.norm(dim=-1, keepdim=True)
            else:
                features = F.normalize(features.float(), dim=-1)
            scores = (features @ embeddings.to(features.dtype).T).permute(2, 0, 1)
            out.append(F.interpolate(scores[None], size=tuple(size), mode='bilinear', align_corners=False)[0].float())
        return out

    def sam_views(self, index: int, image: Tensor, source: Optional[str], shared=None):
        """Trident's SAM work on one image (``Trident.sam_views``), computed once per image file
        and SAM for the models of one ``shared`` dict (the cells of a sweep); SAM reads the
        original file, or the un-normalised input when there is none."""
        from .methods.trident import input_as_rgb, read_rgb
        method = self.backbone.method
        stride = self.backbone.vit.patch_size[0]
        key = ('trident_sam', id(method.sam), method.sam_halves, stride,
               source if source else ('input', index, image.data_ptr(), tuple(image.shape)))
        if shared is not None and key in shared:
            return shared[key]
        picture = read_rgb(source) if source else None
        with self.autocast():
            views = method.sam_views(input_as_rgb(image) if picture is None else picture, stride)
        if shared is not None:
            shared[key] = views
        return views

    def _query_logits(self, images: List[Tensor], sizes: List[tuple], shared) -> List[Tensor]:
        if self.official and self.official_cast_input:
            images = [image.half() for image in images]

        def resize(logits: Tensor, size) -> Tensor:
            return F.interpolate(logits[None], size=size, mode='bilinear', align_corners=False)[0]

        def to_size(logits: Tensor, size):  # the original size: deferred when too large to hold
            tile_width = self.column_tile_width(logits, size)
            return DeferredUpsample(logits, tuple(size), tile_width) if tile_width else resize(logits, size)
        if self.slide_crop[0] <= 0:
            out = []
            for index, (image, size) in enumerate(zip(images, sizes)):
                self._set_window_masks((((index, (0, image.shape[-2], 0, image.shape[-1])),), (0, 0, 0, 0)))
                scores = self.patch_logits(image[None], shared, ('whole', index, tuple(image.shape), image.dtype))
                if self.whole_image_upsample == 'via_input':
                    logits = self.window_logits(scores, image.shape[-2:])[0]
                elif self.text_embeddings['experts'] is None and self.backbone.method.views == 1:
                    logits = scores[0]  # plain patch logits: the upsampling to the size may be deferred
                else:
                    out.append(self.window_logits(scores, size)[0])
                    continue
                out.append(to_size(logits, size))
            return out
        batch = self.window_batch_size if self.slide_mode == 'batched' else 1
        geometry = (self.slide_crop, self.slide_stride, tuple(tuple(i.shape) for i in images), images[0].dtype)

        def encode(windows, chunk):
            self._set_window_masks(chunk)
            return self.patch_logits(windows, shared, (geometry, chunk), [images[index] for index, _ in chunk[0]])
        canvases = slide_inference(images, encode,
                                   len(self.names.queries), self.slide_crop, self.slide_stride, batch,
                                   pad_multiple=self.slide_pad, keyed=True, upsample=self.window_logits)
        return [to_size(canvas, size) for canvas, size in zip(canvases, sizes)]

    # --- memory at the original size --------------------------------------------------------
    def tileable(self, dtype: torch.dtype) -> bool:
        """Post-processing by column tiles gives the labels of the whole map: float32 logits
        (half precision rounds between the two interpolation passes) and no PAMR (which
        propagates along the whole image), no label closing (a morphology over the whole map) and
        no post-processing of the method's own."""
        return (dtype == torch.float32 and self.pamr is None and not self.label_closing
                and not self.backbone.method.own_postprocess)

    def column_tile_width(self, logits: Tensor, size) -> int:
        """0 when the full-resolution maps (per-query logits, their softmax, the class scores)
        fit ``memory_budget_mb``, else the column tile width that does."""
        if not self.tileable(logits.dtype):
            return 0
        column = logits.shape[0] * size[0] * logits.element_size() * 4  # logits, scaled, probabilities, scores
        budget = self.memory_budget_mb * 2 ** 20
        return 0 if column * size[1] <= budget else max(1, int(budget // column))

    def check_memory(self, images: List[Tensor], sizes, data_samples) -> None:
        """An image whose post-processing at its original size cannot fit in the memory there is
        refused in one line before any of its work, instead of the kernel killing the run."""
        available = available_memory(self.device)
        if available is None:
            return
        queries = len(self.names.queries)
        for image, size, sample in zip(images, sizes, data_samples):
            pixels = int(size[0]) * int(size[1])
            dtype = torch.float16 if self.official else torch.float32
            fixed = pixels * (8 * 3 + 3 * 4)  # label maps of the prediction and the evaluation, the image
            element = torch.tensor([], dtype=dtype).element_size()
            need = fixed + pixels * element * (3 * queries + self.num_classes)  # the whole maps
            if self.tileable(dtype) and queries * pixels * element * 4 > self.memory_budget_mb * 2 ** 20:
                need = fixed + queries * image.shape[-2] * size[1] * element + self.memory_budget_mb * 2 ** 20
            elif self.pamr is not None:  # neighbours of the mask, their products, the affinities
                neighbours = 8 * len(self.pamr.dilations)
                need += pixels * 4 * (2 * neighbours * queries + 3 * 9 * len(self.pamr.dilations) + neighbours)
            if need > available:
                path = sample.metainfo.get('img_path', 'an input image')
                why = ' with PAMR' if self.pamr is not None else ' in half precision' if self.official else ''
                raise SCLIPError(f'{path}: post-processing its {size[1]}x{size[0]} pixels{why} needs about '
                                 f'{need / 2 ** 30:.1f} GB, more than the {available / 2 ** 30:.1f} GB available '
                                 'here; downscale the image or remove it from the split.')

    def check_sizes(self, images: List[Tensor], data_samples) -> None:
        """An image thinner than one patch after resizing cannot be segmented: say which one."""
        patch = self.backbone.patch_size[0]
        for image, sample in zip(images, data_samples):
            height, width = image.shape[-2:]
            if min(height, width) < patch:
                path = sample.metainfo.get('img_path', 'an input image')
                raise SCLIPError(f'{path} resizes to {width}x{height}, thinner than one {patch}-pixel patch; '
                                 'remove it from the split (tools/check_data.py lists such images).')

    @torch.no_grad()  # training-free: never build an autograd graph
    def predict(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, shared=None) -> List[SegDataSample]:
        images = list(inputs)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(ori_shape=tuple(image.shape[-2:]),
                                                        img_shape=tuple(image.shape[-2:])))
                            for image in images]
        self.check_sizes(images, data_samples)
        sizes = [tuple(sample.metainfo.get('ori_shape', image.shape[-2:]))[:2]
                 for image, sample in zip(images, data_samples)]
        self.check_memory(images, sizes, data_samples)
        if self.region_masks is not None:
            self._load_region_masks(images, data_samples, shared)
        sources = [sample.metainfo.get('img_path') for sample in data_samples]
        refining = getattr(self.backbone.method, 'sam_refine', False)
        if refining and shared is None:  # the refinement reads the SAM work of the logits
            shared = {}
        for index, (image, sample, size, logits) in enumerate(zip(images, data_samples, sizes,
                                                                  self.query_logits(images, sizes, shared, sources))):
            if refining:
                self._sam_views_by_sample[id(sample)] = self.sam_views(index, image, sources[index], shared)
            self.set_prediction(image, sample, size, logits)
        return data_samples

    def set_prediction(self, image: Tensor, sample: SegDataSample, size, logits: Tensor) -> None:
        """PAMR (optional) and post-processing of one image's per-query logits."""
        if isinstance(logits, DeferredUpsample) and self.tileable(logits.logits.dtype):
            # too large at once: the labels only (no full-resolution seg_logits), by column tiles
            labels = predict_labels_tiled(logits.logits, logits.size, self.query_class, self.num_classes,
                                          self.logit_scale, self.prob_thd, self.area_thd, self.bg_idx,
                                          logits.tile_width)
            labels = self.correct_by_regions(sample, labels)
            sample.set_data(dict(pred_sem_seg=PixelData(data=labels)))
            return
        if isinstance(logits, DeferredUpsample):  # shared by a model that tiles; this one cannot
            logits = logits.full()
        if self.backbone.method.own_postprocess:  # FreeCP's own labels
            scores, labels = self.backbone.method.postprocess(logits, self.query_class, self.num_classes)
            sample.set_data(dict(seg_logits=PixelData(data=scores), pred_sem_seg=PixelData(data=labels)))
            return
        if self.pamr is not None:
            resized = F.interpolate(image[None], size=size, mode='bilinear', align_corners=False)
            logits = self.pamr(resized, logits[None].to(resized.dtype))[0]
            if self.official:  # official: `.to(self.dtype)`, the fp16 of the query features
                logits = logits.half()
        scores, labels = predict_labels(logits, self.query_class, self.num_classes, self.logit_scale,
                                        self.prob_thd, self.area_thd, self.bg_idx, self.label_closing)
        if id(sample) in self._sam_views_by_sample:  # Trident's SAM refinement
            scores, labels = self.backbone.method.refine(labels, scores, self._sam_views_by_sample.pop(id(sample)))
        labels = self.correct_by_regions(sample, labels)
        sample.set_data(dict(seg_logits=PixelData(data=scores), pred_sem_seg=PixelData(data=labels)))

    def correct_by_regions(self, sample: SegDataSample, labels: Tensor) -> Tensor:
        """CorrCLIP's map correction: each region's majority label (region_masks.py)."""
        if self.region_masks is None:
            return labels
        from .region_masks import correct_labels
        return correct_labels(labels, self._masks_by_sample.pop(id(sample)))

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self.encode_decode(inputs, data_samples)

    def loss(self, inputs, data_samples):
        raise SCLIPError('SCLIPSegmentor is training-free: run tools/test.py, not a training loop.')
