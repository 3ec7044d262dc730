"""Trident's SAM refinement of a label map (official ``eval.py --sam_refine``).

Why: Trident's published numbers (its ``eval_all.py`` runs ``dist_test.sh``, which passes
``--sam_refine``) are not its segmentor's labels but those labels re-drawn by SAM: every
confident connected region of each class prompts SAM's mask decoder, and SAM's masks replace the
coarse ones where SAM is sure. YuHengsss/Trident @ a93b346 ``seg_utils/utils.py``
``sam_refinement`` / ``split_connected_regions`` / ``map_refinement_coarse`` /
``map_failed_regions``, per image, on the class probabilities ``P`` (C, H, W) and labels:

1. At half resolution (labels nearest, ``P`` bilinear), pixels whose best probability is under
   ``coarse_thresh`` are nobody's; a class whose best probability is under it is skipped.
2. Each 8-connected region of a class's pixels of at least ``minimal_area`` (half-resolution
   pixels) is one prompt: its box, its most probable pixel as a positive point, and the class's
   probabilities (resized to SAM's mask input, ``sam_mask_coff`` × P where P > ``coarse_thresh``,
   else 0) as the mask, all regions of a class in one decoder call, one mask each.
3. A mask is kept when SAM's predicted IoU exceeds ``sam_iou_thresh``. Each class's score becomes
   ``max over its kept masks of sigmoid(mask logit) × P``, inside the union of those masks, 0
   elsewhere; the label is the best score, the coarse label where no mask covers the pixel.
4. Where a region's mask was rejected, the coarse probability replaces a lower refined score.

SAM sees the image Trident gives it: for most benchmarks the embedding of its correlation
(one encoder pass serves both); Cityscapes, whose correlation runs per half, adds a pass over the
whole image. Quirks kept: prompts are scaled as if the half-resolution map were the image,
the mask prompt is given unbatched (SAM's ``LayerNorm2d`` then normalises it over rows),
nothing is refined when no mask passes (not even the rejected regions). Dropped as a no-op:
the official last step that restores coarse labels where a rejected region's probability beats
every refined score (after step 4 it never does). Region numbering differs from scikit-image's
(scipy labels the same 8-connected regions), which changes nothing: every region is prompted
alone and the masks are combined by max and union.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DOWN_RATIO = 2  # official: down_ratio = 2


@dataclass(frozen=True)
class RefineSettings:
    """The official keywords (base_config.py: 0.2, 225, 0.80; the constructor's 0.005)."""
    coarse_thresh: float = 0.2
    minimal_area: int = 225
    sam_iou_thresh: float = 0.8
    sam_mask_coff: float = 0.005


@dataclass
class SAMImage:
    """SAM's embedding (1, C, g, g) of the picture it saw, and that picture's geometry:
    ``input_size`` after ResizeLongestSide, ``original_size`` the picture's (h, w)."""
    embedding: Tensor
    input_size: Tuple[int, int]
    original_size: Tuple[int, int]
    image_size: int


@dataclass
class Regions:
    """One class's prompts at half resolution: masks (n, h, w) bool, boxes (n, 4) and points (n, 2) (x, y)."""
    masks: Tensor
    boxes: Tensor
    points: Tensor


def class_regions(labels: Tensor, probs: Tensor, settings: RefineSettings) -> Tuple[dict, Tensor]:
    """``{class: Regions}`` of the half-resolution map, and the half-resolution probabilities."""
    from scipy import ndimage
    height, width = probs.shape[-2] // DOWN_RATIO, probs.shape[-1] // DOWN_RATIO
    small_labels = F.interpolate(labels[None].float(), (height, width), mode='nearest')[0, 0].long()
    small = F.interpolate(probs[None], (height, width), mode='bilinear', align_corners=False)[0]
    if settings.coarse_thresh > 0:
        small_labels[small.max(dim=0).values < settings.coarse_thresh] = -1
    out = {}
    eight = np.ones((3, 3), dtype=bool)
    for cls in range(probs.shape[0]):
        score = small[cls]
        if score.max() < settings.coarse_thresh:
            continue
        numbered, count = ndimage.label((small_labels == cls).cpu().numpy(), structure=eight)
        if count == 0:
            continue
        areas = np.bincount(numbered.ravel(), minlength=count + 1)
        masks, boxes, points = [], [], []
        for region, box in enumerate(ndimage.find_objects(numbered), start=1):
            if areas[region] < settings.minimal_area:
                continue
            mask = torch.from_numpy(numbered == region).to(score.device)
            rows, cols = box
            boxes.append([cols.start, rows.start, cols.stop - 1, rows.stop - 1])  # torchvision masks_to_boxes
            flat = int(torch.argmax(torch.where(mask, score, 0.0)))               # the first most probable
            points.append([flat % width, flat // width])
            masks.append(mask)
        if masks:
            out[cls] = Regions(torch.stack(masks), torch.tensor(boxes, device=score.device),
                               torch.tensor(points, device=score.device))
    return out, small


def mask_prompt(small_prob: Tensor, image_hw: Tuple[int, int], size: Tuple[int, int],
                settings: RefineSettings) -> Tensor:
    """The class's probabilities as SAM's mask input (1, S, S): resized so its longer side is S
    (the image's aspect), zero-padded, ``sam_mask_coff`` × P above ``coarse_thresh``, else 0."""
    from segment_anything.utils.transforms import ResizeLongestSide
    new_h, new_w = ResizeLongestSide.get_preprocess_shape(image_hw[0], image_hw[1], size[0])
    prompt = F.interpolate(small_prob[None, None], (new_h, new_w), mode='bilinear', align_corners=False)[0]
    prompt = F.pad(prompt, (0, size[1] - new_w, 0, size[0] - new_h), mode='constant', value=0)
    return torch.where(prompt > settings.coarse_thresh, settings.sam_mask_coff * prompt, 0.0).float()


def decode(prompts, sam: SAMImage, regions: Regions, mask: Tensor, small_hw: Tuple[int, int]):
    """SAM's single-mask prediction for each region: low-resolution logits (n, 1, S, S), IoU (n,)."""
    from segment_anything.utils.transforms import ResizeLongestSide
    transform = ResizeLongestSide(sam.image_size)
    boxes = transform.apply_boxes_torch(regions.boxes, small_hw).float()
    points = transform.apply_coords_torch(regions.points, small_hw).unsqueeze(1)
    point_labels = torch.ones(points.shape[0], 1, device=points.device)
    sparse, dense = prompts.prompt_encoder(points=(points.float(), point_labels), boxes=boxes, masks=mask)
    low_res, iou = prompts.mask_decoder(image_embeddings=sam.embedding, image_pe=prompts.prompt_encoder.get_dense_pe(),
                                        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                        multimask_output=False)
    return low_res, iou[:, 0]


def full_size_logits(low_res: Tensor, sam: SAMImage, size: Tuple[int, int]) -> Tensor:
    """``Sam.postprocess_masks`` to the picture SAM saw, then bilinear to the label map's size."""
    logits = F.interpolate(low_res, (sam.image_size, sam.image_size), mode='bilinear', align_corners=False)
    logits = logits[..., :sam.input_size[0], :sam.input_size[1]]
    logits = F.interpolate(logits, tuple(sam.original_size), mode='bilinear', align_corners=False)
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, tuple(size), mode='bilinear', align_corners=False)
    return logits[:, 0]


@torch.no_grad()
def sam_refine(labels: Tensor, probs: Tensor, sam: SAMImage, prompts, settings: RefineSettings,
               image_hw: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Tensor]:
    """Refined (probs (C, H, W), labels (1, H, W)) of one image's class probabilities and labels.
    ``image_hw``: the original image's size (the mask prompt's aspect; default the map's)."""
    size = tuple(probs.shape[-2:])
    image_hw = tuple(image_hw or size)
    regions, small = class_regions(labels, probs, settings)
    small_hw = tuple(small.shape[-2:])
    kept: List[Tuple[int, Tensor]] = []
    rejected: Optional[Tensor] = None
    for cls, found in regions.items():
        mask = mask_prompt(small[cls], image_hw, prompts.mask_input_size, settings)
        low_res, iou = decode(prompts, sam, found, mask, small_hw)
        valid = iou > settings.sam_iou_thresh
        if not bool(valid.all()):
            union = found.masks[~valid].any(dim=0)
            rejected = union if rejected is None else rejected | union
        if bool(valid.any()):
            kept.append((cls, low_res[valid]))
    if not kept:
        return probs, labels
    refined = probs.new_zeros(probs.shape)
    for cls, low_res in kept:
        logits = full_size_logits(low_res, sam, size)
        refined[cls] = (logits.sigmoid() * probs[cls]).max(dim=0).values * (logits > 0).any(dim=0)
    refined_labels = refined.argmax(dim=0, keepdim=True)
    refined_labels = torch.where(refined.sum(dim=0, keepdim=True) == 0, labels, refined_labels)
    if rejected is not None:
        rejected = F.interpolate(rejected[None, None].float(), size, mode='nearest')[0]
        coarse = rejected * probs
        refined = torch.where(coarse > refined, coarse, refined)
    return refined, refined_labels
