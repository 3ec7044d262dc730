"""NACLIP + FLOSS: every config predicts what the official code predicts (tests/official/floss.py).

1. Settings: each configs/floss/<benchmark>.py is the NACLIP config of its benchmark plus FLOSS's
   text side; translated into the official keywords it equals yasserben/FLOSS's
   ``configs/naclip/<dataset>.py`` with its segmentor defaults (logit scale 100, no PAMR, no
   probability threshold), ``top_n=4``, entropy rankings, and the VOC20 name fix; the ranking
   files are the official ones byte for byte.
2. Labels and logits: a random 12-block CLIP with 2 heads on a synthetic image of tinted tiles
   in the benchmark's resized size; the oracle builds its own experts from the text tower (one
   prompt at a time, as the official loop), so the ranking reading is checked too. FLOSS has no
   thresholds (``prob_thd=0``, ``area_thd=None`` is its configuration); the maps must be
   discriminating. Experts cost Q² prompts, so the class files are cut to three classes (VOC20:
   the lines whose names need the official fix).
3. One full-size random ViT-B/16; the fused fusion equals the official one on adversarial
   probabilities (ties, conflicts, no claim); batched equals simple.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import open_clip
import pytest
import torch

from helpers import REPO, write_openai_checkpoint
from official import floss as official
from official import naclip as official_naclip  # noqa: F401  (the vision oracle FLOSS reuses)
from official.common import get_cls_idx
from sclip.models.methods.floss import fuse_experts
from test_fidelity_itaclip import discriminating, one_thread, structured_image  # noqa: F401
from test_method_fidelity import (agreement, build, input_shapes, load_config, naclip_settings, official_input,
                                  run_ours, segmentor_settings)

BENCHMARKS = ('ade20k', 'cityscapes', 'coco_stuff164k', 'context59', 'voc20')
DATASET = {'ade20k': 'ade20k', 'cityscapes': 'cityscapes', 'coco_stuff164k': 'cocostuff', 'context59': 'pascalco59',
           'voc20': 'pascalvoc20'}
CONFIGS = [osp.join(REPO, 'configs/floss', f'{b}.py') for b in BENCHMARKS]
# sha256 (16 hex digits) of rankings/naclip/template_rankings_naclip_<dataset>.json @ ccf1d49d
RANKINGS = {'ade20k': '212f46e197254211', 'cityscapes': '92057a80c302942d', 'cocostuff': 'd422cc119c465938',
            'pascalco59': 'b716c6c02485e648', 'pascalvoc20': '0d1b1a3a36c10bc8'}
# FLOSS's configs/naclip/cls_<name>.txt: the same files as NACLIP's (configs/class_names/)
CLASS_FILES = {'ade20k': 'e53ded02c488bdb9', 'cityscapes': '6f6782fc1bf92bfd', 'cocostuff': 'fb98709b9ab1baff',
               'pascalco59': 'cd808465f06a1616', 'pascalvoc20': 'c68f65a2b342397c'}
# FLOSS's NACLIP constructor defaults; eval_naclip.py sets pamr_steps=0; configs/naclip/<dataset>.py
COMMON = dict(arch='reduced', attn_strategy='naclip', gaussian_std=5.0, logit_scale=100.0, prob_thd=0.0,
              slide_crop=224, slide_stride=112, pamr_steps=0, area_thd=None, top_n=4, score='entropy',
              templates='openai_imagenet', clip_arch='ViT-B-16', clip_path='openai', resize=336)
PER_DATASET = {'cityscapes': dict(resize=560), 'pascalvoc20': dict(slide_crop=0)}
VOC20_FIX = {'ship': 'boat', 'table': 'diningtable', **{f'person in {w}': 'person' for w in
                                                          ('shirt', 'jeans', 'dress', 'sweater', 'skirt', 'jacket')},
             **{n: 'tvmonitor' for n in ('television monitor', 'tv monitor', 'monitor', 'television', 'screen')}}


def sha(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def floss_settings(cfg) -> dict:
    """Our config as the official keywords (NACLIP's translation plus FLOSS's text side)."""
    model = segmentor_settings(cfg)
    out = naclip_settings(cfg)
    out.pop('pamr_stride')
    out.pop('whole_image_upsample', None)
    ranking = dict(model['text']['template_ranking'])
    resize = [s for s in cfg.test_dataloader.dataset.pipeline if s['type'] == 'Resize'][0]['scale'][1]
    out.update(area_thd=model['area_thd'], top_n=ranking['top_n'], score=ranking['score'],
               aliases=dict(ranking.get('aliases') or {}), ranking=sha(ranking['file']),
               classes=sha(model['class_names']), templates=model['templates'], clip_arch=model['arch'],
               clip_path=model['clip_path'], resize=int(resize))
    if model['slide_crop'] == 0:
        assert model['whole_image_upsample'] == 'via_input'  # forward_feature to the input, predict to ori
    return out


@pytest.mark.parametrize('path', CONFIGS, ids=BENCHMARKS)
def test_config_translates_to_the_official_settings(path):
    cfg = load_config(path)
    dataset = DATASET[cfg.benchmark]
    expected = dict(COMMON, **PER_DATASET.get(dataset, {}), ranking=RANKINGS[dataset], classes=CLASS_FILES[dataset],
                    aliases=VOC20_FIX if dataset == 'pascalvoc20' else {})
    if expected['slide_crop'] == 0:
        del expected['slide_stride']
    assert floss_settings(cfg) == expected


def test_configs_are_naclip_plus_the_text_side():
    """A plug-in: each FLOSS config is its benchmark's NACLIP config with model.text, the logit
    scale and the threshold changed, nothing else."""
    for benchmark in BENCHMARKS:
        floss = load_config(osp.join(REPO, 'configs/floss', f'{benchmark}.py')).to_dict()
        naclip = load_config(osp.join(REPO, 'configs/naclip', f'{benchmark}.py')).to_dict()
        changed = {k for k in set(floss['model']) | set(naclip['model'])
                   if floss['model'].get(k) != naclip['model'].get(k)}
        assert changed <= {'text', 'logit_scale', 'prob_thd'}, (benchmark, changed)
        assert floss['test_dataloader'] == naclip['test_dataloader']


# --- models and inputs ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 12-block random CLIP of width 128: two attention heads."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('floss_weights') / 'clip12.pt'), width=128,
                                   layers=12, seed=SEED)


SEED = 1
VOC20_LINES = (0, 14, 19)  # aeroplane; person (+ 'person in shirt'); television monitor (+ 'tv monitor')


def reduced_class_file(cfg, folder) -> str:
    with open(cfg.model.class_names) as f:
        lines = f.read().splitlines()
    keep = [lines[i] for i in VOC20_LINES] if cfg.benchmark == 'voc20' else lines[:3]
    names = [', '.join(line.split(', ')[:2 if cfg.benchmark == 'voc20' else 1]) for line in keep]
    path = folder / f'{cfg.benchmark}_names.txt'
    path.write_text('\n'.join(names) + '\n')
    return str(path)


def oracle(model, cfg, raw, original, default_templates=None):
    settings = floss_settings(cfg)
    query_words, query_idx = get_cls_idx(model.names.path, ', ')
    ranking = cfg.model.text.template_ranking.file
    template_dict = official.load_template_rankings(ranking, settings['top_n'], DATASET[cfg.benchmark])
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    feats = official.encode_text_features(model.text_model.encode_text, open_clip.tokenize, query_words,
                                          list(OPENAI_IMAGENET_TEMPLATES), template_dict, default_templates)
    clip = model.text_model
    clip.visual = model.backbone.visual
    keys = ('arch', 'attn_strategy', 'gaussian_std', 'logit_scale', 'slide_stride', 'slide_crop')
    try:
        return official.predict(clip, feats, query_idx, official_input(raw), original, return_logits=True,
                                **{k: settings[k] for k in keys if k in settings})
    finally:
        clip.visual = None


@pytest.mark.parametrize('path', CONFIGS, ids=BENCHMARKS)
def test_config_predicts_the_official_labels(path, weights, tmp_path):
    cfg = load_config(path)
    options = {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': str(tmp_path),
               'model.class_names': reduced_class_file(cfg, tmp_path)}
    # FLOSS's configuration has the thresholds off; said again so a change of the configs shows here
    model = build(path, options, fused_attention=False, slide_mode='simple', prob_thd=0.0, area_thd=None)
    size, original = input_shapes(cfg, portrait=BENCHMARKS.index(cfg.benchmark) % 2 == 1)
    raw = structured_image(size)
    ours, our_logits = run_ours(model, raw, original)
    expected, expected_logits = oracle(model, cfg, raw, original)
    assert ours.shape == expected.shape == (1, *original)
    assert agreement(ours, expected) >= 0.9999
    assert torch.allclose(our_logits, expected_logits[0], atol=1e-5, rtol=0)
    discriminating(expected)


def test_full_size_vit_b16_predicts_the_official_labels(tmp_path):
    """A random ViT-B/16 on one small image (VOC20: whole image; one default template)."""
    model_file = tmp_path / 'vit-b-16-random.pt'
    clip = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
    torch.save({k: v.half() for k, v in clip.state_dict().items()}, str(model_file))
    path = osp.join(REPO, 'configs/floss/voc20.py')
    cfg = load_config(path)
    options = {'model.clip_path': str(model_file), 'model.precision': 'fp32', 'model.text_cache_dir': False,
               'model.class_names': reduced_class_file(cfg, tmp_path), 'model.templates': ['a photo of a {}.']}
    model = build(path, options, fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.width == 768 and model.backbone.vit.depth == 12
    raw = structured_image((224, 250), seed=7)
    original = (237, 271)
    ours, our_logits = run_ours(model, raw, original)
    expected, expected_logits = oracle(model, cfg, raw, original, default_templates=[lambda c: f'a photo of a {c}.'])
    assert agreement(ours, expected) >= 0.9999
    assert torch.allclose(our_logits, expected_logits[0], atol=1e-5, rtol=0)


def test_streamed_fusion_equals_the_official_fusion():
    """Probabilities built to hit every branch: one claim, none, conflicts, equal confidences."""
    generator = torch.Generator().manual_seed(0)
    experts, queries, size = 5, 5, (9, 11)
    patch = torch.rand(1, experts + 1, queries, *size, generator=generator)
    patch[:, 1, 1, :3] = 5.0  # expert 1 claims query 1 on the top rows ...
    patch[:, 3, 3, :2] = 5.0  # ... expert 3 too on the first two: a conflict
    patch[:, 2, 2, 4] = 5.0   # equal confidences for experts 2 and 4 on row 4: the first wins
    patch[:, 4, 4, 4] = 5.0
    patch = patch.softmax(dim=2)
    ours = fuse_experts(lambda p: p, patch)
    official_fused = official.expert_fusion(patch[0, :-1, None], patch[0, -1:])
    assert torch.equal(ours, official_fused)
    claims = [(patch[0, e].argmax(0) == e) for e in range(experts)]
    overlap = torch.stack(claims).sum(0)
    assert (overlap == 0).any() and (overlap == 1).any() and (overlap > 1).any()


def test_batched_equals_simple(weights, tmp_path):
    path = CONFIGS[BENCHMARKS.index('context59')]
    cfg = load_config(path)
    options = {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': str(tmp_path),
               'model.class_names': reduced_class_file(cfg, tmp_path)}
    fast = build(path, options, slide_mode='batched', window_batch_size=4, fused_attention=True)
    simple = build(path, options, slide_mode='simple', fused_attention=False)
    generator = torch.Generator().manual_seed(0)
    images = [torch.randn(3, 224, 300, generator=generator), torch.randn(3, 260, 224, generator=generator)]
    sizes = [tuple(i.shape[-2:]) for i in images]
    with torch.no_grad():
        for a, b in zip(fast.query_logits(images, sizes), simple.query_logits(images, sizes)):
            assert torch.allclose(a, b, atol=1e-4, rtol=0)


def test_a_name_without_ranking_is_one_line(weights, tmp_path):
    from sclip.errors import SCLIPError
    path = CONFIGS[BENCHMARKS.index('voc20')]
    with pytest.raises(SCLIPError) as error:
        build(path, {'model.clip_path': weights, 'model.text_cache_dir': False,
                     'model.text.template_ranking.aliases.ship': 'vessel'})
    message = str(error.value)
    assert "template_rankings_naclip_pascalvoc20.json: no ranking for 'vessel'" in message and '\n' not in message
