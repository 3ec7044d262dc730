"""Build an open_clip CLIP model from a pretrained tag or a local checkpoint.

Why: users run with ``pretrained='openai'`` (open_clip downloads and caches the weights)
or, offline, with a local file. We wrap open_clip's factory and its OpenAI state-dict
builder instead of copying them, and turn their failures into one-line errors.

Accepted local files:
* an OpenAI checkpoint, either the TorchScript archive that ``clip.load`` downloads or a
  plain state dict; the architecture is inferred from the tensor shapes and QuickGELU is
  used, as OpenAI trained with it;
* an open_clip checkpoint (``{'state_dict': ...}`` or a bare state dict) for ``arch``.
Pickled checkpoints are read with ``torch.load(weights_only=True)``, so no arbitrary code
runs; a TorchScript archive is read with ``torch.jit.load`` (code, but no pickled objects).
"""
from __future__ import annotations

import contextlib
import copy
import os
import zipfile
from typing import Dict, Optional

import torch

from ..errors import SCLIPError, load_failure_reason

OPENAI_HEADER_KEYS = ('input_resolution', 'context_length', 'vocab_size')
CLIP_VIT_KEYS = ('visual.conv1.weight', 'visual.proj', 'token_embedding.weight',
                 'text_projection', 'ln_final.weight')


def is_torchscript_archive(path: str) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; torch.save files have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any('/code/' in name or name.startswith('code/') for name in archive.namelist())


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Load the tensors of a local checkpoint without executing pickled code."""
    try:
        if is_torchscript_archive(path):
            return dict(torch.jit.load(path, map_location='cpu').state_dict())
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # corrupt file, unsafe pickle, not a checkpoint at all
        reason = load_failure_reason(error)
        raise SCLIPError(f'model.clip_path={path!r} could not be read as a CLIP checkpoint '
                         f'({reason[:200]}); pass an OpenAI .pt file or an open_clip checkpoint.')
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise SCLIPError(f'model.clip_path={path!r} is not a state dict of tensors; '
                         'pass an OpenAI CLIP .pt file or an open_clip checkpoint.')
    if all(key.startswith('module.') for key in checkpoint):
        checkpoint = {key[len('module.'):]: value for key, value in checkpoint.items()}
    return checkpoint


def check_is_clip_vit(state_dict: Dict[str, torch.Tensor], path: str) -> None:
    missing = [key for key in CLIP_VIT_KEYS if key not in state_dict]
    if missing:
        raise SCLIPError(f'model.clip_path={path!r} is not a CLIP ViT checkpoint (missing '
                         f'{", ".join(missing[:3])}); pass an OpenAI ViT .pt file or an '
                         'open_clip ViT checkpoint.')


def looks_like_openai(state_dict: Dict[str, torch.Tensor], from_torchscript: bool) -> bool:
    """OpenAI releases are TorchScript, carry header buffers, or hold float16 weights."""
    if from_torchscript or any(key in state_dict for key in OPENAI_HEADER_KEYS):
        return True
    return state_dict['visual.conv1.weight'].dtype == torch.float16


def load_local_clip(path: str, arch: Optional[str], clip_format: str = 'auto') -> torch.nn.Module:
    """Build a float32 open_clip CLIP model from a local checkpoint file."""
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict

    state_dict = read_state_dict(path)
    check_is_clip_vit(state_dict, path)
    if clip_format not in ('auto', 'openai', 'open_clip'):
        raise SCLIPError(f"model.clip_format={clip_format!r} is not one of 'auto', 'openai', 'open_clip'.")
    openai = clip_format == 'openai' or (
        clip_format == 'auto' and looks_like_openai(state_dict, is_torchscript_archive(path)))
    try:
        if openai:
            for key in [k for k in state_dict if k == 'attn_mask' or k.endswith('.attn_mask')]:
                del state_dict[key]  # a traced model's causal-mask buffer, not a weight
            model = build_model_from_openai_state_dict(state_dict, cast_dtype=torch.float32)
            check_arch_agrees(model, arch, path)
        else:
            if not arch:
                raise SCLIPError(f'model.clip_path={path!r} is an open_clip checkpoint: set model.arch '
                                 "to its open_clip model name (e.g. 'ViT-B-16').")
            del state_dict  # load_checkpoint reads the file again: one copy of the weights at a time
            model = open_clip.create_model(arch, pretrained=None)
            open_clip.load_checkpoint(model, path, strict=True, weights_only=True)
    except SCLIPError:
        raise
    except Exception as error:
        reason = ' '.join(str(error).split())[:200]
        raise SCLIPError(f'model.clip_path={path!r} does not fit a CLIP ViT ({reason}); '
                         'check that it is a complete CLIP checkpoint and that model.arch matches it.')
    return model.float().eval()


def vision_shape(patch_size, width, layers, image_size) -> tuple:
    as_int = lambda v: int(v[0] if isinstance(v, (tuple, list)) else v)  # noqa: E731
    return as_int(patch_size), int(width), int(layers), as_int(image_size)


def describe_shape(shape: tuple) -> str:
    return f'patch {shape[0]}, width {shape[1]}, {shape[2]} layers, {shape[3]} px'


def known_architectures() -> Dict[tuple, str]:
    """Vision shape (patch, width, layers, input size) -> an open_clip ViT with that shape, among
    the architectures open_clip ships (a config registered at run time never counts)."""
    import open_clip
    shipped_dir = os.path.join(os.path.dirname(open_clip.__file__), 'model_configs')
    shipped = [name for name in open_clip.list_models()
               if os.path.isfile(os.path.join(shipped_dir, f'{name}.json'))]
    known = {}
    for name in sorted(shipped, key=len):  # the plainest name of each shape
        vision = (open_clip.get_model_config(name) or {}).get('vision_cfg', {})
        if isinstance(vision.get('layers'), int) and vision.get('patch_size') and not vision.get('timm_model_name'):
            shape = vision_shape(vision['patch_size'], vision.get('width', 768), vision['layers'],
                                 vision.get('image_size', 224))
            known.setdefault(shape, name)
    return known


def check_arch_agrees(model: torch.nn.Module, arch: Optional[str], path: str) -> None:
    """An OpenAI file carries its own architecture; when it is a known one and ``model.arch``
    names another, the config and the weights disagree: fail naming both."""
    import open_clip
    if not arch or arch not in open_clip.list_models():
        return
    visual = model.visual
    found = vision_shape(visual.patch_size, visual.conv1.out_channels, len(visual.transformer.resblocks),
                         visual.image_size)
    vision = open_clip.get_model_config(arch).get('vision_cfg', {})
    expected = vision_shape(vision.get('patch_size', 16), vision.get('width', 768), vision.get('layers', 12),
                            vision.get('image_size', 224))
    name = known_architectures().get(found)
    if found != expected and name is not None:
        raise SCLIPError(f'model.clip_path={path!r} is a {name} ({describe_shape(found)}) but model.arch='
                         f'{arch!r} is {describe_shape(expected)}; set model.arch={name!r} or pass the '
                         f'{arch} weights.')


def check_arch_name(arch: Optional[str]) -> None:
    """``model.arch`` names an open_clip architecture, whatever the weights: an unknown name
    would be recorded in every result's identity while the weights decide the model."""
    import open_clip
    if not arch:
        return
    known = open_clip.list_models()
    if arch not in known:
        from ..config_check import closest
        normal = {name.lower(): name for name in known}  # 'vit-b-16', 'ViT-B/16 ' -> 'ViT-B-16'
        same = normal.get(str(arch).strip().lower().replace('/', '-'))
        hint = f'; did you mean {same!r}?' if same else closest(str(arch), known)
        vits = [name for name in known if name.startswith('ViT-')]
        raise SCLIPError(f'model.arch={arch!r} is not an open_clip architecture{hint}; '
                         f'known ViTs: {", ".join(vits)} (all: open_clip.list_models()).')


def load_tagged_clip(arch: str, tag: str, cache_dir: Optional[str] = None) -> torch.nn.Module:
    """Build an open_clip model by name and pretrained tag, downloading weights if needed."""
    import open_clip

    check_arch_name(arch)
    tag_cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not tag_cfg:
        known = ', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'
        raise SCLIPError(f'model.clip_path={tag!r} is neither a local file nor an open_clip tag '
                         f'of {arch} (tags: {known}); pass a tag or the path of a checkpoint.')
    quick_gelu = bool(tag_cfg.get('quick_gelu', False))
    cached = cached_weights(tag_cfg, cache_dir)
    if cached is None and not network_reachable(tag_cfg):
        file = f'{arch}.pt' if tag == 'openai' else f'the {arch} {tag} checkpoint'
        raise SCLIPError(f'weights {arch}/{tag} are not cached and there is no network; download them once '
                         f'online (or {file}, see README "Weights") and pass model.clip_path=/path/to/it.')
    try:
        model = open_clip.create_model(arch, pretrained=cached or tag, cache_dir=cache_dir,
                                       force_quick_gelu=quick_gelu)
    except Exception as error:
        reason = ' '.join(str(error).split())
        raise SCLIPError(f'weights {arch}/{tag} could not be downloaded ({reason}); connect to the '
                         'internet once so open_clip caches them, or download ViT-B-16.pt '
                         '(OpenAI) and pass model.clip_path=/path/to/ViT-B-16.pt.')
    return model.float().eval()


def cached_weights(tag_cfg: dict, cache_dir: Optional[str] = None) -> Optional[str]:
    """The local file open_clip would load for a pretrained tag, if it is already downloaded."""
    hub = (tag_cfg.get('hf_hub') or '').strip('/')
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        repo_id = '/'.join(hub.split('/')[:2])
        for filename in ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin'):
            found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
        return None
    url = tag_cfg.get('url')
    if url:
        root = cache_dir or os.path.expanduser('~/.cache/clip')
        path = os.path.join(root, os.path.basename(url))
        return path if os.path.isfile(path) else None
    return None


def network_reachable(tag_cfg: dict, timeout: float = 3.0) -> bool:
    """Can the host serving these weights be reached at all? (one quick TCP connect, no retries)"""
    import socket
    from urllib.parse import urlparse
    host = 'huggingface.co' if tag_cfg.get('hf_hub') else (urlparse(tag_cfg.get('url', '')).hostname or 'huggingface.co')
    if os.environ.get('HF_HUB_OFFLINE') in ('1', 'true', 'True') and tag_cfg.get('hf_hub'):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


_REUSED: Optional[dict] = None  # loaded models by source, while `reusing_weights()` is active


@contextlib.contextmanager
def reusing_weights(loaded: Optional[dict] = None):
    """Inside, loading the same weights twice returns the first load's modules (in a new shell
    that its owner may modify), so the models of one sweep group hold one copy of CLIP.
    ``loaded``: a dict that keeps the loads across several ``with`` blocks."""
    global _REUSED
    previous = _REUSED
    _REUSED = loaded if loaded is not None else ({} if previous is None else previous)
    try:
        yield
    finally:
        _REUSED = previous


def _shell(model: torch.nn.Module) -> torch.nn.Module:
    """A new module object with the same submodules and parameters (its own attribute dicts)."""
    shell = copy.copy(model)
    for name in ('_modules', '_parameters', '_buffers'):
        setattr(shell, name, dict(getattr(model, name)))
    return shell


def load_clip(pretrained: str, arch: Optional[str] = 'ViT-B-16', clip_format: str = 'auto',
              cache_dir: Optional[str] = None) -> torch.nn.Module:
    """A float32, eval-mode open_clip CLIP from a tag (``'openai'``) or a local checkpoint."""
    if _REUSED is None:
        return _load_clip(pretrained, arch, clip_format, cache_dir)
    source = os.path.expanduser(str(pretrained))
    stamp = os.stat(source).st_mtime_ns if os.path.isfile(source) else None
    key = (os.path.realpath(source) if stamp else source, stamp, arch, clip_format, cache_dir)
    if key not in _REUSED:
        _REUSED[key] = _load_clip(pretrained, arch, clip_format, cache_dir)
    return _shell(_REUSED[key])


def _load_clip(pretrained: str, arch: Optional[str] = 'ViT-B-16', clip_format: str = 'auto',
               cache_dir: Optional[str] = None) -> torch.nn.Module:
    if not pretrained:
        raise SCLIPError("model.clip_path is empty: set it to 'openai' or to a local checkpoint path.")
    pretrained = os.path.expanduser(str(pretrained))
    check_arch_name(arch)
    from ..progress import status
    status(f'loading CLIP {arch} weights ({pretrained})')
    if os.path.isfile(pretrained):
        return load_local_clip(pretrained, arch, clip_format)
    if os.sep in pretrained or pretrained.endswith(('.pt', '.pth', '.bin', '.safetensors')):
        raise SCLIPError(f'model.clip_path={pretrained!r}: file not found; pass an existing '
                         "checkpoint path or a tag such as 'openai'.")
    return load_tagged_clip(arch or 'ViT-B-16', pretrained, cache_dir)
