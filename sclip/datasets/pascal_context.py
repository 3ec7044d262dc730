"""PASCAL Context with 60 classes (background = 0) and with 59 (background ignored).

Thin names for mmseg's ``PascalContextDataset``/``PascalContextDataset59`` as the official
SCLIP configs call them; labels are ``SegmentationClassContext/*.png`` from mmseg's
converter, the split is ``ImageSets/SegmentationContext/val.txt``.
"""
from mmseg.datasets import PascalContextDataset, PascalContextDataset59
from mmseg.registry import DATASETS


@DATASETS.register_module()
class PascalContext60Dataset(PascalContextDataset):
    """60 classes, class 0 is background (``reduce_zero_label=False``)."""


@DATASETS.register_module()
class PascalContext59Dataset(PascalContextDataset59):
    """59 classes, background ignored (``reduce_zero_label=True``)."""
