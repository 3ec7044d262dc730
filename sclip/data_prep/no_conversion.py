"""PASCAL VOC 2012 and ADE20k: used as released, nothing to convert.

``prepare`` still checks that every image of each split has its label (so a broken unpack
shows up now, not mid-run) and, when DST is another folder, copies exactly the files the
benchmark reads there.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

from ..errors import SCLIPError
from .common import (check_read, check_write, choose_splits, copy_pair, files_with_suffix, first_folder, open_text,
                     run_parallel, same_folder)

VOC_SPLITS = ('train', 'val', 'trainval')
VOC_SPLIT_DIR = osp.join('ImageSets', 'Segmentation')
ADE_SPLITS = ('training', 'validation')


def check_pairs(pairs: Sequence[Tuple[str, str]], what: str) -> None:
    """SCLIPError naming the first missing file of ``pairs`` (source, destination)."""
    for src, dst in pairs:  # a ../ entry or a symlink out of SRC or into elsewhere: one line, before any copy
        check_read(src)
        check_write(dst)
    missing = [src for src, _ in pairs if not osp.isfile(src)]
    if missing:
        raise SCLIPError(f'{missing[0]}: not found ({len(missing)} files of {what} missing); '
                         'unpack the download again.')


def finish(root: str, dst: str, pairs: List[Tuple[str, str]], name: str, workers: int) -> str:
    if same_folder(root, dst):
        return f'{name} needs no conversion: {root} is ready ({len(pairs)} files checked).'
    run_parallel(copy_pair, pairs, workers)
    return f'{name} needs no conversion: copied {len(pairs)} files from {root} to {dst}.'


def prepare_voc(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Check VOC2012's segmentation splits; copy their images, labels and split files when DST differs."""
    root = first_folder([src, osp.join(src, 'VOC2012'), osp.join(src, 'VOCdevkit', 'VOC2012')],
                        ['JPEGImages', 'SegmentationClass', VOC_SPLIT_DIR])
    if root is None:
        raise SCLIPError(f'{src}: no VOC2012 folder (JPEGImages, SegmentationClass, {VOC_SPLIT_DIR}); '
                         'pass the folder where VOCtrainval_11-May-2012.tar was unpacked as SRC.')
    available = [s for s in VOC_SPLITS if osp.isfile(osp.join(root, VOC_SPLIT_DIR, f'{s}.txt'))]
    pairs, ids = [], set()
    for split in choose_splits(splits, available, osp.join(root, VOC_SPLIT_DIR)):
        split_file = osp.join(VOC_SPLIT_DIR, f'{split}.txt')
        pairs.append((osp.join(root, split_file), osp.join(dst, split_file)))
        with open_text(osp.join(root, split_file)) as f:
            ids.update(line.strip() for line in f if line.strip())
    for i in sorted(ids):
        for folder, suffix in (('JPEGImages', '.jpg'), ('SegmentationClass', '.png')):
            pairs.append((osp.join(root, folder, i + suffix), osp.join(dst, folder, i + suffix)))
    check_pairs(pairs, 'the VOC2012 segmentation splits')
    return [finish(root, dst, pairs, 'VOC2012', workers)]


def prepare_ade20k(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """Check ADEChallengeData2016 (every image has its label); copy it when DST differs."""
    root = first_folder([src, osp.join(src, 'ADEChallengeData2016'), osp.join(src, 'ade', 'ADEChallengeData2016')],
                        ['images', 'annotations'])
    if root is None:
        raise SCLIPError(f'{src}: no ADEChallengeData2016 folder (images/, annotations/); pass the folder '
                         'where ADEChallengeData2016.zip was unzipped as SRC.')
    available = [s for s in ADE_SPLITS if osp.isdir(osp.join(root, 'images', s))]
    pairs = []
    for split in choose_splits(splits, available, osp.join(root, 'images')):
        for image in files_with_suffix(osp.join(root, 'images', split), '.jpg'):
            label = osp.join('annotations', split, osp.basename(image)[:-len('.jpg')] + '.png')
            pairs.append((image, osp.join(dst, 'images', split, osp.basename(image))))
            pairs.append((osp.join(root, label), osp.join(dst, label)))
    check_pairs(pairs, 'ADEChallengeData2016')
    return [finish(root, dst, pairs, 'ADE20k', workers)]
