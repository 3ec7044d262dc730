"""The number a run is compared with: ``sclip.paper.expected`` where it exists, else the paper's row.

Why: the number to reproduce is the one the official code reports for the commit followed
(its README), with the paper's beside it when they differ; each comes with its source.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import paper


@dataclass(frozen=True)
class Expected:
    """The same fields as ``sclip.paper.Expected``."""
    value: float
    source: str
    setting: str
    paper: Optional[float]
    paper_source: Optional[str]
    second_hand: bool


def expected(method: Optional[str], benchmark: str):
    """The expected mIoU of the published row ``method`` on ``benchmark`` (or ``'average'``),
    with its source; None without a published row or number."""
    if not method:
        return None
    if hasattr(paper, 'expected'):
        try:
            return paper.expected(method, benchmark)
        except (KeyError, ValueError):
            return None
    value = paper.PUBLISHED.get(method, {}).get(benchmark)
    source = paper.SOURCES.get(method, '')
    return None if value is None else Expected(value, source, '', value, source, 'as quoted' in source)
