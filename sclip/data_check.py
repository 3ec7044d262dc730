"""Dataset verification: folders, split, image/label pairs, label values and sizes.

Why: a missing label or a label with values outside the class range makes mmseg crash
mid-run or, worse, count wrong. ``deep=False`` checks only file presence (cheap, run by
``tools/test.py`` before starting); ``deep=True`` also opens every label and image header.
"""
from __future__ import annotations

import inspect
import os
import os.path as osp
from typing import List

import numpy as np
from mmengine import Config
from PIL import Image

from .errors import SCLIPError

IGNORE_INDEX = 255  # mmseg's ignore index in label maps


def dataset_cfg(cfg: Config) -> dict:
    dataset = cfg.get('test_dataloader', {}).get('dataset')
    if not dataset:
        raise SCLIPError('config has no test_dataloader.dataset; inherit a configs/_base_/datasets/ file.')
    return dataset


def dataset_paths(dataset: dict):
    """(data_root, image dir, label dir, split file or None) of a dataset config."""
    root = dataset.get('data_root', '') or ''
    prefix = dataset.get('data_prefix', {}) or {}
    img_dir = osp.join(root, prefix.get('img_path', ''))
    seg_dir = osp.join(root, prefix['seg_map_path']) if prefix.get('seg_map_path') else None
    ann = dataset.get('ann_file') or None
    return root, img_dir, seg_dir, (osp.join(root, ann) if ann else None)


def dataset_classes(dataset: dict) -> List[str]:
    from mmseg.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cls = DATASETS.get(dataset['type'])
    if cls is None:
        raise SCLIPError(f"test_dataloader.dataset.type={dataset['type']!r} is not a registered dataset.")
    metainfo = dataset.get('metainfo') or {}
    return list(metainfo.get('classes') or cls.METAINFO['classes'])


def check_data_paths(cfg: Config) -> None:
    dataset = dataset_cfg(cfg)
    root, img_dir, seg_dir, split = dataset_paths(dataset)
    hint = 'set test_dataloader.dataset.data_root=DIR (see data/README.md).'
    if root and not osp.isdir(root):
        raise SCLIPError(f'data root {root!r} not found; {hint}')
    if not osp.isdir(img_dir):
        raise SCLIPError(f'image folder {img_dir!r} not found; {hint}')
    if seg_dir and not osp.isdir(seg_dir):
        raise SCLIPError(f'label folder {seg_dir!r} not found; {hint}')
    if split and not osp.isfile(split):
        raise SCLIPError(f'split file {split!r} not found; {hint}')


def expected_pairs(cfg: Config):
    """[(image path, label path)] the dataset would load, without building it."""
    from mmseg.registry import DATASETS
    dataset = dataset_cfg(cfg)
    _, img_dir, seg_dir, split = dataset_paths(dataset)
    cls = DATASETS.get(dataset['type'])
    defaults = {}
    for klass in reversed(cls.__mro__):  # a subclass's defaults override its parents'
        if '__init__' in vars(klass):
            defaults.update({k: v.default for k, v in inspect.signature(klass.__init__).parameters.items()
                             if v.default is not inspect.Parameter.empty})
    img_suffix = dataset.get('img_suffix', defaults.get('img_suffix', '.jpg'))
    seg_suffix = dataset.get('seg_map_suffix', defaults.get('seg_map_suffix', '.png'))
    if split:
        with open(split) as f:
            stems = [line.strip() for line in f if line.strip()]
    else:
        stems = sorted(osp.relpath(osp.join(d, name), img_dir)[:-len(img_suffix)]
                       for d, _, files in os.walk(img_dir) for name in files if name.endswith(img_suffix))
    reduce_zero_label = bool(dataset.get('reduce_zero_label', defaults.get('reduce_zero_label', False)))
    pairs = [(osp.join(img_dir, s + img_suffix), osp.join(seg_dir, s + seg_suffix) if seg_dir else None)
             for s in stems]
    return pairs, dataset, reduce_zero_label


def check_dataset(cfg: Config, deep: bool = True, expected_count: int = None) -> List[str]:
    """Problems found, one line each naming the file; an empty list means the data is fine."""
    try:
        check_data_paths(cfg)
    except SCLIPError as error:
        return [str(error)]
    pairs, dataset, reduce_zero = expected_pairs(cfg)
    problems = []
    if not pairs:
        problems.append(f'no images found for {dataset["type"]}; check test_dataloader.dataset.data_root')
    if expected_count is not None and len(pairs) != expected_count:
        problems.append(f'{dataset["type"]}: {len(pairs)} images, expected {expected_count}')
    num_classes = len(dataset_classes(dataset))
    for img_path, seg_path in pairs:
        if not osp.isfile(img_path):
            problems.append(f'{img_path}: image listed in the split is missing')
            continue
        if seg_path is not None and not osp.isfile(seg_path):
            problems.append(f'{img_path}: its label {seg_path} is missing')
            continue
        if deep and seg_path is not None:
            problems.extend(check_pair(img_path, seg_path, num_classes, reduce_zero))
    return problems


def check_pair(img_path: str, seg_path: str, num_classes: int, reduce_zero_label: bool) -> List[str]:
    """Label readable, values in the class range (or 255), same size as the image."""
    try:
        with Image.open(img_path) as image:
            image_size = image.size
            image.verify()
    except Exception:
        return [f'{img_path}: cannot be read as an image (corrupt or not an image)']
    try:
        with Image.open(seg_path) as label_image:
            label = np.asarray(label_image)
    except Exception:
        return [f'{seg_path}: cannot be read as a label image']
    problems = []
    if (label.shape[1], label.shape[0]) != image_size:
        problems.append(f'{seg_path}: label size {label.shape[1]}x{label.shape[0]} differs from '
                        f'image size {image_size[0]}x{image_size[1]}')
    values = np.unique(label)
    if reduce_zero_label:  # mmseg: 0 becomes 255 (ignored), v becomes v - 1, 255 stays
        values = np.where((values == 0) | (values == IGNORE_INDEX), IGNORE_INDEX, values.astype(np.int64) - 1)
    bad = [int(v) for v in values if v != IGNORE_INDEX and not 0 <= v < num_classes]
    if bad:
        problems.append(f'{seg_path}: label values {bad[:5]} outside 0..{num_classes - 1} (or 255)')
    return problems
