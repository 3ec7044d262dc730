"""Every method on SegEarth-OV's 17 remote-sensing sets (configs/remote_sensing/<method>/<dataset>.py):
the checked-in files are tools/make_rs_configs.py's output, every pair loads and resolves into a plan
with the dataset's classes and SegEarth-OV's dataset facts, and a sample runs end to end on synthetic
data in each set's layout (tiny random CLIP and DINO)."""
import copy
import functools
import json
import os.path as osp

import numpy as np
import pytest
from mmengine import Config
from PIL import Image

from helpers import REPO, load_tool
from sclip import sweep
from sclip.class_names import load_class_names
from sclip.config_file import load_config
from sclip.data_check import dataset_classes
from sclip.identity import file_sha256
from sclip.datasets.remote_sensing import RS_KEYS
from sclip.plan import plan_run
from sclip.synthetic import make_remote_sensing_dataset, write_openai_checkpoint

GENERATOR = load_tool('make_rs_configs')
PAIRS = [(method, key) for method in GENERATOR.METHODS for key in RS_KEYS]
SMALL = [dict(type='SCLIPLoadImage'), dict(type='Resize', scale=(112, 112), keep_ratio=True),
         dict(type='SCLIPLoadAnnotations'), dict(type='PackSegInputs')]


def test_checked_in_configs_are_the_generators_output(monkeypatch):
    assert GENERATOR.drift() == []
    assert len(GENERATOR.expected_files()) == len(PAIRS) == 14 * 17
    # the check can fail: a changed composition is seen in every file it touches
    monkeypatch.setattr(GENERATOR, 'config_text', lambda method, key: f'# {method} {key}\n')
    problems = GENERATOR.drift()
    assert len(problems) == len(PAIRS) and all(p.endswith(': differs') for p in problems)
    with pytest.raises(SystemExit) as exit_info:
        GENERATOR.main(['--check'])
    assert exit_info.value.code == 1


def test_dataset_facts_are_segearth_ovs():
    """prob_thd / bg_idx as loaded from SegEarth-OV's official configs (not only as the generator reads them)."""
    for key in ('potsdam', 'udd5', 'xbd_pre', 'openearthmap'):
        official = Config.fromfile(osp.join(REPO, f'configs/segearth_ov/{key}.py')).model
        facts = GENERATOR.dataset_facts(key)
        assert float(facts['prob_thd']) == official.prob_thd and int(facts['bg_idx']) == official.bg_idx
    assert GENERATOR.dataset_facts('potsdam') == {'prob_thd': '0.1', 'bg_idx': '5'}
    assert GENERATOR.dataset_facts('udd5')['bg_idx'] == '4'


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp('rs_methods')
    roots = {key: make_remote_sensing_dataset(key, str(folder / 'data'), sizes=[(48, 40), (36, 44)])
             for key in RS_KEYS}
    weights = write_openai_checkpoint(str(folder / 'w.pt'), width=64, layers=2)
    return folder, roots, weights


@pytest.fixture
def fast_bases(monkeypatch):
    """Each _base_ file parsed once for the 238 loads (mmengine re-parses every base per config);
    the composed configs are the same (checked on a sample against an uncached load)."""
    original = Config._file2dict
    cache = {}

    def cached(filename, *args, **kwargs):
        if f'{osp.sep}_base_{osp.sep}' not in filename:
            return original(filename, *args, **kwargs)
        key = (filename, args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(filename, *args, **kwargs)
        return copy.deepcopy(cache[key])
    monkeypatch.setattr(Config, '_file2dict', staticmethod(cached))
    return original


def test_every_pair_loads_and_resolves_into_a_plan(workspace, fast_bases, monkeypatch):
    from sclip import identity
    for name in ('git_commit', 'source_sha256', '_version'):  # the code is the same for all 238 plans
        monkeypatch.setattr(identity, name, functools.lru_cache()(getattr(identity, name)))
    folder, roots, weights = workspace
    official = {key: Config.fromfile(osp.join(REPO, f'configs/segearth_ov/{key}.py')) for key in RS_KEYS}
    classes = {key: load_class_names(cfg.model.class_names, separator=cfg.model.class_name_separator).classes
               for key, cfg in official.items()}
    plans = {}
    for method, key in PAIRS:
        path = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        options = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': roots[key]}
        cfg = load_config(path, options, str(folder / 'work' / method / key))
        plans[method, key] = plan = plan_run(cfg, options, strict=False)
        dataset = official[key].test_dataloader.dataset
        assert (cfg.benchmark, cfg.test_dataloader.dataset.type) == (key, dataset.type), path
        assert cfg.test_dataloader.dataset.data_prefix == dataset.data_prefix, path
        assert cfg.test_pipeline == official[key].test_pipeline, path  # the dataset's pipeline, not the method's
        assert (cfg.model.prob_thd, cfg.model.bg_idx) == (official[key].model.prob_thd, official[key].model.bg_idx)
        names = load_class_names(cfg.model.class_names, separator=cfg.model.class_name_separator)
        assert names.classes == classes[key], path
        assert plan.identity['text']['class_names_sha256'] == file_sha256(official[key].model.class_names)
        assert plan.dataset.type == dataset.type and plan.dataset.num_images == 2, path
        assert plan.identity['data']['num_images'] == 2 and plan.identity['weights']['source'] == weights, path
    assert all(len(classes[key]) == len(dataset_classes(official[key].test_dataloader.dataset)) for key in RS_KEYS)
    # the method's settings are its base's: one pair per method against the base file itself
    for method, (_, base, _, _, _) in GENERATOR.METHODS.items():
        cfg = plans[method, 'loveda'].cfg
        base_model = Config.fromfile(osp.join(REPO, 'configs', '_base_', f'{base}.py')).model
        for setting in ('type', 'arch', 'logit_scale', 'slide_crop', 'slide_stride', 'attention'):
            assert cfg.model.get(setting) == base_model.get(setting), (method, setting)
        assert cfg.model.get('method', {}).get('type') == base_model.get('method', {}).get('type'), method
    assert plans['naclip_pamr', 'loveda'].cfg.model.pamr_steps == 10
    assert plans['itaclip', 'loveda'].cfg.model.text is None
    assert plans['corrclip', 'loveda'].cfg.model.region_masks.type == 'sam2'
    # the cached bases changed nothing: a sample loads the same without them
    monkeypatch.setattr(Config, '_file2dict', staticmethod(fast_bases))
    for method, key in PAIRS[::41]:
        path = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        options = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': roots[key]}
        assert load_config(path, options, plans[method, key].cfg.work_dir).to_dict() == \
            plans[method, key].cfg.to_dict(), path


SAMPLE = [('sclip', 'potsdam'),         # bg_idx 5, a multi-name class
          ('naclip_pamr', 'udd5'),      # bg_idx 4, PAMR
          ('itaclip', 'loveda'),        # no LLM texts, reduce_zero_label
          ('proxyclip', 'whu_aerial')]  # a foundation model, a binary set


def test_a_sample_runs_end_to_end(workspace, monkeypatch):
    folder, roots, weights = workspace
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(folder / 'text_cache'))
    from sclip.models.vfm.testing import write_official_checkpoint
    dino = write_official_checkpoint(str(folder / 'dino.pth'), 'dino_vitb8', tiny=True)
    base = {'model.clip_path': weights, 'test_dataloader.num_workers': 0, 'model.templates': ['a photo of a {}.'],
            'test_dataloader.dataset.pipeline': SMALL}
    results = []
    for method, key in SAMPLE:
        options = {**base, 'test_dataloader.dataset.data_root': roots[key]}
        if method == 'proxyclip':
            options.update({'model.vfm.checkpoint': dino, 'model.vfm.tiny': True})
        if method == 'itaclip':  # its intermediate blocks 7, 8, 10
            options['model.clip_path'] = write_openai_checkpoint(str(folder / 'w12.pt'), width=64, layers=12)
        if method == 'naclip_pamr':
            options['model.pamr_steps'] = 1
        config = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        results += sweep.run_sweep([config], [], str(folder / 'runs' / method), options, log=lambda *a: None,
                                   quiet=True)
    assert [r.status for r in results] == ['ok'] * len(SAMPLE), [r.error for r in results]
    assert [(r.benchmark, r.method) for r in results] == [
        ('potsdam', 'SCLIP'), ('udd5', 'NACLIP+PAMR'), ('loveda', 'ITACLIP'), ('whu_aerial', 'ProxyCLIP')]
    for result, (method, key) in zip(results, SAMPLE):
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
        official = Config.fromfile(osp.join(REPO, f'configs/segearth_ov/{key}.py'))
        classes = list(metrics['per_class']['IoU'])
        assert len(classes) == len(load_class_names(official.model.class_names, separator=',').classes)
        assert metrics['identity']['data']['num_images'] == 2


def test_low_confidence_pixels_go_to_the_datasets_background(workspace, monkeypatch):
    """prob_thd=1 puts every pixel under the threshold: SCLIP on Potsdam predicts only class 5
    (clutter, SegEarth-OV's bg_idx), on UDD5 only class 4. The saved maps are in the labels' own
    coding: Potsdam's reduce_zero_label shifts class 5 back to 6."""
    folder, roots, weights = workspace
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(folder / 'text_cache'))
    for key, saved in (('potsdam', 6), ('udd5', 4)):
        options = {'model.clip_path': weights, 'test_dataloader.num_workers': 0, 'model.prob_thd': 1.0,
                   'model.templates': ['a photo of a {}.'], 'test_dataloader.dataset.pipeline': SMALL,
                   'test_dataloader.dataset.data_root': roots[key]}
        config = osp.join(REPO, 'configs', 'remote_sensing', 'sclip', f'{key}.py')
        [result] = sweep.run_sweep([config], [], str(folder / 'bg' / key), options, log=lambda *a: None,
                                   quiet=True, save_predictions=True)
        assert result.status == 'ok', result.error
        maps = sorted((folder / 'bg' / key).rglob('predictions/*.png'))
        assert len(maps) == 2
        assert all(set(np.unique(np.array(Image.open(p))).tolist()) == {saved} for p in maps)


def test_sweep_tables_order_the_remote_sensing_columns_as_the_paper():
    from sclip.paper import RS_COLUMNS
    results = [sweep.Result('default', method, key, f'configs/remote_sensing/x/{key}.py', 'ok', mIoU=10.0)
               for method in ('GEM', 'SCLIP') for key in reversed(RS_KEYS)]
    header = sweep.markdown_table(results).splitlines()[0]
    assert [c.strip() for c in header.split('|')[2:-2]] == [key for key, _ in RS_COLUMNS]


def test_generated_configs_set_no_precision():
    """What tests/test_official_precision.py skips for these files: none sets model.precision."""
    assert not any('precision' in text for text in GENERATOR.expected_files().values())


def test_the_report_orders_and_labels_the_remote_sensing_columns():
    from types import SimpleNamespace

    from sclip.paper import RS_COLUMNS
    from sclip.report.html import benchmark_columns
    runs = [SimpleNamespace(benchmark=key) for key in ['voc21', *reversed(RS_KEYS)]]
    assert benchmark_columns(runs) == [('voc21', 'VOC21'), *RS_COLUMNS]
