"""The run plan (sclip/plan.py): built once per cell, it keeps every existing fingerprint, lists the
dataset once per run, and planning never imports execution or outputs."""
from __future__ import annotations

import ast
import os
import os.path as osp

import pytest
from mmengine import Config

from sclip import identity

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# The fingerprint of ``pinned_setup`` computed by the code BEFORE the run plan existed (commit
# 43cdc2f): the refactor must reproduce it to the character, or every user's results would re-run.
PINNED_FINGERPRINT = '1881015d1eb4375462db6f7b5d6269db78d5b476fa3c09b4105de3d3e485c3b8'
PINNED_FILES_SHA256 = 'a36e17fc7f9860082ac5539121080fce61fdc690d9f88a373da452b22f42a4a2'


def pinned_setup(folder, monkeypatch):
    """A fixed synthetic set-up with every identity part present (weights, foundation model,
    class names, templates, a text-side file, data), the code and library parts held constant."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(identity, 'source_sha256', lambda: 'code')
    monkeypatch.setattr(identity, 'library_versions', lambda: {'torch': 't', 'mmseg': 'm'})
    files = {'data/ImageSets/Segmentation/val.txt': b'a\nb\n', 'data/JPEGImages/a.jpg': b'image a',
             'data/JPEGImages/b.jpg': b'image b', 'data/SegmentationClass/a.png': b'label a',
             'data/SegmentationClass/b.png': b'label b', 'names.txt': b'background\ncat\n',
             'weights.pt': b'weights', 'vfm.pth': b'vfm', 'descriptions.json': b'{"cat": ["a cat"]}'}
    for path, content in files.items():
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
        with open(path, 'wb') as f:
            f.write(content)
    return Config(dict(
        model=dict(type='SCLIPSegmentor', arch='ViT-B-16', clip_path='weights.pt', class_names='names.txt',
                   logit_scale=40, vfm=dict(type='dino_vitb8', checkpoint='vfm.pth'),
                   text=dict(descriptions=dict(file='descriptions.json', mix=0.5))),
        test_dataloader=dict(batch_size=1, num_workers=0, dataset=dict(
            type='PascalVOCDataset', data_root='data', ann_file='ImageSets/Segmentation/val.txt',
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'), pipeline=[])),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU'])))


def test_fingerprint_of_a_fixed_setup_is_the_one_before_the_run_plan(tmp_path, monkeypatch):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = pinned_setup(tmp_path, monkeypatch)
    found = identity.run_identity(cfg, {'model.logit_scale': 40})
    assert found['data']['num_images'] == 2
    assert found['data']['files_sha256'] == PINNED_FILES_SHA256
    assert found['fingerprint'] == PINNED_FINGERPRINT


# --- the dataset is listed once per run ------------------------------------------------------

@pytest.fixture
def listings(monkeypatch):
    """Every call of the dataset listing (``data_check.expected_pairs``), by data root."""
    from sclip import data_check
    calls = []
    real = data_check.expected_pairs

    def counting(cfg):
        calls.append(cfg.test_dataloader.dataset.data_root)
        return real(cfg)
    monkeypatch.setattr(data_check, 'expected_pairs', counting)
    return calls


@pytest.fixture(scope='module')
def voc(tmp_path_factory, tiny_checkpoint):
    from helpers import make_dataset
    return make_dataset('voc21', str(tmp_path_factory.mktemp('plan') / 'data')), tiny_checkpoint


def test_tools_test_lists_the_dataset_once(voc, tmp_path, listings):
    from helpers import run_tool
    root, weights = voc
    metrics = run_tool('configs/sclip_voc21.py', root, weights, str(tmp_path / 'run'), '--out', str(tmp_path / 'out'))
    assert listings == [root]
    assert metrics['identity']['data']['num_images'] == 2 and len(list((tmp_path / 'out').glob('*.png'))) == 2


@pytest.mark.parametrize('share,values', [(True, '0.0,0.3'), (False, '0.3')])  # one cell alone: a Runner costs
def test_a_sweep_lists_each_cells_dataset_once(voc, tmp_path, listings, share, values):
    from sclip import sweep
    root, weights = voc
    results = sweep.run_sweep([osp.join(REPO, 'configs', 'sclip_voc21.py')], sweep.parse_axes([f'model.prob_thd={values}']),
                              str(tmp_path / 'sweep'), {'model.clip_path': weights, 'test_dataloader.num_workers': 0,
                                                        'test_dataloader.dataset.data_root': root},
                              log=lambda *a: None, quiet=True, share=share)
    assert [r.status for r in results] == ['ok'] * len(results), [r.error for r in results]
    assert listings == [root] * len(results)


def test_a_cells_plan_holds_its_listing_and_the_identity_made_from_it(voc, tmp_path):
    from sclip.config_file import load_config
    from sclip.plan import plan_run
    root, weights = voc
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'),
                      {'model.clip_path': weights, 'test_dataloader.dataset.data_root': root}, str(tmp_path / 'w'))
    plan = plan_run(cfg, {'model.clip_path': weights}, out_dir=str(tmp_path / 'p'))
    assert plan.checked and plan.problem is None and plan.work_dir == str(tmp_path / 'w')
    assert plan.dataset.num_images == 2 and all(osp.isfile(img) and osp.isfile(seg) for img, seg in plan.dataset.pairs)
    assert plan.identity['data'] == identity.data_identity(cfg)
    assert plan.fingerprint == identity.run_identity(cfg, {'model.clip_path': weights})['fingerprint']
    assert plan.weights['sha256'] == identity.file_sha256(weights) and plan.text['class_names'] == cfg.model.class_names
    # a sweep's cell keeps its problem for execution; tools/test.py raises it at once, one line naming the folder
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    kept = plan_run(cfg, {}, strict=False)
    assert kept.problem is not None and 'nowhere' in str(kept.problem) and kept.identity['data']['num_images'] is None
    from sclip.errors import SCLIPError
    with pytest.raises(SCLIPError, match='nowhere') as raised:
        plan_run(cfg, {})
    assert str(raised.value) == str(kept.problem) and '\n' not in str(raised.value)


# --- module boundaries: planning -> execution -> outputs ------------------------------------

PLANNING = ('options', 'config_file', 'config_check', 'preflight', 'data_check', 'identity', 'class_names', 'plan')
EXECUTION = ('runner', 'group_eval', 'sweep', 'side_by_side')
OUTPUTS = ('outputs', 'predictions', 'report')


def sclip_imports(path: str, package: str) -> set:
    """The sclip modules a file imports (at its top or inside functions), by their first name under sclip."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ''
            names = [base] if node.module else [f'{base}.{alias.name}' for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name.split('.')[1] for name in names if name.startswith('sclip.') and name.count('.') >= 1)
    return found


def layer_files(names):
    for name in names:
        path = osp.join(REPO, 'sclip', name)
        if osp.isdir(path):
            for root, _, files in os.walk(path):
                for file in files:
                    if file.endswith('.py'):
                        yield osp.join(root, file), 'sclip.' + osp.relpath(root, osp.join(REPO, 'sclip')).replace(os.sep, '.')
        else:
            yield path + '.py', 'sclip'


def test_imports_run_one_way():
    assert sclip_imports(osp.join(REPO, 'sclip', 'runner.py'), 'sclip') >= {'plan', 'outputs'}  # the parser sees them
    for path, package in layer_files(PLANNING):
        wrong = sclip_imports(path, package) & set(EXECUTION + OUTPUTS)
        assert not wrong, f'{path} (planning) imports {wrong}'
    for path, package in layer_files(OUTPUTS):
        wrong = sclip_imports(path, package) & set(EXECUTION)
        assert not wrong, f'{path} (outputs) imports {wrong}'
