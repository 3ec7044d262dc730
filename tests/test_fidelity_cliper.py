"""CLIPer without FGC (sclip/models/cliper.py) computes what the official inference computes
(tests/official/cliper.py, linsun449/cliper.code @ c05fa41, ``--refinement None``).

On a random 4-block CLIP (two 32-wide heads, sharpened: tests/helpers.py), a 240 x 352 input (15 x 22
patches: 224 windows with the official 112 stride make 2 x 3 windows, 336 windows 1 x 2, the last
row and column shifted back) and each shipped ViT-B/16
setting (scripts/config/vit-b-16/*.yaml: logit scale, sliding window, attention threshold, the
two thresholds of ``cam_to_label``, ``is_normalize``; read from configs/cliper/, so the configs and
this check cannot drift), also with the thresholds off: the class maps at the image's size to
MAP_TOL and the labels pixel for pixel. Inputs discriminate: several labels, and a mutation (the fusion
without its in-place Sinkhorn iterations) changes the result.
"""
from __future__ import annotations

import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from helpers import method_configs, write_multihead_checkpoint
from official import cliper as official
from sclip.models import cliper
from sclip.models.clip_vit import CLIPViT

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
KEYS = ('logit_scale', 'attention_thr', 'score_threshold', 'bkg_thre', 'is_normalize', 'sliding_crop_size')
# not ade847 / context459: ours, no official config to compare with (tests/test_large_vocab.py runs them)
BENCHMARKS = sorted(osp.basename(p)[:-3] for p in method_configs('cliper'))


def settings(benchmark: str) -> dict:
    """The official settings as configs/cliper/<benchmark>.py holds them (the one source)."""
    from mmengine.config import Config
    model = Config.fromfile(osp.join(REPO, 'configs', 'cliper', f'{benchmark}.py')).model
    return {key: model[key] for key in KEYS}


# thresholds off: no attention threshold, every class competes, background scored (1 - max)^2
OFF = dict(attention_thr=0.0, score_threshold=0.0, bkg_thre=0.0)
SIZE = (200, 290)  # the image's original size, the labels' resolution
# maps up to 1.2 in value, two float32 orders of the same sums (the Sinkhorn fusion amplifies the
# rounding): 4e-6 apart on one CPU, 1.2e-5 on an AMD EPYC (observed; the BLAS kernels differ)
MAP_TOL = 3e-5


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    import open_clip
    path, arch = write_multihead_checkpoint(str(tmp_path_factory.mktemp('clip')), width=64, heads=2, layers=4,
                                            embed_dim=8)
    model = open_clip.create_model(arch, pretrained=None)
    model.load_state_dict(torch.load(path))
    model.eval()
    torch.manual_seed(0)
    image = torch.randn(1, 3, 240, 352)
    classes = F.normalize(torch.randn(5, 8), dim=-1)
    background = F.normalize(torch.randn(3, 8), dim=-1)
    return model.visual, image, classes, background


def ours(visual, image, classes, background, settings):
    maps = cliper.class_maps(CLIPViT(visual, fused=False), image, classes, background, settings['logit_scale'],
                             settings['attention_thr'], settings['sliding_crop_size'])
    return cliper.cam_labels(maps, SIZE, settings['bkg_thre'], settings['score_threshold'], settings['is_normalize'])


def test_every_official_benchmark_has_a_config():
    assert BENCHMARKS == sorted(['voc21', 'context60', 'coco_object', 'voc20', 'context59', 'coco_stuff164k',
                                 'ade20k', 'cityscapes'])


@pytest.mark.parametrize('thresholds', ['official', 'off'])
@pytest.mark.parametrize('name', BENCHMARKS)
def test_matches_official(inputs, name, thresholds):
    visual, image, classes, background = inputs
    settings = dict(globals()['settings'](name), **(OFF if thresholds == 'off' else {}))
    expected_maps, expected = official.predict(visual, image, classes, background, SIZE, settings)
    maps, labels = ours(visual, image, classes, background, settings)
    torch.testing.assert_close(maps, expected_maps, rtol=0, atol=MAP_TOL)
    assert labels.shape == SIZE
    if thresholds == 'official':
        assert torch.equal(labels, expected)
    else:  # background (1 - max)^2 against the classes: a pixel may differ only at a tie (maps agree to MAP_TOL)
        differ = labels != expected
        assert differ.float().mean() < 1e-4 and (tie_margin(expected_maps, settings)[differ] < 1e-4).all()


def tie_margin(maps, settings):
    """Per pixel, the official scores' top-two gap under ``cam_to_label`` without thresholds."""
    cam = maps.flatten(1).clone()
    if settings['is_normalize']:
        cam -= cam.amin(dim=-1, keepdim=True)
        cam /= cam.amax(dim=-1, keepdim=True) + 1e-6
    cam = cam.reshape(maps.shape)
    scores = torch.cat([(1 - cam.amax(dim=0, keepdim=True)) ** 2, cam])
    top = scores.topk(2, dim=0).values
    return top[0] - top[1]


def test_inputs_discriminate(inputs, monkeypatch):
    """Several labels on a sliding config; the fusion without its in-place iterations differs."""
    visual, image, classes, background = inputs
    settings = dict(globals()['settings']('context59'), score_threshold=0.0, bkg_thre=0.0, is_normalize=True)
    expected_maps, expected = official.predict(visual, image, classes, background, SIZE, settings)
    assert len(expected.unique()) >= 3
    assert (expected == expected.flatten().mode().values).float().mean() < 0.9

    def once(summed):  # mutation: each call normalises a copy, never iterating
        return fused(summed.clone())
    fused = cliper.fused_weights
    monkeypatch.setattr(cliper, 'fused_weights', once)
    maps, labels = ours(visual, image, classes, background, settings)
    assert (maps - expected_maps).abs().max() > 1e-3
