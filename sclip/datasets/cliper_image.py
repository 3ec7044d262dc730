"""CLIPer's image loading: PIL, short side to ``size``, each side rounded to the patch size, bicubic.

Why: CLIPer (linsun449/cliper.code @ c05fa41) does not use mmseg's pipeline; its datasets open the
image with PIL (no EXIF rotation), and its ``preprocess`` resizes the image as opened (before the
RGB conversion) with ``CLIPer._resize`` and then applies CLIP's ``ToTensor`` and ``Normalize``
(the segmentor does those two, on the RGB uint8 values this transform keeps). ``ori_shape`` stays
the file's size: the labels' resolution, at which CLIPer predicts.
"""
from __future__ import annotations

import io

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

from ..errors import SCLIPError
from .transforms import read_file, truncation


def cliper_size(width: int, height: int, size: int, patch_size: int):
    """(w, h) of ``CLIPer._resize``: the short side scaled to ``size``, each side rounded (half
    up) to a multiple of ``patch_size``."""
    ratio = size / min(width, height)
    width, height = width * ratio, height * ratio
    return int(width / patch_size + 0.5) * patch_size, int(height / patch_size + 0.5) * patch_size


@TRANSFORMS.register_module()
class CLIPerLoadImage(BaseTransform):
    """``img`` (RGB uint8, CLIPer's resize), ``img_shape`` and ``ori_shape`` (the file's size).

    Args:
        size: the short side (the official configs' ``size``: 336, Cityscapes 560).
        patch_size: the CLIP model's patch size (ViT-B/16: 16).
    """

    def __init__(self, size: int = 336, patch_size: int = 16):
        for key, value in (('size', size), ('patch_size', patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SCLIPError(f'test_pipeline CLIPerLoadImage.{key}={value!r} must be a positive integer '
                                 '(the official size: 336, Cityscapes 560; patch_size: 16 for ViT-B/16).')
        self.size, self.patch_size = size, patch_size

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        data = read_file(path)
        problem = truncation(data)
        if problem:
            raise SCLIPError(f'{path}: {problem}; replace it or remove it from the split.')
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, ValueError) as error:
            raise SCLIPError(f'{path}: not a readable image ({error}).') from None
        width, height = image.size
        resized = image.resize(cliper_size(width, height, self.size, self.patch_size), Image.BICUBIC)
        results['img'] = np.array(resized.convert('RGB'))
        results['img_shape'] = results['img'].shape[:2]
        results['ori_shape'] = (height, width)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, patch_size={self.patch_size})'
