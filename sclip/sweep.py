"""Grids of config overrides × benchmark configs, resumable, one work dir per cell.

Why: every comparison in the paper is "the same run with one thing changed". A sweep gives
each cell its own folder and ``metrics.json`` (with the cell's identity), reuses a cell only
when its fingerprint is unchanged, evaluates the cells that read the same images together in
one pass (sclip/group_eval.py) or one by one (``share=False``, each through mmengine's Runner
like ``tools/test.py``), records a failing cell's error and goes on, and rewrites
``results.csv`` and ``results.md`` atomically as cells finish, so killing it loses nothing
already finished.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
import json
import os
import os.path as osp
import re
import traceback
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .config_check import closest
from .errors import SCLIPError, one_line
from .files import ensure_writable, write_result_text, write_text_atomic
from .group_eval import Job, evaluate_jobs, results_by_fingerprint  # noqa: F401 (Job: re-export)
from .identity import REPO_DIR as REPO, run_identity  # noqa: F401 (re-export)
from .logs import quiet_config
from .options import split_values
from .plan import plan_run
from .progress import status
from .runner import find_config, load_config

PAPER_ORDER = ['voc21', 'context60', 'coco_object', 'voc20', 'cityscapes', 'context59', 'ade20k',
               'coco_stuff164k', 'coco_stuff10k', 'ade847', 'context459',
               # SegEarth-OV's remote-sensing sets, in its paper's order (sclip/paper.py RS_COLUMNS)
               'openearthmap', 'loveda', 'isaid', 'potsdam', 'vaihingen', 'uavid', 'udd5', 'vdd', 'whu_aerial',
               'whu_sat2', 'inria', 'xbd_pre', 'chn6_cug', 'deepglobe_road', 'massachusetts_road', 'spacenet_road',
               'wbs_si']


def parse_value(text: str):
    """A Python literal when it is one (numbers, None, tuples), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {'true': True, 'false': False, 'none': None}.get(text.lower(), text)


def parse_axes(specs: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """``['KEY=V1,V2', ...]`` -> [(KEY, ['V1', 'V2']), ...] (values kept as written)."""
    axes = []
    for spec in specs or []:
        if '=' not in spec:
            raise SCLIPError(f'--set {spec!r}: write KEY=V1,V2 (e.g. model.attention.type=csa,vanilla).')
        key, values = spec.split('=', 1)
        values = split_values(values)
        if not key or not values:
            raise SCLIPError(f'--set {spec!r}: needs a key and at least one value.')
        axes.append((key.strip(), values))
    return axes


@dataclass
class Cell:
    config: str
    overrides: Dict[str, str] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        return ' '.join(f'{k}={v}' for k, v in self.overrides.items()) or 'default'

    def variant_dir(self) -> str:
        """'default', or a readable slug of the overrides plus a hash of them: unique, never
        truncated into another cell's folder."""
        if not self.overrides:
            return 'default'
        text = '_'.join(f'{k.replace("model.", "")}={v}' for k, v in self.overrides.items())
        slug = re.sub(r'[^A-Za-z0-9_.=+-]+', '-', text)[:60].strip('-_.')
        digest = hashlib.sha1(json.dumps(self.overrides, sort_keys=True).encode()).hexdigest()[:8]
        return f'{slug}-{digest}'

    def cell_dir(self, work_dir: str) -> str:
        return osp.join(work_dir, self.variant_dir(), config_label(self.config))


def config_label(config_path: str) -> str:
    """A config's folder name in a sweep: its path under configs/ without '.py' (e.g.
    'clearclip/voc21', 'sclip_voc21'); a config elsewhere gets its stem and a hash of its path."""
    path = osp.abspath(config_path)
    configs_root = osp.join(REPO, 'configs') + os.sep
    if path.startswith(configs_root):
        return osp.splitext(path[len(configs_root):])[0]
    digest = hashlib.sha1(path.encode()).hexdigest()[:6]
    return osp.join('external', f'{osp.splitext(osp.basename(path))[0]}-{digest}')


GRID_KEYS = ('configs', 'set', 'cfg_options')


def read_grid(path: str) -> Tuple[List[str], List[Tuple[str, List[str]]], Dict]:
    """(configs, axes, cfg_options) of a JSON grid file, each part checked for its shape.

    Format: ``{"configs": [CFG, ...], "set": {"KEY": [V1, V2]}, "cfg_options": {"k": v}}``."""
    try:
        with open(path) as f:
            grid = json.load(f)
    except (OSError, ValueError) as error:
        raise SCLIPError(f'--grid {path!r}: {one_line(error)}')
    example = '{"configs": ["configs/sclip_voc21.py"], "set": {"model.logit_scale": [40, 50]}}'
    if not isinstance(grid, dict):
        raise SCLIPError(f'--grid {path!r} must hold a JSON object, e.g. {example}.')
    for key in grid:
        if key not in GRID_KEYS:
            raise SCLIPError(f'--grid {path!r}: {key!r} is not a grid key{closest(key, GRID_KEYS)} '
                             f'(valid: {", ".join(GRID_KEYS)}).')
    configs, axes_spec, options = grid.get('configs', []), grid.get('set', {}), grid.get('cfg_options', {})
    if not isinstance(configs, list) or not all(isinstance(c, str) for c in configs):
        raise SCLIPError(f'--grid {path!r}: "configs" must be a list of config paths, e.g. {example}.')
    if not isinstance(axes_spec, dict) or not all(isinstance(v, list) and v for v in axes_spec.values()):
        raise SCLIPError(f'--grid {path!r}: "set" must map each key to a non-empty list of values, e.g. {example}.')
    if not isinstance(options, dict):
        raise SCLIPError(f'--grid {path!r}: "cfg_options" must be an object of key: value.')
    axes = [(k, [json.dumps(v) if not isinstance(v, str) else v for v in values]) for k, values in axes_spec.items()]
    return configs, axes, options


def build_grid(configs: Sequence[str], axes: List[Tuple[str, List[str]]]) -> List[Cell]:
    """Every (overrides, config) cell once: a config named twice (``a.py`` and ``./a.py``) or
    a value repeated on an axis is one cell, not two runs racing for one folder."""
    combos = list(itertools.product(*[[(key, v) for v in values] for key, values in axes])) or [()]
    cells: Dict[Tuple[str, str], Cell] = {}
    for combo in combos:
        for config in configs:
            cell = Cell(config, dict(combo))
            cells.setdefault((cell.variant_dir(), config_label(config)), cell)
    return list(cells.values())


def cell_labels(cfg, config_path: str) -> Tuple[str, str]:
    """(method, benchmark) of a config: its ``method`` / ``benchmark`` keys, else its path."""
    stem = osp.splitext(osp.basename(config_path))[0]
    return cfg.get('method', osp.basename(osp.dirname(config_path))), cfg.get('benchmark', stem)


@dataclass
class Result:
    variant: str
    method: str
    benchmark: str
    config: str
    status: str
    mIoU: Optional[float] = None
    aAcc: Optional[float] = None
    mAcc: Optional[float] = None
    error: str = ''
    work_dir: str = ''
    fingerprint: str = ''
    reused: bool = False


def row_label(result: Result) -> str:
    return result.method if result.variant == 'default' else f'{result.method} {result.variant}'


def markdown_table(results: List[Result]) -> str:
    """Rows: method and variant; columns: benchmarks (paper order) and their average."""
    benchmarks = sorted({r.benchmark for r in results},
                        key=lambda b: (PAPER_ORDER.index(b) if b in PAPER_ORDER else len(PAPER_ORDER), b))
    rows: Dict[str, Dict[str, Result]] = {}
    for result in results:
        rows.setdefault(row_label(result), {})[result.benchmark] = result
    lines = ['| variant | ' + ' | '.join(benchmarks) + ' | average |',
             '|---|' + '---|' * (len(benchmarks) + 1)]
    partial = False
    for label, cells in rows.items():
        values = []
        for benchmark in benchmarks:
            result = cells.get(benchmark)
            values.append('' if result is None else (result.status if result.status != 'ok' else f'{result.mIoU:.2f}'))
        scores = [cells[b].mIoU for b in benchmarks if b in cells and cells[b].status == 'ok']
        complete = len(scores) == len(benchmarks)
        average = f'{sum(scores) / len(scores):.2f}' if complete and scores else ''
        partial = partial or not average
        lines.append(f'| {label} | ' + ' | '.join(values) + f' | {average} |')
    if partial:
        lines += ['', PARTIAL_NOTE]
    return '\n'.join(lines) + '\n'


PARTIAL_NOTE = ('The average is left empty in a row with a benchmark missing, failed or still pending (a sweep '
                'still running or killed): it is never an average over a subset of the benchmarks.')


def csv_text(results: List[Result]) -> str:
    buffer = io.StringIO()
    fields = list(Result.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for result in results:
        writer.writerow({k: getattr(result, k) for k in fields})
    return buffer.getvalue()


def prepare_cell(cell: Cell, work_dir: str, cfg_options: Dict, quiet: bool, save_predictions: bool):
    """(plan, method, benchmark) of a cell: its config loaded with the overrides and planned
    (sclip/plan.py: dataset listed once, identity, pre-flight verdict kept for execution)."""
    options = dict(cfg_options)
    options.update({k: parse_value(v) for k, v in cell.overrides.items()})
    cell_dir = cell.cell_dir(work_dir)
    cfg = load_config(cell.config, options, cell_dir)
    if quiet:
        quiet_config(cfg)
    method, benchmark = cell_labels(cfg, cell.config)
    job = plan_run(cfg, options, label=f'{config_label(cell.config)} {cell.variant}', strict=False,
                   out_dir=osp.join(cell_dir, 'predictions') if save_predictions else None)
    return job, method, benchmark


def record_failure(cell_dir: str, text: str) -> None:
    try:
        os.makedirs(cell_dir, exist_ok=True)
        write_text_atomic(osp.join(cell_dir, 'error.txt'), text)
    except OSError:
        pass


def run_sweep(configs: Sequence[str], axes, work_dir: str, cfg_options: Optional[Dict] = None,
              launcher: str = 'none', log=print, quiet: bool = False, share: bool = True,
              save_predictions: bool = False) -> List[Result]:
    """Run every cell of the grid; results.csv / results.md are rewritten as cells finish.

    ``share``: cells that read the same images are evaluated together in one pass over the
    data (sclip/group_eval.py); otherwise one by one, each through mmengine's Runner.
    """
    configs = [find_config(config) for config in configs]  # relative to here, else to the repository
    cells = build_grid(configs, axes)
    ensure_writable(work_dir, 'the sweep')
    status(f'{len(cells)} cell{"s" * (len(cells) != 1)}: reading each config and its identity')
    results: List[Optional[Result]] = [None] * len(cells)
    jobs, positions = [], []
    for index, cell in enumerate(cells):
        method = osp.basename(osp.dirname(cell.config))
        benchmark = osp.splitext(osp.basename(cell.config))[0]
        try:
            job, method, benchmark = prepare_cell(cell, work_dir, cfg_options or {}, quiet, save_predictions)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - a failing cell is recorded, the sweep goes on
            record_failure(cell.cell_dir(work_dir), traceback.format_exc())
            results[index] = Result(cell.variant, method, benchmark, cell.config, 'failed',
                                    error=one_line(error) or type(error).__name__, work_dir=cell.cell_dir(work_dir))
            log(f'[{index + 1}/{len(cells)}] {config_label(cell.config)} {cell.variant}: failed: {results[index].error}')
            continue
        jobs.append(job)
        positions.append((index, method, benchmark))

    def write_tables() -> None:
        """results.csv: the settled cells; results.md: every cell, unsettled ones 'pending', so a
        killed sweep's table shows what is missing instead of averaging what finished."""
        done = [r for r in results if r is not None]
        labels = {index: (method, benchmark) for index, method, benchmark in positions}
        grid = [result or Result(cells[index].variant, *labels[index], cells[index].config, 'pending')
                for index, result in enumerate(results) if result is not None or index in labels]
        write_result_text(osp.join(work_dir, 'results.csv'), csv_text(done), 'the sweep table')
        write_result_text(osp.join(work_dir, 'results.md'), markdown_table(grid), 'the sweep table')

    def on_outcome(position: int, outcome) -> None:
        index, method, benchmark = positions[position]
        cell, job = cells[index], jobs[position]
        metrics = outcome.metrics or {}
        result = Result(cell.variant, method, benchmark, cell.config, outcome.status, metrics.get('mIoU'),
                        metrics.get('aAcc'), metrics.get('mAcc'), outcome.error, job.cfg.work_dir,
                        (metrics.get('identity') or {}).get('fingerprint', ''), outcome.how.startswith('reused'))
        if outcome.status == 'failed':
            record_failure(job.cfg.work_dir, outcome.traceback or outcome.error)
        elif outcome.status == 'ok':
            error_path = osp.join(job.cfg.work_dir, 'error.txt')
            if osp.exists(error_path):
                os.remove(error_path)
        results[index] = result
        detail = f'mIoU {result.mIoU:.2f} ({outcome.how})' if outcome.status == 'ok' else outcome.error
        log(f'[{index + 1}/{len(cells)}] {job.label}: {outcome.status} {detail}')
        write_tables()

    if positions:  # a cell equal to one already computed under another folder name is reused too
        evaluate_jobs(jobs, launcher, log, share, quiet, on_outcome, reusable=results_by_fingerprint(work_dir))
    write_tables()
    done = [r for r in results if r is not None]
    write_result_text(osp.join(work_dir, 'sweep.json'), json.dumps(dict(
        configs=list(configs), axes=[[k, v] for k, v in axes], cfg_options=cfg_options or {}, shared=share,
        cells=[dict(config=r.config, variant=r.variant, work_dir=r.work_dir, status=r.status,
                    fingerprint=r.fingerprint) for r in done]), indent=2), 'the sweep record')
    reused = sum(r.reused for r in done)
    log(f'{len(done)} cell{"s" * (len(done) != 1)}: {sum(r.status == "ok" for r in done) - reused} run, {reused} reused, '
        f'{sum(r.status == "failed" for r in done)} failed, {sum(r.status == "busy" for r in done)} '
        'busy in another process')
    return done
