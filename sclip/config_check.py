"""Checks of config values and keys, so a typo or an impossible value is one line, never a number.

Why: ``model.logit_scael=40`` used to be a TypeError traceback from inside mmengine, and
``model.prob_thd=2`` ran and saved an all-background result as if it were a real one. Every
segmentor argument is checked here against its type and its valid range when the model is
built, and an unknown key names the closest valid one.
"""
from __future__ import annotations

import difflib
import inspect
import math
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


def refuse_unknown_keys(function, unknown: Dict[str, Any], prefix: str = 'model') -> None:
    """The one-line error for the first of ``unknown`` (a constructor's ``**unknown``), naming
    the closest of ``function``'s own parameters: a misspelt setting stops the run, never is ignored."""
    if unknown:
        code = function.__code__
        raise unknown_key_error(prefix, sorted(unknown)[0], list(code.co_varnames[1:code.co_argcount]))


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
    'provisional_pamr_steps': (lambda v: v >= 0, '0 (off) or a positive number of steps'),
    'pamr_dilations': (lambda v: all(d > 0 for d in v), 'positive integers'),
    'provisional_pamr_dilations': (lambda v: all(d > 0 for d in v), 'positive integers'),
    'num_modified_blocks': (lambda v: v is None or v >= 1, 'at least 1'),
    'label_closing': (lambda v: v == 0 or (v >= 1 and v % 2 == 1), '0 (off) or an odd square size such as 3'),
}


def _resolved(annotation):
    """An annotation as an object (``from __future__ import annotations`` leaves strings);
    None when it cannot be read."""
    if isinstance(annotation, str):
        try:
            return eval(annotation, vars(typing), {})  # noqa: S307 - our own annotations
        except Exception:  # noqa: BLE001
            return None
    return annotation


def _expected_types(annotation) -> Optional[Tuple[type, ...]]:
    """The plain types an annotation allows (None when it is not a simple scalar annotation)."""
    annotation = _resolved(annotation)
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
    if annotation in (int, float, bool, str, dict):
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
             dict: 'a dict', type(None): 'None'}
    return ' or '.join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _sequence_item_types(annotation) -> Optional[Tuple[type, ...]]:
    """The item types of a ``Sequence[int]`` / ``Sequence[float]`` annotation, else None."""
    annotation = _resolved(annotation)
    import collections.abc
    if typing.get_origin(annotation) in (collections.abc.Sequence, list, tuple):
        args = typing.get_args(annotation)
        if len(args) == 1 and args[0] in (int, float):
            return (args[0],)
    return None


def check_arguments(function, values: Dict[str, Any], prefix: str = 'model') -> None:
    """Types (from ``function``'s annotations) and ranges (``RANGES``) of ``values``."""
    parameters = inspect.signature(function).parameters
    for key, value in values.items():
        parameter = parameters.get(key)
        if parameter is None:
            continue
        items = _sequence_item_types(parameter.annotation)
        if items is not None and not (isinstance(value, (list, tuple)) and value
                                      and all(_type_ok(v, items) for v in value)):
            plural = {int: 'integers', float: 'numbers'}[items[0]]
            raise SCLIPError(f'{prefix}.{key}={value!r} must be a list of {plural}, e.g. {parameter.default!r}.')
        types = _expected_types(parameter.annotation)
        if types is not None and not _type_ok(value, types):
            raise SCLIPError(f'{prefix}.{key}={value!r} must be {_type_name(types)}.')
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise SCLIPError(f'{prefix}.{key}={value!r} must be a finite number.')
        if key in RANGES:
            check, description = RANGES[key]
            if not check(value):
                raise SCLIPError(f'{prefix}.{key}={value!r} is out of range: it must be {description}.')


def accepted_keys(cls) -> Optional[set]:
    """Keyword arguments ``cls(...)`` accepts: the named parameters of its ``__init__`` and, while
    an ``__init__`` takes ``**kwargs``, those of its parents'; None when no ``__init__`` of the
    chain closes it (anything may be accepted, nothing to check)."""
    keys = set()
    for klass in cls.__mro__:
        init = vars(klass).get('__init__')
        if init is None or klass is object:
            continue
        parameters = inspect.signature(init).parameters
        keys.update(k for k, p in parameters.items()
                    if k != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            return keys
    return None


def check_registered_keys(prefix: str, spec, registry, extra_ignored: Iterable[str] = ()) -> None:
    """``spec`` is a dict whose ``type`` is registered and whose keys the class accepts.

    Why: mmseg's dataset classes raise a TypeError traceback on a misspelt key, and its
    ``IoUMetric`` silently drops one (``iou_metric=['mIoU']`` then measures the default)."""
    if not isinstance(spec, dict):
        raise SCLIPError(f'{prefix}={spec!r} must be a dict (with a type key); fix the config or '
                         f'the --cfg-options item that set it.')
    cls = registry.get(spec.get('type')) if isinstance(spec.get('type'), str) else spec.get('type')
    if cls is None:
        raise SCLIPError(f"{prefix}.type={spec.get('type')!r} is not registered{closest(spec.get('type'), registry.module_dict)}.")
    valid = accepted_keys(cls) if inspect.isclass(cls) else None
    if valid is None:
        return
    valid |= {'type', *extra_ignored}
    for key in spec:
        if key not in valid:
            raise unknown_key_error(prefix, key, valid)
