"""Benchmark datasets that mmseg lacks, in the official SCLIP definitions.

VOC21, COCO-Stuff (164k and 10k), Cityscapes and ADE20k use mmseg's own datasets, as do four of
SegEarth-OV's remote-sensing sets (LoveDA, iSAID, Potsdam, Vaihingen: see remote_sensing.py).
"""
from .coco_object import COCOObjectDataset
from .large_vocab import ADE847Dataset, PascalContext459Dataset
from .pascal_context import PascalContext59Dataset, PascalContext60Dataset
from .pascal_voc20 import PascalVOC20Dataset
from .remote_sensing import (CHN6_CUGDataset, InriaDataset, OpenEarthMapDataset, RoadValDataset, UAVidDataset,
                             UDD5Dataset, VDDDataset, WaterDataset, WHUDataset, xBDDataset)
from .transforms import SCLIPLoadAnnotations, SCLIPLoadImage  # noqa: F401  (registers the transforms)
from .cliper_image import CLIPerLoadImage  # noqa: F401

__all__ = ['ADE847Dataset', 'CHN6_CUGDataset', 'COCOObjectDataset', 'InriaDataset', 'OpenEarthMapDataset',
           'PascalContext459Dataset', 'PascalContext59Dataset', 'PascalContext60Dataset', 'PascalVOC20Dataset',
           'RoadValDataset', 'UAVidDataset', 'UDD5Dataset', 'VDDDataset', 'WaterDataset', 'WHUDataset', 'xBDDataset']
