"""Per-class IoU as an inline SVG of horizontal bars, or as a heat-map table for many runs.

Why: a page must stay readable with ADE's 150 classes; horizontal bars grouped by class
(in the benchmark's class order) scale to any number of classes for a few runs, and SVG needs
no library. With many runs the bars of one class no longer fit a glance: a table of classes x
runs, each cell shaded by its IoU, shows the same numbers in a fraction of the height.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from .markup import Markup, html, join

# Categorical colours (Tableau 10), one per table row, the same in every chart.
COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
           '#9c755f', '#bab0ac']
LABEL_WIDTH, BAR_AREA, VALUE_WIDTH = 170, 420, 44
BAR, BAR_GAP, GROUP_GAP, AXIS = 9, 1, 7, 22
MAX_LABEL = 28  # characters; longer class names are cut, the full name is in the tooltip
MAX_BAR_SERIES = 4  # more runs on one benchmark: the heat-map table

Series = Tuple[str, str, Dict[str, Optional[float]]]  # (label, colour, class -> IoU percent)


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def present(value: Optional[float]) -> bool:
    return value is not None and value == value  # null or NaN: the class is not in the ground truth


def _text(x: float, y: float, text: str, anchor: str = 'start', css: str = '') -> Markup:
    return html('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" class="{}">{}</text>', x, y, anchor, css, text)


def legend(series: Sequence[Series]) -> Markup:
    """The runs' colours as HTML, which wraps: long labels are never cut."""
    return html('<div class="legend">{}</div>', join(
        html('<span class="entry"><span class="swatch" style="background:{}"></span>{}</span>', fill, label)
        for label, fill, _ in series))


def class_bars(classes: Sequence[str], series: Sequence[Series]) -> Markup:
    """A legend and an ``<svg>``: an axis 0-100 and, per class, one bar per series."""
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    group = len(series) * (BAR + BAR_GAP) + GROUP_GAP
    top = AXIS
    height = top + len(classes) * group + 4
    parts: List[Markup] = [legend(series), html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="{}" height="{}" viewBox="0 0 {} {}">',
        width, height, width, height)]
    for tick in range(0, 101, 20):
        x = LABEL_WIDTH + tick / 100 * BAR_AREA
        parts.append(html('<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" class="grid"/>', x, top - 6, x, height))
        parts.append(_text(x, top - 9, str(tick), 'middle', 'tick'))
    for c, name in enumerate(classes):
        y0 = top + c * group
        short = name if len(name) <= MAX_LABEL else name[:MAX_LABEL - 1] + '…'
        parts.append(html('<g class="class" data-class="{}"><title>{}</title>', name, name))
        parts.append(_text(LABEL_WIDTH - 6, y0 + group / 2 + 1, short, 'end', 'name'))
        for s, (label, fill, values) in enumerate(series):
            y = y0 + s * (BAR + BAR_GAP)
            value = values.get(name)
            if not present(value):
                parts.append(_text(LABEL_WIDTH + 3, y + BAR - 1, 'n/a', css='value'))
                continue
            bar = max(0.0, min(100.0, value)) / 100 * BAR_AREA
            parts.append(html('<rect class="bar" data-method="{}" data-value="{}" x="{}" y="{}" width="{:.2f}" '
                              'height="{}" fill="{}"><title>{}: {} {:.2f}</title></rect>',
                              label, value, LABEL_WIDTH, y, bar, BAR, fill, label, name, value))
            parts.append(_text(LABEL_WIDTH + bar + 3, y + BAR - 1, f'{value:.1f}', css='value'))
        parts.append(Markup('</g>'))
    parts.append(Markup('</svg>'))
    return join(parts, '\n')


def shade(value: float) -> str:
    """White (0) to the first method colour's blue (100), as CSS."""
    t = max(0.0, min(100.0, value)) / 100
    red, green, blue = (round(255 + (end - 255) * t) for end in (0x2b, 0x5c, 0x8a))
    return f'background:rgb({red},{green},{blue});color:{"#fff" if t > 0.55 else "#222"}'


def class_heatmap(classes: Sequence[str], series: Sequence[Series]) -> Markup:
    """Classes x runs, each cell the IoU shaded; columns numbered, the numbers in the legend."""
    key = html('<ol class="legend heat-key">{}</ol>', join(
        html('<li><span class="swatch" style="background:{}"></span>{}</li>', fill, label)
        for label, fill, _ in series))
    head = join(html('<th title="{}"><span class="swatch" style="background:{}"></span>{}</th>', label, fill, index)
                for index, (label, fill, _) in enumerate(series, 1))
    rows = []
    for name in classes:
        cells = []
        for label, _, values in series:
            value = values.get(name)
            cells.append(html('<td class="heat" data-method="{}" data-value="{}" style="{}" title="{}: {} {:.2f}">'
                              '{:.1f}</td>', label, value, shade(value), label, name, value, value)
                         if present(value) else
                         html('<td class="heat absent" data-method="{}" title="{}: not in the ground truth">'
                              '</td>', label, label))
        rows.append(html('<tr class="class" data-class="{}"><th class="name">{}</th>{}</tr>', name, name, join(cells)))
    return html('{}<table class="heatmap"><tr><th>class</th>{}</tr>{}</table>', key, head, join(rows, '\n'))


def class_chart(classes: Sequence[str], series: Sequence[Series], form: str = 'auto') -> Markup:
    """Bars for up to ``MAX_BAR_SERIES`` runs, the heat-map beyond (``form``: auto, bars, heatmap)."""
    heat = form == 'heatmap' or (form == 'auto' and len(series) > MAX_BAR_SERIES)
    return (class_heatmap if heat else class_bars)(classes, series)
