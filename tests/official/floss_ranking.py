"""Oracle: FLOSS's template ranking (yasserben/FLOSS @ ccf1d49d, ``tools/eval_naclip.py --mode
compute_metric``): its NACLIP segmentor's per-template probabilities
(``mmseg/models/segmentors/naclip/naclip.py``: ``encode_text_features``, ``forward_feature``,
``forward_slide`` and ``predict`` in ``mode='compute_metric'``; the vision model is NACLIP's,
transcribed in naclip.py) and ``EntropyMetric`` (``mmseg/evaluation/metrics/entropy_metric.py``:
``process`` and the ranking part of ``compute_metrics``, for ``model_name='naclip'``).

Quirks kept:
- text: per template, per query word one prompt, normalised, "mean" of one, normalised again;
  ``(T, Q, D)`` for templates ``id_start..id_end``;
- ``forward_feature``: ``F.conv2d`` of the normalised patch features with every template's
  classifier at once, raw cosine logits (no softmax there), ``output.squeeze(1)`` (a batch of
  one) upsampled to the window: ``(T, Q, h, w)``;
- ``forward_slide``: the canvas has ``num_templates`` rows; fp16 canvas and windows only when the
  dataset is ``cocostuff`` or ``ade20k`` (``half_canvas``, a memory measure of those two);
- ``predict``: resize to ``ori_shape``, then ``softmax(seg_logits * logit_scale, dim=1)`` and the
  per-class max through ``one_hot(query_idx)`` (only when a class has several names);
- ``EntropyMetric.process`` (naclip: no resize): per template argmax; per predicted class the mean
  (float32) entropy ``-Σ p log(p + 1e-10)`` times the pixel count, summed in float64;
- ``compute_metrics``: class names with spaces removed; entropy ``sum / count`` and pixel percentage,
  both 0.0 for a class a template never predicts (so it ranks first); a new file's ``split`` is
  ``"train"`` whatever ran; stable sort by entropy; ``rank`` from 1; ``json.dump(indent=2)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import window_grid
from .naclip import OfficialVisual


def encode_text_features(encode_text: Callable, tokenize: Callable, query_words: Sequence[str],
                         templates: Sequence[Callable], id_start: int = 0, id_end: int = 79) -> Tensor:
    list_of_templates = []
    for template_idx in range(id_start, id_end + 1):
        template_embeddings = []
        for qw in query_words:
            query = tokenize([templates[template_idx](qw)])
            with torch.no_grad():
                feature = encode_text(query)
                feature /= feature.norm(dim=-1, keepdim=True)
                feature = feature.mean(dim=0)
                feature /= feature.norm()
                template_embeddings.append(feature)
        list_of_templates.append(torch.stack(template_embeddings))
    return torch.stack(list_of_templates)  # [num_templates_in_range, num_classes, text_channels]


class OfficialRankingNACLIP:
    """FLOSS's ``NACLIP`` in ``mode='compute_metric'``, from a built model and the template features."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 arch: str = 'reduced', attn_strategy: str = 'naclip', gaussian_std: float = 5.0,
                 logit_scale: float = 100, slide_stride: int = 112, slide_crop: int = 224, half_canvas: bool = False):
        self.net = clip_model
        self.query_idx = torch.Tensor(list(query_idx)).to(torch.int64)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.num_templates = query_features.shape[0]
        self.visual = OfficialVisual(self.net.visual, arch, attn_strategy, gaussian_std)
        self.logit_scale = logit_scale
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False
        self.half_canvas = half_canvas

    def forward_feature(self, img: Tensor) -> Tensor:
        image_features = self.visual.forward(img.type(self.net.visual.conv1.weight.dtype))
        image_features = image_features[:, 1:]
        image_features /= image_features.norm(dim=-1, keepdim=True)
        num_templates, num_classes, text_channels = self.query_features.shape
        reshaped_templates = self.query_features.reshape(-1, text_channels)
        patch_size = self.visual.patch_size
        w, h = img.shape[-2] // patch_size, img.shape[-1] // patch_size
        B, N, C_img = image_features.shape
        image_features_reshaped = image_features.permute(0, 2, 1).reshape(B, C_img, w, h)
        output = F.conv2d(image_features_reshaped, reshaped_templates[:, :, None, None])
        output = output.reshape(B, num_templates, num_classes, output.size(2), output.size(3))
        output = output.permute(1, 0, 2, 3, 4)
        output = nn.functional.interpolate(output.squeeze(1), size=img.shape[-2:], mode='bilinear',
                                           align_corners=self.align_corners)
        return output

    def forward_slide(self, img: Tensor, stride=112, crop_size=224, num_templates=None) -> Tensor:
        batch_size, _, h_img, w_img = img.shape
        if num_templates is not None:
            batch_size = num_templates
        out_channels = self.num_queries
        dtype = torch.float16 if self.half_canvas else torch.float32
        preds = img.new_zeros((batch_size, out_channels, h_img, w_img), dtype=dtype)
        count_mat = img.new_zeros((batch_size, 1, h_img, w_img), dtype=dtype)
        for y1, y2, x1, x2 in window_grid(h_img, w_img, stride, crop_size):
            crop_img = img[:, :, y1:y2, x1:x2]
            crop_seg_logit = self.forward_feature(crop_img)
            if self.half_canvas:
                crop_seg_logit = crop_seg_logit.half()
            preds += nn.functional.pad(crop_seg_logit, (int(x1), int(preds.shape[3] - x2), int(y1),
                                                        int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
        assert (count_mat == 0).sum() == 0
        return preds / count_mat

    @torch.no_grad()
    def predict(self, inputs: Tensor, ori_shape) -> Tensor:
        """(T, num_cls, h, w): each template's class probabilities at the original size."""
        if self.slide_crop > 0:
            seg_logits = self.forward_slide(inputs, self.slide_stride, self.slide_crop, num_templates=self.num_templates)
        else:
            seg_logits = self.forward_feature(inputs)
        seg_logits = nn.functional.interpolate(seg_logits, size=tuple(ori_shape), mode='bilinear',
                                               align_corners=self.align_corners)
        seg_logits = F.softmax(seg_logits * self.logit_scale, dim=1)
        num_cls, num_queries = max(self.query_idx) + 1, len(self.query_idx)
        if num_cls != num_queries:
            cls_index = nn.functional.one_hot(self.query_idx)
            cls_index = cls_index.T
            cls_index = cls_index.view(1, num_cls, num_queries, 1, 1)
            seg_logits = seg_logits.unsqueeze(1)
            seg_logits = (seg_logits * cls_index).max(2)[0]
        return seg_logits


class EntropyMetric:
    """``EntropyMetric`` for NACLIP (``model_name='naclip'``): ``process`` per image, then the rankings."""

    def __init__(self, num_classes: int, id_start: int = 0, id_end: int = 79, model_name: str = 'naclip',
                 dataset_name: str = 'cityscapes'):
        self.num_classes, self.id_start, self.id_end = num_classes, id_start, id_end
        self.model_name, self.dataset_name = model_name, dataset_name
        self.entropy_data = {str(t): {str(i): {'sum': np.float64(0.0), 'count': np.float64(0)}
                                      for i in range(num_classes)} for t in range(id_start, id_end + 1)}
        self.total_pixels = np.float64(0)
        self.file_count = 0

    def process(self, ori_shape, data_samples: Sequence[Tensor]) -> None:
        H, W = ori_shape[:2]
        self.total_pixels += np.float64(H * W)
        self.file_count += 1
        for idx, prob in enumerate(data_samples):
            template_idx = idx + self.id_start
            if template_idx > self.id_end:
                continue
            template_key = str(template_idx)
            if template_key not in self.entropy_data:
                continue
            pred_label = torch.argmax(prob, dim=0)
            for class_idx in range(self.num_classes):
                class_mask = pred_label == class_idx
                if not torch.any(class_mask):
                    continue
                class_probs = prob[:, class_mask].to(torch.float32)
                epsilon = 1e-10
                log_probs = torch.log(class_probs + epsilon)
                entropy = -(class_probs * log_probs).sum(dim=0)
                mean_entropy = entropy.mean().item()
                count = class_mask.sum().item()
                class_key = str(class_idx)
                self.entropy_data[template_key][class_key]['sum'] += np.float64(mean_entropy * count)
                self.entropy_data[template_key][class_key]['count'] += np.float64(count)

    def rankings(self, class_names: List[str], existing: Dict = None) -> Dict:
        """``compute_metrics``' rankings (``existing``: the file's content when it was there)."""
        if self.model_name == 'naclip':
            class_names = [a.replace(' ', '') for a in class_names]
        rankings = existing or {'model': self.model_name, 'dataset': self.dataset_name, 'split': 'train',
                                'classes': {}}
        for class_idx, class_name in enumerate(class_names):
            if class_name not in rankings['classes']:
                rankings['classes'][class_name] = {}
            class_rankings = rankings['classes'][class_name]
            templates_data = []
            for template_idx in range(self.id_start, self.id_end + 1):
                class_data = self.entropy_data[str(template_idx)][str(class_idx)]
                if class_data['count'] > 0:
                    entropy_value = float(class_data['sum']) / float(class_data['count'])
                    pixel_percentage = float(class_data['count']) / float(self.total_pixels) * 100
                else:
                    entropy_value = 0.0
                    pixel_percentage = 0.0
                templates_data.append({'template_id': template_idx, 'entropy': entropy_value,
                                       'pixel_percentage': pixel_percentage})
            existing_rankings = class_rankings.get('entropy_ranking', [])
            existing_template_map = {str(t['template_id']): t for t in existing_rankings}
            for template_data in templates_data:
                template_id = str(template_data['template_id'])
                if template_id in existing_template_map:
                    existing_template_map[template_id].update(template_data)
                else:
                    existing_template_map[template_id] = template_data
            all_templates = list(existing_template_map.values())
            entropy_sorted = sorted(all_templates, key=lambda x: x['entropy'])
            class_rankings['entropy_ranking'] = [{**t, 'rank': i + 1} for i, t in enumerate(entropy_sorted)]
        return rankings

    def write(self, class_names: List[str], json_file_path: Path) -> None:
        import json
        with open(json_file_path, 'w') as f:
            json.dump(self.rankings(class_names), f, indent=2)
