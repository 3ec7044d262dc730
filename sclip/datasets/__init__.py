"""Benchmark datasets that mmseg lacks, in the official SCLIP definitions.

VOC21, COCO-Stuff (164k and 10k), Cityscapes and ADE20k use mmseg's own datasets.
"""
from .coco_object import COCOObjectDataset
from .large_vocab import ADE847Dataset, PascalContext459Dataset
from .pascal_context import PascalContext59Dataset, PascalContext60Dataset
from .pascal_voc20 import PascalVOC20Dataset
from .transforms import SCLIPLoadAnnotations, SCLIPLoadImage  # noqa: F401  (registers the transforms)

__all__ = ['ADE847Dataset', 'COCOObjectDataset', 'PascalContext459Dataset', 'PascalContext59Dataset', 'PascalContext60Dataset', 'PascalVOC20Dataset']
