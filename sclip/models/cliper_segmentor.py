"""``CLIPerSegmentor``: CLIPer without FGC, evaluated as its official code evaluates it
(linsun449/cliper.code @ c05fa41: ``ovs/main_ovs.py`` with ``--refinement None``).

Why a segmentor of its own: CLIPer's pipeline is not the one of the CLIP methods (sliding windows
over an mmseg-resized image, cosine logits, argmax). It reads the image with PIL, resizes it with
its own rule (``CLIPerLoadImage``), scores classes against background words (the first line of
its class files) and the classes' mean, and labels pixels with ``cam_to_label``'s thresholds in
its own label space (0 background, c + 1 the c-th class), which is mapped here to the dataset's.
The computation itself is ``sclip/models/cliper.py``.
"""
from __future__ import annotations

import os.path as osp
import re
from typing import List, Optional, Tuple, Union

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..config_check import refuse_unknown_keys
from ..errors import SCLIPError
from .clip_loader import load_clip
from .clip_vit import CLIPViT
from .cliper import cam_labels, class_maps
from .segmentor import resolve_weights, tokenizer_for
from .text_classifier import default_cache_dir, load_or_build

# CLIP's preprocess after the resize: ToTensor (/255) then Normalize (OpenAI's mean and std)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IGNORE_INDEX = 255


def read_lines(path: Optional[str], key: str) -> List[str]:
    """The file's lines as the official code reads them (``open(path).read().splitlines()``)."""
    if not path or not osp.isfile(str(path)):
        raise SCLIPError(f'model.{key}={path!r}: file not found; point it at one of configs/class_names/cliper/.')
    with open(path, encoding='utf-8') as f:
        return f.read().splitlines()


def read_class_file(path: Optional[str]) -> Tuple[List[str], List[str]]:
    """(background words, class names) of an official class file: its first line split at commas
    and blanks (``re.split(r"[\\s,]+", ...)``), then one class a line, each line one name."""
    lines = read_lines(path, 'class_names')
    if len(lines) < 2:
        raise SCLIPError(f'model.class_names={path!r} has {len(lines)} line(s); a CLIPer class file holds the '
                         'background words on its first line, then one class a line.')
    return re.split(r'[\s,]+', lines[0]), lines[1:]


def dataset_class_count(path: str, reduce_zero_label: bool, background_label: Optional[int] = None) -> int:
    """How many classes the dataset must have for this class file (for the pre-flight check): CLIPer's
    background is a class of the dataset unless ``reduce_zero_label`` sends it outside the classes."""
    count = len(read_class_file(path)[1])
    return count + (0 if reduce_zero_label and background_label != count else 1)


def _number(key: str, value, low: float, high: Optional[float] = None, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f'{"above" if low_open else "at least"} {low}' + ('' if high is None else f' and at most {high}')
        raise SCLIPError(f'model.{key}={value!r} must be a number {bound}.')
    return float(value)


@MODELS.register_module()
class CLIPerSegmentor(BaseSegmentor):
    """CLIPer (ICCV 2025) without its fine-grained compensation, one image at a time.

    Args:
        class_names: an official class file (``data/*/cls_*.txt``): background words, then classes.
        templates_file: the official prompt templates (``template/car_template.txt`` or
            ``openai_template.txt``), one ``{}`` format string a line.
        clip_path / arch / clip_format: CLIP's weights, as for the other methods.
        logit_scale, attention_thr, score_threshold, bkg_thre, is_normalize, sliding_crop_size: the
            official config keys (``score_threshold`` is ``cam_to_label``'s ``cls_thre``;
            ``sliding_crop_size=0``: no sliding window).
        reduce_zero_label: the dataset's labels are CLIPer's minus one (its class 0 is the first
            class); CLIPer's background is then ``background_label``.
        background_label: with ``reduce_zero_label``, the dataset label of CLIPer's background: the
            ignored 255 by default (official: a miss where the label is a class); the ignore index of a
            set with more than 255 classes (ADE-847, Context-459: 65535); or, ours, the dataset's
            background class when it follows the file's classes (Potsdam, Vaihingen: 5, UDD5: 4).
            A label among the file's classes is an error (it would silently score as that class).
        split_halves: the official Cityscapes loader: each image is predicted as two parts split at
            its height (the right part, then the left one), the label likewise.
        text_cache_dir: where class embeddings are cached (False: never).
    """

    def __init__(self,
                 class_names: str,
                 templates_file: str,
                 clip_path: Optional[str] = None,
                 arch: str = 'ViT-B-16',
                 clip_format: str = 'auto',
                 logit_scale: float = 100.0,
                 attention_thr: float = 0.2,
                 score_threshold: float = 0.3,
                 bkg_thre: float = 0.3,
                 is_normalize: bool = False,
                 sliding_crop_size: int = 0,
                 reduce_zero_label: bool = False,
                 background_label: Optional[int] = None,
                 split_halves: bool = False,
                 text_cache_dir: Union[str, bool, None] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 **unknown):
        refuse_unknown_keys(CLIPerSegmentor.__init__, unknown)
        self.logit_scale = _number('logit_scale', logit_scale, 0, low_open=True)
        self.attention_thr = _number('attention_thr', attention_thr, 0, 1)
        self.score_threshold = _number('score_threshold', score_threshold, 0)  # class scores reach 2
        self.bkg_thre = _number('bkg_thre', bkg_thre, 0)
        for key, value in (('is_normalize', is_normalize), ('reduce_zero_label', reduce_zero_label),
                           ('split_halves', split_halves)):
            if not isinstance(value, bool):
                raise SCLIPError(f'model.{key}={value!r} must be True or False.')
        if isinstance(sliding_crop_size, bool) or not isinstance(sliding_crop_size, int) or sliding_crop_size < 0:
            raise SCLIPError(f'model.sliding_crop_size={sliding_crop_size!r} must be 0 (no sliding window) or a '
                             'positive multiple of the patch size (official: 224 or 336).')
        self.background_words, self.class_names = read_class_file(class_names)
        self.background_label = self._background_label(background_label, reduce_zero_label)
        self.templates = [line.strip() for line in read_lines(templates_file, 'templates_file')]  # main_ovs.py
        bad = [t for t in self.templates if t.count('{}') != 1]
        if not self.templates or bad:
            raise SCLIPError(f'model.templates_file={templates_file!r}: every line must hold one "{{}}" '
                             f'({bad[0]!r} does not)' if bad else f'model.templates_file={templates_file!r} is empty.')
        if data_preprocessor is None:  # CLIPerLoadImage gives RGB; ToTensor and Normalize are done here
            data_preprocessor = dict(type='SCLIPDataPreProcessor', mean=None, std=None, bgr_to_rgb=False)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        weights = resolve_weights(clip_path, None)
        clip = load_clip(weights, arch, clip_format)
        self.vit = CLIPViT(clip.visual, fused=False)
        patch = self.vit.patch_size[0]
        if sliding_crop_size % patch:
            raise SCLIPError(f'model.sliding_crop_size={sliding_crop_size} must be 0 or a multiple of the patch '
                             f'size {patch} (official: 224 or 336).')
        self.sliding_crop_size = sliding_crop_size
        self.is_normalize, self.reduce_zero_label, self.split_halves = is_normalize, reduce_zero_label, split_halves
        clip.visual = None  # the vision tower lives in self.vit; `clip` keeps the text tower
        self.text_model = clip
        self.tokenizer = tokenizer_for(arch, getattr(clip, 'context_length', 77))
        self.weights_name = f'{arch}:{weights}'
        self.text_cache_dir = None if text_cache_dir is False else (text_cache_dir or default_cache_dir())
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(3, 1, 1), persistent=False)
        self._text = None

    def _background_label(self, label, reduce_zero_label: bool) -> int:
        if label is None:
            label = IGNORE_INDEX
        elif not reduce_zero_label:
            raise SCLIPError(f'model.background_label={label!r} needs model.reduce_zero_label=True (without it '
                             "CLIPer's background is the dataset's class 0).")
        count = len(self.class_names)
        if isinstance(label, bool) or not isinstance(label, int) or (reduce_zero_label and label < count):
            raise SCLIPError(f'model.background_label={label!r} is one of the {count} classes of model.class_names '
                             f'(0..{count - 1}): set the class after them ({count}, the dataset\'s background) '
                             'or the dataset\'s ignore index (65535 for ADE-847 and Context-459).')
        return label

    # --- text side ------------------------------------------------------------------------------
    def text_embeddings(self) -> Tuple[Tensor, Tensor]:
        """(classes (C, D), background words (K, D)): the official ``classifier``, per name the
        normalised mean of its normalised template prompts."""
        if self._text is None or self._text[0].device != self.mean.device:
            def encode(names):
                return load_or_build(self.text_model, self.tokenizer, names, self.templates, self.mean.device,
                                     self.weights_name, self.text_cache_dir)
            self._text = (encode(self.class_names), encode(self.background_words))
        return self._text

    # --- one image ----------------------------------------------------------------------------------
    def normalise(self, image: Tensor) -> Tensor:
        """(3, h, w) RGB values 0..255 -> CLIP's input (``ToTensor``, ``Normalize``)."""
        return ((image.float() / 255) - self.mean) / self.std

    def predict_part(self, image: Tensor, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """(C, H, W) class maps and (H, W) labels in CLIPer's space of one (3, h, w) input."""
        classes, background = self.text_embeddings()
        maps = class_maps(self.vit, image[None], classes, background, self.logit_scale, self.attention_thr,
                          self.sliding_crop_size)
        return cam_labels(maps, size, self.bkg_thre, self.score_threshold, self.is_normalize)

    def predict_image(self, image: Tensor, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """(C, H, W) class maps and (H, W) labels in the dataset's space of a (3, h, w) input
        resized by ``CLIPerLoadImage`` from an image of ``size``."""
        patch = self.vit.patch_size[0]
        if image.shape[-2] % patch or image.shape[-1] % patch:
            raise SCLIPError(f'CLIPer needs its input resized by CLIPerLoadImage (sides multiple of {patch}); '
                             f'got {tuple(image.shape[-2:])}: use the test_pipeline of configs/_base_/cliper.py.')
        image = self.normalise(image)
        if self.split_halves:  # CitySegDataset: img[..., ih:] / mask[:, mh:], then [..., :ih] / [:, :mh]
            height, width = size
            parts = [self.predict_part(image[..., :image.shape[-2]], (height, min(height, width)))]
            if width > height:
                parts.append(self.predict_part(image[..., image.shape[-2]:], (height, width - height)))
            maps, labels = (torch.cat(p, dim=-1) for p in zip(*parts))
        else:
            maps, labels = self.predict_part(image, size)
        if self.reduce_zero_label:
            labels = torch.where(labels == 0, self.background_label, labels - 1)
        return maps, labels

    @torch.no_grad()
    def predict(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, shared=None) -> List[SegDataSample]:
        """``shared``: the sweep's per-batch dict (sclip/group_eval.py), unused: CLIPer shares
        nothing with the other methods of a sweep."""
        images = list(inputs)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(ori_shape=tuple(image.shape[-2:]))) for image in images]
        for image, sample in zip(images, data_samples):
            size = tuple(sample.metainfo.get('ori_shape', image.shape[-2:]))[:2]
            maps, labels = self.predict_image(image, size)
            sample.set_data(dict(seg_logits=PixelData(data=maps), pred_sem_seg=PixelData(data=labels[None])))
        return data_samples

    def encode_decode(self, inputs: Tensor, batch_data_samples=None) -> Tensor:
        return torch.stack([self.predict_image(image, tuple(image.shape[-2:]))[0] for image in inputs])

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self.encode_decode(inputs, data_samples)

    def extract_feat(self, inputs: Tensor):
        raise SCLIPError('CLIPerSegmentor has no feature map of its own; run predict().')

    def loss(self, inputs, data_samples):
        raise SCLIPError('CLIPer is training-free: run tools/test.py.')
