"""Every benchmark config end to end through tools/test.py on a synthetic dataset."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from helpers import BENCHMARKS, LAYOUTS, REPO, make_dataset, run_tool
from sclip.class_names import load_class_names
from sclip.runner import load_config
from sclip.data_check import dataset_classes

CONFIG_OF = {name: f'configs/sclip_{name}.py' for name in BENCHMARKS}
REDUCE_ZERO = {'voc20', 'context59', 'coco_stuff10k', 'ade20k'}


def reduce_zero(gt):
    """mmseg's reduce_zero_label: 0 -> 255 (ignored), v -> v - 1, 255 stays 255."""
    return np.where((gt == 0) | (gt == 255), 255, gt - 1)


def hand_iou(pred_dir, label_paths, class_id, reduce_zero_label):
    """IoU of one class over the split, from the saved PNGs and the raw label files."""
    inter = union = 0
    for label_path, pred_name in zip(label_paths, sorted(f for f in os.listdir(pred_dir) if f.endswith('.png'))):
        gt = np.array(Image.open(label_path)).astype(np.int64)
        pred = np.array(Image.open(osp.join(pred_dir, pred_name))).astype(np.int64)
        if reduce_zero_label:  # labels: 0 -> ignore, v -> v-1; saved predictions carry +1
            gt = reduce_zero(gt)
            pred = pred - 1
        valid = gt != 255
        inter += np.sum((pred == class_id) & (gt == class_id) & valid)
        union += np.sum(((pred == class_id) | (gt == class_id)) & valid)
    return 100.0 * inter / union


@pytest.mark.parametrize('name', BENCHMARKS)
def test_benchmark_config_end_to_end(name, tmp_path, tiny_checkpoint):
    root = make_dataset(name, str(tmp_path / 'data'))
    out = str(tmp_path / 'pred')
    metrics = run_tool(CONFIG_OF[name], root, tiny_checkpoint, str(tmp_path / 'work'), '--out', out)
    assert set(['mIoU', 'aAcc', 'mAcc', 'per_class']) <= set(metrics)
    cfg = load_config(osp.join(REPO, CONFIG_OF[name]))
    classes = dataset_classes(cfg.test_dataloader.dataset)
    assert list(metrics['per_class']['IoU']) == classes
    assert load_class_names(cfg.model.class_names).num_classes == len(classes)
    ious = [v for v in metrics['per_class']['IoU'].values() if v is not None]
    assert metrics['mIoU'] == pytest.approx(np.mean(ious), abs=0.01)
    # one IoU by hand, from the saved predictions and the label files
    sub, _, seg_dir, _, seg_suffix, _, _ = LAYOUTS[name]
    labels = sorted(osp.join(dirpath, f) for dirpath, _, files in os.walk(osp.join(root, seg_dir))
                    for f in files if f.endswith(seg_suffix))
    reduce = name in REDUCE_ZERO
    gt = np.concatenate([np.array(Image.open(p)).ravel().astype(np.int64) for p in labels])
    gt = reduce_zero(gt) if reduce else gt
    class_id = int(np.bincount(gt[gt != 255]).argmax())  # the most frequent labelled class
    preds = sorted(f for f in os.listdir(out) if f.endswith('.png'))  # beside the run's manifest
    assert len(preds) == 2 and osp.isfile(osp.join(out, '.sclip-predictions.json'))
    expected = hand_iou(out, labels, class_id, reduce)
    assert metrics['per_class']['IoU'][classes[class_id]] == pytest.approx(expected, abs=0.01)


def test_official_settings_in_configs():
    """The per-dataset settings of PROTOCOL.md, read back from the configs."""
    expected = {  # benchmark: (short side, logit_scale, prob_thd, area_thd)
        'voc21': (336, 65, 0.1, 0.1), 'voc20': (336, 40, 0.0, None), 'context60': (336, 50, 0.1, None),
        'context59': (336, 40, 0.0, None), 'coco_object': (336, 50, 0.1, None),
        'coco_stuff164k': (448, 40, 0.0, None), 'coco_stuff10k': (336, 40, 0.0, None),
        'cityscapes': (560, 40, 0.0, None), 'ade20k': (336, 40, 0.0, None)}
    for benchmark, (short, scale, prob, area) in expected.items():
        cfg = load_config(osp.join(REPO, CONFIG_OF[benchmark]))
        resize = [t for t in cfg.test_pipeline if t['type'] == 'Resize'][0]
        assert resize['scale'] == (2048, short) and resize['keep_ratio']
        assert (cfg.model.logit_scale, cfg.model.prob_thd, cfg.model.area_thd) == (scale, prob, area)
        # None = the model's input size and half of it: 224 / 112 for ViT-B/16
        assert (cfg.model.slide_crop, cfg.model.slide_stride) == (None, None)
        assert cfg.model.clip_path == 'openai' and cfg.model.arch == 'ViT-B-16'


def official_class_file_hashes() -> dict:
    """name -> sha256 of the official class files, shipped in tests/official/class_names.sha256."""
    with open(osp.join(REPO, 'tests', 'official', 'class_names.sha256')) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith('#')]
    return {name: digest for digest, name in rows}


def test_class_files_match_the_official_vocabulary():
    expected = official_class_file_hashes()
    assert len(expected) == 8
    for name, digest in expected.items():
        with open(osp.join(REPO, 'configs', 'class_names', name), 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
    reference = osp.join(osp.dirname(REPO), 'shared', 'reference', 'class_names')
    if osp.isdir(reference):  # the developers' copy of the official files: the manifest was made from it
        for name in os.listdir(reference):
            with open(osp.join(reference, name), 'rb') as f:
                assert hashlib.sha256(f.read()).hexdigest() == expected[name], name
