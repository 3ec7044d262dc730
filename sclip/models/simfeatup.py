"""SimFeatUp: SegEarth-OV's learned feature upsampler (a joint bilateral upsampler, JBU), in PyTorch.

Why: SegEarth-OV (likyoo/SegEarth-OV @ 3e22a96, ``simfeatup_dev/upsamplers.py``) upsamples
CLIP's patch features 16x, guided by the window's image, before comparing them with the class
names. Its JBU weights the neighbours of every high-resolution pixel by a spatial Gaussian times
a learned range kernel (a softmax over a 1x1-conv embedding of the guidance image), and applies
the weights with FeatUp's compiled ``AdaptiveConv`` CUDA extension. Here that adaptive
convolution is plain PyTorch (``adaptive_conv``: a sum over the kernel's offsets of shifted
inputs times per-pixel weights, what the extension computes), so no compiled code is needed and
it runs on any device.

The modules keep the official parameter names, so a checkpoint in its official layout (a
PyTorch-Lightning file whose ``state_dict`` holds ``upsampler.<name>``) loads with
``strict=True``: ``load_upsampler``.

``jbu_one`` (SegEarth-OV's default, ``xclip_jbu_one_million_aid.ckpt``) applies ONE
``JBULearnedRange`` (radius 5) four times, each doubling the resolution; ``jbu_stack`` (FeatUp's,
``clip_jbu_stack_cocostuff.ckpt``) four different ones of radius 3. Both end with a 1x1-conv
residual ``fixup_proj(x) * 0.1 + x``. ``bilinear`` is the plain resize (the ablation).
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import SCLIPError, load_failure_reason

CHECKPOINT_PREFIX = 'upsampler.'  # official: ``{k[10:]: v for k, v in ckpt['state_dict'].items()}``


def adaptive_conv(padded: Tensor, filters: Tensor) -> Tensor:
    """FeatUp's ``AdaptiveConv``: ``out[b,c,h,w] = Σ_ij padded[b,c,h+i,w+j] · filters[b,h,w,i,j]``.

    ``padded`` (B, C, H + k - 1, W + k - 1), ``filters`` (B, H, W, k, k) -> (B, C, H, W), summed
    offset by offset (i, then j) so that memory stays at a few copies of the output (the
    official Python fallback unfolds all k² shifted copies at once: 12 GB for one 224 window)."""
    batch, height, width, size, size_j = filters.shape
    if size != size_j or padded.shape[-2] != height + size - 1 or padded.shape[-1] != width + size - 1:
        raise ValueError(f'adaptive_conv: input {tuple(padded.shape)} does not fit filters {tuple(filters.shape)}')
    out = padded.new_zeros(padded.shape[0], padded.shape[1], height, width)
    weights = filters.permute(0, 3, 4, 1, 2).unsqueeze(3)  # (B, k, k, 1, H, W)
    for i in range(size):
        for j in range(size):
            out += padded[:, :, i:i + height, j:j + width] * weights[:, i, j]
    return out


class JBULearnedRange(nn.Module):
    """One 2x joint bilateral upsampling step (FeatUp's ``JBULearnedRange``)."""

    def __init__(self, guidance_dim: int, feat_dim: int, key_dim: int, scale: int = 2, radius: int = 3):
        super().__init__()
        self.scale = scale
        self.radius = radius
        self.diameter = radius * 2 + 1
        self.guidance_dim = guidance_dim
        self.key_dim = key_dim
        self.feat_dim = feat_dim
        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.range_proj = nn.Sequential(nn.Conv2d(guidance_dim, key_dim, 1, 1), nn.GELU(), nn.Dropout2d(.1),
                                        nn.Conv2d(key_dim, key_dim, 1, 1))
        self.fixup_proj = nn.Sequential(nn.Conv2d(guidance_dim + self.diameter ** 2, self.diameter ** 2, 1, 1),
                                        nn.GELU(), nn.Dropout2d(.1),
                                        nn.Conv2d(self.diameter ** 2, self.diameter ** 2, 1, 1))
        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))

    def range_kernel(self, guidance: Tensor) -> Tensor:
        """softmax over the (2r+1)² neighbours of ``temp · <embed(g_neighbour), embed(g_centre)>``,
        (B, (2r+1)², H, W); the embedding is reflect-padded at the borders."""
        height, width = guidance.shape[-2:]
        embedded = self.range_proj(guidance)
        padded = F.pad(embedded, pad=[self.radius] * 4, mode='reflect')
        # neighbour (i, j) in row-major order, as the official unfold orders them; one offset at a
        # time (the official unfold + einsum holds (B, key_dim, (2r+1)², H, W): 0.8 GB at 224)
        similarity = torch.stack([(padded[:, :, i:i + height, j:j + width] * embedded).sum(1)
                                  for i in range(self.diameter) for j in range(self.diameter)], dim=1)
        temperature = self.range_temp.exp().clamp_min(1e-4).clamp_max(1e4)
        return F.softmax(temperature * similarity, dim=1)

    def spatial_kernel(self, device) -> Tensor:
        """exp(-‖offset‖² / 2σ²) over offsets in [-1, 1]², (1, (2r+1)², 1, 1)."""
        offsets = torch.linspace(-1, 1, self.diameter, device=device)
        x, y = torch.meshgrid(offsets, offsets, indexing='ij')
        patch = torch.cat([x.unsqueeze(0), y.unsqueeze(0)], dim=0)
        return torch.exp(-patch.square().sum(0) / (2 * self.sigma_spatial ** 2)).reshape(1, self.diameter ** 2, 1, 1)

    def forward(self, source: Tensor, guidance: Tensor) -> Tensor:
        """``source`` (B, C, h, w) -> (B, C, H, W) at ``guidance``'s (B, 3, H, W) size."""
        batch, _, height, width = guidance.shape
        kernel = self.range_kernel(guidance) * self.spatial_kernel(source.device)
        kernel /= kernel.sum(1, keepdim=True).clamp(1e-7)
        kernel += .1 * self.fixup_proj(torch.cat([kernel, guidance], dim=1))
        kernel = kernel.permute(0, 2, 3, 1).reshape(batch, height, width, self.diameter, self.diameter)
        upsampled = F.interpolate(source, (height, width), mode='bicubic', align_corners=False)
        padded = F.pad(upsampled, pad=[self.radius] * 4, mode='reflect')
        return adaptive_conv(padded, kernel.to(padded.dtype))


class JBUUpsampler(nn.Module):
    """Four 2x JBU steps (16x), each guided by the image average-pooled to its output size, then
    ``fixup_proj(x) * 0.1 + x``. ``shared=True``: one step module applied four times (``jbu_one``)."""

    def __init__(self, feat_dim: int, shared: bool, radius: int):
        super().__init__()
        self.shared = shared
        if shared:
            self.up = JBULearnedRange(3, feat_dim, 32, radius=radius)
        else:
            self.up1, self.up2, self.up3, self.up4 = (JBULearnedRange(3, feat_dim, 32, radius=radius)
                                                      for _ in range(4))
        self.fixup_proj = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(feat_dim, feat_dim, kernel_size=1))

    factor = 16

    def steps(self):
        return [self.up] * 4 if self.shared else [self.up1, self.up2, self.up3, self.up4]

    def forward(self, source: Tensor, guidance: Tensor) -> Tensor:
        for step in self.steps():
            height, width = source.shape[-2:]
            source = step(source, F.adaptive_avg_pool2d(guidance, (height * 2, width * 2)))
        return self.fixup_proj(source) * 0.1 + source


class BilinearUpsampler(nn.Module):
    """The ablation: features bilinearly resized to the image (official ``Bilinear``)."""
    factor = None

    def forward(self, source: Tensor, guidance: Tensor) -> Tensor:
        return F.interpolate(source, guidance.shape[-2:], mode='bilinear')


UPSAMPLERS = {
    'jbu_one': lambda dim: JBUUpsampler(dim, shared=True, radius=5),
    'jbu_stack': lambda dim: JBUUpsampler(dim, shared=False, radius=3),
    'bilinear': lambda dim: BilinearUpsampler(),
}


def build_upsampler(name: str, feat_dim: int) -> nn.Module:
    if name not in UPSAMPLERS:
        raise SCLIPError(f'model.method.upsampler.type={name!r} is unknown; one of {", ".join(UPSAMPLERS)}.')
    return UPSAMPLERS[name](int(feat_dim))


def read_upsampler_state(path: str) -> Dict[str, Tensor]:
    """The upsampler's tensors from an official SimFeatUp checkpoint (Lightning: ``state_dict`` of
    ``upsampler.*`` keys) or from a bare state dict of the same names without the prefix."""
    if not os.path.isfile(path):
        raise SCLIPError(f'model.method.upsampler.checkpoint={path!r} does not exist; pass SegEarth-OV\'s '
                         'simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt (or null with type=bilinear).')
    try:
        contents = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # corrupt, truncated, not a checkpoint, unsafe pickle
        raise SCLIPError(f'model.method.upsampler.checkpoint={path!r} could not be read as a PyTorch checkpoint '
                         f'({load_failure_reason(error)[:150]}); pass a SimFeatUp .ckpt file.') from None
    state = contents.get('state_dict', contents) if isinstance(contents, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise SCLIPError(f'model.method.upsampler.checkpoint={path!r} is not a SimFeatUp checkpoint (no state dict '
                         'of tensors); pass a SimFeatUp .ckpt file.')
    if all(key.startswith(CHECKPOINT_PREFIX) for key in state):
        state = {key[len(CHECKPOINT_PREFIX):]: value for key, value in state.items()}
    return state


def load_upsampler(name: str, feat_dim: int, checkpoint: Optional[str]) -> nn.Module:
    """The upsampler ``name`` for ``feat_dim``-channel features with ``checkpoint``'s weights; a
    file of another upsampler or feature width is one line naming it."""
    module = build_upsampler(name, feat_dim)
    if name == 'bilinear':
        return module.eval()
    if not checkpoint:
        raise SCLIPError(f'model.method.upsampler.checkpoint is not set; {name} needs its SimFeatUp weights '
                         '(SegEarth-OV: simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt).')
    path = os.path.expanduser(str(checkpoint))
    state = read_upsampler_state(path)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f'missing {missing[0]}' if missing else f'unexpected {unexpected[0]}'
        raise SCLIPError(f'model.method.upsampler.checkpoint={path!r} is not a {name} upsampler ({what}); '
                         "jbu_one's file is xclip_jbu_one_million_aid.ckpt, jbu_stack's "
                         "clip_jbu_stack_cocostuff.ckpt: set model.method.upsampler.type to match.")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise SCLIPError(f'model.method.upsampler.checkpoint={path!r}: {key} is {tuple(state[key].shape)}, '
                             f'the model needs {tuple(value.shape)} (features of width {feat_dim}); the '
                             'upsampler was trained for another CLIP.')
    module.load_state_dict(state, strict=True)
    return module.eval()


def save_official_checkpoint(module: nn.Module, path: str) -> str:
    """Write ``module``'s weights in the official Lightning layout (for tests and tools)."""
    torch.save({'epoch': 0, 'state_dict': {CHECKPOINT_PREFIX + k: v for k, v in module.state_dict().items()}}, path)
    return path
