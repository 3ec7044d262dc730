"""Per-class IoU as an inline SVG of horizontal bars, one colour per method.

Why: a page must stay readable with ADE's 150 classes; horizontal bars grouped by class
(in the benchmark's class order) scale to any number of classes, and SVG needs no library.
"""
from __future__ import annotations

from html import escape
from typing import Dict, List, Optional, Sequence, Tuple

# Categorical colours (Tableau 10), one per table row, the same in every chart.
COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
           '#9c755f', '#bab0ac']
LABEL_WIDTH, BAR_AREA, VALUE_WIDTH = 170, 420, 44
BAR, BAR_GAP, GROUP_GAP, LEGEND_ROW, AXIS = 9, 1, 7, 16, 22
MAX_LABEL = 28  # characters; longer class names are cut, the full name is in the tooltip

Series = Tuple[str, str, Dict[str, Optional[float]]]  # (label, colour, class -> IoU percent)


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _text(x: float, y: float, text: str, anchor: str = 'start', css: str = '') -> str:
    css_attribute = f' class="{css}"' if css else ''
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{css_attribute}>{escape(text)}</text>'


def class_bars(classes: Sequence[str], series: Sequence[Series]) -> str:
    """An ``<svg>``: a legend, an axis 0-100 and, per class, one bar per series."""
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    group = len(series) * (BAR + BAR_GAP) + GROUP_GAP
    top = len(series) * LEGEND_ROW + AXIS
    height = top + len(classes) * group + 4
    parts: List[str] = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="{width}" '
                        f'height="{height}" viewBox="0 0 {width} {height}">']
    for i, (label, fill, _) in enumerate(series):
        y = i * LEGEND_ROW
        parts.append(f'<rect class="legend" x="{LABEL_WIDTH}" y="{y + 3}" width="10" height="10" fill="{fill}"/>')
        parts.append(_text(LABEL_WIDTH + 16, y + 12, label))
    for tick in range(0, 101, 20):
        x = LABEL_WIDTH + tick / 100 * BAR_AREA
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height}" class="grid"/>')
        parts.append(_text(x, top - 9, str(tick), 'middle', 'tick'))
    for c, name in enumerate(classes):
        y0 = top + c * group
        short = name if len(name) <= MAX_LABEL else name[:MAX_LABEL - 1] + '…'
        parts.append(f'<g class="class" data-class="{escape(name)}"><title>{escape(name)}</title>')
        parts.append(_text(LABEL_WIDTH - 6, y0 + group / 2 + 1, short, 'end', 'name'))
        for s, (label, fill, values) in enumerate(series):
            y = y0 + s * (BAR + BAR_GAP)
            value = values.get(name)
            if value is None or value != value:  # null (or NaN): the class is not in the ground truth
                parts.append(_text(LABEL_WIDTH + 3, y + BAR - 1, 'n/a', css='value'))
                continue
            bar = max(0.0, min(100.0, float(value))) / 100 * BAR_AREA
            parts.append(f'<rect class="bar" data-method="{escape(label)}" data-value="{value}" x="{LABEL_WIDTH}" '
                         f'y="{y}" width="{bar:.2f}" height="{BAR}" fill="{fill}">'
                         f'<title>{escape(label)}: {escape(name)} {float(value):.2f}</title></rect>')
            parts.append(_text(LABEL_WIDTH + bar + 3, y + BAR - 1, f'{float(value):.1f}', css='value'))
        parts.append('</g>')
    parts.append('</svg>')
    return '\n'.join(parts)
