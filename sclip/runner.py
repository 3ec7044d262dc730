"""Run one evaluation through mmengine's Runner and write ``metrics.json`` with its identity.

Why: ``tools/test.py``, ``tools/sweep.py`` and ``tools/paper_table.py`` must run a config
exactly the same way; this module is that one way. It mirrors mmseg's ``tools/test.py``
(``--out``, ``--show-dir``, ``--cfg-options``, launchers) and adds the pre-flight checks,
CPU-friendly distributed set-up, a lock on the work dir, and a ``metrics.json`` written
atomically that records what produced it (sclip/identity.py).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import time
import uuid
from datetime import datetime, timezone
from typing import Optional

import torch
from mmengine import Config

from . import compat  # noqa: F401
from .errors import SCLIPError
from .files import WRITE_ERRNOS, CellLock, describe_os_error, ensure_writable, write_json_atomic  # noqa: F401 (re-export)
from .identity import REPO_DIR, run_identity
from .preflight import preflight
from .progress import close_all

METRICS_SCHEMA = 2


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None) -> Config:
    """Read a config, apply overrides and pick its work dir (``work_dirs/<config name>``)."""
    path = find_config(path)
    try:
        cfg = Config.fromfile(path)
    except Exception as error:
        raise SCLIPError(f'config {path!r} could not be parsed: {str(error).splitlines()[0]}')
    if cfg_options:
        check_override_keys(cfg, cfg_options)
        try:
            cfg.merge_from_dict(dict(cfg_options))
        except Exception as error:  # e.g. a key through a list, or into a non-dict value
            raise SCLIPError(f'--cfg-options could not be applied to {path}: {str(error).splitlines()[0]}')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(path)
    return cfg


def find_config(path: str) -> str:
    """``path`` when it exists, else the same relative path in this repository (the README's
    ``configs/sclip_voc21.py`` works from any folder), else one line naming every place looked."""
    if osp.isfile(path):
        return path
    looked = [osp.abspath(path)]
    if not osp.isabs(path):
        in_repository = osp.join(REPO_DIR, path)
        if osp.isfile(in_repository):
            return in_repository
        if osp.abspath(in_repository) != looked[0]:
            looked.append(in_repository)
    raise SCLIPError(f'config {path!r} not found (looked for {" and ".join(looked)}); pass a file such as '
                     'configs/sclip_voc21.py.')


# Top-level keys mmengine's Runner reads besides those every config here sets.
RUNNER_KEYS = ('work_dir', 'launcher', 'randomness', 'experiment_name', 'custom_hooks', 'cfg', 'env_cfg',
               'log_processor', 'visualizer', 'default_hooks', 'default_scope', 'load_from', 'resume')
# Variables the config files use while they are read; changing them afterwards changes nothing.
LOAD_TIME_KEYS = {'data_root': 'test_dataloader.dataset.data_root',
                  'dataset_type': 'test_dataloader.dataset.type',
                  'test_pipeline': 'test_dataloader.dataset.pipeline.N.KEY'}


def check_override_keys(cfg: Config, cfg_options: dict) -> None:
    """Each override names a key the run reads: a misspelt top-level key (``test_dataloadr``)
    or a variable only read while the file loads (``data_root``, ``test_pipeline``) would
    otherwise be accepted and change nothing but the recorded identity."""
    from .config_check import closest
    for key in cfg_options:
        top = str(key).split('.')[0]
        if top in LOAD_TIME_KEYS or top.startswith('pipeline_'):
            target = LOAD_TIME_KEYS.get(top, LOAD_TIME_KEYS['test_pipeline'])
            raise SCLIPError(f'--cfg-options {key}: {top} is only read while the config file is loaded; '
                             f'override {target} instead.')
        if top not in cfg and top not in RUNNER_KEYS:
            valid = [k for k in cfg if k not in LOAD_TIME_KEYS and not k.startswith('pipeline_')]
            raise SCLIPError(f'--cfg-options {key}: {top!r} is not a key of {cfg.filename}'
                             f'{closest(top, valid)} (top-level keys: {", ".join(sorted(valid))}).')


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config stem>``, or ``work_dirs/<method>/<stem>`` for ``configs/<method>/``."""
    stem = osp.splitext(osp.basename(config_path))[0]
    parent = osp.basename(osp.dirname(osp.abspath(config_path)))
    return osp.join('./work_dirs', stem) if parent == 'configs' else osp.join('./work_dirs', parent, stem)


def enable_outputs(cfg: Config, out_dir: Optional[str], show_dir: Optional[str]) -> None:
    """mmseg's ``--out`` (label PNGs via IoUMetric) and ``--show-dir`` (visualiser) settings."""
    if out_dir:
        cfg.test_evaluator['output_dir'] = out_dir
        cfg.test_evaluator['keep_results'] = True
    if show_dir:
        cfg.default_hooks['visualization'] = dict(type='SCLIPVisualizationHook', draw=True, interval=1,
                                                  out_dir=show_dir)


def setup_launcher(cfg: Config, launcher: str, init_cuda: bool = False) -> None:
    """Distributed set-up; on machines without CUDA, a gloo group and no DDP wrapper. With
    ``init_cuda`` (no mmengine Runner to do it) the NCCL group is started here too."""
    cfg.launcher = launcher
    if launcher == 'none':
        return
    if init_cuda and torch.cuda.is_available():
        import torch.distributed as dist
        if not dist.is_initialized():
            from mmengine.dist import init_dist
            init_dist(launcher)
        return
    cfg.model_wrapper_cfg = dict(type='SCLIPInferenceWrapper')
    if not torch.cuda.is_available():
        import torch.distributed as dist
        if launcher == 'slurm':
            raise SCLIPError('--launcher slurm needs CUDA GPUs; use --launcher pytorch (torchrun) on CPUs.')
        if not dist.is_initialized():
            dist.init_process_group('gloo')
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'


def rounded(value) -> float:
    """A metric as mmseg prints it (two decimals), without float32 noise."""
    return round(float(value), 2)


def metrics_payload(evaluator, metrics: dict, cfg: Config, identity: dict, out_dir: Optional[str]) -> dict:
    """``metrics.json`` content (schema: METRICS_SCHEMA) from an mmengine ``Evaluator``."""
    payload = {'schema': METRICS_SCHEMA}
    payload.update({key: rounded(value) for key, value in metrics.items()})
    for metric in evaluator.metrics:
        per_class = getattr(metric, 'per_class', None)
        if per_class:
            payload['per_class'] = {key: dict(values) for key, values in per_class.items()}
    payload.update(config=cfg.filename, method=cfg.get('method'), paper_key=cfg.get('paper_key'),
                   benchmark=cfg.get('benchmark'), predictions_dir=out_dir, identity=identity,
                   finished=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))
    return payload


def first_missing_ancestor(path: str) -> Optional[str]:
    """The outermost folder of ``path`` (itself included) that does not exist yet, or None."""
    path, missing = osp.abspath(path), None
    while not osp.exists(path):
        missing, parent = path, osp.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def remove_empty_parents(path: str, stop: Optional[str]) -> None:
    """Remove the empty folders above ``path`` that a failed run created, up to ``stop``."""
    if stop is None:
        return
    path = osp.dirname(osp.abspath(path))
    while path.startswith(stop) and osp.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        if path == stop:
            break
        path = osp.dirname(path)


def _remove_failed_run_files(cfg: Config, before: set) -> None:
    """Remove what a failed run created in its work dir and holds nothing worth reading: empty
    files, mmengine's copy of the config (top level and ``vis_data/config.py``), and log
    folders of nothing else."""
    work_dir = cfg.work_dir
    if not osp.isdir(work_dir):
        return
    config_copy = osp.basename(cfg.filename or '')
    for name in set(os.listdir(work_dir)) - before:
        folder = osp.join(work_dir, name)
        if osp.isfile(folder) and (name == config_copy or os.path.getsize(folder) == 0) and name != '.lock':
            os.remove(folder)
        if not osp.isdir(folder):
            continue
        files = [osp.join(root, f) for root, _, names in os.walk(folder) for f in names]
        if all(os.path.getsize(f) == 0 or f.endswith(osp.join('vis_data', 'config.py')) for f in files):
            shutil.rmtree(folder, ignore_errors=True)


def run_test(cfg: Config, out_dir: Optional[str] = None, show_dir: Optional[str] = None,
             launcher: str = 'none', check_files: bool = True, overrides: Optional[dict] = None,
             identity: Optional[dict] = None, lock: bool = True, show_progress: bool = True) -> dict:
    """Evaluate ``cfg`` and write ``<work_dir>/metrics.json``; returns the payload on rank 0 and
    None on the other ranks of a distributed run (so only one process reports)."""
    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    preflight(cfg, check_files=check_files)
    identity = identity or run_identity(cfg, overrides)
    enable_outputs(cfg, out_dir, show_dir)
    setup_launcher(cfg, launcher)
    if not cfg.get('experiment_name'):  # unique, so runs in one process never share a logger
        stem = osp.splitext(osp.basename(cfg.filename or 'sclip'))[0]
        cfg.experiment_name = f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{uuid.uuid4().hex[:6]}'
    if cfg.get('visualizer'):  # mmengine keeps one visualizer per name for the whole process
        cfg.visualizer['name'] = cfg.experiment_name
    work_dir_existed = osp.isdir(cfg.work_dir)
    first_new = first_missing_ancestor(cfg.work_dir)
    cell_lock = CellLock(cfg.work_dir)
    if get_rank() == 0:
        for folder, what, option in ((out_dir, 'predictions', '--out'), (show_dir, 'pictures', '--show-dir')):
            if folder:
                ensure_writable(folder, what, option)
        ensure_writable(cfg.work_dir)
        if lock:
            cell_lock.__enter__()
    existing = set(os.listdir(cfg.work_dir)) if osp.isdir(cfg.work_dir) else set()
    rank = get_rank()
    try:
        runner = Runner.from_cfg(cfg)
        if show_progress:
            show_info(runner)
        metrics = runner.test()
        payload = metrics_payload(runner.test_evaluator, metrics, cfg, identity, out_dir)
        if get_rank() == 0:
            try:
                write_json_atomic(osp.join(cfg.work_dir, 'metrics.json'), payload)
            except OSError as error:
                raise describe_os_error(error, osp.join(cfg.work_dir, 'metrics.json'), 'metrics.json') from None
    except BaseException as error:
        close_all()
        _remove_failed_run_files(cfg, existing)
        cell_lock.release()
        if not work_dir_existed and osp.isdir(cfg.work_dir) and set(os.listdir(cfg.work_dir)) <= {'.lock'}:
            shutil.rmtree(cfg.work_dir, ignore_errors=True)
            remove_empty_parents(cfg.work_dir, first_new)
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:  # e.g. the disk filled up mid-run
            raise describe_os_error(error, error.filename or cfg.work_dir, "the run's logs and results") from None
        raise
    finally:
        cell_lock.release()
    close_process_group()
    return payload if rank == 0 else None


def show_info(runner) -> None:
    """Runs start at ``log_level='WARNING'`` to skip mmengine's environment, config and hook dumps;
    progress, the per-class table and the summary are INFO and come back on here."""
    import logging
    from mmengine.dist import get_rank
    if get_rank() != 0:  # mmengine keeps the other ranks at ERROR: one summary per run, not per process
        return
    logger = runner.logger
    if logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in logger.handlers:
        if handler.level > logging.INFO:
            handler.setLevel(logging.INFO)


def close_process_group() -> None:
    """Wait for every rank, then tear the group down: a process that exits with gloo's
    threads still running aborts ("terminate called without an active exception")."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
