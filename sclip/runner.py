"""Run one evaluation (a run plan) through mmengine's Runner and write ``metrics.json`` with its identity.

Why: ``tools/test.py``, ``tools/sweep.py --no-share`` and ``tools/paper_table.py`` must run a
config exactly the same way; this module is that one way (execution: it takes the plan of
sclip/plan.py, where the config was loaded, checked and identified). It mirrors mmseg's
``tools/test.py`` (``--out``, ``--show-dir``, launchers) and adds CPU-friendly distributed
set-up, a lock on the work dir, and cleaning up after a failed run; sclip/outputs.py writes
the files. ``load_config`` and friends live in sclip/config_file.py (re-exported here).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import time
import uuid
from typing import Optional

import torch
from mmengine import Config

from . import compat  # noqa: F401
from .config_file import (LOAD_TIME_KEYS, RUNNER_KEYS, check_override_keys, default_work_dir,  # noqa: F401 (re-export)
                          find_config, load_config)
from .errors import SCLIPError
from .files import WRITE_ERRNOS, CellLock, describe_os_error, ensure_writable, write_json_atomic  # noqa: F401 (re-export)
from .outputs import claim_predictions, metrics_payload, write_result
from .plan import RunPlan, plan_problem, plan_run
from .progress import close_all


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
             identity: Optional[dict] = None, lock: bool = True, show_progress: bool = True,
             plan: Optional[RunPlan] = None) -> dict:
    """Evaluate ``cfg`` and write ``<work_dir>/metrics.json``; returns the payload on rank 0 and
    None on the other ranks of a distributed run (so only one process reports). ``plan``: the
    run's plan when the caller made it (its config, output folders and identity are the run's),
    else it is made here (sclip/plan.py), its first pre-flight problem raised."""
    if plan is None:
        plan = plan_run(cfg, overrides, out_dir=out_dir, show_dir=show_dir, check_files=check_files,
                        identity=identity)
    else:
        problem = plan_problem(plan, check_files)
        if problem is not None:
            raise problem
    return execute(plan, launcher, lock, show_progress)


def execute(plan: RunPlan, launcher: str = 'none', lock: bool = True, show_progress: bool = True) -> dict:
    """Run a checked plan through mmengine's Runner and write its outputs (see ``run_test``)."""
    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    cfg, out_dir, show_dir, identity = plan.cfg, plan.out_dir, plan.show_dir, plan.identity
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
        claim_predictions(plan)
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
            write_result(plan, payload)
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
