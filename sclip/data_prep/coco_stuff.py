"""COCO-Stuff164k: raw ``stuffthingmaps_trainval2017`` PNGs -> mmseg's ``*_labelTrainIds.png``.

The raw maps hold COCO's 182 category ids, 0-based: 0..90 are the 91 thing ids of the COCO
paper, 91..181 the 91 stuff classes, 255 unlabelled. Eleven thing ids were never annotated
(street sign, hat, shoe, eye glasses, plate, mirror, window, desk, door, blender, hair brush)
and are dropped, leaving 171 classes: train id = rank of the raw id among the ids in use, so
0..79 are the 80 things in COCO order and 80..170 the stuff classes. 255 stays ignored.
This is mmseg's tools/dataset_converters/coco_stuff164k.py table; like its per-id loop,
values outside the table (the unused ids, which never occur) are left unchanged.
"""
from __future__ import annotations

import os
import os.path as osp
from functools import partial
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .common import (choose_splits, copy_pair, files_with_suffix, lookup_table, read_label_png, run_parallel,
                     same_folder, write_label_png)

UNUSED_THING_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)  # 0-based raw ids never annotated
NUM_RAW_IDS = 182
RAW_IDS_IN_USE = tuple(i for i in range(NUM_RAW_IDS) if i not in UNUSED_THING_IDS)  # index = train id
NUM_THINGS = 80
UNLABELLED = 255
RAW_TO_TRAIN = {raw: train for train, raw in enumerate(RAW_IDS_IN_USE)}
STUFF_SUFFIX = '_labelTrainIds.png'
SPLITS = ('train2017', 'val2017')

RAW_TO_TRAIN_LUT = lookup_table(RAW_TO_TRAIN)  # 255 and unused ids map to themselves


def is_raw_label(name: str) -> bool:
    """Raw stuffthingmaps are ``<image id>.png``; converted files in the same folder carry ``TrainIds``."""
    return name.endswith('.png') and 'TrainIds' not in name and not name.startswith('.')


def raw_label_folder(src: str, split: str) -> Optional[str]:
    """Where the raw maps of ``split`` are: mmseg's ``annotations/<split>`` or the zip's ``<split>``."""
    for folder in (osp.join(src, 'annotations', split), osp.join(src, split),
                   osp.join(src, 'stuffthingmaps_trainval2017', split)):
        if osp.isdir(folder) and any(is_raw_label(n) for n in os.listdir(folder)):
            return folder
    return None


def raw_labels(folder: str) -> List[str]:
    return sorted(osp.join(folder, n) for n in os.listdir(folder) if is_raw_label(n))


def convert_raw_file(task: Tuple[str, str], lut: np.ndarray) -> str:
    """Map one raw label PNG through ``lut`` and write it atomically to ``task[1]``."""
    src, dst = task
    return write_label_png(lut[read_label_png(src)], dst)


def output_name(raw_path: str, suffix: str) -> str:
    """``000000000139.png`` -> ``000000000139<suffix>`` (mmseg: basename up to the first dot)."""
    return osp.basename(raw_path).split('.')[0] + suffix


def copy_images(src: str, dst: str, split: str, workers: int) -> Optional[int]:
    """Copy the ``split`` images into ``DST/images/<split>``: from ``SRC/images/<split>``, or from
    ``SRC/<split>`` (both zips unpacked into SRC, images and maps side by side); None if there
    is nothing to copy."""
    dst_images = osp.join(dst, 'images', split)
    candidates = [osp.join(src, 'images', split), osp.join(src, split)]
    found = [f for f in candidates if osp.isdir(f) and files_with_suffix(f, '.jpg')]
    if not found or same_folder(found[0], dst_images):
        return None
    names = files_with_suffix(found[0], '.jpg')
    run_parallel(copy_pair, [(p, osp.join(dst_images, osp.basename(p))) for p in names], workers)
    return len(names)


def image_note(dst: str, split: str) -> List[str]:
    folder = osp.join(dst, 'images', split)
    if osp.isdir(folder):
        return []
    return [f'note: {folder} is missing: unzip COCO {split}.zip into {osp.join(dst, "images")}.']


def prepare_coco_stuff164k(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``DST/annotations/<split>/*_labelTrainIds.png`` from the raw maps under SRC."""
    available = [s for s in SPLITS if raw_label_folder(src, s)]
    report = []
    for split in choose_splits(splits, available, f'{src} (raw COCO-Stuff maps in annotations/<split>/ or <split>/)'):
        folder = raw_label_folder(src, split)
        out_dir = osp.join(dst, 'annotations', split)
        tasks = [(p, osp.join(out_dir, output_name(p, STUFF_SUFFIX))) for p in raw_labels(folder)]
        run_parallel(partial(convert_raw_file, lut=RAW_TO_TRAIN_LUT), tasks, workers)
        report.append(f'{split}: wrote {len(tasks)} label maps (171 classes, 255 ignored) to {out_dir}')
        copied = copy_images(src, dst, split, workers)
        if copied is not None:
            report.append(f'{split}: copied {copied} images to {osp.join(dst, "images", split)}')
        report += image_note(dst, split)
    return report
