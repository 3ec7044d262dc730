"""mmseg.apis.init_model / inference_model work with every config after ``import sclip``."""
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import BENCHMARKS, REPO


@pytest.mark.parametrize('name', BENCHMARKS)
def test_init_model_and_inference_model(name, tiny_checkpoint, monkeypatch):
    from mmseg.apis import inference_model, init_model
    # init_model clears model.pretrained; SCLIP_PRETRAINED names the local weights then
    monkeypatch.setenv('SCLIP_PRETRAINED', tiny_checkpoint)
    model = init_model(osp.join(REPO, 'configs', f'sclip_{name}.py'), device='cpu')
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    result = inference_model(model, image)
    assert result.pred_sem_seg.data.shape == (1, 70, 90)
    assert result.seg_logits.data.shape[0] == model.num_classes == len(model.dataset_meta['classes'])
    assert int(result.pred_sem_seg.data.max()) < model.num_classes


def test_init_model_keeps_working_with_cfg_options_on_weights(tiny_checkpoint, monkeypatch):
    from mmseg.apis import init_model
    monkeypatch.setenv('SCLIP_PRETRAINED', tiny_checkpoint)
    model = init_model(osp.join(REPO, 'configs', 'sclip_voc21.py'), device='cpu',
                       cfg_options={'model.attention.type': 'vanilla'})
    assert model.backbone.variant.name == 'vanilla'
    assert torch.equal(model.query_class[:26], torch.zeros(26, dtype=torch.long))  # 26 background names
