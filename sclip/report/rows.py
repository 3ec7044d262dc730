"""Which runs are the same run, and which table row each run gets.

Why: two metrics.json files of one method, variant and benchmark are the same result only when
their fingerprints (config, weights, text, data, code, libraries) are equal; otherwise they
measured different things, and neither may stand in for the other. Equal fingerprints are shown
once (the latest); different ones get rows of their own, labelled by what differs: weights,
foundation model, templates, code or library versions (the same for every benchmark of a row),
or data, class names and config (a benchmark's own; each such run gets a row of its own).
"""
from __future__ import annotations

import os.path as osp
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .collect import Run

PREFIX = 12  # characters of a sha256 in a label


def _short(value: Any) -> str:
    return str(value)[:PREFIX] if value else '?'


def _part(run: Run, name: str) -> dict:
    value = run.identity.get(name)
    return value if isinstance(value, dict) else {}


def _weights(run: Run) -> Optional[str]:
    weights = _part(run, 'weights')
    source = weights.get('sha256') or osp.basename(str(weights.get('source') or '')) or None
    return f'weights {weights.get("arch") or "?"} {_short(source)}' if weights else None


def _vfm(run: Run) -> Optional[str]:
    vfm = _part(run, 'vfm')
    source = vfm.get('sha256') or osp.basename(str(vfm.get('source') or '')) or None
    return f'VFM {vfm.get("type") or "?"} {_short(source)}' if vfm else None


def _templates(run: Run) -> Optional[str]:
    text = _part(run, 'text')
    return f'templates {text.get("templates") or "?"} {_short(text.get("templates_sha256"))}' if text else None


def _code(run: Run) -> Optional[str]:
    code = _part(run, 'code')
    return f'code {code.get("version") or "?"} {_short(code.get("source_sha256"))}' if code else None


def _libraries(run: Run) -> Optional[str]:
    libraries = _part(run, 'libraries')
    return ' '.join(f'{name} {version}' for name, version in sorted(libraries.items(), key=str)) or None


def _data(run: Run) -> Optional[str]:
    data = _part(run, 'data')
    return (f'data {data.get("root") or "?"} ({data.get("num_images", "?")} images, '
            f'files {_short(data.get("files_sha256"))})') if data else None


def _class_names(run: Run) -> Optional[str]:
    text = _part(run, 'text')
    return f'class names {_short(text.get("class_names_sha256"))}' if text else None


def _config(run: Run) -> Optional[str]:
    config = _part(run, 'config')
    return f'config {_short(config.get("resolved_sha256"))}' if config else None


# What a run of one row is on, whatever the benchmark; then what belongs to one benchmark.
ROW_PARTS: Dict[str, Callable[[Run], Optional[str]]] = {
    'weights': _weights, 'vfm': _vfm, 'templates': _templates, 'code': _code, 'libraries': _libraries}
CELL_PARTS: Dict[str, Callable[[Run], Optional[str]]] = {
    'data': _data, 'class names': _class_names, 'config': _config}
# Only the fingerprints differ (parts the description leaves out, e.g. the library set): say that.
LAST_RESORT = {'fingerprint': lambda run: f'fingerprint {_short(run.fingerprint)}'}


def differing(runs: Sequence[Run], parts: Dict[str, Callable[[Run], Optional[str]]]) -> List[str]:
    """The parts whose description is not the same for all ``runs``."""
    return [name for name, describe in parts.items() if len({describe(run) for run in runs}) > 1]


def describe(run: Run, names: Sequence[str]) -> str:
    every = {**ROW_PARTS, **CELL_PARTS, **LAST_RESORT}
    if not run.fingerprint:
        return f'no identity recorded ({osp.basename(osp.dirname(run.path))})'
    return '; '.join(every[name](run) or f'no {name}' for name in names)


def latest_first(runs: Sequence[Run]) -> List[Run]:
    return sorted(runs, key=lambda r: (r.finished, r.path), reverse=True)


def assign_rows(runs: Sequence[Run]) -> Tuple[List[Run], List[Tuple[Run, Run]]]:
    """(runs to show, each with its ``setting``; (duplicate, run shown) pairs of equal fingerprints)."""
    duplicates, distinct = [], []
    shown_by_fingerprint: Dict[Tuple[str, str, str], Run] = {}
    for run in latest_first(runs):
        key = (run.method, run.variant, run.benchmark, run.fingerprint)
        if run.fingerprint and key in shown_by_fingerprint:
            duplicates.append((run, shown_by_fingerprint[key]))
            continue
        shown_by_fingerprint[key] = run
        distinct.append(run)
    by_variant: Dict[Tuple[str, str], List[Run]] = defaultdict(list)
    for run in distinct:
        by_variant[(run.method, run.variant)].append(run)
    for group in by_variant.values():
        _split(group)
    return distinct, duplicates


def _split(group: List[Run]) -> None:
    """Give the runs of one (method, variant) their ``setting``, so that no two runs share a cell."""
    cells: Dict[str, List[Run]] = defaultdict(list)
    for run in group:
        cells[run.benchmark].append(run)
    crowded = [cell for cell in cells.values() if len(cell) > 1]
    row_parts = sorted({name for cell in crowded for name in differing(cell, ROW_PARTS)}, key=list(ROW_PARTS).index)
    for run in group:
        run.setting = describe(run, row_parts) if row_parts else ''
    taken = defaultdict(list)
    for run in latest_first(group):
        taken[(run.setting, run.benchmark)].append(run)
    for same_cell in taken.values():
        _, *others = same_cell  # the newest keeps the row; each other gets one saying what it is on
        names = differing(same_cell, CELL_PARTS) or differing(same_cell, ROW_PARTS) or list(LAST_RESORT)
        for run in others:
            own = describe(run, names)
            run.setting = f'{run.setting}; {own}' if run.setting else own
    seen: Dict[Tuple[str, str], int] = defaultdict(int)
    for run in latest_first(group):  # identical descriptions (e.g. two runs without identity): number them
        key = (run.setting, run.benchmark)
        seen[key] += 1
        if seen[key] > 1:
            run.setting = f'{run.setting} #{seen[key]}'
