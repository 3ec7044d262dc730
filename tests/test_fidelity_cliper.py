"""CLIPer without FGC (sclip/models/cliper.py) computes what the official inference computes
(tests/official/cliper.py, linsun449/cliper.code @ c05fa41, ``--refinement None``).

On a random 4-block CLIP (two 32-wide heads, sharpened: tests/helpers.py), a 240 x 352 input (15 x 22
patches: 224 windows with the official 112 stride make 2 x 3 windows, 336 windows 1 x 2, the last
row and column shifted back) and each shipped ViT-B/16
setting (scripts/config/vit-b-16/*.yaml: logit scale, sliding window, attention threshold, the
two thresholds of ``cam_to_label``, ``is_normalize``): the class maps at the image's size to 1e-5
and the labels pixel for pixel. Inputs discriminate: several labels, and a mutation (the fusion
without its in-place Sinkhorn iterations) changes the result.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import write_multihead_checkpoint
from official import cliper as official
from sclip.models import cliper
from sclip.models.clip_vit import CLIPViT

# scripts/config/vit-b-16/ovs_<name>.yaml @ c05fa41 (the active sliding_crop_size line).
OFFICIAL = {
    'voc21': dict(logit_scale=100, attention_thr=0.1, score_threshold=0.7, bkg_thre=0.6, is_normalize=True,
                  sliding_crop_size=336),
    'context60': dict(logit_scale=100, attention_thr=0.2, score_threshold=0.45, bkg_thre=0.45, is_normalize=False,
                      sliding_crop_size=224),
    'coco_object': dict(logit_scale=50, attention_thr=0.2, score_threshold=0.3, bkg_thre=0.3, is_normalize=False,
                        sliding_crop_size=224),
    'voc20': dict(logit_scale=100, attention_thr=0.1, score_threshold=0.0, bkg_thre=0.001, is_normalize=False,
                  sliding_crop_size=0),
    'context59': dict(logit_scale=100, attention_thr=0.2, score_threshold=0.3, bkg_thre=0.3, is_normalize=False,
                      sliding_crop_size=224),
    'coco_stuff164k': dict(logit_scale=50, attention_thr=0.2, score_threshold=0.1, bkg_thre=0.1, is_normalize=False,
                           sliding_crop_size=0),
    'ade20k': dict(logit_scale=100, attention_thr=0.2, score_threshold=0.3, bkg_thre=0.3, is_normalize=False,
                   sliding_crop_size=0),
    'cityscapes': dict(logit_scale=100, attention_thr=0.35, score_threshold=0, bkg_thre=0.0001, is_normalize=False,
                       sliding_crop_size=0),
}
SIZE = (200, 290)  # the image's original size, the labels' resolution


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


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_matches_official(inputs, name):
    visual, image, classes, background = inputs
    settings = OFFICIAL[name]
    expected_maps, expected = official.predict(visual, image, classes, background, SIZE, settings)
    maps, labels = ours(visual, image, classes, background, settings)
    torch.testing.assert_close(maps, expected_maps, rtol=0, atol=1e-5)
    assert torch.equal(labels, expected)
    assert labels.shape == SIZE


def test_inputs_discriminate(inputs, monkeypatch):
    """Several labels on a sliding config; the fusion without its in-place iterations differs."""
    visual, image, classes, background = inputs
    settings = dict(OFFICIAL['context59'], score_threshold=0.0, bkg_thre=0.0, is_normalize=True)
    expected_maps, expected = official.predict(visual, image, classes, background, SIZE, settings)
    assert len(expected.unique()) >= 3
    assert (expected == expected.flatten().mode().values).float().mean() < 0.9

    def once(summed):  # mutation: each call normalises a copy, never iterating
        return fused(summed.clone())
    fused = cliper.fused_weights
    monkeypatch.setattr(cliper, 'fused_weights', once)
    maps, labels = ours(visual, image, classes, background, settings)
    assert (maps - expected_maps).abs().max() > 1e-3
