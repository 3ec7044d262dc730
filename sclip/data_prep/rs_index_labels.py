"""LoveDA, OpenEarthMap, UDD5 and VDD: released with index labels, so preparing them only gathers
the evaluated split into the layout SegEarth-OV reads (likyoo/SegEarth-OV @ 3e22a96), checking every
label's values on the way (a colour visualisation or a foreign file is one line naming it).

- LoveDA (``tools/dataset_converters/loveda.py``, mmseg's): ``Train.zip`` / ``Val.zip`` (or them
  unzipped) -> ``img_dir/<split>`` and ``ann_dir/<split>`` of Rural + Urban ``images_png`` /
  ``masks_png``; labels 0 (no-data, ignored by reduce_zero_label) .. 7.
- OpenEarthMap (``openearthmap.py``): the ``OpenEarthMap_wo_xBD`` folder; the names in its
  ``val.txt`` found as ``<region>/images/<name>`` are copied to ``img_dir/val`` and their
  ``<region>/labels/<name>`` to ``ann_dir/val``; labels 0..8.
- UDD5 / VDD (no converter: dataset_prepare.md only links the downloads): ``<split>/src/*.JPG`` and
  ``<split>/gt/*.png`` checked (UDD5 0..4, VDD 0..6) and copied when DST differs.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import (choose_splits, copy_file, files_with_suffix, first_folder, open_text, reason, require_file,
                     run_parallel, same_folder, write_atomically)
from .rs_common import Archive, check_values

LOVEDA_SPLITS = {'train': 'Train', 'val': 'Val'}
LOVEDA_LOCATIONS = ('Rural', 'Urban')


def read_index_label(data: bytes, name: str) -> np.ndarray:
    """A label as mmseg's pillow backend decodes it; one line when it is not one channel."""
    import io
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as image:
            label = np.array(image)
    except Exception as error:  # noqa: BLE001 - PIL raises several types for bad files
        raise SCLIPError(f'{name}: cannot be read as a label ({reason(error)}); download it again.') from None
    if label.ndim != 2:
        raise SCLIPError(f'{name}: a label must be one channel of class indices, got shape {label.shape}; '
                         'is this a colour visualisation instead of the released label?')
    return label


def copy_checked(task: Tuple[str, Optional[str], str, int, str]) -> str:
    """Copy a file (or zip member) to DST; a label (``classes`` > 0) must hold only 0..classes-1."""
    path, member, out, classes, what = task
    if member:
        data = Archive(path).read(member)
        name = f'{path}:{member}'
    else:
        require_file(path)
        with open(path, 'rb') as f:
            data = f.read()
        name = path
    if classes:
        check_values(read_index_label(data, name), name, range(classes), f'the {what} classes 0..{classes - 1}')
    if member:
        write_atomically(out, lambda tmp: open(tmp, 'wb').write(data))
    elif not same_folder(path, out):
        copy_file(path, out)
    return out


def prepare_loveda(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC holds Train.zip / Val.zip (or Train/ and Val/ unzipped); DST is data/LoveDA."""
    available = [s for s, name in LOVEDA_SPLITS.items()
                 if osp.isfile(osp.join(src, name + '.zip')) or osp.isdir(osp.join(src, name))]
    report = []
    for split in choose_splits(splits, available, f'{src} (LoveDA: Train.zip, Val.zip)'):
        name = LOVEDA_SPLITS[split]
        zipped = osp.join(src, name + '.zip')
        archive = Archive(zipped) if osp.isfile(zipped) else None
        tasks, counts = [], {}
        for location in LOVEDA_LOCATIONS:
            for kind, folder, classes in (('images_png', 'img_dir', 0), ('masks_png', 'ann_dir', 8)):
                inside = f'{name}/{location}/{kind}'
                if archive is not None:
                    files = [(archive.path, m) for m in archive.members('.png', folder=inside)]
                else:
                    files = [(p, None) for p in files_with_suffix(osp.join(src, inside), '.png')]
                if not files:
                    where = f'{zipped}: has no member' if archive else f'{osp.join(src, inside)}: holds no'
                    raise SCLIPError(f'{where} {inside}/*.png; the LoveDA {name} download is incomplete: '
                                     'download it again.')
                counts[(location, kind)] = len(files)
                tasks += [(path, member, osp.join(dst, folder, split, osp.basename(member or path)), classes,
                           'LoveDA') for path, member in files]
            if counts[(location, 'images_png')] != counts[(location, 'masks_png')]:
                raise SCLIPError(f'{archive.path if archive else osp.join(src, name, location)}: '
                                 f'{counts[(location, "images_png")]} images but {counts[(location, "masks_png")]} '
                                 f'masks in {location}; the download is incomplete: download it again.')
        run_parallel(copy_checked, tasks, workers)
        images = sum(v for (_, kind), v in counts.items() if kind == 'images_png')
        report.append(f'{split}: {images} LoveDA images and labels (0..7, 0 = no-data) -> '
                      f'{osp.join(dst, "img_dir", split)}, {osp.join(dst, "ann_dir", split)}')
    return report


def prepare_openearthmap(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: the OpenEarthMap_wo_xBD folder (val.txt, <region>/images|labels/*.tif); DST: data/OpenEarthMap."""
    root = first_folder([src, osp.join(src, 'OpenEarthMap_wo_xBD')], ['val.txt'])
    choose_splits(splits, ['val'] if root else [], f'{src} (OpenEarthMap_wo_xBD with val.txt)')
    with open_text(osp.join(root, 'val.txt')) as f:
        names = [line.strip() for line in f if line.strip()]
    images = {osp.basename(p): p for p in files_with_suffix(root, '.tif', recursive=True)
              if osp.basename(osp.dirname(p)) == 'images'}
    missing = [n for n in names if n not in images]
    if missing:
        raise SCLIPError(f'{osp.join(root, "val.txt")}: lists {missing[0]} ({len(missing)} of {len(names)} names) '
                         'but no <region>/images/ folder holds it; unzip the whole OpenEarthMap_wo_xBD release.')
    tasks = []
    for name in names:
        image = images[name]
        label = osp.join(osp.dirname(osp.dirname(image)), 'labels', name)
        tasks.append((image, None, osp.join(dst, 'img_dir', 'val', name), 0, ''))
        tasks.append((label, None, osp.join(dst, 'ann_dir', 'val', name), 9, 'OpenEarthMap'))
    run_parallel(copy_checked, tasks, workers)
    return [f'val: {len(names)} OpenEarthMap images and labels (0..8) -> {osp.join(dst, "img_dir", "val")}, '
            f'{osp.join(dst, "ann_dir", "val")}']


def prepare_released(src: str, dst: str, workers: int, splits: Optional[Sequence[str]], name: str,
                     available: Sequence[str], classes: int) -> List[str]:
    """UDD5 / VDD: ``<split>/src/*.JPG`` with ``<split>/gt/*.png`` (index labels), checked and copied."""
    found = [s for s in available if osp.isdir(osp.join(src, s, 'src'))]
    report = []
    for split in choose_splits(splits, found, f'{src} ({name}: <split>/src, <split>/gt)'):
        images = files_with_suffix(osp.join(src, split, 'src'), '.JPG')
        if not images:
            raise SCLIPError(f'{osp.join(src, split, "src")}: holds no .JPG image; unpack the {name} release there.')
        tasks = []
        for image in images:
            stem = osp.basename(image)[:-len('.JPG')]
            tasks.append((image, None, osp.join(dst, split, 'src', stem + '.JPG'), 0, ''))
            tasks.append((osp.join(src, split, 'gt', stem + '.png'), None, osp.join(dst, split, 'gt', stem + '.png'),
                          classes, name))
        run_parallel(copy_checked, tasks, workers)
        verb = 'checked in place' if same_folder(src, dst) else f'copied to {osp.join(dst, split)}'
        report.append(f'{split}: {len(images)} {name} images and labels (0..{classes - 1}) {verb}')
    return report


def prepare_udd5(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: the release's UDD5 folder (train/ and val/, each src/ + gt/); DST: data/UDD/UDD/UDD5."""
    return prepare_released(src, dst, workers, splits, 'UDD5', ('train', 'val'), 5)


def prepare_vdd(src: str, dst: str, workers: int = 4, splits: Optional[Sequence[str]] = None) -> List[str]:
    """SRC: the release's VDD folder (train/, val/, test/, each src/ + gt/); DST: data/VDD."""
    return prepare_released(src, dst, workers, splits, 'VDD', ('train', 'val', 'test'), 7)
