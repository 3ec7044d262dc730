"""COCO-Stuff10k: ``cocostuff-10k-v1.1`` -> ``annotations/{train,test}2014/*_labelTrainIds.png``
and ``images/{train,test}2014/*.jpg``, as mmseg's tools/dataset_converters/coco_stuff10k.py.

The release has ``images/<name>.jpg``, ``annotations/<name>.mat`` (variable ``S``: COCO's 182
ids 1-based, 0 = unlabelled) and ``imageLists/{train,test}.txt``. The table is COCO-Stuff164k's
shifted by one: raw 1-based id r -> (train id of r - 1) + 1, 0 stays 0. So labels hold 1..171
with 0 unlabelled, and the configs read them with ``reduce_zero_label=True`` (0 -> 255, k -> k-1),
which gives the same 171 classes as COCO-Stuff164k. Values outside the table are left unchanged
and ``S`` is cast to uint8, as in mmseg.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .coco_stuff import RAW_TO_TRAIN, STUFF_SUFFIX
from .common import (choose_splits, copy_file, first_folder, lookup_table, open_text, read_mat, run_parallel,
                     write_label_png)

RAW1_TO_TRAIN1 = {0: 0, **{raw + 1: train + 1 for raw, train in RAW_TO_TRAIN.items()}}
RAW1_TO_TRAIN1_LUT = lookup_table(RAW1_TO_TRAIN1)
SPLITS = {'train2014': 'train.txt', 'test2014': 'test.txt'}  # output folder -> imageLists file


def release_root(src: str) -> str:
    root = first_folder([src, osp.join(src, 'cocostuff-10k-v1.1')], ['imageLists', 'annotations'])
    if root is None:
        raise SCLIPError(f'{src}: no imageLists/ and annotations/ folders; pass the unzipped '
                         'cocostuff-10k-v1.1 folder as SRC.')
    return root


def read_list(path: str) -> List[str]:
    with open_text(path) as f:
        return [line.strip() for line in f if line.strip()]


def convert_item(task: Tuple[str, str, str, str]) -> str:
    """Copy one image and write its label map; both atomically."""
    image_src, mat_src, image_dst, label_dst = task
    label = read_mat(mat_src, 'S').astype(np.uint8)
    write_label_png(RAW1_TO_TRAIN1_LUT[label], label_dst)
    copy_file(image_src, image_dst)
    return label_dst


def prepare_coco_stuff10k(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write images and ``*_labelTrainIds.png`` for every listed image of each split."""
    root = release_root(src)
    available = [s for s, name in SPLITS.items() if osp.isfile(osp.join(root, 'imageLists', name))]
    report = []
    for split in choose_splits(splits, available, f'{root}/imageLists (train.txt, test.txt)'):
        names = read_list(osp.join(root, 'imageLists', SPLITS[split]))
        tasks = [(osp.join(root, 'images', n + '.jpg'), osp.join(root, 'annotations', n + '.mat'),
                  osp.join(dst, 'images', split, n + '.jpg'),
                  osp.join(dst, 'annotations', split, n + STUFF_SUFFIX)) for n in names]
        run_parallel(convert_item, tasks, workers)
        report.append(f'{split}: wrote {len(tasks)} images and label maps (1..171, 0 unlabelled) to '
                      f'{osp.join(dst, "images", split)} and {osp.join(dst, "annotations", split)}')
    return report
