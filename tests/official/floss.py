"""Oracle: the official FLOSS inference over NACLIP (yasserben/FLOSS @ ccf1d49d,
``mmseg/models/segmentors/naclip/naclip.py`` with ``mode='fusion'``; its vision model and PAMR
are NACLIP's own, transcribed in naclip.py).

Quirks kept:
- ``_load_template_rankings``: per class of the ranking JSON, the ``entropy_ranking`` entries with
  ``pixel_percentage > 0``, first ``top_n`` template ids; ``pascalvoc20`` then gets
  ``_apply_quick_and_dirty_fix`` (the class file's names the JSON spells otherwise).
- ``encode_text_features``: per query word an expert: every query word in that word's templates
  (normalised mean, one prompt tokenised at a time, then concatenated); the default classifier
  (all 80 templates) last: (E + 1, Q, D).
- ``forward_feature``: features without CLS, normalised; ``F.conv2d`` with the stacked
  classifiers; ``softmax(logit_scale · ·)`` over queries per expert; each upsampled to the window
  (bilinear, align_corners=False); ``expert_fusion`` (exact / none / conflict regions).
- ``forward_slide``: NACLIP's loop (fp32 canvas outside ``compute_metric``); ``predict`` resizes to
  ``ori_shape``; PAMR off (``eval_naclip.py`` sets ``pamr_steps=0``).
- ``postprocess_result``: ``softmax(seg_logits · logit_scale)`` of the fused probabilities,
  per-class max, argmax; the ``prob_thd`` line is commented out.
"""
from __future__ import annotations

import json
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import averaged_windows, official_fp16, query_index_tensor
from .naclip import OfficialVisual


def load_template_rankings(path: str, top_n: int, dataset: str) -> Dict[str, List[int]]:
    with open(path, 'r') as f:
        rankings_data = json.load(f)
    ranking_field = 'entropy_ranking'
    template_dict = {}
    for class_name, class_data in rankings_data['classes'].items():
        if ranking_field in class_data:
            templates = class_data[ranking_field]
            templates = [template for template in templates if template['pixel_percentage'] > 0.0]
            template_ids = [template['template_id'] for template in templates][:top_n]
            if template_ids:
                template_dict[class_name] = template_ids
            else:
                raise ValueError(f'No valid templates found for class {class_name}')
    if dataset == 'pascalvoc20':
        template_dict = apply_quick_and_dirty_fix(template_dict)
    return template_dict


def apply_quick_and_dirty_fix(template_dict):
    template_dict['ship'] = template_dict['boat']
    del template_dict['boat']
    template_dict['table'] = template_dict['diningtable']
    del template_dict['diningtable']
    for name in ('person in shirt', 'person in jeans', 'person in dress', 'person in sweater', 'person in skirt',
                 'person in jacket'):
        template_dict[name] = template_dict['person']
    for name in ('television monitor', 'tv monitor', 'monitor', 'television', 'screen'):
        template_dict[name] = template_dict['tvmonitor']
    return template_dict


def encode_text_features(encode_text: Callable, tokenize: Callable, query_words: Sequence[str],
                         templates: Sequence[Callable], template_dict, default_templates=None) -> Tensor:
    """``encode_text_features`` in ``mode='fusion'`` (``template_id=None``); ``default_templates``
    replaces the 80 of the default classifier (tests on a full-size text tower)."""
    list_of_experts = []
    for name in query_words:
        expert_embeddings = []
        if isinstance(template_dict[name], list):
            expert_templates = [templates[tid] for tid in template_dict[name]]
        else:
            expert_templates = [templates[template_dict[name]]]
        for element in query_words:
            all_prompts = torch.cat([tokenize([template(element)]) for template in expert_templates])
            with torch.no_grad():
                feature = encode_text(all_prompts)
                feature /= feature.norm(dim=-1, keepdim=True)
                feature = feature.mean(dim=0)
                feature /= feature.norm()
            expert_embeddings.append(feature)
        list_of_experts.append(torch.stack(expert_embeddings))
    default_embeddings = []
    for qw in query_words:
        query = tokenize([temp(qw) for temp in (default_templates or templates)])
        with torch.no_grad():
            feature = encode_text(query)
            feature /= feature.norm(dim=-1, keepdim=True)
            feature = feature.mean(dim=0)
            feature /= feature.norm()
            default_embeddings.append(feature)
    list_of_experts.append(torch.stack(default_embeddings))
    return torch.stack(list_of_experts)  # [num_experts+1, num_classes, text_channels]


def expert_fusion(expert_probs: Tensor, default_prob: Tensor) -> Tensor:
    """``NACLIP.expert_fusion``: [E, 1, C, H, W] experts, [1, C, H, W] default -> [1, C, H, W]."""
    expert_probs = expert_probs.squeeze(1)
    default_prob = default_prob.squeeze(0)
    num_experts, C, H, W = expert_probs.shape
    device = expert_probs.device
    dtype = expert_probs.dtype
    predictions = torch.argmax(expert_probs, dim=1)
    final_probs = torch.zeros((C, H, W), device=device, dtype=dtype)
    expert_masks = torch.zeros((num_experts, H, W), dtype=torch.bool, device=device)
    for expert_idx in range(num_experts):
        expert_masks[expert_idx] = predictions[expert_idx] == expert_idx
    overlap_count = torch.sum(expert_masks, dim=0)
    exact_match = overlap_count == 1
    no_expert_match = overlap_count == 0
    conflict = overlap_count > 1
    for expert_idx in range(num_experts):
        mask = expert_masks[expert_idx] & exact_match
        if mask.any():
            mask_expanded = mask.unsqueeze(0).expand(C, -1, -1)
            final_probs[mask_expanded] = expert_probs[expert_idx][mask_expanded].to(dtype)
    if no_expert_match.any():
        mask_expanded = no_expert_match.unsqueeze(0).expand(C, -1, -1)
        final_probs[mask_expanded] = default_prob[mask_expanded].to(dtype)
    if conflict.any():
        max_probs = torch.full((H, W), -1.0, device=device, dtype=dtype)
        selected_experts = torch.full((H, W), -1, dtype=torch.long, device=device)
        for expert_idx in range(num_experts):
            current_mask = expert_masks[expert_idx] & conflict
            if current_mask.any():
                confidence = expert_probs[expert_idx, expert_idx].to(dtype)
                update_mask = current_mask & (confidence > max_probs)
                max_probs[update_mask] = confidence[update_mask]
                selected_experts[update_mask] = expert_idx
        valid_selections = selected_experts >= 0
        if valid_selections.any():
            for expert_idx in range(num_experts):
                expert_mask = (selected_experts == expert_idx) & valid_selections
                if expert_mask.any():
                    mask_expanded = expert_mask.unsqueeze(0).expand(C, -1, -1)
                    final_probs[mask_expanded] = expert_probs[expert_idx][mask_expanded].to(dtype)
    return final_probs.unsqueeze(0)


class OfficialFLOSS:
    """FLOSS's ``NACLIP`` segmentor in ``mode='fusion'``, from an already built model."""

    def __init__(self, clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int],
                 arch: str = 'reduced', attn_strategy: str = 'naclip', gaussian_std: float = 5.0,
                 logit_scale: float = 100, slide_stride: int = 112, slide_crop: int = 224, half: bool = False):
        self.net = official_fp16(clip_model) if half else clip_model
        self.query_idx = query_index_tensor(query_idx, query_features.device)
        self.num_queries = len(query_idx)
        self.query_features = query_features
        self.visual = OfficialVisual(self.net.visual, arch, attn_strategy, gaussian_std)
        self.logit_scale = logit_scale
        self.slide_stride = slide_stride
        self.slide_crop = slide_crop
        self.align_corners = False

    def forward_feature(self, img: Tensor) -> Tensor:
        image_features = self.visual.forward(img.type(self.net.visual.conv1.weight.dtype))
        image_features = image_features[:, 1:]
        image_features /= image_features.norm(dim=-1, keepdim=True)

        num_experts, num_classes, text_channels = self.query_features.shape
        reshaped_query_features = self.query_features.reshape(-1, text_channels)
        patch_size = self.visual.patch_size
        w, h = img[0].shape[-2] // patch_size, img[0].shape[-1] // patch_size
        out_dim = image_features.shape[-1]
        image_features = image_features.permute(0, 2, 1).reshape(-1, out_dim, w, h)
        outputs = F.conv2d(image_features, reshaped_query_features[:, :, None, None])
        outputs = outputs.reshape(image_features.size(0), num_experts, num_classes, outputs.size(2), outputs.size(3))
        outputs = F.softmax(outputs * self.logit_scale, dim=2)
        outputs = outputs.permute(1, 0, 2, 3, 4)
        final_outputs = []
        for output in outputs:
            output = nn.functional.interpolate(output, size=img.shape[-2:], mode='bilinear',
                                               align_corners=self.align_corners)
            final_outputs.append(output)
        final_outputs = torch.stack(final_outputs)
        default_prob = final_outputs[-1]
        expert_probs = final_outputs[:-1]
        return expert_fusion(expert_probs=expert_probs, default_prob=default_prob)

    def inference(self, inputs: Tensor, ori_shape) -> Tensor:
        if self.slide_crop > 0:
            seg_logits = averaged_windows(inputs, self.slide_stride, self.slide_crop, self.num_queries,
                                          self.forward_feature)
        else:
            seg_logits = self.forward_feature(inputs)
        return nn.functional.interpolate(seg_logits, size=tuple(ori_shape), mode='bilinear',
                                         align_corners=self.align_corners)

    def postprocess_result(self, seg_logits: Tensor) -> Tensor:
        for i in range(seg_logits.shape[0]):
            seg_probs = torch.softmax(seg_logits[i] * self.logit_scale, dim=0)
            num_cls, num_queries = max(self.query_idx) + 1, len(self.query_idx)
            if num_cls != num_queries:
                seg_probs = seg_probs.unsqueeze(0)
                cls_index = nn.functional.one_hot(self.query_idx)
                cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
                seg_probs = (seg_probs * cls_index).max(1)[0]
            seg_pred = seg_probs.argmax(0, keepdim=True)
        return seg_pred

    def predict(self, inputs: Tensor, ori_shape, return_logits: bool = False):
        seg_logits = self.inference(inputs, ori_shape)
        seg_pred = self.postprocess_result(seg_logits)
        return (seg_pred, seg_logits) if return_logits else seg_pred


@torch.no_grad()
def predict(clip_model: nn.Module, query_features: Tensor, query_idx: Sequence[int], img: Tensor, ori_shape,
            return_logits: bool = False, **settings):
    """Official NACLIP + FLOSS labels (1, h, w); ``query_features`` (E + 1, Q, D) from
    ``encode_text_features``."""
    return OfficialFLOSS(clip_model, query_features, query_idx, **settings).predict(img, ori_shape, return_logits)
