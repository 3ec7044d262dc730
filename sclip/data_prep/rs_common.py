"""What SegEarth-OV's remote-sensing converters share (likyoo/SegEarth-OV @ 3e22a96,
``tools/dataset_converters/*.py``, several of them mmseg's own): reading images the way mmcv/cv2 do,
the two tilings, binary thresholds, zip members, and one-line errors naming the file.

Images are decoded with OpenCV as ``mmcv.imread`` does (BGR for colour, cv2's grey conversion for
``grayscale``) and written as PNG (or TIFF where the official keeps ``.tif``), so every pixel is the
official one; only the files' compression may differ (the official iSAID/UAVid tiles are BMP data in
``.png`` files, which a reader decodes to the same pixels).
"""
from __future__ import annotations

import math
import os.path as osp
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SCLIPError
from .common import check_read, reason, require_file, write_atomically

Box = Tuple[int, int, int, int]  # x_start, y_start, x_end, y_end


# --- reading ------------------------------------------------------------------------------------

def decode(data: bytes, name: str, grey: bool = False, rgb: bool = False) -> np.ndarray:
    """``mmcv.imread(name, 'grayscale' if grey else 'color')`` of the bytes ``data`` (BGR unless ``rgb``)."""
    import cv2
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise SCLIPError(f'{name}: cannot be decoded as an image; it is corrupt or truncated: download it again.')
    return image[..., ::-1].copy() if rgb and image.ndim == 3 else image


def read_bytes(path: str) -> bytes:
    require_file(path)
    with open(path, 'rb') as f:
        return f.read()


def read_image(path: str, grey: bool = False, rgb: bool = False) -> np.ndarray:
    return decode(read_bytes(path), path, grey=grey, rgb=rgb)


def read_pil_rgb(data: bytes, name: str) -> np.ndarray:
    """``np.asarray(Image.open(name).convert('RGB'))``: how the iSAID/UAVid converters read images."""
    import io
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert('RGB'))
    except Exception as error:  # noqa: BLE001 - PIL raises several types for bad files
        raise SCLIPError(f'{name}: cannot be read as an image ({reason(error)}); download it again.') from None


class Archive:
    """The members of a downloaded ``.zip`` (read in place, nothing extracted); errors name the zip."""

    def __init__(self, path: str):
        require_file(path)
        self.path = path
        try:
            with zipfile.ZipFile(path) as z:
                self.names = [n for n in z.namelist() if not n.endswith('/')]
        except (zipfile.BadZipFile, OSError) as error:
            raise SCLIPError(f'{path}: cannot be opened as a zip archive ({reason(error)}); it is truncated or '
                             'corrupt: download it again.') from None

    def read(self, member: str) -> bytes:
        try:
            with zipfile.ZipFile(self.path) as z:
                return z.read(member)
        except (zipfile.BadZipFile, OSError, KeyError, EOFError) as error:
            raise SCLIPError(f'{self.path}: member {member} cannot be read ({reason(error)}); the archive is '
                             'truncated or corrupt: download it again.') from None

    def members(self, suffix: str, folder: Optional[str] = None, max_depth: Optional[int] = None) -> List[str]:
        """Sorted member names ending with ``suffix``, directly in ``folder`` (a path inside the zip, or
        any folder when None), at most ``max_depth`` folders deep."""
        found = []
        for name in self.names:
            parent = osp.dirname(name)
            if not name.lower().endswith(suffix.lower()):
                continue
            if folder is not None and parent.rstrip('/') != folder.rstrip('/'):
                continue
            if max_depth is not None and (parent.count('/') + 1 if parent else 0) > max_depth:
                continue
            found.append(name)
        return sorted(found)


# --- writing ------------------------------------------------------------------------------------

def write_image(image: np.ndarray, path: str) -> str:
    """``mmcv.imwrite(image, path)`` (cv2: BGR colour or one grey channel), atomically."""
    import cv2
    ext = osp.splitext(path)[1] or '.png'
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image))
    if not ok:
        raise SCLIPError(f'{path}: OpenCV cannot encode a {ext} file here.')
    write_atomically(path, lambda tmp: open(tmp, 'wb').write(data.tobytes()))
    return path


def write_rgb(image: np.ndarray, path: str) -> str:
    """An RGB array saved as the image file ``path``."""
    return write_image(image[..., ::-1], path)


# --- tilings ------------------------------------------------------------------------------------

def clip_boxes(h: int, w: int, clip_size: int, stride_size: int) -> List[Box]:
    """The boxes of mmseg's ``clip_big_image`` (potsdam.py, vaihingen.py; SegEarth-OV's inria.py), in its
    order, duplicates dropped (the official run writes a duplicate box to the same file again).
    Transcribed with its quirk: the row/column counts use the stride, but the boxes step by
    ``clip_size`` and the last ones are shifted back inside the image."""
    def count(n):
        steps = math.ceil((n - clip_size) / stride_size)
        return steps if steps * stride_size + clip_size >= n else steps + 1
    x, y = np.meshgrid(np.arange(count(w) + 1), np.arange(count(h) + 1))
    xmin, ymin = (x * clip_size).ravel(), (y * clip_size).ravel()
    xmin_offset = np.where(xmin + clip_size > w, w - xmin - clip_size, np.zeros_like(xmin))
    ymin_offset = np.where(ymin + clip_size > h, h - ymin - clip_size, np.zeros_like(ymin))
    boxes = np.stack([xmin + xmin_offset, ymin + ymin_offset, np.minimum(xmin + clip_size, w),
                      np.minimum(ymin + clip_size, h)], axis=1)
    return unique(tuple(int(v) for v in box) for box in boxes)


def unique(boxes: Iterable[Box]) -> List[Box]:
    seen: Dict[Box, None] = {}
    for box in boxes:
        seen.setdefault(box, None)
    return list(seen)


def pad_to_patch(image: np.ndarray, patch_h: int, patch_w: int, value: int) -> np.ndarray:
    """The iSAID/UAVid converters' ``mmcv.impad`` (bottom/right) of an image smaller than a patch,
    with their three cases (a side equal to the patch is never padded)."""
    h, w = image.shape[:2]
    if h < patch_h and w > patch_w:
        shape = (patch_h, w)
    elif h > patch_h and w < patch_w:
        shape = (h, patch_w)
    elif h < patch_h and w < patch_w:
        shape = (patch_h, patch_w)
    else:
        return image
    out = np.full(shape + image.shape[2:], value, image.dtype)
    out[:h, :w] = image
    return out


def slide_boxes(h: int, w: int, patch_h: int, patch_w: int, overlap: int) -> List[Tuple[int, int, int, int]]:
    """(y_start, y_end, x_start, x_end) of the iSAID/UAVid ``slide_crop_*`` loops, in their order (x
    outer, y inner), duplicates dropped; a start may be negative, as there (numpy then counts from the end)."""
    boxes = []
    for x in range(0, w, patch_w - overlap):
        for y in range(0, h, patch_h - overlap):
            x_str, x_end, y_str, y_end = x, x + patch_w, y, y + patch_h
            if x_end > w:
                x_str, x_end = x_str - (x_end - w), w
            if y_end > h:
                y_str, y_end = y_str - (y_end - h), h
            boxes.append((y_str, y_end, x_str, x_end))
    return unique(boxes)


# --- labels -------------------------------------------------------------------------------------

def threshold_128(grey: np.ndarray) -> np.ndarray:
    """``label[label < 128] = 0; label[label >= 128] = 1`` (WHU, Inria, roads, water)."""
    return (grey >= 128).astype(np.uint8)


def colour_to_index(rgb: np.ndarray, palette: Dict[Tuple[int, int, int], int]) -> np.ndarray:
    """The iSAID/UAVid ``*_convert_from_color``: exact RGB matches take their index, the rest 0."""
    out = np.zeros(rgb.shape[:2], np.uint8)
    for colour, index in palette.items():
        out[np.all(rgb == np.array(colour).reshape(1, 1, 3), axis=2)] = index
    return out


def check_values(label: np.ndarray, path: str, allowed: Sequence[int], what: str) -> None:
    """One line naming ``path`` when ``label`` holds values outside ``allowed``."""
    bad = sorted(set(np.unique(label).tolist()) - set(allowed))
    if bad:
        shown = ', '.join(str(v) for v in bad[:8]) + (', ...' if len(bad) > 8 else '')
        raise SCLIPError(f'{path}: label values [{shown}] outside {what}; is this the right file of the '
                         'release (not a colour visualisation)? download it again.')


def require_folder(path: str, what: str) -> str:
    check_read(path)
    if not osp.isdir(path):
        raise SCLIPError(f'{path}: folder not found ({what}); check SRC (see data/README.md).')
    return path
