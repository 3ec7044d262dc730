"""Random TCL checkpoints in the released file layout, for tests.

Why: the real weights cannot be downloaded in tests, but loading must see what ``tcl.pth``
holds: ``{'model': TCL.state_dict(), 'optimizer': ..., 'config': ..., 'step': ...}``, the
losses' learnt temperatures included. Values are random and large enough (gates open,
``sim2mask.b`` 0 so masks straddle the 0.4 background) that the maps have several labels.
"""
from __future__ import annotations

import argparse
import math

import torch

from .model import TCLArch, TCLModel

TINY = dict(width=128, layers=3, patch_size=16, grid=4, ie_freeze=2, embed_dim=32, text_width=64,
            text_layers=2, context_length=77, vocab_size=49408, decoder_layers=2, kernel_size=3)


def random_state_dict(arch: TCLArch, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in TCLModel(arch).state_dict().items():
        if name.endswith('gate.gate'):
            state[name] = torch.tensor(0.5 + torch.rand((), generator=generator).item())
        elif name == 'masker.sim2mask.w':
            state[name] = torch.tensor(10.0)
        elif name == 'masker.sim2mask.b':
            state[name] = torch.tensor(0.0)  # masks around 0.5: background (0.4) and classes both win
        elif value.ndim == 1 and name.endswith('weight'):
            state[name] = torch.randn(value.shape, generator=generator)
        elif value.ndim == 1:
            state[name] = 0.1 * torch.randn(value.shape, generator=generator)
        elif name.endswith('token_embedding.weight'):
            state[name] = 3 * torch.randn(value.shape, generator=generator)
        elif name.endswith(('positional_embedding', 'class_embedding')):
            state[name] = 0.5 * torch.randn(value.shape, generator=generator)
        else:
            fan_in = value[0].numel()
            state[name] = 1.5 * torch.randn(value.shape, generator=generator) / math.sqrt(fan_in)
    return state


def write_tcl_checkpoint(path: str, seed: int = 0, **arch) -> str:
    """A random TCL (``TINY`` sizes unless given) saved as the released ``tcl.pth`` is."""
    arch = TCLArch(**{**TINY, **arch})
    state = random_state_dict(arch, seed)
    blocks = 'masker.image_encoder.backbone.transformer.resblocks.'  # numbered as CLIP's: resblocks[ie_freeze:]
    state = {(f'{blocks}{int(k[len(blocks):].split(".")[0]) + arch.ie_freeze}.{k[len(blocks):].split(".", 1)[1]}'
              if k.startswith(blocks) else k): v for k, v in state.items()}
    for loss in ('tcli_loss', 'tclf_loss'):  # InfoNCE / ExtendedInfoNCE temperatures, training-only
        state[f'{loss}.logit_scale'] = torch.tensor(math.log(1 / 0.07))
    torch.save({'model': state, 'optimizer': {}, 'config': argparse.Namespace(model_name='tiny random TCL'),
                'step': 50000}, path)
    return path
