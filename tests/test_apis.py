"""mmseg.apis.init_model / inference_model work with every config after ``import sclip``."""
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import BENCHMARKS, REPO


@pytest.mark.parametrize('name', BENCHMARKS)
def test_init_model_and_inference_model(name, tiny_checkpoint):
    from mmseg.apis import inference_model, init_model
    # init_model clears model.pretrained; model.clip_path (the configs' key) survives it
    model = init_model(osp.join(REPO, 'configs', f'sclip_{name}.py'), device='cpu',
                       cfg_options={'model.clip_path': tiny_checkpoint})
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    result = inference_model(model, image)
    assert result.pred_sem_seg.data.shape == (1, 70, 90)
    assert result.seg_logits.data.shape[0] == model.num_classes == len(model.dataset_meta['classes'])
    assert int(result.pred_sem_seg.data.max()) < model.num_classes


def test_init_model_keeps_working_with_cfg_options_on_weights(tiny_checkpoint):
    from mmseg.apis import init_model
    model = init_model(osp.join(REPO, 'configs', 'sclip_voc21.py'), device='cpu',
                       cfg_options={'model.attention.type': 'vanilla', 'model.clip_path': tiny_checkpoint})
    assert model.backbone.variant.name == 'vanilla'
    assert torch.equal(model.query_class[:26], torch.zeros(26, dtype=torch.long))  # 26 background names


def test_pretrained_alias_and_env_fallback(tiny_checkpoint, monkeypatch):
    """``model.pretrained`` still names the weights; with neither key, $SCLIP_PRETRAINED does."""
    from mmseg.registry import MODELS
    from sclip.errors import SCLIPError
    from sclip.runner import load_config
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.pretrained': tiny_checkpoint})
    assert MODELS.build(cfg.model).weights_name.endswith(tiny_checkpoint)
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.clip_path': None})
    monkeypatch.setenv('SCLIP_PRETRAINED', tiny_checkpoint)
    assert MODELS.build(cfg.model).weights_name.endswith(tiny_checkpoint)
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'),
                      {'model.clip_path': tiny_checkpoint, 'model.pretrained': '/elsewhere/ViT-B-16.pt'})
    with pytest.raises(SCLIPError, match='disagree'):
        MODELS.build(cfg.model)
