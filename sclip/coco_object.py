"""COCO-Object labels from COCO-Stuff164k labels.

COCO-Stuff164k ``*_labelTrainIds.png`` (mmseg's converter) hold 0..79 for the 80 thing
classes in COCO order, 80..170 for stuff and 255 for unlabelled pixels. COCO-Object has
background = 0 and the things as 1..80: thing t -> t + 1, every stuff class -> 0
(background), 255 stays 255 (ignored).
"""
from __future__ import annotations

import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import List

import numpy as np
from PIL import Image

NUM_THINGS = 80
STUFF_SUFFIX = '_labelTrainIds.png'
OBJECT_SUFFIX = '_instanceTrainIds.png'


def stuff_to_object(label: np.ndarray) -> np.ndarray:
    """Map one COCO-Stuff trainId label map to COCO-Object ids."""
    lut = np.zeros(256, np.uint8)
    lut[:NUM_THINGS] = np.arange(1, NUM_THINGS + 1)
    lut[255] = 255
    return lut[label]


def convert_file(path: str) -> str:
    out = path[:-len(STUFF_SUFFIX)] + OBJECT_SUFFIX
    Image.fromarray(stuff_to_object(np.array(Image.open(path)))).save(out)
    return out


def convert_folder(folder: str, workers: int = 4) -> List[str]:
    """Write ``*_instanceTrainIds.png`` beside every ``*_labelTrainIds.png`` in ``folder``."""
    paths = sorted(osp.join(folder, f) for f in os.listdir(folder) if f.endswith(STUFF_SUFFIX))
    if workers <= 1:
        return [convert_file(p) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(convert_file, paths, chunksize=64))
