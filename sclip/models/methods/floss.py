"""FLOSS (Benigmim et al., ICCV 2025): per-class expert templates fused over any base method.

FLOSS changes only the text side and how a window's class probabilities are formed, so it is a
plug-in, not a forward program: any base config (NACLIP in configs/floss/) plus
``model.text.template_ranking`` (the ranking files FLOSS ships, class_texts.py). The
``TextClassifier`` then builds one expert per query: every query embedded with that query's
``top_n`` ranked templates. Per window (yasserben/FLOSS ``naclip.py`` in ``mode='fusion'``):

1. ``P_e = softmax(logit_scale · f·E_eᵀ)`` over the queries, per expert and for the default
   classifier (all 80 templates), at patch level (``expert_patch_probabilities``);
2. each upsampled to the window (bilinear), then fused per pixel (``fuse_experts``): expert
   ``e`` *claims* a pixel where its own argmax is query ``e``; one claim takes that expert's
   probabilities, several take the claimant most confident in its own query (the first on
   ties), none the default's.

The fused probabilities go through the base's canvas, resize and post-processing; official: the
post-processing applies ``softmax(logit_scale · ·)`` to these probabilities once more.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def expert_patch_probabilities(features: Tensor, experts: Tensor, default: Tensor, logit_scale: float) -> Tensor:
    """Patch features (..., D) -> (..., E + 1, Q): each expert's softmax, the default's last."""
    classifiers = torch.cat([experts, default[None]]).to(features.dtype)  # (E + 1, Q, D)
    logits = features @ classifiers.reshape(-1, classifiers.shape[-1]).T
    return (logits.unflatten(-1, classifiers.shape[:2]) * logit_scale).softmax(dim=-1)


def fuse_experts(upsample: Callable[[Tensor], Tensor], probabilities: Tensor) -> Tensor:
    """Fused window probabilities (n, Q, h, w) from patch probabilities (n, E + 1, Q, gh, gw).

    ``upsample`` takes (n, Q, gh, gw) to the window's (n, Q, h, w). The official code upsamples
    and keeps every expert at once; this streams over the experts keeping the best claim so far
    (a strictly higher confidence replaces it, so the first maximum wins, as there), which picks
    the same expert at every pixel with memory for one expert."""
    num_experts = probabilities.shape[1] - 1
    fused = upsample(probabilities[:, -1])  # no claim: the default classifier
    best = torch.full_like(fused[:, 0], -1.0)
    for expert in range(num_experts):
        probs = upsample(probabilities[:, expert])
        confidence = probs[:, expert]
        claims = (probs.argmax(dim=1) == expert) & (confidence > best)
        best = torch.where(claims, confidence, best)
        fused = torch.where(claims[:, None], probs, fused)
    return fused

