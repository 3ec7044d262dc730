"""Random VFM checkpoints in each family's official file layout, for tests.

Why: no real VFM weights can be downloaded in tests, but the loading code must see what
the official files hold. The state dicts are made from the spec's shapes directly (not
from our model), with random values large enough that attention is far from uniform,
and saved the way each project ships them (see checkpoint.py for the layouts).
"""
from __future__ import annotations

import argparse
from typing import Dict, Optional

import torch
from torch import Tensor

from .specs import VFMSpec, get_spec


def vit_state_dict(spec: VFMSpec, generator: torch.Generator) -> Dict[str, Tensor]:
    """A DINO / DINOv2 / MAE backbone state dict with the official names and shapes."""
    width, patch, hidden = spec.width, spec.patch_size, 4 * spec.width

    def rand(*shape: int, std: float = 0.02, mean: float = 0.0) -> Tensor:
        return torch.randn(*shape, generator=generator) * std + mean

    state = {
        'cls_token': rand(1, 1, width, std=0.5),
        'pos_embed': rand(1, 1 + spec.grid ** 2, width, std=0.5),
        'patch_embed.proj.weight': rand(width, 3, patch, patch, std=0.05),
        'patch_embed.proj.bias': rand(width, std=0.1),
    }
    if spec.registers:
        state['register_tokens'] = rand(1, spec.registers, width, std=0.5)
    if spec.family == 'dinov2':
        state['mask_token'] = rand(1, width)
    for index in range(spec.depth):
        block = f'blocks.{index}.'
        state.update({
            block + 'norm1.weight': rand(width, std=0.1, mean=1.0), block + 'norm1.bias': rand(width, std=0.1),
            block + 'attn.qkv.weight': rand(3 * width, width, std=0.25),
            block + 'attn.qkv.bias': rand(3 * width, std=0.1),
            block + 'attn.proj.weight': rand(width, width, std=0.1), block + 'attn.proj.bias': rand(width, std=0.1),
            block + 'norm2.weight': rand(width, std=0.1, mean=1.0), block + 'norm2.bias': rand(width, std=0.1),
            block + 'mlp.fc1.weight': rand(hidden, width, std=0.1), block + 'mlp.fc1.bias': rand(hidden, std=0.1),
            block + 'mlp.fc2.weight': rand(width, hidden, std=0.1), block + 'mlp.fc2.bias': rand(width, std=0.1),
        })
        if spec.layer_scale:
            state[block + 'ls1.gamma'] = rand(width, std=0.1, mean=0.5)
            state[block + 'ls2.gamma'] = rand(width, std=0.1, mean=0.5)
    state['norm.weight'] = rand(width, std=0.1, mean=1.0)
    state['norm.bias'] = rand(width, std=0.1)
    return state


def sam_state_dict(spec: VFMSpec, generator: torch.Generator) -> Dict[str, Tensor]:
    """A full SAM state dict (image encoder, prompt encoder, mask decoder), random values."""
    from segment_anything.modeling import Sam
    from .sam import build_sam_encoder
    from .sam_decoder import build_mask_decoder, build_prompt_encoder
    sam = Sam(image_encoder=build_sam_encoder(spec), prompt_encoder=build_prompt_encoder(spec),
              mask_decoder=build_mask_decoder(spec),
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    state = {}
    for key, value in sam.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith('weight') and value.ndim == 1:  # LayerNorm / LayerNorm2d scales
            state[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=generator)
        elif key.endswith('weight'):  # linear and conv weights
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (1.5 / fan_in ** 0.5)
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.3
    return state


def official_checkpoint(vfm_type: str, tiny: bool = True, config_overrides: Optional[dict] = None,
                        seed: int = 0, training_checkpoint: bool = False):
    """What the official file of ``vfm_type`` holds (as ``torch.save`` would write it).

    ``training_checkpoint``: DINO's ``*_full_checkpoint.pth`` layout (``teacher`` and
    ``student`` with ``backbone.``/``module.`` prefixes and a projection head, ``args``).
    """
    spec = get_spec(vfm_type, tiny=tiny, config_overrides=config_overrides)
    generator = torch.Generator().manual_seed(seed)
    if spec.family == 'sam':
        return sam_state_dict(spec, generator)
    state = vit_state_dict(spec, generator)
    if spec.family == 'mae':
        state['mask_token'] = torch.zeros(1, 1, spec.width)
        state['decoder_embed.weight'] = torch.randn(16, spec.width, generator=generator)
        return {'model': state}
    if training_checkpoint:
        head = {'head.mlp.0.weight': torch.randn(32, spec.width, generator=generator),
                'head.last_layer.weight_g': torch.ones(16, 1)}
        teacher = {f'backbone.{key}': value for key, value in state.items()}
        teacher.update(head)
        student = {f'module.{key}': value + 1 for key, value in teacher.items()}
        return {'teacher': teacher, 'student': student, 'epoch': 100, 'optimizer': {'state': {}},
                'args': argparse.Namespace(arch='vit_base', patch_size=spec.patch_size)}
    return state


def write_official_checkpoint(path: str, vfm_type: str, tiny: bool = True, **kwargs) -> str:
    """Save ``official_checkpoint(vfm_type, ...)`` at ``path``; returns ``path``."""
    torch.save(official_checkpoint(vfm_type, tiny=tiny, **kwargs), path)
    return path
