"""The 17 remote-sensing benchmarks of SegEarth-OV (likyoo/SegEarth-OV @ 3e22a96), as its
``custom_datasets.py`` and configs define them.

SegEarth-OV evaluates four of them with mmseg's own datasets (``LoveDADataset``, ``iSAIDDataset``,
``PotsdamDataset``, ``ISPRSDataset`` for Vaihingen) and the others with the classes below, which keep
its class names, suffixes and flags: several benchmarks share one class (the three road test sets
``RoadValDataset``, WHU aerial and WHU Sat.II ``WHUDataset``). ``RS_DATASET_TYPES`` says which class
reads which benchmark (key = ``configs/_base_/datasets/rs_<key>.py``).

Labels (what ``tools/prepare_data.py <key>`` writes, sclip/data_prep/remote_sensing*.py): 8-bit class
indices, 255 ignored (mmseg's default, also the iSAID/UAVid padding). ``reduce_zero_label`` is True for
LoveDA, Potsdam and Vaihingen (0 = no-data / boundary -> 255), False for the rest: OpenEarthMap's 0
("background" in SegEarth-OV's class list; the dataset's docstring calls it ignored) is scored as a
class, as the official config does. The binary building/road/water sets hold 0 = background,
1 = the object.
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

WHITE_ON_BLACK = [[0, 0, 0], [255, 255, 255]]


# Explicit signatures: sclip.data_check reads the suffix defaults from __init__ (inspect.signature).
@DATASETS.register_module()
class OpenEarthMapDataset(BaseSegDataset):
    """OpenEarthMap (``OpenEarthMap_wo_xBD`` val): 9 classes, 0 = background scored, ``.tif`` both."""
    METAINFO = dict(
        classes=('background', 'bareland', 'grass', 'pavement', 'road', 'tree', 'water', 'cropland', 'building'),
        palette=[[0, 0, 0], [128, 0, 0], [0, 255, 36], [148, 148, 148], [255, 255, 255], [34, 97, 38],
                 [0, 69, 255], [75, 181, 73], [222, 31, 7]])

    def __init__(self, img_suffix='.tif', seg_map_suffix='.tif', reduce_zero_label=False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class UAVidDataset(BaseSegDataset):
    """UAVid test tiles: 7 classes (Moving_Car merged into car by the converter), 255 = padding."""
    METAINFO = dict(
        classes=('background', 'building', 'road', 'car', 'tree', 'vegetation', 'human'),
        palette=[[0, 0, 0], [128, 0, 0], [128, 64, 128], [192, 0, 192], [0, 128, 0], [128, 128, 0], [64, 64, 0]])

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, ignore_index=255,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ignore_index=ignore_index, **kwargs)


@DATASETS.register_module()
class UDD5Dataset(BaseSegDataset):
    """UDD5 val: 5 classes, ``.JPG`` images (upper case, as the release), index ``.png`` labels."""
    METAINFO = dict(
        classes=('vegetation', 'building', 'road', 'vehicle', 'other'),
        palette=[[107, 142, 35], [102, 102, 156], [128, 64, 128], [0, 0, 142], [0, 0, 0]])

    def __init__(self, img_suffix='.JPG', seg_map_suffix='.png', reduce_zero_label=False, ignore_index=255,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ignore_index=ignore_index, **kwargs)


@DATASETS.register_module()
class VDDDataset(BaseSegDataset):
    """VDD test: 7 classes, ``.JPG`` images, index ``.png`` labels (no palette in the official class)."""
    METAINFO = dict(classes=('other', 'wall', 'road', 'vegetation', 'vehicle', 'roof', 'water'))

    def __init__(self, img_suffix='.JPG', seg_map_suffix='.png', reduce_zero_label=False, ignore_index=255,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ignore_index=ignore_index, **kwargs)


@DATASETS.register_module()
class WHUDataset(BaseSegDataset):
    """WHU building, aerial (``.png``) and Sat.II (``.tif``, set in its config): 0/1."""
    METAINFO = dict(classes=('background', 'building'), palette=WHITE_ON_BLACK)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class xBDDataset(WHUDataset):  # noqa: N801 - SegEarth-OV's name
    """xBD pre-disaster test images: 0/1 (any damage level >= 1 is building); WHU's classes and suffixes."""


@DATASETS.register_module()
class InriaDataset(WHUDataset):
    """Inria aerial image labeling, FCtL's test split tiled 1000x1000: 0/1; WHU's classes and suffixes."""


@DATASETS.register_module()
class RoadValDataset(BaseSegDataset):
    """GRNet's GlobalRoadSet_Val test sets (DeepGlobe, Massachusetts, SpaceNet): ``.jpg`` / 0/1 ``.png``."""
    METAINFO = dict(classes=('background', 'road'), palette=WHITE_ON_BLACK)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class CHN6_CUGDataset(RoadValDataset):  # noqa: N801 - SegEarth-OV's name
    """CHN6-CUG road val: the road sets' classes and suffixes (``.jpg`` images, 0/1 ``.png`` labels)."""


@DATASETS.register_module()
class WaterDataset(BaseSegDataset):
    """Water bodies in satellite images (WBS-SI), the listed val images: ``.jpg`` images and 0/1 masks.
    The defaults are SegEarth-OV's (its converter saves the masks as lossy ``.jpg``); rs_wbs_si.py reads
    our converter's lossless ``.png`` masks."""
    METAINFO = dict(classes=('background', 'water'), palette=[[0, 0, 0], [0, 235, 255]])

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.jpg', reduce_zero_label=False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


# benchmark key -> the registered dataset type its config uses (SegEarth-OV's choice)
RS_DATASET_TYPES = {
    'openearthmap': 'OpenEarthMapDataset',
    'loveda': 'LoveDADataset',  # mmseg's
    'isaid': 'iSAIDDataset',  # mmseg's
    'potsdam': 'PotsdamDataset',  # mmseg's
    'vaihingen': 'ISPRSDataset',  # mmseg's
    'uavid': 'UAVidDataset',
    'udd5': 'UDD5Dataset',
    'vdd': 'VDDDataset',
    'whu_aerial': 'WHUDataset',
    'whu_sat2': 'WHUDataset',
    'inria': 'InriaDataset',
    'xbd_pre': 'xBDDataset',
    'chn6_cug': 'CHN6_CUGDataset',
    'deepglobe_road': 'RoadValDataset',
    'massachusetts_road': 'RoadValDataset',
    'spacenet_road': 'RoadValDataset',
    'wbs_si': 'WaterDataset',
}
RS_KEYS = tuple(RS_DATASET_TYPES)
