"""Run one evaluation through mmengine's Runner and write ``metrics.json``.

Why: ``tools/test.py``, ``tools/sweep.py`` and ``tools/paper_table.py`` must run a config
exactly the same way; this module is that one way. It mirrors mmseg's ``tools/test.py``
(``--out``, ``--show-dir``, ``--cfg-options``, launchers) and adds the pre-flight checks,
CPU-friendly distributed set-up and an atomically written ``metrics.json``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
import time
import uuid
from typing import Optional

import torch
from mmengine import Config, DictAction  # noqa: F401  (DictAction re-exported for tools)

from . import compat  # noqa: F401
from .errors import SCLIPError
from .preflight import preflight


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None) -> Config:
    """Read a config, apply overrides and pick its work dir (``work_dirs/<config name>``)."""
    if not osp.isfile(path):
        raise SCLIPError(f'config {path!r} not found; pass a file such as configs/sclip_voc21.py.')
    try:
        cfg = Config.fromfile(path)
    except Exception as error:
        raise SCLIPError(f'config {path!r} could not be parsed: {str(error).splitlines()[0]}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(path)
    return cfg


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config stem>``, or ``work_dirs/<method>/<stem>`` for ``configs/<method>/``."""
    stem = osp.splitext(osp.basename(config_path))[0]
    parent = osp.basename(osp.dirname(osp.abspath(config_path)))
    return osp.join('./work_dirs', stem) if parent == 'configs' else osp.join('./work_dirs', parent, stem)


def write_json_atomic(path: str, payload) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it: never a half file."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)), suffix='.tmp')
    try:
        with os.fdopen(handle, 'w') as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def enable_outputs(cfg: Config, out_dir: Optional[str], show_dir: Optional[str]) -> None:
    """mmseg's ``--out`` (label PNGs via IoUMetric) and ``--show-dir`` (visualiser) settings."""
    if out_dir:
        cfg.test_evaluator['output_dir'] = out_dir
        cfg.test_evaluator['keep_results'] = True
    if show_dir:
        cfg.default_hooks.visualization.update(type='SCLIPVisualizationHook', draw=True, interval=1,
                                               out_dir=show_dir)


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Distributed set-up; on machines without CUDA, a gloo group and no DDP wrapper."""
    cfg.launcher = launcher
    if launcher == 'none':
        return
    cfg.model_wrapper_cfg = dict(type='SCLIPInferenceWrapper')
    if not torch.cuda.is_available():
        import torch.distributed as dist
        if launcher == 'slurm':
            raise SCLIPError('--launcher slurm needs CUDA GPUs; use --launcher pytorch (torchrun) on CPUs.')
        if not dist.is_initialized():
            dist.init_process_group('gloo')
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'


def metrics_payload(runner, metrics: dict, cfg: Config) -> dict:
    """``metrics.json`` content: summary in percent plus per-class IoU and Acc by name."""
    payload = {key: float(value) for key, value in metrics.items()}
    for evaluator in runner.test_evaluator.metrics:
        per_class = getattr(evaluator, 'per_class', None)
        if per_class:
            payload['per_class'] = {key: dict(values) for key, values in per_class.items()}
    payload['config'] = cfg.filename
    return payload


def run_test(cfg: Config, out_dir: Optional[str] = None, show_dir: Optional[str] = None,
             launcher: str = 'none', check_files: bool = True) -> dict:
    """Evaluate ``cfg`` and write ``<work_dir>/metrics.json``; returns the payload."""
    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    preflight(cfg, check_files=check_files)
    enable_outputs(cfg, out_dir, show_dir)
    setup_launcher(cfg, launcher)
    if not cfg.get('experiment_name'):  # unique, so runs in one process never share a logger
        stem = osp.splitext(osp.basename(cfg.filename or 'sclip'))[0]
        cfg.experiment_name = f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{uuid.uuid4().hex[:6]}'
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    payload = metrics_payload(runner, metrics, cfg)
    if get_rank() == 0:
        write_json_atomic(osp.join(cfg.work_dir, 'metrics.json'), payload)
    close_process_group()
    return payload


def close_process_group() -> None:
    """Wait for every rank, then tear the group down: a process that exits with gloo's
    threads still running aborts ("terminate called without an active exception")."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
