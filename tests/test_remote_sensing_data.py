"""SegEarth-OV's 17 remote-sensing benchmarks: the datasets and base configs on synthetic data in the
prepared layout, tools/check_data.py on them, and the converters of tools/prepare_data.py on
hand-made examples of the original downloads (label maps compared with explicit colour/value tables)."""
import os.path as osp

import numpy as np
import pytest
from mmengine import Config

from helpers import REPO, load_tool
from sclip.datasets.remote_sensing import RS_DATASET_TYPES, RS_KEYS
from sclip.synthetic import REMOTE_SENSING_LAYOUTS, make_remote_sensing_dataset

# key -> (classes, reduce_zero_label): SegEarth-OV's custom_datasets.py and mmseg's classes
CLASS_COUNTS = {'openearthmap': (9, False), 'loveda': (7, True), 'isaid': (16, False), 'potsdam': (6, True),
                'vaihingen': (6, True), 'uavid': (7, False), 'udd5': (5, False), 'vdd': (7, False)}


def base_config(key):
    return Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'rs_{key}.py'))


def build(key, root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    dataset = dict(base_config(key).test_dataloader.dataset)
    dataset['data_root'] = root
    return DATASETS.build(dataset)


def test_every_key_has_a_base_config_and_a_layout():
    assert set(RS_KEYS) == set(REMOTE_SENSING_LAYOUTS) and len(RS_KEYS) == 17
    for key in RS_KEYS:
        cfg = base_config(key)
        assert cfg.benchmark == key and cfg.dataset_type == RS_DATASET_TYPES[key]
        assert cfg.data_root == 'data/' + REMOTE_SENSING_LAYOUTS[key][0]


@pytest.mark.parametrize('key', RS_KEYS)
def test_base_config_loads_its_synthetic_dataset(key, tmp_path):
    """Each base config reads the synthetic copy; the labels arrive as class indices (reduce_zero_label
    turning 0 into 255 where SegEarth-OV sets it) and stay inside the classes."""
    root = make_remote_sensing_dataset(key, str(tmp_path / 'data'))
    dataset = build(key, root)
    classes, reduce_zero = CLASS_COUNTS.get(key, (2, False))
    assert len(dataset) == 2 and len(dataset.metainfo['classes']) == classes
    assert dataset.reduce_zero_label == reduce_zero
    raw = set(REMOTE_SENSING_LAYOUTS[key][-1])
    expected = {(v - 1 if v else 255) if reduce_zero else v for v in raw}
    seen = set()
    for index in range(len(dataset)):
        seen |= set(np.unique(dataset[index]['data_samples'].gt_sem_seg.data.numpy()).tolist())
    assert seen <= expected and len(seen) >= 2
    assert all(v < classes or v == 255 for v in seen)


def test_check_data_knows_the_remote_sensing_sets(tmp_path, capsys):
    tool = load_tool('check_data')
    root = make_remote_sensing_dataset('potsdam', str(tmp_path / 'data'))
    config = osp.join(REPO, 'configs/_base_/datasets/rs_potsdam.py')
    override = ['--cfg-options', f'test_dataloader.dataset.data_root={root}']
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, *override])  # 2 images, not the official 2016
    assert exit_info.value.code == 2 and '2016' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', *override])
    assert exit_info.value.code == 0 and 'OK (2 images checked' in capsys.readouterr().out
