"""Every attention variant and PAMR end to end through tools/test.py overrides; ablation configs."""
import glob
import os.path as osp

import pytest

from helpers import REPO, make_dataset, run_tool
from sclip.models.attention import ATTENTIONS
from sclip.runner import load_config

VARIANT_ARGS = {'sharpen': ['model.attention.tau=2'], 'local': ['model.attention.window=3'],
                'early_layer': ['model.attention.layer=1'], 'csa_random': ['model.attention.seed=7'],
                'naclip': ['model.attention.sigma=5']}


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    return make_dataset('voc21', str(tmp_path_factory.mktemp('data')))


@pytest.mark.parametrize('variant', sorted(ATTENTIONS))
def test_every_variant_end_to_end(variant, voc_root, tiny_checkpoint, tmp_path):
    metrics = run_tool('configs/sclip_voc21.py', voc_root, tiny_checkpoint, str(tmp_path / 'w'),
                       '--cfg-options', f'model.attention.type={variant}', *VARIANT_ARGS.get(variant, []))
    assert 0 <= metrics['mIoU'] <= 100 and len(metrics['per_class']['IoU']) == 21


def test_variants_change_predictions(voc_root, tiny_checkpoint, tmp_path):
    csa = run_tool('configs/sclip_voc21.py', voc_root, tiny_checkpoint, str(tmp_path / 'a'))
    vanilla = run_tool('configs/sclip_voc21.py', voc_root, tiny_checkpoint, str(tmp_path / 'b'),
                       '--cfg-options', 'model.attention.type=vanilla')
    assert csa['per_class'] != vanilla['per_class'] or csa['aAcc'] != vanilla['aAcc']


def test_pamr_ablation_config_end_to_end(voc_root, tiny_checkpoint, tmp_path):
    metrics = run_tool('configs/ablations/pamr_voc21.py', voc_root, tiny_checkpoint, str(tmp_path / 'w'))
    assert 0 <= metrics['mIoU'] <= 100


def test_every_ablation_config_loads_with_its_setting():
    configs = sorted(glob.glob(osp.join(REPO, 'configs', 'ablations', '*.py')))
    assert len(configs) == 17
    for path in configs:
        cfg = load_config(path)
        name = osp.basename(path)
        if name.startswith('pamr_'):
            assert cfg.model.pamr_steps == 10 and tuple(cfg.model.pamr_dilations) == (8, 16)
        else:
            assert cfg.model.attention.type in ('sharpen', 'local', 'early_layer')
        assert cfg.method != 'SCLIP' and cfg.benchmark in name
