"""GroupViT and TCL (the trained rows of SCLIP's Table 1) end to end: every benchmark config through
the sweep (plan, data checks, evaluation, metrics.json) on a tiny random model saved in its released
checkpoint layout and synthetic data in each benchmark's layout. Their predictions are checked
against the transcriptions of the official evaluations in test_fidelity_groupvit/tcl.py."""
import json
import os.path as osp

import pytest

from helpers import REPO, make_dataset
from sclip import sweep
from sclip.data_check import dataset_classes
from sclip.models.groupvit.testing import TINY as GROUPVIT_TINY, write_groupvit_checkpoint
from sclip.models.tcl.testing import write_tcl_checkpoint

TABLE1 = ['voc21', 'context60', 'coco_object', 'voc20', 'context59', 'coco_stuff164k', 'cityscapes', 'ade20k']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp('trained_e2e')
    for benchmark in TABLE1:
        make_dataset(benchmark, str(folder / 'data'), sizes=[(64, 48)])
    return folder


# the tiny GroupViT's head counts (the released checkpoints' are the configs' 6, 6, 6)
TINY_OPTIONS = {'groupvit': {'model.num_heads': list(GROUPVIT_TINY['num_heads'])}, 'tcl': {}}


@pytest.mark.parametrize('method, write', [('groupvit', write_groupvit_checkpoint), ('tcl', write_tcl_checkpoint)])
def test_every_table1_config_runs_end_to_end(method, write, workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace)  # the configs' relative data roots
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(tmp_path / 'cache'))
    checkpoint = write(str(tmp_path / f'{method}.pth'))
    configs = [osp.join(REPO, 'configs', method, f'{b}.py') for b in TABLE1]
    # one 64-pixel window per image instead of two 448 ones (every setting's exactness: the fidelity tests)
    options = {'model.checkpoint': checkpoint, 'test_dataloader.num_workers': 0, **TINY_OPTIONS[method],
               'test_dataloader.dataset.pipeline.1.scale': (2048, 64), 'model.slide_crop': 64,
               'model.slide_stride': 32}
    results = sweep.run_sweep(configs, [], str(tmp_path / 'sweep'), options, log=lambda *a: None, quiet=True)
    assert [r.status for r in results] == ['ok'] * len(TABLE1), [r.error for r in results]
    for result in results:
        cfg = sweep.load_config(result.config)
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
        assert list(metrics['per_class']['IoU']) == dataset_classes(cfg.test_dataloader.dataset)
        assert metrics['identity']['checkpoints']['model.checkpoint']['sha256']  # the weights, by content
