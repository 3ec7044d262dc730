"""PASCAL VOC 2012 without its background class (VOC20)."""
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class PascalVOC20Dataset(PascalVOCDataset):
    """The VOC21 files, with label 0 (background) ignored via ``reduce_zero_label``."""
    METAINFO = dict(classes=PascalVOCDataset.METAINFO['classes'][1:],
                    palette=PascalVOCDataset.METAINFO['palette'][1:])

    def __init__(self, ann_file, reduce_zero_label=True, **kwargs):
        super().__init__(ann_file=ann_file, reduce_zero_label=reduce_zero_label, **kwargs)
