"""Shared sweeps: every cell's predictions and metrics equal those of the cell run alone."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, make_dataset, write_openai_checkpoint
from sclip import group_eval, sweep

SIZES = [(120, 90), (90, 120)]


@pytest.fixture(scope='module')
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp('shared')
    weights = write_openai_checkpoint(str(folder / 'w12.pt'), width=64, layers=12)
    from sclip.models.vfm.testing import write_official_checkpoint
    dino = write_official_checkpoint(str(folder / 'dino.pth'), 'dino_vitb8', tiny=True)
    root = make_dataset('voc21', str(folder / 'data'), sizes=SIZES)
    options = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': root,
               'test_dataloader.num_workers': 0}
    return folder, options, dino


def predictions(cell_dir):
    files = sorted(p for p in __import__('glob').glob(osp.join(cell_dir, 'predictions', '*.png')))
    return {osp.basename(p): np.asarray(Image.open(p)) for p in files}


def run_both(folder, configs, axes, options, name):
    results = {}
    for share in (True, False):
        work = str(folder / f'{name}-{share}')
        results[share] = sweep.run_sweep(configs, sweep.parse_axes(axes), work, options, log=lambda *a: None,
                                         quiet=True, share=share, save_predictions=True)
    return results


def assert_cells_equal(results):
    shared, alone = results[True], results[False]
    assert [r.status for r in shared] == ['ok'] * len(shared), [r.error for r in shared]
    assert [r.status for r in alone] == ['ok'] * len(alone), [r.error for r in alone]
    for a, b in zip(shared, alone):
        with open(osp.join(a.work_dir, 'metrics.json')) as f:
            ma = json.load(f)
        with open(osp.join(b.work_dir, 'metrics.json')) as f:
            mb = json.load(f)
        for key in ('mIoU', 'aAcc', 'mAcc', 'per_class'):
            assert ma[key] == mb[key], (a.config, a.variant, key)
        assert ma['identity']['fingerprint'] == mb['identity']['fingerprint']
        pa, pb = predictions(a.work_dir), predictions(b.work_dir)
        assert pa and pa.keys() == pb.keys()
        for name in pa:
            assert np.array_equal(pa[name], pb[name]), (a.config, a.variant, name)


def test_post_processing_text_and_attention_cells_equal_alone(setting, monkeypatch):
    """A grid mixing post-processing, last-block and text-side changes, and VOC21 with VOC20."""
    folder, options, _ = setting
    calls = []
    real = group_eval.run_group
    monkeypatch.setattr(group_eval, 'run_group', lambda jobs, *a, **k: calls.append(len(jobs)) or real(jobs, *a, **k))
    results = run_both(folder, [osp.join(REPO, 'configs', 'sclip_voc21.py'), osp.join(REPO, 'configs', 'sclip_voc20.py')],
                       ['model.attention.type=csa,vanilla', 'model.logit_scale=40,65'], options, 'grid')
    assert calls == [8]  # one pass over VOC2012 for all eight cells
    assert_cells_equal(results)


CASES = {
    'scclip-resclip-clearclip': (('scclip/voc21.py', 'resclip/voc20.py', 'clearclip/voc21.py'), [], False),
    'naclip-pamr': (('naclip/voc21.py', 'naclip_pamr/voc20.py'), ['model.prob_thd=0.0,0.1'], False),
    'proxyclip': (('proxyclip/voc21.py',), ['model.method.beta=1.2,1.0'], True),  # shares CLIP and DINO
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_successor_methods_equal_alone(setting, case):
    folder, options, dino = setting
    configs, axes, vfm = CASES[case]
    if vfm:
        options = dict(options, **{'model.vfm.checkpoint': dino, 'model.vfm.tiny': True})
    results = run_both(folder, [osp.join(REPO, 'configs', c) for c in configs], axes, options, case)
    assert_cells_equal(results)


def test_shared_cells_reuse_and_trunk_sharing(setting):
    """A cell with an unchanged fingerprint is not recomputed inside a group; models on the same
    weights hold one CLIP."""
    folder, options, _ = setting
    work = str(folder / 'reuse')
    configs = [osp.join(REPO, 'configs', 'sclip_voc21.py')]
    first = sweep.run_sweep(configs, sweep.parse_axes(['model.prob_thd=0.0,0.2']), work, options,
                            log=lambda *a: None, quiet=True)
    lines = []
    again = sweep.run_sweep(configs, sweep.parse_axes(['model.prob_thd=0.0,0.2,0.4']), work, options,
                            log=lines.append, quiet=True)
    assert [r.reused for r in again] == [True, True, False]
    assert [r.mIoU for r in again[:2]] == [r.mIoU for r in first]
    assert any('for 1 runs' in line for line in lines)  # only the new cell went through the pass
    builder = group_eval.ModelBuilder('cpu')
    jobs = [group_eval.Job(cfg, {}, sweep.run_identity(cfg, {})) for cfg in
            (sweep.load_config(configs[0], dict(options, **{'model.prob_thd': p}), str(folder / f'm{p}'))
             for p in (0.0, 0.3))]
    a, b = builder.build(jobs[0]), builder.build(jobs[1])
    assert a.backbone.vit.visual is b.backbone.vit.visual and a.text_model is b.text_model
    assert a is not b and a.prob_thd != b.prob_thd


def test_failed_run_leaves_no_empty_log_folder(setting, tmp_path):
    """A run that stops on bad input leaves no empty work_dirs/<config>/<timestamp>/ behind."""
    from helpers import load_tool
    folder, options, _ = setting
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=SIZES)
    label = osp.join(root, 'SegmentationClass', '2008_000002.png')
    Image.fromarray(np.full((90, 120), 40, np.uint8)).save(label)  # outside the 21 classes
    work = tmp_path / 'w'
    with pytest.raises(SystemExit):
        from sclip.cli import main_guard
        main_guard(lambda: load_tool('test').main([
            osp.join(REPO, 'configs', 'sclip_voc21.py'), '--work-dir', str(work), '--cfg-options',
            f"model.clip_path={options['model.clip_path']}", f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.num_workers=0']))
    leftovers = [p for p in work.rglob('*') if p.is_dir()] if work.exists() else []
    assert not leftovers, leftovers
