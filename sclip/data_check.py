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

# Only images are pixel-checked once they are open; 255 is mmseg's ignore index.
IGNORE_INDEX = 255


def expected_pairs(cfg: Config):
    """[(image path, label path)] the dataset would load, without building it."""
    from .preflight import dataset_cfg, dataset_paths
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
    from .preflight import check_data_paths, dataset_classes
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
