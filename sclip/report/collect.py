"""Find every finished run's ``metrics.json`` under some folders and load it as a ``Run``.

Why: runs and sweeps leave one ``metrics.json`` per (method, variant, benchmark) anywhere
under their work dirs; the report needs them as uniform records, including old files
that predate the schema-2 keys (``method``, ``benchmark``, ``identity``...).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import SCLIPError
from ..paper import paper_row

# Overrides that say where the weights or data live, or how they are loaded: shown with the
# run's identity, not in the variant name (they do not change what is being measured).
NOT_VARIANT_SUFFIXES = ('pretrained', 'data_root', 'num_workers', 'persistent_workers',
                        'batch_size', 'work_dir')
# Display names of the paper keys, for old metrics.json files without a ``method`` key.
METHOD_NAMES = {'sclip': 'SCLIP', 'clip': 'CLIP', 'maskclip': 'MaskCLIP', 'clearclip': 'ClearCLIP',
                'naclip': 'NACLIP'}


@dataclass
class Run:
    """One finished evaluation: what was run, on what, and what it scored."""
    path: str                              # the metrics.json
    method: str
    variant: str                           # compact overrides, '' for the config as is
    benchmark: str
    paper_key: Optional[str]
    miou: Optional[float]
    class_iou: Dict[str, Optional[float]]  # class name -> percent (None: class absent)
    identity: Dict[str, Any] = field(default_factory=dict)
    predictions_dir: Optional[str] = None  # resolved to an existing folder, else None
    finished: str = ''

    @property
    def row(self) -> Tuple[str, str]:
        return self.method, self.variant

    @property
    def label(self) -> str:
        return f'{self.method} [{self.variant}]' if self.variant else self.method


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


def variant_of(overrides: Dict[str, Any]) -> str:
    """``model.attention.type=csa_q, prob_thd=0.2``: the overrides that change the method,
    without the ``model.`` prefix."""
    parts = []
    for key, value in overrides.items():
        if key.endswith(NOT_VARIANT_SUFFIXES):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f'{key[len("model."):] if key.startswith("model.") else key}={text}')
    return ', '.join(parts)


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


def load_run(path: str) -> Run:
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as error:
        raise SCLIPError(f'{path}: cannot be read as JSON ({error}); delete it or rerun that run.')
    if not isinstance(metrics, dict):
        raise SCLIPError(f'{path}: not a metrics.json (a JSON object was expected); delete it.')
    if 'mIoU' not in metrics:
        raise SCLIPError(f'{path}: not a metrics.json of a finished run (no mIoU); delete it or rerun that run.')
    identity = metrics.get('identity') or {}
    guessed_key, guessed_benchmark = guess_from_config(metrics.get('config', ''))
    paper_key = metrics.get('paper_key', guessed_key)
    method = metrics.get('method') or METHOD_NAMES.get(paper_key, paper_key) or osp.basename(osp.dirname(path))
    overrides = (identity.get('config') or {}).get('overrides') or {}
    paper_key = paper_row(paper_key, overrides)  # a variant is not its config's paper row
    miou = metrics.get('mIoU')
    return Run(path=path, method=str(method), variant=variant_of(overrides),
               benchmark=str(metrics.get('benchmark') or guessed_benchmark or 'unknown'),
               paper_key=paper_key, miou=None if miou is None else float(miou),
               class_iou=dict((metrics.get('per_class') or {}).get('IoU') or {}), identity=identity,
               predictions_dir=resolve_folder(metrics.get('predictions_dir'), path),
               finished=str(metrics.get('finished') or ''))


def collect_runs(folders: Sequence[str]) -> Tuple[List[Run], List[Run]]:
    """(runs, superseded): one run per (method, variant, benchmark), the last finished; the
    others are returned so the page can say they were left out."""
    latest: Dict[Tuple[str, str, str], Run] = {}
    superseded = []
    for run in sorted((load_run(p) for p in find_metrics(folders)), key=lambda r: (r.finished, r.path)):
        key = (*run.row, run.benchmark)
        if key in latest:
            superseded.append(latest[key])
        latest[key] = run
    return list(latest.values()), superseded
