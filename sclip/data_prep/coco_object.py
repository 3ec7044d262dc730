"""COCO-Object: COCO-Stuff164k labels -> ``*_instanceTrainIds.png`` (81 classes), as SCLIP's
official ``datasets/cvt_coco_object.py`` computes them.

Classes: 0 = background, 1..80 = the 80 COCO things in COCO order. The official converter
reads the raw stuffthingmaps: thing raw id r -> (its COCO-Stuff train id) + 1, every stuff id
-> 0, and unlabelled pixels (255) -> 0 as well, so they count as background, not ignored.
(Versions of this repository before this module kept 255: such labels must be made again.)
Like the official per-id loop, values outside its table (unused COCO ids, which never occur)
are left unchanged.

The same labels come from mmseg's ``*_labelTrainIds.png``: train id t < 80 -> t + 1, stuff
train ids 80..170 -> 0, 255 -> 0. Both routes agree on every value the release contains.
"""
from __future__ import annotations

import os
import os.path as osp
from functools import partial
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .coco_stuff import (NUM_THINGS, RAW_TO_TRAIN, SPLITS, STUFF_SUFFIX, UNLABELLED, convert_raw_file,
                         image_note, output_name, raw_label_folder, raw_labels)
from .common import choose_splits, lookup_table, run_parallel

OBJECT_SUFFIX = '_instanceTrainIds.png'
BACKGROUND = 0

# Official table, from raw ids: things shift by one, stuff and unlabelled become background.
RAW_TO_OBJECT = {raw: train + 1 if train < NUM_THINGS else BACKGROUND for raw, train in RAW_TO_TRAIN.items()}
RAW_TO_OBJECT[UNLABELLED] = BACKGROUND
RAW_TO_OBJECT_LUT = lookup_table(RAW_TO_OBJECT)

# The same table, from mmseg's COCO-Stuff train ids.
TRAIN_TO_OBJECT = {train: train + 1 if train < NUM_THINGS else BACKGROUND for train in RAW_TO_TRAIN.values()}
TRAIN_TO_OBJECT[UNLABELLED] = BACKGROUND
TRAIN_TO_OBJECT_LUT = lookup_table(TRAIN_TO_OBJECT)


def stuff_to_object(label: np.ndarray) -> np.ndarray:
    """Map a COCO-Stuff ``*_labelTrainIds.png`` array to COCO-Object ids."""
    return TRAIN_TO_OBJECT_LUT[label]


def raw_to_object(label: np.ndarray) -> np.ndarray:
    """Map a raw stuffthingmaps array (0-based COCO ids, 255 unlabelled) to COCO-Object ids."""
    return RAW_TO_OBJECT_LUT[label]


def convert_folder(label_dir: str, out_dir: Optional[str] = None, workers: int = 4) -> Tuple[int, str]:
    """Write ``*_instanceTrainIds.png`` to ``out_dir`` (default: ``label_dir``) from the raw maps
    in ``label_dir`` or, when there are none, from its ``*_labelTrainIds.png``.

    Returns (number written, 'raw' or 'labelTrainIds'); (0, '') if ``label_dir`` has neither.
    """
    out_dir = out_dir or label_dir
    raw = raw_labels(label_dir)
    if raw:
        tasks = [(p, osp.join(out_dir, output_name(p, OBJECT_SUFFIX))) for p in raw]
        run_parallel(partial(convert_raw_file, lut=RAW_TO_OBJECT_LUT), tasks, workers)
        return len(tasks), 'raw'
    stuff = sorted(n for n in os.listdir(label_dir) if n.endswith(STUFF_SUFFIX) and not n.startswith('.'))
    tasks = [(osp.join(label_dir, n), osp.join(out_dir, n[:-len(STUFF_SUFFIX)] + OBJECT_SUFFIX)) for n in stuff]
    run_parallel(partial(convert_raw_file, lut=TRAIN_TO_OBJECT_LUT), tasks, workers)
    return len(tasks), ('labelTrainIds' if tasks else '')


def source_folder(src: str, split: str) -> Optional[str]:
    """Raw maps of ``split`` if any, else the folder of mmseg's ``*_labelTrainIds.png``."""
    raw = raw_label_folder(src, split)
    if raw:
        return raw
    folder = osp.join(src, 'annotations', split)
    if osp.isdir(folder) and any(n.endswith(STUFF_SUFFIX) for n in os.listdir(folder)):
        return folder
    return None


def prepare_coco_object(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``DST/annotations/<split>/*_instanceTrainIds.png`` from COCO-Stuff164k under SRC."""
    available = [s for s in SPLITS if source_folder(src, s)]
    what = f'{src} (raw COCO-Stuff maps or *{STUFF_SUFFIX} in annotations/<split>/)'
    report = []
    for split in choose_splits(splits, available, what):
        out_dir = osp.join(dst, 'annotations', split)
        count, source = convert_folder(source_folder(src, split), out_dir, workers)
        origin = 'raw stuffthingmaps' if source == 'raw' else f'*{STUFF_SUFFIX}'
        report.append(f'{split}: wrote {count} COCO-Object label maps (0 = background, 1..80 things) '
                      f'to {out_dir}, from {origin}')
        report += image_note(dst, split)
    return report
