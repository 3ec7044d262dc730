"""Checks that run before a model is built or an image is read.

Why: a long evaluation that dies after loading weights because a path was wrong wastes
minutes; a class-name file with the wrong number of lines gives a silently wrong mIoU.
Each check raises ``SCLIPError`` with one line naming the key or path and the fix.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List

from mmengine import Config

from .class_names import load_class_names
from .errors import SCLIPError


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


def check_class_names(cfg: Config) -> None:
    model = cfg.get('model', {})
    path = model.get('class_names')
    if not path:
        raise SCLIPError('model.class_names is not set; point it at a class-name file.')
    names = load_class_names(path)
    dataset = dataset_cfg(cfg)
    classes = dataset_classes(dataset)
    if names.num_classes != len(classes):
        raise SCLIPError(f'{path} lists {names.num_classes} classes but {dataset["type"]} has '
                         f'{len(classes)}; use the class-name file of this benchmark.')


def check_weights(cfg: Config) -> None:
    pretrained = cfg.get('model', {}).get('pretrained')
    if pretrained and (os.sep in str(pretrained) or str(pretrained).endswith(('.pt', '.pth', '.bin'))):
        if not osp.isfile(osp.expanduser(str(pretrained))):
            raise SCLIPError(f'model.pretrained={pretrained!r}: file not found; pass an existing '
                             "checkpoint or 'openai' to download OpenAI's weights.")


def preflight(cfg: Config, check_files: bool = True) -> None:
    """Every cheap check: data paths, class names, weights path, and (optionally) file pairs."""
    check_data_paths(cfg)
    check_class_names(cfg)
    check_weights(cfg)
    if check_files:
        from .data_check import check_dataset
        problems = check_dataset(cfg, deep=False)
        if problems:
            more = f' (and {len(problems) - 1} more; run tools/check_data.py)' if len(problems) > 1 else ''
            raise SCLIPError(f'{problems[0]}{more}')
