"""Dataset preparation: download layouts -> the files the benchmark configs read.

One module per source format; ``tools/prepare_data.py`` is the command line. Each
``prepare_<benchmark>(src, dst, workers, splits)`` writes into DST (which may be SRC),
overwrites earlier outputs atomically, and returns the lines to print. Only numpy, Pillow
and scipy are needed (cityscapesscripts optionally, for Cityscapes polygon files).
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
from .context459 import prepare_context459
from .no_conversion import prepare_ade20k, prepare_voc
from .pascal_context import prepare_pascal_context

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
}


def prepare(benchmark: str, src: str, dst: str, workers: int = 4,
            splits: Optional[Sequence[str]] = None) -> List[str]:
    """Run the preparation of ``benchmark``; returns the report lines."""
    if benchmark not in PREPARERS:
        raise SCLIPError(f'unknown benchmark {benchmark!r}; choose one of {", ".join(PREPARERS)}.')
    if not osp.isdir(src):
        raise SCLIPError(f'{src}: SRC folder not found; pass the folder where the download was unpacked.')
    return PREPARERS[benchmark](src, dst, workers=workers, splits=splits)
