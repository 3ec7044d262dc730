"""Dataset verification: folders, split, image/label pairs, label values and sizes.

Why: a missing label or a label with values outside the class range makes mmseg crash
mid-run or, worse, count wrong. ``deep=False`` checks only file presence (cheap, run by
``tools/test.py`` before starting); ``deep=True`` decodes every image and label with the
checks of ``SCLIPLoadImage``/``SCLIPLoadAnnotations`` (so it rejects exactly what a run
would), and adds what only a look at the whole config shows: images too thin for one patch
after the pipeline's ``Resize``, EXIF orientations, and COCO-Object labels of an old converter.
"""
from __future__ import annotations

import inspect
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from mmengine import Config

from .errors import SCLIPError

IGNORE_INDEX = 255  # mmseg's ignore index in label maps
IMAGE_LOADERS = ('LoadImageFromFile', 'SCLIPLoadImage')
LABEL_LOADERS = ('LoadAnnotations', 'SCLIPLoadAnnotations')


def dataset_cfg(cfg: Config) -> dict:
    dataset = cfg.get('test_dataloader', {}).get('dataset')
    if not dataset:
        raise SCLIPError('config has no test_dataloader.dataset; inherit a configs/_base_/datasets/ file.')
    return dataset


def dataset_paths(dataset: dict):
    """(data_root, image dir, label dir, split file or None) of a dataset config."""
    root = dataset.get('data_root', '') or ''
    prefix = dataset.get('data_prefix', {}) or {}
    img_dir = osp.join(root, prefix.get('img_path', ''))
    seg_dir = osp.join(root, prefix['seg_map_path']) if prefix.get('seg_map_path') else None
    ann = dataset.get('ann_file') or None
    return root, img_dir, seg_dir, (osp.join(root, ann) if ann else None)


def dataset_classes(dataset: dict) -> List[str]:
    from mmseg.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cls = DATASETS.get(dataset['type'])
    if cls is None:
        raise SCLIPError(f"test_dataloader.dataset.type={dataset['type']!r} is not a registered dataset.")
    metainfo = dataset.get('metainfo') or {}
    return list(metainfo.get('classes') or cls.METAINFO['classes'])


def check_data_paths(cfg: Config) -> None:
    dataset = dataset_cfg(cfg)
    root, img_dir, seg_dir, split = dataset_paths(dataset)
    hint = 'set test_dataloader.dataset.data_root=DIR (see data/README.md).'
    if root and not osp.isdir(root):
        raise SCLIPError(f'data root {root!r} not found; {hint}')
    if not osp.isdir(img_dir):
        raise SCLIPError(f'image folder {img_dir!r} not found; {hint}')
    if seg_dir and not osp.isdir(seg_dir):
        raise SCLIPError(f'label folder {seg_dir!r} not found; {hint}')
    if split and not osp.isfile(split):
        raise SCLIPError(f'split file {split!r} not found; {hint}')


def expected_pairs(cfg: Config):
    """[(image path, label path)] the dataset would load, without building it."""
    from mmseg.registry import DATASETS
    dataset = dataset_cfg(cfg)
    _, img_dir, seg_dir, split = dataset_paths(dataset)
    cls = DATASETS.get(dataset['type'])
    defaults = {}
    for klass in reversed(cls.__mro__):  # a subclass's defaults override its parents'
        if '__init__' in vars(klass):
            defaults.update({k: v.default for k, v in inspect.signature(klass.__init__).parameters.items()
                             if v.default is not inspect.Parameter.empty})
    img_suffix = dataset.get('img_suffix', defaults.get('img_suffix', '.jpg'))
    seg_suffix = dataset.get('seg_map_suffix', defaults.get('seg_map_suffix', '.png'))
    if split:
        with open(split) as f:
            stems = [line.strip() for line in f if line.strip()]
    else:
        stems = sorted(osp.relpath(osp.join(d, name), img_dir)[:-len(img_suffix)]
                       for d, _, files in os.walk(img_dir) for name in files if name.endswith(img_suffix))
    reduce_zero_label = bool(dataset.get('reduce_zero_label', defaults.get('reduce_zero_label', False)))
    pairs = [(osp.join(img_dir, s + img_suffix), osp.join(seg_dir, s + seg_suffix) if seg_dir else None)
             for s in stems]
    return pairs, dataset, reduce_zero_label


@dataclass(frozen=True, eq=False)
class DatasetPlan:
    """A config's test split, listed once: its folders as configured and the image/label pairs
    a run reads (``pairs`` None, ``listing_error`` set, when it could not be listed, e.g. a
    missing folder: the pre-flight checks report that, the identity records no count)."""
    type: Optional[str]
    root: str
    img_dir: str
    seg_map_dir: Optional[str]
    split: Optional[str]           # the split file's path; None: every image under img_dir
    ann_file: Optional[str]        # the split as the config names it (what the identity records)
    img_suffix: Optional[str]      # as the config sets them (None: the dataset class's default)
    seg_map_suffix: Optional[str]
    reduce_zero_label: bool
    pairs: Optional[Tuple[Tuple[str, Optional[str]], ...]] = None
    listing_error: Optional[BaseException] = None

    @property
    def num_images(self) -> Optional[int]:
        return None if self.pairs is None else len(self.pairs)


def list_dataset(cfg: Config) -> DatasetPlan:
    """The ``DatasetPlan`` of ``cfg``: the only place a run lists its dataset (``expected_pairs``)."""
    dataset = cfg.test_dataloader.dataset
    root, img_dir, seg_dir, split = dataset_paths(dataset)
    try:
        pairs, _, reduce_zero_label = expected_pairs(cfg)
        pairs, error = tuple(tuple(pair) for pair in pairs), None
    except Exception as listing_error:  # noqa: BLE001 - a missing folder is reported by the pre-flight checks
        pairs, error, reduce_zero_label = None, listing_error, bool(dataset.get('reduce_zero_label', False))
    return DatasetPlan(type=dataset.get('type'), root=root, img_dir=img_dir, seg_map_dir=seg_dir, split=split,
                       ann_file=dataset.get('ann_file') or None, img_suffix=dataset.get('img_suffix'),
                       seg_map_suffix=dataset.get('seg_map_suffix'), reduce_zero_label=reduce_zero_label,
                       pairs=pairs, listing_error=error)


@dataclass
class DataReport:
    """``problems``: a run would fail or count wrong (one line each, naming the file);
    ``notes``: worth knowing, not an error (e.g. an EXIF orientation that the run applies)."""
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    pairs: int = 0  # image/label pairs listed by the split

    def extend(self, other: 'DataReport') -> None:
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)


@dataclass(frozen=True)
class PairRules:
    """What a dataset config demands of each image/label pair.

    ``resize``: (w, h) -> (w, h) of the pipeline's ``Resize`` (None: no resize);
    ``background_unlabelled``: unlabelled pixels must be background 0, so 255 is a defect
    (COCO-Object, whose official converter maps them to 0).
    """
    num_classes: int
    reduce_zero_label: bool = False
    label_map: Optional[Dict[int, int]] = None
    resize: Optional[Callable[[Tuple[int, int]], Tuple[int, int]]] = None
    patch_size: int = 16
    background_unlabelled: bool = False
    color_type: str = 'color'
    image_backend: str = 'cv2'
    ignore_index: int = IGNORE_INDEX  # 65535 for the 16-bit large-vocabulary labels
    label_backend: str = 'pillow'


def check_dataset(cfg: Config, deep: bool = True, expected_count: int = None,
                  listing: Optional[DatasetPlan] = None) -> List[str]:
    """Problems found, one line each naming the file; an empty list means the data is fine."""
    return review_dataset(cfg, deep, expected_count, listing).problems


def review_dataset(cfg: Config, deep: bool = True, expected_count: int = None,
                   listing: Optional[DatasetPlan] = None) -> DataReport:
    """Problems and notes of the config's test split (see ``DataReport``); ``listing``: the
    split as the run plan listed it (else it is listed here)."""
    report = DataReport()
    try:
        check_data_paths(cfg)
    except SCLIPError as error:
        report.problems.append(str(error))
        return report
    if listing is None:
        pairs, dataset, reduce_zero = expected_pairs(cfg)
    elif listing.pairs is None:
        raise listing.listing_error
    else:
        pairs, dataset, reduce_zero = list(listing.pairs), dataset_cfg(cfg), listing.reduce_zero_label
    report.pairs = len(pairs)
    if not pairs:
        report.problems.append(f'no images found for {dataset["type"]}; check test_dataloader.dataset.data_root')
    if expected_count is not None and len(pairs) != expected_count:
        report.problems.append(f'{dataset["type"]}: {len(pairs)} images, expected {expected_count} (the official '
                               'split); pass --no-count to check a subset')
    rules = pair_rules(cfg, dataset, reduce_zero) if deep else None
    for img_path, seg_path in pairs:
        if not osp.isfile(img_path):
            report.problems.append(f'{img_path}: image listed in the split is missing')
            continue
        if seg_path is not None and not osp.isfile(seg_path):
            report.problems.append(f'{img_path}: its label {seg_path} is missing')
            continue
        if deep:
            report.extend(check_pair(img_path, seg_path, rules))
    return report


def pair_rules(cfg: Config, dataset: dict, reduce_zero_label: bool) -> PairRules:
    """The ``PairRules`` of a config: class count and label map from the dataset, loading
    options and ``Resize`` from its pipeline, patch size from ``model.arch``."""
    from mmseg.registry import DATASETS
    classes = dataset_classes(dataset)
    custom = (dataset.get('metainfo') or {}).get('classes')
    label_map = DATASETS.get(dataset['type']).get_label_map(custom) if custom else None
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline') or []
    image_loader = next((t for t in pipeline if t.get('type') in IMAGE_LOADERS), {})
    label_loader = next((t for t in pipeline if t.get('type') in LABEL_LOADERS), {})
    resize = next((t for t in pipeline if t.get('type') == 'Resize'), None)
    return PairRules(num_classes=len(classes), reduce_zero_label=reduce_zero_label, label_map=label_map,
                     resize=resize_function(resize) if resize else None,
                     patch_size=patch_size(cfg.get('model', {}).get('arch')),
                     background_unlabelled=dataset['type'] == 'COCOObjectDataset',
                     color_type=image_loader.get('color_type', 'color'),
                     image_backend=image_loader.get('imdecode_backend', 'cv2'),
                     label_backend=label_loader.get('imdecode_backend', 'pillow'),
                     ignore_index=DATASETS.get(dataset['type']).METAINFO.get('ignore_index', IGNORE_INDEX))


def patch_size(arch: Optional[str]) -> int:
    """The ViT patch size named by an open_clip/OpenAI model name ('ViT-L-14-336' -> 14); 16 otherwise."""
    match = re.search(r'ViT-[^-/]+[-/](\d+)', str(arch or ''))
    return int(match.group(1)) if match else 16


def resize_function(resize_cfg: dict) -> Callable[[Tuple[int, int]], Tuple[int, int]]:
    """(w, h) -> (w, h) of mmcv's ``Resize`` with this config, computed as its transform does
    (``rescale_size`` when keep_ratio, else the scale itself; ``scale_factor`` when no scale)."""
    from mmcv.image.geometric import _scale_size, rescale_size
    from mmcv.transforms import Resize
    options = {k: v for k, v in resize_cfg.items() if k != 'type'}
    resize = Resize(**options)

    def resized(size: Tuple[int, int]) -> Tuple[int, int]:
        scale = tuple(resize.scale) if resize.scale else _scale_size(size, resize.scale_factor)
        return tuple(rescale_size(size, scale)) if resize.keep_ratio else tuple(scale)
    return resized


def check_pair(img_path: str, seg_path: Optional[str], rules: PairRules) -> DataReport:
    """Everything ``SCLIPLoadImage``/``SCLIPLoadAnnotations`` would reject in this pair, plus
    an image thinner than one patch after ``Resize``, EXIF orientations (a problem only when
    they make the sizes disagree) and 255 in a COCO-Object label."""
    from .datasets.transforms import (AXIS_SWAPPING_ORIENTATIONS, decode_image, decode_label,
                                      exif_orientation, raw_values, read_file, size_problem,
                                      value_problem)
    report = DataReport()
    try:
        image_data = read_file(img_path)
        height, width = decode_image(image_data, img_path, rules.color_type, rules.image_backend).shape[:2]
    except SCLIPError as error:
        report.problems.append(str(error))
        return report
    new_w, new_h = rules.resize((width, height)) if rules.resize else (width, height)
    if min(new_w, new_h) < rules.patch_size:
        resized = f' resizes to {new_w}x{new_h},' if rules.resize else ' is'
        report.problems.append(f'{img_path} ({width}x{height}){resized} thinner than one {rules.patch_size}-pixel '
                               'patch; remove it from the split')
    orientation, _ = exif_orientation(image_data)
    if seg_path is None:
        if orientation != 1:
            report.notes.append(f'{img_path} has EXIF orientation {orientation}, which the official pipeline '
                                'applies to the image')
        return report
    try:
        label = decode_label(read_file(seg_path), seg_path, rules.label_backend)
    except SCLIPError as error:
        report.problems.append(str(error))
        return report
    values = value_problem(label, seg_path, rules.num_classes, rules.reduce_zero_label, rules.label_map,
                           rules.ignore_index)
    size = size_problem(seg_path, label.shape, img_path, (height, width), image_data)
    report.problems.extend(p for p in (values, size) if p)
    if orientation != 1 and size is None:
        swapped = ' (its sides are swapped, the label matches the rotated size)' \
            if orientation in AXIS_SWAPPING_ORIENTATIONS else ''
        report.notes.append(f'{img_path} has EXIF orientation {orientation}, which the official pipeline applies to '
                            f'the image but not to its label {seg_path}{swapped}; the sizes agree, so check that the '
                            'label is drawn on the oriented image')
    if rules.background_unlabelled and IGNORE_INDEX in raw_values(label):
        report.problems.append(f'{seg_path}: contains 255, but the official COCO-Object converter maps unlabelled '
                               'pixels to background 0 (this label was made by an old version); convert again with '
                               'python tools/prepare_data.py coco_object (see data/README.md)')
    return report
