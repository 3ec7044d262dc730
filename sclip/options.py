"""``--cfg-options KEY=VALUE ...`` parsed as mmengine does, without its losses.

Why: mmengine's ``DictAction`` removes every space from a value (a quoted path with spaces
loses them) and raises a bare ValueError on an argument without ``=``. Values here follow
mmengine's rules (ints, floats, true/false, None, ``a,b`` lists, ``[..]``/``(..)``), except
that a value in quotes, or a plain value with spaces, is kept verbatim as a string.
"""
from __future__ import annotations

from typing import Dict, Iterable

from .errors import SCLIPError


def parse_value(text: str):
    """One value, as mmengine's DictAction parses it, but quoted or spaced strings kept whole."""
    from mmengine.config import DictAction
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in '\'"':
        return stripped[1:-1]
    if ' ' in stripped and not any(c in stripped for c in ',[]()'):
        return stripped
    try:
        return DictAction._parse_iterable(text)
    except AssertionError as error:  # mmengine asserts on unbalanced brackets
        raise SCLIPError(f'--cfg-options value {text!r}: {error}; balance the brackets or quote the value.')


def parse_cfg_options(items: Iterable[str]) -> Dict[str, object]:
    """``['model.prob_thd=0.2', ...]`` -> ``{'model.prob_thd': 0.2, ...}``."""
    options: Dict[str, object] = {}
    for item in items or []:
        if '=' not in item:
            raise SCLIPError(f'--cfg-options {item!r}: write KEY=VALUE, e.g. model.logit_scale=40.')
        key, value = item.split('=', 1)
        if not key.strip():
            raise SCLIPError(f'--cfg-options {item!r}: the key before "=" is empty.')
        options[key.strip()] = parse_value(value)
    return options
