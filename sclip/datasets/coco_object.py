"""COCO-Object: COCO val2017 with the 80 thing classes and background (81 classes).

Labels are ``annotations/val2017/*_instanceTrainIds.png``, written by
``tools/convert_coco_object.py`` from COCO-Stuff164k's ``*_labelTrainIds.png``.
"""
from mmseg.datasets import BaseSegDataset, COCOStuffDataset
from mmseg.registry import DATASETS

COCO_THINGS = COCOStuffDataset.METAINFO['classes'][:80]


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    METAINFO = dict(classes=('background',) + tuple(COCO_THINGS),
                    palette=[[0, 0, 0]] + COCOStuffDataset.METAINFO['palette'][:80])

    def __init__(self, img_suffix='.jpg', seg_map_suffix='_instanceTrainIds.png', **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
