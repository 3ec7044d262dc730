"""Find every finished run's ``metrics.json`` under some folders and load it as a ``Run``.

Why: runs and sweeps leave one ``metrics.json`` per (method, variant, benchmark) anywhere
under their work dirs; the report needs them as uniform records, including old files
that predate the schema-2 keys (``method``, ``benchmark``, ``identity``...). Every field is
checked for its type here, so a hand-edited or corrupted file is one line naming the file
and the key, never a traceback further down.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import SCLIPError
from ..identity import neutral_override
from ..paper import paper_row

# Display names of the paper keys, for old metrics.json files without a ``method`` key.
METHOD_NAMES = {'sclip': 'SCLIP', 'clip': 'CLIP', 'maskclip': 'MaskCLIP', 'clearclip': 'ClearCLIP',
                'naclip': 'NACLIP'}
NUMBER = (int, float)
MISSING = object()


@dataclass
class Run:
    """One finished evaluation: what was run, on what, and what it scored."""
    path: str                              # the metrics.json
    method: str
    benchmark: str
    paper_key: Optional[str]               # the published row it reproduces, None for a variant
    miou: Optional[float]
    class_iou: Dict[str, Optional[float]]  # class name -> percent (None: class absent)
    overrides: Dict[str, Any] = field(default_factory=dict)  # those that change what is computed
    identity: Dict[str, Any] = field(default_factory=dict)
    predictions_dir: Optional[str] = None  # resolved to an existing folder, else None
    finished: str = ''
    variant: str = ''                      # overrides not shared by every run, compact
    setting: str = ''                      # what tells it apart from runs of the same variant

    @property
    def fingerprint(self) -> Optional[str]:
        value = self.identity.get('fingerprint')
        return value if isinstance(value, str) and value else None

    @property
    def row(self) -> Tuple[str, str, str]:
        return self.method, self.variant, self.setting

    @property
    def label(self) -> str:
        return row_label(self.row)


def row_label(row: Tuple[str, str, str]) -> str:
    """``SCLIP [attention.type=csa_q; weights ViT-B-16 5806e77cd80f]``."""
    method, *rest = row
    details = '; '.join(part for part in rest if part)
    return f'{method} [{details}]' if details else method


def find_metrics(folders: Sequence[str]) -> List[str]:
    """Every ``metrics.json`` under ``folders`` (recursively), each once, sorted."""
    found = set()
    for folder in folders:
        if not osp.isdir(folder):
            raise SCLIPError(f'{folder}: no such folder; pass work dirs of finished tools/test.py '
                             'or tools/sweep.py runs.')
        for parent, _, files in os.walk(folder):
            if 'metrics.json' in files:
                found.add(osp.realpath(osp.join(parent, 'metrics.json')))
    if not found:
        raise SCLIPError(f'no metrics.json found under {", ".join(folders)}; pass work dirs of '
                         'finished tools/test.py or tools/sweep.py runs.')
    return sorted(found)


def short_override(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f'{key[len("model."):] if key.startswith("model.") else key}={text}'


def guess_from_config(config: str) -> Tuple[Optional[str], Optional[str]]:
    """(paper key, benchmark) from a config path such as configs/clearclip/voc21.py or
    configs/sclip_voc21.py, for files written before metrics.json named them."""
    stem = osp.splitext(osp.basename(config or ''))[0]
    parent = osp.basename(osp.dirname(config or ''))
    if parent in METHOD_NAMES:
        return parent, stem
    if stem.startswith('sclip_'):
        return 'sclip', stem[len('sclip_'):]
    return None, stem or None


def resolve_folder(path: Optional[str], metrics_path: str) -> Optional[str]:
    """``path`` as written by the run (absolute, or relative to where it ran), found from here
    or from the metrics.json's folder; None when it is not an existing folder."""
    if not path:
        return None
    here = osp.dirname(metrics_path)
    for candidate in (path, osp.join(here, path), osp.join(here, osp.basename(osp.normpath(path)))):
        if osp.isdir(candidate):
            return candidate
    return None


KIND_NAMES = {dict: 'an object', str: 'a string', list: 'a list', NUMBER: 'a number'}


def kind_of(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    return next((name for kind, name in KIND_NAMES.items() if isinstance(value, kind)), type(value).__name__)


def typed(path: str, metrics: dict, key: str, kind, default: Any = None) -> Any:
    """``metrics[key]`` (``key`` dotted: ``identity.config.overrides``) when it is of ``kind``;
    ``default`` when it or a parent is absent or null; a one-line error naming the file and the
    key otherwise."""
    value: Any = metrics
    for depth, part in enumerate(key.split('.')):
        if not isinstance(value, dict):
            parent = '.'.join(key.split('.')[:depth])
            raise SCLIPError(f'{path}: "{parent}" is {kind_of(value)}, not an object; fix or delete this '
                             'metrics.json (or rerun that run).')
        value = value.get(part, MISSING)
        if value is MISSING or value is None:
            return default
    if isinstance(value, bool) or not isinstance(value, kind):
        raise SCLIPError(f'{path}: "{key}" is {kind_of(value)} ({json.dumps(value)[:40]}), not '
                         f'{KIND_NAMES[kind]}; fix or delete this metrics.json (or rerun that run).')
    return value


def number(path: str, key: str, value: Any) -> Optional[float]:
    """A percentage from the file: a number (NaN means absent) or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, NUMBER):
        raise SCLIPError(f'{path}: "{key}" is {kind_of(value)} ({json.dumps(value)[:40]}), not a number; '
                         'fix or delete this metrics.json (or rerun that run).')
    value = float(value)
    return None if math.isnan(value) else value


def load_run(path: str) -> Run:
    try:
        with open(path, encoding='utf-8') as f:
            metrics = json.load(f)
    except (OSError, ValueError) as error:
        raise SCLIPError(f'{path}: cannot be read as JSON ({error}); delete it or rerun that run.')
    if not isinstance(metrics, dict):
        raise SCLIPError(f'{path}: not a metrics.json (a JSON object was expected); delete it.')
    if 'mIoU' not in metrics:
        raise SCLIPError(f'{path}: not a metrics.json of a finished run (no mIoU); delete it or rerun that run.')
    identity = typed(path, metrics, 'identity', dict, {})
    for part in ('config', 'weights', 'vfm', 'text', 'data', 'code', 'libraries'):
        typed(path, metrics, f'identity.{part}', dict)
    typed(path, metrics, 'identity.fingerprint', str)
    guessed_key, guessed_benchmark = guess_from_config(typed(path, metrics, 'config', str, ''))
    paper_key = typed(path, metrics, 'paper_key', str, guessed_key)
    method = (typed(path, metrics, 'method', str) or METHOD_NAMES.get(paper_key or '', paper_key)
              or osp.basename(osp.dirname(path)))
    overrides = typed(path, metrics, 'identity.config.overrides', dict, {})
    class_iou = typed(path, metrics, 'per_class.IoU', dict, {})
    return Run(path=path, method=method, benchmark=typed(path, metrics, 'benchmark', str) or guessed_benchmark
               or 'unknown', paper_key=paper_row(paper_key, overrides),  # a variant is not its config's row
               miou=number(path, 'mIoU', metrics['mIoU']),
               class_iou={str(name): number(path, f'per_class.IoU.{name}', value) for name, value in class_iou.items()},
               overrides={str(k): v for k, v in overrides.items() if not neutral_override(k)}, identity=identity,
               predictions_dir=resolve_folder(typed(path, metrics, 'predictions_dir', str), path),
               finished=typed(path, metrics, 'finished', str, ''))


@dataclass
class Collection:
    """What the page shows: one run per table cell, and what was left out or set apart, and why."""
    runs: List[Run]
    duplicates: List[Tuple[Run, Run]]   # (left out, the run shown): the same fingerprint
    shared_overrides: Dict[str, Any]    # overrides every run has: not part of any variant


def collect_runs(folders: Sequence[str]) -> Collection:
    from .rows import assign_rows
    runs = [load_run(p) for p in find_metrics(folders)]
    shared = shared_overrides(runs)
    for run in runs:
        run.variant = ', '.join(short_override(k, v) for k, v in run.overrides.items() if k not in shared)
    shown, duplicates = assign_rows(runs)
    return Collection(shown, duplicates, shared)


def shared_overrides(runs: Sequence[Run]) -> Dict[str, Any]:
    """The (key, value) overrides that every run has, when there are several runs: they say how
    the whole set was run, not what tells one run from another."""
    if len(runs) < 2:
        return {}
    first, *others = runs
    return {k: v for k, v in first.overrides.items()
            if all(k in run.overrides and run.overrides[k] == v for run in others)}
