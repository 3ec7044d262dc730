"""Compatibility shims that let the OpenMMLab stack import on a modern PyTorch.

Import this package before anything from mmseg: ``import sclip`` does it for you.
"""
from .mmcv_ops import install_mmcv_ops_standin, silence_mmcv_lite_warnings

silence_mmcv_lite_warnings()
install_mmcv_ops_standin()
