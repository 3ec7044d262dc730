"""SegEarth-OV: every configs/segearth_ov/ config predicts what its official code predicts.

1. Settings: each config translates into the official segmentor's keywords of its cfg_<dataset>.py
   (class file bytes, prob_thd, bg_idx, cls_token_lambda) over base_config.py's and the
   segmentor's defaults (tests/official/segearth_ov.py).
2. Labels and logits: ours (``slide_mode='simple'``, explicit attention, fp32) against the oracle
   on a random 2-head CLIP and a random SimFeatUp ``jbu_one`` written in the official checkpoint
   layout, with the config's thresholds and with them off (the oracle's map then has several
   labels). Mutations fail it: the bias subtraction dropped, the upsampler swapped for bilinear.
3. Sliding windows (overlapping, padded) and the batched path; SimFeatUp's JBU against the
   official modules (with the official Python ``adaptive_conv_py_simple``) and its adaptive
   convolution against a plain loop; bad upsampler checkpoints are one line naming the file.
"""
from __future__ import annotations

import glob
import os
import hashlib
import os.path as osp

import pytest
import torch

import test_method_fidelity as fidelity
from helpers import REPO, structured_image, write_multihead_checkpoint
from official import segearth_ov as official
from sclip.errors import SCLIPError
from sclip.models import simfeatup

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs/segearth_ov/*.py')))
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]

# likyoo/SegEarth-OV @ 3e22a96 configs/cfg_<name>.py: (cfg file, class file, its sha256[:16], prob_thd,
# bg_idx, cls_token_lambda); base_config.py: cls_token_lambda=-0.3, jbu_one, model_type='SegEarth'
OFFICIAL = {
    'openearthmap': ('cfg_openearthmap', 'cls_openearthmap.txt', '42c1a32ea2dd5385', 0.1, 0, -0.3),
    'loveda': ('cfg_loveda', 'cls_loveda.txt', '0f9377940105b511', 0.3, 0, -0.3),
    'isaid': ('cfg_iSAID', 'cls_iSAID.txt', '267ff1dceeca40c6', 0.4, 0, -0.3),
    'potsdam': ('cfg_potsdam', 'cls_potsdam.txt', '7570ab23d5481e9d', 0.1, 5, -0.3),
    'vaihingen': ('cfg_vaihingen', 'cls_vaihingen.txt', '14a0f218225612c2', 0.1, 5, -0.3),
    'uavid': ('cfg_uavid', 'cls_uavid.txt', 'f33f1b914d5417da', 0.3, 0, -0.3),
    'udd5': ('cfg_udd5', 'cls_udd5.txt', '39c2b88a950e7531', 0.4, 4, -0.3),
    'vdd': ('cfg_vdd', 'cls_vdd.txt', '375233ff2811716b', 0.3, 0, -0.3),
    'whu_aerial': ('cfg_whu_aerial', 'cls_whu.txt', '8e26c94bc29aed9f', 0.6, 0, -0.3),
    'whu_sat2': ('cfg_whu_sat_II', 'cls_whu.txt', '8e26c94bc29aed9f', 0.7, 0, -0.3),
    'inria': ('cfg_inria', 'cls_inria.txt', '8e26c94bc29aed9f', 0.6, 0, -0.3),
    'xbd_pre': ('cfg_xBD', 'cls_xBD.txt', '8e26c94bc29aed9f', 0.0, 0, 0),
    'chn6_cug': ('cfg_chn6-cug', 'cls_chn6-cug.txt', '84253c70c616dfb5', 0.8, 0, -0.3),
    'deepglobe_road': ('cfg_deepglobe_road', 'cls_roadval.txt', '84253c70c616dfb5', 0.7, 0, -0.3),
    'massachusetts_road': ('cfg_massachusetts_road', 'cls_roadval.txt', '84253c70c616dfb5', 0.7, 0, -0.3),
    'spacenet_road': ('cfg_spacenet_road', 'cls_roadval.txt', '84253c70c616dfb5', 0.7, 0, -0.3),
    'wbs_si': ('cfg_wbs-si', 'cls_wbs-si.txt', 'cab7c233b8a1ed8e', 0.6, 0, -0.3),
}
# segmentor defaults and base_config.py, the same for every dataset
COMMON = dict(model_type='SegEarth', ignore_residual=True, logit_scale=50.0, slide_crop=224, slide_stride=112,
              feature_up='jbu_one', resize=((448, 448), True), clip_arch='ViT-B-16', clip_path='openai',
              templates='openai_imagenet', separator=',', slide_pad=16, official_cast_input=True)
ATTENTION_MODEL_TYPES = {'csa_qkv': 'SegEarth', 'csa_q': 'ClearCLIP', 'csa': 'SCLIP', 'vanilla': 'vanilla'}

one_thread = fidelity.one_thread  # autouse: thousands of tiny ops run faster on one thread


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A random 4-block CLIP (2 heads, sharpened, joint width 8) and a random SimFeatUp jbu_one
    (range temperature and spatial sigma moved off their initial values) in the official layout."""
    folder = tmp_path_factory.mktemp('segearth_weights')
    clip, arch = write_multihead_checkpoint(str(folder), layers=4)
    torch.manual_seed(1)
    upsamplers = {}
    for name in ('jbu_one', 'jbu_stack'):
        module = simfeatup.build_upsampler(name, 8)
        with torch.no_grad():
            for key, param in module.named_parameters():
                if key.endswith('range_temp'):
                    param.fill_(1.5)
                elif key.endswith('sigma_spatial'):
                    param.fill_(0.7)
        upsamplers[name] = simfeatup.save_official_checkpoint(module, str(folder / f'{name}.ckpt'))
    return dict(clip=clip, arch=arch, **upsamplers)


@pytest.fixture(scope='module')
def text_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('segearth_text_cache'))


def settings(cfg) -> dict:
    """Our config -> the oracle's keywords (upsampler: its type name)."""
    model = fidelity.segmentor_settings(cfg)
    method = fidelity.method_settings(model)
    fidelity.no_official_counterpart(method['type'] == 'segearth_ov', f"model.method.type={method['type']}")
    fidelity.no_official_counterpart(model['pamr_steps'] == 0, 'pamr_steps')
    fidelity.no_official_counterpart(model['area_thd'] is None, 'area_thd')
    attention = method['attention'] if isinstance(method['attention'], str) else method['attention']['type']
    upsampler = method['upsampler']
    return dict(model_type=ATTENTION_MODEL_TYPES[attention], ignore_residual=method['ignore_residual'],
                cls_token_lambda=float(method['cls_token_lambda']), bg_idx=int(model['bg_idx']),
                feature_up=None if upsampler is None else upsampler.get('type', 'jbu_one'),
                **fidelity.post_processing(model, area=False), **fidelity.windows(model))


def resize_of(cfg):
    resize = [step for step in cfg.test_dataloader.dataset.pipeline if step['type'] == 'Resize']
    assert len(resize) == 1
    return tuple(resize[0]['scale']), resize[0]['keep_ratio']


def test_every_dataset_has_a_config():
    assert sorted(IDS) == sorted(OFFICIAL)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = fidelity.load_config(path)
    model = fidelity.segmentor_settings(cfg)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    ours = dict(settings(cfg), resize=resize_of(cfg), class_sha=hashlib.sha256(raw).hexdigest()[:16],
                clip_arch=model['arch'], clip_path=model['clip_path'], templates=model['templates'],
                separator=model['class_name_separator'], slide_pad=int(model['slide_pad']),
                official_cast_input=model['official_cast_input'])
    _, _, sha, prob_thd, bg_idx, cls_lambda = OFFICIAL[IDS[CONFIGS.index(path)]]
    expected = dict(COMMON, class_sha=sha, prob_thd=prob_thd, bg_idx=bg_idx, cls_token_lambda=float(cls_lambda))
    assert ours == expected
    assert cfg.benchmark == IDS[CONFIGS.index(path)]


def build(path, weights, text_cache, extra=None, **overrides):
    options = {'model.clip_path': weights['clip'], 'model.arch': weights['arch'], 'model.precision': 'fp32',
               'model.text_cache_dir': text_cache, 'model.method.upsampler.checkpoint': weights['jbu_one'],
               **(extra or {})}
    return fidelity.build(path, options, **overrides)


def run_official(model, cfg, raw, original, upsampler: str = 'jbu_one', weights=None, **changes):
    keywords = dict(settings(cfg), **changes)
    feature_up = keywords.pop('feature_up')
    if feature_up == 'bilinear':  # official: its (empty) state dict would be loaded from a checkpoint too
        module = official.get_upsampler('bilinear', 8)
    else:
        module = None if feature_up is None else official.load_upsampler(feature_up, 8, weights[upsampler])
    clip = model.text_model
    clip.visual = model.backbone.visual
    try:
        return official.predict(clip, model.class_embeddings, model.names.query_class, fidelity.official_input(raw),
                                original, return_logits=True, upsampler=module, **keywords)
    finally:
        clip.visual = None


SIZE, ORIGINAL = (52, 74), (61, 87)  # one window, padded to 64x80: the JBU at a size the oracle runs fast


def discriminating(labels: torch.Tensor, num_classes: int) -> bool:
    counts = torch.bincount(labels.flatten())
    return int((counts > 0).sum()) >= 2 and counts.max().item() <= 0.9 * labels.numel()


OFFICIAL_LOGITS = {}  # (class file bytes, cls_token_lambda) -> the oracle's logits: datasets sharing them


def official_run(model, cfg, raw, weights):
    """The oracle's labels and logits for ``cfg``; its logits depend on the class file and the
    lambda only (and are computed once for the datasets that share them), its labels on the
    thresholds too (post-processed here as its postprocess_result does)."""
    keywords = settings(cfg)
    with open(model.names.path, 'rb') as f:
        key = (f.read(), keywords['cls_token_lambda'])
    if key not in OFFICIAL_LOGITS:
        OFFICIAL_LOGITS[key] = run_official(model, cfg, raw, ORIGINAL, weights=weights)[1]
    logits = OFFICIAL_LOGITS[key]
    labels = official.postprocess(logits, official.query_index_tensor(model.names.query_class, 'cpu'),
                                  keywords['logit_scale'], keywords['prob_thd'], keywords['bg_idx'])
    return labels, logits


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, weights, text_cache):
    """With the config's thresholds and with them off (the oracle's logits post-processed both
    ways, as its postprocess_result would)."""
    cfg = fidelity.load_config(path)
    model = build(path, weights, text_cache, fused_attention=False, slide_mode='simple')
    fidelity.check_class_parsing('clearclip', model)  # official get_cls_idx splits on ','
    raw = structured_image(SIZE, seed=5)
    official_labels, official_logits = official_run(model, cfg, raw, weights)
    ours, our_logits = fidelity.run_ours(model, raw, ORIGINAL)
    assert ours.shape == official_labels.shape == (1, *ORIGINAL)
    assert torch.equal(ours, official_labels)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    # thresholds off
    official_off = official.postprocess(official_logits, official.query_index_tensor(model.names.query_class, 'cpu'),
                                        model.logit_scale, 0.0, model.bg_idx)
    model.prob_thd = 0.0
    ours_off, _ = fidelity.run_ours(model, raw, ORIGINAL)
    assert torch.equal(ours_off, official_off)
    if model.num_classes >= 3:  # the binary sets: the window's [CLS] bias, one value for all its pixels,
        # outweighs a random CLIP's per-pixel difference of two names, so their maps are one label
        # (their logits, compared above to 1e-5, still tell the computations apart)
        assert discriminating(official_off, model.num_classes), torch.bincount(official_off.flatten())


@pytest.mark.parametrize('change,official_change', [
    ({'model.method.cls_token_lambda': 0.0}, {}),                      # bias subtraction dropped
    ({'model.method.upsampler.type': 'bilinear'}, {}),                  # SimFeatUp swapped for bilinear
    ({}, {'cls_token_lambda': -0.6}),                                    # the oracle's lambda doubled
], ids=['no-bias-subtraction', 'bilinear-upsampler', 'other-lambda'])
def test_a_changed_detail_fails_the_comparison(change, official_change, weights, text_cache):
    path = osp.join(REPO, 'configs/segearth_ov/openearthmap.py')
    cfg = fidelity.load_config(path)
    extra = dict(change, **{'model.prob_thd': 0.0})
    if change.get('model.method.upsampler.type') == 'bilinear':
        extra['model.method.upsampler.checkpoint'] = None
    model = build(path, weights, text_cache, extra, fused_attention=False, slide_mode='simple')
    raw = structured_image(SIZE, seed=5)
    official_labels, official_logits = run_official(model, fidelity.load_config(path, {'model.prob_thd': 0.0}),
                                                    raw, ORIGINAL, weights=weights, **official_change)
    ours, our_logits = fidelity.run_ours(model, raw, ORIGINAL)
    assert not torch.allclose(our_logits, official_logits[0], atol=1e-3)
    assert not torch.equal(ours, official_labels)


def test_ablations_reach_the_official_code(weights, text_cache):
    """No upsampler (feature_up=False), the bilinear upsampler, ClearCLIP's attention, the
    residual kept, and jbu_stack, each against the oracle."""
    path = osp.join(REPO, 'configs/segearth_ov/loveda.py')
    raw = structured_image(SIZE, seed=5)
    for change in ({'model.method.upsampler': None},
                   {'model.method.upsampler': dict(type='bilinear')},
                   {'model.method.attention': 'csa_q'},
                   {'model.method.ignore_residual': False},
                   {'model.method.upsampler': dict(type='jbu_stack', checkpoint=weights['jbu_stack'])}):
        cfg = fidelity.load_config(path, change)
        model = build(path, weights, text_cache, change, fused_attention=False, slide_mode='simple')
        upsampler = 'jbu_stack' if 'jbu_stack' in str(change) else 'jbu_one'
        official_labels, official_logits = run_official(model, cfg, raw, ORIGINAL, upsampler, weights)
        ours, our_logits = fidelity.run_ours(model, raw, ORIGINAL)
        assert torch.equal(ours, official_labels), change
        assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0), change


def test_overlapping_windows_and_the_batched_path(weights, text_cache):
    """64-pixel windows with stride 32 over a 90x100 image (6 windows, the last ones shifted
    back inside, each padded to 64x64... exactly; then 90 rows: padded windows) against the
    oracle with the same windows; the batched fused path equals the simple one."""
    path = osp.join(REPO, 'configs/segearth_ov/uavid.py')
    windows = {'model.slide_crop': 72, 'model.slide_stride': 40}
    cfg = fidelity.load_config(path, windows)
    model = build(path, weights, text_cache, windows, fused_attention=False, slide_mode='simple')
    raw = structured_image((90, 100), seed=7)
    official_labels, official_logits = run_official(model, cfg, raw, (90, 100), weights=weights)
    ours, our_logits = fidelity.run_ours(model, raw, (90, 100))
    assert torch.equal(ours, official_labels)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    fast = build(path, weights, text_cache, windows, fused_attention=True, slide_mode='batched', window_batch_size=4)
    fast_labels, fast_logits = fidelity.run_ours(fast, raw, (90, 100))
    assert torch.equal(fast_labels, ours)
    assert torch.allclose(fast_logits, our_logits, atol=1e-5, rtol=0)


# --- SimFeatUp ---------------------------------------------------------------------------------

def test_adaptive_conv_is_the_per_pixel_weighted_sum():
    generator = torch.Generator().manual_seed(0)
    padded = torch.randn(2, 3, 6, 7, generator=generator)
    filters = torch.randn(2, 4, 5, 3, 3, generator=generator)
    expected = torch.zeros(2, 3, 4, 5)
    for b in range(2):
        for c in range(3):
            for h in range(4):
                for w in range(5):
                    expected[b, c, h, w] = sum(padded[b, c, h + i, w + j] * filters[b, h, w, i, j]
                                               for i in range(3) for j in range(3))
    assert torch.allclose(simfeatup.adaptive_conv(padded, filters), expected, atol=1e-5)
    assert torch.allclose(official.adaptive_conv_py_simple(padded, filters), expected, atol=1e-5)


@pytest.mark.parametrize('name', ['jbu_one', 'jbu_stack'])
def test_jbu_equals_the_official_modules(name, weights):
    """Ours and the official module, both loaded from the same official checkpoint, on a
    non-square grid (the official upsampler with its Python adaptive convolution)."""
    ours = simfeatup.load_upsampler(name, 8, weights[name])
    theirs = official.load_upsampler(name, 8, weights[name])
    generator = torch.Generator().manual_seed(2)
    source, guidance = torch.randn(2, 8, 4, 5, generator=generator), torch.randn(2, 3, 64, 80, generator=generator)
    with torch.no_grad():
        expected = theirs(source, guidance)
        assert torch.allclose(ours(source, guidance), expected, atol=1e-5)
        assert not torch.allclose(simfeatup.build_upsampler(name, 8).eval()(source, guidance), expected, atol=1e-3)


def test_upsampler_checkpoint_errors(weights, tmp_path):
    missing = str(tmp_path / 'nope.ckpt')
    with pytest.raises(SCLIPError, match='nope.ckpt.*does not exist'):
        simfeatup.load_upsampler('jbu_one', 8, missing)
    with pytest.raises(SCLIPError, match=r'jbu_stack.ckpt.*not a jbu_one upsampler \(missing up\.'):
        simfeatup.load_upsampler('jbu_one', 8, weights['jbu_stack'])
    with pytest.raises(SCLIPError, match=r'jbu_one.ckpt.*fixup_proj.1.weight is \(8, 8, 1, 1\).*\(16, 16, 1, 1\)'):
        simfeatup.load_upsampler('jbu_one', 16, weights['jbu_one'])
    garbage = tmp_path / 'garbage.ckpt'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(SCLIPError, match='garbage.ckpt.*could not be read'):
        simfeatup.load_upsampler('jbu_one', 8, str(garbage))
    with pytest.raises(SCLIPError, match='checkpoint is not set'):
        simfeatup.load_upsampler('jbu_one', 8, None)
    with pytest.raises(SCLIPError, match="upsampler.type='carafe' is unknown"):
        simfeatup.build_upsampler('carafe', 8)
    for error in (SCLIPError,):
        try:
            simfeatup.load_upsampler('jbu_one', 8, missing)
        except error as caught:
            assert '\n' not in str(caught)


def test_jbu_needs_16_pixel_patches(tmp_path, weights):
    """Its four 2x steps make 16x: another patch size is refused in one line (the official
    ``view`` would fail); bilinear works with any."""
    from sclip.models.methods import build_method

    class FakeViT:
        patch_size, embed_dim = (32, 32), 8
        depth = 4
    method = build_method(dict(type='segearth_ov', upsampler=dict(type='jbu_one', checkpoint=weights['jbu_one'])))
    with pytest.raises(SCLIPError, match='upsamples 16x.*32-pixel patches'):
        method.setup(FakeViT())
    method = build_method(dict(type='segearth_ov', upsampler=dict(type='bilinear')))
    method.setup(FakeViT())
    with pytest.raises(SCLIPError, match='upsampler.radius: no such setting'):
        build_method(dict(type='segearth_ov', upsampler=dict(type='jbu_one', radius=3)))


# --- every config end to end on synthetic data in its dataset's layout -------------------------

@pytest.fixture(scope='module')
def tiny_upsampler(tmp_path_factory):
    """A random jbu_one for the conftest's tiny CLIP (joint width 32), in the official layout."""
    torch.manual_seed(3)
    return simfeatup.save_official_checkpoint(simfeatup.build_upsampler('jbu_one', 32),
                                              str(tmp_path_factory.mktemp('segearth_e2e') / 'jbu_one.ckpt'))


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_runs_end_to_end(path, tmp_path, tiny_checkpoint, tiny_upsampler):
    """tools/test.py on a synthetic copy of the dataset (sclip/synthetic.py): metrics for the
    dataset's classes, one label map per image. The resize is shrunk to 64 (one window per image:
    the JBU at 224 would dominate the suite's time); everything else is the config's."""
    import json
    from helpers import load_tool
    from sclip.data_check import dataset_classes
    from sclip.runner import load_config
    from sclip.synthetic import make_remote_sensing_dataset
    key = IDS[CONFIGS.index(path)]
    root = make_remote_sensing_dataset(key, str(tmp_path / 'data'))
    out, work = str(tmp_path / 'pred'), str(tmp_path / 'work')
    load_tool('test').main([path, '--work-dir', work, '--out', out, '--cfg-options',
                            f'model.clip_path={tiny_checkpoint}', f'test_dataloader.dataset.data_root={root}',
                            'test_dataloader.num_workers=0', f'model.method.upsampler.checkpoint={tiny_upsampler}',
                            'test_dataloader.dataset.pipeline.1.scale=(64,64)', 'model.precision=fp32'])
    with open(osp.join(work, 'metrics.json')) as f:
        metrics = json.load(f)
    classes = dataset_classes(load_config(path).test_dataloader.dataset)
    assert list(metrics['per_class']['IoU']) == classes
    assert len([f for f in os.listdir(out) if f.endswith('.png')]) == 2


# --- the remote-sensing CLIPs SegEarth-OV compares: open_clip checkpoints ---------------------------

@pytest.mark.parametrize('layout', ['remoteclip', 'skyclip'])
def test_remote_sensing_clip_layouts_load(layout, tmp_path):
    """RemoteCLIP / GeoRSCLIP ship a bare open_clip state dict (possibly fp16, hence
    ``clip_format='open_clip'`` in the README's overrides), SkyCLIP an open_clip training checkpoint
    (``epoch``, ``name``, ``optimizer``, ``state_dict`` with ``module.`` prefixes): both load with
    the README's overrides through sclip's loader, weights intact; the architectures are open_clip's."""
    import open_clip
    from sclip.models.clip_loader import load_clip
    _, arch = write_multihead_checkpoint(str(tmp_path / 'cfg'), layers=1)
    model = open_clip.create_model(arch)
    state = model.state_dict()
    path = str(tmp_path / f'{layout}.pt')
    if layout == 'remoteclip':
        torch.save({k: v.half() for k, v in state.items()}, path)
    else:
        torch.save({'epoch': 20, 'name': 'SkyCLIP_ViT_B32', 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]},
                    'state_dict': {'module.' + k: v for k, v in state.items()}}, path)
    loaded = load_clip(path, arch, 'open_clip')
    expected = state['visual.conv1.weight'].half().float() if layout == 'remoteclip' else state['visual.conv1.weight']
    assert torch.equal(loaded.visual.conv1.weight, expected)
    assert {'ViT-B-32', 'ViT-L-14', 'ViT-H-14'} <= set(open_clip.list_models())
