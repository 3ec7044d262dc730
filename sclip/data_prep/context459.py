"""PASCAL Context-459: the release's per-image ``.mat`` files -> ``annotations_detectron2/pc459_val/<id>.tif``,
as CAT-Seg's ``datasets/prepare_pascal_context_459.py`` (KU-CVLAB/CAT-Seg @ 6d3a188) writes them; ProxyCLIP's
and Trident's ``cfg_context459.py`` read this folder.

Source: ``trainval.tar.gz`` of https://cs.stanford.edu/~roozbeh/pascal-context/ (``trainval/<id>.mat``,
``LabelMap`` uint16: 1..459 index labels.txt, 0 = unlabelled) and ``labels.txt``.

Per image (transcribed): ``LabelMap - 1`` in uint16, so class k of labels.txt becomes k - 1 and 0
(unlabelled) wraps to 65535 (Detectron2's ignore_label), saved as a 16-bit TIFF. Only the val split, as
CAT-Seg (its file list ``pascalcontext_val.txt`` is mmseg's 5104 val images); here the list is
``ImageSets/SegmentationContext/val.txt`` when DST has it, else the images of phase ``val`` in
trainval_merged.json, else VOC2010's ``ImageSets/Main/val.txt`` (``pascal_context.split_ids``). CAT-Seg
skips a listed image without a .mat silently; here that is an error naming the file. labels.txt must
hold the 459 names of configs/class_names/context459.txt in that order (checked).
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..errors import SCLIPError
from .common import choose_splits, first_folder, read_mat, run_parallel, write_atomically
from .pascal_context import LABEL_MAP_KEY, MERGED_JSON, SPLIT_DIR, ids_from_json, read_label_names, \
    release_folders, split_ids, write_split

NUM_CLASSES = 459
LABEL_DIR = osp.join('annotations_detectron2', 'pc459_val')
CLASS_FILE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'class_names',
                      'context459.txt')


def check_labels(path: str) -> None:
    """labels.txt must list ids 1..459 with the names of our class file, in that order."""
    names = read_label_names(path)
    with open(CLASS_FILE) as f:
        ours = [line.rstrip('\n') for line in f if line.strip()]
    if sorted(names) != list(range(1, NUM_CLASSES + 1)) or [names[i] for i in range(1, NUM_CLASSES + 1)] != ours:
        raise SCLIPError(f'{path}: does not list the 459 classes of the PASCAL-Context release (1: accordion .. '
                         '459: wool); use the labels.txt of trainval.tar.gz.')


def convert_mat(task: Tuple[str, str]) -> str:
    src, dst = task
    label = np.asarray(read_mat(src, LABEL_MAP_KEY))
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer) or (label.size and (
            label.min() < 0 or label.max() > NUM_CLASSES)):
        raise SCLIPError(f'{src}: {LABEL_MAP_KEY} is not a 2-D map of class ids 0..{NUM_CLASSES} '
                         f'(shape {label.shape}, {label.dtype}); is this a PASCAL-Context .mat file?')
    out = (label.astype(np.uint16) - np.uint16(1)).astype(np.uint16)  # 0 wraps to 65535, as CAT-Seg
    write_atomically(dst, lambda tmp: Image.fromarray(out).save(tmp, format='TIFF'))
    return dst


def prepare_context459(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``DST/annotations_detectron2/pc459_val/<id>.tif`` for every val image (and a missing val.txt)."""
    mat_dir, labels = release_folders(src)
    check_labels(labels)
    json_path = first_folder([src, dst], [MERGED_JSON])
    merged = ids_from_json(osp.join(json_path, MERGED_JSON)) if json_path else None
    report = []
    for split in choose_splits(splits, ('val',), 'PASCAL Context-459 (val only, as CAT-Seg)'):
        ids, origin = split_ids(dst, split, merged)
        if not ids:
            raise SCLIPError(f'no image ids for split {split!r} ({origin}); check that file.')
        tasks = [(osp.join(mat_dir, f'{i}.mat'), osp.join(dst, LABEL_DIR, f'{i}.tif')) for i in ids]
        run_parallel(convert_mat, tasks, workers)
        if origin.startswith('wrote'):
            write_split(osp.join(dst, SPLIT_DIR, f'{split}.txt'), ids)
        report.append(f'{split}: wrote {len(tasks)} 16-bit label maps (0..458, 65535 = unlabelled) to '
                      f'{osp.join(dst, LABEL_DIR)}; {origin} ({len(ids)} images)')
    return report
