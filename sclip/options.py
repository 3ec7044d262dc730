"""``--cfg-options KEY=VALUE ...`` parsed as mmengine does, without its losses.

Why: mmengine's ``DictAction`` removes every space from a value (a quoted path with spaces
loses them) and raises a bare ValueError on an argument without ``=``. Values here follow
mmengine's rules (ints, floats, true/false, None, ``a,b`` lists, ``[..]``/``(..)``), except
that spaces inside a value are kept (``data_root=/my data (copy)/VOC`` stays that path) and a
value in quotes is a string verbatim.
"""
from __future__ import annotations

from typing import Dict, Iterable, List

from .errors import SCLIPError


def split_values(text: str, source: str = '') -> List[str]:
    """Split ``a,b,(1,2),[3,4]`` on the commas that are not inside brackets or quotes (each part
    stripped, empty parts dropped); unbalanced brackets are one line naming ``source``."""
    values, depth, current, quote = [], 0, '', None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in '\'"':
            quote = char
        elif char in '([{':
            depth += 1
        elif char in ')]}':
            depth -= 1
        elif char == ',' and depth == 0:
            values.append(current)
            current = ''
            continue
        if depth < 0:
            break
        current += char
    if depth != 0:
        raise SCLIPError(f'{source or repr(text)}: unbalanced brackets; balance them or quote the value.')
    values.append(current)
    return [v.strip() for v in values if v.strip()]


def _parse(text: str, item: str):
    """mmengine's ``DictAction._parse_iterable`` without its ``replace(' ', '')``: elements are
    stripped, spaces inside them kept."""
    from mmengine.config import DictAction
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in '\'"':
        return text[1:-1]
    is_tuple = text.startswith('(') and text.endswith(')')
    if is_tuple or (text.startswith('[') and text.endswith(']')):
        text = text[1:-1]
    elif ',' not in text:
        return DictAction._parse_int_float_bool(text)
    values = [_parse(part, item) for part in split_values(text, f'--cfg-options value {item!r}')]
    return tuple(values) if is_tuple else values


def parse_value(text: str):
    """One value, as mmengine's DictAction parses it, but spaces inside a value kept."""
    return _parse(text, text)


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
