"""One self-contained HTML report of finished runs and sweeps (``tools/report.py``).

``collect`` finds and loads every ``metrics.json``, ``rows`` tells runs apart by fingerprint,
``expected`` gives the number each cell is compared with, ``svg`` draws per-class IoU,
``images`` colours and embeds predictions, ``html`` puts the page together (every value
escaped by ``markup``).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, Sequence

from ..files import check_output_name, describe_os_error, write_text_atomic
from .collect import collect_runs
from .html import render

DEFAULT_TITLE = 'sclip report'


def write_report(folders: Sequence[str], out: str, images: int = 4, title: str = DEFAULT_TITLE,
                 per_class: str = 'auto', warn: Callable[[str], None] = lambda message: None) -> int:
    """Write the report of every run under ``folders`` to ``out``; returns the number of runs
    shown. ``warn`` gets one line per picture left out of the page (unreadable, too large)."""
    check_output_name('--out', out, ('.html', '.htm'), ', e.g. report.html')
    collection = collect_runs(folders)
    page = render(collection, folders, title, images, per_class, warn)
    try:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        write_text_atomic(out, page)
    except OSError as error:
        raise describe_os_error(error, out, 'the report', '--out') from None
    return len(collection.runs)
