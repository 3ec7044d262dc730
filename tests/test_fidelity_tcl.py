"""TCL: every configs/tcl/ config predicts what TCL's official evaluation predicts.

1. Settings: each config carries the official test set-up (configs/eval.yml: PAMR on, bg_thresh
   0.4, kp_w 0.3, template 'custom'; dataset configs: short side 448, 448/224 windows, ImageNet
   normalisation; the dataset's CLASSES).
2. Labels and logits: ours (mmseg 1.x test_step on a uint8 BGR image) against the transcription of
   the official code (tests/official/tcl.py, on the checkpoint's state dict by its official key
   names) on a random tiny TCL written in the released ``tcl.pth`` layout, per config, with a
   reduced class file; windows whose size is not a multiple of the patch (the official padding),
   several sliding windows, and the switches (PAMR off, no keep-prior, another threshold).
3. Loading: a missing, corrupt or foreign file, a missing tensor, a file without CLIP's tensors
   (completed from model.clip_path, as the official code takes them from OpenAI's CLIP): one line each.
"""
from __future__ import annotations

import os.path as osp

import pytest
import torch

from helpers import (IMAGENET_MEAN, IMAGENET_STD, REPO, first_lines_of, label_spread, method_configs,
                     structured_image)
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import tcl as official
from sclip.errors import SCLIPError
from sclip.models.tcl.testing import write_tcl_checkpoint
from sclip.runner import load_config

CONFIGS = method_configs('tcl')
IDS = [osp.splitext(osp.basename(p))[0] for p in CONFIGS]
TABLE1 = ['ade20k', 'cityscapes', 'coco_object', 'coco_stuff164k', 'context59', 'context60', 'voc20', 'voc21']
CUSTOM = ['itap of a {}.', 'a bad photo of a {}.', 'a origami {}.', 'a photo of the large {}.',
          'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.', 'a photo of many {}.',
          'a photo of {}s.']  # datasets/templates.py: custom = sub_imagenet_template + 2


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return write_tcl_checkpoint(str(tmp_path_factory.mktemp('tcl') / 'tcl_tiny.pth'))


@pytest.fixture(scope='module')
def reduced(tmp_path_factory):
    first_lines = first_lines_of(tmp_path_factory.mktemp('tcl_classes'))
    return lambda path, lines=4: first_lines(path, lines)


def test_every_table1_benchmark_has_a_config():
    assert sorted(load_config(p).benchmark for p in CONFIGS) == TABLE1


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_carries_the_official_settings(path):
    cfg = load_config(path)
    model = cfg.model
    assert model.type == 'TCLSegmentor'
    assert (model.slide_crop, model.slide_stride, list(model.templates)) == (448, 224, CUSTOM)
    assert (model.pamr, model.bg_thresh, model.kp_w) == (True, 0.4, 0.3)
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert resize['scale'] == (2048, 448) and resize['keep_ratio']
    groupvit = load_config(osp.join(REPO, 'configs/groupvit', osp.basename(path)))
    # the mmseg 0.x CLASSES, checked against the datasets in test_fidelity_groupvit.py
    assert osp.realpath(model.class_names) == osp.realpath(groupvit.model.class_names)


def run_both(path: str, checkpoint: str, class_file: str, size, original, extra=None, **official_options):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    cfg = load_config(path, {'model.checkpoint': checkpoint, 'model.class_names': class_file, **(extra or {})})
    model = MODELS.build(cfg.model).eval()
    raw = structured_image(size)
    sample = SegDataSample(metainfo=dict(ori_shape=original, img_shape=tuple(size)))
    with torch.no_grad():
        ours = model.test_step(dict(inputs=[raw], data_samples=[sample]))[0]
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['model']
    with open(class_file) as f:
        names = f.read().splitlines()
    queries = names[1:] if names[0] == 'background' else names
    image = ((raw[[2, 1, 0]].float() - IMAGENET_MEAN) / IMAGENET_STD)[None]
    options = dict(pamr_on=cfg.model.pamr, bg_thresh=cfg.model.bg_thresh, kp_w=cfg.model.kp_w, **official_options)
    labels, logits = official.predict(state, official.class_tokens(queries, CUSTOM), names, image, original,
                                      return_logits=True, **options)
    return ours, labels, logits


def assert_same(ours, labels, logits):
    assert torch.equal(ours.pred_sem_seg.data, labels)
    assert torch.allclose(ours.seg_logits.data, torch.softmax(logits, dim=1)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, checkpoint, reduced):
    """One window per config, its sides not multiples of 16 (the official centred zero padding)."""
    cfg = load_config(path)
    portrait = IDS.index(cfg.benchmark) % 2 == 1
    size, original = ((150, 203), (120, 170)) if not portrait else ((203, 150), (170, 120))
    ours, labels, logits = run_both(path, checkpoint, reduced(cfg.model.class_names), size, original)
    assert_same(ours, labels, logits)
    assert label_spread(labels)[0] >= 2


def test_sliding_windows_predict_the_official_labels(checkpoint, reduced):
    """448 x 600: two overlapping windows, averaged on the canvas, then resized to the original size."""
    path = osp.join(REPO, 'configs/tcl/context59.py')
    ours, labels, logits = run_both(path, checkpoint, reduced(load_config(path).model.class_names, 6),
                                    (448, 600), (300, 400))
    assert_same(ours, labels, logits)
    assert label_spread(labels)[0] >= 2


def test_switches_reach_the_official_code(checkpoint, reduced):
    """PAMR off, no keep-prior branch, another background threshold: each its own map, still the official one."""
    path = osp.join(REPO, 'configs/tcl/voc21.py')
    class_file = reduced(load_config(path).model.class_names)
    maps = []
    for extra in ({}, {'model.pamr': False}, {'model.kp_w': 0.0}, {'model.bg_thresh': 0.6}):
        ours, labels, logits = run_both(path, checkpoint, class_file, (160, 208), (160, 208), extra)
        assert_same(ours, labels, logits)
        assert label_spread(labels)[0] >= 2
        maps.append(logits)
    assert all(not torch.allclose(maps[0], other) for other in maps[1:])


def openai_clip_state(state: dict) -> dict:
    """The CLIP tensors of a TCL state dict under OpenAI's names (what ViT-B-16.pt holds)."""
    out = {'logit_scale': torch.tensor(4.6), 'input_resolution': torch.tensor(224)}
    for key, value in state.items():
        if key.startswith('clip_image_encoder.clip_proj.ln.'):
            out['visual.ln_post.' + key.rsplit('.', 1)[1]] = value
        elif key == 'clip_image_encoder.clip_proj.proj':
            out['visual.proj'] = value
        elif key.startswith('clip_image_encoder.clip_visual.'):
            out['visual.' + key[len('clip_image_encoder.clip_visual.'):]] = value
        elif key.startswith('clip_text_encoder.'):
            out[key[len('clip_text_encoder.'):]] = value
    return out


def build(checkpoint, **options):
    from mmseg.registry import MODELS
    cfg = load_config(osp.join(REPO, 'configs/tcl/voc21.py'), {'model.checkpoint': checkpoint, **options})
    return MODELS.build(cfg.model)


def test_a_checkpoint_without_clip_is_completed_from_clip_path(tmp_path, checkpoint):
    state = torch.load(checkpoint, weights_only=False)['model']
    clip_file = str(tmp_path / 'ViT-tiny.pt')
    torch.save(openai_clip_state(state), clip_file)
    own = {k: v for k, v in state.items() if not k.startswith('clip_')}
    stripped = str(tmp_path / 'tcl_no_clip.pth')
    torch.save({'model': own}, stripped)
    with pytest.raises(SCLIPError, match='holds no CLIP encoder tensors.*model.clip_path'):
        build(stripped)
    full, completed = build(checkpoint).model.state_dict(), build(stripped, **{'model.clip_path': clip_file})
    completed = completed.model.state_dict()
    assert full.keys() == completed.keys() and all(torch.equal(full[k], completed[k]) for k in full)


def test_bad_checkpoints_are_one_line_errors(tmp_path, checkpoint):
    cases = {}
    cases['missing'] = (str(tmp_path / 'absent.pth'), 'does not exist')
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    cases['corrupt'] = (str(corrupt), 'could not be read as a PyTorch checkpoint')
    other = tmp_path / 'clip.pth'
    torch.save({'visual.conv1.weight': torch.zeros(4, 3, 16, 16)}, str(other))
    cases['other model'] = (str(other), 'it is not a TCL checkpoint')
    state = torch.load(checkpoint, weights_only=False)['model']
    del state['masker.image_encoder.decoder.decoder.net.1.conv2.gate.gate']
    partial = tmp_path / 'partial.pth'
    torch.save({'model': state}, str(partial))
    cases['missing key'] = (str(partial), 'missing masker.image_encoder.decoder.decoder.net.1.conv2.gate.gate')
    for name, (path, message) in cases.items():
        with pytest.raises(SCLIPError) as error:
            build(path)
        assert message in str(error.value) and path in str(error.value), name
        assert '\n' not in str(error.value), name
    with pytest.raises(SCLIPError, match='model.checkpoint is not set'):
        build(None)
    with pytest.raises(SCLIPError, match='model.kp_w=2'):
        build(checkpoint, **{'model.kp_w': 2})
