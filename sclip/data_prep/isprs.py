"""ISPRS Potsdam and Vaihingen: the release's zips -> ``img_dir/<split>/*.png`` and
``ann_dir/<split>/*.png`` cut 512x512, as mmseg's ``tools/dataset_converters/potsdam.py`` and
``vaihingen.py`` (the copies in likyoo/SegEarth-OV @ 3e22a96, which its dataset_prepare.md runs).

Potsdam: ``2_Ortho_RGB.zip`` (``top_potsdam_<i>_<j>_RGB.tif``, at the top or in one folder) and
``5_Labels_all_noBoundary.zip`` (``top_potsdam_<i>_<j>_label_noBoundary.tif``; a member whose path
holds ``label`` is a label). Vaihingen: ``ISPRS_semantic_labeling_Vaihingen.zip`` (``top/*.tif``) and
``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip`` (``*_noBoundary.tif``; area9's
label is dropped, as there). Splits: the official area lists (24 train / 14 val Potsdam tiles,
16 / 17 Vaihingen areas; any other area goes to val, as there).

Transcribed per tile: the image is read by cv2 (BGR); a label's colour becomes the index of its
``2*B + 3*G + 4*R`` in mmseg's colour table (0 black = boundary, 1 white impervious surface,
2 blue building, 3 cyan low vegetation, 4 green tree, 5 yellow car, 6 red clutter), any other colour 0
(the dataset's reduce_zero_label then ignores 0); tiles are mmseg's ``clip_big_image`` boxes
(clip 512, stride 256; rs_common.clip_boxes), named ``<i>_<j>_<x0>_<y0>_<x1>_<y1>.png`` (Potsdam) or
``<area>_<x0>_<y0>_<x1>_<y1>.png`` (Vaihingen).
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import choose_splits, run_parallel
from .rs_common import Archive, clip_boxes, decode, write_image

CLIP_SIZE, STRIDE = 512, 256
# mmseg's color_map, in cv2's BGR channel order as it is compared there
BGR_COLOURS = ((0, 0, 0), (255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255))
WEIGHTS = np.array([2, 3, 4])

POTSDAM_SPLITS = {
    'train': ('2_10', '2_11', '2_12', '3_10', '3_11', '3_12', '4_10', '4_11', '4_12', '5_10', '5_11', '5_12',
              '6_10', '6_11', '6_12', '6_7', '6_8', '6_9', '7_10', '7_11', '7_12', '7_7', '7_8', '7_9'),
    'val': ('5_15', '6_15', '6_13', '3_13', '4_14', '6_14', '5_14', '2_13', '4_15', '2_14', '5_13', '4_13',
            '3_14', '7_13'),
}
VAIHINGEN_SPLITS = {
    'train': ('area1', 'area11', 'area13', 'area15', 'area17', 'area21', 'area23', 'area26', 'area28', 'area3',
              'area30', 'area32', 'area34', 'area37', 'area5', 'area7'),
    'val': ('area6', 'area24', 'area35', 'area16', 'area14', 'area22', 'area10', 'area4', 'area2', 'area20',
            'area8', 'area31', 'area33', 'area27', 'area38', 'area12', 'area29'),
}
POTSDAM_ZIPS = ('2_Ortho_RGB.zip', '5_Labels_all_noBoundary.zip')
VAIHINGEN_ZIPS = ('ISPRS_semantic_labeling_Vaihingen.zip',
                  'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip')


def colour_label(bgr: np.ndarray) -> np.ndarray:
    """mmseg's conversion: the index of each pixel's ``2B + 3G + 4R`` in the colour table, else 0."""
    h, w, c = bgr.shape
    flat = np.matmul(bgr.reshape(-1, c), WEIGHTS.reshape(3, 1))
    out = np.zeros_like(flat)
    for index, colour in enumerate(BGR_COLOURS):
        out[flat == np.matmul(np.array(colour), WEIGHTS.reshape(3, 1))] = index
    return out.reshape(h, w)


def cut(task: Tuple[str, str, bool, str, str]) -> int:
    """Tile one zip member into ``out_dir``; returns the number of tiles."""
    zip_path, member, to_label, out_dir, stem = task
    image = decode(Archive(zip_path).read(member), f'{zip_path}:{member}')
    if to_label:
        image = colour_label(image)
    h, w = image.shape[:2]
    boxes = clip_boxes(h, w, CLIP_SIZE, STRIDE)
    for x0, y0, x1, y1 in boxes:
        write_image(image[y0:y1, x0:x1].astype(np.uint8), osp.join(out_dir, f'{stem}_{x0}_{y0}_{x1}_{y1}.png'))
    return len(boxes)


def find_zips(src: str, names: Sequence[str], what: str) -> List[Archive]:
    missing = [n for n in names if not osp.isfile(osp.join(src, n))]
    if missing:
        raise SCLIPError(f'{osp.join(src, missing[0])}: not found; the {what} preparation needs '
                         f'{" and ".join(names)} in SRC (see data/README.md).')
    return [Archive(osp.join(src, n)) for n in names]


def run_tiles(tasks_by_split, dst: str, splits: Optional[Sequence[str]], workers: int, what: str) -> List[str]:
    report = []
    for split in choose_splits(splits, [s for s in ('train', 'val') if tasks_by_split.get(s)], what):
        tasks = tasks_by_split[split]
        tiles = sum(run_parallel(cut, [t for t in tasks if not t[2]], workers))
        labels = sum(run_parallel(cut, [t for t in tasks if t[2]], workers))
        report.append(f'{split}: cut {sum(1 for t in tasks if not t[2])} {what} tiles into {tiles} images '
                      f'({osp.join(dst, "img_dir", split)}) and {labels} labels ({osp.join(dst, "ann_dir", split)})')
    return report


def check_pairs(images: dict, labels: dict, zips: Sequence[Archive], what: str) -> None:
    """Every tile of a prepared split needs its image and its label, else one line naming the missing part."""
    for stem in sorted(set(images) ^ set(labels)):
        holder = zips[1] if stem in images else zips[0]
        raise SCLIPError(f'{holder.path}: has no {"label" if stem in images else "image"} of {what} tile {stem} '
                         '(the archive is incomplete or from another release): download it again.')


def prepare_potsdam(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC holds 2_Ortho_RGB.zip and 5_Labels_all_noBoundary.zip; DST is data/potsdam."""
    zips = find_zips(src, POTSDAM_ZIPS, 'Potsdam')
    found = {}
    for archive in zips:
        members = archive.members('.tif', max_depth=1)
        if not members:
            raise SCLIPError(f'{archive.path}: holds no .tif tile; download it again.')
        for member in members:
            parts = osp.basename(member).split('_')
            if len(parts) < 4:
                raise SCLIPError(f'{archive.path}: member {member} is not named top_potsdam_<i>_<j>_...tif; '
                                 'is this the ISPRS Potsdam release?')
            found.setdefault('label' in member, {})[f'{parts[2]}_{parts[3]}'] = (archive.path, member)
    check_pairs(found.get(False, {}), found.get(True, {}), zips, 'Potsdam')
    by_split = {}
    for to_label, tiles in found.items():
        for stem, (path, member) in tiles.items():
            split = 'train' if stem in POTSDAM_SPLITS['train'] else 'val'
            out = osp.join(dst, 'ann_dir' if to_label else 'img_dir', split)
            by_split.setdefault(split, []).append((path, member, to_label, out, stem))
    return run_tiles(by_split, dst, splits, workers, 'Potsdam')


def vaihingen_area(member: str) -> str:
    return osp.basename(member).split('_')[3].strip('.tif')  # as vaihingen.py (strip removes characters)


def prepare_vaihingen(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC holds ISPRS_semantic_labeling_Vaihingen.zip and its _ground_truth_eroded_COMPLETE.zip."""
    zips = find_zips(src, VAIHINGEN_ZIPS, 'Vaihingen')
    images = {vaihingen_area(m): (zips[0].path, m) for m in zips[0].members('.tif', folder='top')}
    labels = {vaihingen_area(m): (zips[1].path, m) for m in zips[1].members('.tif', max_depth=0)
              if 'area9' not in m and 'noBoundary' in m}
    for archive, found, what in ((zips[0], images, 'top/*.tif images'), (zips[1], labels, '*_noBoundary.tif labels')):
        if not found:
            raise SCLIPError(f'{archive.path}: holds no {what}; download it again.')
    images.pop('area9', None)  # the official run drops area9's label; its image would have no label
    check_pairs(images, labels, zips, 'Vaihingen')
    by_split = {}
    for to_label, tiles in ((False, images), (True, labels)):
        for area, (path, member) in tiles.items():
            split = 'train' if area in VAIHINGEN_SPLITS['train'] else 'val'
            out = osp.join(dst, 'ann_dir' if to_label else 'img_dir', split)
            by_split.setdefault(split, []).append((path, member, to_label, out, area))
    return run_tiles(by_split, dst, splits, workers, 'Vaihingen')
