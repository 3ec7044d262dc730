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
# GroupViT, TCL, CLIPer, FreeCP: derived first-name class files (ours; CLIPer's own where the background is
# not class 0)
FIRST_NAME_PAIRS = [(method, key) for method in GENERATOR.FIRST_NAME_METHODS for key in RS_KEYS
                    if (method, key) not in GENERATOR.SKIPPED]
SMALL = [dict(type='SCLIPLoadImage'), dict(type='Resize', scale=(112, 112), keep_ratio=True),
         dict(type='SCLIPLoadAnnotations'), dict(type='PackSegInputs')]


def test_checked_in_configs_are_the_generators_output(monkeypatch):
    assert GENERATOR.drift() == []
    assert len(PAIRS) == 15 * 17 and len(FIRST_NAME_PAIRS) == 4 * 17
    cliper_files = 3  # Potsdam, Vaihingen, UDD5: CLIPer's background words first
    assert len(GENERATOR.expected_files()) == len(PAIRS) + len(FIRST_NAME_PAIRS) + len(RS_KEYS) + cliper_files
    # the check can fail: a changed composition is seen in every file it touches
    monkeypatch.setattr(GENERATOR, 'config_text', lambda method, key: f'# {method} {key}\n')
    problems = GENERATOR.drift()
    assert len(problems) == len(PAIRS) + len(FIRST_NAME_PAIRS) and all(p.endswith(': differs') for p in problems)
    monkeypatch.setattr(GENERATOR, 'first_names', lambda key: 'background\n')
    assert len(GENERATOR.drift()) == len(PAIRS) + len(FIRST_NAME_PAIRS) + len(RS_KEYS)
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
    for method, (_, base, _, extras, _) in GENERATOR.METHODS.items():
        cfg = plans[method, 'loveda'].cfg
        base_model = Config.fromfile(osp.join(REPO, 'configs', '_base_', f'{base}.py')).model
        for setting in ('type', 'arch', 'logit_scale', 'slide_crop', 'slide_stride', 'attention'):
            if setting not in {name for name, _, _ in extras}:  # FLOSS's logit scale is its own
                assert cfg.model.get(setting) == base_model.get(setting), (method, setting)
        assert cfg.model.get('method', {}).get('type') == base_model.get('method', {}).get('type'), method
    assert plans['naclip_pamr', 'loveda'].cfg.model.pamr_steps == 10
    assert plans['itaclip', 'loveda'].cfg.model.text is None
    assert plans['corrclip', 'loveda'].cfg.model.region_masks.type == 'sam2'
    floss = plans['floss', 'loveda']  # its ranking is computed (tools/floss_rankings.py): the plan names it
    assert floss.cfg.model.logit_scale == 100 and floss.cfg.model.text.template_ranking['keys'] == 'class'
    assert 'tools/floss_rankings.py configs/remote_sensing/floss/loveda.py' in str(floss.problem)
    # the cached bases changed nothing: a sample loads the same without them
    monkeypatch.setattr(Config, '_file2dict', staticmethod(fast_bases))
    for method, key in PAIRS[::41]:
        path = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        options = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': roots[key]}
        assert load_config(path, options, plans[method, key].cfg.work_dir).to_dict() == \
            plans[method, key].cfg.to_dict(), path


def test_first_name_pairs_load_and_resolve_into_a_plan(workspace, fast_bases, monkeypatch):
    """GroupViT, TCL, CLIPer and FreeCP (ours): each pair reads the derived class file (the first name
    of each SegEarth-OV class, as many classes as the dataset), class 0 is a 'background' that the
    method decides itself exactly where SegEarth-OV's bg_idx is 0 (CLIPer elsewhere: the background
    class's names are its background words and its background is that label), and the rest is the
    method's base."""
    from sclip import identity
    from sclip.models.cliper_segmentor import dataset_class_count, read_class_file
    for name in ('git_commit', 'source_sha256', '_version'):
        monkeypatch.setattr(identity, name, functools.lru_cache()(getattr(identity, name)))
    folder, roots, weights = workspace
    checkpoint = folder / 'trained.pth'
    checkpoint.write_bytes(b'not read by a plan')
    official = {key: Config.fromfile(osp.join(REPO, f'configs/segearth_ov/{key}.py')) for key in RS_KEYS}
    first = {key: [names[0] for names in load_class_names(cfg.model.class_names, separator=',').classes]
             for key, cfg in official.items()}
    assert first['loveda'][1] == 'building' and first['potsdam'][5] == 'clutter' and first['udd5'][4] == 'background'
    for method, key in FIRST_NAME_PAIRS:
        path = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        options = {'test_dataloader.dataset.data_root': roots[key],
                   **({'model.clip_path': weights} if method in ('cliper', 'freecp') else
                      {'model.checkpoint': str(checkpoint)})}
        cfg = load_config(path, options, str(folder / 'work' / method / key))
        plan = plan_run(cfg, options, strict=False)
        dataset = official[key].test_dataloader.dataset
        assert (cfg.benchmark, cfg.test_dataloader.dataset.type) == (key, dataset.type), path
        assert cfg.test_dataloader.dataset.data_prefix == dataset.data_prefix, path
        classes = dataset_classes(dataset)
        assert plan.dataset.type == dataset.type and plan.dataset.num_images == 2, path
        base = Config.fromfile(osp.join(REPO, 'configs', '_base_', f'{method}.py'))
        if method == 'cliper':
            assert cfg.test_pipeline == base.cliper_pipeline_336, path  # its own loader
            words, names = read_class_file(cfg.model.class_names)
            bg = official[key].model.bg_idx
            segearth_names = load_class_names(official[key].model.class_names, separator=',').classes
            assert words == (['background'] if bg == 0 else list(segearth_names[bg])), path
            assert names == first[key][:bg] + first[key][bg + 1:], path
            assert cfg.model.reduce_zero_label == (bg != 0) and cfg.model.get('background_label') == (bg or None)
            assert dataset_class_count(cfg.model.class_names, cfg.model.reduce_zero_label,
                                       cfg.model.get('background_label')) == len(classes), path
            assert cfg.model.templates_file.endswith('cliper/car_template.txt')
            settings = ('type', 'arch', 'logit_scale', 'attention_thr', 'score_threshold', 'bkg_thre',
                        'sliding_crop_size')
        else:
            assert cfg.test_pipeline == official[key].test_pipeline, path
            names = load_class_names(cfg.model.class_names, separator='\t').classes
            assert [n[0] for n in names] == first[key] and len(names) == len(classes), path
            # the method's own background (class 0 named 'background') exactly where SegEarth-OV's is class 0
            assert (first[key][0] == 'background') == (official[key].model.bg_idx == 0), key
            settings = ('type', 'bg_thresh', 'slide_crop', 'slide_stride', 'templates', 'logit_scale')
            if method == 'freecp':  # its own background where class 0 is one; the queries' texts for its crops
                assert cfg.model.text is None and cfg.model.method.ambiguity_texts == 'queries', path
                assert cfg.model.method.background == (official[key].model.bg_idx == 0), path
                assert (cfg.model.method.rp_thres, cfg.model.method.ap_thres, cfg.model.method.base) == (0.05, 0.7, 'gem')
        for setting in settings:
            assert cfg.model.get(setting) == base.model.get(setting), (method, setting)
        assert cfg.model.get('prob_thd', 0.0) == 0.0 and 'bg_idx' not in cfg.model, path
    assert {key for key in RS_KEYS if official[key].model.bg_idx != 0} == {'potsdam', 'vaihingen', 'udd5'}


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


def test_first_name_methods_run_end_to_end(workspace, monkeypatch):
    """GroupViT on LoveDA, TCL on UDD5 (background class 4 a text query), CLIPer on OpenEarthMap
    (multi-name classes) and Potsdam (background class 5), FreeCP on OpenEarthMap (its own background)
    and Vaihingen (none) through the sweep on tiny random models; then the background rule: TCL's
    constant background 1 beats every mask score (a sigmoid) and CLIPer's bkg_thre 100 every class map,
    so every pixel is the dataset's background (LoveDA's class 0, saved as 1 after reduce_zero_label;
    OpenEarthMap's 0; Potsdam's 5, saved as 6)."""
    from sclip.models.groupvit.testing import TINY, write_groupvit_checkpoint
    from sclip.models.tcl.testing import write_tcl_checkpoint
    folder, roots, weights = workspace
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(folder / 'text_cache'))
    groupvit = write_groupvit_checkpoint(str(folder / 'groupvit.pth'))
    tcl = write_tcl_checkpoint(str(folder / 'tcl.pth'))
    deeper = write_openai_checkpoint(str(folder / 'w6.pt'), width=64, layers=6)  # FreeCP's GEM: 7 - 1 blocks
    one_template = {'model.templates': ['a photo of a {}.']}
    small = {'test_dataloader.num_workers': 0, 'model.slide_crop': 64, 'model.slide_stride': 32,
             'test_dataloader.dataset.pipeline.1.scale': (64, 64)}  # one 64-pixel window per image
    runs = [('groupvit', 'loveda', {**small, 'model.checkpoint': groupvit, 'model.num_heads': list(TINY['num_heads'])}),
            ('tcl', 'udd5', {**small, 'model.checkpoint': tcl}),
            ('cliper', 'openearthmap', {'model.clip_path': weights, 'test_dataloader.num_workers': 0,
                                        'test_dataloader.dataset.pipeline.0.size': 64}),
            ('cliper', 'potsdam', {'model.clip_path': weights, 'test_dataloader.num_workers': 0,
                                   'test_dataloader.dataset.pipeline.0.size': 64}),
            ('freecp', 'openearthmap', {'model.clip_path': deeper, 'test_dataloader.num_workers': 0, **one_template,
                                        'test_dataloader.dataset.pipeline': SMALL}),
            ('freecp', 'vaihingen', {'model.clip_path': deeper, 'test_dataloader.num_workers': 0, **one_template,
                                     'test_dataloader.dataset.pipeline': SMALL})]
    for method, key, options in runs:
        options = {**options, 'test_dataloader.dataset.data_root': roots[key]}
        config = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        [result] = sweep.run_sweep([config], [], str(folder / 'first' / method / key), options,
                                   log=lambda *a: None, quiet=True)
        assert result.status == 'ok', result.error
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
        official = Config.fromfile(osp.join(REPO, f'configs/segearth_ov/{key}.py'))
        assert list(metrics['per_class']['IoU']) == dataset_classes(official.test_dataloader.dataset)
        assert metrics['identity']['data']['num_images'] == 2
    background = [('tcl', 'loveda', {**small, 'model.checkpoint': tcl, 'model.bg_thresh': 1.0}, 1),
                  ('cliper', 'openearthmap', {**runs[2][2], 'model.bkg_thre': 100.0}, 0),
                  ('cliper', 'potsdam', {**runs[3][2], 'model.bkg_thre': 100.0}, 6)]
    for method, key, options, saved in background:
        options = {**options, 'test_dataloader.dataset.data_root': roots[key]}
        config = osp.join(REPO, 'configs', 'remote_sensing', method, f'{key}.py')
        [result] = sweep.run_sweep([config], [], str(folder / 'first_bg' / method / key), options,
                                   log=lambda *a: None, quiet=True, save_predictions=True)
        assert result.status == 'ok', result.error
        maps = sorted((folder / 'first_bg' / method / key).rglob('predictions/*.png'))
        assert len(maps) == 2
        assert all(set(np.unique(np.array(Image.open(p))).tolist()) == {saved} for p in maps), method
