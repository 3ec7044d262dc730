"""``model.precision='official'``: the official codes' fp16 casts, against an independent fp16
transcription of each official inference code (tests/official, ``half=True``), on the CPU."""
import importlib
import os.path as osp

import pytest
import torch

from helpers import REPO, write_openai_checkpoint
from sclip.runner import load_config

# config -> (oracle module, official settings of that benchmark)
CASES = {
    'sclip_voc21.py': ('sclip', dict(logit_scale=65, prob_thd=0.1, area_thd=0.1)),
    'clearclip/voc21.py': ('clearclip', dict(prob_thd=0.5, model_type='ClearCLIP')),
    'naclip/voc21.py': ('naclip', dict(prob_thd=0.1, slide_crop=0, pamr_steps=0)),
    'scclip/context60.py': ('scclip', dict(prob_thd=0.15)),
    'resclip/cityscapes.py': ('resclip', dict(temp_thd=0.1, attn_rcs_weights=[2.0, 0.2],
                                              attn_sfr_weights=[2.1, 0.6], delete_same_entity=True)),
}


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('w') / 'w12.pt'), width=64, layers=12)


def build(config, weights, precision):
    from mmseg.registry import MODELS
    cfg = load_config(osp.join(REPO, 'configs', config), {
        'model.clip_path': weights, 'model.precision': precision, 'model.slide_mode': 'simple',
        'model.fused_attention': False, 'model.text_cache_dir': False})
    return MODELS.build(cfg.model).eval()


def test_official_casts_are_the_loaders(weights):
    model = build('sclip_voc21.py', weights, 'official')
    visual = model.backbone.visual
    assert visual.conv1.weight.dtype == torch.float16 and visual.proj.dtype == torch.float16
    assert visual.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert visual.ln_pre.weight.dtype == torch.float32 and visual.class_embedding.dtype == torch.float32
    assert type(visual.ln_pre).__name__ == 'LayerNormFp32'
    assert model.text_model.text_projection.dtype == torch.float16
    assert model.class_embeddings.dtype == torch.float16  # the text tower runs in fp16 too


@pytest.mark.parametrize('config', sorted(CASES))
def test_official_precision_matches_an_independent_fp16_computation(config, weights):
    from mmseg.structures import SegDataSample
    oracle_name, settings = CASES[config]
    model = build(config, weights, 'official')
    size, ori = (224, 300), (240, 320)
    raw = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    sample = SegDataSample(metainfo=dict(ori_shape=ori, img_shape=size))
    with torch.no_grad():
        ours = model.test_step(dict(inputs=[raw], data_samples=[sample]))[0].pred_sem_seg.data
        mean = torch.tensor([122.771, 116.746, 104.094]).view(3, 1, 1)
        std = torch.tensor([68.501, 66.632, 70.323]).view(3, 1, 1)
        image = ((raw[[2, 1, 0]].float() - mean) / std)[None]
        clip = model.text_model
        clip.visual = model.backbone.visual
        try:
            oracle = importlib.import_module(f'official.{oracle_name}')
            reference = oracle.predict(clip, model.class_embeddings, model.names.query_class, image, ori,
                                       half=True, **settings)
        finally:
            clip.visual = None
    assert ours.shape == reference.shape == (1, *ori)
    # fp16 rounding depends on the kernel (the official bmm over batch*heads vs our batched matmul),
    # so a few near-tied pixels may differ; fp32 is exact (tests/test_method_fidelity.py)
    assert (ours == reference).float().mean() >= 0.995


def test_official_precision_differs_from_fp32_but_agrees_mostly(weights):
    """fp16 really happens: logits differ from fp32, labels mostly agree."""
    image = [torch.randn(3, 224, 300, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        fp32 = build('clearclip/voc21.py', weights, 'fp32').query_logits(image, [(224, 300)])[0]
        half = build('clearclip/voc21.py', weights, 'official').query_logits(image, [(224, 300)])[0]
    assert half.dtype == torch.float16 and not torch.equal(fp32, half.float())
    assert (fp32.argmax(0) == half.float().argmax(0)).float().mean() > 0.9
