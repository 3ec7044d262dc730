"""Read the weights of a training checkpoint without running its pickled objects.

Why: trained segmenters (GroupViT, TCL) release their training checkpoints, ``{'model':
state_dict, 'config': <OmegaConf>, 'optimizer': ..., ...}``; ``torch.load(weights_only=True)``
refuses them for the config object. Here every global other than torch's tensor and storage
rebuilders (and ``OrderedDict``) is unpickled as an inert placeholder that runs nothing, so
the state dict comes out and no code of the file is executed.
"""
from __future__ import annotations

import collections
import pickle
import types
from typing import Dict

import torch

from ..errors import SCLIPError, load_failure_reason

TENSOR_REBUILDERS = ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_parameter',
                     '_rebuild_parameter_with_state')


class Inert:
    """Stands for any pickled object that is not a tensor: accepts its arguments and state, keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return Inert()


class TensorsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == 'collections' and name == 'OrderedDict':
            return collections.OrderedDict
        if module == 'torch._utils' and name in TENSOR_REBUILDERS:
            return getattr(torch._utils, name)
        if module == 'torch' and (name.endswith('Storage') or name == 'Size'):
            return getattr(torch, name)
        if module == 'torch.storage' and name == 'UntypedStorage':
            return torch.storage.UntypedStorage
        return Inert


TENSORS_ONLY = types.SimpleNamespace(Unpickler=TensorsOnlyUnpickler, load=pickle.load,
                                     __name__='tensors_only_pickle')


def read_model_state(path: str, key: str, what: str, option: str) -> Dict[str, torch.Tensor]:
    """The state dict under ``checkpoint[key]`` (or the file itself when it is one) of ``path``;
    ``what``/``option`` name the expected file and the config key in the one-line errors."""
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise SCLIPError(f'{option}={path!r} does not exist; pass {what}.') from None
    except Exception:  # a training checkpoint holding a config object: tensors only
        try:
            checkpoint = torch.load(path, map_location='cpu', weights_only=False, pickle_module=TENSORS_ONLY)
        except Exception as error:  # corrupt, truncated, not a checkpoint at all
            raise SCLIPError(f'{option}={path!r} could not be read as a PyTorch checkpoint '
                             f'({load_failure_reason(error)[:150]}); pass {what}.') from None
    state = checkpoint.get(key) if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict) \
        else checkpoint
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SCLIPError(f'{option}={path!r} holds no state dict of tensors (under {key!r}); pass {what}.')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def load_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: str, what: str, option: str,
                ignored=()) -> None:
    """Copy ``state`` into ``model`` key for key; a missing, unexpected or mis-shaped tensor is
    one line naming up to three of them (``ignored``: keys the official loader also skips)."""
    target = model.state_dict()
    state = {k: v for k, v in state.items() if k not in ignored}
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    wrong = [f'{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}' for k in state
             if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (('missing', missing), ('unexpected', unexpected), ('shape of', wrong)):
            if items:
                parts.append(f'{label} {", ".join(items[:3])}' + (' ...' if len(items) > 3 else ''))
        raise SCLIPError(f'{option}={path!r} does not fit {what.split(" (")[0]} ({"; ".join(parts)}); pass {what}.')
    model.load_state_dict(state, strict=True)
