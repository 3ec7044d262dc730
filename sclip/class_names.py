"""Class-name files in the official formats.

One class a line; a line may hold several names (synonyms) separated by ``separator``: ", "
for SCLIP, NACLIP, SC-CLIP and ResCLIP, "," for ClearCLIP, "; " for ProxyCLIP (whose ADE-847
names contain commas). Every name becomes its own text query, and a class scores the max over
its names. As in the official ``get_cls_idx``, names are split on the separator exactly and
only the line break is removed (no other whitespace is touched: it is part of the prompt).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

from .errors import SCLIPError


@dataclass(frozen=True)
class ClassNames:
    """Parsed class-name file: ``queries[i]`` is a name, ``query_class[i]`` its class index."""
    path: str
    classes: List[List[str]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def queries(self) -> List[str]:
        return [name for names in self.classes for name in names]

    @property
    def query_class(self) -> List[int]:
        return [index for index, names in enumerate(self.classes) for _ in names]

    @property
    def display_names(self) -> List[str]:
        """The first name of each class, used in tables and legends."""
        return [names[0] for names in self.classes]


def class_key(names: List[str]) -> str:
    """A class's key in the template-ranking files that tools/floss_rankings.py writes: its names
    joined by ',', spaces removed (FLOSS removes the spaces of its NACLIP class names)."""
    return ','.join(names).replace(' ', '')


def parse_class_names(lines: List[str], source: str = '<text>', separator: str = ', ') -> ClassNames:
    """Parse one class per entry of ``lines``; ``source`` names where they came from."""
    if not separator:
        raise SCLIPError("model.class_name_separator is empty; use ', ' (SCLIP), ',' (ClearCLIP) or '; '.")
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()  # tolerate a trailing newline
    if not lines:
        raise SCLIPError(f'{source}: no class names found; write one class a line.')
    classes = []
    for number, line in enumerate(lines, start=1):
        names = line.rstrip('\r\n').split(separator)
        if not line.strip() or any(not name.strip() for name in names):
            raise SCLIPError(f'{source}: class {number} has an empty name ({line!r}); '
                             f'every line needs at least one name, synonyms separated by {separator!r}.')
        classes.append(names)
    return ClassNames(path=source, classes=classes)


def load_class_names(path: str, separator: str = ', ') -> ClassNames:
    """Read and parse a class-name file; errors name the file."""
    if not os.path.isfile(path):
        raise SCLIPError(f'class-name file {path!r} not found; set model.class_names to a file '
                         'with one class a line (see configs/class_names/).')
    with open(path, encoding='utf-8') as f:
        return parse_class_names(f.read().splitlines(), source=path, separator=separator)
