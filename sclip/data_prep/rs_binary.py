"""The single-class building / road / water sets of SegEarth-OV (likyoo/SegEarth-OV @ 3e22a96): one
pattern, a 0-255 mask -> 0/1 label, as its ``tools/dataset_converters/{whu,xBD,chn6-cug,deepglobe_road,
roadval,wbs-si,inria}.py`` (and dataset_prepare.md's two lines for WHU Sat.II).

Per label (transcribed): read by cv2 as grey, then ``label >= 128 -> 1, else 0`` (xBD: any value >= 1
-> 1, its targets holding damage levels), saved under the official name (``_mask`` / ``_target``
dropped where there) with the official extension, except WBS-SI: its converter saves the 0/1 masks
as ``.jpg`` again, whose compression puts 2s at edges; ours are lossless ``.png`` (see
configs/_base_/datasets/rs_wbs_si.py). Images are copied unchanged (``_sat`` dropped where there), and
only when DST differs or the official renames them. xBD keeps only ``*_pre_disaster*`` files (the
"move the pre images" step of dataset_prepare.md). Every label needs its image, else one line.

Inria: FCtL's test split (27 of the 180 train tiles; also its val split, 27) cut 1000x1000 with
mmseg's ``clip_big_image`` boxes (rs_common.clip_boxes), images from cv2 colour, labels thresholded,
names ``<tile>_<x0>_<y0>_<x1>_<y1>.png``.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import choose_splits, copy_file, files_with_suffix, run_parallel, same_folder, write_atomically
from .rs_common import clip_boxes, read_image, require_folder, threshold_128, write_image

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
WBS_SI_VAL = osp.join(osp.dirname(osp.abspath(__file__)), 'wbs_si_val.txt')  # SegEarth-OV's wbs-si_val.txt


@dataclass(frozen=True)
class BinarySet:
    """Where a binary set's images and 0-255 masks are in SRC and where the 0/1 labels go in DST."""
    name: str
    split: str  # the evaluated split; '' for a folder without one
    image_dir: str
    label_dir: str
    image_out: str
    label_out: str
    image_drop: str = ''  # dropped from image names (CHN6-CUG, DeepGlobe: '_sat')
    label_drop: str = ''  # dropped from label names ('_mask', xBD '_target')
    any_nonzero: bool = False  # xBD: value >= 1 -> 1
    keep: str = ''  # only files whose name holds this (xBD '_pre_disaster')
    label_ext: str = ''  # a forced extension for the labels (WBS-SI: '.png')
    names_file: str = ''  # only the stems listed there (WBS-SI val), also written to DST


BINARY_SETS = {
    'whu_aerial': BinarySet('WHU aerial', 'val', 'val/image', 'val/label', 'val/image', 'val/label_cvt'),
    'whu_sat2': BinarySet('WHU Sat.II', 'test', 'test/image', 'test/label', 'test/image', 'test/label_cvt'),
    'xbd_pre': BinarySet('xBD', 'test', 'test/images', 'test/targets', 'test/images_pre', 'test/targets_cvt_pre',
                         label_drop='_target', any_nonzero=True, keep='_pre_disaster'),
    'chn6_cug': BinarySet('CHN6-CUG', 'val', 'val/images', 'val/gt', 'val/image_cvt', 'val/label_cvt',
                          image_drop='_sat', label_drop='_mask'),
    'deepglobe_road': BinarySet('DeepGlobe road', '', 'img', 'gt', 'image_cvt', 'label_cvt', image_drop='_sat',
                                label_drop='_mask'),
    'massachusetts_road': BinarySet('Massachusetts road', '', 'img', 'gt', 'img', 'label_cvt'),
    'spacenet_road': BinarySet('SpaceNet road', '', 'img', 'gt', 'img', 'label_cvt'),
    'wbs_si': BinarySet('WBS-SI', 'val', 'Images', 'Masks', 'Images', 'Masks_cvt', label_ext='.png',
                        names_file='val.txt'),
}


def stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def binarise(task: Tuple[str, str, bool]) -> str:
    src, dst, any_nonzero = task
    grey = read_image(src, grey=True)
    return write_image(np.where(grey >= 1, 1, 0).astype(np.uint8) if any_nonzero else threshold_128(grey), dst)


def copy_task(task: Tuple[str, str]) -> str:
    return copy_file(*task)


def listed_names(spec: BinarySet) -> Optional[List[str]]:
    if not spec.names_file:
        return None
    with open(WBS_SI_VAL) as f:
        return [line.strip() for line in f if line.strip()]


def prepare_binary(key: str, src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    spec = BINARY_SETS[key]
    split = spec.split or 'test'
    choose_splits(splits, [split] if osp.isdir(osp.join(src, spec.label_dir)) else [],
                  f'{src} ({spec.name}: {spec.image_dir}/ and {spec.label_dir}/)')
    image_dir = require_folder(osp.join(src, spec.image_dir), f'{spec.name} images')
    label_dir = require_folder(osp.join(src, spec.label_dir), f'{spec.name} masks')
    images = {stem(p).replace(spec.image_drop, '') if spec.image_drop else stem(p): p
              for p in files_with_suffix(image_dir, '') if p.lower().endswith(IMAGE_SUFFIXES) and spec.keep in osp.basename(p)}
    labels = {stem(p).replace(spec.label_drop, '') if spec.label_drop else stem(p): p
              for p in files_with_suffix(label_dir, '') if p.lower().endswith(IMAGE_SUFFIXES)
              and spec.keep in osp.basename(p)}
    names = listed_names(spec)
    wanted = names if names is not None else sorted(labels)
    if not wanted:
        raise SCLIPError(f'{label_dir}: holds no {spec.name} mask; unpack the download there.')
    for name in wanted:
        if name not in labels:
            raise SCLIPError(f'{osp.join(label_dir, name)}.*: not found ({spec.name} mask listed in '
                             f'{WBS_SI_VAL if names else label_dir}); the download is incomplete.')
        if name not in images:
            raise SCLIPError(f'{labels[name]}: has no image {name}{spec.image_drop}.* in {image_dir}; the '
                             'download is incomplete: unpack it again.')
    label_tasks, image_tasks = [], []
    for name in wanted:
        label_name = name + (spec.label_ext or osp.splitext(labels[name])[1])
        label_tasks.append((labels[name], osp.join(dst, spec.label_out, label_name), spec.any_nonzero))
        image = images[name]
        out = osp.join(dst, spec.image_out, name + osp.splitext(image)[1])
        if not same_folder(image, out):
            image_tasks.append((image, out))
    run_parallel(binarise, label_tasks, workers)
    run_parallel(copy_task, image_tasks, workers)
    if names is not None:
        write_atomically(osp.join(dst, spec.names_file), lambda tmp: open(tmp, 'w').write('\n'.join(names) + '\n'))
    rule = 'value >= 1 -> 1' if spec.any_nonzero else 'value >= 128 -> 1'
    return [f'{split}: {len(label_tasks)} {spec.name} masks -> 0/1 labels ({rule}) in '
            f'{osp.join(dst, spec.label_out)}; {len(image_tasks)} images copied to {osp.join(dst, spec.image_out)}']


def binary_preparer(key: str):
    def prepare(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
        return prepare_binary(key, src, dst, workers, splits)
    prepare.__name__ = f'prepare_{key}'
    prepare.__doc__ = f'{BINARY_SETS[key].name}: 0-255 masks -> 0/1 labels (sclip/data_prep/rs_binary.py).'
    return prepare


# --- Inria: FCtL's splits, tiled --------------------------------------------------------------------

INRIA_CLIP = 1000
INRIA_SPLITS = {
    'split_val': ('chicago24', 'austin27', 'kitsap22', 'chicago28', 'tyrol-w6', 'austin8', 'kitsap5', 'vienna28',
                  'kitsap30', 'austin15', 'kitsap13', 'austin19', 'chicago6', 'austin9', 'chicago12', 'vienna7',
                  'kitsap18', 'tyrol-w24', 'vienna36', 'austin29', 'tyrol-w19', 'vienna29', 'chicago1', 'tyrol-w12',
                  'tyrol-w22', 'austin17', 'tyrol-w10'),
    'split_test': ('vienna3', 'chicago10', 'vienna20', 'austin1', 'tyrol-w25', 'vienna9', 'chicago14', 'vienna18',
                   'kitsap36', 'kitsap35', 'austin22', 'kitsap34', 'austin7', 'vienna11', 'kitsap14', 'kitsap25',
                   'austin12', 'vienna15', 'kitsap9', 'austin36', 'vienna6', 'chicago23', 'tyrol-w3', 'chicago26',
                   'austin24', 'tyrol-w1', 'tyrol-w36'),
}


def cut_inria(task: Tuple[str, str, bool]) -> int:
    path, out_dir, to_label = task
    image = read_image(path, grey=to_label)
    if to_label:
        image = threshold_128(image)
    base = osp.basename(path).split('.')[0].replace('_24label', '')
    boxes = clip_boxes(image.shape[0], image.shape[1], INRIA_CLIP, INRIA_CLIP)
    for x0, y0, x1, y1 in boxes:
        write_image(image[y0:y1, x0:x1], osp.join(out_dir, f'{base}_{x0}_{y0}_{x1}_{y1}.png'))
    return len(boxes)


def prepare_inria(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: AerialImageDataset/train of the download (images/*.tif, gt/*.tif); DST: data/Inria."""
    image_dir = require_folder(osp.join(src, 'images'), 'Inria images/*.tif')
    label_dir = require_folder(osp.join(src, 'gt'), 'Inria gt/*.tif')
    report = []
    for split in choose_splits(splits, list(INRIA_SPLITS), 'Inria (FCtL splits)'):
        tasks = []
        for tile in INRIA_SPLITS[split]:
            for folder, out, to_label in ((image_dir, 'img_dir', False), (label_dir, 'ann_dir', True)):
                path = osp.join(folder, tile + '.tif')
                if not osp.isfile(path):
                    raise SCLIPError(f'{path}: not found (tile {tile} of FCtL\'s {split}); the Inria download '
                                     'is incomplete: unpack AerialImageDataset/train again.')
                tasks.append((path, osp.join(dst, out, split), to_label))
        counts = run_parallel(cut_inria, tasks, workers)
        report.append(f'{split}: {len(INRIA_SPLITS[split])} Inria tiles cut into {sum(counts) // 2} images and '
                      f'0/1 labels ({osp.join(dst, "img_dir", split)}, {osp.join(dst, "ann_dir", split)})')
    return report
