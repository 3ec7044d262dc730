"""The qualitative grid's pictures: find each image, its ground truth and each method's saved
label map, colour label maps with the benchmark's palette, embed them as PNG data URIs.

Why: the report is one file to mail or attach, so every picture is a small inline PNG.
Label maps are read as mmseg's ``--out`` writes them: class index per pixel, plus one when
the dataset uses ``reduce_zero_label`` (the same encoding as the ground-truth files).
"""
from __future__ import annotations

import base64
import functools
import inspect
import io
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .collect import Run, resolve_folder

THUMBNAIL_WIDTH = 256
IGNORED_COLOUR = (255, 255, 255)  # ignore index 255 / reduced background / out-of-range values


@dataclass
class DataLayout:
    """Where a benchmark's images and labels are, and how to colour its label maps."""
    img_dir: Optional[str]
    img_suffix: str
    seg_dir: Optional[str]
    seg_suffix: str
    reduce_zero_label: bool
    palette: np.ndarray  # (classes, 3) uint8


def class_default(cls: Optional[type], name: str, fallback: Any) -> Any:
    """The default of ``name`` in the first ``__init__`` along ``cls``'s MRO that declares it."""
    for klass in getattr(cls, '__mro__', ()):
        parameter = inspect.signature(klass.__init__).parameters.get(name) if '__init__' in vars(klass) else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return fallback


def dataset_class(data_type: Optional[str]) -> Optional[type]:
    import sclip  # noqa: F401  (registers sclip's datasets in mmseg's registry)
    from mmseg.registry import DATASETS
    return DATASETS.get(data_type) if data_type else None


def fallback_palette(count: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 3), dtype=np.uint8)


def dataset_config(run: Run) -> Dict[str, Any]:
    """The test dataset's config entry of the run's config file with its overrides applied, or
    {} when the file cannot be loaded here (the ground truth is then left out)."""
    config = run.identity.get('config') or {}
    path = config.get('file') or ''
    if not osp.isfile(path):
        return {}
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(dict(config.get('overrides') or {}))
        return dict(cfg.test_dataloader.dataset)
    except Exception:  # noqa: BLE001 - optional: any config that does not load means "no ground truth"
        return {}


def data_layout(run: Run) -> DataLayout:
    data = run.identity.get('data') or {}
    cls = dataset_class(data.get('type'))
    palette = (cls.METAINFO.get('palette') if cls is not None else None) or fallback_palette()
    dataset = dataset_config(run)
    seg_prefix = (dataset.get('data_prefix') or {}).get('seg_map_path')
    root = resolve_folder(data.get('root'), run.path)
    seg_dir = resolve_folder(osp.join(root, seg_prefix), run.path) if root and seg_prefix else None

    def setting(name: str, fallback: Any) -> Any:
        """From the run's identity, else its config, else the dataset class's default."""
        for source in (data, dataset):
            if source.get(name) is not None:
                return source[name]
        return class_default(cls, name, fallback)
    return DataLayout(img_dir=resolve_folder(data.get('img_dir'), run.path), img_suffix=setting('img_suffix', '.jpg'),
                      seg_dir=seg_dir, seg_suffix=setting('seg_map_suffix', '.png'),
                      reduce_zero_label=bool(setting('reduce_zero_label', False)),
                      palette=np.asarray(palette, np.uint8).reshape(-1, 3))


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


def prediction_stems(runs: Sequence[Run]) -> List[str]:
    """Stems with a saved label map in every run's ``predictions_dir``, sorted."""
    common = None
    for run in runs:
        stems = {osp.splitext(f)[0] for f in os.listdir(run.predictions_dir) if f.endswith('.png')}
        common = stems if common is None else common & stems
    return sorted(common or ())


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
    return table[labels.astype(np.uint8)]


def png_data_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format='PNG')
    return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode('ascii')


def thumbnail_size(size: Tuple[int, int], width: int = THUMBNAIL_WIDTH) -> Tuple[int, int]:
    """(width, height) scaled down to at most ``width`` wide, keeping the aspect ratio."""
    new_width = min(width, size[0])
    return new_width, max(1, round(size[1] * new_width / size[0]))


def image_thumbnail(path: str, width: int = THUMBNAIL_WIDTH) -> Tuple[str, Tuple[int, int]]:
    with Image.open(path) as image:
        picture = image.convert('RGB')
    size = thumbnail_size(picture.size, width)
    return png_data_uri(picture.resize(size, Image.BILINEAR)), size


def label_thumbnail(path: str, size: Tuple[int, int], layout: DataLayout) -> Optional[str]:
    """The label map at ``path`` coloured and resized (nearest) to ``size``; None if unreadable."""
    try:
        with Image.open(path) as image:
            labels = np.asarray(image.resize(size, Image.NEAREST))
    except OSError:
        return None
    if labels.ndim != 2:
        return None
    return png_data_uri(Image.fromarray(colour_labels(labels, layout.palette, layout.reduce_zero_label)))
