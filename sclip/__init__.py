"""sclip: training-free open-vocabulary segmentation with CLIP, as an mmseg plug-in.

``import sclip`` installs the mmcv-lite compatibility shim and registers the segmentor,
its data pre-processor, the extra datasets and the metric in mmseg's registries.
"""
from . import compat  # noqa: F401  (must come before anything from mmseg)
from . import datasets, evaluation, hooks, models  # noqa: F401,E402
from .errors import SCLIPError  # noqa: E402

__version__ = '0.2.0'
__all__ = ['SCLIPError', '__version__']
