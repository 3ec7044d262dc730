"""Class-agnostic region masks (CorrCLIP): where they come from, their disk cache, the map correction.

Why: CorrCLIP restricts CLIP's patch correlations to regions of a class-agnostic mask generator
and, after the labels, gives every region its majority label. The official code
(zdk258/CorrCLIP ``CorrCLIPv1/corrclip_segmentor.py``, ``generate_mask``) reads each image's
masks either from pre-generated files (``mask_generator=None``, its default and the paper's
SAM2 masks: ``<instance_mask_path>/<image stem>.npz``, key ``instance_mask``) or from SAM2's
automatic mask generator run on the image file (``mask_generator='sam2'``). A mask is an int
map at the image file's size; its smallest value stands for the unsegmented pixels.

SAM2 is expensive and independent of everything a sweep varies, so its masks are computed once
per image (shared by the cells of a sweep through the ``shared`` dict of one loader batch) and
cached on disk under ``$SCLIP_CACHE_DIR/region_masks`` (default ``~/.cache/sclip``), keyed by
the image file's sha256 and the generator's identity (its checkpoint's sha256 and settings).
An entry stores the checksum of its mask: an entry that cannot be read or does not match is
recomputed, silently.

The supervised generators of the official code (EntitySeg, Mask2Former, EoMT) were trained on
labelled segmentation data; they are left out (the harness is training-free, docs/PROTOCOL.md).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import SCLIPError

PAD_VALUE = 10000  # official: padded window pixels get this mask value (F.pad(..., value=10000))
SAM2_URL = 'https://dl.fbaipublicfiles.com/segment_anything_2/072824/'
# SAM2 image-encoder shapes: config -> (checkpoint file, trunk width, trunk blocks)
SAM2_MODELS = {
    'sam2_hiera_t.yaml': ('sam2_hiera_tiny.pt', 96, 12),
    'sam2_hiera_s.yaml': ('sam2_hiera_small.pt', 96, 16),
    'sam2_hiera_b+.yaml': ('sam2_hiera_base_plus.pt', 112, 24),
    'sam2_hiera_l.yaml': ('sam2_hiera_large.pt', 144, 48),
}
REGION_MASK_URL = 'https://huggingface.co/datasets/dk258/CorrCLIP/resolve/main/region_masks.zip'


def cache_root() -> str:
    return os.environ.get('SCLIP_CACHE_DIR', osp.join(osp.expanduser('~'), '.cache', 'sclip'))


def compose_instance_mask(annotations, shape) -> np.ndarray:
    """SAM2's annotations -> one int map, as the official code composes them: zeros, then the
    masks by increasing area (Python's stable sort) numbered from 1, a later (larger) mask
    overwriting an earlier one where they overlap."""
    instance_mask = np.zeros(tuple(shape)[:2], dtype=int)
    for instance_id, ann in enumerate(sorted(annotations, key=lambda x: x['area']), start=1):
        instance_mask[ann['segmentation']] = instance_id
    return instance_mask


def read_rgb(path: str) -> np.ndarray:
    """The image file as the official code reads it for SAM2: PIL, RGB, uint8 (H, W, 3)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            return np.array(image.convert('RGB'))
    except (OSError, ValueError) as error:
        raise SCLIPError(f'{path}: cannot be read as an image for the region masks ({error}).') from None


class MaskSource:
    """Where an image's region masks come from: ``masks(img_path) -> (H, W) int64``."""
    cacheable = False

    def identity(self) -> dict:
        raise NotImplementedError

    def masks(self, img_path: str) -> np.ndarray:
        raise NotImplementedError


class FileMasks(MaskSource):
    """The official pre-generated masks: ``<root>/<image stem>.npz``, key ``instance_mask``."""

    def __init__(self, root: str):
        self.root = str(root)

    def identity(self) -> dict:
        return {'type': 'files', 'root': self.root}

    def masks(self, img_path: str) -> np.ndarray:
        path = osp.join(self.root, osp.splitext(osp.basename(img_path))[0] + '.npz')
        if not osp.isfile(path):
            raise SCLIPError(f'{path}: no region masks for {img_path}; download CorrCLIP\'s masks '
                             f'({REGION_MASK_URL}) and set model.region_masks.root, or generate them with '
                             "model.region_masks.type=sam2.")
        try:
            with np.load(path) as data:
                return np.asarray(data['instance_mask']).astype(np.int64)
        except Exception as error:  # noqa: BLE001 - truncated zip, missing key: one line
            raise SCLIPError(f'{path}: cannot be read as region masks (an .npz with "instance_mask": '
                             f'{type(error).__name__}: {str(error)[:100]}).') from None


def check_sam2_checkpoint(path: str, config: str) -> None:
    """A missing file, a file that is not a SAM2 checkpoint, or one of another SAM2 size: one line."""
    filename, width, blocks = SAM2_MODELS[config]
    if not osp.isfile(path):
        raise SCLIPError(f'model.region_masks.checkpoint={path!r} does not exist; download {SAM2_URL}{filename}.')
    try:
        contents = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001
        raise SCLIPError(f'model.region_masks.checkpoint={path!r} could not be read as a PyTorch checkpoint '
                         f'({type(error).__name__}); pass {filename} ({SAM2_URL}{filename}).') from None
    state = contents.get('model') if isinstance(contents, dict) else None
    if not isinstance(state, dict) or 'image_encoder.trunk.patch_embed.proj.weight' not in state:
        hint = (' (it looks like a segment-anything SAM 1 checkpoint)'
                if isinstance(contents, dict) and 'image_encoder.patch_embed.proj.weight' in contents else '')
        raise SCLIPError(f'model.region_masks.checkpoint={path!r} is not a SAM2 checkpoint{hint}; '
                         f'pass {filename} ({SAM2_URL}{filename}).')
    found_width = state['image_encoder.trunk.patch_embed.proj.weight'].shape[0]
    found_blocks = len({key.split('.')[3] for key in state if key.startswith('image_encoder.trunk.blocks.')})
    if (found_width, found_blocks) != (width, blocks):
        found = [name for name, (_, w, b) in SAM2_MODELS.items() if (w, b) == (found_width, found_blocks)]
        looks = f'looks like {found[0]} (width {found_width}, {found_blocks} blocks)' if found else \
            f'has width {found_width} and {found_blocks} blocks'
        raise SCLIPError(f'model.region_masks.checkpoint={path!r} {looks}, not model.region_masks.config={config!r} '
                         f'(width {width}, {blocks} blocks); pass {filename} or set the matching config.')


class SAM2Masks(MaskSource):
    """SAM2's automatic mask generator on the image file, with the official settings
    (``set_mask_generator``: sam2_hiera_l, 8 points per side, IoU and stability thresholds 0.4,
    one mask per point, no post-processing; fp16 on CUDA)."""
    cacheable = True

    def __init__(self, checkpoint: Optional[str] = None, config: str = 'sam2_hiera_l.yaml',
                 points_per_side: int = 8, pred_iou_thresh: float = 0.4, stability_score_thresh: float = 0.4,
                 multimask_output: bool = False, half: Optional[bool] = None, device: Optional[str] = None,
                 download: bool = True):
        if config not in SAM2_MODELS:
            raise SCLIPError(f'model.region_masks.config={config!r} is unknown; one of {", ".join(SAM2_MODELS)}.')
        self.config = config
        self.checkpoint = self._resolve(checkpoint, download)
        check_sam2_checkpoint(self.checkpoint, config)
        self.settings = dict(points_per_side=int(points_per_side), pred_iou_thresh=float(pred_iou_thresh),
                             stability_score_thresh=float(stability_score_thresh),
                             multimask_output=bool(multimask_output))
        self.half = bool(half)
        self.device = device
        self._generator = None
        self._identity = None

    def _resolve(self, checkpoint: Optional[str], download: bool) -> str:
        if checkpoint:
            return osp.expanduser(str(checkpoint))
        filename = SAM2_MODELS[self.config][0]
        path = osp.join(cache_root(), 'vfm', filename)
        if osp.isfile(path) or not download:
            return path
        try:
            os.makedirs(osp.dirname(path), exist_ok=True)
            torch.hub.download_url_to_file(SAM2_URL + filename, path, progress=True)
        except Exception as error:  # noqa: BLE001 - offline, HTTP error, disk full
            raise SCLIPError(f'cannot download the SAM2 checkpoint {SAM2_URL}{filename} '
                             f'({type(error).__name__}); download it elsewhere and pass '
                             f'model.region_masks.checkpoint=/path/to/{filename}') from None
        return path

    def identity(self) -> dict:
        if self._identity is None:
            from ..identity import file_sha256
            self._identity = {'type': 'sam2', 'config': self.config, 'checkpoint_sha256': file_sha256(self.checkpoint),
                              'half': self.half, **self.settings}
        return self._identity

    def generator(self, device: torch.device):
        if self._generator is None:
            try:
                from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
                from sam2.build_sam import build_sam2
            except ImportError as error:
                raise SCLIPError(f'model.region_masks.type=sam2 needs the sam2 package ({error}); '
                                 '`SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0` (beside the installed torch).') from None
            model = build_sam2(self.config, self.checkpoint, device=str(device), apply_postprocessing=False)
            if self.half and device.type == 'cuda':
                model = model.half()
            self._generator = SAM2AutomaticMaskGenerator(model=model, **self.settings)
        return self._generator

    def masks(self, img_path: str, device: Optional[torch.device] = None) -> np.ndarray:
        device = torch.device(self.device) if self.device else (device or torch.device('cpu'))
        image = read_rgb(img_path)
        generator = self.generator(device)
        if self.half and device.type == 'cuda':
            with torch.inference_mode(), torch.autocast('cuda', dtype=torch.float16):
                annotations = generator.generate(image)
        else:
            with torch.inference_mode():
                annotations = generator.generate(image)
        return compose_instance_mask(annotations, image.shape).astype(np.int64)


MASK_SOURCES = {'files': FileMasks, 'sam2': SAM2Masks}


def mask_checksum(mask: np.ndarray) -> str:
    return hashlib.sha256(f'{mask.dtype.str}{mask.shape}'.encode() + np.ascontiguousarray(mask).tobytes()).hexdigest()


class MaskCache:
    """Masks on disk, one ``.npz`` per (image content, generator); verified on every load."""

    def __init__(self, folder: str):
        self.folder = folder

    def path(self, key: str) -> str:
        return osp.join(self.folder, key[:2], key + '.npz')

    def load(self, key: str) -> Optional[np.ndarray]:
        try:
            with np.load(self.path(key), allow_pickle=False) as data:
                mask, checksum, stored_key = data['mask'], str(data['checksum']), str(data['key'])
        except Exception:  # noqa: BLE001 - absent, truncated, corrupt: recompute
            return None
        if stored_key != key or mask_checksum(mask) != checksum:
            return None
        return mask

    def store(self, key: str, mask: np.ndarray) -> None:
        from ..files import write_bytes_atomic
        buffer = io.BytesIO()
        np.savez_compressed(buffer, mask=mask, checksum=np.array(mask_checksum(mask)), key=np.array(key))
        try:
            os.makedirs(osp.dirname(self.path(key)), exist_ok=True)
            write_bytes_atomic(self.path(key), buffer.getvalue())
        except OSError:
            pass  # a cache that cannot be written only costs time


def file_content_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


class RegionMasks:
    """An image's region masks (H, W) int64 tensor from its file: the source, the disk cache, and
    the sharing between the models of one loader batch (``shared``)."""

    def __init__(self, spec: dict, half: bool = False):
        """``spec``: ``type`` picks the source; the keys of every source may be present (a config
        holds both so that ``model.region_masks.type=sam2`` is one override), each source takes its
        own; ``cache_dir`` (None: the default, False: no disk cache)."""
        import inspect
        from ..config_check import check_arguments, unknown_key_error
        spec = dict(spec)
        kind = spec.pop('type', None)
        if kind not in MASK_SOURCES:
            raise SCLIPError(f'model.region_masks.type={kind!r} is unknown; one of {", ".join(MASK_SOURCES)} '
                             '(the supervised generators of the official code are not training-free).')
        cache_dir = spec.pop('cache_dir', None)
        accepted = {name: cls for cls in MASK_SOURCES.values()
                    for name in inspect.signature(cls.__init__).parameters if name != 'self'}
        for key in spec:
            if key not in accepted:
                raise unknown_key_error('model.region_masks', key, ['type', 'cache_dir', *accepted])
        own = {key: value for key, value in spec.items()
               if key in inspect.signature(MASK_SOURCES[kind].__init__).parameters}
        if kind == 'files' and not own.get('root'):
            raise SCLIPError('model.region_masks.root is not set: the folder of the pre-generated masks '
                             f'(<root>/<image stem>.npz, {REGION_MASK_URL}).')
        check_arguments(MASK_SOURCES[kind].__init__, own, prefix='model.region_masks')
        if kind == 'sam2' and own.get('half') is None:
            own['half'] = half
        self.source = MASK_SOURCES[kind](**own)
        self.cache = None
        if self.source.cacheable and cache_dir is not False:
            self.cache = MaskCache(cache_dir or osp.join(cache_root(), 'region_masks'))

    def identity(self) -> dict:
        return self.source.identity()

    def signature(self) -> str:
        return json.dumps(self.identity(), sort_keys=True)

    def for_image(self, img_path: Optional[str], device: torch.device, shared: Optional[Dict] = None) -> Tensor:
        if not img_path:
            raise SCLIPError('CorrCLIP makes its region masks from the image file: predict needs data samples '
                             'with img_path (mmseg.apis.inference_model with a file, tools/test.py).')
        key = ('region_masks', self.signature(), img_path)
        if shared is not None and key in shared:
            return shared[key]
        mask = self._compute(img_path, device)
        tensor = torch.from_numpy(np.ascontiguousarray(mask)).to(device)
        if shared is not None:
            shared[key] = tensor
        return tensor

    def _compute(self, img_path: str, device: torch.device) -> np.ndarray:
        if self.cache is None:
            return self._generate(img_path, device)
        key = hashlib.sha256(f'{file_content_sha256(img_path)}\0{self.signature()}'.encode()).hexdigest()
        mask = self.cache.load(key)
        if mask is None:
            mask = self._generate(img_path, device)
            self.cache.store(key, mask)
        return mask

    def _generate(self, img_path: str, device: torch.device) -> np.ndarray:
        if isinstance(self.source, SAM2Masks):
            return self.source.masks(img_path, device)
        return self.source.masks(img_path)


def region_masks_identity(spec: dict) -> dict:
    """What a run's identity records of ``model.region_masks``, without loading anything: the
    source and its settings, and for SAM2 its checkpoint's path and sha256."""
    spec = dict(spec)
    if spec.get('type') != 'sam2':
        return {'type': spec.get('type'), 'root': spec.get('root')}
    from ..identity import file_sha256
    config = spec.get('config', 'sam2_hiera_l.yaml')
    filename = SAM2_MODELS.get(config, ('?',))[0]
    checkpoint = osp.expanduser(str(spec.get('checkpoint') or osp.join(cache_root(), 'vfm', filename)))
    settings = {k: spec.get(k) for k in ('points_per_side', 'pred_iou_thresh', 'stability_score_thresh',
                                          'multimask_output', 'half')}
    return {'type': 'sam2', 'config': config, 'checkpoint': checkpoint,
            'checkpoint_sha256': file_sha256(checkpoint) if osp.isfile(checkpoint) else None, **settings}


def correct_labels(labels: Tensor, regions: Tensor) -> Tensor:
    """CorrCLIP's map correction: every region but the one of the smallest mask value takes the
    most frequent label inside it (``torch.mode``: the smallest label on ties)."""
    if tuple(labels.shape[-2:]) != tuple(regions.shape[-2:]):
        raise SCLIPError(f'region masks of {tuple(regions.shape)} pixels for a label map of '
                         f'{tuple(labels.shape[-2:])}: the masks must have the image file\'s size.')
    values, inverse = torch.unique(regions, return_inverse=True)
    if len(values) < 2:
        return labels
    flat = labels.reshape(-1).long()
    classes = int(flat.max()) + 1
    counts = torch.bincount(inverse.reshape(-1) * classes + flat, minlength=len(values) * classes)
    majority = counts.view(len(values), classes).argmax(dim=1).to(labels.dtype)
    corrected = torch.where(inverse.reshape(-1) == 0, labels.reshape(-1), majority[inverse.reshape(-1)])
    return corrected.view(labels.shape)
