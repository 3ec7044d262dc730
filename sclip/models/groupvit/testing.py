"""Random GroupViT checkpoints in the released file layout, for tests.

Why: the real weights cannot be downloaded in tests, but loading must see what the released
files hold: ``{'model': state_dict, 'config': ..., 'epoch': ...}`` with the training-only
``multi_label_logit_scale``. Values are random and large enough that the groupings and the
class scores are far from uniform.
"""
from __future__ import annotations

import argparse
import math

import torch

from .model import GroupViTArch, GroupViTModel

TINY = dict(embed_dim=32, depths=(2, 1, 1), num_heads=(2, 2, 2), num_group_tokens=(16, 8, 0),
            num_output_groups=(16, 8), text_width=64, text_layers=2, output_dim=32, proj_inner_dim=64)


def random_state_dict(arch: GroupViTArch, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in GroupViTModel(arch).state_dict().items():
        if name.endswith('num_batches_tracked'):
            state[name] = value
        elif name == 'logit_scale':
            state[name] = torch.tensor(math.log(1 / 0.07))
        elif name.endswith('running_var'):
            state[name] = torch.rand(value.shape, generator=generator) + 0.5
        elif value.ndim == 1 and name.endswith('weight'):  # layer and batch norm scales
            state[name] = torch.randn(value.shape, generator=generator)  # random signs: distinct tokens
        elif value.ndim == 1:
            state[name] = 0.1 * torch.randn(value.shape, generator=generator)
        elif name.endswith('token_embedding.weight'):  # words that outweigh the shared prompt
            state[name] = 3 * torch.randn(value.shape, generator=generator)
        elif name.endswith(('pos_embed', 'group_token', 'positional_embedding')):
            state[name] = 0.5 * torch.randn(value.shape, generator=generator)
        else:
            fan_in = value[0].numel()
            sharp = 4 if name.endswith('in_proj_weight') else 1  # peaked text attention: the class word counts
            state[name] = 1.5 * sharp * torch.randn(value.shape, generator=generator) / math.sqrt(fan_in)
    for side in ('img_projector', 'text_projector'):  # no direction shared by all tokens after the ReLU
        weight = state[f'{side}.linear_out.weight']
        state[f'{side}.linear_out.weight'] = weight - weight.mean(dim=1, keepdim=True)
        state[f'{side}.linear_out.bias'] = torch.zeros_like(state[f'{side}.linear_out.bias'])
    return state


def write_groupvit_checkpoint(path: str, seed: int = 0, **arch) -> str:
    """A random GroupViT (``TINY`` sizes unless given) saved as the released checkpoints are."""
    arch = GroupViTArch(**{**TINY, **arch})
    state = random_state_dict(arch, seed)
    state['multi_label_logit_scale'] = torch.tensor(math.log(1 / 0.07))
    torch.save({'model': state, 'config': argparse.Namespace(model_name='tiny random GroupViT'),
                'epoch': 29, 'metrics': {'acc1': 0.0}}, path)
    return path
