"""Render the collected runs as one self-contained HTML page (inline CSS, SVG and images).

Why: one file that opens anywhere, offline, with the table against the expected numbers (and
their sources), per-class IoU, predictions side by side and what exactly each number came
from. Every fragment is made by ``markup.html`` from a literal template, so every value from a
metrics.json is escaped wherever it lands.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..paper import RS_COLUMNS, TABLE1_COLUMNS
from . import images as pictures
from .collect import Collection, Run, row_label, short_override
from .expected import expected
from .markup import Markup, html, image_source, join
from .svg import class_chart, colour

EXTRA_COLUMNS = {'coco_stuff10k': 'Stuff10k'}
TABLE1_KEYS = [key for key, _ in TABLE1_COLUMNS]
PREFIX = 12  # characters of a sha256 shown
GRID_WIDTH = 1300  # px for a predictions table: fits a 1400 px window with the page's margins
CELL_EXTRA = 6     # px of padding and border around each picture
MIN_THUMBNAIL = 100
CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:24px 32px}
.scroll{overflow-x:auto}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:14px 0 6px}.muted,.note{color:#666}.note{font-size:13px}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f5f5f5;font-weight:600}table.results td{text-align:right;white-space:nowrap}
table.results td.row{text-align:left;white-space:normal;max-width:240px;overflow-wrap:anywhere}.ours{font-weight:600;display:block}
.expected,.paper,.source{color:#666;font-size:12px}.source{vertical-align:super;font-size:10px}
.paper{display:block}.delta{font-size:12px;margin-left:4px}.others{display:block;font-size:11px;color:#9a6700}
.good{color:#1a7f37}.fair{color:#9a6700}.poor{color:#cf222e}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;border:1px solid #0002}
.charts{display:flex;flex-wrap:wrap;gap:8px 32px}.chart{flex:0 1 auto;max-width:100%}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px;margin:4px 0 6px;max-width:640px;padding:0}
ol.heat-key{display:block;padding-left:24px;max-width:none}
svg.bars{font-size:10px}svg.bars .grid{stroke:#e4e4e4}svg.bars .tick,svg.bars .value{fill:#666;font-size:9px}
table.heatmap td,table.heatmap th{font-size:11px;padding:1px 5px;text-align:right}
table.heatmap th.name{text-align:left;font-weight:400;white-space:nowrap}
table.heatmap td.absent{background:repeating-linear-gradient(45deg,#f4f4f4,#f4f4f4 3px,#fff 3px,#fff 6px)}
table.grid td{text-align:center;font-size:12px;padding:2px}.sha{white-space:nowrap}table.grid img{display:block}
table.grid th{font-size:12px;font-weight:400;overflow-wrap:anywhere}
.classes{max-width:1300px}
table.identity td{font-size:12px;overflow-wrap:anywhere;max-width:320px}code{font-size:12px}
"""


@dataclass
class Page:
    """What the sections share while the page is made: row order, sources, problems met."""
    runs: Sequence[Run]
    rows: List[Tuple[str, str, str]]
    columns: List[Tuple[str, str]]
    warn: Callable[[str], None]
    sources: Dict[str, int] = field(default_factory=dict)  # source text -> footnote number

    def colour(self, run: Run) -> str:
        return colour(self.rows.index(run.row))

    def footnote(self, source: str) -> int:
        return self.sources.setdefault(source, len(self.sources) + 1)


def rows_in_order(runs: Sequence[Run]) -> List[Tuple[str, str, str]]:
    """Table rows (method, variant, setting): published methods first in the paper's order,
    the plain config before its variants."""
    from ..paper import PUBLISHED
    order = list(PUBLISHED)
    keys: Dict[Tuple[str, str, str], int] = {}
    for run in runs:
        rank = order.index(run.paper_key) if run.paper_key in order else len(order)
        keys[run.row] = min(rank, keys.get(run.row, rank))
    return sorted(keys, key=lambda row: (keys[row], row))


def benchmark_columns(runs: Sequence[Run]) -> List[Tuple[str, str]]:
    present = {run.benchmark for run in runs}
    known = [(k, label) for k, label in [*TABLE1_COLUMNS, *EXTRA_COLUMNS.items(), *RS_COLUMNS] if k in present]
    return known + [(k, k) for k in sorted(present - {k for k, _ in known})]


def fmt(value: Optional[float], digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def comparison(page: Page, ours: Optional[float], paper_key: Optional[str], benchmark: str) -> Markup:
    """The expected number with its source footnote, ``ours - expected`` coloured by how far
    off it is, and the paper's number when it is not the expected one."""
    target = expected(paper_key, benchmark)
    if target is None:
        return Markup('')
    setting = f' ({target.setting})' if target.setting else ''
    second = ', quoted second-hand' if target.second_hand else ''
    note = page.footnote(f'{target.source}{setting}{second}')
    parts = [html('<span class="expected" title="expected: {}">exp {}</span><span class="source">[{}]</span>',
                  target.source, f'{target.value:g}', note)]
    if ours is not None:
        delta = ours - target.value
        grade = 'good' if abs(delta) <= 0.5 else 'fair' if abs(delta) <= 1.0 else 'poor'
        parts.append(html('<span class="delta {}">{:+.2f}</span>', grade, delta))
    if target.paper is not None and target.paper != target.value:
        parts.append(html('<span class="paper" title="{}">paper {}<span class="source">[{}]</span></span>',
                          target.paper_source or '', f'{target.paper:g}', page.footnote(target.paper_source or '?')))
    return join(parts)


def results_table(page: Page, others: Dict[Tuple[Tuple[str, str, str], str], int]) -> Markup:
    by_cell = {(run.row, run.benchmark): run for run in page.runs}
    complete = [row for row in page.rows if all((row, k) in by_cell for k in TABLE1_KEYS)]
    head = join(html('<th>{}</th>', label) for _, label in page.columns)
    lines = [html('<table class="results"><tr><th>method [variant; setting]</th>{}{}</tr>', head,
                  Markup('<th>Avg</th>') if complete else '')]
    for index, row in enumerate(page.rows):
        cells = [html('<td class="row"><span class="swatch" style="background:{}"></span>{}</td>', colour(index),
                      row_label(row))]
        for key, _ in page.columns:
            run = by_cell.get((row, key))
            if run is None:
                cells.append(Markup('<td class="empty">–</td>'))
                continue
            extra = others.get((row, key), 0)
            flag = html('<span class="others" title="runs of this method, variant and benchmark with other fingerprints: '
                        'see below">+{} other run{} ↓</span>', extra, 's' * (extra != 1)) \
                if extra else ''
            cells.append(html('<td class="cell" data-row="{}" data-benchmark="{}"><span class="ours">{}</span>{}{}</td>',
                              row_label(row), key, fmt(run.miou), comparison(page, run.miou, run.paper_key, key), flag))
        if complete:
            ran = [by_cell.get((row, k)) for k in TABLE1_KEYS]
            if row in complete and all(r.miou is not None for r in ran):
                average = sum(r.miou for r in ran) / len(ran)
                keys = {r.paper_key for r in ran}
                paper_key = keys.pop() if len(keys) == 1 else None
                cells.append(html('<td class="cell average" data-row="{}" data-benchmark="average">'
                                  '<span class="ours">{}</span>{}</td>', row_label(row), fmt(average),
                                  comparison(page, average, paper_key, 'average')))
            else:
                cells.append(Markup('<td class="empty">–</td>'))
        lines.append(html('<tr>{}</tr>', join(cells)))
    lines.append(Markup('</table>'))
    note = ('Avg: mean over the eight Table-1 benchmarks, for rows that have all eight.' if complete else
            'No row has all eight Table-1 benchmarks, so no average is shown.')
    sources = join(html('<li value="{}">{}</li>', number, source) for source, number in page.sources.items())
    return html('{}<p class="note">Each cell: our mIoU (%), the expected number (exp) with its source [n], ours − '
                'expected (green within 0.5, amber within 1.0, red beyond) and the paper\'s number where the '
                'expected one is another. Variants (overrides of what a method computes) have no published '
                'number. {}</p>{}', html('<div class="scroll">{}</div>', join(lines, '\n')), note,
                html('<ol class="note sources">{}</ol>', sources) if page.sources else '')


def class_charts(page: Page, form: str) -> Markup:
    parts = []
    for key, label in page.columns:
        ran = sorted((r for r in page.runs if r.benchmark == key and r.class_iou), key=lambda r: page.rows.index(r.row))
        if not ran:
            parts.append(html('<div class="chart"><h3>{}</h3><p class="note">No per-class IoU in these '
                              'metrics.json files.</p></div>', label))
            continue
        named = list(dict.fromkeys(name for run in ran for name in run.class_iou))
        classes = [name for name in named if any(run.class_iou.get(name) is not None for run in ran)]
        absent = [name for name in named if name not in classes]
        series = [(run.label, page.colour(run), run.class_iou) for run in ran]
        note = html('<p class="note">Not in the ground truth of any of these runs (left out): {}.</p>',
                    ', '.join(absent)) if absent else ''
        parts.append(html('<div class="chart" data-benchmark="{}"><h3>{} <span class="muted">({} classes, IoU %)'
                          '</span></h3>{}{}</div>', key, label, len(classes), class_chart(classes, series, form), note))
    return html('<div class="charts">{}</div>', join(parts, '\n'))


def thumbnail_width(columns: int) -> int:
    return max(MIN_THUMBNAIL, min(pictures.THUMBNAIL_WIDTH, GRID_WIDTH // columns - CELL_EXTRA))


def picture_cell(uri: Optional[str], alt: str, problem: Optional[str]) -> Markup:
    if uri is None:
        return html('<td class="missing" title="{}">{}</td>', problem or '', 'not shown' if problem else 'not found')
    return html('<td><img src="{}" alt="{}"></td>', image_source(uri), alt)


def class_legend(layout: pictures.DataLayout, shown: set) -> Markup:
    """The classes in the pictures of one grid, in class order, in their palette colours."""
    entries = [html('<span class="entry"><span class="swatch" style="background:rgb({},{},{})"></span>{}</span>',
                    *(int(c) for c in layout.palette[index]),
                    layout.classes[index] if index < len(layout.classes) else f'class {index}')
               for index in sorted(shown)]
    entries.append(Markup('<span class="entry"><span class="swatch" style="background:#fff"></span>'
                          'ignored / unlabelled</span>'))
    return html('<div class="legend classes">{}</div>', join(entries))


def qualitative_grid(page: Page, key: str, label: str, count: int) -> Markup:
    """Images x (image, ground truth, each method's prediction), or a note saying why not."""
    ran = sorted((r for r in page.runs if r.benchmark == key), key=lambda r: page.rows.index(r.row))
    title = html('<h3>{}</h3>', label)
    if not any(r.predictions_dir for r in ran):
        return html('{}<p class="note">No saved predictions (run tools/test.py with --out DIR); grid skipped.</p>',
                    title)
    owned = {id(r): pictures.own_label_maps(r) if r.predictions_dir else (set(), None) for r in ran}
    with_predictions = [r for r in ran if owned[id(r)][0]]
    missing = [r.label if owned[id(r)][1] is None else f'{r.label} ({owned[id(r)][1]})'
               for r in ran if not owned[id(r)][0]]
    if not with_predictions:
        return html('{}<p class="note">No run has label maps of its own: {}; grid skipped.</p>', title, '; '.join(missing))
    layout = pictures.data_layout(with_predictions[0])
    common = sorted(set.intersection(*(owned[id(r)][0] for r in with_predictions)))
    found = [(stem, pictures.find_image(layout, stem)) for stem in common]
    chosen = pictures.choose_evenly([f for f in found if f[1]], count)
    if not chosen:
        return html('{}<p class="note">No image is both in every predictions folder (of the run\'s own images) '
                    'and under {}; grid skipped.</p>', title, str(layout.img_dir))
    per_table = max(1, GRID_WIDTH // (MIN_THUMBNAIL + CELL_EXTRA) - 2)
    width = thumbnail_width(2 + min(per_table, len(with_predictions)))
    grid_rows, any_truth, shown, problems = [], False, set(), []

    def label_cell(path: Optional[str], size, alt: str) -> Markup:
        nonlocal any_truth
        if path is None:
            return picture_cell(None, alt, None)
        try:
            uri, classes = pictures.label_thumbnail(path, size, layout)
        except pictures.PictureError as error:
            problems.append(str(error))
            page.warn(str(error))
            return picture_cell(None, alt, str(error))
        shown.update(classes)
        return picture_cell(uri, alt, None)
    for stem, (image_path, name) in chosen:
        try:
            uri, size = pictures.image_thumbnail(image_path, width)
        except pictures.PictureError as error:
            problems.append(str(error))
            page.warn(str(error))
            continue
        truth_path = pictures.ground_truth_path(layout, name)
        any_truth = any_truth or truth_path is not None
        truth = label_cell(truth_path, size, 'ground truth')
        predictions = [label_cell(osp.join(r.predictions_dir, stem + '.png'), size, 'prediction')
                       for r in with_predictions]
        grid_rows.append((html('<td><img src="{}" alt="{}">{}</td>', image_source(uri), stem, stem), truth, predictions))
    tables = []
    for start in range(0, len(with_predictions), per_table):
        group = with_predictions[start:start + per_table]
        head = join([Markup('<th>image</th>'), Markup('<th>ground truth</th>') if any_truth else '', *(
            html('<th style="width:{}px"><span class="swatch" style="background:{}"></span>{}</th>', width,
                 page.colour(r), r.label) for r in group)])
        body = join(html('<tr>{}{}{}</tr>', image, truth if any_truth else '', join(predictions[start:start + per_table]))
                    for image, truth, predictions in grid_rows)
        tables.append(html('<table class="grid" data-benchmark="{}"><tr>{}</tr>{}</table>', key, head, body))
    notes = [html('<p class="note">Without saved predictions: {}.</p>', '; '.join(missing)) if missing else '',
             html('<p class="note">Not shown: {}.</p>', '; '.join(problems)) if problems else '']
    return html('{}{}{}{}', title, join(tables, '\n'), class_legend(layout, shown) if grid_rows else '', join(notes))


def short(value) -> Markup:
    """The first characters of a hash, unbreakable."""
    return html('<span class="sha">{}</span>', str(value)[:PREFIX]) if value else Markup('unknown')


def lines(*parts) -> Markup:
    return join(parts, '<br>')


def part(identity: dict, name: str) -> dict:
    value = identity.get(name)
    return value if isinstance(value, dict) else {}


def identity_cells(run: Run) -> List[Markup]:
    identity = run.identity
    weights, vfm, config = part(identity, 'weights'), part(identity, 'vfm'), part(identity, 'config')
    data, code, libraries = part(identity, 'data'), part(identity, 'code'), part(identity, 'libraries')
    weights_text = lines(str(weights.get('arch', '?')), str(weights.get('source', '?')),
                         html('sha256 <code>{}</code>', short(weights.get('sha256')))) if weights else 'not recorded'
    if vfm:
        weights_text = lines(weights_text, html('VFM {}: {}', str(vfm.get('type', '?')), str(vfm.get('source', '?'))),
                             html('sha256 <code>{}</code>', short(vfm.get('sha256'))))
    overrides = config.get('overrides') if isinstance(config.get('overrides'), dict) else {}
    config_text = lines(str(config.get('file') or '?'), *(html('<code>{}</code>', f'{k}={v}') for k, v in overrides.items()))
    data_text = lines(str(data.get('type', '?')), str(data.get('root', '?')),
                      f'{data.get("num_images", "?")} images') if data else 'not recorded'
    code_text = lines(html('{}, git <code>{}</code>', str(code.get('version', '?')), short(code.get('git'))),
                      html('source <code>{}</code>', short(code.get('source_sha256')))) if code else 'not recorded'
    library_text = lines(*(f'{name} {version}' for name, version in libraries.items())) or 'not recorded'
    run_text = html('{} on {}<br><span class="muted">{}<br>{}</span>', run.label, run.benchmark, run.path, run.finished)
    return [run_text, weights_text, config_text, data_text, code_text, library_text,
            html('<code>{}</code>', short(run.fingerprint))]


def identity_table(page: Page) -> Markup:
    head = join(html('<th>{}</th>', name) for name in ('run', 'weights', 'config + overrides', 'data', 'code',
                                                       'libraries', 'fingerprint'))
    rows = [html('<tr>{}</tr>', join(html('<td>{}</td>', cell) for cell in identity_cells(run)))
            for run in sorted(page.runs, key=lambda r: (page.rows.index(r.row), r.benchmark))]
    return html('<table class="identity"><tr>{}</tr>{}</table>', head, join(rows, '\n'))


def set_apart(runs: Sequence[Run]) -> Tuple[Dict[Tuple[Tuple[str, str, str], str], int], Markup]:
    """Cells whose method, variant and benchmark have other runs on other rows (they differ in
    weights, data...): the count per cell, and the list saying where each went."""
    groups: Dict[Tuple[str, str, str], List[Run]] = {}
    for run in runs:
        groups.setdefault((run.method, run.variant, run.benchmark), []).append(run)
    counts, items = {}, []
    for group in groups.values():
        if len(group) < 2:
            continue
        for run in group:
            counts[(run.row, run.benchmark)] = len(group) - 1
        items.append(html('<li>{} on {}: {} runs with different fingerprints, each on its own row: {}</li>',
                          row_label(group[0].row[:2] + ('',)), group[0].benchmark, len(group),
                          '; '.join(f'[{r.setting or "no setting label"}] {r.path}' for r in group)))
    return counts, html('<ul class="note">{}</ul>', join(items)) if items else Markup('')


def render(collection: Collection, folders: Sequence[str], title: str, images: int, per_class: str = 'auto',
           warn: Callable[[str], None] = lambda message: None) -> str:
    runs = collection.runs
    page = Page(runs, rows_in_order(runs), benchmark_columns(runs), warn)
    grids = (join(qualitative_grid(page, key, label, images) for key, label in page.columns) if images > 0
             else Markup('<p class="note">Skipped (--images 0).</p>'))
    counts, apart = set_apart(runs)
    table = results_table(page, counts)
    duplicates = join(html('<li>{} (the same fingerprint as {})</li>', left.path, kept.path)
                      for left, kept in collection.duplicates)
    notes = join([
        html('<h2>Runs on different settings</h2><p class="note">Runs of one method, variant and benchmark whose '
             'fingerprints differ measured different things: none stands for another.</p>{}', apart) if counts else '',
        html('<h2>Left out</h2><p class="note">Copies of a shown run (equal fingerprints; the latest is shown):</p>'
             '<ul class="note">{}</ul>', duplicates) if collection.duplicates else ''])
    shared = html('<p class="muted">Every run: {}.</p>', ', '.join(
        short_override(k, v) for k, v in collection.shared_overrides.items())) if collection.shared_overrides else ''
    page_html = html("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{css}</style></head>
<body>
<h1>{title}</h1>
<p class="muted">{runs} runs, {rows} methods/variants, {columns} benchmarks, from {folders}.</p>{shared}
<section id="results"><h2>mIoU</h2>
{table}</section>
<section id="per-class"><h2>Per-class IoU</h2>
{charts}</section>
<section id="predictions"><h2>Predictions</h2>
{grids}</section>
<section id="identity"><h2>Identity of each run</h2>
{identity}</section>
{notes}
</body></html>
""", title=title, css=Markup(CSS), runs=len(runs), rows=len(page.rows), columns=len(page.columns),
                     folders=', '.join(folders), shared=shared, table=table, charts=class_charts(page, per_class),
                     grids=grids, identity=identity_table(page), notes=notes)
    return str(page_html)
