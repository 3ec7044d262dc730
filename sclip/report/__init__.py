"""One self-contained HTML report of finished runs and sweeps (``tools/report.py``).

``collect`` finds and loads every ``metrics.json``, ``svg`` draws per-class bars, ``images``
colours and embeds predictions, ``html`` puts the page together.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Sequence

from .collect import collect_runs
from .html import render

DEFAULT_TITLE = 'sclip report'


def write_report(folders: Sequence[str], out: str, images: int = 4, title: str = DEFAULT_TITLE) -> int:
    """Write the report of every run under ``folders`` to ``out``; returns the number of runs."""
    runs, superseded = collect_runs(folders)
    page = render(runs, superseded, folders, title, images)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    temporary = f'{out}.tmp'
    with open(temporary, 'w', encoding='utf-8') as f:
        f.write(page)
    os.replace(temporary, out)
    return len(runs)
