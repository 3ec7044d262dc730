"""Attention variants for the modified last block(s) of CLIP's vision transformer.

Each variant is one small function that returns the attention weights ``A`` (B, heads, N, N)
from an :class:`AttentionInputs`; the block output is ``A @ v``. A variant may also give a
fused implementation that returns ``A @ v`` directly through PyTorch's
scaled-dot-product attention; the explicit function stays the reference (tests compare
both), like timm's ``fused_attn`` switch.

Adding a variant is one function and one name::

    @register_attention('my_variant')
    def my_variant(t: AttentionInputs, alpha: float = 1.0) -> Tensor:
        return softmax(t.q @ t.k.transpose(-2, -1) * t.scale * alpha)

and then ``--cfg-options model.attention.type=my_variant model.attention.alpha=2``.
Token 0 is the CLS token; tokens 1..N-1 are patches in row-major order over ``t.grid``.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import SCLIPError


@dataclass
class AttentionInputs:
    """What a variant may use. q, k, v: (B, heads, N, d), input projections with biases."""
    x: Tensor          # the block's input after ln_1, (B, N, C)
    q: Tensor
    k: Tensor
    v: Tensor
    grid: Tuple[int, int]  # patch grid (rows, cols)
    recorded: Dict[int, Tensor] = field(default_factory=dict)  # attention maps by block (1-based)

    @property
    def num_heads(self) -> int:
        return self.q.shape[1]

    @property
    def scale(self) -> float:
        return self.q.shape[-1] ** -0.5

    def split_heads(self, tokens: Tensor) -> Tensor:
        """(B, N, C) -> (B, heads, N, C / heads), the same split as q, k and v."""
        batch, length, width = tokens.shape
        return tokens.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)


@dataclass(frozen=True)
class AttentionVariant:
    name: str
    weights: Callable[..., Tensor]                 # explicit: returns A (B, heads, N, N)
    fused: Optional[Callable[..., Tensor]] = None  # optional: returns A @ v directly
    records_layer: Optional[str] = None            # name of the argument holding a block to record

    def validate(self, kwargs: dict) -> None:
        allowed = set(inspect.signature(self.weights).parameters) - {'t'}
        unknown = set(kwargs) - allowed
        if unknown:
            raise SCLIPError(f'model.attention: {self.name!r} takes no argument '
                             f'{sorted(unknown)[0]!r} (it takes: {", ".join(sorted(allowed)) or "none"}).')


ATTENTIONS: Dict[str, AttentionVariant] = {}


def register_attention(name: str, fused: Optional[Callable[..., Tensor]] = None,
                       records_layer: Optional[str] = None):
    """Decorator: register ``fn(t, **kwargs) -> A`` under ``name``."""
    def decorator(fn):
        if name in ATTENTIONS:
            raise KeyError(f'attention variant {name!r} is registered twice')
        ATTENTIONS[name] = AttentionVariant(name, fn, fused, records_layer)
        return fn
    return decorator


def get_attention(spec) -> Tuple[AttentionVariant, dict]:
    """Resolve ``dict(type=name, **kwargs)`` (or a bare name) into a variant and its kwargs."""
    spec = {'type': spec} if isinstance(spec, str) else dict(spec or {})
    name = spec.pop('type', 'csa')
    if name not in ATTENTIONS:
        raise SCLIPError(f'model.attention.type={name!r} is unknown; registered: '
                         f'{", ".join(sorted(ATTENTIONS))}.')
    variant = ATTENTIONS[name]
    variant.validate(spec)
    return variant, spec


def attend(variant: AttentionVariant, kwargs: dict, t: AttentionInputs, fused: bool) -> Tensor:
    """Weighted values ``A @ v`` (B, heads, N, d), fused where the variant allows it."""
    if fused and variant.fused is not None:
        return variant.fused(t, **kwargs)
    return variant.weights(t, **kwargs) @ t.v


def softmax(logits: Tensor) -> Tensor:
    return logits.softmax(dim=-1)


def self_similarity(a: Tensor, b: Tensor, scale: float) -> Tensor:
    return a @ b.transpose(-2, -1) * scale


def sdpa(q: Tensor, k: Tensor, v: Tensor, scale: float, mask: Optional[Tensor] = None) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


# --- CLIP's own attention and SCLIP's correlative self-attention -------------------------

@register_attention('vanilla', fused=lambda t: sdpa(t.q, t.k, t.v, t.scale))
def vanilla(t: AttentionInputs) -> Tensor:
    """CLIP's attention softmax(q·kᵀ·s): the unmodified model (paper row "CLIP")."""
    return softmax(self_similarity(t.q, t.k, t.scale))


@register_attention('csa', fused=lambda t: sdpa(t.q, t.q, t.v, t.scale) + sdpa(t.k, t.k, t.v, t.scale))
def csa(t: AttentionInputs) -> Tensor:
    """SCLIP: softmax(q·qᵀ·s) + softmax(k·kᵀ·s); rows sum to 2, as in the official code."""
    return softmax(self_similarity(t.q, t.q, t.scale)) + softmax(self_similarity(t.k, t.k, t.scale))


@register_attention('csa_q', fused=lambda t: sdpa(t.q, t.q, t.v, t.scale))
def csa_q(t: AttentionInputs) -> Tensor:
    """CSA with the single projection W_q: softmax(q·qᵀ·s). Also ClearCLIP's attention."""
    return softmax(self_similarity(t.q, t.q, t.scale))


@register_attention('csa_k', fused=lambda t: sdpa(t.k, t.k, t.v, t.scale))
def csa_k(t: AttentionInputs) -> Tensor:
    """CSA with the single projection W_k: softmax(k·kᵀ·s)."""
    return softmax(self_similarity(t.k, t.k, t.scale))


@register_attention('csa_qkv', fused=lambda t: sdpa(t.q, t.q, t.v, t.scale) + sdpa(t.k, t.k, t.v, t.scale)
                    + sdpa(t.v, t.v, t.v, t.scale))
def csa_qkv(t: AttentionInputs) -> Tensor:
    """SegEarth-OV: softmax(q·qᵀ·s) + softmax(k·kᵀ·s) + softmax(v·vᵀ·s); rows sum to 3, as in its code."""
    return (softmax(self_similarity(t.q, t.q, t.scale)) + softmax(self_similarity(t.k, t.k, t.scale))
            + softmax(self_similarity(t.v, t.v, t.scale)))


def _identity_heads(t: AttentionInputs) -> Tensor:
    return t.split_heads(t.x)


def _self_sdpa(r: Tensor, t: AttentionInputs) -> Tensor:
    """Fused softmax(r·rᵀ·s)·v for a projection ``r`` computed once."""
    return sdpa(r, r, t.v, t.scale)


@register_attention('csa_identity', fused=lambda t: _self_sdpa(_identity_heads(t), t))
def csa_identity(t: AttentionInputs) -> Tensor:
    """CSA on the block's input itself (W_r = I): softmax(x·xᵀ·s), x split per head."""
    x = _identity_heads(t)
    return softmax(self_similarity(x, x, t.scale))


def random_projection(width: int, seed: int, dtype: torch.dtype, device) -> Tensor:
    """A reproducible Gaussian (C, C) matrix scaled by C^-½, so x·W has x's magnitude."""
    generator = torch.Generator().manual_seed(int(seed))
    weight = torch.randn(width, width, generator=generator) * width ** -0.5
    return weight.to(device=device, dtype=dtype)


def _random_heads(t: AttentionInputs, seed: int) -> Tensor:
    weight = random_projection(t.x.shape[-1], seed, t.x.dtype, t.x.device)
    return t.split_heads(t.x @ weight)


@register_attention('csa_random',
                    fused=lambda t, seed=0: _self_sdpa(_random_heads(t, seed), t))
def csa_random(t: AttentionInputs, seed: int = 0) -> Tensor:
    """CSA with one random projection W_r (seeded): softmax(r·rᵀ·s), r = x·W_r split per head."""
    r = _random_heads(t, seed)
    return softmax(self_similarity(r, r, t.scale))


# --- the paper's alternatives (Table "comparison of alternatives") ------------------------

def _identity_weights(t: AttentionInputs) -> Tensor:
    n = t.q.shape[-2]
    return torch.eye(n, dtype=t.q.dtype, device=t.q.device).expand(t.q.shape[0], t.num_heads, n, n)


@register_attention('maskclip', fused=lambda t: t.v)
def maskclip(t: AttentionInputs) -> Tensor:
    """MaskCLIP: identity attention, each token attends only to itself (output = v)."""
    return _identity_weights(t)


@register_attention('sharpen', fused=lambda t, tau=2.0: sdpa(t.q, t.k, t.v, t.scale * tau))
def sharpen(t: AttentionInputs, tau: float = 2.0) -> Tensor:
    """CLIP's attention at temperature 1/τ: softmax(q·kᵀ·s·τ); τ > 1 sharpens (paper: τ = 2)."""
    return softmax(self_similarity(t.q, t.k, t.scale * tau))


def local_mask(grid: Tuple[int, int], window: int, device) -> Tensor:
    """Boolean (N, N) mask of allowed pairs for ``local`` attention.

    Patches see the patches of their ``window``×``window`` neighbourhood only (not the CLS
    token); the CLS row stays global (its output is not used for segmentation).
    """
    rows, cols = grid
    ys, xs = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    radius = window // 2
    near = ((ys[:, None] - ys[None, :]).abs() <= radius) & ((xs[:, None] - xs[None, :]).abs() <= radius)
    n = rows * cols + 1
    mask = torch.zeros(n, n, dtype=torch.bool, device=device)
    mask[0, :] = True
    mask[1:, 1:] = near
    return mask


@register_attention('local', fused=lambda t, window=3: sdpa(t.q, t.k, t.v, t.scale, local_mask(t.grid, window, t.q.device)))
def local(t: AttentionInputs, window: int = 3) -> Tensor:
    """CLIP's q·kᵀ attention restricted to a window×window patch neighbourhood (paper: 3)."""
    logits = self_similarity(t.q, t.k, t.scale)
    logits = logits.masked_fill(~local_mask(t.grid, window, t.q.device), float('-inf'))
    return softmax(logits)


@register_attention('early_layer', records_layer='layer')
def early_layer(t: AttentionInputs, layer: int = 3) -> Tensor:
    """Reuse CLIP's own attention map of block ``layer`` (1-based; paper: #3) in this block."""
    return t.recorded[int(layer)]


# --- successors of SCLIP ------------------------------------------------------------------

def gaussian_window(grid: Tuple[int, int], sigma: float, dtype, device) -> Tensor:
    """NACLIP's additive term G (N, N): G_pq = exp(-‖p - q‖² / 2σ²) over patch positions; the CLS
    row and column get 0.

    Computed with NACLIP's own arithmetic (a (2r-1)×(2c-1) window whose axes come from
    ``torch.linspace`` in units of 1/(σ√2), squared and summed), so the values are bit-identical
    to the official ``get_attention_addition``; ResCLIP uses the same term.
    """
    return _gaussian_window(tuple(int(n) for n in grid), float(sigma)).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _gaussian_window(grid: Tuple[int, int], sigma: float) -> Tensor:
    rows, cols = grid
    constant = 1 / (sigma * math.sqrt(2))
    axes = []
    for size in (2 * rows - 1, 2 * cols - 1):
        start = -(size - 1) / 2.0
        axes.append(torch.linspace(start * constant, (start + (size - 1)) * constant, steps=size,
                                   dtype=torch.float))
    window = torch.exp(-(torch.stack(torch.meshgrid(*axes, indexing='ij')) ** 2).sum(0))
    ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    # row p = (a, b), column q = (k, l): the window centred on p read at q
    prior = window[(rows - 1) + ys[:, None] - ys[None, :], (cols - 1) + xs[:, None] - xs[None, :]]
    out = torch.zeros(rows * cols + 1, rows * cols + 1)
    out[1:, 1:] = prior
    return out


@register_attention('naclip', fused=lambda t, sigma=5.0: sdpa(
    t.k, t.k, t.v, t.scale, gaussian_window(t.grid, sigma, t.k.dtype, t.k.device)))
def naclip(t: AttentionInputs, sigma: float = 5.0) -> Tensor:
    """NACLIP: softmax(k·kᵀ·s + G), G a Gaussian neighbourhood of σ patches."""
    return softmax(self_similarity(t.k, t.k, t.scale) + gaussian_window(t.grid, sigma, t.k.dtype, t.k.device))
