"""The number a report cell is compared with: ``sclip.paper.expected``, and for the average
the mean of the eight expected numbers.

Why: the number to reproduce is the one the official code reports for the commit followed
(its README), with the paper's beside it when they differ; each comes with its source.
"""
from __future__ import annotations

from typing import Optional

from ..paper import PUBLISHED, SOURCES, TABLE1_COLUMNS, Expected, expected_row
from ..paper import expected as expected_number

AVERAGE_SOURCE = 'mean of the eight expected numbers of the row'


def expected(method: Optional[str], benchmark: str) -> Optional[Expected]:
    """The expected mIoU of the published row ``method`` on ``benchmark`` (or ``'average'``),
    with its source; None without a published row or number."""
    if not method:
        return None
    if benchmark != 'average':
        return expected_number(method, benchmark)
    row = expected_row(method)
    paper = PUBLISHED.get(method, {}).get('average')
    paper_source = f'{SOURCES[method]} (average)' if paper is not None and method in SOURCES else None
    if len(row) < len(TABLE1_COLUMNS):
        return None if paper is None else Expected(paper, paper_source, '', paper, paper_source, False)
    value = round(sum(number.value for number in row.values()) / len(row), 2)
    second = ' (some quoted second-hand)' if any(n.second_hand for n in row.values()) else ''
    return Expected(value, AVERAGE_SOURCE + second, '', paper, paper_source, False)
