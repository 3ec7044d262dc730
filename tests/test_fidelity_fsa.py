"""Every FSA config predicts what the official FSA code predicts (tests/official/fsa.py).

1. Settings: each configs/fsa/<benchmark>.py, translated into the official
   ``FSAProxySegmentation`` keywords, equals chi-chi-zx/FSA @ dbd2da5's base_config.py +
   cfg_<benchmark>.py (written out below), with the class files, resize, padding and VFM the
   oracle hard-codes; FSA's hard-coded top_p 0.45 and logit scales 20 / 35 are pinned too.
2. Labels and logits: our ``test_step`` (fp32, simple windows) against the oracle on a random
   3-block CLIP with 2 heads and a tiny random DINO ViT-B/8 in its official layout, on a synthetic
   image of two windows (a noisy 3 × 3 grid of colours); every config with its own ``prob_thd``
   and with ``model.prob_thd=0``; labels equal, logits to 1e-5. The
   class files are the first 4 lines of the real ones (two names at most per line): FSA's
   pairwise KL is tokens² × classes. The inputs discriminate: the oracle's maps hold several
   labels, none over 90 % of the pixels.
"""
from __future__ import annotations

import os.path as osp
from typing import Tuple

import pytest
import torch

from helpers import REPO, method_configs, write_openai_checkpoint
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import common, fsa
from test_method_fidelity import (BENCHMARKS, CLASS_FILE, CLS, COMMON, agreement, build, check_class_parsing,
                                  load_config, method_settings, no_official_counterpart,
                                  official_input, post_processing, resize_short_side, run_ours,
                                  segmentor_settings, windows)

CONFIGS = method_configs('fsa')
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]

# FSAProxySegmentation's constructor defaults with configs/base_config.py on top
OFFICIAL_DEFAULTS = dict(vfm_model='dino', vfm='dino_vitb8', beta=1.2, gamma=3.0, lamda=3.0, logit_scale=40.0,
                         prob_thd=0.0, slide_crop=336, slide_stride=112, separator='; ', slide_pad=56, resize=336,
                         top_p=0.45, feedback_scale=20.0, uniform_scale=35.0)
OFFICIAL_PER_BENCHMARK = {
    'ade20k': dict(resize=448),
    'cityscapes': dict(resize=448, slide_crop=224, slide_stride=80),
    'coco_object': dict(prob_thd=0.30),
    'context60': dict(prob_thd=0.14),
    'voc21': dict(prob_thd=0.2),
}
OWN_CLASS_FILES = ('coco_object', 'voc20', 'voc21')  # FSA ships ProxyCLIP's own files, byte for byte
PROXY_VFMS = {'dino_vitb8': 'dino', 'dinov2_vitb14_reg': 'dinov2', 'sam_vit_b': 'sam', 'mae_vit_b16': 'mae'}


def fsa_settings(cfg) -> dict:
    """Our config as the official segmentor's keywords."""
    model = segmentor_settings(cfg)
    method = method_settings(model)
    no_official_counterpart(method['type'] == 'fsa', f"model.method.type={method['type']}")
    no_official_counterpart(model['pamr_steps'] == 0, 'pamr_steps')
    for key, value in dict(top_p=0.45, feedback_scale=20.0, uniform_scale=35.0).items():
        no_official_counterpart(method[key] == value, f'model.method.{key}={method[key]}')
    vfm = model['vfm']['type']
    no_official_counterpart(vfm in PROXY_VFMS, f'model.vfm.type={vfm}')
    return dict(vfm_model=PROXY_VFMS[vfm], beta=float(method['beta']), gamma=float(method['gamma']),
                lamda=float(method['lamda']), **post_processing(model, area=False), **windows(model))


def test_every_benchmark_has_a_config():
    assert sorted(load_config(path).benchmark for path in CONFIGS) == list(BENCHMARKS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    import hashlib
    cfg = load_config(path)
    model = segmentor_settings(cfg)
    method = method_settings(model)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    ours = dict(fsa_settings(cfg), resize=resize_short_side(cfg), vfm=model['vfm']['type'],
                class_file=(hashlib.sha256(raw).hexdigest()[:16], raw.decode().splitlines()[0]),
                separator=model['class_name_separator'], templates=model['templates'],
                slide_pad=int(model['slide_pad']), clip_arch=model['arch'], clip_path=model['clip_path'],
                **{key: method[key] for key in ('top_p', 'feedback_scale', 'uniform_scale')})
    benchmark = cfg.benchmark
    official = {**COMMON, **OFFICIAL_DEFAULTS,
                **OFFICIAL_PER_BENCHMARK.get('coco_stuff164k' if benchmark == 'coco_stuff10k' else benchmark, {})}
    own = benchmark in OWN_CLASS_FILES
    official['class_file'] = CLS[f'proxyclip/{benchmark}' if own else CLASS_FILE[benchmark]]
    assert ours == official


def test_translation_refuses_settings_without_official_counterpart():
    cfg = load_config(osp.join(REPO, 'configs/fsa/voc21.py'), {'model.method.top_p': 0.5})
    with pytest.raises(ValueError, match='top_p=0.5'):
        fsa_settings(cfg)



@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 3-block random CLIP (width 128: 2 heads) and a tiny random DINO ViT-B/8, official layouts."""
    from sclip.models.vfm.testing import write_official_checkpoint
    folder = tmp_path_factory.mktemp('fsa_weights')
    return dict(clip=write_openai_checkpoint(str(folder / 'clip.pt'), width=128, layers=3),
                dino=write_official_checkpoint(str(folder / 'dino.pt'), 'dino_vitb8', tiny=True))


@pytest.fixture(scope='module')
def class_files(tmp_path_factory):
    """``path -> path``: the first 4 lines of a real class file, two names at most per line."""
    folder = tmp_path_factory.mktemp('fsa_class_files')

    def reduced(path: str) -> str:
        target = folder / osp.basename(path)
        if not target.exists():
            with open(path) as f:
                lines = f.read().splitlines()[:4]
            target.write_text('\n'.join('; '.join(line.split('; ')[:2]) for line in lines) + '\n')
        return str(target)
    return reduced


def window_image(cfg) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """The config's crop × (crop + 14) (portrait on every other benchmark): two windows, the
    second shifted back inside the image; and a smaller original size it is resized back to.
    (The benchmark's test resize is a pinned setting above; the windows see the same pixels
    whatever resize made the image.)"""
    crop = windows(segmentor_settings(cfg))['slide_crop']
    size, original = (crop, crop + 14), (crop * 3 // 5 + 1, (crop + 14) * 3 // 5 + 2)
    if BENCHMARKS.index(cfg.benchmark) % 2 == 1:
        size, original = size[::-1], original[::-1]
    return grid_image(size), original


def grid_image(size, seed: int = 0) -> torch.Tensor:
    """A uint8 BGR image (3, H, W): a 3 × 3 grid of random flat colours plus noise in [0, 32), so
    that the random DINO's correspondence has regions to find (pure noise gives one label)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 32, (3, *size), dtype=torch.uint8, generator=generator)
    h, w = size
    for i in range(3):
        for j in range(3):
            colour = torch.randint(0, 224, (3, 1, 1), dtype=torch.uint8, generator=generator)
            image[:, i * h // 3:(i + 1) * h // 3, j * w // 3:(j + 1) * w // 3] += colour
    return image


def run_official(model, cfg, raw, original, **overrides):
    settings = dict(fsa_settings(cfg), **overrides, vfm_features=model.backbone.method.vfm)
    clip = model.text_model
    clip.visual = model.backbone.visual
    try:
        return fsa.predict(clip, model.class_embeddings, model.names.query_class, official_input(raw), original,
                           return_logits=True, **settings)
    finally:
        clip.visual = None


def discriminating(labels: torch.Tensor) -> bool:
    """Several labels, none over 90 % of the pixels."""
    counts = torch.bincount(labels.flatten())
    return bool((counts > 0).sum() >= 2 and counts.max() <= 0.9 * labels.numel())


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, weights, class_files):
    """The config's own prob_thd and, where it has one, ``model.prob_thd=0`` (the official labels
    at 0 are the official post-processing of the same official logits)."""
    cfg = load_config(path)
    settings = segmentor_settings(cfg)
    options = {'model.clip_path': weights['clip'], 'model.precision': 'fp32', 'model.text_cache_dir': False,
               'model.vfm.checkpoint': weights['dino'], 'model.vfm.tiny': True,
               'model.class_names': class_files(settings['class_names'])}
    model = build(path, options, fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.num_heads == 2
    check_class_parsing('proxyclip', model)
    raw, original = window_image(cfg)
    ours, our_logits = run_ours(model, raw, original)
    official, official_logits = run_official(model, cfg, raw, original)
    assert ours.shape == official.shape == (1, *original)
    assert discriminating(official)
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    if settings['prob_thd'] > 0:
        unthresholded = build(path, dict(options, **{'model.prob_thd': 0.0}), fused_attention=False,
                              slide_mode='simple')
        ours_at_0, _ = run_ours(unthresholded, raw, original)
        official_at_0 = common.postprocess_clearclip(official_logits, model.query_class, settings['logit_scale'],
                                                     0.0)
        assert discriminating(official_at_0)
        assert torch.equal(ours_at_0, official_at_0)
