"""What a run leaves behind: its ``metrics.json`` and its ``--out`` folder of label maps.

Why: the single run (sclip/runner.py) and the shared pass (sclip/group_eval.py) must write the
same files from the same plan: the payload (mmseg's metrics, two decimals, with the plan's
identity) written atomically, and the predictions folder claimed before the run writes there
and sealed once it finished (sclip/predictions.py). Only rank 0 of a distributed run writes.
"""
from __future__ import annotations

import os.path as osp
from datetime import datetime, timezone
from typing import Optional

from mmengine import Config

from . import predictions
from .files import describe_os_error, write_json_atomic

METRICS_SCHEMA = 2


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


def claim_predictions(plan) -> None:
    """Make the plan's ``--out`` folder its own before the run writes there (see sclip/predictions.py)."""
    if plan.out_dir:
        predictions.claim(plan.out_dir, plan.identity['fingerprint'])


def write_result(plan, payload: dict) -> None:
    """``<work_dir>/metrics.json`` (atomically), then the ``--out`` folder sealed; a failed write
    is one line (SCLIPError) naming the file."""
    path = osp.join(plan.cfg.work_dir, 'metrics.json')
    try:
        write_json_atomic(path, payload)
    except OSError as error:
        raise describe_os_error(error, path, 'metrics.json') from None
    if plan.out_dir:
        predictions.seal(plan.out_dir, plan.identity['fingerprint'])
