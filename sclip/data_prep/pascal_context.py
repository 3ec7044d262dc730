"""PASCAL Context: the release's per-image ``.mat`` files -> ``SegmentationClassContext/*.png``
(60 classes) and ``ImageSets/SegmentationContext/{train,val}.txt``.

Source: ``trainval.tar.gz`` of https://cs.stanford.edu/~roozbeh/pascal-context/ holds
``trainval/<image id>.mat`` (variable ``LabelMap``, uint16: 1..459 index the release's
``labels.txt`` lines ``<id>: <name>``, 0 = unlabelled) and ``labels.txt``.

Mapping (459 -> 60): the 59 classes of the benchmark are looked up *by name* in labels.txt;
the one named ``CONTEXT59_CLASSES[k]`` becomes k + 1, every other id (the 400 rarer classes
and 0) becomes 0 = background. ``CONTEXT59_CLASSES`` is mmseg's PascalContextDataset order
(alphabetical, as configs/class_names/context60.txt after its "background" line). With the
official labels.txt this gives exactly the 59 ids of mmseg's converter (``_mapping`` in
tools/dataset_converters/pascal_context.py, sorted: 2 aeroplane, 9 bag, ..., 458 wood), which
makes the same maps from the Detail API's trainval_merged.json.

Split: an existing ``ImageSets/SegmentationContext/<split>.txt`` is kept. A missing one is
written from ``trainval_merged.json`` (the images' ``phase``, as mmseg does: 4996 train / 5104
val) when it lies in SRC or DST, else from VOC2010's ``ImageSets/Main/<split>.txt`` (the
release's original split, 4998 / 5105: one more val image than mmseg's).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import re
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import choose_splits, first_folder, open_text, read_mat, run_parallel, write_atomically, write_label_png

CONTEXT59_CLASSES = (
    'aeroplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird', 'boat', 'book', 'bottle', 'building',
    'bus', 'cabinet', 'car', 'cat', 'ceiling', 'chair', 'cloth', 'computer', 'cow', 'cup', 'curtain', 'dog',
    'door', 'fence', 'floor', 'flower', 'food', 'grass', 'ground', 'horse', 'keyboard', 'light', 'motorbike',
    'mountain', 'mouse', 'person', 'plate', 'platform', 'pottedplant', 'road', 'rock', 'sheep', 'shelves',
    'sidewalk', 'sign', 'sky', 'snow', 'sofa', 'table', 'track', 'train', 'tree', 'truck', 'tvmonitor', 'wall',
    'water', 'window', 'wood')
BACKGROUND = 0
LABEL_MAP_KEY = 'LabelMap'
SPLITS = ('train', 'val')
LABEL_DIR = 'SegmentationClassContext'
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')
MERGED_JSON = 'trainval_merged.json'
_LABEL_LINE = re.compile(r'^\s*(\d+)\s*:\s*(.+?)\s*$')


def read_label_names(path: str) -> Dict[int, str]:
    """``{id: name}`` from the release's labels.txt (``<id>: <name>`` per line)."""
    names = {}
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            match = _LABEL_LINE.match(line)
            if not match:
                raise SCLIPError(f'{path}:{number}: expected "<id>: <name>", got {line.strip()!r}; '
                                 "is this the PASCAL-Context release's labels.txt?")
            names[int(match.group(1))] = match.group(2)
    return names


def context_table(names: Dict[int, str], source: str = 'labels.txt') -> Dict[int, int]:
    """``{release id: 1..59}`` for the 59 benchmark classes, found by name."""
    by_name = {name: label_id for label_id, name in names.items()}
    missing = [c for c in CONTEXT59_CLASSES if c not in by_name]
    if missing:
        raise SCLIPError(f'{source}: has no class named {", ".join(missing)}; '
                         "use the PASCAL-Context release's labels.txt (459 classes).")
    return {by_name[name]: k + 1 for k, name in enumerate(CONTEXT59_CLASSES)}


def table_to_lut(table: Dict[int, int]) -> np.ndarray:
    """Lookup over every uint16 value: table ids -> 1..59, everything else -> background."""
    lut = np.full(1 << 16, BACKGROUND, np.uint8)
    for label_id, target in table.items():
        lut[label_id] = target
    return lut


def convert_mat(task: Tuple[str, str], lut: np.ndarray) -> str:
    src, dst = task
    label = np.asarray(read_mat(src, LABEL_MAP_KEY))
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer) or (label.size and (
            label.min() < 0 or label.max() >= len(lut))):
        raise SCLIPError(f'{src}: {LABEL_MAP_KEY} is not a 2-D map of class ids 0..{len(lut) - 1} '
                         f'(shape {label.shape}, {label.dtype}); is this a PASCAL-Context .mat file?')
    return write_label_png(lut[label], dst)


def release_folders(src: str) -> Tuple[str, str]:
    """(folder of the .mat files, path of labels.txt) in the unpacked release."""
    mat_dir = first_folder([osp.join(src, 'trainval'), src])
    if mat_dir is None or not any(n.endswith('.mat') for n in os.listdir(mat_dir)):
        raise SCLIPError(f'{src}: no .mat files in it or in {osp.join(src, "trainval")}; pass the folder '
                         'where the PASCAL-Context trainval.tar.gz was unpacked as SRC.')
    for labels in (osp.join(src, 'labels.txt'), osp.join(mat_dir, 'labels.txt'),
                   osp.join(osp.dirname(osp.abspath(src)), 'labels.txt')):
        if osp.isfile(labels):
            return mat_dir, labels
    raise SCLIPError(f'{osp.join(src, "labels.txt")}: not found; it comes with the .mat files in '
                     'trainval.tar.gz (459 class names).')


def read_ids(path: str) -> List[str]:
    with open_text(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def ids_from_json(path: str) -> Dict[str, List[str]]:
    """``{phase: sorted image ids}`` from the Detail API's trainval_merged.json."""
    try:
        with open_text(path) as f:
            images = json.load(f)['images']
        phases: Dict[str, List[str]] = {}
        for image in images:
            stem = osp.splitext(image['file_name'])[0] if 'file_name' in image else \
                f"{str(image['image_id'])[:4]}_{str(image['image_id'])[4:]}"
            phases.setdefault(image['phase'], []).append(stem)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SCLIPError(f'{path}: cannot read the image phases ({type(error).__name__}: {error}); '
                         'download trainval_merged.json again or remove it to use VOC2010 '
                         'ImageSets/Main.') from None
    return {phase: sorted(ids) for phase, ids in phases.items()}


def split_ids(dst: str, split: str, merged: Optional[Dict[str, List[str]]]) -> Tuple[List[str], str]:
    """(image ids of ``split``, where they came from)."""
    existing = osp.join(dst, SPLIT_DIR, f'{split}.txt')
    if osp.isfile(existing):
        return read_ids(existing), f'kept {existing}'
    if merged is not None:
        return merged.get(split, []), f'wrote {existing} from {MERGED_JSON}'
    main = osp.join(dst, 'ImageSets', 'Main', f'{split}.txt')
    if osp.isfile(main):
        return read_ids(main), f'wrote {existing} from {main}'
    raise SCLIPError(f'{main}: not found, and no {MERGED_JSON} in SRC or DST; DST must be the VOC2010 '
                     'folder of VOCtrainval_03-May-2010.tar (it has ImageSets/Main).')


def write_split(path: str, ids: Sequence[str]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            f.writelines(f'{i}\n' for i in ids)
    write_atomically(path, write)


def prepare_pascal_context(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``DST/SegmentationClassContext/<id>.png`` for every image of the splits, and missing split files."""
    mat_dir, labels = release_folders(src)
    lut = table_to_lut(context_table(read_label_names(labels), labels))
    json_path = first_folder([src, dst], [MERGED_JSON])
    merged = ids_from_json(osp.join(json_path, MERGED_JSON)) if json_path else None
    report, converted = [], set()
    for split in choose_splits(splits, SPLITS, 'PASCAL Context (train, val)'):
        ids, origin = split_ids(dst, split, merged)
        if not ids:
            raise SCLIPError(f'no image ids for split {split!r} ({origin}); check that file.')
        tasks = [(osp.join(mat_dir, f'{i}.mat'), osp.join(dst, LABEL_DIR, f'{i}.png')) for i in ids
                 if i not in converted]
        run_parallel(partial(convert_mat, lut=lut), tasks, workers)
        converted.update(ids)
        if origin.startswith('wrote'):
            write_split(osp.join(dst, SPLIT_DIR, f'{split}.txt'), ids)
        report.append(f'{split}: wrote {len(tasks)} label maps (0 = background, 1..59) to '
                      f'{osp.join(dst, LABEL_DIR)}; {origin} ({len(ids)} images)')
    if not osp.isdir(osp.join(dst, 'JPEGImages')):
        report.append(f'note: {osp.join(dst, "JPEGImages")} is missing: DST should be the VOC2010 folder of '
                      'VOCtrainval_03-May-2010.tar.')
    return report
