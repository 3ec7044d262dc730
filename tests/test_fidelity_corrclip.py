"""Every CorrCLIP config predicts what the official CorrCLIP code predicts (tests/official/corrclip.py).

1. Settings: each configs/corrclip/<benchmark>.py, translated into the official
   ``CorrCLIPSegmentation`` keywords, equals zdk258/CorrCLIP @ 103bc18's ``CorrCLIPv1/configs``
   base_config.py + cfg_<benchmark>.py (written out below): MetaCLIP ViT-B/16, DINO ViT-B/8, its own
   class files (sha256 pinned), resize, windows, padding, thresholds, the pre-generated masks'
   folder; the constants its ``VisionTransformer.forward`` hard-codes are pinned too.
2. Labels and logits: our ``test_step`` (fp32, simple windows) against the oracle on a random
   12-block, 2-head sharpened CLIP (6 blocks for the spatial-branch check of another depth) and a
   tiny random DINO ViT-B/8 in its official layout, on a structured image of two windows (or one
   padded window) with fixed region masks (a grid of regions, some pixels unsegmented) read from the official ``.npz``
   layout; every config with its own ``prob_thd`` and with ``model.prob_thd=0``; labels equal
   pixel for pixel, logits to 1e-5. The oracle's maps hold several labels, none over 90 % of the
   pixels, and its DBSCAN merges some regions and keeps others apart (asserted).
3. Mutations: the comparison fails without the map correction, without the mask merging, with
   the padding's mask value 0 instead of 10000, and with the first region's pairs restricted to
   itself (the official "method 2").
"""
from __future__ import annotations

import hashlib
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import REPO, method_configs, label_spread, structured_image
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from helpers import write_multihead_checkpoint
from official import corrclip as official
from test_method_fidelity import (check_class_parsing, load_config, method_settings, no_official_counterpart,
                                  official_input, resize_short_side, segmentor_settings, windows)

CONFIGS = method_configs('corrclip')
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]
BENCHMARKS = ('ade20k', 'cityscapes', 'coco_object', 'coco_stuff164k', 'context59', 'context60', 'voc20', 'voc21')

# CorrCLIPSegmentation's constructor defaults with configs/base_config.py on top
OFFICIAL_DEFAULTS = dict(clip_arch='ViT-B-16-quickgelu', clip_path='metaclip_fullcc', vfm='dino_vitb8',
                         templates='openai_imagenet', separator='; ', slide_pad=56, logit_scale=40.0, prob_thd=0.0,
                         slide_crop=336, slide_stride=112, resize=336, mask_generator='files')
OFFICIAL_PER_BENCHMARK = {
    'ade20k': dict(resize=448, masks='data/region_masks/ade'),
    'cityscapes': dict(resize=448, slide_crop=224, slide_stride=112, masks='data/region_masks/city'),
    'coco_object': dict(prob_thd=0.25, masks='data/region_masks/coco'),
    'coco_stuff164k': dict(masks='data/region_masks/coco'),
    'context59': dict(masks='data/region_masks/context'),
    'context60': dict(prob_thd=0.15, masks='data/region_masks/context'),
    'voc20': dict(masks='data/region_masks/voc'),
    'voc21': dict(prob_thd=0.2, masks='data/region_masks/voc'),
}
# sha256 (16 hex digits) of CorrCLIPv1/configs/cls_<name>.txt
CLASS_FILES = {'ade20k': ('ade20k', '09ac710c57fc6591'), 'cityscapes': ('city_scapes', '8dba4f1e3eeefc37'),
               'coco_object': ('coco_object', '6d0d48b097983623'), 'coco_stuff164k': ('coco_stuff', 'c39fe2dd982fa5da'),
               'context59': ('context59', '106c0f1f2c9c4fac'), 'context60': ('context60', '5666dc439704e29a'),
               'voc20': ('voc20', 'dd9755431039265b'), 'voc21': ('voc21', '9ea46c7f20847255')}
# VisionTransformer.forward's constants (ALPHA, BETA, TAU, EPS, MIN_SAMPLES; NUM_SPATIAL by depth)
OFFICIAL_METHOD = dict(type='corrclip', alpha=1.0, beta=0.5, tau=4.0, eps=0.2, min_samples=1, num_spatial=None,
                       merge_regions=True)


def corrclip_settings(cfg) -> dict:
    """Our config as the official segmentor's keywords."""
    model = segmentor_settings(cfg)
    method = method_settings(model)
    no_official_counterpart(method == OFFICIAL_METHOD, f'model.method={method}')
    no_official_counterpart(model['pamr_steps'] == 0, 'pamr_steps')
    no_official_counterpart(model['vfm']['type'] == 'dino_vitb8', f"model.vfm.type={model['vfm']['type']}")
    win = windows(model)
    return dict(prob_thd=float(model['prob_thd']), logit_scale=float(model['logit_scale']),
                slide_crop=win['slide_crop'], slide_stride=win['slide_stride'])


def test_every_benchmark_of_the_official_repository_has_a_config():
    assert sorted(load_config(path).benchmark for path in CONFIGS) == list(BENCHMARKS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = load_config(path)
    model = segmentor_settings(cfg)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    masks = model['region_masks']
    ours = dict(corrclip_settings(cfg), resize=resize_short_side(cfg), vfm=model['vfm']['type'],
                class_file=(osp.basename(model['class_names']), hashlib.sha256(raw).hexdigest()[:16]),
                separator=model['class_name_separator'], templates=model['templates'],
                slide_pad=int(model['slide_pad']), clip_arch=model['arch'], clip_path=model['clip_path'],
                mask_generator=masks['type'], masks=masks['root'])
    name, digest = CLASS_FILES[cfg.benchmark]
    official_settings = {**OFFICIAL_DEFAULTS, **OFFICIAL_PER_BENCHMARK[cfg.benchmark],
                         'class_file': (f'{name}.txt', digest)}
    assert ours == official_settings
    # SAM2 on the fly: set_mask_generator's settings
    sam2 = {k: masks[k] for k in ('config', 'points_per_side', 'pred_iou_thresh', 'stability_score_thresh',
                                  'multimask_output')}
    assert sam2 == dict(config='sam2_hiera_l.yaml', points_per_side=8, pred_iou_thresh=0.4,
                        stability_score_thresh=0.4, multimask_output=False)


def test_translation_refuses_settings_without_official_counterpart():
    cfg = load_config(osp.join(REPO, 'configs/corrclip/voc21.py'), {'model.method.tau': 2.0})
    with pytest.raises(ValueError, match='tau'):
        corrclip_settings(cfg)



@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 12-block and a 6-block random 2-head CLIP, a tiny random DINO ViT-B/8 (official layout)."""
    from sclip.models.vfm.testing import write_official_checkpoint
    folder = tmp_path_factory.mktemp('corrclip_weights')
    clip, arch = write_multihead_checkpoint(str(folder))
    clip6, arch6 = write_multihead_checkpoint(str(folder), layers=6)
    return dict(clip=clip, arch=arch, clip6=clip6, arch6=arch6,
                dino=write_official_checkpoint(str(folder / 'dino.pt'), 'dino_vitb8', tiny=True))


@pytest.fixture(scope='module')
def class_files(tmp_path_factory):
    """``path -> path``: the first 10 lines of a real class file, two names at most per line."""
    folder = tmp_path_factory.mktemp('corrclip_class_files')

    def reduced(path: str) -> str:
        target = folder / osp.basename(path)
        if not target.exists():
            with open(path) as f:
                lines = f.read().splitlines()[:10]
            target.write_text('\n'.join('; '.join(line.split('; ')[:2]) for line in lines) + '\n')
        return str(target)
    return reduced


def region_mask(original) -> np.ndarray:
    """Fixed region masks at the original size: a 3 × 4 grid of regions numbered 1.., with the
    top-left one and a band across the middle unsegmented (0)."""
    h, w = original
    rows = np.minimum(np.arange(h) * 3 // h, 2)[:, None]
    cols = np.minimum(np.arange(w) * 4 // w, 3)[None, :]
    mask = rows * 4 + cols + 1
    mask[(rows == 0) & (cols == 0)] = 0
    mask[h // 2 - h // 12:h // 2, :] = 0
    return mask.astype(np.int64)


def inputs(cfg, folder):
    """A structured image, its smaller original size, and its masks written as ``<folder>/image.npz``:
    (crop, crop + 14) on every other benchmark (two windows, the second shifted back inside), else
    (crop, crop - 26) (one window thinner than the crop, padded: image zeros, mask 10000)."""
    crop = windows(segmentor_settings(cfg))['slide_crop']
    size = (crop, crop + 14) if BENCHMARKS.index(cfg.benchmark) % 2 == 0 else (crop, crop - 26)
    original = (size[0] * 3 // 5 + 1, size[1] * 3 // 5 + 2)
    mask = region_mask(original)
    np.savez(str(folder / 'image.npz'), instance_mask=mask)
    return structured_image(size, seed=5), original, torch.from_numpy(mask)


def build_ours(path, options, **overrides):
    from mmseg.registry import MODELS
    cfg = load_config(path, dict(options, **overrides))
    return MODELS.build(cfg.model).eval()


def run_official(model, cfg, raw, mask, original, clusters=None, **overrides):
    def dbscan(distances, eps, min_samples):
        labels = official.sklearn_dbscan(distances, eps, min_samples)
        if clusters is not None:
            clusters.append(labels)
        return labels
    settings = dict(corrclip_settings(cfg), **overrides)
    clip = model.text_model
    clip.visual = model.backbone.visual
    try:
        return official.predict(clip, model.class_embeddings, model.names.query_class, official_input(raw), mask,
                                original, dino=model.backbone.method.vfm, return_logits=True, dbscan=dbscan,
                                **settings)
    finally:
        clip.visual = None


def options_for(cfg, weights, class_files, folder, depth=12):
    settings = segmentor_settings(cfg)
    suffix = '' if depth == 12 else str(depth)
    return {'model.clip_path': weights[f'clip{suffix}'], 'model.arch': weights[f'arch{suffix}'],
            'model.precision': 'fp32', 'model.text_cache_dir': False, 'model.vfm.checkpoint': weights['dino'],
            'model.vfm.tiny': True, 'model.region_masks.root': str(folder),
            'model.class_names': class_files(settings['class_names']), 'model.fused_attention': False,
            'model.slide_mode': 'simple'}


def ours_on(model, raw, original, folder):
    """Labels (1, h, w) of our ``test_step`` and the logits it post-processed (Q, h, w); the image
    file is ``<folder>/image.jpg`` (its masks ``<folder>/image.npz``)."""
    from mmseg.structures import SegDataSample
    captured = []
    post_process = model.set_prediction

    def capture(image, sample, size, logits):
        captured.append(logits)
        return post_process(image, sample, size, logits)
    model.set_prediction = capture
    sample = SegDataSample(metainfo=dict(ori_shape=original, img_shape=tuple(raw.shape[-2:]),
                                         img_path=str(folder / 'image.jpg')))
    try:
        with torch.no_grad():
            out = model.test_step(dict(inputs=[raw], data_samples=[sample]))
    finally:
        del model.set_prediction
    return out[0].pred_sem_seg.data, captured[-1]


def discriminating(labels) -> bool:
    count, top = label_spread(labels)
    return count >= 2 and top <= 0.9


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, weights, class_files, tmp_path):
    """The config's own prob_thd and, where it has one, ``model.prob_thd=0``."""
    cfg = load_config(path)
    raw, original, mask = inputs(cfg, tmp_path)
    options = options_for(cfg, weights, class_files, tmp_path)
    model = build_ours(path, options)
    assert model.backbone.vit.num_heads == 2
    check_class_parsing('proxyclip', model)  # the same '; ' get_cls_idx
    ours, our_logits = ours_on(model, raw, original, tmp_path)
    clusters = []
    official_labels, official_logits = run_official(model, cfg, raw, mask, original, clusters)
    assert ours.shape == official_labels.shape == (1, *original)
    assert discriminating(official_labels)
    assert torch.equal(ours, official_labels)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)
    # the merging is exercised: some regions merged, and not all into one cluster
    assert any(len(set(c.tolist())) < len(c) for c in clusters)
    assert any(len(set(c.tolist())) > 1 for c in clusters)
    if segmentor_settings(cfg)['prob_thd'] > 0:
        at_0 = build_ours(path, dict(options, **{'model.prob_thd': 0.0}))
        ours_at_0, _ = ours_on(at_0, raw, original, tmp_path)
        official_at_0, _ = run_official(model, cfg, raw, mask, original, prob_thd=0.0)
        assert discriminating(official_at_0)
        assert torch.equal(ours_at_0, official_at_0)


def test_another_depth_averages_its_official_spatial_blocks(weights, class_files, tmp_path):
    """A 6-block CLIP: the official ``NUM_SPATIAL = num_layers - 4`` (blocks 3-4)."""
    path = osp.join(REPO, 'configs/corrclip/voc20.py')
    cfg = load_config(path)
    raw, original, mask = inputs(cfg, tmp_path)
    model = build_ours(path, options_for(cfg, weights, class_files, tmp_path, depth=6))
    assert model.backbone.method.num_spatial == 2
    ours, our_logits = ours_on(model, raw, original, tmp_path)
    official_labels, official_logits = run_official(model, cfg, raw, mask, original)
    assert torch.equal(ours, official_labels)
    assert torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0)


def test_the_comparison_sees_a_wrong_corrclip(weights, class_files, tmp_path, monkeypatch):
    from sclip.models.methods import corrclip as ours_module
    from sclip.models import segmentor as segmentor_module
    path = osp.join(REPO, 'configs/corrclip/voc21.py')  # padded windows (see ``inputs``)
    cfg = load_config(path)
    raw, original, mask = inputs(cfg, tmp_path)
    options = dict(options_for(cfg, weights, class_files, tmp_path), **{'model.prob_thd': 0.0})
    model = build_ours(path, options)
    official_labels, _ = run_official(model, cfg, raw, mask, original, prob_thd=0.0)
    assert torch.equal(ours_on(model, raw, original, tmp_path)[0], official_labels)

    def differs(model) -> bool:
        return not torch.equal(ours_on(model, raw, original, tmp_path)[0], official_labels)

    # no map correction
    with monkeypatch.context() as patch:
        patch.setattr(segmentor_module.SCLIPSegmentor, 'correct_by_regions', lambda self, sample, labels: labels)
        assert differs(model)
    # no mask merging
    assert differs(build_ours(path, dict(options, **{'model.method.merge_regions': False})))
    # the first region's tokens attend only inside it (official "method 2")
    with monkeypatch.context() as patch:
        def method_2(similarity, regions, tau):
            allowed = regions[:, None] == regions[None, :]
            return (similarity.masked_fill(~allowed, float('-inf')) * tau).softmax(dim=-1)
        patch.setattr(ours_module, 'scope_attention', method_2)
        assert differs(model)
    # the padded pixels' mask value 0 (the unsegmented pixels') instead of 10000
    with monkeypatch.context() as patch:
        import sclip.models.region_masks as region_masks
        patch.setattr(region_masks, 'PAD_VALUE', 0)
        assert differs(model)
