"""COCO-Object labels from COCO-Stuff164k (kept for older imports).

The conversion lives in ``sclip.data_prep.coco_object``; it follows SCLIP's official
converter, where unlabelled pixels (255) become background 0. Labels written by older
versions of this module kept 255 and must be converted again.
"""
from .data_prep.coco_object import (OBJECT_SUFFIX, RAW_TO_OBJECT, TRAIN_TO_OBJECT, convert_folder,
                                    prepare_coco_object, raw_to_object, stuff_to_object)
from .data_prep.coco_stuff import NUM_THINGS, STUFF_SUFFIX

__all__ = ['NUM_THINGS', 'OBJECT_SUFFIX', 'RAW_TO_OBJECT', 'STUFF_SUFFIX', 'TRAIN_TO_OBJECT', 'convert_folder',
           'prepare_coco_object', 'raw_to_object', 'stuff_to_object']
