"""``model.precision='official'``: the official codes' fp16 casts, against an independent fp16
transcription of each official inference code (tests/official, ``half=True``), on the CPU; and
the default ``'auto'`` (what every benchmark config uses), which is those casts on CUDA: on a
GPU machine, ``python -m pytest tests/test_official_precision.py`` compares the default CUDA
numerics and the autocast opt-in with the official fp16 ones (skipped without CUDA)."""
import glob
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


def build(config, weights, precision, **options):
    """``precision=None``: the config's own (the default)."""
    from mmseg.registry import MODELS
    options = {'model.clip_path': weights, 'model.slide_mode': 'simple', 'model.fused_attention': False,
               'model.text_cache_dir': False, **options}
    if precision is not None:
        options['model.precision'] = precision
    cfg = load_config(osp.join(REPO, 'configs', config), options)
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


def official_agreement(config, weights, precision, device='cpu', **options) -> float:
    """Fraction of pixels where ``config`` at ``precision`` on ``device`` predicts the labels of
    the official code's fp16 inference (tests/official, ``half=True``) on the same weights."""
    from mmseg.structures import SegDataSample
    oracle_name, settings = CASES[config]
    model = build(config, weights, precision, **options).to(device)
    size, ori = (224, 300), (240, 320)
    raw = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    sample = SegDataSample(metainfo=dict(ori_shape=ori, img_shape=size))
    with torch.no_grad():
        ours = model.test_step(dict(inputs=[raw.to(device)], data_samples=[sample]))[0].pred_sem_seg.data
        mean = torch.tensor([122.771, 116.746, 104.094]).view(3, 1, 1)
        std = torch.tensor([68.501, 66.632, 70.323]).view(3, 1, 1)
        image = ((raw[[2, 1, 0]].float() - mean) / std)[None].to(device)
        # the weights as clip.load casts them (the same model when it runs the official casts)
        official = model if model.official else build(config, weights, 'official', **options).to(device)
        clip = official.text_model
        clip.visual = official.backbone.visual
        try:
            oracle = importlib.import_module(f'official.{oracle_name}')
            reference = oracle.predict(clip, official.class_embeddings, official.names.query_class, image, ori,
                                       half=True, **settings)
        finally:
            clip.visual = None
    assert ours.shape == reference.shape == (1, *ori)
    return (ours.to(reference.device) == reference).float().mean().item()


@pytest.mark.parametrize('config', sorted(CASES))
def test_official_precision_matches_an_independent_fp16_computation(config, weights):
    # fp16 rounding depends on the kernel (the official bmm over batch*heads vs our batched matmul),
    # so a few near-tied pixels may differ; fp32 is exact (tests/test_method_fidelity.py)
    assert official_agreement(config, weights, 'official') >= 0.995


def test_the_default_precision_is_the_official_numerics_of_the_machine(weights):
    """'auto' (every benchmark config's): the official fp16 casts on CUDA, float32 on the CPU
    (OpenAI's clip.load keeps float32 there); autocast is an opt-in."""
    from sclip.models.precision import resolve_precision
    assert resolve_precision('auto', cuda=True) == 'official' and resolve_precision('auto', cuda=False) == 'fp32'
    assert resolve_precision('fp16', cuda=True) == 'fp16'
    for config in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True):
        # configs/remote_sensing/ (238 generated files) set no precision: their text is
        # tools/make_rs_configs.py's (tests/test_rs_method_configs.py), over the method bases checked here
        if '_base_' not in config and f'{osp.sep}remote_sensing{osp.sep}' not in config:
            assert load_config(config).model.get('precision', 'auto') == 'auto', config
    model = build('sclip_voc21.py', weights, None)
    assert model.precision == ('official' if torch.cuda.is_available() else 'fp32')
    assert model.official == torch.cuda.is_available()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA: the default precision differs only there')
@pytest.mark.parametrize('config', sorted(CASES))
def test_default_cuda_precision_gives_the_official_fp16_labels(config, weights):
    """On a GPU: the default reproduces the official fp16 numerics (as on the CPU under
    'official'); the autocast opt-in is printed beside (``-s`` shows it), not asserted."""
    default = official_agreement(config, weights, None, 'cuda')
    autocast = official_agreement(config, weights, 'fp16', 'cuda', **{'model.fused_attention': True})
    print(f'{config}: default {default:.5f}, autocast fp16 {autocast:.5f} of pixels equal to the official fp16 run')
    assert default >= 0.995


def test_official_precision_differs_from_fp32_but_agrees_mostly(weights):
    """fp16 really happens: logits differ from fp32, labels mostly agree."""
    image = [torch.randn(3, 224, 300, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        fp32 = build('clearclip/voc21.py', weights, 'fp32').query_logits(image, [(224, 300)])[0]
        half = build('clearclip/voc21.py', weights, 'official').query_logits(image, [(224, 300)])[0]
    assert half.dtype == torch.float16 and not torch.equal(fp32, half.float())
    assert (fp32.argmax(0) == half.float().argmax(0)).float().mean() > 0.9
