"""``GroupViTSegmentor``: GroupViT evaluated as its official ``GroupViTSegInference`` does
(NVlabs/GroupViT @ 13b7861, segmentation/evaluation/group_vit_seg.py).

Per window: the soft assignments of the two grouping stages, chained (pixels -> 64 groups ->
8 segments), resized to the window; each pixel takes its arg-max segment (one-hot); each
segment's class scores are ``softmax(s·t·scale)`` restricted to the image's top-5 classes
(pooled feature) times the unrestricted softmax; with a background class, a pixel whose best
score is below ``min(bg_thresh, best score of the window)`` is background (logit 1).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...config_check import check_arguments, refuse_unknown_keys
from ...errors import SCLIPError
from ..trained_segmentor import TrainedSegmentor, tokenize
from .checkpoint import load_groupvit

TEMPLATES = {'simple': ['a photo of a {}.'], 'identity': ['{}']}  # datasets/imagenet_template.py


def resize_attn_map(attentions: Tensor, h: int, w: int) -> Tensor:
    """(B, nh, h'·w', G) -> (B, nh, h, w, G): the token grid recovered from the window's aspect
    (official ``resize_attn_map``), then bilinear."""
    scale = (h * w // attentions.shape[2]) ** 0.5
    if h > w:
        w_featmap = w // int(np.round(scale))
        h_featmap = attentions.shape[2] // w_featmap
    else:
        h_featmap = h // int(np.round(scale))
        w_featmap = attentions.shape[2] // h_featmap
    bs, nh, _, groups = attentions.shape
    maps = attentions.reshape(bs * nh, h_featmap, w_featmap, groups).permute(0, 3, 1, 2)
    maps = F.interpolate(maps, size=(h, w), mode='bilinear', align_corners=False)
    return maps.permute(0, 2, 3, 1).reshape(bs, nh, h, w, groups)


@MODELS.register_module()
class GroupViTSegmentor(TrainedSegmentor):
    """GroupViT's zero-shot segmentation (its official evaluation).

    Args:
        class_names: the official dataset's ``CLASSES``, one a line (``background`` first where the
            dataset has it: then ``bg_thresh`` decides it).
        checkpoint: a released GroupViT checkpoint (``{'model': state_dict, ...}``).
        num_heads: attention heads per stage (not in the tensors; the released models: 6, 6, 6).
        templates: ``'simple'`` (the official ``evaluate.seg.template``), ``'identity'`` or a list.
        bg_thresh: background threshold (official test_cfg: VOC and COCO 0.95, Context 0.35).
        slide_crop / slide_stride: the official ``test_cfg`` windows (448 / 224).
    """

    def __init__(self,
                 class_names: str,
                 checkpoint: Optional[str] = None,
                 num_heads: Sequence[int] = (6, 6, 6),
                 templates: Union[str, Sequence[str]] = 'simple',
                 bg_thresh: float = 0.95,
                 slide_crop: int = 448,
                 slide_stride: int = 224,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 **unknown):
        refuse_unknown_keys(GroupViTSegmentor.__init__, unknown)
        check_arguments(GroupViTSegmentor.__init__, dict(bg_thresh=bg_thresh, slide_crop=slide_crop,
                                                         slide_stride=slide_stride))
        if not 0 <= float(bg_thresh) <= 1:
            raise SCLIPError(f'model.bg_thresh={bg_thresh} must be between 0 and 1 (official: 0.95 or 0.35).')
        super().__init__(class_names, slide_crop, slide_stride, data_preprocessor, init_cfg)
        if not checkpoint:
            raise SCLIPError('model.checkpoint is not set; pass the GroupViT checkpoint '
                             '(model.checkpoint=/path/to/group_vit_gcc_yfcc_30e-879422e0.pth).')
        if isinstance(templates, str):
            if templates not in TEMPLATES:
                raise SCLIPError(f'model.templates={templates!r} is unknown; use one of {sorted(TEMPLATES)} '
                                 "or a list of strings with '{}'.")
            templates = TEMPLATES[templates]
        self.templates = list(templates)
        self.bg_thresh = float(bg_thresh)
        self.weights_name = f'groupvit:{checkpoint}'
        self.model = load_groupvit(str(checkpoint), num_heads)
        self._text: Optional[Tensor] = None

    @property
    def text_embedding(self) -> Tensor:
        """(N, D) normalised class embeddings of the non-background classes (build_text_embedding)."""
        if self._text is None:
            context = self.model.arch.context_length
            tokens = torch.stack([tokenize([t.format(name) for t in self.templates], context)
                                  for name in self.query_names]).to(self.model.logit_scale.device)
            self._text = self.model.build_text_embedding(tokens)
        return self._text

    @staticmethod
    def attention_map(assignments, window: Tensor) -> Tensor:
        """(h, w, G) soft assignment of each pixel to the final segments (official get_attn_maps)."""
        chained = None
        for soft in assignments:  # (B, 1, G, N) -> (B, 1, N, G), chained stage by stage
            soft = soft.transpose(-1, -2)
            chained = soft if chained is None else chained @ soft
        maps = resize_attn_map(chained, *window.shape[-2:])[:, 0]  # (B, h, w, G)
        maps = F.interpolate(maps.permute(0, 3, 1, 2), size=window.shape[-2:], mode='bilinear',
                             align_corners=False).permute(0, 2, 3, 1)  # official: the `rescale` pass
        return maps[0]

    def window_logits(self, window: Tensor) -> Tensor:
        pooled, segments, assignments = self.model.encode_image(window)  # official: two identical passes
        attn_map = self.attention_map(assignments, window)
        segments = F.normalize(segments[0], dim=-1)
        pooled = F.normalize(pooled, dim=-1)
        onehot = F.one_hot(attn_map.argmax(dim=-1), num_classes=attn_map.shape[-1]).to(attn_map.dtype)
        text = self.text_embedding
        num_fg = text.shape[0]
        offset = 1 if self.with_bg else 0
        logit_scale = torch.clamp(self.model.logit_scale.exp(), max=100)
        affinity = (segments @ text.T) * logit_scale
        pre_affinity = F.softmax(affinity, dim=-1)
        image_affinity = F.softmax((pooled @ text.T) * logit_scale, dim=-1)
        top = image_affinity.topk(dim=-1, k=min(5, num_fg))
        mask = torch.zeros_like(image_affinity).scatter_add_(-1, top.indices, torch.ones_like(top.values))
        affinity = F.softmax(affinity.masked_fill(~mask.bool(), float('-inf')), dim=-1) * pre_affinity
        pixel_scores = onehot @ affinity  # (h, w, N)
        logits = window.new_zeros((num_fg + offset, *attn_map.shape[:2]))
        logits[offset:] = pixel_scores.permute(2, 0, 1)
        if self.with_bg:
            threshold = min(self.bg_thresh, affinity.max().item())
            logits[0, pixel_scores.max(dim=-1).values < threshold] = 1
        return logits[None]
