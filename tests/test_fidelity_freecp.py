"""FreeCP: every configs/freecp/ config predicts what FreeCP's code predicts.

1. Settings: each config translates into the official keywords of its cfg_<benchmark>.py
   (FreeCP @ 6946aa7: windows, rp_thres / ap_thres, with_bkg / ignore_bkg, resize, class file,
   the description file its ``dataset`` key picks, model_type='GEM').
2. Labels and logits: ours (``slide_mode='simple'``, explicit attention, fp32) against the
   oracle (tests/official/freecp.py, which builds the descriptions' features itself from the text
   tower) on a synthetic image, on a random 12-block CLIP with 2 heads (GEM's head-0 quirk shows);
   FreeCP has no prob_thd / area_thd (setting one is an error), so "thresholds off" is its own
   purification relaxed (``rp_thres=0, ap_thres=1``: every class kept, no group to tell apart).
3. The other bases (ClearCLIP, SCLIP, MaskCLIP, CLIP) against the oracle's model_type; a full-size
   window grid at the benchmark's size; a full-size random ViT-B/16.
4. Mutations: dropping the box masks (ours) or the ambiguity purification (the oracle) fails the
   comparison; bad settings are one-line errors naming the key.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import pytest
import torch

import test_method_fidelity as fidelity
from helpers import REPO, method_configs, structured_image, write_multihead_checkpoint
from official import freecp as official_freecp
from sclip.errors import SCLIPError

CONFIGS = method_configs('freecp')  # not ade847/context459: ours, run end to end in test_large_vocab.py
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]
# cfg_<benchmark>.py of FreeCP @ 6946aa7 (slide_stride: the segmentor's default 112 everywhere;
# model_type 'GEM': base_config.py); class files by the sha256 of the official cls_*.txt
OFFICIAL = {
    'voc21': dict(cls='80d6f974e66e6234', slide_crop=384, rp_thres=0.15, ap_thres=0.8, with_bkg=True,
                  ignore_bkg=False, dataset='voc', resize=448),
    'context60': dict(cls='e29ff1a0eaea71eb', slide_crop=384, rp_thres=0.1, ap_thres=0.7, with_bkg=True,
                      ignore_bkg=False, dataset='pc', resize=448),
    'coco_object': dict(cls='3b2c73cdc5c57f4a', slide_crop=384, rp_thres=0.15, ap_thres=0.8, with_bkg=True,
                        ignore_bkg=False, dataset='cocoobj', resize=448),
    'voc20': dict(cls='7cef5ab8ab84203a', slide_crop=384, rp_thres=0.15, ap_thres=0.7, with_bkg=True,
                  ignore_bkg=True, dataset='voc', resize=448),
    'cityscapes': dict(cls='6f6782fc1bf92bfd', slide_crop=224, rp_thres=0.1, ap_thres=0.8, with_bkg=False,
                       ignore_bkg=False, dataset='city', resize=560),
    'context59': dict(cls='cd808465f06a1616', slide_crop=384, rp_thres=0.1, ap_thres=0.7, with_bkg=True,
                      ignore_bkg=True, dataset='pc', resize=448),
    'ade20k': dict(cls='e53ded02c488bdb9', slide_crop=384, rp_thres=0.05, ap_thres=0.7, with_bkg=False,
                   ignore_bkg=False, dataset='ade', resize=448),
    'coco_stuff164k': dict(cls='fb98709b9ab1baff', slide_crop=384, rp_thres=0.05, ap_thres=0.7, with_bkg=False,
                           ignore_bkg=False, dataset='cocostuff', resize=448),
}
# get_prompts(use_llm=True): the dataset key -> prompts/vicuna13b/<file>.py
DESCRIPTIONS = {'voc': 'voc21', 'pc': 'context60', 'cocoobj': 'coco_object', 'cocostuff': 'coco_stuff',
                'ade': 'ade20k', 'city': 'city_scapes'}
RELAXED = {'model.method.rp_thres': 0.0, 'model.method.ap_thres': 1.0}

one_thread = fidelity.one_thread  # autouse: thousands of tiny ops run faster on one thread
vit_b16 = fidelity.vit_b16  # a random full-size ViT-B/16 and a 4-class file


@pytest.fixture(scope='module')
def clip12(tmp_path_factory):
    """A random sharpened 12-block CLIP, width 64, 2 heads (open_clip layout) -> (path, arch)."""
    return write_multihead_checkpoint(str(tmp_path_factory.mktemp('freecp_weights')))


@pytest.fixture(scope='module')
def text_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('freecp_text_cache'))


@pytest.fixture(scope='module')
def first_lines(tmp_path_factory):
    """``path -> path``: the first 6 lines of a class file as they are."""
    folder = tmp_path_factory.mktemp('freecp_class_files')

    def reduced(path: str, lines: int = 6) -> str:
        target = folder / f'{lines}_{osp.basename(path)}'
        with open(path) as f:
            target.write_text(''.join(f.readlines()[:lines]))
        return str(target)
    return reduced


def oracle_settings(cfg) -> dict:
    """Our config -> the oracle's keywords (background: ``with_bkg and not ignore_bkg``)."""
    model = fidelity.segmentor_settings(cfg)
    method = fidelity.method_settings(model)
    fidelity.no_official_counterpart(method['type'] == 'freecp', f"model.method.type={method['type']}")
    fidelity.no_official_counterpart(method['box_threshold'] == 0.4 and method['crop_size'] == 112,
                                     'box_threshold / crop_size')
    background = bool(method['background'])
    return dict(model_type=official_freecp.MODEL_TYPES[method['base']], rp_thres=float(method['rp_thres']),
                ap_thres=float(method['ap_thres']), with_bkg=background, ignore_bkg=not background,
                logit_scale=float(model['logit_scale']), **fidelity.windows(model))


def test_every_official_benchmark_has_a_config():
    assert sorted(fidelity.load_config(path).benchmark for path in CONFIGS) == sorted(OFFICIAL)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = fidelity.load_config(path)
    model = fidelity.segmentor_settings(cfg)
    settings = oracle_settings(cfg)
    official = OFFICIAL[cfg.benchmark]
    with open(model['class_names'], 'rb') as f:
        class_file = hashlib.sha256(f.read()).hexdigest()[:16]
    descriptions = model['text']['descriptions']
    ours = dict(cls=class_file, slide_crop=settings['slide_crop'], rp_thres=settings['rp_thres'],
                ap_thres=settings['ap_thres'], background=settings['with_bkg'],
                descriptions=osp.basename(descriptions['file']), resize=fidelity.resize_short_side(cfg))
    expected = dict(cls=official['cls'], slide_crop=official['slide_crop'], rp_thres=official['rp_thres'],
                    ap_thres=official['ap_thres'], background=official['with_bkg'] and not official['ignore_bkg'],
                    descriptions=DESCRIPTIONS[official['dataset']] + '.json', resize=official['resize'])
    assert ours == expected
    assert settings['slide_stride'] == 112 and settings['model_type'] == 'GEM' and settings['logit_scale'] == 100
    assert descriptions['templates'] == 'none' and descriptions['weight'] is None
    assert model['class_name_separator'] == ', ' and model['slide_pad'] == 0 and model['pamr_steps'] == 0


def run_both(path: str, clip, text_cache, extra: dict, size, original, mutation=None, seed: int = 3,
             use_llm: bool = True):
    weights, arch = clip
    cfg = fidelity.load_config(path, extra)
    options = {'model.clip_path': weights, 'model.arch': arch, 'model.precision': 'fp32',
               'model.text_cache_dir': text_cache, 'model.templates': ['a photo of a {}.'], **extra}
    model = fidelity.build(path, options, fused_attention=False, slide_mode='simple')
    raw = structured_image(size, seed)
    ours, our_logits = fidelity.run_ours(model, raw, original)
    official, official_logits, _ = run_official(model, cfg, raw, original, mutation, use_llm)
    return model, ours, our_logits, official, official_logits


LLM_FEATURES = {}  # (weights, names, description file) -> the oracle's description features


def run_official(model, cfg, raw, original, mutation=None, use_llm=True):
    """``use_llm=False``: ``get_prompts(use_llm=False)`` for the LLM prompts too (``query_featuresLLM``
    is ``query_features``: the names in the templates)."""
    clip_model = model.text_model
    clip_model.visual = model.backbone.visual
    try:
        if use_llm:
            key = (cfg.model.clip_path, tuple(model.names.queries), cfg.model.text.descriptions.file)
            if key not in LLM_FEATURES:
                LLM_FEATURES[key] = official_freecp.llm_query_features(
                    clip_model, model.tokenizer, model.names.queries, cfg.model.text.descriptions.file)
            llm = LLM_FEATURES[key]
        else:
            llm = model.class_embeddings
        settings = dict(oracle_settings(cfg), dataset=OFFICIAL[cfg.benchmark]['dataset'])
        return official_freecp.predict(clip_model, model.class_embeddings, llm, model.names.query_class,
                                       fidelity.official_input(raw), original, return_logits=True,
                                       mutation=mutation, **settings)
    finally:
        clip_model.visual = None


def small_shapes(cfg, index: int):
    """A window grid of 2x2 (Cityscapes' 224 crop) or one window smaller than the crop, grid 13x17."""
    size, original = ((240, 300), (200, 250)) if index % 2 == 0 else ((300, 240), (250, 200))
    return (size, original) if cfg.model.slide_crop < 384 else ((208, 272), (180, 230))


# every config with its own thresholds; relaxed for a background one, an ignored-background one and
# the 2x2 window grid (each run costs seconds: the suite's budget)
RELAXED_CASES = ('voc21', 'context59', 'cityscapes')
CASES = [(path, 'config') for path in CONFIGS] + [(path, 'relaxed') for path in CONFIGS
                                                  if osp.splitext(osp.basename(path))[0] in RELAXED_CASES]


@pytest.mark.parametrize('path,thresholds', CASES,
                         ids=[f'{osp.splitext(osp.basename(p))[0]}-{t}' for p, t in CASES])
def test_config_predicts_the_official_labels(path, thresholds, clip12, text_cache, first_lines):
    cfg = fidelity.load_config(path)
    size, original = small_shapes(cfg, CONFIGS.index(path))
    extra = dict(RELAXED if thresholds == 'relaxed' else {},
                 **{'model.class_names': first_lines(fidelity.segmentor_settings(cfg)['class_names'])})
    model, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, extra, size, original)
    assert ours.shape == official.shape == (1, *original)
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    if thresholds == 'relaxed':  # the maps mean something: several labels, none everywhere
        counts = torch.bincount(official.flatten())
        assert int((counts > 0).sum()) >= 2 and counts.max() < official.numel()


@pytest.mark.parametrize('base', ['clearclip', 'sclip'])  # README rows; maskclip/vanilla: the same code path
def test_every_base_predicts_the_official_labels(base, clip12, text_cache, first_lines):
    path = osp.join(REPO, 'configs/freecp/context60.py')
    names = first_lines(fidelity.segmentor_settings(fidelity.load_config(path))['class_names'])
    extra = {'model.class_names': names, 'model.method.base': base}
    _, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, extra, (240, 300),
                                                              (200, 250))
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)


def test_full_size_vit_b16_predicts_the_official_labels(vit_b16, tmp_path):
    """The real architecture (12 heads, width 768), one 224x300 image; descriptions for its 4 names."""
    import json
    weights, _ = vit_b16
    names = tmp_path / 'names.txt'
    names.write_text('background, sky\ncat\ndog\ncar\n')
    described = tmp_path / 'descriptions.json'
    described.write_text(json.dumps({q: [f'a photo of a {q}.', f'a {q} seen from afar.']
                                     for q in ('background', 'sky', 'cat', 'dog', 'car')}))
    names = str(names)
    path = osp.join(REPO, 'configs/freecp/voc21.py')
    extra = {'model.class_names': names, 'model.text.descriptions.file': str(described), **RELAXED}
    cfg = fidelity.load_config(path, extra)
    model = fidelity.build(path, {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': False,
                                  'model.templates': ['a photo of a {}.'], **extra},
                           fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.width == 768 and model.backbone.vit.num_heads == 12
    raw = structured_image((224, 224))
    ours, our_logits = fidelity.run_ours(model, raw, (200, 200))
    official, official_logits, _ = run_official(model, cfg, raw, (200, 200))
    # 768-wide sums in another order move the logits by ~3e-5 (min-max normalisations divide by
    # small ranges): a few near-tied pixels may differ, as for the other methods' full-size runs
    assert fidelity.agreement(ours, official) >= fidelity.LABEL_AGREEMENT
    assert torch.allclose(our_logits, official_logits[0], atol=1e-4, rtol=0)


def test_ambiguity_purification_and_mutations(clip12, text_cache, first_lines, monkeypatch):
    """Cityscapes' 2x2 grid of 224 windows with 12 classes and ``ap_thres=0.3``, so that groups of
    overlapping classes meet CLIP's crop classifier (a random CLIP's maps rarely overlap by the
    configs' 0.7-0.8). Then the mutations: the oracle without its ambiguity purification, and ours
    without the box masks, each differ."""
    from sclip.models.methods import freecp
    path = osp.join(REPO, 'configs/freecp/cityscapes.py')
    names = first_lines(fidelity.segmentor_settings(fidelity.load_config(path))['class_names'], 12)
    extra, (size, original) = {'model.class_names': names, 'model.method.ap_thres': 0.3}, ((240, 300), (200, 250))
    crops = []
    classify = freecp.FreeCP.crop_classifier
    monkeypatch.setattr(freecp.FreeCP, 'crop_classifier', lambda *args: crops.append(1) or classify(*args))
    model, ours, our_logits, official, official_logits = run_both(path, clip12, text_cache, extra, size, original)
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    assert crops, 'no ambiguous group: the crop classifier was not exercised'
    raw, cfg = structured_image(size), fidelity.load_config(path, extra)
    assert not torch.equal(ours, run_official(model, cfg, raw, original, mutation='no_ambiguity')[0])
    monkeypatch.setattr(freecp, 'box_mask', lambda scoremap, threshold: torch.ones_like(scoremap))
    _, unmasked_logits = fidelity.run_ours(model, raw, original)
    assert not torch.allclose(unmasked_logits, official_logits[0], atol=1e-3)


def test_query_texts_for_the_ambiguity_step_are_the_official_code_without_llm(clip12, text_cache, first_lines,
                                                                              monkeypatch):
    """``model.method.ambiguity_texts='queries'`` (ours, for datasets without descriptions: the
    remote-sensing and large-vocabulary configs) is FreeCP's code with ``get_prompts(use_llm=False)``
    for its LLM prompts: the oracle whose ``query_featuresLLM`` are its ``query_features``. The same
    ambiguous setting as above (crops are classified); the default (descriptions) without
    descriptions is the one-line error it always was."""
    from sclip.models.methods import freecp
    path = osp.join(REPO, 'configs/freecp/cityscapes.py')
    names = first_lines(fidelity.segmentor_settings(fidelity.load_config(path))['class_names'], 12)
    extra = {'model.class_names': names, 'model.method.ap_thres': 0.3, 'model.text': None}
    crops = []
    classify = freecp.FreeCP.crop_classifier
    monkeypatch.setattr(freecp.FreeCP, 'crop_classifier', lambda *args: crops.append(1) or classify(*args))
    _, ours, our_logits, official, official_logits = run_both(
        path, clip12, text_cache, dict(extra, **{'model.method.ambiguity_texts': 'queries'}), (240, 300), (200, 250),
        use_llm=False)
    assert crops, 'no ambiguous group: the crop classifier was not exercised'
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    model = fidelity.build(path, {'model.clip_path': clip12[0], 'model.arch': clip12[1], 'model.precision': 'fp32',
                                  'model.text_cache_dir': text_cache, 'model.templates': ['a photo of a {}.'], **extra},
                           fused_attention=False, slide_mode='simple')
    with pytest.raises(SCLIPError) as error:
        fidelity.run_ours(model, structured_image((240, 300)), (200, 250))
    assert str(error.value).startswith('model.text.descriptions is not set') and '\n' not in str(error.value)
    both = fidelity.build(path, {'model.clip_path': clip12[0], 'model.arch': clip12[1], 'model.text_cache_dir': text_cache,
                                 'model.templates': ['{}'], 'model.class_names': names,
                                 'model.method.ambiguity_texts': 'queries'})
    with pytest.raises(SCLIPError, match="ambiguity_texts='queries' does not read model.text.descriptions"):
        fidelity.run_ours(both, structured_image((64, 64)), (64, 64))


@pytest.mark.parametrize('key,value,message', [
    ('model.method.base', 'naclip', "model.method.base='naclip' is unknown; FreeCP runs on one of"),
    ('model.method.rp_thres', 1.5, 'model.method.rp_thres=1.5 must be in [0, 1]'),
    ('model.method.ambiguity_texts', 'llm', "model.method.ambiguity_texts='llm' is unknown"),
    ('model.method.bases', 'gem', "model.method.bases: 'freecp' has no setting 'bases'"),
    ('model.text.descriptions.file', '/nonexistent/voc21.json', "model.text.descriptions.file='/nonexistent/voc21.json' not found"),
    ('model.prob_thd', 0.1, 'model.prob_thd: model.method.type=\'freecp\' makes its labels with its own post-processing'),
    ('model.area_thd', 0.1, 'model.area_thd: model.method.type=\'freecp\''),
], ids=['unknown-base', 'rp_thres', 'ambiguity_texts', 'unknown-key', 'missing-description-file', 'prob_thd', 'area_thd'])
def test_bad_settings_are_one_line_errors(key, value, message, clip12):
    path = osp.join(REPO, 'configs/freecp/voc21.py')
    with pytest.raises(SCLIPError) as error:
        fidelity.build(path, {'model.clip_path': clip12[0], 'model.arch': clip12[1], 'model.text_cache_dir': False,
                              key: value})
    assert message in str(error.value) and '\n' not in str(error.value)


def test_missing_descriptions_and_several_names_are_one_line_errors(clip12, tmp_path):
    path = osp.join(REPO, 'configs/freecp/voc20.py')
    options = {'model.clip_path': clip12[0], 'model.arch': clip12[1], 'model.text_cache_dir': False,
               'model.templates': ['{}']}
    names = tmp_path / 'names.txt'
    names.write_text('aeroplane\nbicycle, bike\n')
    with pytest.raises(SCLIPError, match='no descriptions for .bike.'):
        fidelity.build(path, dict(options, **{'model.class_names': str(names)}))
    names.write_text('aeroplane\nbicycle, bird\n')
    model = fidelity.build(path, dict(options, **{'model.class_names': str(names)}))
    with pytest.raises(SCLIPError, match='model.class_names: FreeCP needs one name per class'):
        fidelity.run_ours(model, structured_image((64, 64)), (64, 64))
