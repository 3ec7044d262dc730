"""FreeCP (Chen et al., "Training-Free Class Purification", ICCV 2025): a plug-in over a base method.

FreeCP (chenqi1126/FreeCP @ 6946aa7, ``freecp_segmentor.py``) runs a base method (``base``:
ClearCLIP, SCLIP, GEM, MaskCLIP or CLIP's own last block, as its ``forward_all`` computes them)
and then, per window, purifies the classes of the base's class maps:

1. ``P = softmax(s · f·tᵀ)`` over the queries (``s``: CLIP's logit scale, ``model.logit_scale``),
   and ``P̂`` = P min-max normalised over the whole window.
2. Refinement: ``T`` = CLIP's own attention of blocks 1..L-1 (mean over heads; GEM: head 0),
   patch tokens only, averaged, Sinkhorn-normalised (columns then rows, three times), symmetrised
   and squared; each class's map becomes ``T · (m_c ⊙ P̂_c)``, ``m_c`` the bounding boxes of
   the contours of ``P̂_c > 0.4·max`` (OpenCV, as CLIP-ES), then min-max normalised: ``R_c``.
3. Redundancy purification: a class is a candidate when
   ``Σ P_c·R_c / (Σ P_c + Σ R_c) > rp_thres``; the others' maps become 0.
4. Ambiguity purification: candidates whose maps overlap (soft IoU ``Σ min / Σ max >= ap_thres``,
   connected components) are told apart by CLIP itself: each box of their mean map, cropped from
   the window and resized to 112×112, is classified by CLIP's CLS token against the classes' LLM
   descriptions (``model.text.descriptions``); the winners stay, the rest become 0.
   ``ambiguity_texts='queries'`` (ours, not official: for datasets with no descriptions) classifies
   the crops against the queries' own embeddings instead (the class names in ``model.templates``,
   the classifier of step 1): FreeCP's ``get_prompts(use_llm=False)`` in place of its
   ``use_llm=True``, so ``query_featuresLLM`` is ``query_features``.

The window's output is the maps R (the background's queries 0), not features: the segmentor
upsamples and averages them like logits, and FreeCP's own post-processing makes the labels
(``background``: class 0 scores ``1 - max`` of the others; else the argmax).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk, resize_positional_embedding
from .base import Method, TextSide, build_method, register_method
from .gem import gem_positional_embedding

# FreeCP's ``forward_all(model_type)``: the base's last block (no residual; MLP except ClearCLIP), or GEM
BASES = {
    'clearclip': dict(type='attention', attention=dict(type='csa_q'), last_block_residual=False,
                      last_block_mlp=False),
    'sclip': dict(type='attention', attention=dict(type='csa'), last_block_residual=False, last_block_mlp=True),
    'maskclip': dict(type='attention', attention=dict(type='maskclip'), last_block_residual=False,
                     last_block_mlp=True),
    'vanilla': dict(type='attention', attention=dict(type='vanilla'), last_block_residual=False,
                    last_block_mlp=True),
    'gem': dict(type='gem'),
}
# What the ambiguity step classifies box crops against: the LLM descriptions (official), or the
# queries' own template texts (ours: FreeCP's get_prompts with use_llm=False, for datasets without)
AMBIGUITY_TEXTS = ('descriptions', 'queries')


def contour_boxes(scoremap: Tensor, threshold: float) -> List[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of every contour (OpenCV ``RETR_TREE``) of the 8-bit map above
    ``threshold · max``; the right/bottom edge is clipped to ``size - 1`` (official: so the last
    row/column is never inside a box); no contour: one empty box."""
    image = (scoremap.float().cpu().numpy() * 255).astype(np.uint8)[:, :, None]
    height, width = image.shape[:2]
    _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return [(0, 0, 0, 0)]
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append((x, y, min(x + w, width - 1), min(y + h, height - 1)))
    return boxes


def box_mask(scoremap: Tensor, threshold: float) -> Tensor:
    mask = torch.zeros_like(scoremap, dtype=torch.float32)
    for x0, y0, x1, y1 in contour_boxes(scoremap, threshold):
        mask[y0:y1, x0:x1] = 1
    return mask


def propagation_matrix(attention: Tensor) -> Tensor:
    """CLIP-ES's affinity: (N, N) attention Sinkhorn-normalised three times, symmetrised, squared."""
    t = attention / attention.sum(dim=0, keepdim=True)
    t = t / t.sum(dim=1, keepdim=True)
    for _ in range(2):
        t = t / t.sum(dim=0, keepdim=True)
        t = t / t.sum(dim=1, keepdim=True)
    t = (t + t.transpose(1, 0)) / 2
    return t @ t


def min_max(x: Tensor, eps: float = 0.0) -> Tensor:
    return (x - x.min()) / (x.max() - x.min() + eps)


def overlap_groups(adjacent: Tensor) -> List[List[int]]:
    """Connected components of a 0/1 matrix, each in depth-first order from its smallest node."""
    n = adjacent.shape[0]
    linked = (adjacent == 1).tolist()
    seen = [False] * n
    groups = []
    for start in range(n):
        if seen[start]:
            continue
        group, stack = [], [start]
        while stack:  # the recursive DFS's visiting order, iteratively
            node = stack.pop()
            if seen[node]:
                continue
            seen[node] = True
            group.append(node)
            stack.extend(other for other in reversed(range(n)) if linked[node][other] and not seen[other])
        groups.append(group)
    return groups


@register_method('freecp')
class FreeCP(Method):
    """FreeCP's class purification over ``base`` (its per-benchmark ``rp_thres`` / ``ap_thres``)."""
    needs_text = True
    normalizes = True        # its output is per-query maps, not features to normalise
    scores_queries = True
    own_postprocess = True

    def __init__(self, base: str = 'gem', rp_thres: float = 0.15, ap_thres: float = 0.7, background: bool = False,
                 box_threshold: float = 0.4, crop_size: int = 112, ambiguity_texts: str = 'descriptions'):
        super().__init__()
        if base not in BASES:
            raise SCLIPError(f'model.method.base={base!r} is unknown; FreeCP runs on one of {", ".join(BASES)}.')
        self.base_name = base
        self.base = build_method(BASES[base])
        self.rp_thres = float(rp_thres)
        self.ap_thres = float(ap_thres)
        self.background = bool(background)
        self.box_threshold = float(box_threshold)
        self.crop_size = int(crop_size)
        for key in ('rp_thres', 'ap_thres', 'box_threshold'):
            if not 0 <= getattr(self, key) <= 1:
                raise SCLIPError(f'model.method.{key}={getattr(self, key)} must be in [0, 1].')
        if self.crop_size < 1:
            raise SCLIPError(f'model.method.crop_size={crop_size} must be positive.')
        if ambiguity_texts not in AMBIGUITY_TEXTS:
            raise SCLIPError(f'model.method.ambiguity_texts={ambiguity_texts!r} is unknown; one of '
                             f'{", ".join(AMBIGUITY_TEXTS)}.')
        self.ambiguity_texts = ambiguity_texts

    def setup(self, vit: CLIPViT) -> None:
        self.base.setup(vit)

    @property
    def positional(self) -> Callable:
        """How CLIP's positional embedding is resized: GEM's wrapper resizes it its own way."""
        return gem_positional_embedding if self.base_name == 'gem' else resize_positional_embedding

    def background_queries(self, text: TextSide) -> int:
        """How many leading queries are the background's (class 0); every other class has one."""
        query_class = text.query_class.tolist()
        count = query_class.count(0) if self.background else 0
        expected = list(range(1, query_class[-1] + 1)) if self.background else list(range(len(query_class)))
        if query_class[count:] != expected:
            raise SCLIPError('model.class_names: FreeCP needs one name per class (several only for the '
                             'background, class 0, with model.method.background=True).')
        return count

    def affinity(self, trunk: Trunk) -> Tensor:
        """CLIP's own attention of blocks 1..L-1 between patches, averaged, (B, N, N)."""
        def maps(block: int) -> Tensor:
            if self.base_name == 'gem':  # official: GEM's head 0
                return trunk.attention(block, head=0)[:, 1:, 1:]
            return trunk.attention(block)[:, :, 1:, 1:].mean(dim=1)
        return torch.stack([maps(block) for block in range(1, trunk.vit.depth)]).mean(dim=0).float()

    def crop_classifier(self, trunk: Trunk, image: Tensor, box, candidates: Tensor, text: TextSide) -> int:
        """Which of ``candidates`` (query indices) CLIP's CLS token of the box's crop picks."""
        py, px = trunk.vit.patch_size
        x0, y0, x1, y1 = box
        crop = image[:, :, y0 * py:y1 * py, x0 * px:x1 * px]
        crop = F.interpolate(crop, size=(self.crop_size, self.crop_size), mode='bilinear')
        tokens = Trunk(trunk.vit, crop, self.positional).tokens(trunk.vit.depth)
        cls = trunk.vit.project(tokens[:, :1]).float()
        cls = cls / cls.norm(dim=-1, keepdim=True)
        texts = text.descriptions if self.ambiguity_texts == 'descriptions' else text.embeddings
        descriptions = texts[candidates].float()
        descriptions = descriptions / descriptions.norm(dim=-1, keepdim=True)
        return int((text.logit_scale * cls @ descriptions.T).argmax(-1).squeeze())

    def purify(self, trunk: Trunk, image: Tensor, probs: Tensor, transfer: Tensor, first: int,
               text: TextSide) -> Tensor:
        """One window: query probabilities (Q, gh, gw) -> purified class maps (Q, gh, gw)."""
        queries, gh, gw = probs.shape
        normalized = min_max(probs)
        masks = torch.stack([box_mask(normalized[q], self.box_threshold) for q in range(first, queries)])
        cams = normalized[first:].float()
        refined = (transfer @ (masks * cams).flatten(1).T).T.reshape(-1, gh, gw)
        refined = torch.stack([min_max(r, 1e-8) for r in refined])
        maps = torch.zeros(queries, gh, gw, dtype=refined.dtype, device=refined.device)
        maps[first:] = refined
        # redundancy purification
        overlap = (probs[first:] * maps[first:]).sum((-1, -2)) / (
            probs[first:].sum((-1, -2)) + maps[first:].sum((-1, -2)) + 1e-8)
        candidates = torch.where(overlap > self.rp_thres)[0]
        keep = torch.zeros(queries - first, dtype=torch.bool, device=maps.device)
        keep[candidates] = True
        if len(candidates) > 1:  # ambiguity purification
            kept = maps[first + candidates]
            soft_iou = torch.minimum(kept[:, None], kept[None]).sum((2, 3)) / \
                torch.maximum(kept[:, None], kept[None]).sum((2, 3))
            soft_iou = torch.where(soft_iou >= self.ap_thres, 1.0, torch.where(soft_iou < self.ap_thres, 0.0, soft_iou))
            valid: List[int] = []
            for group in overlap_groups(soft_iou):
                if len(group) == 1:
                    valid.append(group[0])
                    continue
                chosen = False
                for box in contour_boxes(kept[group].mean(0), self.box_threshold):
                    x0, y0, x1, y1 = box
                    if y0 == y1 or x0 == x1:
                        valid.extend(group)
                        continue
                    pick = self.crop_classifier(trunk, image, box, first + candidates[group], text)
                    valid.append(group[pick])
                    chosen = True
                if not chosen:
                    valid.extend(group)
            keep[:] = False
            keep[candidates[torch.tensor(sorted(set(valid)), dtype=torch.long)]] = True
        maps[first:] = maps[first:] * keep[:, None, None]
        return maps

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:
        if self.ambiguity_texts == 'descriptions' and text.descriptions is None:
            raise SCLIPError('model.text.descriptions is not set; FreeCP classifies its ambiguous crops with '
                             'the LLM descriptions (configs/class_texts/freecp/), or with the queries\' own '
                             "texts under model.method.ambiguity_texts='queries' (ours, not official).")
        if self.ambiguity_texts == 'queries' and text.descriptions is not None:
            raise SCLIPError("model.method.ambiguity_texts='queries' does not read model.text.descriptions; "
                             'set model.text=None (or ambiguity_texts=\'descriptions\').')
        first = self.background_queries(text)
        if self.base_name == 'gem' and tuple(trunk.grid) != trunk.vit.native_grid:
            trunk = Trunk(trunk.vit, trunk.images, self.positional)  # GEM's embedding for both paths
        # the maps first: their walk through blocks 1..L-1 keeps each block's q, k, v for CLIP's
        # path, which the base then reads instead of computing it again (the same numbers)
        transfer = propagation_matrix_batch(self.affinity(trunk))
        features = self.base(trunk, text).float()
        features = features / features.norm(dim=-1, keepdim=True)
        logits = (text.logit_scale * features) @ text.embeddings.float().T  # (B, gh, gw, Q)
        probs = logits.softmax(dim=-1).permute(0, 3, 1, 2)
        return torch.stack([self.purify(trunk, trunk.images[i:i + 1], probs[i], transfer[i], first, text)
                            for i in range(probs.shape[0])])

    def postprocess(self, logits: Tensor, query_class: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
        """FreeCP's ``postprocess_result``: class scores (C, H, W) and labels (1, H, W)."""
        first = query_class.tolist().count(0) if self.background else 0
        scores = logits[first:]
        if self.background:
            scores = torch.cat([1 - scores.max(dim=0, keepdim=True)[0], scores])
        return scores, scores.argmax(dim=0, keepdim=True)


def propagation_matrix_batch(attention: Tensor) -> Tensor:
    return torch.stack([propagation_matrix(a) for a in attention])
