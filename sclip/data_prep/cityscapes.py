"""Cityscapes: ``gtFine/<split>/<city>/*`` -> ``*_gtFine_labelTrainIds.png`` (19 classes, 255 ignored).

From ``*_gtFine_polygons.json`` (what mmseg's converter reads) with the ``cityscapesscripts``
package: its Annotation reader and ``createLabelImage(..., 'trainIds')``, the two steps of
``json2labelImg``, whose image we then save atomically. When the package is not installed,
or a polygon file is absent, from ``*_gtFine_labelIds.png`` (in the same zip) through the
id -> trainId table of cityscapesscripts' ``labels.py``. Both give the same map: every polygon
is drawn with its label, and the table maps that label's id to its train id.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import (choose_splits, copy_pair, files_with_suffix, first_folder, lookup_table, read_label_png,
                     reason, run_parallel, same_folder, write_label_png)

POLYGONS = '_gtFine_polygons.json'
LABEL_IDS = '_gtFine_labelIds.png'
TRAIN_IDS = '_gtFine_labelTrainIds.png'
IMAGES = '_leftImg8bit.png'
SPLITS = ('train', 'val', 'test')
IGNORE = 255

# cityscapesscripts/helpers/labels.py, id -> trainId for ids 0..33 (license plate, id -1, is never drawn).
LABEL_ID_TO_TRAIN_ID = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3,
    13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}
INSTALL_HINT = 'pip install cityscapesscripts'


def has_cityscapesscripts() -> bool:
    try:
        import cityscapesscripts.helpers.labels  # noqa: F401
    except ImportError:
        return False
    return True


def label_id_table() -> Dict[int, int]:
    """id -> trainId from cityscapesscripts when installed, else our copy of the same table."""
    if not has_cityscapesscripts():
        return dict(LABEL_ID_TO_TRAIN_ID)
    from cityscapesscripts.helpers.labels import labels
    return {label.id: label.trainId for label in labels if label.id >= 0}


def convert_label_ids(task: Tuple[str, str, np.ndarray]) -> str:
    src, dst, lut = task
    return write_label_png(lut[read_label_png(src)], dst)


def convert_polygons(task: Tuple[str, str]) -> str:
    src, dst = task
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2labelImg import createLabelImage
    try:
        annotation = Annotation()
        annotation.fromJsonFile(src)
        image = createLabelImage(annotation, 'trainIds')
    except (Exception, SystemExit) as error:  # noqa: BLE001 - it sys.exit()s on unknown labels
        raise SCLIPError(f'{src}: cannot be converted ({reason(error)}); the file is corrupt or not a '
                         'Cityscapes polygon file: unzip gtFine_trainvaltest.zip again.') from None
    return write_label_png(np.array(image), dst)


def dataset_root(src: str) -> str:
    root = first_folder([src, osp.join(src, 'cityscapes')], ['gtFine'])
    if root is None:
        raise SCLIPError(f'{src}: no gtFine/ folder; pass the folder where gtFine_trainvaltest.zip '
                         'was unzipped as SRC.')
    return root


def label_tasks(gt_dir: str, out_dir: str, use_polygons: bool, lut: np.ndarray) -> Tuple[list, list]:
    """(polygon tasks, labelIds tasks) for every annotated image under ``gt_dir``."""
    polygons = {p[:-len(POLYGONS)]: p for p in files_with_suffix(gt_dir, POLYGONS, recursive=True)}
    label_ids = {p[:-len(LABEL_IDS)]: p for p in files_with_suffix(gt_dir, LABEL_IDS, recursive=True)}
    from_json, from_png = [], []
    for stem in sorted(set(polygons) | set(label_ids)):
        dst = osp.join(out_dir, osp.relpath(stem, gt_dir) + TRAIN_IDS)
        if stem in polygons and (use_polygons or stem not in label_ids):
            if not use_polygons:
                raise SCLIPError(f'{polygons[stem]}: converting polygon files needs cityscapesscripts: '
                                 f'{INSTALL_HINT}')
            from_json.append((polygons[stem], dst))
        else:
            from_png.append((label_ids[stem], dst, lut))
    return from_json, from_png


def prepare_cityscapes(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Write ``DST/gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` (and copy images when DST differs)."""
    root = dataset_root(src)
    available = [s for s in SPLITS if osp.isdir(osp.join(root, 'gtFine', s))]
    use_polygons = has_cityscapesscripts()
    lut = lookup_table(label_id_table(), default=IGNORE)
    report = []
    for split in choose_splits(splits, available, f'{root}/gtFine'):
        gt_dir, out_dir = osp.join(root, 'gtFine', split), osp.join(dst, 'gtFine', split)
        from_json, from_png = label_tasks(gt_dir, out_dir, use_polygons, lut)
        run_parallel(convert_polygons, from_json, workers)
        run_parallel(convert_label_ids, from_png, workers)
        report.append(f'{split}: wrote {len(from_json) + len(from_png)} label maps (19 classes, 255 ignored) to '
                      f'{out_dir}: {len(from_json)} from *{POLYGONS}, {len(from_png)} from *{LABEL_IDS}')
        image_dir = osp.join(root, 'leftImg8bit', split)
        if not same_folder(root, dst) and osp.isdir(image_dir):
            images = files_with_suffix(image_dir, IMAGES, recursive=True)
            pairs = [(p, osp.join(dst, 'leftImg8bit', split, osp.relpath(p, image_dir))) for p in images]
            run_parallel(copy_pair, pairs, workers)
            report.append(f'{split}: copied {len(pairs)} images to {osp.join(dst, "leftImg8bit", split)}')
        if not osp.isdir(osp.join(dst, 'leftImg8bit', split)):
            report.append(f'note: {osp.join(dst, "leftImg8bit", split)} is missing: unzip '
                          f'leftImg8bit_trainvaltest.zip into {dst}.')
    return report
