"""What produced a result: config after overrides, weights, text, data and code, and one fingerprint.

Why: a number is only meaningful with the run it belongs to. Every ``metrics.json`` carries
this identity; a sweep or ``paper_table.py --run`` reuses an existing result only when its
fingerprint equals the fingerprint of the run it would start, and otherwise says what changed.
File hashes (checkpoints, every listed image and label) are cached by (path, size, mtime,
inode) so computing an identity stays cheap.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import os.path as osp
import subprocess
import time
from typing import Dict, List, Optional

from mmengine import Config

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
REPO_DIR = osp.dirname(PACKAGE_DIR)
# Keys that say where something lives or how fast it runs, not what is computed: their
# content is represented by hashes below (weights, class names) or does not change results.
LOCATION_KEYS = ('clip_path', 'pretrained', 'text_cache_dir', 'class_names', 'templates_file')
LOADER_KEYS = ('num_workers', 'persistent_workers', 'pin_memory')


# Overrides that say where things are or how fast a run goes: the run is still the config's.
# Checkpoints a model reads besides CLIP and its foundation model (``model.vfm``), by their config key:
# a trained segmenter's own weights (GroupViT, TCL), a method's SAM (Trident), SegEarth-OV's
# upsampler, CASS's scale-up CLIP. Each is named by its sha256 under the identity's 'checkpoints'
# (a pretrained tag such as 'openai' by its name), never by its path.
CHECKPOINT_KEYS = ('model.checkpoint', 'model.method.sam.checkpoint', 'model.method.upsampler.checkpoint',
                   'model.method.presence_clip.clip_path')
NEUTRAL_OVERRIDES = ('model.clip_path', 'model.pretrained', 'model.text_cache_dir', 'model.window_batch_size',
                     'model.memory_budget_mb', 'model.slide_mode', 'model.fused_attention', 'model.vfm.checkpoint',
                     'model.vfm.download', *CHECKPOINT_KEYS,
                     'model.method.sam.download', 'test_dataloader.dataset.data_root', 'test_dataloader.num_workers',
                     'test_dataloader.persistent_workers', 'work_dir')


def neutral_override(key: str) -> bool:
    """An override that does not change what a method computes."""
    return str(key) in NEUTRAL_OVERRIDES


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical(value) -> str:
    """A stable JSON text of a config value (tuples as lists, keys sorted)."""
    return json.dumps(value, sort_keys=True, default=str)


def _hash_cache_path() -> str:
    root = os.environ.get('SCLIP_CACHE_DIR', osp.join(osp.expanduser('~'), '.cache', 'sclip'))
    return osp.join(root, 'file_hashes.json')


# A file modified this recently may still change within its timestamp's granularity without
# its mtime moving: its hash is computed but not cached (git's "racily clean" entries).
RACY_SECONDS = 2.0
_SEP = '\0'


def _read_hash_cache() -> Dict[str, str]:
    """{'real path NUL size NUL mtime_ns NUL inode': sha256}; a damaged or foreign file, or any
    entry that is not a sha256, is ignored (and rebuilt on the next write)."""
    try:
        with open(_hash_cache_path()) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {key: value for key, value in cache.items()
            if isinstance(value, str) and len(value) == 64 and key.count(_SEP) == 3
            and all(c in '0123456789abcdef' for c in value)}


def _hash_file(path: str) -> str:
    size = os.path.getsize(path)
    if size > 1 << 26:  # seconds for a real checkpoint: say so (once, then cached)
        from .progress import status
        status(f'hashing {path} ({size / 2 ** 20:.0f} MiB) for the run\'s identity, once')
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def content_sha256s(paths) -> List[Optional[str]]:
    """sha256 of each file's content (None: not a file), cached by (real path, size, mtime_ns,
    inode) in ``$SCLIP_CACHE_DIR/file_hashes.json`` so an unchanged file is never read again.

    Why content: an image or label edited in place at the same size (an uncompressed PNG, a
    re-saved JPEG) changes what a run measures; sizes and names would not notice. The cache
    is read once and written once (atomically) per call, one entry per path."""
    cache, added, digests = None, {}, []
    now = time.time()
    for path in paths:
        real = osp.realpath(osp.expanduser(str(path))) if path else ''
        try:
            stat = os.stat(real) if real else None
        except OSError:
            stat = None
        if stat is None or not osp.isfile(real):
            digests.append(None)
            continue
        if cache is None:
            cache = _read_hash_cache()
        key = _SEP.join((real, str(stat.st_size), str(stat.st_mtime_ns), str(stat.st_ino)))
        digest = cache.get(key) or added.get(key)
        if digest is None:
            digest = _hash_file(real)
            if now - stat.st_mtime > RACY_SECONDS:
                added[key] = digest
        digests.append(digest)
    if added:
        fresh = {key.split(_SEP, 1)[0] for key in added}
        kept = {key: value for key, value in cache.items() if key.split(_SEP, 1)[0] not in fresh}
        kept.update(added)  # one entry per path: an edited file's old entry goes
        try:
            from .files import write_text_atomic
            write_text_atomic(_hash_cache_path(), json.dumps(kept))
        except OSError:
            pass  # a cache that cannot be written only costs time
    return digests


def file_sha256(path: str) -> Optional[str]:
    """sha256 of a file's content (cached, see ``content_sha256s``); None when it is not a file."""
    if not path:
        return None
    return content_sha256s([path])[0]


def source_sha256() -> str:
    """sha256 over every .py file of the sclip package (path and content)."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(PACKAGE_DIR)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(root, name)
                digest.update(osp.relpath(path, PACKAGE_DIR).encode())
                with open(path, 'rb') as f:
                    digest.update(f.read())
    return digest.hexdigest()


def git_commit() -> Optional[str]:
    """The repository's commit (with '+dirty' when sclip/ has uncommitted changes), if any."""
    if not osp.isdir(osp.join(REPO_DIR, '.git')):
        return None
    try:
        commit = subprocess.run(['git', '-C', REPO_DIR, 'rev-parse', 'HEAD'], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(['git', '-C', REPO_DIR, 'status', '--porcelain', '--', 'sclip'],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ('+dirty' if dirty else '')) or None


def library_versions() -> Dict[str, str]:
    import mmengine
    import mmseg
    import open_clip
    import torch
    return {'torch': torch.__version__, 'mmseg': mmseg.__version__, 'mmengine': mmengine.__version__,
            'open_clip': open_clip.__version__}


def resolved_weights(model: dict) -> str:
    pretrained = model.get('pretrained')
    return str(pretrained if pretrained is not None else model.get('clip_path') or 'openai')


def templates_text(templates) -> str:
    from .models.text_classifier import resolve_templates
    return canonical(resolve_templates(templates if templates is not None else 'openai_imagenet'))


def templates_part(model: dict) -> dict:
    """The prompt templates: a set's name (or 'custom') and the sha256 of its text, or a template
    file (CLIPer's ``model.templates_file``) and its content's sha256."""
    if model.get('templates_file'):
        return {'templates': model['templates_file'], 'templates_sha256': file_sha256(model['templates_file'])}
    templates = model.get('templates', 'openai_imagenet')
    return {'templates': templates if isinstance(templates, str) else 'custom',
            'templates_sha256': sha256_text(templates_text(model.get('templates')))}


TEXT_FILE_PARTS = ('descriptions', 'template_ranking')


def text_files(text) -> dict:
    """``model.text``'s files (descriptions, template rankings) and their sha256, by part."""
    out = {}
    for part in TEXT_FILE_PARTS:
        spec = (text or {}).get(part) if isinstance(text, dict) else None
        if isinstance(spec, dict) and spec.get('file'):
            out[part] = spec['file']
            out[f'{part}_sha256'] = file_sha256(spec['file'])
    return out


def data_identity(cfg: Config) -> dict:
    """The data part of ``cfg``'s identity (its dataset listed here; a run plan lists it once
    and passes it to ``dataset_identity``)."""
    from .data_check import list_dataset
    return dataset_identity(list_dataset(cfg))


def dataset_identity(dataset) -> dict:
    """The data part of an identity from a listed ``DatasetPlan`` (sclip/data_check.py)."""
    count, files = None, None
    if dataset.pairs is not None:
        try:
            count, files = len(dataset.pairs), files_sha256(dataset.pairs, dataset.root)
        except Exception:  # noqa: BLE001 - a file gone since the listing is reported by the pre-flight checks
            count, files = None, None
    return {'type': dataset.type, 'root': dataset.root, 'img_dir': dataset.img_dir,
            'seg_map_dir': dataset.seg_map_dir, 'img_suffix': dataset.img_suffix,
            'seg_map_suffix': dataset.seg_map_suffix, 'split': dataset.ann_file, 'num_images': count,
            'files_sha256': files, 'reduce_zero_label': dataset.reduce_zero_label}


def files_sha256(pairs, root: str) -> str:
    """sha256 over the listed image/label files: names (relative to the data root) and contents.

    Why: a split file edited in place, an image renamed, replaced, or edited in place at the same
    size changes what a run measures while the root, split name and count stay the same. Contents
    are hashed once per file and cached by path, size, mtime and inode (``content_sha256s``): an
    unchanged dataset costs one stat per file, and a copied dataset keeps its identity."""
    listed = [path for paths in pairs for path in paths if path is not None]
    digest = hashlib.sha256()
    for path, content in zip(listed, content_sha256s(listed)):
        digest.update(f'{osp.relpath(path, root or ".")}\0{content or "missing"}\n'.encode())
    return digest.hexdigest()


def resolved_config(cfg: Config) -> dict:
    """What of the config decides the numbers: model (minus locations), data set-up, evaluator."""
    model = copy.deepcopy(cfg.to_dict().get('model', {}))
    for key in LOCATION_KEYS:
        model.pop(key, None)
    for part in ('vfm', 'region_masks'):  # checkpoints: named with their sha256 in the identity
        if isinstance(model.get(part), dict):
            model[part] = {k: v for k, v in model[part].items() if k != 'checkpoint'}
    for key in CHECKPOINT_KEYS:  # hashed under 'checkpoints'
        keys = key.split('.')[1:]
        holder = key_holder(model, keys)
        if holder is not None:
            holder.pop(keys[-1], None)
    if isinstance(model.get('text'), dict):  # the text files' content is hashed under 'text'
        model['text'] = {part: ({k: v for k, v in spec.items() if k != 'file'} if isinstance(spec, dict) else spec)
                         for part, spec in model['text'].items()}
    loader = {k: v for k, v in copy.deepcopy(cfg.to_dict().get('test_dataloader', {})).items()
              if k not in LOADER_KEYS}
    return {'model': model, 'test_dataloader': loader, 'test_evaluator': cfg.to_dict().get('test_evaluator')}


def run_identity(cfg: Config, overrides: Optional[dict] = None, dataset=None) -> dict:
    """The identity of evaluating ``cfg`` (after ``overrides``), with its fingerprint;
    ``dataset``: its listed ``DatasetPlan`` (else the dataset is listed here)."""
    model = cfg.get('model', {})
    weights = resolved_weights(model)
    vfm = model.get('vfm') or None
    class_names = model.get('class_names')
    identity = {
        'config': {'file': cfg.filename, 'overrides': dict(overrides or {}),
                   'resolved_sha256': sha256_text(canonical(resolved_config(cfg)))},
        'weights': {'arch': model.get('arch'), 'source': weights, 'sha256': file_sha256(weights)},
        'vfm': None if not vfm else {'type': vfm.get('type'), 'source': vfm.get('checkpoint') or 'official-url',
                                     'sha256': file_sha256(vfm.get('checkpoint'))},
        **region_masks_part(model),
        **checkpoints_part(model),
        'text': {'class_names': class_names, 'class_names_sha256': file_sha256(class_names),
                 **templates_part(model), **text_files(model.get('text'))},
        'data': data_identity(cfg) if dataset is None else dataset_identity(dataset),
        'code': {'version': _version(), 'git': git_commit(), 'source_sha256': source_sha256()},
        'libraries': library_versions(),
    }
    identity['fingerprint'] = fingerprint(identity)
    return identity


def region_masks_part(model: dict) -> dict:
    """``{'region_masks': ...}`` naming the mask generator and its checkpoint's sha256 (CorrCLIP),
    or nothing for a model without region masks."""
    spec = model.get('region_masks')
    if not spec:
        return {}
    from .models.region_masks import region_masks_identity
    return {'region_masks': region_masks_identity(spec)}


def key_holder(tree: dict, keys: list) -> Optional[dict]:
    """The dict that holds ``tree[k0][k1]...[k_last]``'s last key, or None where the path breaks."""
    for key in keys[:-1]:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree if isinstance(tree, dict) else None


def checkpoints_part(model: dict) -> dict:
    """``{'checkpoints': {key: {source, sha256}}}`` for the ``CHECKPOINT_KEYS`` a model's config has,
    or nothing for a model without any, so that the identities of the other models are unchanged."""
    paths = {}
    for key in CHECKPOINT_KEYS:
        keys = key.split('.')[1:]
        holder = key_holder(model, keys)
        if holder is not None and keys[-1] in holder:
            paths[key] = holder[keys[-1]]
    if not paths:
        return {}
    return {'checkpoints': {key: {'source': path or 'official-url', 'sha256': file_sha256(path)}
                            for key, path in paths.items()}}


def _version() -> str:
    from . import __version__
    return __version__


FINGERPRINT_PARTS = ('config', 'weights', 'vfm', 'text', 'data', 'code', 'libraries')


def _fingerprint_view(identity: dict) -> dict:
    """The parts of an identity that decide the numbers (not file names, not git's dirty flag)."""
    view = {
        'config': identity['config']['resolved_sha256'],
        'weights': [identity['weights']['arch'],
                    identity['weights']['sha256'] or identity['weights']['source']],
        'vfm': None if not identity.get('vfm') else [identity['vfm']['type'],
                                                     identity['vfm']['sha256'] or identity['vfm']['source']],
        'text': [identity['text']['class_names_sha256'], identity['text']['templates_sha256']]
        + [identity['text'].get(f'{part}_sha256') for part in TEXT_FILE_PARTS if f'{part}_sha256' in identity['text']],
        'data': [identity['data'].get(k) for k in ('type', 'root', 'split', 'num_images', 'files_sha256')],
        'code': identity['code']['source_sha256'],
        'libraries': identity['libraries'],
    }
    if identity.get('region_masks'):  # only methods with region masks (CorrCLIP) have the part
        view['region_masks'] = identity['region_masks']
    if identity.get('checkpoints'):  # only models with extra checkpoints (GroupViT, TCL, Trident)
        view['checkpoints'] = {key: part['sha256'] or part['source'] for key, part in identity['checkpoints'].items()}
    return view


def fingerprint(identity: dict) -> str:
    return sha256_text(canonical(_fingerprint_view(identity)))


def changed_parts(old: Optional[dict], new: dict) -> list:
    """Which parts of ``new`` differ from ``old`` (an identity read from a metrics.json)."""
    if not old or 'config' not in old:
        return ['no identity recorded']
    try:
        before, after = _fingerprint_view(old), _fingerprint_view(new)
    except (KeyError, TypeError):
        return ['identity of another format']
    return [part for part in FINGERPRINT_PARTS if before.get(part) != after.get(part)]
