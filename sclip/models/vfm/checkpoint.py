"""Find, read and check a VFM checkpoint in its official layout.

Why: every family ships its weights differently, and a wrong file should stop the run
with one line that names it and says what it is, not with a page of missing keys.

Accepted layouts (what the official loaders read):

* DINO: the backbone state dict (``dino_vitbase8_pretrain.pth``), or a training checkpoint
  whose ``teacher`` (else ``student``/``model``/``state_dict``) entry holds it with
  ``module.``/``backbone.`` prefixes and a ``head.*`` projection head (dropped);
* DINOv2: the backbone state dict (``mask_token``, unused for features, is dropped);
* SAM: the full SAM state dict (``image_encoder.*`` is taken, for any type, so that a SAM
  file given for another type is named as SAM) or an encoder state dict;
* MAE: ``{'model': state_dict}`` (``mask_token``, ``decoder_*`` and ``head.*`` are dropped,
  as the official ``load_state_dict(strict=False)`` ignores them).

Files are read with ``torch.load(weights_only=True)`` (``argparse.Namespace``, which DINO and
MAE training checkpoints hold as ``args``, is allowed), so no pickled code runs.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor
from torch.hub import download_url_to_file

from ...errors import SCLIPError, load_failure_reason
from .specs import VFMSpec, guess_type

WRAPPER_KEYS = ('teacher', 'model', 'state_dict', 'student')
DROPPED_KEYS = {
    'dino': re.compile(r'^head\.'),
    'dinov2': re.compile(r'^mask_token$'),
    'mae': re.compile(r'^(mask_token$|decoder_|head\.)'),
    'sam': re.compile(r'$^'),
}


def default_cache_dir() -> str:
    """``$SCLIP_CACHE_DIR/vfm``, else ``~/.cache/sclip/vfm``."""
    root = os.environ.get('SCLIP_CACHE_DIR', os.path.join(os.path.expanduser('~'), '.cache', 'sclip'))
    return os.path.join(root, 'vfm')


def file_md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download_checkpoint(spec: VFMSpec, cache_dir: Optional[str] = None) -> str:
    """The cached official checkpoint of ``spec``, downloaded once (no retries)."""
    folder = cache_dir or default_cache_dir()
    path = os.path.join(folder, spec.filename)
    if os.path.isfile(path):
        return path
    try:
        os.makedirs(folder, exist_ok=True)
        download_url_to_file(spec.url, path, progress=True)
    except Exception as error:  # offline, HTTP error, disk full: all one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SCLIPError(f'cannot download the {spec.name} checkpoint {spec.url} ({reason[:150]}); '
                         f'download it elsewhere and pass model.vfm.checkpoint=/path/to/{spec.filename}') from None
    if spec.md5_prefix and not file_md5(path).startswith(spec.md5_prefix):
        os.remove(path)
        raise SCLIPError(f'the download of {spec.url} is corrupt (md5 does not start with {spec.md5_prefix}); '
                         f'try again or pass model.vfm.checkpoint=/path/to/{spec.filename}')
    return path


def resolve_checkpoint(spec: VFMSpec, checkpoint: Optional[str], download: bool,
                       cache_dir: Optional[str] = None) -> Optional[str]:
    """The local file to load: ``checkpoint``, else the downloaded official one, else None."""
    if checkpoint:
        path = os.path.expanduser(str(checkpoint))
        if not os.path.isfile(path):
            raise SCLIPError(f'model.vfm.checkpoint={checkpoint!r} does not exist; pass the {spec.name} '
                             f'checkpoint ({spec.url}).')
        return path
    return download_checkpoint(spec, cache_dir) if download else None


def read_checkpoint(path: str, spec: VFMSpec) -> dict:
    """The unpickled contents of ``path`` (tensors and plain containers only)."""
    from ...progress import status
    status(f'loading {spec.name} weights ({path})')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # corrupt, truncated, not a checkpoint, unsafe pickle
        reason = load_failure_reason(error)
        raise SCLIPError(f'model.vfm.checkpoint={path!r} could not be read as a PyTorch checkpoint '
                         f'({reason[:150]}); pass the {spec.name} checkpoint ({spec.filename}).') from None


def _strip(state: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    return {key[len(prefix):] if key.startswith(prefix) else key: value for key, value in state.items()}


def official_state_dict(contents, spec: VFMSpec, path: str) -> Dict[str, Tensor]:
    """The model's tensors out of the family's official layout (wrappers, prefixes, extras removed)."""
    state = contents
    while isinstance(state, dict) and not any(isinstance(v, Tensor) for v in state.values()):
        inner = next((state[key] for key in WRAPPER_KEYS if isinstance(state.get(key), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise SCLIPError(f'model.vfm.checkpoint={path!r} is not a state dict of tensors; pass the '
                         f'{spec.name} checkpoint ({spec.filename}).')
    state = _strip(_strip(state, 'module.'), 'backbone.')
    if any(key.startswith('image_encoder.') for key in state):  # a full SAM: its encoder
        state = {key[len('image_encoder.'):]: value for key, value in state.items()
                 if key.startswith('image_encoder.')}
    dropped = DROPPED_KEYS[spec.family]
    return {key: value for key, value in state.items() if not dropped.search(key)}


@dataclass
class CheckpointShape:
    """What a state dict's tensors say about the model it came from."""
    family: str      # 'dinov2', 'sam' or 'vit' (DINO and MAE cannot be told apart)
    patch: int
    width: int
    depth: int
    registers: int

    @classmethod
    def of(cls, state: Dict[str, Tensor]) -> Optional['CheckpointShape']:
        proj = state.get('patch_embed.proj.weight')
        if proj is None or proj.ndim != 4:
            return None
        blocks = {int(m.group(1)) for m in (re.match(r'blocks\.(\d+)\.', key) for key in state) if m}
        if any(key.startswith('neck.') for key in state):
            family = 'sam'
        elif any('.ls1.' in key for key in state) or 'register_tokens' in state:
            family = 'dinov2'
        else:
            family = 'vit'
        registers = state['register_tokens'].shape[1] if 'register_tokens' in state else 0
        return cls(family, proj.shape[-1], proj.shape[0], len(blocks), registers)


FAMILY_NAMES = {'vit': 'DINO/MAE', 'dinov2': 'DINOv2', 'sam': 'SAM'}


def _family_of(spec: VFMSpec) -> str:
    return 'vit' if spec.family in ('dino', 'mae') else spec.family


def check_fits(state: Dict[str, Tensor], spec: VFMSpec, path: str) -> None:
    """Raise one line if ``state`` is not a checkpoint of ``spec``'s architecture."""
    shape = CheckpointShape.of(state)
    if shape is None:
        raise SCLIPError(f'model.vfm.checkpoint={path!r} has no patch embedding (patch_embed.proj.weight); '
                         f'it is not a {spec.name} checkpoint ({spec.filename}).')
    expected = (_family_of(spec), spec.patch_size, spec.width, spec.registers)
    found = (shape.family, shape.patch, shape.width, shape.registers)
    if found != expected or shape.depth != spec.depth:
        guess = guess_type(shape.family, shape.patch, shape.width, shape.registers, shape.depth,
                           prefer_family=spec.family)
        what = (f'looks like a {guess} checkpoint' if guess and guess != spec.name
                else f'is a {FAMILY_NAMES[shape.family]} ViT checkpoint')
        details = f'patch {shape.patch}, width {shape.width}'
        if shape.registers != spec.registers:
            details += f', {shape.registers} registers'
        if shape.depth != spec.depth:
            details += f', depth {shape.depth}'
        raise SCLIPError(f'model.vfm.checkpoint={path!r} {what} ({details}); model.vfm.type is '
                         f'{spec.name} ({spec.describe()}, depth {spec.depth}): pass a {spec.name} '
                         f'checkpoint ({spec.filename}) or change model.vfm.type.')


def load_into(model: torch.nn.Module, state: Dict[str, Tensor], spec: VFMSpec, path: str,
              official_name: Callable[[str], str]) -> None:
    """Copy ``state`` (official names) into ``model`` (strict); a key or shape mismatch is one line.

    ``official_name`` maps each of the model's parameter names to the checkpoint's.
    """
    names = {official_name(key): key for key in model.state_dict()}
    target = model.state_dict()
    missing: List[str] = [name for name in names if name not in state]
    unexpected: List[str] = [name for name in state if name not in names]
    wrong = [f'{name} {tuple(state[name].shape)} vs {tuple(target[names[name]].shape)}' for name in state
             if name in names and state[name].shape != target[names[name]].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f'missing {", ".join(missing[:3])}' + (' ...' if len(missing) > 3 else ''))
        if unexpected:
            parts.append(f'unexpected {", ".join(unexpected[:3])}' + (' ...' if len(unexpected) > 3 else ''))
        if wrong:
            parts.append(f'shape of {", ".join(wrong[:2])}' + (' ...' if len(wrong) > 2 else ''))
        raise SCLIPError(f'model.vfm.checkpoint={path!r} does not fit {spec.name} ({"; ".join(parts)}); '
                         f'pass the official {spec.filename}.')
    model.load_state_dict({names[name]: value for name, value in state.items()}, strict=True)
