"""A stand-in for ``mmcv.ops`` when mmcv's compiled extension is missing.

Why: ``pip install mmcv-lite`` gives the ``mmcv`` package without ``mmcv._ext``, and
``import mmcv.ops`` then fails. mmseg 1.2.2 imports ``mmcv.ops.point_sample`` (and
``sigmoid_focal_loss``) at import time, so ``import mmseg.models`` fails with it. SCLIP
needs none of mmcv's compiled ops, so when (and only when) the extension is missing we
register a tiny module under the name ``mmcv.ops`` that provides:

* ``point_sample``: pure PyTorch, the same math as mmcv's (grid_sample on [0, 1] points);
* ``sigmoid_focal_loss``: imported unguarded by mmseg's losses; calling it raises;
* any other name: ``ModuleNotFoundError`` on import, which is what mmseg's guarded imports
  (``try: from mmcv.ops import CrissCrossAttention except ModuleNotFoundError``) expect.

With a full mmcv (compiled ops present) this module does nothing.
"""
from __future__ import annotations

import importlib.util
import sys
import types

import torch
import torch.nn.functional as F

_MISSING_HINT = ('mmcv.ops.{name} needs the compiled mmcv extension, which mmcv-lite lacks. '
                 'SCLIP does not use it; install the full mmcv (pip install mmcv==2.1.0, '
                 'a long source build) if your own code needs it.')


def point_sample(input: torch.Tensor, points: torch.Tensor, align_corners: bool = False,
                 **kwargs) -> torch.Tensor:
    """Sample ``input`` (N, C, H, W) at ``points`` (N, P, 2) in [0, 1] x-y coordinates."""
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return output.squeeze(3) if add_dim else output


def _unavailable(name: str):
    def op(*args, **kwargs):
        raise RuntimeError(_MISSING_HINT.format(name=name))
    op.__name__ = name
    return op


class _OpsStandIn(types.ModuleType):
    """Module object whose unknown attributes raise ModuleNotFoundError (not AttributeError)."""

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(_MISSING_HINT.format(name=name), name=f'mmcv.ops.{name}')


def has_compiled_mmcv() -> bool:
    """True when mmcv's compiled extension ``mmcv._ext`` is installed."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def install_mmcv_ops_standin() -> bool:
    """Register the stand-in as ``mmcv.ops`` if needed; returns True when it was installed."""
    if importlib.util.find_spec('mmcv') is None or has_compiled_mmcv():
        return False
    existing = sys.modules.get('mmcv.ops')
    if existing is not None and not isinstance(existing, _OpsStandIn):
        return False
    module = _OpsStandIn('mmcv.ops', __doc__)
    module.__file__ = __file__
    module.point_sample = point_sample
    module.sigmoid_focal_loss = _unavailable('sigmoid_focal_loss')
    module.IS_STANDIN = True
    sys.modules['mmcv.ops'] = module
    import mmcv
    mmcv.ops = module
    return True


def silence_mmcv_lite_warnings() -> None:
    """mmcv-lite warns on every import that deformable attention is missing; SCLIP never uses it."""
    import warnings
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
