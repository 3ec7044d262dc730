"""The mmseg 0.x test loop the trained segmenters' official evaluations run (GroupViT, TCL).

Why: GroupViT and TCL are evaluated by subclassing mmseg 0.x's ``EncoderDecoder`` and
overriding only ``encode_decode``: each window's class logits at the window's size, summed on
a canvas and divided by the windows covering each pixel (``slide_inference``), bilinearly
resized to the original size, softmax, argmax. This class is that loop on mmseg 1.x; a method
supplies ``window_logits`` and its text embeddings. The background class, when the class file
starts with ``background``, is the method's (a threshold), not a text query.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from ..class_names import load_class_names
from ..errors import SCLIPError
from .sliding_window import coverage, window_grid

IMAGENET_MEAN = [123.675, 116.28, 103.53]  # the official img_norm_cfg (to_rgb=True)
IMAGENET_STD = [58.395, 57.12, 57.375]


class TrainedSegmentor(BaseSegmentor):
    """Sliding-window (or whole-image) inference of a trained segmenter, one image at a time.

    Args:
        class_names: class file, one class a line (the official dataset's ``CLASSES``); a first
            class ``background`` is the method's background, the others are text queries.
        slide_crop / slide_stride: the official ``test_cfg`` windows; ``slide_crop=0`` runs the
            whole image (``mode='whole'``).
    """

    shares_clip_towers = False  # its own trained model: a sweep builds one per cell

    def __init__(self, class_names: str, slide_crop: int = 448, slide_stride: int = 224,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        from mmseg.registry import MODELS
        if data_preprocessor is None:
            data_preprocessor = dict(type='SCLIPDataPreProcessor', mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     bgr_to_rgb=True)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.names = load_class_names(class_names, separator='\t')  # one name a line, commas allowed
        self.class_names = [names[0] for names in self.names.classes]
        self.with_bg = self.class_names[0] == 'background'
        self.query_names = self.class_names[1:] if self.with_bg else self.class_names
        self.num_classes = len(self.class_names)
        if int(slide_crop) < 0 or (int(slide_crop) > 0 and not 0 < int(slide_stride) <= int(slide_crop)):
            raise SCLIPError(f'model.slide_crop={slide_crop}, model.slide_stride={slide_stride}: use a crop > 0 '
                             'and a stride between 1 and the crop (or slide_crop=0 for the whole image).')
        self.slide_crop, self.slide_stride = int(slide_crop), int(slide_stride)

    # --- what a method provides ---------------------------------------------------------------
    def window_logits(self, window: Tensor) -> Tensor:
        """(1, 3, h, w) normalised window -> (1, num_classes, h, w) logits (official encode_decode)."""
        raise NotImplementedError

    # --- the official loop ----------------------------------------------------------------------
    def image_logits(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) -> (1, num_classes, H, W): mmseg 0.x ``slide_inference`` / ``whole_inference``."""
        if self.slide_crop <= 0:
            return self.window_logits(image)
        _, _, height, width = image.shape
        crop = (self.slide_crop, self.slide_crop)
        windows = window_grid(height, width, crop, (self.slide_stride, self.slide_stride))
        canvas = image.new_zeros((1, self.num_classes, height, width))
        for y1, y2, x1, x2 in windows:
            canvas += F.pad(self.window_logits(image[:, :, y1:y2, x1:x2]), (x1, width - x2, y1, height - y2))
        return canvas / coverage(height, width, windows, image.device, image.dtype)[None]

    @torch.no_grad()
    def encode_decode(self, inputs: Tensor, batch_data_samples=None) -> Tensor:
        return torch.cat([self.image_logits(image[None]) for image in inputs])

    @torch.no_grad()
    def predict(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, shared=None) -> List[SegDataSample]:
        """``shared``: the sweep's per-batch dict (sclip/group_eval.py); a trained segmenter shares
        nothing with the CLIP methods of a sweep, so it is accepted and unused."""
        images = list(inputs)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(ori_shape=tuple(image.shape[-2:]))) for image in images]
        for image, sample in zip(images, data_samples):
            size = tuple(sample.metainfo.get('ori_shape', image.shape[-2:]))[:2]
            logits = F.interpolate(self.image_logits(image[None]), size=size, mode='bilinear', align_corners=False)
            scores = F.softmax(logits, dim=1)[0]  # mmseg 0.x ``inference``
            sample.set_data(dict(seg_logits=PixelData(data=scores),
                                 pred_sem_seg=PixelData(data=scores.argmax(dim=0, keepdim=True))))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self.encode_decode(inputs, data_samples)

    def extract_feat(self, inputs: Tensor):
        raise SCLIPError(f'{type(self).__name__} has no feature map of its own; run predict().')

    def loss(self, inputs, data_samples):
        raise SCLIPError(f'{type(self).__name__} is evaluated with its released weights: run tools/test.py.')


def tokenize(texts: Sequence[str], context_length: int) -> Tensor:
    """CLIP's BPE tokens, SOT + text + EOT, zero-padded and truncated to ``context_length``
    (GroupViT's ``Tokenize`` and TCL's ``clip.tokenize`` compute the same)."""
    from .segmentor import tokenizer_for
    return tokenizer_for(None, context_length)(list(texts))
