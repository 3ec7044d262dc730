"""Read the released TCL checkpoint (``tcl.pth``) into ``TCLModel``, the architecture inferred
from its tensors.

Why: the official loader (utils/checkpoint.py) calls ``load_state_dict(strict=False)`` and
whitelists missing ``clip_*_encoder`` tensors, which the official model then holds from
``sclip.load('ViT-B/16')`` (OpenAI's CLIP). So a file without them is completed from the CLIP
file given as ``model.clip_path``; anything else missing, unexpected or mis-shaped, or a file
that is not a TCL checkpoint, is one line naming it.
"""
from __future__ import annotations

import re
from typing import Dict, Optional

import torch
from torch import Tensor

from ...errors import SCLIPError
from ..trained_checkpoint import load_strict, read_model_state
from .model import TCLArch, TCLModel

WHAT = 'a TCL checkpoint (tcl.pth of github.com/kakaobrain/tcl/releases/tag/v1.0.0)'
OPTION = 'model.checkpoint'
MASKER = 'masker.image_encoder.'
MASKER_BLOCKS = MASKER + 'backbone.transformer.resblocks.'
REQUIRED = (MASKER + 'decoder.image_proj.proj', MASKER + 'decoder.decoder.net.0.conv.conv.weight',
            'masker.sim2mask.w', MASKER_BLOCKS + '0.attn.in_proj_weight')
IGNORED_PREFIXES = ('tcli_loss.', 'tclf_loss.', 'area_loss.', 'neg_area_loss.')  # training-only
OPENAI_HEADER = ('input_resolution', 'context_length', 'vocab_size', 'logit_scale')


def _count(state: Dict[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for m in (re.match(pattern, k) for k in state) if m})


def masker_blocks_from_zero(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The masker's blocks numbered from 0. The official ``MaskerBackbone`` holds CLIP's
    ``resblocks[ie_freeze:]``, an ``nn.Sequential`` slice that keeps its keys: tcl.pth names them
    ``resblocks.11.`` (ViT-B/16, ie_freeze 11) where ``TCLModel`` counts from 0."""
    pattern = re.compile(re.escape(MASKER_BLOCKS) + r'(\d+)\.')
    indices = {int(m.group(1)) for m in map(pattern.match, state) if m}
    first = min(indices, default=0)

    def renamed(key):
        m = pattern.match(key)
        return key if not m else f'{MASKER_BLOCKS}{int(m.group(1)) - first}.{key[m.end():]}'
    return {renamed(k): v for k, v in state.items()}


def clip_tensors(path: str) -> Dict[str, Tensor]:
    """An OpenAI CLIP ViT file's tensors under the names of TCL's CLIP encoders."""
    from ..clip_loader import check_is_clip_vit, read_state_dict
    state = read_state_dict(path)
    check_is_clip_vit(state, path)
    out = {}
    for key, value in state.items():
        if key in OPENAI_HEADER:
            continue
        if key.startswith('visual.ln_post.'):
            out['clip_image_encoder.clip_proj.ln.' + key[len('visual.ln_post.'):]] = value
        elif key == 'visual.proj':
            out['clip_image_encoder.clip_proj.proj'] = value
        elif key.startswith('visual.'):
            out['clip_image_encoder.clip_visual.' + key[len('visual.'):]] = value
        else:
            out['clip_text_encoder.' + key] = value
    return {k: v.float() for k, v in out.items()}


def infer_arch(state: Dict[str, Tensor]) -> TCLArch:
    visual = 'clip_image_encoder.clip_visual.'
    layers = _count(state, re.escape(visual) + r'transformer\.resblocks\.(\d+)\.')
    masker_layers = _count(state, re.escape(MASKER) + r'backbone\.transformer\.resblocks\.(\d+)\.')
    position = state[visual + 'positional_embedding']
    text_position = state['clip_text_encoder.positional_embedding']
    return TCLArch(width=position.shape[1], layers=layers, patch_size=state[visual + 'conv1.weight'].shape[-1],
                   grid=int(round((position.shape[0] - 1) ** 0.5)), ie_freeze=layers - masker_layers,
                   embed_dim=state['clip_image_encoder.clip_proj.proj'].shape[1],
                   text_width=text_position.shape[1],
                   text_layers=_count(state, r'clip_text_encoder\.transformer\.resblocks\.(\d+)\.'),
                   context_length=text_position.shape[0],
                   vocab_size=state['clip_text_encoder.token_embedding.weight'].shape[0],
                   decoder_layers=_count(state, re.escape(MASKER) + r'decoder\.decoder\.net\.(\d+)\.'),
                   kernel_size=state[MASKER + 'decoder.decoder.net.0.conv.conv.weight'].shape[-1])


def load_tcl(path: str, clip_path: Optional[str] = None) -> TCLModel:
    """The TCL model of the checkpoint at ``path`` (CLIP tensors it lacks from ``clip_path``), in eval mode."""
    from ...progress import status
    status(f'loading TCL weights ({path})')
    state = masker_blocks_from_zero(read_model_state(path, 'model', WHAT, OPTION))
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise SCLIPError(f'{OPTION}={path!r} has no {missing[0]}; it is not {WHAT}.')
    state = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    if not any(k.startswith('clip_image_encoder.') for k in state):
        if not clip_path:
            raise SCLIPError(f'{OPTION}={path!r} holds no CLIP encoder tensors (the official code takes them '
                             "from OpenAI's ViT-B/16); set model.clip_path=/path/to/ViT-B-16.pt.")
        state = {**clip_tensors(str(clip_path)), **state}
    try:
        arch = infer_arch(state)
    except (KeyError, IndexError) as error:
        raise SCLIPError(f'{OPTION}={path!r} has no {error}; it is not {WHAT}.') from None
    if arch.ie_freeze <= 0 or arch.decoder_layers <= 0:
        raise SCLIPError(f'{OPTION}={path!r} has {arch.layers} CLIP blocks and {arch.layers - arch.ie_freeze} '
                         f'masker blocks; it is not {WHAT}.')
    model = TCLModel(arch)
    load_strict(model, {k: v.float() for k, v in state.items()}, path, WHAT, OPTION)
    return model.eval()
