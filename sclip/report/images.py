"""The qualitative grid's pictures: find each image, its ground truth and each method's saved
label map, colour label maps with the benchmark's palette, embed them as PNG data URIs.

Why: the report is one file to mail or attach, so every picture is a small inline PNG.
Label maps are read as mmseg's ``--out`` writes them: class index per pixel, plus one when
the dataset uses ``reduce_zero_label`` (the same encoding as the ground-truth files).
"""
from __future__ import annotations

import functools
import inspect
import io
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from PIL import Image

from .collect import Run, resolve_folder
from .markup import png_uri

try:  # the manifest a run leaves in its --out folder (sclip/predictions.py)
    from ..predictions import MANIFEST, finished_label_maps
except ImportError:  # a harness without manifests: the split decides
    MANIFEST, finished_label_maps = '', None

THUMBNAIL_WIDTH = 256
IGNORED_COLOUR = (255, 255, 255)  # ignore index 255 / reduced background / out-of-range values
MAX_PIXELS = 40_000_000  # a picture beyond this (about 6300 x 6300) is left out of the grid


@dataclass
class DataLayout:
    """Where a benchmark's images and labels are, and how to colour and name its label maps."""
    img_dir: Optional[str]
    img_suffix: str
    seg_dir: Optional[str]
    seg_suffix: str
    reduce_zero_label: bool
    palette: np.ndarray  # (classes, 3) uint8
    classes: Sequence[str] = ()


def class_default(cls: Optional[type], name: str, fallback: Any) -> Any:
    """The default of ``name`` in the first ``__init__`` along ``cls``'s MRO that declares it."""
    for klass in getattr(cls, '__mro__', ()):
        parameter = inspect.signature(klass.__init__).parameters.get(name) if '__init__' in vars(klass) else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return fallback


def dataset_class(data_type: Any) -> Optional[type]:
    import sclip  # noqa: F401  (registers sclip's datasets in mmseg's registry)
    from mmseg.registry import DATASETS
    return DATASETS.get(data_type) if isinstance(data_type, str) and data_type else None


def fallback_palette(count: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 3), dtype=np.uint8)


def dataset_config(run: Run) -> Dict[str, Any]:
    """The test dataset's config entry of the run's config file with its overrides applied, or
    {} when the file cannot be loaded here (the ground truth is then left out). Only files under
    this repository's ``configs/`` are loaded: a config is Python, and a metrics.json may come
    from anywhere."""
    from ..identity import REPO_DIR
    config = run.identity.get('config') or {}
    path = config.get('file')
    configs = osp.join(osp.realpath(REPO_DIR), 'configs') + os.sep
    if not isinstance(path, str) or not osp.isfile(path) or not osp.realpath(path).startswith(configs):
        return {}
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(dict(config.get('overrides') or {}))
        return dict(cfg.test_dataloader.dataset)
    except Exception:  # noqa: BLE001 - optional: any config that does not load means "no ground truth"
        return {}


def text_field(fields: Dict[str, Any], name: str) -> Optional[str]:
    value = fields.get(name)
    return value if isinstance(value, str) and value else None


def data_layout(run: Run) -> DataLayout:
    data = run.identity.get('data') or {}
    cls = dataset_class(data.get('type'))
    metainfo = getattr(cls, 'METAINFO', None) or {}
    palette = metainfo.get('palette') or fallback_palette()
    classes = list(metainfo.get('classes') or run.class_iou)
    root = resolve_folder(text_field(data, 'root'), run.path)
    seg_dir = resolve_folder(text_field(data, 'seg_map_dir'), run.path)
    dataset = {} if seg_dir else dataset_config(run)
    seg_prefix = text_field(dataset.get('data_prefix') or {}, 'seg_map_path')
    if not seg_dir and root and seg_prefix:
        seg_dir = resolve_folder(osp.join(root, seg_prefix), run.path)

    def setting(name: str, kind: type, fallback: Any) -> Any:
        """From the run's identity, else its config, else the dataset class's default."""
        for source in (data, dataset):
            if isinstance(source.get(name), kind):
                return source[name]
        return class_default(cls, name, fallback)
    return DataLayout(img_dir=resolve_folder(text_field(data, 'img_dir'), run.path),
                      img_suffix=setting('img_suffix', str, '.jpg'), seg_dir=seg_dir,
                      seg_suffix=setting('seg_map_suffix', str, '.png'),
                      reduce_zero_label=bool(setting('reduce_zero_label', bool, False)),
                      palette=np.asarray(palette, np.uint8).reshape(-1, 3), classes=classes)


@functools.lru_cache(maxsize=None)
def _images_under(img_dir: str) -> Dict[str, str]:
    """Image file stem -> path relative to ``img_dir``, for layouts with sub-folders (Cityscapes)."""
    index = {}
    for parent, _, files in os.walk(img_dir):
        for name in files:
            index.setdefault(osp.splitext(name)[0], osp.relpath(osp.join(parent, name), img_dir))
    return index


def find_image(layout: DataLayout, stem: str) -> Optional[Tuple[str, str]]:
    """(image path, its name relative to img_dir without img_suffix) of a prediction's stem:
    mmseg names a prediction after its image's file name without extension."""
    if not layout.img_dir:
        return None
    candidates = [stem + layout.img_suffix, stem + osp.splitext(layout.img_suffix)[1]]
    relative = next((c for c in candidates if osp.isfile(osp.join(layout.img_dir, c))), None)
    relative = relative or _images_under(layout.img_dir).get(stem)
    if relative is None:
        return None
    name = relative[:-len(layout.img_suffix)] if relative.endswith(layout.img_suffix) else osp.splitext(relative)[0]
    return osp.join(layout.img_dir, relative), name


def ground_truth_path(layout: DataLayout, name: str) -> Optional[str]:
    path = osp.join(layout.seg_dir, name + layout.seg_suffix) if layout.seg_dir else None
    return path if path and osp.isfile(path) else None


def split_stems(run: Run) -> Optional[Set[str]]:
    """The file stems of the images the run evaluated (its split file's entries), or None when
    the split is not recorded or cannot be read here (every saved map is then taken)."""
    data = run.identity.get('data') or {}
    root, split = data.get('root'), data.get('split')
    if not isinstance(split, str) or not split:
        return None
    folder = resolve_folder(root, run.path) if isinstance(root, str) else None
    for candidate in (split, osp.join(folder, split) if folder else None):
        if candidate and osp.isfile(candidate):
            try:
                with open(candidate, encoding='utf-8', errors='replace') as f:
                    return {osp.basename(line.strip()) for line in f if line.strip()}
            except OSError:
                return None
    return None


def own_label_maps(run: Run) -> Tuple[Set[str], Optional[str]]:
    """(stems of the label maps in the run's ``predictions_dir`` that belong to it, why there are
    none). A reused ``--out`` folder may hold another run's maps: where the folder has the
    runs' manifest (``sclip.predictions``), only a finished run of this fingerprint's listed
    files are its own; without one (older runs), only maps of images in the run's own split."""
    folder = run.predictions_dir
    if finished_label_maps is not None and osp.isfile(osp.join(folder, MANIFEST)):
        names = finished_label_maps(folder, run.fingerprint or '')
        if names is None:
            return set(), f'{folder} now holds the label maps of another (or an unfinished) run'
        return {osp.splitext(name)[0] for name in names if name.endswith('.png') and osp.basename(name) == name}, None
    try:
        stems = {osp.splitext(name)[0] for name in os.listdir(folder) if name.endswith('.png')}
    except OSError as error:
        return set(), f'{folder} cannot be read ({error.strerror})'
    own = split_stems(run)
    stems = stems if own is None else stems & own
    return stems, None if stems else f'{folder} holds no label map of the run\'s own images'


def choose_evenly(items: Sequence[str], count: int) -> List[str]:
    """``count`` items spread evenly over ``items`` (first and last included): deterministic."""
    if count <= 0 or not items:
        return []
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[0]]
    return [items[i * (len(items) - 1) // (count - 1)] for i in range(count)]


def colour_labels(labels: np.ndarray, palette: np.ndarray, reduce_zero_label: bool) -> np.ndarray:
    """RGB (H, W, 3) of a label map in file encoding: value v is class v (or v - 1 when
    ``reduce_zero_label``); 255, 0 under ``reduce_zero_label`` and unknown values are ignored."""
    table = np.tile(np.asarray(IGNORED_COLOUR, np.uint8), (256, 1))
    offset = 1 if reduce_zero_label else 0
    count = min(len(palette), 255 - offset)
    table[offset:offset + count] = palette[:count]
    return table[np.where((labels < 0) | (labels > 255), 255, labels).astype(np.uint8)]


def classes_of(labels: np.ndarray, reduce_zero_label: bool, count: int) -> Set[int]:
    """The class indices present in a label map in file encoding (as ``colour_labels`` reads it)."""
    offset = 1 if reduce_zero_label else 0
    values = np.unique(labels).astype(np.int64) - offset
    return {int(v) for v in values if 0 <= v < min(count, 255 - offset)}


class PictureError(Exception):
    """A picture the report leaves out, with the reason in one line (naming the file)."""


def open_picture(path: str) -> Image.Image:
    """``path`` opened lazily, refused when unreadable or larger than ``MAX_PIXELS`` before its
    pixels are decoded (a decompression bomb is a few KB on disk and gigabytes in memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise PictureError(f'{path}: too large to show ({error})') from None
    except (OSError, ValueError, SyntaxError) as error:
        raise PictureError(f'{path}: not a readable image ({error})') from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise PictureError(f'{path}: {width}x{height} pixels, too large to show (the report reads up to '
                           f'{MAX_PIXELS // 1_000_000} megapixels)')
    return image


def decoded(path: str, action):
    """``action(image)`` on the opened picture; any decoding failure is a ``PictureError``."""
    image = open_picture(path)
    try:
        with image:
            return action(image)
    except (OSError, ValueError, SyntaxError, MemoryError, EOFError, Image.DecompressionBombError) as error:
        raise PictureError(f'{path}: not a readable image ({error})') from None


def png_data_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format='PNG')
    return png_uri(buffer.getvalue())


def thumbnail_size(size: Tuple[int, int], width: int = THUMBNAIL_WIDTH) -> Tuple[int, int]:
    """(width, height) scaled down to at most ``width`` wide, keeping the aspect ratio."""
    new_width = min(width, size[0])
    return new_width, max(1, round(size[1] * new_width / size[0]))


def image_thumbnail(path: str, width: int = THUMBNAIL_WIDTH) -> Tuple[str, Tuple[int, int]]:
    """(PNG data URI, size) of the image at ``path`` at most ``width`` wide; ``PictureError``
    when it cannot be shown."""
    def shrink(image: Image.Image):
        size = thumbnail_size(image.size, width)
        image.draft('RGB', size)  # JPEG: decode at a reduced scale
        return png_data_uri(image.convert('RGB').resize(size, Image.BILINEAR)), size
    return decoded(path, shrink)


def label_thumbnail(path: str, size: Tuple[int, int], layout: DataLayout) -> Tuple[str, Set[int]]:
    """(the label map at ``path`` coloured and resized (nearest) to ``size``, the classes in it);
    ``PictureError`` when it is not a readable one-channel label map."""
    def shrink(image: Image.Image):
        if image.mode not in ('L', 'P', 'I', 'I;16', '1'):
            raise PictureError(f'{path}: not a label map (mode {image.mode}, one channel of class indices expected)')
        return np.asarray(image.resize(size, Image.NEAREST))
    labels = decoded(path, shrink)
    return (png_data_uri(Image.fromarray(colour_labels(labels, layout.palette, layout.reduce_zero_label))),
            classes_of(labels, layout.reduce_zero_label, len(layout.palette)))
