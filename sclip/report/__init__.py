"""One self-contained HTML report of finished runs and sweeps (``tools/report.py``).

``collect`` finds and loads every ``metrics.json``, ``svg`` draws per-class bars, ``images``
colours and embeds predictions, ``html`` puts the page together.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Sequence

from ..files import check_output_name, describe_os_error, write_text_atomic
from .collect import collect_runs
from .html import render

DEFAULT_TITLE = 'sclip report'


def write_report(folders: Sequence[str], out: str, images: int = 4, title: str = DEFAULT_TITLE) -> int:
    """Write the report of every run under ``folders`` to ``out``; returns the number of runs."""
    check_output_name('--out', out, ('.html', '.htm'), ', e.g. report.html')
    runs, superseded = collect_runs(folders)
    page = render(runs, superseded, folders, title, images)
    try:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        write_text_atomic(out, page)
    except OSError as error:
        raise describe_os_error(error, out, 'the report', '--out') from None
    return len(runs)
