"""Image and label loading that checks each sample and names the file at fault.

Why: mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations`` decode from bytes, so a
zero-byte image, an RGB label or a label of the wrong size ends in a traceback that names no
file, and a label value outside the class range (40 in VOC21) is silently counted into a
plausible mIoU. ``SCLIPLoadImage`` and ``SCLIPLoadAnnotations`` are drop-ins for them: the
same options, the same decoding (cv2 'color' for images, which applies the JPEG EXIF
orientation; pillow 'unchanged' for labels) and the same outputs on good files, but a bad file
raises ``SCLIPError`` with one line naming it. The module-level checks are shared with
``sclip.data_check`` (``tools/check_data.py``), so it reports exactly what a run would reject.

The class count comes from the metainfo of the dataset whose pipeline builds the transform
(mmseg 1.2.2 puts only img_path, seg_map_path, label_map, reduce_zero_label, seg_fields and
sample_idx into each sample), so it is configured once, by the dataset type.
"""
from __future__ import annotations

import inspect
import io
from typing import Dict, Optional, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS
from PIL import Image

from ..errors import SCLIPError

IGNORE_INDEX = 255  # mmseg's ignored label value
EXIF_ORIENTATION = 0x0112
AXIS_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # transpose and 90-degree rotations
REPLACE = 'replace it or remove it from the split (tools/check_data.py lists every such file)'


# ---- reading and decoding, shared with sclip.data_check ------------------------------------

def read_file(path: str, backend_args: Optional[dict] = None, file_client_args: Optional[dict] = None) -> bytes:
    """The file's bytes through mmengine's file backends; missing or empty files are refused."""
    try:
        if file_client_args is not None:
            data = fileio.FileClient.infer_client(file_client_args, path).get(path)
        else:
            data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise SCLIPError(f'{path}: file not found; check the paths in the config or --cfg-options.') from None
    except OSError as error:
        raise SCLIPError(f'{path}: cannot be read ({error.strerror or error}).') from None
    if not data:
        raise SCLIPError(f'{path}: file is empty (0 bytes); {REPLACE}.')
    return data


def truncation(data: bytes) -> Optional[str]:
    """What is missing at the end of a PNG or JPEG, or None when the file is complete.

    Why: depending on the library version and ``ImageFile.LOAD_TRUNCATED_IMAGES``, cv2 and
    PIL decode a cut-off file with its missing part silently filled in grey or black.
    """
    if data.startswith(b'\x89PNG\r\n\x1a\n'):
        return None if _png_complete(data) else 'the PNG ends before its IEND chunk'
    if data.startswith(b'\xff\xd8'):
        return None if _jpeg_complete(data) else 'the JPEG has no end-of-image marker after its image data'
    return None  # other formats: their decoders decide


def _png_complete(data: bytes) -> bool:
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], 'big')
        end = position + 12 + length  # length, type, data, CRC
        if end > len(data):
            return False
        if data[position + 4:position + 8] == b'IEND':
            return True
        position = end
    return False


def _jpeg_complete(data: bytes) -> bool:
    """Segments are walked by their lengths up to the first scan (so an EXIF thumbnail's own
    end marker is skipped); the end-of-image marker must follow the image data."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return True  # not a marker where one should be: malformed, the decoder decides
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
        elif marker == 0xD9:
            return True  # end before any scan: no image, the decoder refuses it
        elif marker == 0xDA:  # start of scan: entropy-coded data follows its header
            header_end = position + 2 + int.from_bytes(data[position + 2:position + 4], 'big')
            return data.find(b'\xff\xd9', header_end) != -1
        else:
            position += 2 + int.from_bytes(data[position + 2:position + 4], 'big')
    return False


def decode_image(data: bytes, path: str, flag: str = 'color', backend: str = 'cv2') -> np.ndarray:
    """``mmcv.imfrombytes`` exactly as mmcv's LoadImageFromFile calls it, after the checks."""
    cut = truncation(data)
    if cut:
        raise SCLIPError(f'{path}: file is truncated ({cut}); {REPLACE}.')
    try:
        image = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception:  # noqa: BLE001 - each decoder fails its own way (cv2.error, PIL errors)
        image = None
    if image is None or image.size == 0:
        raise SCLIPError(f'{path}: cannot be read as an image (corrupt or not an image); {REPLACE}.')
    return image


def decode_label(data: bytes, path: str, backend: str = 'pillow') -> np.ndarray:
    """The label's class indices (H, W), in the file's own integer type, decoded as mmseg's
    LoadAnnotations does (``flag='unchanged'``); several channels are refused."""
    cut = truncation(data)
    if cut:
        raise SCLIPError(f'{path}: label file is truncated ({cut}); {REPLACE}.')
    if data[:3] == b'\xff\xd8\xff':  # JPEG's lossy compression moves pixels into neighbouring classes
        raise SCLIPError(f'{path}: label file holds JPEG data (lossy: class indices change at edges); '
                         'write labels as PNG.')
    try:
        label = mmcv.imfrombytes(data, flag='unchanged', backend=backend)
    except Exception:  # noqa: BLE001
        label = None
    if label is None or label.size == 0:
        raise SCLIPError(f'{path}: label file could not be decoded (corrupt or not an image); {REPLACE}.')
    if label.ndim == 3 and label.shape[2] == 1:
        label = label[:, :, 0]
    if label.ndim != 2:
        kind = {2: 'grey + alpha', 3: 'an RGB image', 4: 'an RGBA image'}.get(label.shape[2], 'an image')
        raise SCLIPError(f'{path}: label has {label.shape[2]} channels ({kind}); convert it to class '
                         'indices (one channel, one class index per pixel, 255 = ignored).')
    return label  # mmseg squeezes instead, which breaks 1xW and Hx1 labels


# ---- label values -------------------------------------------------------------------------

def train_id_table(reduce_zero_label: bool, label_map: Optional[Dict[int, int]]) -> np.ndarray:
    """uint8 value -> the value mmseg's LoadAnnotations makes of it (reduce_zero_label, then label_map)."""
    table = np.arange(256, dtype=np.uint8)
    if reduce_zero_label:  # as mmseg: 0 -> 255, v -> v - 1, 255 stays 255
        table[table == 0] = IGNORE_INDEX
        table = table - 1
        table[table == 254] = IGNORE_INDEX
    if label_map:
        original = table.copy()
        for old_id, new_id in label_map.items():
            table[original == old_id] = new_id
    return table


def raw_values(label: np.ndarray) -> np.ndarray:
    """The distinct values of a label map (fast for uint8)."""
    if label.dtype == np.uint8:
        return np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    return np.unique(label)


def out_of_range(values: np.ndarray, num_classes: int, reduce_zero_label: bool = False,
                 label_map: Optional[Dict[int, int]] = None, ignore_index: int = IGNORE_INDEX) -> list:
    """The raw values that do not become a class index 0..num_classes-1 or 255 (ignored);
    values that are not integers 0..255 always count (mmseg would wrap them into uint8).
    With another ``ignore_index`` (16-bit labels of the large vocabularies, 65535 = ignored,
    as Detectron2 writes them) the raw values are the classes: 0..num_classes-1 or ignore_index."""
    if ignore_index != IGNORE_INDEX:
        return [int(v) if float(v).is_integer() else v for v in values.tolist()
                if not (float(v).is_integer() and (0 <= v < num_classes or v == ignore_index))]
    table = train_id_table(reduce_zero_label, label_map)
    bad = []
    for value in values.tolist():
        fits_uint8 = float(value).is_integer() and 0 <= value <= 255
        if not fits_uint8 or not (table[int(value)] == IGNORE_INDEX or table[int(value)] < num_classes):
            bad.append(int(value) if float(value).is_integer() else value)
    return bad


def value_problem(label: np.ndarray, path: str, num_classes: int, reduce_zero_label: bool = False,
                  label_map: Optional[Dict[int, int]] = None, ignore_index: int = IGNORE_INDEX) -> Optional[str]:
    """One line naming the label and its out-of-range raw values, or None."""
    bad = out_of_range(raw_values(label), num_classes, reduce_zero_label, label_map, ignore_index)
    if not bad:
        return None
    shown = ', '.join(str(v) for v in bad[:8]) + (', ...' if len(bad) > 8 else '')
    if ignore_index != IGNORE_INDEX:
        allowed = f'0..{num_classes - 1} or {ignore_index} (ignored)'
    elif reduce_zero_label:
        allowed = f'0..{num_classes} (reduce_zero_label: 0 is ignored, v counts as class v-1 of {num_classes}) or 255'
    else:
        allowed = f'0..{num_classes - 1} or 255 (ignored)'
    return (f'{path}: label values [{shown}] outside {allowed}; they would be counted as wrong pixels '
            'or dropped; fix the label or use the config of its benchmark.')


# ---- sizes and EXIF orientation -----------------------------------------------------------

def exif_orientation(data: bytes) -> Tuple[int, Optional[Tuple[int, int]]]:
    """(EXIF orientation tag, 1 when absent; stored (width, height) or None if PIL cannot open it)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(EXIF_ORIENTATION, 1) or 1), image.size
    except Exception:  # noqa: BLE001 - no header to read: no orientation
        return 1, None


def size_problem(label_path: str, label_shape: Tuple[int, int], image_path: str,
                 image_shape: Tuple[int, int], image_data: Optional[bytes] = None) -> Optional[str]:
    """One line when the label's (H, W) differs from the decoded (EXIF-oriented) image's, or None."""
    label_h, label_w = label_shape[:2]
    image_h, image_w = image_shape[:2]
    if (label_h, label_w) == (image_h, image_w):
        return None
    if image_data is None:
        try:
            image_data = read_file(image_path)
        except SCLIPError:
            image_data = b''
    orientation, stored = exif_orientation(image_data)
    if orientation in AXIS_SWAPPING_ORIENTATIONS and stored == (label_w, label_h):
        return (f'{image_path} has EXIF orientation {orientation}, which the official pipeline applies to the '
                f'image but not to its label {label_path} ({label_w}x{label_h}; the image becomes '
                f'{image_w}x{image_h}); remove the tag from the image (the label matches its stored pixels).')
    return (f'{label_path}: label size {label_w}x{label_h} differs from image size {image_w}x{image_h} '
            f'({image_path}); {REPLACE}.')


# ---- the transforms -----------------------------------------------------------------------

def building_dataset():
    """The mmengine dataset whose ``__init__`` is building the current pipeline, if any.

    Why: ``BaseDataset.__init__`` sets its metainfo and then builds ``Compose(pipeline)``, so
    a transform built there can read the class count from the dataset that will feed it,
    instead of the user writing the count a second time into the pipeline config.
    """
    from mmengine.dataset import BaseDataset
    frame = inspect.currentframe()
    try:
        while frame is not None:
            owner = frame.f_locals.get('self')
            if isinstance(owner, BaseDataset) and hasattr(owner, '_metainfo'):
                return owner
            frame = frame.f_back
        return None
    finally:
        del frame


@TRANSFORMS.register_module()
class SCLIPLoadImage(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` (same options, same ``img``/``img_shape``/``ori_shape``),
    raising one-line ``SCLIPError`` for a missing, empty, truncated or undecodable file."""

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            data = read_file(path, self.backend_args, self.file_client_args)
            image = decode_image(data, path, self.color_type, self.imdecode_backend)
        except SCLIPError:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            image = image.astype(np.float32)
        results['img'] = image
        results['img_shape'] = image.shape[:2]
        results['ori_shape'] = image.shape[:2]
        return results


@TRANSFORMS.register_module()
class SCLIPLoadAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` (same options; same ``gt_seg_map``, reduce_zero_label and
    label_map handling), raising one-line ``SCLIPError`` for a missing, empty, truncated,
    undecodable or multi-channel label, for values outside the class range (255 allowed), and
    for a label whose size differs from its decoded image's (``ori_shape``).

    Args:
        num_classes: the class count; by default that of the dataset building this pipeline
            (its metainfo), or ``results['num_classes']`` when a sample carries one.

    A sample without ``seg_map_path`` passes through unchanged, so the transform may stay in
    a ``test_pipeline`` that mmseg's inference APIs use without labels.
    """

    def __init__(self, reduce_zero_label=None, backend_args=None, imdecode_backend='pillow',
                 num_classes: Optional[int] = None) -> None:
        super().__init__(reduce_zero_label=reduce_zero_label, backend_args=backend_args,
                         imdecode_backend=imdecode_backend)
        dataset = building_dataset()
        if num_classes is None:
            classes = dataset.metainfo.get('classes') if dataset is not None else None
            num_classes = len(classes) if classes else None
        self.num_classes = num_classes
        # 65535 for the 16-bit large-vocabulary labels (ADE-847, Context-459), else mmseg's 255
        self.ignore_index = dataset.metainfo.get('ignore_index', IGNORE_INDEX) if dataset is not None \
            else IGNORE_INDEX

    def transform(self, results: dict) -> dict:
        if 'seg_map_path' not in results:
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        label = decode_label(read_file(path, self.backend_args), path, self.imdecode_backend)
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise SCLIPError(f'{type(self).__name__}(reduce_zero_label={self.reduce_zero_label}) disagrees with '
                             f"the dataset's reduce_zero_label={results['reduce_zero_label']}; set it on the "
                             'dataset only.')
        num_classes = results.get('num_classes', self.num_classes)
        if num_classes is None:
            raise SCLIPError(f'{path}: {type(self).__name__} does not know the number of classes; use it in a '
                             "dataset's pipeline or pass num_classes=N.")
        label_map = results.get('label_map')
        problem = value_problem(label, path, num_classes, self.reduce_zero_label, label_map, self.ignore_index)
        if problem is None and 'ori_shape' in results:
            problem = size_problem(path, label.shape, results.get('img_path', 'its image'), results['ori_shape'])
        if problem:
            raise SCLIPError(problem)
        if self.ignore_index != IGNORE_INDEX:  # 16-bit class indices, read as they are
            if self.reduce_zero_label or label_map:
                raise SCLIPError(f'{path}: reduce_zero_label and custom classes are not supported for labels '
                                 f'with ignore index {self.ignore_index}; use the dataset as configured.')
            results['gt_seg_map'] = label.astype(np.int64)
            results['seg_fields'].append('gt_seg_map')
            return
        table = train_id_table(self.reduce_zero_label, label_map)
        results['gt_seg_map'] = table[label.astype(np.uint8)]
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, num_classes={self.num_classes})'
