"""iSAID and UAVid: colour labels -> class indices, images and labels cut into overlapping patches,
as ``tools/dataset_converters/isaid.py`` (mmseg's) and ``uavid.py`` of likyoo/SegEarth-OV @ 3e22a96.

iSAID (val only, as SegEarth-OV's copy): SRC/val/images/*.zip (DOTA-v1.0 images, members
``images/P*.png``) and SRC/val/Semantic_masks/*.zip (members ``images/P*_instance_color_RGB.png``).
Patches 896x896 with 384 overlap; labels: the exact RGB of the 16 iSAID colours -> 0..15, any other
colour 0; an image smaller than a patch is padded bottom/right (image 0, label 255) in the official
three cases. Names: ``<P id>_<y0>_<y1>_<x0>_<x1>.png`` and ``..._instance_color_RGB.png``.

UAVid (its test_gt sequences, as SegEarth-OV): SRC/test_gt/<seq>/{Images,Labels}/*.png; patches
1080 high x 1280 wide, no overlap; labels: the 8 UAVid colours -> 0..7 with Moving_Car (7) merged into
Static_Car (3), any other colour 0; names ``<seq>_<frame>_<y0>_<y1>_<x0>_<x1>.png`` for both.

Images are read as PIL RGB (as there), labels by cv2 in RGB order (``mmcv.imread(..., channel_order='rgb')``).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import check_read, choose_splits, files_with_suffix, run_parallel
from .rs_common import (Archive, colour_to_index, decode, pad_to_patch, read_bytes, read_pil_rgb, require_folder,
                        slide_boxes, write_image, write_rgb)

ISAID_PATCH, ISAID_OVERLAP = 896, 384
ISAID_COLOURS = {(0, 0, 0): 0, (0, 0, 63): 1, (0, 63, 63): 2, (0, 63, 0): 3, (0, 63, 127): 4, (0, 63, 191): 5,
                 (0, 63, 255): 6, (0, 127, 63): 7, (0, 127, 127): 8, (0, 0, 127): 9, (0, 0, 191): 10,
                 (0, 0, 255): 11, (0, 191, 127): 12, (0, 127, 191): 13, (0, 127, 255): 14, (0, 100, 155): 15}
ISAID_LABEL_SUFFIX = '_instance_color_RGB.png'
UAVID_PATCH_H, UAVID_PATCH_W, UAVID_OVERLAP = 1080, 1280, 0
UAVID_COLOURS = {(0, 0, 0): 0, (128, 0, 0): 1, (128, 64, 128): 2, (192, 0, 192): 3, (0, 128, 0): 4,
                 (128, 128, 0): 5, (64, 64, 0): 6, (64, 0, 128): 3}  # Moving_Car (7) -> Static_Car (3)
IMAGE_PAD, LABEL_PAD = 0, 255


def crop(task: Tuple[str, Optional[str], bool, Dict, Tuple[int, int, int], str, str]) -> int:
    """Pad and cut one image or colour label (a file, or a member of a zip); ``pattern`` formats
    ``(y0, y1, x0, x1)`` into the patch's file name."""
    path, member, to_label, palette, patch, out_dir, pattern = task
    data = Archive(path).read(member) if member else read_bytes(path)
    name = f'{path}:{member}' if member else path
    patch_h, patch_w, overlap = patch
    if to_label:
        array = colour_to_index(decode(data, name, rgb=True), palette)
    else:
        array = read_pil_rgb(data, name)
    array = pad_to_patch(array, patch_h, patch_w, LABEL_PAD if to_label else IMAGE_PAD)
    h, w = array.shape[:2]
    boxes = slide_boxes(h, w, patch_h, patch_w, overlap)
    for y0, y1, x0, x1 in boxes:
        path = osp.join(out_dir, pattern.format(y0, y1, x0, x1))
        (write_image if to_label else write_rgb)(array[y0:y1, x0:x1], path)
    return len(boxes)


def isaid_id(name: str, label: bool) -> str:
    base = osp.basename(name).split('.')[0]
    return base.split('_')[0] if label else base


def prepare_isaid(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: the iSAID folder with val/images/*.zip and val/Semantic_masks/*.zip; DST: data/iSAID."""
    report = []
    available = [s for s in ('val',) if osp.isdir(osp.join(src, s))]
    for split in choose_splits(splits, available, f'{src} (iSAID: val/images/*.zip, val/Semantic_masks/*.zip)'):
        parts = {}
        for folder, label in (('images', False), ('Semantic_masks', True)):
            zips = files_with_suffix(require_folder(osp.join(src, split, folder), f'iSAID {split} {folder} zips'),
                                     '.zip')
            if not zips:
                raise SCLIPError(f'{osp.join(src, split, folder)}: holds no .zip; put the downloaded iSAID '
                                 f'{"Semantic_masks/images.zip" if label else "images/part*.zip"} there.')
            for path in zips:
                archive = Archive(path)
                suffix = ISAID_LABEL_SUFFIX if label else '.png'
                for member in archive.members(suffix, folder='images'):
                    if label or not member.endswith(ISAID_LABEL_SUFFIX):
                        parts.setdefault(label, {})[isaid_id(member, label)] = (archive, member)
        images, labels = parts.get(False, {}), parts.get(True, {})
        for key in sorted(set(images) ^ set(labels)):
            archive = (labels if key in labels else images)[key][0]
            raise SCLIPError(f'{archive.path}: holds {"the label" if key in labels else "the image"} of {key} but '
                             f'its {"image" if key in labels else "label"} is in no zip of '
                             f'{osp.join(src, split, "images" if key in labels else "Semantic_masks")}; '
                             'a part of the archive is missing: download it.')
        tasks = []
        for label, found in ((False, images), (True, labels)):
            out = osp.join(dst, 'ann_dir' if label else 'img_dir', split)
            end = ISAID_LABEL_SUFFIX if label else '.png'
            for key, (archive, member) in sorted(found.items()):
                tasks.append((archive.path, member, label, ISAID_COLOURS,
                              (ISAID_PATCH, ISAID_PATCH, ISAID_OVERLAP), out, key + '_{}_{}_{}_{}' + end))
        counts = run_parallel(crop, tasks, workers)
        report.append(f'{split}: {len(images)} iSAID images cut into {sum(counts[:len(images)])} patches '
                      f'({osp.join(dst, "img_dir", split)}) with their labels ({osp.join(dst, "ann_dir", split)})')
    return report


def prepare_uavid(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: the UAVid folder holding test_gt/<seq>/{Images,Labels}/*.png; DST: data/UAVid."""
    root = osp.join(src, 'test_gt')
    choose_splits(splits, ['test'] if osp.isdir(root) else [], f'{src} (UAVid: test_gt/<seq>/Images|Labels)')
    require_folder(root, 'UAVid test_gt/<seq>/{Images,Labels}')
    paths = files_with_suffix(root, '.png', recursive=True)
    if not paths:
        raise SCLIPError(f'{root}: holds no .png; unpack the UAVid sequences there.')
    found: Dict[bool, Dict[str, str]] = {}
    for path in paths:
        rel = osp.relpath(path, root).split(os.sep)
        if len(rel) != 3 or rel[1] not in ('Images', 'Labels'):
            raise SCLIPError(f'{path}: not in test_gt/<seq>/Images or Labels; unpack the UAVid release as it is.')
        found.setdefault(rel[1] == 'Labels', {})[f'{rel[0]}_{rel[2][:-len(".png")]}'] = path
    images, labels = found.get(False, {}), found.get(True, {})
    for key in sorted(set(images) ^ set(labels)):
        have = images.get(key) or labels.get(key)
        raise SCLIPError(f'{have}: has no {"label" if key in images else "image"} in the other folder of its '
                         'sequence; unpack the UAVid release again.')
    tasks = []
    for label, group in ((False, images), (True, labels)):
        out = osp.join(dst, 'ann_dir' if label else 'img_dir', 'test')
        for key, path in sorted(group.items()):
            tasks.append((check_read(path), None, label, UAVID_COLOURS,
                          (UAVID_PATCH_H, UAVID_PATCH_W, UAVID_OVERLAP), out, key + '_{}_{}_{}_{}.png'))
    counts = run_parallel(crop, tasks, workers)
    return [f'test: {len(images)} UAVid frames cut into {sum(counts[:len(images)])} patches '
            f'({osp.join(dst, "img_dir", "test")}) with their labels ({osp.join(dst, "ann_dir", "test")})']
