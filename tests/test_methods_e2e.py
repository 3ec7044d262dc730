"""Every benchmark config of every successor method end to end: one sweep per method over the
nine benchmarks, on synthetic datasets in each benchmark's exact layout at the configs' own
data roots (the sweep shares passes where benchmarks read the same images)."""
import json
import os
import os.path as osp

import pytest

from helpers import BENCHMARKS, REPO, make_dataset, write_openai_checkpoint
from sclip import sweep
from sclip.data_check import dataset_classes

METHODS = ['clearclip', 'naclip', 'naclip_pamr', 'scclip', 'resclip', 'proxyclip', 'gem']
# PAMR's ten steps over 150-171 query maps per window dominate a CPU run; one step runs the
# same code path (exactness of every setting: tests/test_method_fidelity.py)
FEWER_PAMR_STEPS = {'naclip_pamr': {'model.pamr_steps': 1},
                    'resclip': {'model.method.provisional_pamr_steps': 1}}


@pytest.fixture(scope='module')
def shared_text_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('text_cache'))


@pytest.fixture(autouse=True)
def isolated_cache(shared_text_cache, monkeypatch):
    """One text cache for the module: the methods share most class files."""
    monkeypatch.setenv('SCLIP_CACHE_DIR', shared_text_cache)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """data/<benchmark layout> for all nine benchmarks, as the configs' data roots expect."""
    folder = tmp_path_factory.mktemp('methods_e2e')
    for benchmark in BENCHMARKS:
        make_dataset(benchmark, str(folder / 'data'), sizes=[(64, 48), (40, 56)])
    weights = write_openai_checkpoint(str(folder / 'w12.pt'), width=64, layers=12)
    from sclip.models.vfm.testing import write_official_checkpoint
    dino = write_official_checkpoint(str(folder / 'dino.pth'), 'dino_vitb8', tiny=True)
    return folder, weights, dino


@pytest.mark.parametrize('method', METHODS)
def test_every_benchmark_config_of_the_method(method, workspace, monkeypatch):
    folder, weights, dino = workspace
    monkeypatch.chdir(folder)  # the configs' relative data roots: data/VOCdevkit/VOC2012, ...
    configs = [osp.join(REPO, 'configs', method, f'{b}.py') for b in BENCHMARKS]
    options = {'model.clip_path': weights, 'test_dataloader.num_workers': 0}
    if method == 'proxyclip':
        options.update({'model.vfm.checkpoint': dino, 'model.vfm.tiny': True})
    options.update(FEWER_PAMR_STEPS.get(method, {}))
    results = sweep.run_sweep(configs, [], str(folder / method), options, log=lambda *a: None, quiet=True)
    assert [r.status for r in results] == ['ok'] * len(BENCHMARKS), [r.error for r in results]
    for result in results:
        cfg = sweep.load_config(result.config)
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
        classes = dataset_classes(cfg.test_dataloader.dataset)
        assert list(metrics['per_class']['IoU']) == classes
        assert 0 <= metrics['mIoU'] <= 100 and metrics['method'] == cfg.method
        assert metrics['benchmark'] == cfg.benchmark and metrics['paper_key'] == cfg.paper_key
        assert metrics['identity']['data']['num_images'] == 2
        assert metrics['identity']['config']['file'] == result.config
    table = (folder / method / 'results.md').read_text()
    assert table.count('|') > 20 and '| average |' in table.splitlines()[0] + ' |'
    assert len(os.listdir(folder / method / 'default')) >= 1
