"""``TCLSegmentor``: TCL evaluated as its official ``TCLSegInference`` does (kakaobrain/tcl @
bc2b551, segmentation/evaluation/tcl_seg.py and models/tcl/tcl.py ``generate_masks``).

Per window: zero-pad (centred) to a multiple of the patch; the masker's soft masks
``sigmoid(w·cos + b)`` at 4x the token grid; PAMR (10 steps, dilations 1, 2, 4, 8, 12, 24) on
the padded window resized to the masks; the keep-prior branch ``kp_w·sigmoid(10(cos - 0.25)) +
(1 - kp_w)·masks`` with CLIP's own MaskCLIP map; bilinear to the padded size, cropped. With a
background class, background is the constant ``bg_thresh``. The templates are averaged
unnormalised, then normalised.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...config_check import check_arguments, refuse_unknown_keys
from ...errors import SCLIPError
from ..pamr import PAMR
from ..trained_segmentor import TrainedSegmentor, tokenize
from .checkpoint import load_tcl

# datasets/templates.py: 'custom' = sub_imagenet_template + two more (the official evaluate.template)
CUSTOM_TEMPLATES = ['itap of a {}.', 'a bad photo of a {}.', 'a origami {}.', 'a photo of the large {}.',
                    'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.',
                    'a photo of many {}.', 'a photo of {}s.']
PAMR_DILATIONS = (1, 2, 4, 8, 12, 24)  # TCL.apply_pamr


def pad_to_patch(height: int, width: int, patch: int):
    """The official ``compute_padsize``: (left, right, top, bottom), the odd pixel right/bottom."""
    lr = (patch - width % patch) % patch
    tb = (patch - height % patch) % patch
    return lr // 2, lr - lr // 2, tb // 2, tb - tb // 2


@MODELS.register_module()
class TCLSegmentor(TrainedSegmentor):
    """TCL's zero-shot segmentation (its official evaluation, configs/eval.yml).

    Args:
        class_names: the official dataset's ``CLASSES``, one a line (``background`` first where the
            dataset has it: then the constant ``bg_thresh`` is its score).
        checkpoint: the released ``tcl.pth``.
        clip_path: OpenAI's ViT-B/16 file, used only for CLIP tensors ``tcl.pth`` lacks.
        templates: ``'custom'`` (the official ``evaluate.template``) or a list.
        pamr / bg_thresh / kp_w: ``evaluate`` of configs/eval.yml (true, 0.4, 0.3).
        slide_crop / slide_stride: the official ``test_cfg`` windows (448 / 224).
    """

    def __init__(self,
                 class_names: str,
                 checkpoint: Optional[str] = None,
                 clip_path: Optional[str] = None,
                 templates: Union[str, Sequence[str]] = 'custom',
                 pamr: bool = True,
                 bg_thresh: float = 0.4,
                 kp_w: float = 0.3,
                 slide_crop: int = 448,
                 slide_stride: int = 224,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 **unknown):
        refuse_unknown_keys(TCLSegmentor.__init__, unknown)
        check_arguments(TCLSegmentor.__init__, dict(bg_thresh=bg_thresh, kp_w=kp_w, slide_crop=slide_crop,
                                                    slide_stride=slide_stride))
        if not 0 <= float(kp_w) <= 1:
            raise SCLIPError(f'model.kp_w={kp_w} must be between 0 and 1 (official: 0.3).')
        super().__init__(class_names, slide_crop, slide_stride, data_preprocessor, init_cfg)
        if not checkpoint:
            raise SCLIPError('model.checkpoint is not set; pass the TCL checkpoint '
                             '(model.checkpoint=/path/to/tcl.pth).')
        if isinstance(templates, str):
            if templates != 'custom':
                raise SCLIPError(f"model.templates={templates!r} is unknown; use 'custom' or a list of "
                                 "strings with '{}'.")
            templates = CUSTOM_TEMPLATES
        self.templates = list(templates)
        self.pamr = PAMR(10, PAMR_DILATIONS) if pamr else None
        self.bg_thresh, self.kp_w = float(bg_thresh), float(kp_w)
        self.weights_name = f'tcl:{checkpoint}'
        self.model = load_tcl(str(checkpoint), clip_path)
        self._text: Optional[Tensor] = None

    @property
    def text_embedding(self) -> Tensor:
        """(N, C) normalised class embeddings of the non-background classes (build_text_embedding)."""
        if self._text is None:
            context = self.model.arch.context_length
            device = self.model.masker.sim2mask.w.device
            tokens = torch.stack([tokenize([t.format(name) for t in self.templates], context)
                                  for name in self.query_names]).to(device)
            self._text = self.model.build_text_embedding(tokens)
        return self._text

    def window_logits(self, window: Tensor) -> Tensor:
        height, width = window.shape[-2:]
        pad = pad_to_patch(height, width, self.model.arch.patch_size)
        image = F.pad(window, pad) if any(pad) else window
        text = self.text_embedding
        masks, clip_map = self.model.masks(image, text)
        if self.pamr is not None:
            small = F.interpolate(image, masks.shape[-2:], mode='bilinear', align_corners=True)
            masks = self.pamr(small, masks)
        if self.kp_w:
            clip_embedding = F.normalize(self.model.clip_image_encoder.clip_proj(clip_map), dim=1, eps=1e-6)
            similarity = torch.einsum('bchw,nc->bnhw', clip_embedding, F.normalize(text, dim=-1, eps=1e-6))
            prior = F.interpolate(torch.sigmoid((similarity - 0.25) * 10.0), masks.shape[-2:], mode='bilinear')
            masks = self.kp_w * prior + (1.0 - self.kp_w) * masks
        masks = F.interpolate(masks, image.shape[-2:], mode='bilinear')
        masks = masks[:, :, pad[2]:pad[2] + height, pad[0]:pad[0] + width]
        if self.with_bg:
            masks = torch.cat([masks.new_full((1, 1, height, width), self.bg_thresh), masks], dim=1)
        return masks
