"""What every method is: a short forward program over CLIP's blocks, registered by name.

Why: SCLIP changes one attention; its successors repair tokens, mix intermediate blocks,
run the last block twice, feed a provisional segmentation back into the attention, or
borrow another model's patch correspondence. Each of them is one ``Method`` subclass whose
``forward`` reads like the paper's equations: it asks the ``Trunk`` for CLIP's unmodified
block outputs it needs and writes only what the method changes. Settings are constructor
arguments, hence config keys (``model.method.<key>``) and sweep axes.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Type

import torch.nn as nn
from torch import Tensor

from ...errors import SCLIPError
from ..clip_vit import CLIPViT, Trunk


@dataclass
class TextSide:
    """What a method may know of the text side: the query embeddings (Q, D), unit norm, and the
    logit scale the segmentor applies (ResCLIP builds a provisional segmentation from them);
    with ``model.text`` (class_texts.py), each query's description embedding (Q, D) and the
    per-query expert classifiers (Q, Q, D), else None; ``query_class`` (Q,): each query's class;
    ``presence`` (Q, D'): the queries encoded by a method's second CLIP (CASS's scale-up), else None."""
    embeddings: Tensor
    logit_scale: float
    descriptions: Optional[Tensor] = None
    experts: Optional[Tensor] = None
    query_class: Optional[Tensor] = None
    presence: Optional[Tensor] = None


class Method(nn.Module):
    """A training-free method: ``forward(trunk, text) -> patch features (B, gh, gw, D)``.

    Subclasses set ``name`` through ``@register_method`` and implement ``forward``; ``setup``
    checks the settings against the CLIP model once it is known (block indices, depth).
    ``needs_text`` tells the segmentor to pass the class embeddings. A method that sees each
    window several ways (ITACLIP's flipped views) returns (B, views, gh, gw, D) and combines the
    views' logits at the window's size in ``combine_views``; one that normalises its features
    itself (a mean of unit vectors, not re-normalised) sets ``normalizes``. One that scores the
    windows itself (FreeCP's purified class maps) sets ``scores_queries`` and returns (B, Q, gh, gw);
    one with its own post-processing sets ``own_postprocess`` and implements ``postprocess``.
    """
    name: str = ''
    needs_text: bool = False
    views: int = 1
    normalizes: bool = False
    scores_queries: bool = False
    own_postprocess: bool = False

    def postprocess(self, logits: Tensor, query_class: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
        """Per-query logits (Q, H, W) -> class scores (C, H, W) and labels (1, H, W)."""
        raise NotImplementedError

    def combine_views(self, logits: Tensor) -> Tensor:
        """(n, views, Q, h, w) window logits -> (n, Q, h, w)."""
        raise NotImplementedError

    def setup(self, vit: CLIPViT) -> None:
        """Validate settings against ``vit`` (called once, before the first forward)."""

    def official_fp16(self) -> None:
        """Cast the method's own modules as its official code does under ``precision='official'``
        (SegEarth-OV's upsampler: ``.half()``); CLIP itself is cast by the segmentor."""

    def forward(self, trunk: Trunk, text: Optional[TextSide] = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def attention_maps(self, trunk: Trunk) -> Tensor:
        """The last block's attention weights (B, heads, N, N), for figures."""
        raise SCLIPError(f'model.method.type={self.name!r} has no single last-block attention map '
                         'to draw; use an attention method (SCLIP, ClearCLIP, NACLIP).')


METHODS: Dict[str, Type[Method]] = {}


def register_method(name: str):
    """Class decorator: register a ``Method`` subclass under ``name``."""
    def decorator(cls: Type[Method]) -> Type[Method]:
        if name in METHODS:
            raise KeyError(f'method {name!r} is registered twice')
        cls.name = name
        METHODS[name] = cls
        return cls
    return decorator


def method_arguments(cls: Type[Method]) -> Dict[str, inspect.Parameter]:
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items() if name != 'self'}


def build_method(spec) -> Method:
    """``dict(type=name, **settings)`` (or a bare name) -> a ``Method``; unknown names and keys
    are one-line errors naming the closest valid one."""
    from ...config_check import check_arguments, closest
    spec = {'type': spec} if isinstance(spec, str) else dict(spec or {})
    name = spec.pop('type', 'attention')
    if name not in METHODS:
        raise SCLIPError(f'model.method.type={name!r} is unknown{closest(name, METHODS)}; '
                         f'registered: {", ".join(sorted(METHODS))}.')
    cls = METHODS[name]
    allowed = method_arguments(cls)
    for key in spec:
        if key not in allowed:
            raise SCLIPError(f'model.method.{key}: {name!r} has no setting {key!r}{closest(key, allowed)} '
                             f'(it takes: {", ".join(allowed) or "none"}).')
    check_arguments(cls.__init__, spec, prefix='model.method')  # 'Flase' is no boolean, 'abc' no number
    return cls(**spec)
