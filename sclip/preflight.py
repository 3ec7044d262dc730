"""Checks that run before a model is built or an image is read.

Why: a long evaluation that dies after loading weights because a path was wrong wastes
minutes; a class-name file with the wrong number of lines gives a silently wrong mIoU.
Each check raises ``SCLIPError`` with one line naming the key or path and the fix.
"""
from __future__ import annotations

import os
import os.path as osp

from mmengine import Config

from .class_names import load_class_names
from .data_check import check_data_paths, check_dataset, dataset_cfg, dataset_classes
from .errors import SCLIPError


def check_class_names(cfg: Config) -> None:
    model = cfg.get('model', {})
    path = model.get('class_names')
    if not path:
        raise SCLIPError('model.class_names is not set; point it at a class-name file.')
    names = load_class_names(path, model.get('class_name_separator', ', '))
    dataset = dataset_cfg(cfg)
    classes = dataset_classes(dataset)
    if names.num_classes != len(classes):
        raise SCLIPError(f'{path} lists {names.num_classes} classes but {dataset["type"]} has '
                         f'{len(classes)}; use the class-name file of this benchmark.')


def check_weights(cfg: Config) -> None:
    pretrained = cfg.get('model', {}).get('pretrained')
    if pretrained and (os.sep in str(pretrained) or str(pretrained).endswith(('.pt', '.pth', '.bin'))):
        if not osp.isfile(osp.expanduser(str(pretrained))):
            raise SCLIPError(f'model.clip_path={pretrained!r}: file not found; pass an existing '
                             "checkpoint or 'openai' to download OpenAI's weights.")


def preflight(cfg: Config, check_files: bool = True) -> None:
    """Every cheap check: data paths, class names, weights path, and (optionally) file pairs."""
    check_data_paths(cfg)
    check_class_names(cfg)
    check_weights(cfg)
    if check_files:
        problems = check_dataset(cfg, deep=False)
        if problems:
            more = f' (and {len(problems) - 1} more; run tools/check_data.py)' if len(problems) > 1 else ''
            raise SCLIPError(f'{problems[0]}{more}')
