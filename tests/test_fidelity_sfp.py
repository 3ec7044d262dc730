"""Every SFP config predicts what the official SFP code predicts (tests/official/sfp.py).

1. Settings: each configs/sfp/<benchmark>.py, translated into the official segmentor's keyword
   arguments, equals the official values (SFPForSegmentation's defaults, configs/base_config.py,
   configs/cfg_<benchmark>.py at Kimsure/SFP @ 2804f5b7), with the test resize, the class file
   (sha256 and first line), separator and templates. The official repository has configs for
   eight benchmarks (no COCO-Stuff10k), and so does configs/sfp/.
2. Labels: our ``test_step`` (simple path, explicit attention, fp32) equals the oracle's labels
   pixel for pixel and its logits to 1e-5, on every config, with the official thresholds and with
   them off (``prob_thd=0, area_thd=None``), on a random 12-block CLIP with two heads per block
   (a 238 x 294 image: six windows, the last row and column shifted back; the resize itself is
   pinned by 1.);
   each outlier detector (SOM, L2, LOF) on one config; one full-size random ViT-B/16.
   Inputs discriminate: with the thresholds off the oracle's map holds several labels, none on
   more than 90 % of the pixels, and the outlier repair changes the result.
3. The fast path (4 windows a pass, fused attention) agrees with the simple one, and each window
   of a batch is computed as alone; bad settings are one-line errors naming the key.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import pytest
import torch

import test_method_fidelity as fidelity
from helpers import REPO, method_configs, write_openai_checkpoint
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import common, sfp
from sclip.errors import SCLIPError

CONFIGS = method_configs('sfp')
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]
OFFICIAL_BENCHMARKS = ('ade20k', 'cityscapes', 'coco_object', 'coco_stuff164k', 'context59', 'context60',
                       'voc20', 'voc21')
THRESHOLDS_OFF = {'model.prob_thd': 0.0, 'model.area_thd': None}

# SFPForSegmentation's constructor defaults with configs/base_config.py on top
OFFICIAL_DEFAULTS = dict(logit_scale=40.0, prob_thd=0.0, area_thd=None, slide_crop=224, slide_stride=112,
                         pamr_steps=0, pamr_stride=(8, 16), pm='SOM', purify=True, cross_s=3, cross_e=10,
                         res_cls=0.3, separator=', ', slide_pad=0, resize=336, **fidelity.COMMON)
# configs/cfg_<benchmark>.py (cfg_city_scapes_local.py differs from cfg_city_scapes.py only in data_root)
OFFICIAL_PER_BENCHMARK = {
    'voc21': dict(area_thd=0.1, logit_scale=50.0, prob_thd=0.15),
    'context60': dict(prob_thd=0.15),
    'coco_object': dict(logit_scale=55.0, prob_thd=0.35),
    'ade20k': dict(resize=384),
    'cityscapes': dict(resize=560),
}
# SFP ships SC-CLIP's class files except three, which say 'people' where the others say 'person'
OWN_CLASS_FILES = {'voc20': ('317dafe95650b39e', 'aeroplane'),
                   'voc21': ('3b5987c2d5028cff', fidelity.CLS['voc21'][1]),
                   'cityscapes': ('8dba4f1e3eeefc37', 'road')}



@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 12-block random CLIP, width 128: two heads per block (OpenAI's 64-wide heads)."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('sfp_weights') / 'clip12.pt'), width=128, layers=12)


@pytest.fixture(scope='module')
def text_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('sfp_text_cache'))


def options(weights: str, text_cache: str, **extra) -> dict:
    return {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': text_cache, **extra}


# --- 1. settings ----------------------------------------------------------------------------------

HARD_CODED = dict(pre_adjust_idx=8, post_adjust_idx=3, beta=0.4)  # official constants of model.py


def sfp_settings(cfg) -> dict:
    """Our config as the official SFPForSegmentation's keyword arguments."""
    model = fidelity.segmentor_settings(cfg)
    method = fidelity.method_settings(model)
    assert method['type'] == 'sfp'
    for key, value in HARD_CODED.items():
        fidelity.no_official_counterpart(method[key] == value, f'model.method.{key}={method[key]}')
    return dict(**fidelity.post_processing(model), **fidelity.windows(model), pamr_steps=int(model['pamr_steps']),
                pamr_stride=tuple(model['pamr_dilations']),
                **{key: method[key] for key in ('pm', 'purify', 'cross_s', 'cross_e', 'res_cls')})


def official_settings(benchmark: str) -> dict:
    expected = {**OFFICIAL_DEFAULTS, **OFFICIAL_PER_BENCHMARK.get(benchmark, {})}
    expected['class_file'] = OWN_CLASS_FILES.get(benchmark) or fidelity.CLS[fidelity.CLASS_FILE[benchmark]]
    return expected


def pinned_settings(cfg) -> dict:
    model = fidelity.segmentor_settings(cfg)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    return dict(sfp_settings(cfg), resize=fidelity.resize_short_side(cfg),
                class_file=(hashlib.sha256(raw).hexdigest()[:16], raw.decode().splitlines()[0]),
                separator=model['class_name_separator'], templates=model['templates'],
                slide_pad=int(model['slide_pad']), clip_arch=model['arch'], clip_path=model['clip_path'])


def test_a_config_for_every_official_benchmark():
    assert tuple(sorted(fidelity.load_config(path).benchmark for path in CONFIGS)) == OFFICIAL_BENCHMARKS


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = fidelity.load_config(path)
    assert pinned_settings(cfg) == official_settings(cfg.benchmark)


def test_translation_refuses_settings_without_official_counterpart():
    cfg = fidelity.load_config(osp.join(REPO, 'configs/sfp/voc21.py'), {'model.method.beta': 0.5})
    with pytest.raises(ValueError, match='beta=0.5'):
        sfp_settings(cfg)


# --- 2. labels against the official code ----------------------------------------------------------

def run_official(model, settings: dict, raw: torch.Tensor, original):
    clip = model.text_model
    clip.visual = model.backbone.visual
    try:
        return sfp.predict(clip, model.class_embeddings, model.names.query_class, fidelity.official_input(raw),
                           original, return_logits=True, **settings)
    finally:
        clip.visual = None


def use_prototype_queries(model, raw: torch.Tensor, seed: int = 0) -> None:
    """Query embeddings = our patch features at random cells of the image's first window.

    Why: a random text tower embeds every class name in nearly one direction (mean cosine 0.94)
    and random CLIP features vary little across pixels, so its queries give one or two labels;
    features of the image itself as queries make the argmax follow the features. Both sides get
    the same embeddings (the oracle is handed ours, as the other fidelity tests do)."""
    with torch.no_grad():
        features = model.extract_feat(fidelity.official_input(raw)[:, :, :224, :224])[0].flatten(0, 1)
    cells = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(seed))
    queries = features[cells[:len(model.names.queries)]]
    model._text = dict(model.text_embeddings, embeddings=queries)  # the text side the segmentor reads
    model._class_embeddings = queries


def compare(path: str, weights: str, text_cache: str, extra: dict, size=None, original=None, seed: int = 3,
            discriminating: bool = False):
    """Ours against the oracle on one synthetic image; returns the oracle's labels."""
    cfg = fidelity.load_config(path, extra)
    model = fidelity.build(path, options(weights, text_cache, **extra), fused_attention=False, slide_mode='simple')
    names, indices = common.get_cls_idx(model.names.path, common.CLASS_SEPARATORS['scclip'])
    assert (model.names.queries, model.names.query_class) == (names, indices)
    if size is None:  # 2 x 3 windows of 224 (stride 112, the last one shifted back); portrait every other one
        portrait = fidelity.BENCHMARKS.index(cfg.benchmark) % 2 == 1
        size, original = ((294, 238), (190, 150)) if portrait else ((238, 294), (150, 190))
    raw = fidelity.synthetic_image(size, seed=seed)
    use_prototype_queries(model, raw)
    ours, our_logits = fidelity.run_ours(model, raw, original)
    official, official_logits = run_official(model, sfp_settings(cfg), raw, original)
    assert ours.shape == official.shape == (1, *original)
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    if discriminating:
        counts = torch.bincount(official.flatten())
        assert int((counts > 0).sum()) >= 3 and counts.max().item() <= 0.9 * official.numel(), counts
    return official


@pytest.mark.parametrize('thresholds', ['official', 'off'])
@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, thresholds, weights, text_cache):
    extra = {} if thresholds == 'official' else dict(THRESHOLDS_OFF)
    compare(path, weights, text_cache, extra, discriminating=thresholds == 'off')


@pytest.mark.parametrize('pm', ['SOM', 'L2', 'LOF'])
def test_each_outlier_detector_predicts_the_official_labels(pm, weights, text_cache):
    """Each detector on a square (336 x 336, 224 windows: LOF needs >= 31 patches officially)
    and the repair matters: without it the labels change."""
    path = osp.join(REPO, 'configs/sfp/context59.py')
    extra = {'model.method.pm': pm}
    official = compare(path, weights, text_cache, extra, size=(336, 336), original=(250, 260), seed=4,
                       discriminating=True)
    unpurified = fidelity.build(path, options(weights, text_cache, **extra, **{'model.method.purify': False}),
                                fused_attention=False, slide_mode='simple')
    labels, _ = fidelity.run_ours(unpurified, fidelity.synthetic_image((336, 336), seed=4), (250, 260))
    assert not torch.equal(labels, official)


def test_detectors_find_outliers_on_the_test_windows(weights, text_cache):
    """SOM finds its 10 patches, L2 its 10, LOF 5 % of them; the three sets differ."""
    from sclip.models.clip_vit import Trunk
    from sclip.models.methods.sfp import som_outliers, top_outliers
    from sclip.models.methods.scclip import lof_outliers
    model = fidelity.build(osp.join(REPO, 'configs/sfp/voc21.py'), options(weights, text_cache))
    images = fidelity.official_input(fidelity.synthetic_image((224, 224), seed=4))
    trunk = Trunk(model.backbone.vit, images)
    depth = trunk.vit.depth
    patches = trunk.tokens(depth - 1)[:, 1:]
    found = {'SOM': som_outliers(trunk.attention(depth - 1), 0.3), 'L2': top_outliers(patches.norm(dim=-1)),
             'LOF': lof_outliers(patches)}
    assert [int(flags.sum()) for flags in found.values()] == [10, 10, 10]  # LOF: 5 % of 196, above the quantile
    assert not torch.equal(found['SOM'], found['L2']) and not torch.equal(found['L2'], found['LOF'])


@pytest.fixture(scope='module')
def vit_b16(tmp_path_factory):
    import open_clip
    folder = tmp_path_factory.mktemp('sfp_vit_b16')
    model = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
    path = str(folder / 'vit-b-16-random.pt')
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    names = folder / 'names.txt'
    names.write_text('background, sky\ncat\ndog, puppy\ncar\n')
    return path, str(names)


def test_full_size_vit_b16_predicts_the_official_labels(vit_b16):
    path, names = vit_b16
    config = osp.join(REPO, 'configs/sfp/voc21.py')
    extra = {'model.class_names': names, 'model.templates': ['a photo of a {}.'], 'model.text_cache_dir': False}
    cfg = fidelity.load_config(config, extra)
    model = fidelity.build(config, {'model.clip_path': path, 'model.precision': 'fp32', **extra},
                           fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.width == 768 and model.backbone.vit.depth == 12
    raw = fidelity.synthetic_image((224, 240), seed=7)
    use_prototype_queries(model, raw)
    ours, our_logits = fidelity.run_ours(model, raw, (237, 251))
    official, official_logits = run_official(model, sfp_settings(cfg), raw, (237, 251))
    assert torch.equal(ours, official)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)


# --- 3. fast path, per-window computation, bad settings -------------------------------------------

@pytest.mark.parametrize('pm', ['SOM', 'L2', 'LOF'])
def test_batched_equals_simple_and_windows_are_alone(pm, weights, text_cache):
    path = osp.join(REPO, 'configs/sfp/ade20k.py')
    model = fidelity.build(path, options(weights, text_cache, **{'model.method.pm': pm}),
                           slide_mode='batched', window_batch_size=4, fused_attention=True)
    fidelity.compare_paths(model, fidelity.random_images(model))
    generator = torch.Generator().manual_seed(11)
    crops = torch.randn(3, 3, 224, 224, generator=generator)
    crops[1] = crops[1] * 2.0 + 0.5
    crops[2] = crops[2].flip(-1) * 0.5
    with torch.no_grad():
        batch = model.extract_feat(crops)
        alone = torch.cat([model.extract_feat(crops[i:i + 1]) for i in range(3)])
    assert torch.isfinite(batch).all() and not torch.allclose(batch[0], batch[1], atol=1e-3)
    assert torch.allclose(batch, alone, atol=1e-5, rtol=0)


def test_isolated_outlier_becomes_zero_as_officially():
    """SFP's mean_interpolation zeroes an outlier without a non-outlier neighbour; SC-CLIP's keeps it."""
    from sclip.models.methods.scclip import replace_by_neighbour_mean
    feature_map = torch.randn(1, 4, 5, 5)
    outliers = torch.zeros(1, 5, 5, dtype=torch.bool)
    outliers[0, 1:4, 1:4] = True  # the centre (2, 2) has only outlier neighbours
    cells = [(torch.tensor(r), torch.tensor(c)) for r in range(1, 4) for c in range(1, 4)]
    expected = sfp.mean_interpolation(feature_map, cells)
    assert torch.allclose(replace_by_neighbour_mean(feature_map, outliers, keep_isolated=False), expected)
    assert torch.all(expected[0, :, 2, 2] == 0)
    assert torch.equal(replace_by_neighbour_mean(feature_map, outliers)[0, :, 2, 2], feature_map[0, :, 2, 2])


@pytest.mark.parametrize('override,message', [
    ({'model.method.pm': 'SOMM'}, "model.method.pm='SOMM' is unknown"),
    ({'model.method.cross_s': 7, 'model.method.cross_e': 4}, 'model.method.cross_s=7 must be below cross_e=4'),
    ({'model.method.cross_e': 12}, 'model.method.cross_e=12 must be in 4..11'),
    ({'model.method.cross_s': -1}, 'model.method.cross_s=-1 must index'),
    ({'model.method.pre_adjust_idx': 11}, 'model.method.pre_adjust_idx=11 must index'),
    ({'model.method.purify': 'maybe'}, 'model.method.purify'),
])
def test_bad_settings_are_one_line_errors(override, message, weights, text_cache):
    with pytest.raises(SCLIPError) as error:
        model = fidelity.build(osp.join(REPO, 'configs/sfp/voc21.py'), options(weights, text_cache, **override))
        model.extract_feat(torch.zeros(1, 3, 224, 224))  # settings checked against the model's depth
    assert message in str(error.value) and '\n' not in str(error.value)
