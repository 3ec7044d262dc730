"""The mmcv.ops stand-in: mmseg imports, point_sample is right, other ops fail clearly."""
import importlib.util
import os

import pytest
import torch

import mmcv
from sclip.compat import mmcv_ops


def test_mmseg_imports_with_mmcv_lite():
    import mmseg.apis  # noqa: F401
    import mmseg.models  # noqa: F401
    assert not mmcv_ops.has_compiled_mmcv()
    assert getattr(mmcv.ops, 'IS_STANDIN', False)


def test_point_sample_matches_mmcv_source():
    # mmcv's own point_sample.py is pure PyTorch: load that file directly as the reference
    path = os.path.join(os.path.dirname(mmcv.__file__), 'ops', 'point_sample.py')
    spec = importlib.util.spec_from_file_location('mmcv_point_sample_ref', path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.manual_seed(0)
    x, points = torch.randn(2, 3, 8, 9), torch.rand(2, 5, 2)
    for align in (False, True):
        assert torch.allclose(mmcv_ops.point_sample(x, points, align_corners=align),
                              ref.point_sample(x, points, align_corners=align), atol=1e-6)


def test_missing_ops_raise_module_not_found_and_dunders_attribute_error():
    with pytest.raises(ModuleNotFoundError, match='compiled mmcv extension'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    with pytest.raises(AttributeError):
        mmcv.ops.__wrapped__
    with pytest.raises(RuntimeError, match='sigmoid_focal_loss needs the compiled'):
        mmcv.ops.sigmoid_focal_loss(torch.zeros(1), torch.zeros(1))


def test_standin_does_nothing_when_compiled_mmcv_exists(monkeypatch):
    monkeypatch.setattr(mmcv_ops, 'has_compiled_mmcv', lambda: True)
    assert mmcv_ops.install_mmcv_ops_standin() is False
