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
