"""ClearCLIP and NACLIP as configs, other CLIP models, and one sweep over all methods."""
import os.path as osp

import pytest
import torch

from helpers import BENCHMARKS, REPO, method_configs, write_openai_checkpoint
from sclip import group_eval, sweep
from sclip.runner import load_config
from test_sweep import fake_run_test

METHOD_CONFIGS = sorted(method_configs('clearclip') + method_configs('naclip'))


def test_method_settings():
    assert len(METHOD_CONFIGS) == 2 * len(BENCHMARKS)
    for path in METHOD_CONFIGS:
        cfg = load_config(path)
        bench = cfg.benchmark
        assert not cfg.model.last_block_residual and not cfg.model.last_block_mlp
        if cfg.method == 'ClearCLIP':
            assert cfg.model.attention.type == 'csa_q' and cfg.model.logit_scale == 50
            crop = 224 if bench == 'cityscapes' else 448
            assert (cfg.model.slide_crop, cfg.model.slide_stride) == (crop, 224)
            assert cfg.model.prob_thd == {'voc21': 0.5, 'context60': 0.15, 'coco_object': 0.4}.get(bench, 0.0)
            if bench != 'cityscapes':
                assert [t for t in cfg.test_pipeline if t['type'] == 'Resize'][0]['scale'] == (2048, 448)
                assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
            if bench in ('voc21', 'context60', 'coco_object'):
                with open(cfg.model.class_names) as f:
                    assert f.readline().strip() == 'background'
        else:
            assert cfg.method == 'NACLIP'
            assert cfg.model.attention == dict(type='naclip', sigma=5.0) and cfg.model.logit_scale == 40
            assert cfg.model.prob_thd == (0.1 if bench in ('voc21', 'context60', 'coco_object') else 0.0)
            assert (cfg.model.slide_crop == 0) == (bench in ('voc21', 'voc20'))


def test_one_sweep_gives_the_method_table(tmp_path, monkeypatch):
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    configs = [osp.join(REPO, 'configs', 'sclip_voc21.py'), osp.join(REPO, 'configs', 'clearclip', 'voc21.py'),
               osp.join(REPO, 'configs', 'naclip', 'voc21.py')]
    sweep.run_sweep(configs, [], str(tmp_path), log=lambda *_: None, share=False)
    lines = (tmp_path / 'results.md').read_text().splitlines()
    rows = [line for line in lines[2:] if line.startswith('|')]  # the table, then its notes
    assert [line.split('|')[1].strip() for line in rows] == ['SCLIP', 'ClearCLIP', 'NACLIP']


@pytest.mark.parametrize('patch,image_size', [(14, 224), (16, 224), (32, 224), (14, 336)])
def test_other_clip_shapes_through_the_segmentor(patch, image_size, tmp_path):
    """Crop defaults to the model's input size; patch size and grid follow the checkpoint."""
    from mmseg.registry import MODELS
    path = write_openai_checkpoint(str(tmp_path / 'w.pt'), patch_size=patch, image_size=image_size, layers=2)
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.pretrained': path})
    model = MODELS.build(cfg.model).eval()
    assert model.slide_crop == (image_size, image_size) and model.slide_stride == (image_size // 2,) * 2
    with torch.no_grad():
        out = model.predict([torch.randn(3, image_size + 40, image_size + 100)])
    assert out[0].pred_sem_seg.data.shape == (1, image_size + 40, image_size + 100)


def test_unsupported_tower_is_a_clear_error(tmp_path):
    from sclip.errors import SCLIPError
    from sclip.models.backbone import check_supported
    with pytest.raises(SCLIPError, match='not a CLIP ViT'):
        check_supported(torch.nn.Linear(2, 2))
