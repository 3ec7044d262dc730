"""GEM: every configs/gem/ config predicts what GEM's code (on ClearCLIP's harness) predicts.

1. Settings: each config translates into the oracle's keywords (tests/official/gem.py) equal to
   gem_torch's defaults and ClearCLIP's per-benchmark values (its cfg_<benchmark>.py).
2. Labels and logits: ours (``slide_mode='simple'``, explicit attention, fp32) against the oracle
   on a synthetic image in each benchmark's size, with the thresholds off (``prob_thd=0,
   area_thd=None``) and with the config's where it has any, on a random 12-block CLIP with 2 heads;
   the inputs discriminate: with thresholds off the oracle's map has several labels, none over
   90 % of pixels.
3. The fast path (batched windows, fused attention) equals the simple one.
4. A full-size random ViT-B/16 on one small image; ClearCLIP's ``ignore_residual`` and other GEM
   settings; bad settings are one-line errors naming the key.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import pytest
import torch

import test_method_fidelity as fidelity
from helpers import REPO, method_configs, write_openai_checkpoint
from official import gem as official_gem
from sclip.errors import SCLIPError

CONFIGS = method_configs('gem')
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]
GEM_DEFAULTS = dict(gem_depth=7, ss_attn_iter=1, ss_attn_temp=None, ignore_residual=False)  # create_gem_model
THRESHOLDS_OFF = {'model.prob_thd': 0.0, 'model.area_thd': None}


one_thread = fidelity.one_thread  # autouse: thousands of tiny ops run faster on one thread
vit_b16 = fidelity.vit_b16  # a random full-size ViT-B/16 and a 4-class file


@pytest.fixture(scope='module')
def clip12(tmp_path_factory):
    """A random 12-block CLIP, width 128: 2 heads of 64 (GEM's path runs on the last 6 blocks)."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('gem_weights') / 'clip12.pt'), width=128, layers=12)


@pytest.fixture(scope='module')
def text_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('gem_text_cache'))


@pytest.fixture(scope='module')
def first_lines(tmp_path_factory):
    """``path -> path``: the first 8 lines of a class file as they are (encoding 150 classes x 80
    templates and post-processing them at full size would dominate the test's time)."""
    folder = tmp_path_factory.mktemp('gem_class_files')

    def reduced(path: str) -> str:
        target = folder / osp.basename(path)
        with open(path) as f:
            target.write_text(''.join(f.readlines()[:8]))
        return str(target)
    return reduced


def gem_settings(cfg) -> dict:
    """Our config -> the oracle's keywords."""
    model = fidelity.segmentor_settings(cfg)
    method = fidelity.method_settings(model)
    fidelity.no_official_counterpart(method['type'] == 'gem', f"model.method.type={method['type']}")
    fidelity.no_official_counterpart(model['pamr_steps'] == 0, 'pamr_steps')
    fidelity.no_official_counterpart(model['area_thd'] is None, 'area_thd')
    return dict(**{key: method[key] for key in GEM_DEFAULTS}, **fidelity.post_processing(model, area=False),
                **fidelity.windows(model))


def test_every_benchmark_has_a_config():
    assert sorted(fidelity.load_config(path).benchmark for path in CONFIGS) == list(fidelity.BENCHMARKS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = fidelity.load_config(path)
    model = fidelity.segmentor_settings(cfg)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    ours = dict(gem_settings(cfg), resize=fidelity.resize_short_side(cfg), separator=model['class_name_separator'],
                class_file=(hashlib.sha256(raw).hexdigest()[:16], raw.decode().splitlines()[0]),
                templates=model['templates'], slide_pad=int(model['slide_pad']), clip_arch=model['arch'],
                clip_path=model['clip_path'], official_cast_input=model['official_cast_input'])
    expected = fidelity.official_settings('clearclip', cfg.benchmark)  # ClearCLIP's harness, class files
    del expected['model_type']
    expected.update(GEM_DEFAULTS, official_cast_input=True)
    assert ours == expected


def test_translation_refuses_settings_without_official_counterpart():
    cfg = fidelity.load_config(CONFIGS[0], {'model.area_thd': 0.1})
    with pytest.raises(ValueError, match='area_thd'):
        gem_settings(cfg)


def structured_image(size, seed: int = 3) -> torch.Tensor:
    """A uint8 BGR image of 8x8 flat-coloured cells with noise: regions random weights tell apart."""
    generator = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, 256, (1, 3, 8, 8), generator=generator).float()
    image = torch.nn.functional.interpolate(cells, size=tuple(size), mode='nearest')[0]
    image += torch.randn(3, *size, generator=generator) * 20
    return image.clamp(0, 255).to(torch.uint8)


def run_both(path: str, clip: str, text_cache: str, extra: dict, size, original):
    cfg = fidelity.load_config(path, extra)
    options = {'model.clip_path': clip, 'model.precision': 'fp32', 'model.text_cache_dir': text_cache, **extra}
    model = fidelity.build(path, options, fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.num_heads >= 2
    raw = structured_image(size)
    ours, our_logits = fidelity.run_ours(model, raw, original)
    official, official_logits = run_official(model, cfg, raw, original, return_logits=True)
    return model, ours, our_logits, official, official_logits


def run_official(model, cfg, raw: torch.Tensor, original, **kwargs):
    """The oracle on our model's weights and class embeddings, with ``cfg``'s settings."""
    clip_model = model.text_model
    clip_model.visual = model.backbone.visual
    try:
        return official_gem.predict(clip_model, model.class_embeddings, model.names.query_class,
                                    fidelity.official_input(raw), original, **kwargs, **gem_settings(cfg))
    finally:
        clip_model.visual = None


def assert_discriminating(labels: torch.Tensor) -> None:
    counts = torch.bincount(labels.flatten())
    assert int((counts > 0).sum()) >= 3, f'labels {counts.nonzero().flatten().tolist()}'
    assert counts.max().item() <= 0.9 * labels.numel()


def has_thresholds(path: str) -> bool:
    model = fidelity.segmentor_settings(fidelity.load_config(path))
    return model['prob_thd'] != 0 or model['area_thd'] is not None


# each config with its thresholds off; with its own where it has any (else the same run twice)
CASES = [(path, 'off') for path in CONFIGS] + [(path, 'config') for path in CONFIGS if has_thresholds(path)]


@pytest.mark.parametrize('path,thresholds', CASES,
                         ids=[f'{osp.splitext(osp.basename(p))[0]}-{t}' for p, t in CASES])
def test_config_predicts_the_official_labels(path, thresholds, clip12, text_cache, first_lines):
    cfg = fidelity.load_config(path)
    size, original = fidelity.input_shapes(cfg, portrait=fidelity.BENCHMARKS.index(cfg.benchmark) % 2 == 1)
    extra = dict(THRESHOLDS_OFF if thresholds == 'off' else {},
                 **{'model.class_names': first_lines(fidelity.segmentor_settings(cfg)['class_names'])})
    model, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, extra, size, original)
    fidelity.check_class_parsing('clearclip', model)
    assert ours.shape == official.shape == (1, *original)
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    if thresholds == 'off':
        assert_discriminating(official)


def test_settings_reach_the_official_code(clip12, text_cache):
    """ClearCLIP's ignore_residual, two iterations, a fixed temperature and a shallower GEM, each
    against the oracle, and each changes the logits."""
    path = osp.join(REPO, 'configs/gem/context59.py')
    size, original = (224, 300), (200, 260)
    base = run_both(path, clip12, text_cache, {}, size, original)[2]
    for extra in ({'model.method.ignore_residual': True}, {'model.method.ss_attn_iter': 2},
                  {'model.method.ss_attn_temp': 3.0}, {'model.method.gem_depth': 3}):
        _, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, extra, size, original)
        assert torch.equal(ours, official), extra
        assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0), extra
        assert not torch.allclose(our_logits, base, atol=1e-3), extra


def test_padded_windows_predict_the_official_labels(clip12, text_cache):
    """An image smaller than the crop, not a multiple of 16: padded windows, GEM's resized embedding."""
    path = osp.join(REPO, 'configs/gem/voc21.py')
    _, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, THRESHOLDS_OFF,
                                                              (200, 300), (211, 317))
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)


def test_batched_equals_simple(clip12, text_cache, first_lines):
    path = osp.join(REPO, 'configs/gem/voc21.py')
    names = first_lines(fidelity.segmentor_settings(fidelity.load_config(path))['class_names'])
    options = {'model.clip_path': clip12, 'model.precision': 'fp32', 'model.text_cache_dir': text_cache,
               'model.class_names': names}
    fast = fidelity.build(path, options, slide_mode='batched', window_batch_size=4, fused_attention=True)
    assert fast.backbone.fused
    fidelity.compare_paths(fast, fidelity.random_images(fast))


def test_full_size_vit_b16_predicts_the_official_labels(vit_b16):
    """The real architecture (12 heads, width 768), one 224x300 image, 4 classes, one template."""
    weights, names = vit_b16
    extra = {'model.class_names': names, 'model.templates': ['a photo of a {}.'], **THRESHOLDS_OFF}
    path = osp.join(REPO, 'configs/gem/context60.py')
    ours_model, ours, our_logits, official, official_logits = run_both(path, weights, False, extra, (224, 300),
                                                                       (237, 321))
    assert ours_model.backbone.vit.width == 768 and ours_model.backbone.vit.num_heads == 12
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize('key,value,message', [
    ('gem_depth', 14, 'model.method.gem_depth=14 must be between 2 and 13'),
    ('gem_depth', 1, 'model.method.gem_depth=1 must be between 2'),
    ('ss_attn_iter', -1, 'model.method.ss_attn_iter=-1 must be 0 or more'),
    ('ss_attn_temp', 0.0, 'model.method.ss_attn_temp=0.0 must be positive'),
    ('depth', 3, "model.method.depth: 'gem' has no setting 'depth'"),
], ids=['gem_depth-too-deep', 'gem_depth-too-shallow', 'ss_attn_iter', 'ss_attn_temp', 'unknown-key'])
def test_bad_settings_are_one_line_errors(key, value, message, clip12):
    path = osp.join(REPO, 'configs/gem/voc20.py')
    with pytest.raises(SCLIPError) as error:
        fidelity.build(path, {'model.clip_path': clip12, 'model.text_cache_dir': False,
                              f'model.method.{key}': value})
    assert message in str(error.value) and '\n' not in str(error.value)


def test_official_precision_matches_the_fp16_oracle(clip12, first_lines):
    """``model.precision='official'``: ClearCLIP's fp16 model and fp16 input, against the oracle in fp16."""
    path = osp.join(REPO, 'configs/gem/voc21.py')
    names = first_lines(fidelity.segmentor_settings(fidelity.load_config(path))['class_names'])
    model = fidelity.build(path, {'model.clip_path': clip12, 'model.precision': 'official',
                                  'model.text_cache_dir': False, 'model.class_names': names, **THRESHOLDS_OFF},
                           fused_attention=False, slide_mode='simple')
    assert model.backbone.visual.transformer.resblocks[-1].attn.in_proj_weight.dtype == torch.float16
    raw, original = structured_image((224, 300)), (240, 320)
    ours, _ = fidelity.run_ours(model, raw, original)
    official = run_official(model, fidelity.load_config(path, THRESHOLDS_OFF), raw, original, half=True)
    assert_discriminating(official)
    # fp16 rounding depends on the kernels; fp32 is exact (above)
    assert fidelity.agreement(ours, official) >= 0.995
