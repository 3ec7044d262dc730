"""Dataset preparation: download layouts -> the files the benchmark configs read.

One module per source format; ``tools/prepare_data.py`` is the command line. Each
``prepare_<benchmark>(src, dst, workers, splits)`` writes into DST (which may be SRC),
overwrites earlier outputs atomically, and returns the lines to print. Only numpy, Pillow,
scipy and OpenCV are needed (cityscapesscripts optionally, for Cityscapes polygon files).
"""
from __future__ import annotations

import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import SCLIPError
from .ade847 import prepare_ade847
from .cityscapes import prepare_cityscapes
from .coco_object import prepare_coco_object
from .coco_stuff import prepare_coco_stuff164k
from .coco_stuff10k import prepare_coco_stuff10k
from .common import confined
from .context459 import prepare_context459
from .no_conversion import prepare_ade20k, prepare_voc
from .pascal_context import prepare_pascal_context
from .isaid_uavid import prepare_isaid, prepare_uavid
from .isprs import prepare_potsdam, prepare_vaihingen
from .rs_binary import BINARY_SETS, binary_preparer, prepare_inria
from .rs_index_labels import prepare_loveda, prepare_openearthmap, prepare_udd5, prepare_vdd

PREPARERS: Dict[str, Callable[..., List[str]]] = {
    'voc': prepare_voc,
    'context': prepare_pascal_context,
    'coco_stuff164k': prepare_coco_stuff164k,
    'coco_stuff10k': prepare_coco_stuff10k,
    'coco_object': prepare_coco_object,
    'cityscapes': prepare_cityscapes,
    'ade20k': prepare_ade20k,
    'ade847': prepare_ade847,
    'context459': prepare_context459,
    # SegEarth-OV's remote-sensing sets (configs/_base_/datasets/rs_<key>.py)
    'openearthmap': prepare_openearthmap,
    'loveda': prepare_loveda,
    'isaid': prepare_isaid,
    'potsdam': prepare_potsdam,
    'vaihingen': prepare_vaihingen,
    'uavid': prepare_uavid,
    'udd5': prepare_udd5,
    'vdd': prepare_vdd,
    'inria': prepare_inria,
    **{key: binary_preparer(key) for key in BINARY_SETS},
}


def prepare(benchmark: str, src: str, dst: str, workers: int = 4,
            splits: Optional[Sequence[str]] = None) -> List[str]:
    """Run the preparation of ``benchmark``; returns the report lines."""
    if benchmark not in PREPARERS:
        raise SCLIPError(f'unknown benchmark {benchmark!r}; choose one of {", ".join(PREPARERS)}.')
    if not osp.isdir(src):
        raise SCLIPError(f'{src}: SRC folder not found; pass the folder where the download was unpacked.')
    with confined(src, dst):
        return PREPARERS[benchmark](src, dst, workers=workers, splits=splits)
