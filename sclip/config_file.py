"""A config file read and its ``--cfg-options`` applied: the first step of planning a run.

Why: every tool reads a config the same way (found relative to here or to the repository,
overrides checked against the keys the run reads, a work dir chosen), and the run plan
(sclip/plan.py) starts from that config. Nothing here builds a model or reads data.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional

from mmengine import Config

from .errors import SCLIPError
from .identity import REPO_DIR


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
    """``work_dirs/<config stem>``, or ``work_dirs/<method>/<stem>`` for ``configs/<method>/``; a
    config deeper in the repository's configs/ keeps its folders (``configs/remote_sensing/<method>/
    <dataset>.py`` -> ``work_dirs/remote_sensing/<method>/<dataset>``, where sclip/paper.py looks)."""
    inside = osp.relpath(osp.abspath(config_path), osp.join(REPO_DIR, 'configs'))
    if not inside.startswith('..') and inside.count(osp.sep) > 1:
        return osp.join('./work_dirs', osp.splitext(inside)[0])
    stem = osp.splitext(osp.basename(config_path))[0]
    parent = osp.basename(osp.dirname(osp.abspath(config_path)))
    return osp.join('./work_dirs', stem) if parent == 'configs' else osp.join('./work_dirs', parent, stem)
