"""Checks of config values and keys, so a typo or an impossible value is one line, never a number.

Why: ``model.logit_scael=40`` used to be a TypeError traceback from inside mmengine, and
``model.prob_thd=2`` ran and saved an all-background result as if it were a real one. Every
segmentor argument is checked here against its type and its valid range when the model is
built, and an unknown key names the closest valid one.
"""
from __future__ import annotations

import difflib
import inspect
import numbers
import typing
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from .errors import SCLIPError


def closest(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``''`` when none is close."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ''


def unknown_key_error(prefix: str, key: str, valid: Iterable[str]) -> SCLIPError:
    valid = list(valid)
    return SCLIPError(f'{prefix}.{key} is not a setting{closest(key, valid)} '
                      f'(valid: {", ".join(sorted(valid))}).')


# key -> (check, description of the valid values)
Range = Tuple[Callable[[Any], bool], str]
RANGES: Dict[str, Range] = {
    'logit_scale': (lambda v: v > 0, 'a positive number (the official configs use 40 to 65)'),
    'prob_thd': (lambda v: 0 <= v <= 1, 'a probability in [0, 1]'),
    'area_thd': (lambda v: v is None or 0 <= v < 1, 'None or a fraction in [0, 1)'),
    'slide_crop': (lambda v: v is None or v >= 0, 'None, 0 (whole image) or a positive window size'),
    'slide_stride': (lambda v: v is None or v > 0, 'None or a positive stride'),
    'slide_pad': (lambda v: v >= 0, '0 (no padding) or the multiple windows are padded to'),
    'window_batch_size': (lambda v: v is None or v >= 1, 'None or at least 1'),
    'memory_budget_mb': (lambda v: v > 0, 'a positive number of MiB'),
    'text_batch_size': (lambda v: v >= 1, 'at least 1'),
    'pamr_steps': (lambda v: v >= 0, '0 (off) or a positive number of steps'),
    'num_modified_blocks': (lambda v: v is None or v >= 1, 'at least 1'),
}


def _expected_types(annotation) -> Optional[Tuple[type, ...]]:
    """The plain types an annotation allows (None when it is not a simple scalar annotation)."""
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, vars(typing), {})  # noqa: S307 - our own annotations
        except Exception:  # noqa: BLE001
            return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        allowed = []
        for arg in typing.get_args(annotation):
            types = _expected_types(arg)
            if types is None:
                return None
            allowed.extend(types)
        return tuple(allowed)
    if annotation is type(None):
        return (type(None),)
    if annotation in (int, float, bool, str):
        return (annotation,)
    return None


def _type_ok(value, types: Tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in types
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, numbers.Integral):
        return int in types or float in types
    if isinstance(value, numbers.Real):
        return float in types
    return any(isinstance(value, t) for t in types if t is not type(None))


def _type_name(types: Tuple[type, ...]) -> str:
    names = {int: 'an integer', float: 'a number', bool: 'true or false', str: 'a string',
             type(None): 'None'}
    return ' or '.join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def check_arguments(function, values: Dict[str, Any], prefix: str = 'model') -> None:
    """Types (from ``function``'s annotations) and ranges (``RANGES``) of ``values``."""
    parameters = inspect.signature(function).parameters
    for key, value in values.items():
        parameter = parameters.get(key)
        if parameter is None:
            continue
        types = _expected_types(parameter.annotation)
        if types is not None and not _type_ok(value, types):
            raise SCLIPError(f'{prefix}.{key}={value!r} must be {_type_name(types)}.')
        if key in RANGES:
            check, description = RANGES[key]
            if not check(value):
                raise SCLIPError(f'{prefix}.{key}={value!r} is out of range: it must be {description}.')
