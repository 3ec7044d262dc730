"""The official codes' numerics: CLIP cast to float16 as OpenAI's ``clip.load`` does on CUDA.

Why: every official implementation runs CLIP in fp16 end to end (text tower included); to
reproduce their numbers to the last pixel, ``model.precision='official'`` performs the same
casts. OpenAI's ``convert_weights`` (and open_clip's ``precision='fp16'``) turn the weights of
convolutions, linear layers, attention in-projections and the two projection matrices into
fp16, and keep LayerNorms computing in fp32 (cast to fp32, normalise, cast back); the class
and positional embeddings stay fp32 and are cast to the activations' dtype where they are
added. A second backbone (ProxyCLIP's foundation model) is ``.half()``-ed whole, as its code does.

The default, ``'auto'``, is what the official codes compute on the machine at hand: these casts
where CUDA is available (every official number was measured so), float32 on a CPU-only machine
(OpenAI's ``clip.load`` calls ``model.float()`` on the CPU). Autocast (``'fp16'``, ``'bf16'``) is
faster on a GPU but rounds differently from the official fp16 weights: an opt-in.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
from open_clip.transformer import LayerNormFp32

HALF = torch.float16
PRECISIONS = ('auto', 'official', 'fp16', 'bf16', 'fp32')


def resolve_precision(precision: str, cuda: Optional[bool] = None) -> str:
    """``'auto'`` -> ``'official'`` where CUDA is available (``cuda``, default: detected), else
    ``'fp32'``; any other precision is returned as it is."""
    if precision != 'auto':
        return precision
    if cuda is None:
        cuda = torch.cuda.is_available()
    return 'official' if cuda else 'fp32'


def _convert(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        module.weight.data = module.weight.data.to(HALF)
        if module.bias is not None:
            module.bias.data = module.bias.data.to(HALF)
    if isinstance(module, nn.MultiheadAttention):
        for name in ('in_proj_weight', 'q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'in_proj_bias',
                     'bias_k', 'bias_v'):
            tensor = getattr(module, name, None)
            if tensor is not None:
                tensor.data = tensor.data.to(HALF)
    for name in ('proj', 'text_projection'):
        tensor = getattr(module, name, None)
        if isinstance(tensor, nn.Parameter):
            tensor.data = tensor.data.to(HALF)
    if isinstance(module, nn.LayerNorm):
        module.__class__ = LayerNormFp32  # same parameters, computes in fp32 and casts back


def to_official_fp16(clip_module: nn.Module) -> nn.Module:
    """Cast an open_clip CLIP (or one of its towers) in place as the official loaders do."""
    clip_module.apply(_convert)
    return clip_module


def splits_exactly(tensor: torch.Tensor) -> bool:
    """Whether attention computed one image's head at a time gives the batched form's bits:
    float32 on the CPU (measured; its fp16 and bf16 kernels, and CUDA's, may pick another
    blocking for the single product). There the split is what makes a large window fast: all
    heads' weights at once are fresh allocations far beyond the CPU's caches."""
    return tensor.device.type == 'cpu' and tensor.dtype == torch.float32


def each_head(out: torch.Tensor, compute: Callable[[Tuple[slice, slice]], torch.Tensor]) -> torch.Tensor:
    """Fill ``out`` (B, heads, ...) one image's head at a time: ``compute(one)`` gives
    ``out[one]`` for ``one = (image slice, head slice)`` (both dimensions kept, so ``compute``
    indexes every (B, heads, ...) operand with it). Only where ``splits_exactly`` holds do these
    pieces equal the batched form's bits; the callers check that first."""
    for image in range(out.shape[0]):
        for head in range(out.shape[1]):
            one = (slice(image, image + 1), slice(head, head + 1))
            out[one] = compute(one)
    return out
