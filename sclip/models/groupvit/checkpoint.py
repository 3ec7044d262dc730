"""Read a released GroupViT checkpoint (``group_vit_gcc_yfcc_30e-879422e0.pth``, ...) into
``GroupViTModel``, inferring the architecture from its tensors (the heads from the config).

Why: the official loader (utils/checkpoint.py) calls ``load_state_dict(strict=False)``, which
would silently leave a wrong file's missing tensors random; here a file that is not a
GroupViT checkpoint, or does not fit the inferred model, is one line naming it.
"""
from __future__ import annotations

import re
from typing import Dict, Sequence

from torch import Tensor

from ...errors import SCLIPError
from ..trained_checkpoint import load_strict, read_model_state
from .model import GroupViTArch, GroupViTModel

WHAT = 'a GroupViT checkpoint (group_vit_gcc_yfcc_30e-879422e0.pth or group_vit_gcc_redcap_30e-3dd09a76.pth)'
OPTION = 'model.checkpoint'
# training-only tensors the official strict=False load skips at test time
IGNORED = ('multi_label_logit_scale',)
REQUIRED = ('img_encoder.pos_embed', 'img_encoder.patch_embed.proj.weight', 'text_encoder.positional_embedding',
            'text_encoder.token_embedding.weight', 'img_projector.linear_out.weight', 'logit_scale')


def _count(state: Dict[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for m in (re.match(pattern, k) for k in state) if m})


def infer_arch(state: Dict[str, Tensor], num_heads: Sequence[int], path: str) -> GroupViTArch:
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise SCLIPError(f'{OPTION}={path!r} has no {missing[0]}; it is not {WHAT}.')
    stages = _count(state, r'img_encoder\.layers\.(\d+)\.')
    depths = tuple(_count(state, rf'img_encoder\.layers\.{i}\.blocks\.(\d+)\.') for i in range(stages))
    groups = tuple(state[f'img_encoder.layers.{i}.group_token'].shape[1]
                   if f'img_encoder.layers.{i}.group_token' in state else 0 for i in range(stages))
    outputs = tuple(state[f'img_encoder.layers.{i}.downsample.mlp_inter.fc2.weight'].shape[0]
                    for i in range(stages - 1) if f'img_encoder.layers.{i}.downsample.mlp_inter.fc2.weight' in state)
    heads = tuple(int(h) for h in num_heads)
    embed_dim = state['img_encoder.pos_embed'].shape[-1]
    if len(heads) != stages or any(h <= 0 or embed_dim % h for h in heads):
        raise SCLIPError(f'model.num_heads={list(num_heads)} does not fit {path!r}: it has {stages} stages of '
                         f'width {embed_dim}; give one head count per stage that divides the width.')
    patch = state['img_encoder.patch_embed.proj.weight'].shape[-1]
    grid = int(round(state['img_encoder.pos_embed'].shape[1] ** 0.5))
    position = state['text_encoder.positional_embedding']
    hidden = state.get('img_projector.linear_hidden.0.weight')
    return GroupViTArch(embed_dim=embed_dim, depths=depths, num_heads=heads, num_group_tokens=groups,
                        num_output_groups=outputs, patch_size=patch, image_size=grid * patch,
                        text_width=position.shape[1], text_layers=_count(state, r'text_encoder\.transformer\.resblocks\.(\d+)\.'),
                        context_length=position.shape[0], vocab_size=state['text_encoder.token_embedding.weight'].shape[0],
                        output_dim=state['img_projector.linear_out.weight'].shape[0],
                        proj_num_layers=1 if hidden is None else 2,
                        proj_inner_dim=4096 if hidden is None else hidden.shape[0])


def load_groupvit(path: str, num_heads: Sequence[int] = (6, 6, 6)) -> GroupViTModel:
    """The GroupViT model of the checkpoint at ``path``, in eval mode."""
    from ...progress import status
    status(f'loading GroupViT weights ({path})')
    state = read_model_state(path, 'model', WHAT, OPTION)
    model = GroupViTModel(infer_arch(state, num_heads, path))
    load_strict(model, state, path, WHAT, OPTION, IGNORED)
    return model.eval()
