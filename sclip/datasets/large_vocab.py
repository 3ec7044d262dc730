"""The large-vocabulary benchmarks: ADE-847 (ADE20K-full) and PASCAL Context-459.

Labels are Detectron2's (MaskFormer's ``prepare_ade20k_full_sem_seg.py``, CAT-Seg's
``prepare_pascal_context_459.py``; ``tools/prepare_data.py ade847|context459``): 16-bit TIFFs
whose value is the class index 0..846 / 0..458 and 65535 = unlabelled (Detectron2's
``ignore_label``). ``ignore_index`` in the metainfo tells ``SCLIPLoadAnnotations`` and
``tools/check_data.py`` to read them as they are; the configs set the evaluator's
``ignore_index`` to the same value. Class names are those of configs/class_names/ade847.txt and
context459.txt (each whole line: ADE-847's first names repeat, e.g. two "pot" classes).
"""
import os.path as osp

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

IGNORE_16BIT = 65535
CLASS_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'class_names')


def class_lines(filename: str) -> tuple:
    with open(osp.join(CLASS_DIR, filename)) as f:
        return tuple(line.rstrip('\n') for line in f if line.strip())


@DATASETS.register_module()
class ADE847Dataset(BaseSegDataset):
    """ADE20K-full validation (2000 images), 847 classes, 65535 ignored."""
    METAINFO = dict(classes=class_lines('ade847.txt'), ignore_index=IGNORE_16BIT)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.tif', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class PascalContext459Dataset(BaseSegDataset):
    """PASCAL Context val (5104 images), all 459 classes, 65535 (unlabelled) ignored."""
    METAINFO = dict(classes=class_lines('context459.txt'), ignore_index=IGNORE_16BIT)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.tif', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
