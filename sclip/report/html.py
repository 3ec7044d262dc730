"""Render the collected runs as one self-contained HTML page (inline CSS, SVG and images).

Why: one file that opens anywhere, offline, with the table against the published numbers,
per-class bars, predictions side by side and what exactly each number came from.
"""
from __future__ import annotations

import os.path as osp
from html import escape
from typing import List, Optional, Sequence, Tuple

from ..paper import PUBLISHED, TABLE1_COLUMNS
from . import images as pictures
from .collect import Run
from .svg import class_bars, colour

EXTRA_COLUMNS = {'coco_stuff10k': 'Stuff10k'}
TABLE1_KEYS = [key for key, _ in TABLE1_COLUMNS]
PREFIX = 12  # characters of a sha256 shown
CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:24px 32px}
.scroll{overflow-x:auto}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:14px 0 6px}.muted,.note{color:#666}.note{font-size:13px}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f5f5f5;font-weight:600}table.results td{text-align:right;white-space:nowrap}
table.results td.row{text-align:left}.ours{font-weight:600;display:block}
.pub{color:#666;font-size:12px}.delta{font-size:12px;margin-left:4px}
.good{color:#1a7f37}.fair{color:#9a6700}.poor{color:#cf222e}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
.charts{display:flex;flex-wrap:wrap;gap:8px 32px}.chart{flex:0 0 auto}
svg.bars{font-size:10px}svg.bars .grid{stroke:#e4e4e4}svg.bars .tick,svg.bars .value{fill:#666;font-size:9px}
table.grid td{text-align:center;font-size:12px;padding:2px}.sha{white-space:nowrap}table.grid img{display:block}
table.identity td{font-size:12px;overflow-wrap:anywhere;max-width:320px}code{font-size:12px}
"""


def rows_in_order(runs: Sequence[Run]) -> List[Tuple[str, str]]:
    """Table rows (method, variant): paper methods in PUBLISHED order, the plain config first."""
    order = list(PUBLISHED)
    keys = {run.row: order.index(run.paper_key) if run.paper_key in order else len(order) for run in runs}
    return sorted(keys, key=lambda row: (keys[row], row[0], row[1]))


def benchmark_columns(runs: Sequence[Run]) -> List[Tuple[str, str]]:
    present = {run.benchmark for run in runs}
    known = [(k, label) for k, label in [*TABLE1_COLUMNS, *EXTRA_COLUMNS.items()] if k in present]
    return known + [(k, k) for k in sorted(present - {k for k, _ in known})]


def row_label(row: Tuple[str, str]) -> str:
    return f'{row[0]} [{row[1]}]' if row[1] else row[0]


def fmt(value: Optional[float], digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def delta_html(ours: Optional[float], published: Optional[float]) -> str:
    """The published number and ``ours - published``, coloured by how far off it is."""
    if published is None:
        return ''
    if ours is None:
        return f'<span class="pub" title="published">paper {published:.1f}</span>'
    delta = ours - published
    grade = 'good' if abs(delta) <= 0.5 else 'fair' if abs(delta) <= 1.0 else 'poor'
    return (f'<span class="pub" title="published">paper {published:.1f}</span>'
            f'<span class="delta {grade}">{delta:+.2f}</span>')


def results_table(runs: Sequence[Run], rows: List[Tuple[str, str]], columns: List[Tuple[str, str]]) -> str:
    by_cell = {(*run.row, run.benchmark): run for run in runs}
    complete = [row for row in rows if all((*row, k) in by_cell for k in TABLE1_KEYS)]
    head = ''.join(f'<th>{escape(label)}</th>' for _, label in columns) + ('<th>Avg</th>' if complete else '')
    lines = [f'<table class="results"><tr><th>method [variant]</th>{head}</tr>']
    for index, row in enumerate(rows):
        cells = [f'<td class="row"><span class="swatch" style="background:{colour(index)}"></span>'
                 f'{escape(row_label(row))}</td>']
        paper_key = next(run.paper_key for run in runs if run.row == row)
        published = PUBLISHED.get(paper_key or '', {})
        for key, _ in columns:
            run = by_cell.get((*row, key))
            if run is None:
                cells.append('<td class="empty">–</td>')
                continue
            cells.append(f'<td class="cell" data-row="{escape(row_label(row))}" data-benchmark="{key}">'
                         f'<span class="ours">{fmt(run.miou)}</span>{delta_html(run.miou, published.get(key))}</td>')
        if complete:
            if row in complete and all(by_cell[(*row, k)].miou is not None for k in TABLE1_KEYS):
                average = sum(by_cell[(*row, k)].miou for k in TABLE1_KEYS) / len(TABLE1_KEYS)
                compared = delta_html(average, published.get('average'))
                cells.append(f'<td class="cell average" data-row="{escape(row_label(row))}" data-benchmark="average">'
                             f'<span class="ours">{fmt(average)}</span>{compared}</td>')
            else:
                cells.append('<td class="empty">–</td>')
        lines.append(f'<tr>{"".join(cells)}</tr>')
    lines.append('</table>')
    note = ('Avg: mean over the eight Table-1 benchmarks, for rows that have all eight.' if complete else
            'No row has all eight Table-1 benchmarks, so no average is shown.')
    return '\n'.join(lines) + (f'<p class="note">Each cell: our mIoU (%), the published number of the '
                               f'method\'s paper and ours − published (green within 0.5, amber within 1.0, '
                               f'red beyond). {note}</p>')


def class_charts(runs: Sequence[Run], rows: List[Tuple[str, str]], columns: List[Tuple[str, str]]) -> str:
    parts = ['<div class="charts">']
    for key, label in columns:
        ran = sorted((r for r in runs if r.benchmark == key and r.class_iou), key=lambda r: rows.index(r.row))
        if not ran:
            parts.append(f'<div class="chart"><h3>{escape(label)}</h3><p class="note">No per-class IoU in these '
                         'metrics.json files.</p></div>')
            continue
        classes = list(dict.fromkeys(name for run in ran for name in run.class_iou))
        series = [(run.label, colour(rows.index(run.row)), run.class_iou) for run in ran]
        parts.append(f'<div class="chart" data-benchmark="{key}"><h3>{escape(label)} <span class="muted">'
                     f'({len(classes)} classes, IoU %)</span></h3>{class_bars(classes, series)}</div>')
    parts.append('</div>')
    return '\n'.join(parts)


def qualitative_grid(runs: Sequence[Run], rows: List[Tuple[str, str]], key: str, label: str, count: int) -> str:
    """Images x (image, ground truth, each method's prediction), or a note saying why not."""
    ran = sorted((r for r in runs if r.benchmark == key), key=lambda r: rows.index(r.row))
    with_predictions = [r for r in ran if r.predictions_dir]
    title = f'<h3>{escape(label)}</h3>'
    if not with_predictions:
        return f'{title}<p class="note">No saved predictions (run tools/test.py with --out DIR); grid skipped.</p>'
    missing = [r.label for r in ran if not r.predictions_dir]
    layout = pictures.data_layout(with_predictions[0])
    found = [(stem, pictures.find_image(layout, stem)) for stem in pictures.prediction_stems(with_predictions)]
    chosen = pictures.choose_evenly([f for f in found if f[1]], count)
    if not chosen:
        return (f'{title}<p class="note">No image is both in every predictions folder and under '
                f'{escape(str(layout.img_dir))}; grid skipped.</p>')
    grid_rows, any_truth = [], False
    for stem, (image_path, name) in chosen:
        uri, size = pictures.image_thumbnail(image_path)
        truth_path = pictures.ground_truth_path(layout, name)
        truth = pictures.label_thumbnail(truth_path, size, layout) if truth_path else None
        any_truth = any_truth or truth is not None
        predictions = [pictures.label_thumbnail(osp.join(r.predictions_dir, stem + '.png'), size, layout)
                       for r in with_predictions]
        grid_rows.append((stem, uri, truth, predictions))
    head = '<th>image</th>' + ('<th>ground truth</th>' if any_truth else '') + ''.join(
        f'<th><span class="swatch" style="background:{colour(rows.index(r.row))}"></span>{escape(r.label)}</th>'
        for r in with_predictions)
    lines = [f'{title}<div class="scroll"><table class="grid" data-benchmark="{key}"><tr>{head}</tr>']
    for stem, uri, truth, predictions in grid_rows:
        cells = [f'<td><img src="{uri}" alt="{escape(stem)}">{escape(stem)}</td>']
        if any_truth:
            cells.append(f'<td><img src="{truth}" alt="ground truth"></td>' if truth else '<td>not found</td>')
        cells += [f'<td><img src="{p}" alt="prediction"></td>' if p else '<td>unreadable</td>' for p in predictions]
        lines.append(f'<tr>{"".join(cells)}</tr>')
    lines.append('</table></div>')
    if missing:
        lines.append(f'<p class="note">Without saved predictions: {escape(", ".join(missing))}.</p>')
    return '\n'.join(lines)


def short(value: Optional[str]) -> str:
    """The first characters of a hash, unbreakable."""
    return f'<span class="sha">{escape(value[:PREFIX])}</span>' if value else 'unknown'


def identity_cells(run: Run) -> List[str]:
    identity = run.identity
    weights, vfm = identity.get('weights') or {}, identity.get('vfm')
    config, data = identity.get('config') or {}, identity.get('data') or {}
    code, libraries = identity.get('code') or {}, identity.get('libraries') or {}
    weights_text = (f'{escape(str(weights.get("arch", "?")))}<br>{escape(str(weights.get("source", "?")))}'
                    f'<br>sha256 <code>{short(weights.get("sha256"))}</code>') if weights else 'not recorded'
    if vfm:
        weights_text += (f'<br>VFM {escape(str(vfm.get("type", "?")))}: {escape(str(vfm.get("source", "?")))}'
                         f'<br>sha256 <code>{short(vfm.get("sha256"))}</code>')
    overrides = config.get('overrides') or {}
    config_text = escape(str(config.get('file') or '?')) + ''.join(
        f'<br><code>{escape(f"{k}={v}")}</code>' for k, v in overrides.items())
    data_text = (f'{escape(str(data.get("type", "?")))}<br>{escape(str(data.get("root", "?")))}'
                 f'<br>{escape(str(data.get("num_images", "?")))} images') if data else 'not recorded'
    code_text = (f'{escape(str(code.get("version", "?")))}, git <code>{short(code.get("git"))}</code>'
                 f'<br>source <code>{short(code.get("source_sha256"))}</code>') if code else 'not recorded'
    library_text = '<br>'.join(escape(f'{name} {version}') for name, version in libraries.items()) or 'not recorded'
    run_text = (f'{escape(run.label)} on {escape(run.benchmark)}<br><span class="muted">{escape(run.path)}'
                f'<br>{escape(run.finished)}</span>')
    return [run_text, weights_text, config_text, data_text, code_text, library_text,
            f'<code>{short(identity.get("fingerprint"))}</code>']


def identity_table(runs: Sequence[Run], rows: List[Tuple[str, str]]) -> str:
    head = ''.join(f'<th>{name}</th>' for name in ('run', 'weights', 'config + overrides', 'data', 'code',
                                                   'libraries', 'fingerprint'))
    lines = [f'<table class="identity"><tr>{head}</tr>']
    for run in sorted(runs, key=lambda r: (rows.index(r.row), r.benchmark)):
        lines.append('<tr>' + ''.join(f'<td>{cell}</td>' for cell in identity_cells(run)) + '</tr>')
    lines.append('</table>')
    return '\n'.join(lines)


def render(runs: Sequence[Run], superseded: Sequence[Run], folders: Sequence[str], title: str, images: int) -> str:
    rows, columns = rows_in_order(runs), benchmark_columns(runs)
    grids = (''.join(qualitative_grid(runs, rows, key, label, images) for key, label in columns) if images > 0
             else '<p class="note">Skipped (--images 0).</p>')
    left_out = ''.join(f'<li>{escape(r.path)}</li>' for r in superseded)
    notes = (f'<h2>Left out</h2><p class="note">Older runs of the same method, variant and benchmark:</p>'
             f'<ul class="note">{left_out}</ul>') if superseded else ''
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">{len(runs)} runs, {len(rows)} methods/variants, {len(columns)} benchmarks, from
{escape(', '.join(folders))}.</p>
<section id="results"><h2>mIoU</h2>
{results_table(runs, rows, columns)}</section>
<section id="per-class"><h2>Per-class IoU</h2>
{class_charts(runs, rows, columns)}</section>
<section id="predictions"><h2>Predictions</h2>
{grids}</section>
<section id="identity"><h2>Identity of each run</h2>
{identity_table(runs, rows)}</section>
{notes}
</body></html>
"""
