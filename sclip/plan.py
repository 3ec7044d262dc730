"""The run plan: one object per run (a sweep's cell), resolved once from its config after overrides.

Why: a run's facts (its dataset's folders and listed image/label pairs, class names, templates,
text side, method settings, weights and foundation-model files with their hashes, output folders)
used to be re-derived from the raw config by the pre-flight checks, the identity, the runner and
the shared pass, each on its own, and the dataset was listed twice per run. A ``RunPlan`` holds
them once; every later stage reads the plan, and the identity is computed from the very listing
the run uses, so it cannot disagree with what was run.

Before the plan (commit 43cdc2f), a sweep's cell went: sweep.prepare_cell -> runner.load_config ->
identity.run_identity -> data_check.expected_pairs (listing 1) -> group_eval.evaluate_jobs ->
preflight.preflight -> data_check.check_dataset -> expected_pairs (listing 2) -> runner.run_test
(``--no-share``: preflight again) or group_eval.run_group -> runner.metrics_payload -> metrics.json,
each stage reading the dataset's folders, class names and weights from the raw config anew.

How a run flows now (each step's module; imports run downwards only, tests/test_plan.py checks it):

planning (config -> plan; every check that can fail before compute):
  sclip/options.py          ``--cfg-options`` parsed
  sclip/config_file.py      ``load_config``: file found, overrides checked (sclip/config_check.py), work dir
  sclip/plan.py             ``plan_run``: in order
    sclip/preflight.py        ``checks_before_listing``: structure, data folders
    sclip/data_check.py       ``list_dataset``: THE listing of the split (once per run)
    sclip/preflight.py        ``checks_after_listing``: class names, weights, the listed files present
    sclip/identity.py         ``run_identity``: config, weights, foundation model, text, data (from
                              the listing), code, libraries -> fingerprint
  -> ``RunPlan`` (frozen): config, overrides, identity, label, output folders, ``DatasetPlan``,
     the pre-flight verdict (raised at once by ``tools/test.py``; kept as the cell's outcome by a
     sweep, where a cell whose result already exists is reused whatever it says)
execution (plan -> predictions and metrics):
  sclip/runner.py           ``execute`` (``run_test``): one plan through mmengine's Runner (tools/test.py,
                            ``--no-share``)
  sclip/group_eval.py       ``evaluate_jobs``: many plans, reused by fingerprint, else grouped by the
                            images they read and evaluated in one pass each
  sclip/side_by_side.py     the web demo: ``model_plan`` per method, models built and run on one image
outputs (plan + results -> files):
  sclip/outputs.py          metrics.json (payload with the plan's identity), the ``--out`` folder's
                            claim and seal (sclip/predictions.py)
  sclip/report/             the HTML report, from the metrics.json files and their identities

Drivers: ``tools/test.py`` (load_config -> plan_run -> runner.execute), ``tools/sweep.py`` ->
sclip/sweep.py (a grid of cells: ``prepare_cell`` plans each, then ``evaluate_jobs``, then its tables),
``tools/paper_table.py --run`` (``plan_run`` per benchmark, then ``evaluate_jobs``),
``tools/web_demo.py`` (``model_plan`` per method).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from mmengine import Config

from . import data_check
from .data_check import DatasetPlan
from .errors import SCLIPError
from .identity import file_sha256, run_identity
from .preflight import checks_after_listing, checks_before_listing, preflight


@dataclass(frozen=True, eq=False)
class RunPlan:
    """Everything a run needs, resolved once (see the module docstring).

    ``cfg``: the config after overrides, its ``work_dir`` set (mmengine's Runner mutates it while
    running: the plan owns it). ``dataset``: the listed split (None for a plan without data, such
    as the web demo's). ``checked``: the pre-flight checks ran while planning; ``problem`` is then
    the first one found (None: all passed)."""
    cfg: Config
    overrides: Dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    label: str = ''
    out_dir: Optional[str] = None
    show_dir: Optional[str] = None
    dataset: Optional[DatasetPlan] = None
    problem: Optional[SCLIPError] = None
    checked: bool = False

    @property
    def work_dir(self) -> str:
        return self.cfg.work_dir

    @property
    def fingerprint(self) -> str:
        return self.identity['fingerprint']

    @property
    def config_file(self) -> Optional[str]:
        return self.cfg.filename

    @property
    def method(self) -> Optional[dict]:
        """The method and its settings (``model.method``)."""
        return self.cfg.model.get('method')

    @property
    def weights(self) -> dict:
        """arch, source and sha256 of the CLIP weights."""
        return self.identity['weights']

    @property
    def vfm(self) -> Optional[dict]:
        """type, source and sha256 of the foundation model (None: the method has none)."""
        return self.identity.get('vfm')

    @property
    def text(self) -> dict:
        """Class-name file, templates and the text side's files, with their hashes."""
        return self.identity['text']

    @property
    def text_side(self) -> Optional[dict]:
        """The pluggable text side's settings (``model.text``)."""
        return self.cfg.model.get('text')


def plan_run(cfg: Config, overrides: Optional[dict] = None, *, label: str = '', out_dir: Optional[str] = None,
             show_dir: Optional[str] = None, strict: bool = True, check_files: bool = True,
             identity: Optional[dict] = None) -> RunPlan:
    """The plan of evaluating ``cfg`` (loaded with ``overrides``). ``strict`` (tools/test.py): the
    first pre-flight problem is raised, before the identity is computed; otherwise (a sweep's
    cell) the identity comes first and the problem is kept in ``plan.problem``."""
    if strict:
        checks_before_listing(cfg)
        dataset = data_check.list_dataset(cfg)
        checks_after_listing(cfg, check_files, dataset)
        problem = None
    else:
        dataset = data_check.list_dataset(cfg)
    identity = identity or run_identity(cfg, overrides, dataset=dataset)
    if not strict:
        try:
            preflight(cfg, check_files, listing=dataset)
            problem = None
        except SCLIPError as error:
            problem = error
    return RunPlan(cfg, dict(overrides or {}), identity, label, out_dir, show_dir, dataset, problem, checked=True)


def plan_problem(plan: RunPlan, check_files: bool = True) -> Optional[SCLIPError]:
    """The pre-flight problem of ``plan`` (checked now when it was built without planning)."""
    if plan.checked:
        return plan.problem
    try:
        preflight(plan.cfg, check_files, listing=plan.dataset)
    except SCLIPError as error:
        return error
    return None


def model_plan(cfg: Config, overrides: Optional[dict] = None, label: str = '') -> RunPlan:
    """A plan without data (the web demo): what building its model needs, the weights' identity."""
    source = cfg.model.get('clip_path') or 'openai'
    identity = {'weights': {'arch': cfg.model.get('arch'), 'source': source, 'sha256': file_sha256(source)}}
    return RunPlan(cfg, dict(overrides or {}), identity, label)

