"""Evaluate many runs that read the same images in one pass over the data, sharing what they share.

Why: the paper's tables are sweeps, and most cells of a sweep repeat most of each other's work.
Runs whose test data reads the same image files through the same image pipeline (a grid of
overrides on one benchmark; VOC21 and VOC20; Context60 and Context59) form a group. For each
loader batch of a group, every image is decoded, resized and normalised once, and all the
group's models predict on it through one ``shared`` dict, in which:

* models on the same CLIP weights share CLIP's unmodified blocks of every window (the
  ``Trunk``): cells that differ only in the last block(s) run blocks 1..L-1 once;
* models whose method and text side are equal share the patch features, and with equal
  window geometry the whole per-query logit canvas: cells that differ only in
  post-processing (logit scale, thresholds, PAMR) compute everything before it once;
* a foundation model's features (ProxyCLIP) are computed once per window.

Each run keeps its own labels, evaluator, ``metrics.json`` (with its own identity), ``--out``
predictions and lock, and its numbers equal those of the run alone: everything shared is a
deterministic function of inputs that are equal by construction. Memory stays bounded: the
shared dict lives for one loader batch.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import os.path as osp
import shutil
import sys
import traceback
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch.utils.data import DataLoader, Dataset

from .errors import SCLIPError, one_line
from .files import CellLock, ensure_writable, write_json_atomic
from .identity import canonical, changed_parts
from .models.precision import resolve_precision
from .outputs import claim_predictions, metrics_payload, write_result
from .plan import RunPlan, plan_problem
from .progress import Progress
from .runner import run_test, setup_launcher


Job = RunPlan  # one evaluation: its plan (sclip/plan.py), built before execution starts


@dataclass
class Outcome:
    status: str                      # 'ok', 'failed' or 'busy'
    metrics: Optional[dict] = None
    how: str = ''                    # 'reused', 'ran', 're-ran (... changed)'
    error: str = ''
    traceback: str = ''


def existing_metrics(job: Job):
    """(metrics, []) when the job's work dir holds a result of the same fingerprint, else
    (None, what changed)."""
    path = osp.join(job.cfg.work_dir, 'metrics.json')
    if not osp.isfile(path):
        return None, []
    try:
        with open(path) as f:
            metrics = json.load(f)
        old = metrics.get('identity') or {}
        if not isinstance(old, dict):
            raise ValueError('identity is not an object')
    except (OSError, ValueError, AttributeError):
        return None, ['unreadable metrics.json']
    if old.get('fingerprint') == job.identity['fingerprint']:
        return metrics, []
    return None, changed_parts(old, job.identity)


def results_by_fingerprint(folder: str) -> Dict[str, str]:
    """fingerprint -> a ``metrics.json`` under ``folder`` holding a result of that fingerprint:
    what a sweep can reuse whatever folder its cell had (adding a ``--set`` axis renames cells)."""
    found: Dict[str, str] = {}
    for root, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if d not in ('predictions', 'vis_data'))
        if 'metrics.json' not in files:
            continue
        path = osp.join(root, 'metrics.json')
        try:
            with open(path) as f:
                metrics = json.load(f)
            fingerprint = metrics['identity']['fingerprint']
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(fingerprint, str) and 'mIoU' in metrics:
            found.setdefault(fingerprint, path)
    return found


def adopt_result(job: Job, source: str) -> Optional[dict]:
    """Copy the result at ``source`` (same fingerprint as ``job``) into the job's work dir, with
    the job's own identity (its overrides) and ``reused_from``; its label maps too when the job
    saves them. None when the cell is locked by another process or the copy fails."""
    from mmengine.dist import get_rank
    with open(source) as f:
        payload = json.load(f)
    old_predictions = payload.get('predictions_dir')
    if job.out_dir and not (old_predictions and osp.isdir(old_predictions)):
        return None  # the job wants label maps that the other cell did not keep: run it
    payload.update(identity=job.identity, reused_from=osp.abspath(source),
                   predictions_dir=job.out_dir if job.out_dir else None)
    if get_rank() != 0:
        return payload
    lock = CellLock(job.cfg.work_dir)
    try:
        if not lock.acquire():
            return None
        if job.out_dir:
            shutil.copytree(old_predictions, job.out_dir, dirs_exist_ok=True)
        write_json_atomic(osp.join(job.cfg.work_dir, 'metrics.json'), payload)
    except OSError:
        return None
    finally:
        lock.release()
    return payload


# --- grouping ------------------------------------------------------------------------------

def image_pipeline(dataset_cfg: dict) -> list:
    """The pipeline without its label loading: what decides the images a run sees."""
    return [t for t in dataset_cfg.get('pipeline', []) if 'Annotation' not in str(t.get('type'))]


def data_signature(cfg) -> str:
    """Runs with equal signatures read the same image files, in the same order, through the
    same image transforms, pre-processing and batches."""
    from .data_check import dataset_paths
    dataset = cfg.test_dataloader.dataset
    root, img_dir, _, split = dataset_paths(dataset)
    loader = cfg.test_dataloader
    return canonical(dict(img_dir=osp.abspath(img_dir), split=split and osp.abspath(split),
                          img_suffix=dataset.get('img_suffix'), pipeline=image_pipeline(dataset),
                          batch_size=loader.get('batch_size', 1), sampler=loader.get('sampler'),
                          preprocessor=cfg.model.get('data_preprocessor')))


def weights_signature(cfg, identity: dict) -> str:
    """Models with equal signatures can use one CLIP module (and one foundation model)."""
    model = cfg.model
    return canonical(dict(weights=[identity['weights']['arch'], identity['weights']['sha256']
                                   or identity['weights']['source']],
                          clip_format=model.get('clip_format', 'auto'),
                          precision=resolve_precision(model.get('precision', 'auto'))))


def group_jobs(jobs: List[Job]) -> List[List[int]]:
    """Indices of ``jobs`` grouped by data signature, in first-seen order."""
    groups: Dict[str, List[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(data_signature(job.cfg), []).append(index)
    return list(groups.values())


# --- one pass over a group's data ----------------------------------------------------------

class GroupDataset(Dataset):
    """Sample ``i`` of every dataset of a group: the image loaded once (through the first
    dataset's pipeline), each dataset's own label and metadata."""

    def __init__(self, datasets: list):
        self.datasets = datasets
        self.label_steps = [self._label_steps(d) for d in datasets]

    @staticmethod
    def _label_steps(dataset):
        transforms = dataset.pipeline.transforms
        loaders = [t for t in transforms if 'Annotation' in type(t).__name__]
        packers = [t for t in transforms if type(t).__name__ == 'PackSegInputs']
        return loaders, packers[-1] if packers else None

    def __len__(self) -> int:
        return len(self.datasets[0])

    def __getitem__(self, index: int) -> dict:
        first = self.datasets[0][index]
        sample = first['data_samples']
        samples = [sample]
        for dataset, (loaders, packer) in zip(self.datasets[1:], self.label_steps[1:]):
            info = dataset.get_data_info(index)
            if osp.abspath(info['img_path']) != osp.abspath(sample.img_path):
                raise SCLIPError(f'{info["img_path"]}: the datasets grouped for one pass list different images; '
                                 'run this sweep with --no-share.')
            results = dict(copy.deepcopy(info))
            for key in ('ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction', 'pad_shape'):
                if key in sample.metainfo:
                    results[key] = sample.metainfo[key]
            for loader in loaders:
                results = loader(results)
            samples.append(packer(results)['data_samples'])
        return dict(inputs=first['inputs'], samples=samples)


def collate(items: list) -> dict:
    return dict(inputs=[item['inputs'] for item in items],
                samples=[[item['samples'][c] for item in items] for c in range(len(items[0]['samples']))])


class ModelBuilder:
    """Builds each job's model; models on the same weights share one CLIP (and one foundation
    model), so a group of runs holds the weights once."""

    def __init__(self, device):
        self.device = device
        self.towers: Dict[str, tuple] = {}
        self.vfms: Dict[str, object] = {}
        self.loaded: Dict[tuple, object] = {}  # CLIP loads, by source

    def build(self, job: Job):
        from mmseg.registry import MODELS
        from .models.clip_loader import reusing_weights
        official = resolve_precision(job.cfg.model.get('precision', 'auto')) == 'official'  # casts in place: never reused
        with reusing_weights(self.loaded) if not official else contextlib.nullcontext():
            model = MODELS.build(copy.deepcopy(job.cfg.model))
        if not getattr(model, 'shares_clip_towers', False):  # e.g. a trained segmenter (GroupViT, TCL)
            return model.to(self.device).eval()
        signature = weights_signature(job.cfg, job.identity)
        if signature in self.towers:
            model.backbone.vit.visual, model.text_model = self.towers[signature]
        else:
            self.towers[signature] = (model.backbone.vit.visual, model.text_model)
        vfm = getattr(model.backbone.method, 'vfm', None)
        if vfm is not None:
            # the dtype it runs in: under the official precision ProxyCLIP's is fp16, CASS's float32
            half = getattr(model.backbone.method, 'official_vfm_fp16', True)
            key = canonical([job.cfg.model.get('vfm'), resolve_precision(job.cfg.model.get('precision', 'auto')), half])
            model.backbone.method.vfm = self.vfms.setdefault(key, vfm)
        sam = getattr(model.backbone.method, 'sam', None)
        if sam is not None:  # Trident's SAM: one per weights and precision, so its work per image is shared
            key = canonical(['sam', (job.cfg.model.get('method') or {}).get('sam'),
                             resolve_precision(job.cfg.model.get('precision', 'auto'))])
            model.backbone.method.sam = self.vfms.setdefault(key, sam)
        return model.to(self.device).eval()


def build_evaluator(cfg, dataset, out_dir: Optional[str]):
    from mmengine.evaluator import Evaluator
    evaluator_cfg = copy.deepcopy(cfg.test_evaluator)
    if out_dir:
        evaluator_cfg.update(output_dir=out_dir, keep_results=True)
    evaluator = Evaluator(evaluator_cfg)
    evaluator.dataset_meta = dataset.metainfo
    return evaluator


def run_group(jobs: List[Job], models: list, log=print, quiet: bool = True) -> List[dict]:
    """Evaluate ``jobs`` (equal data signatures) with their ``models`` in one pass; returns each
    job's metrics.json payload."""
    from mmengine.dist import get_rank, get_world_size
    from mmengine.registry import init_default_scope
    from mmengine.dataset import DefaultSampler
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    if quiet:  # the per-class tables of many runs: results.md summarises them
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().setLevel(logging.WARNING)
    datasets = [DATASETS.build(dict(copy.deepcopy(job.cfg.test_dataloader.dataset), serialize_data=False))
                for job in jobs]  # no serialisation: its gc.collect() per dataset costs more than the pass
    evaluators = [build_evaluator(job.cfg, dataset, job.out_dir) for job, dataset in zip(jobs, datasets)]
    loader_cfg = jobs[0].cfg.test_dataloader
    group = GroupDataset(datasets)
    loader = DataLoader(group, batch_size=loader_cfg.get('batch_size', 1),
                        sampler=DefaultSampler(group, shuffle=False), num_workers=loader_cfg.get('num_workers', 0),
                        collate_fn=collate, persistent_workers=False)
    preprocessor = models[0].data_preprocessor
    done, total, world = 0, len(group), get_world_size()
    main = get_rank() == 0
    tty = main and sys.stdout.isatty()
    progress = Progress(total, tty=tty, line=(lambda text: log(f'    {text} for {len(jobs)} runs'))
                        if main and not tty else None)
    try:
        with torch.no_grad():
            for batch in loader:
                data = preprocessor(dict(inputs=batch['inputs'], data_samples=batch['samples'][0]), False)
                images = data['inputs']
                shared: dict = {}
                for model, evaluator, samples in zip(models, evaluators, batch['samples']):
                    outputs = model.predict(images, samples, shared=shared)
                    evaluator.process(data_samples=outputs,
                                      data_batch=dict(inputs=batch['inputs'], data_samples=samples))
                done += len(batch['inputs'])
                progress.update(min(done * world, total))
    finally:
        progress.close()
    payloads = []
    for job, evaluator in zip(jobs, evaluators):
        metrics = evaluator.evaluate(len(group))
        payloads.append(metrics_payload(evaluator, metrics, job.cfg, job.identity, job.out_dir))
    return payloads


# --- the public entry point ----------------------------------------------------------------

def evaluate_jobs(jobs: List[Job], launcher: str = 'none', log=print, share: bool = True,
                  quiet: bool = True, on_outcome=None, reusable: Optional[Dict[str, str]] = None) -> List[Outcome]:
    """Every job's result: reused when its fingerprint matches the result in its work dir, or
    one in ``reusable`` (fingerprint -> metrics.json, e.g. ``results_by_fingerprint``), else
    evaluated (grouped when ``share``, one by one through the Runner otherwise). Never raises
    for a failing job; ``on_outcome(index, outcome)`` is called as soon as each job is settled."""
    from mmengine.dist import get_rank
    outcomes: List[Optional[Outcome]] = [None] * len(jobs)

    def settle(index: int, outcome: Outcome) -> None:
        outcomes[index] = outcome
        if on_outcome is not None:
            on_outcome(index, outcome)

    pending, changes = [], {}
    for index, job in enumerate(jobs):
        metrics, changed = existing_metrics(job)
        if metrics is not None:
            settle(index, Outcome('ok', metrics, 'reused'))
            continue
        source = (reusable or {}).get(job.identity['fingerprint'])
        if source and osp.abspath(source) != osp.abspath(osp.join(job.cfg.work_dir, 'metrics.json')):
            metrics = adopt_result(job, source)
            if metrics is not None:
                settle(index, Outcome('ok', metrics, f'reused, same fingerprint as {osp.dirname(source)}'))
                continue
        if share:  # what tools/test.py (run_test, when not shared) checks first: a bad data root is one line
            problem = plan_problem(job)
            if problem is not None:
                settle(index, Outcome('failed', error=str(problem)))
                continue
        pending.append(index)
        changes[index] = changed
    if pending and launcher != 'none':
        setup_launcher(jobs[pending[0]].cfg, launcher, init_cuda=True)
    locks = {}
    for index in list(pending):
        lock = CellLock(jobs[index].cfg.work_dir)
        if get_rank() == 0:
            try:
                ensure_writable(jobs[index].cfg.work_dir)
            except SCLIPError as error:
                settle(index, Outcome('failed', error=str(error)))
                pending.remove(index)
                continue
            if not lock.acquire():
                settle(index, Outcome('busy', error=f'{jobs[index].cfg.work_dir} is being run by {lock.holder}'))
                pending.remove(index)
                continue
        locks[index] = lock

    def how(index: int) -> str:
        return f're-ran ({", ".join(changes[index])} changed)' if changes[index] else 'ran'

    try:
        if not share:
            for index in pending:
                job = jobs[index]
                log(f'{job.label}: running')
                try:
                    payload = run_test(job.cfg, out_dir=job.out_dir, launcher=launcher, overrides=job.overrides,
                                       identity=job.identity, lock=False, show_progress=not quiet, plan=job)
                    if payload is None:  # another rank: rank 0 wrote it
                        with open(osp.join(job.cfg.work_dir, 'metrics.json')) as f:
                            payload = json.load(f)
                    settle(index, Outcome('ok', payload, how(index)))
                except KeyboardInterrupt:
                    raise
                except Exception as error:  # noqa: BLE001 - recorded, the others go on
                    settle(index, Outcome('failed', error=one_line(error) or type(error).__name__,
                                          traceback=traceback.format_exc()))
        else:
            builder = ModelBuilder(torch.device('cuda' if torch.cuda.is_available() else 'cpu'))
            for group in group_jobs([jobs[i] for i in pending]):
                members, models = [], []
                for index in (pending[i] for i in group):
                    try:
                        if get_rank() == 0:
                            claim_predictions(jobs[index])
                        models.append(builder.build(jobs[index]))
                        members.append(index)
                    except KeyboardInterrupt:
                        raise
                    except Exception as error:  # noqa: BLE001 - this run fails, the group goes on
                        settle(index, Outcome('failed', error=one_line(error) or type(error).__name__,
                                              traceback=traceback.format_exc()))
                if not members:
                    continue
                log(f'one pass over {osp.basename(str(jobs[members[0]].cfg.test_dataloader.dataset.get("data_root")))}'
                    f' for {len(members)} runs: ' + ', '.join(jobs[i].label for i in members))
                try:
                    payloads = run_group([jobs[i] for i in members], models, log, quiet)
                    del models
                except KeyboardInterrupt:
                    raise
                except Exception as error:  # noqa: BLE001 - the whole group failed on the same input
                    for index in members:
                        settle(index, Outcome('failed', error=one_line(error) or type(error).__name__,
                                              traceback=traceback.format_exc()))
                    continue
                for index, payload in zip(members, payloads):
                    if get_rank() == 0:
                        try:
                            write_result(jobs[index], payload)
                        except SCLIPError as error:
                            settle(index, Outcome('failed', error=str(error)))
                            continue
                    settle(index, Outcome('ok', payload, how(index)))
    finally:
        for lock in locks.values():
            lock.release()
        if launcher != 'none':
            from .runner import close_process_group
            close_process_group()
    return [outcome or Outcome('failed', error='not run') for outcome in outcomes]

