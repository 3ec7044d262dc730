"""Every CASS config predicts what the official CASS code predicts (tests/official/cass.py).

1. Settings: each configs/cass/<benchmark>.py, translated into the official ``CASS_segmentor``
   keywords (the benchmark name included: the official segmentor reads it from the config's
   file name), equals MICV-yonsei/CASS @ 228ecdd's base_config.py + cfg_<benchmark>.py (written
   out below), with the class files, resize and DINO the oracle hard-codes.
2. Labels and logits: our ``test_step`` (fp32, one window at a time) against the oracle on a
   random 3-block CLIP with 2 heads and a tiny random DINO ViT-B/8 of the same width in its
   official layout, on a synthetic image of two windows (the whole image for VOC21); every
   config with its own ``prob_thd`` and with ``model.prob_thd=0``; labels equal, logits to
   1e-5. Both sides draw the randomised SVD from a stream seeded with 42. The class files are
   the first 5 lines of the real ones (3 names at most per line); the oracle's maps hold several
   labels, none over 90 % of the pixels.
3. Scale-up (``model.method.presence_clip``, official ``scale_up=True``): a random CLIP of patch 14
   and another width as the second CLIP, on the whole-image path (VOC21), the window's CLS
   (Cityscapes) and the image's while sliding (Context59), against the oracle with it as
   ``cls_net``: labels equal, logits to 1e-5, and unlike the labels without it.
4. Mutations: the Hungarian matching dropped (head i with head i), the class clustering dropped
   (every class its own cluster), the singular-value stretch dropped, the window's CLS instead of
   the image's: each fails the comparison.
"""
from __future__ import annotations

import hashlib
import os.path as osp
from typing import Tuple

import numpy as np
import pytest
import torch

from helpers import REPO, method_configs, write_openai_checkpoint
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import cass, common
from test_method_fidelity import (BENCHMARKS, CLASS_FILE, CLS, COMMON, build, load_config, method_settings,
                                  no_official_counterpart, official_input, post_processing, resize_short_side,
                                  run_ours, segmentor_settings, windows)

CONFIGS = method_configs('cass')
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]

# CASS_segmentor's constructor defaults with configs/base_config.py on top, eval_all.sh's --pamr off
OFFICIAL_DEFAULTS = dict(dino_type='dino_vitb8', vfm='dino_vitb8', prob_thd=0.0, logit_scale=40.0, slide_crop=224,
                         slide_stride=112, pamr_steps=0, resize=336, separator=', ', slide_pad=0,
                         whole_image_upsample='via_input', gaussian_std=5.0, scale_factor=10.0, k_eigen=20,
                         initial_q=10, top_patches=2, seed=42)
OFFICIAL_PER_BENCHMARK = {
    'ade20k': dict(dataset='ade20k', global_semantics_weight=0.3, mean_vector_weight=0.05, h_threshold=0.06),
    'cityscapes': dict(dataset='city_scapes', global_semantics_weight=0.1, mean_vector_weight=0.03,
                       h_threshold=0.14, resize=560),
    'coco_object': dict(dataset='coco_object', global_semantics_weight=0.25, mean_vector_weight=0.01,
                        h_threshold=0.10, prob_thd=0.1),
    'coco_stuff164k': dict(dataset='coco_stuff164k', global_semantics_weight=0.2, mean_vector_weight=0.02,
                           h_threshold=0.02),
    'context59': dict(dataset='context59', global_semantics_weight=0.25, mean_vector_weight=0.04, h_threshold=0.09),
    'context60': dict(dataset='context60', global_semantics_weight=0.25, mean_vector_weight=0.04, h_threshold=0.09,
                      prob_thd=0.1),
    'voc20': dict(dataset='voc20', global_semantics_weight=0.4, mean_vector_weight=0.02, h_threshold=0.10),
    'voc21': dict(dataset='voc21', global_semantics_weight=0.1, mean_vector_weight=0.03, h_threshold=0.10,
                  prob_thd=0.1, slide_crop=0),
}
# what the official code does with the benchmark name: (stretch the singular values, whose CLS)
BY_NAME = {'voc20': (False, 'image'), 'city_scapes': (False, 'window')}
DINO_TYPES = {'dino_vitb8': 'dino_vitb8', 'dinov2_vitb14_reg': 'dinov2_vitb14'}


def cass_settings(cfg) -> dict:
    """Our config as the official segmentor's keywords (the benchmark as a file name)."""
    model = segmentor_settings(cfg)
    method = method_settings(model)
    no_official_counterpart(method['type'] == 'cass', f"model.method.type={method['type']}")
    no_official_counterpart(model['pamr_steps'] == 0, 'pamr_steps')
    vfm = model['vfm']['type']
    no_official_counterpart(vfm in DINO_TYPES, f'model.vfm.type={vfm}')
    for key, value in dict(sigma=5.0, scale_factor=10.0, k_eigen=20, rank=10, top_patches=2, svd_seed=42).items():
        no_official_counterpart(method[key] == value, f'model.method.{key}={method[key]}')
    benchmark = 'coco_stuff164k' if cfg.benchmark == 'coco_stuff10k' else cfg.benchmark
    name = CLASS_FILE[benchmark] if benchmark == 'cityscapes' else benchmark
    no_official_counterpart(BY_NAME.get(name, (True, 'image')) ==
                            (method['scale_singular_values'], method['global_semantics']),
                            f"scale_singular_values={method['scale_singular_values']} with global_semantics="
                            f"{method['global_semantics']!r} on {benchmark}")
    return dict(dino_type=DINO_TYPES[vfm], dataset=f'./configs/cfg_{name}.py',
                **{key: float(method[key]) for key in ('global_semantics_weight', 'mean_vector_weight', 'h_threshold')},
                **post_processing(model, area=False), **windows(model))


def test_every_benchmark_has_a_config():
    assert sorted(load_config(path).benchmark for path in CONFIGS) == list(BENCHMARKS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = load_config(path)
    model = segmentor_settings(cfg)
    method = method_settings(model)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    ours = dict(cass_settings(cfg), resize=resize_short_side(cfg), vfm=model['vfm']['type'],
                class_file=(hashlib.sha256(raw).hexdigest()[:16], raw.decode().splitlines()[0]),
                separator=model['class_name_separator'], templates=model['templates'],
                slide_pad=int(model['slide_pad']), clip_arch=model['arch'], clip_path=model['clip_path'],
                pamr_steps=model['pamr_steps'], whole_image_upsample=model['whole_image_upsample'],
                gaussian_std=method['sigma'], scale_factor=method['scale_factor'], k_eigen=method['k_eigen'],
                initial_q=method['rank'], top_patches=method['top_patches'], seed=method['svd_seed'])
    benchmark = 'coco_stuff164k' if cfg.benchmark == 'coco_stuff10k' else cfg.benchmark
    official = {**COMMON, **OFFICIAL_DEFAULTS, **OFFICIAL_PER_BENCHMARK[benchmark]}
    official['dataset'] = f"./configs/cfg_{official['dataset']}.py"
    official['class_file'] = CLS[CLASS_FILE[benchmark]]
    if official['slide_crop'] == 0:
        del official['slide_stride']
    assert ours == official


def test_translation_refuses_settings_without_official_counterpart():
    cfg = load_config(osp.join(REPO, 'configs/cass/voc20.py'), {'model.method.scale_singular_values': True})
    with pytest.raises(ValueError, match='scale_singular_values=True'):
        cass_settings(cfg)
    cfg = load_config(osp.join(REPO, 'configs/cass/ade20k.py'), {'model.method.rank': 15})
    with pytest.raises(ValueError, match='rank=15'):
        cass_settings(cfg)



DINO_WIDTH = {'width': 128}  # CLIP's width: CASS lays DINO's channels out as CLIP's heads


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 3-block random CLIP (width 128: 2 heads of 64) and a tiny random DINO ViT-B/8 of width
    128 (2 heads), official layouts."""
    from sclip.models.vfm.testing import write_official_checkpoint
    folder = tmp_path_factory.mktemp('cass_weights')
    return dict(clip=write_openai_checkpoint(str(folder / 'clip.pt'), width=128, layers=3),
                dino=write_official_checkpoint(str(folder / 'dino.pt'), 'dino_vitb8', tiny=True,
                                               config_overrides=DINO_WIDTH))


@pytest.fixture(scope='module')
def class_files(tmp_path_factory):
    """``path -> path``: the first 5 lines of a real class file, 3 names at most per line."""
    folder = tmp_path_factory.mktemp('cass_class_files')

    def reduced(path: str) -> str:
        target = folder / osp.basename(path)
        if not target.exists():
            with open(path) as f:
                lines = f.read().splitlines()[:5]
            target.write_text('\n'.join(', '.join(line.split(', ')[:3]) for line in lines) + '\n')
        return str(target)
    return reduced


def window_image(cfg) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Two windows of the config's crop (crop × (crop + 14), portrait on every other benchmark), or
    a 224 × 238 whole image; and a smaller original size it is resized back to."""
    crop = windows(segmentor_settings(cfg))['slide_crop'] or 224
    size, original = (crop, crop + 14), (crop * 3 // 5 + 1, (crop + 14) * 3 // 5 + 2)
    if BENCHMARKS.index(cfg.benchmark) % 2 == 1:
        size, original = size[::-1], original[::-1]
    return grid_image(size), original


def grid_image(size, seed: int = 0) -> torch.Tensor:
    """A uint8 BGR image (3, H, W): a 3 × 3 grid of random flat colours plus noise in [0, 32)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 32, (3, *size), dtype=torch.uint8, generator=generator)
    h, w = size
    for i in range(3):
        for j in range(3):
            colour = torch.randint(0, 224, (3, 1, 1), dtype=torch.uint8, generator=generator)
            image[:, i * h // 3:(i + 1) * h // 3, j * w // 3:(j + 1) * w // 3] += colour
    return image


def dino_qkv(vfm):
    """The network the official ``Dino*SelfAttention`` wraps: its last block's qkv
    (3, B, heads, tokens, d), the official ``Attention.forward``'s reshape, on our VFM's blocks."""
    def run(img):
        x, _ = vfm.embed(img)
        for blk in vfm.vit.blocks[:-1]:
            x = vfm.block(blk, x)
        last = vfm.vit.blocks[-1]
        x = last.norm1(x)
        B, N, C = x.shape
        return last.attn.qkv(x).reshape(B, N, 3, last.attn.num_heads, C // last.attn.num_heads).permute(2, 0, 3, 1, 4)
    return run


def run_official(model, cfg, raw, original, scale_up: bool = False):
    settings = dict(cass_settings(cfg), dino_qkv=dino_qkv(model.backbone.method.vfm))
    clip, large = model.text_model, model.presence_text_model
    clip.visual = model.backbone.visual
    if scale_up:  # the official clip.load('ViT-L/14') and its _encode_text_features of the queries
        large.visual = model.backbone.method.presence_vit.visual
        settings.update(cls_net=large, cls_query_features=model.text_embeddings['presence'])
    try:
        return cass.predict(clip, model.class_embeddings, model.names.query_class, official_input(raw), original,
                            return_logits=True, **settings)
    finally:
        clip.visual = None
        if scale_up:
            large.visual = None


def discriminating(labels: torch.Tensor) -> bool:
    """Several labels, none over 90 % of the pixels."""
    counts = torch.bincount(labels.flatten())
    return bool((counts > 0).sum() >= 2 and counts.max() <= 0.9 * labels.numel())


def options(cfg, weights, class_files) -> dict:
    return {'model.clip_path': weights['clip'], 'model.precision': 'fp32', 'model.text_cache_dir': False,
            'model.vfm.checkpoint': weights['dino'], 'model.vfm.tiny': True,
            'model.vfm.config_overrides': DINO_WIDTH,
            'model.class_names': class_files(segmentor_settings(cfg)['class_names'])}


def agrees(ours, our_logits, official, official_logits) -> bool:
    return bool(torch.equal(ours, official) and torch.allclose(our_logits, official_logits[0], atol=1e-5, rtol=0))


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, weights, class_files):
    """The config's own prob_thd and, where it has one, ``model.prob_thd=0`` (the official labels
    at 0 are the official post-processing of the same official logits)."""
    cfg = load_config(path)
    settings = segmentor_settings(cfg)
    model = build(path, options(cfg, weights, class_files), fused_attention=False, slide_mode='simple')
    assert model.backbone.vit.num_heads == 2
    assert (model.names.queries, model.names.query_class) == common.get_cls_idx(model.names.path, ', ')
    raw, original = window_image(cfg)
    ours, our_logits = run_ours(model, raw, original)
    official, official_logits = run_official(model, cfg, raw, original)
    assert ours.shape == official.shape == (1, *original)
    assert discriminating(official)
    assert agrees(ours, our_logits, official, official_logits)
    if settings['prob_thd'] > 0:
        unthresholded = build(path, dict(options(cfg, weights, class_files), **{'model.prob_thd': 0.0}),
                              fused_attention=False, slide_mode='simple')
        ours_at_0, _ = run_ours(unthresholded, raw, original)
        official_at_0 = common.postprocess_clearclip(official_logits, model.query_class, settings['logit_scale'],
                                                     0.0)
        assert discriminating(official_at_0)
        assert torch.equal(ours_at_0, official_at_0)


def identity_assignment(costs):
    return np.arange(costs.shape[0]), np.arange(costs.shape[1])


def singletons(embeddings, threshold):
    return np.arange(embeddings.shape[0])


MUTATIONS = {
    'hungarian_dropped': ('ade20k', dict(), ('scipy.optimize.linear_sum_assignment', identity_assignment)),
    'clustering_dropped': ('context59', dict(), ('sclip.models.methods.cass.class_clusters', singletons)),
    'stretch_dropped': ('ade20k', {'model.method.scale_singular_values': False}, None),
    'window_cls': ('coco_stuff164k', {'model.method.global_semantics': 'window'}, None),
}


@pytest.mark.parametrize('mutation', sorted(MUTATIONS))
def test_a_mutated_cass_fails_the_comparison(mutation, weights, class_files, monkeypatch):
    benchmark, overrides, patch = MUTATIONS[mutation]
    path = osp.join(REPO, f'configs/cass/{benchmark}.py')
    cfg = load_config(path)
    model = build(path, options(cfg, weights, class_files), fused_attention=False, slide_mode='simple')
    raw, original = window_image(cfg)
    official, official_logits = run_official(model, cfg, raw, original)
    mutated = build(path, dict(options(cfg, weights, class_files), **overrides), fused_attention=False,
                    slide_mode='simple')
    if patch:
        monkeypatch.setattr(*patch)
    ours, our_logits = run_ours(mutated, raw, original)
    assert not agrees(ours, our_logits, official, official_logits)


def official_sequence(model, cfg, images, **overrides):
    """The official labels of several images run one after another after one seed (mmengine's run:
    the randomised SVD's stream goes on from image to image)."""
    settings = dict(cass_settings(cfg), dino_qkv=dino_qkv(model.backbone.method.vfm), **overrides)
    clip = model.text_model
    clip.visual = model.backbone.visual
    try:
        segmentor = cass.OfficialCASS(clip, model.class_embeddings, model.names.query_class, **settings)
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(42)
            return [segmentor.predict(official_input(raw), original, return_logits=True) for raw, original in images]
    finally:
        clip.visual = None


def test_the_svd_stream_goes_on_from_image_to_image(weights, class_files):
    """Two images through one model equal the official run of the two in order; the second alone
    (a fresh stream) is what the official code gives it first, not second."""
    path = osp.join(REPO, 'configs/cass/voc21.py')
    cfg = load_config(path)
    model = build(path, options(cfg, weights, class_files), fused_attention=False, slide_mode='simple')
    first = window_image(cfg)
    second = (grid_image(first[0].shape[-2:], seed=1), first[1])
    official = official_sequence(model, cfg, [first, second])
    for (raw, original), (labels, logits) in zip([first, second], official):
        ours, our_logits = run_ours(model, raw, original)
        assert agrees(ours, our_logits, labels, logits)
    fresh = build(path, options(cfg, weights, class_files), fused_attention=False, slide_mode='simple')
    ours, our_logits = run_ours(fresh, *second)
    assert not torch.allclose(our_logits, official[1][1][0], atol=1e-5, rtol=0)


def test_dinov2_alternative_predicts_the_official_labels(weights, class_files, tmp_path):
    """``model.vfm.type=dinov2_vitb14_reg`` (official ``dino_type='dinov2_vitb14'``, its reg4
    checkpoint) against the oracle: the window's picture resized to 518², 4 registers dropped."""
    from sclip.models.vfm.testing import write_official_checkpoint
    path = osp.join(REPO, 'configs/cass/voc21.py')
    dinov2 = write_official_checkpoint(str(tmp_path / 'dinov2.pth'), 'dinov2_vitb14_reg', tiny=True,
                                       config_overrides=DINO_WIDTH)
    cfg = load_config(path, {'model.vfm.type': 'dinov2_vitb14_reg'})
    model = build(path, dict(options(cfg, weights, class_files), **{'model.vfm.type': 'dinov2_vitb14_reg',
                                                                     'model.vfm.checkpoint': dinov2}),
                  fused_attention=False, slide_mode='simple')
    assert model.backbone.method.vfm.spec.registers == 4
    raw, original = window_image(cfg)
    ours, our_logits = run_ours(model, raw, original)
    official, official_logits = run_official(model, cfg, raw, original)
    assert discriminating(official)
    assert agrees(ours, our_logits, official, official_logits)


def test_batched_windows_equal_one_at_a_time(weights, class_files):
    """The fast path (4 windows a pass, fused attention) gives the labels of the simple one, the
    stream restarted for each (the windows go through the SVD in the same order)."""
    path = osp.join(REPO, 'configs/cass/coco_stuff164k.py')
    cfg = load_config(path)
    model = build(path, options(cfg, weights, class_files), slide_mode='batched', window_batch_size=4,
                  fused_attention=True)
    raw = grid_image((230, 340), seed=2)  # 6 windows: two passes of 4 and 2
    fast, fast_logits = run_ours(model, raw, (200, 320))
    model.backbone.method._rng_states.clear()
    model.slide_mode, model.window_batch_size, model.backbone.fused = 'simple', 1, False
    simple, simple_logits = run_ours(model, raw, (200, 320))
    assert torch.allclose(fast_logits, simple_logits, atol=1e-4, rtol=0)
    assert (fast == simple).float().mean() >= 0.9999


def test_refuses_a_foundation_model_it_cannot_read(weights, class_files, tmp_path):
    """A DINO narrower than CLIP (its keys cannot be laid out as CLIP's heads), an unknown setting."""
    from sclip.errors import SCLIPError
    from sclip.models.vfm.testing import write_official_checkpoint
    path = osp.join(REPO, 'configs/cass/voc20.py')
    cfg = load_config(path)
    narrow = write_official_checkpoint(str(tmp_path / 'dino64.pth'), 'dino_vitb8', tiny=True)
    model = build(path, dict(options(cfg, weights, class_files), **{'model.vfm.config_overrides': None,
                                                                     'model.vfm.checkpoint': narrow}),
                  fused_attention=False, slide_mode='simple')
    with pytest.raises(SCLIPError, match=r"^model.vfm: CASS lays DINO's keys \(2×32 channels\) out as CLIP's heads"):
        run_ours(model, *window_image(cfg))
    with pytest.raises(SCLIPError, match="global_semantics='cls' must be 'image' or 'window'"):
        build(path, dict(options(cfg, weights, class_files), **{'model.method.global_semantics': 'cls'}))


def test_cells_of_a_sweep_share_the_dino_keys(weights, class_files):
    """Two CASS cells on the same CLIP and DINO (a sweep's ModelBuilder shares both) reading the
    same images through one ``shared`` dict: DINO runs once per chunk of windows, and each cell's
    logits are those of its run alone."""
    path = osp.join(REPO, 'configs/cass/voc20.py')
    assert_sweep_cells_equal_alone(path, options(load_config(path), weights, class_files), (224, 238), (150, 160),
                                   seed=3)


def assert_sweep_cells_equal_alone(path, options_, image_shape, original, seed):
    """Two cells of ``path`` (the second with another ``h_threshold``) sharing CLIP and DINO as the
    sweep's ModelBuilder shares them: one DINO pass through a ``shared`` dict serves both, and each
    cell's logits equal those of its run alone."""
    first = build(path, options_)
    second = build(path, dict(options_, **{'model.method.h_threshold': 0.5}))
    second.backbone.vit.visual, second.text_model = first.backbone.vit.visual, first.text_model
    second.backbone.method.vfm = first.backbone.method.vfm
    image = official_input(grid_image(image_shape, seed=seed))[0]
    alone = [model.query_logits([image], [original])[0] for model in (first, second)]
    for model in (first, second):
        model.backbone.method._rng_states.clear()
    vfm, calls = first.backbone.method.vfm, []
    keys = vfm.last_block_keys
    vfm.last_block_keys = lambda images: calls.append(images.shape) or keys(images)
    shared = {}
    together = [model.query_logits([image], [original], shared)[0] for model in (first, second)]
    assert len(calls) == 1  # one pass: the two cells read the same trunk
    assert not torch.equal(alone[0], alone[1])
    for a, b in zip(alone, together):
        assert torch.equal(a, b)


@pytest.fixture(scope='module')
def presence_weights(tmp_path_factory):
    """The scale-up's second CLIP in miniature: random, patch 14, width 192, 2 blocks, embedding 48."""
    folder = tmp_path_factory.mktemp('cass_presence')
    return write_openai_checkpoint(str(folder / 'large.pt'), patch_size=14, width=192, layers=2, embed_dim=48,
                                   seed=1)


def scale_up_options(cfg, weights, class_files, presence_weights) -> dict:
    return dict(options(cfg, weights, class_files),
                **{'model.method.presence_clip': dict(arch='ViT-L-14', clip_path=presence_weights)})


@pytest.mark.parametrize('name', ['voc21', 'cityscapes', 'context59'])
def test_scale_up_predicts_the_official_labels(name, weights, class_files, presence_weights):
    """VOC21: the whole image (the second CLIP's CLS of it); Cityscapes: each window's own;
    Context59: the whole image's while sliding. Its own query embeddings (48 wide, not B/16's 32)."""
    path = osp.join(REPO, f'configs/cass/{name}.py')
    cfg = load_config(path)
    model = build(path, scale_up_options(cfg, weights, class_files, presence_weights), fused_attention=False,
                  slide_mode='simple')
    assert model.backbone.method.presence_vit.patch_size == (14, 14)
    assert model.text_side().presence.shape == (len(model.names.queries), 48)
    raw, original = window_image(cfg)
    ours, our_logits = run_ours(model, raw, original)
    official, official_logits = run_official(model, cfg, raw, original, scale_up=True)
    assert discriminating(official)
    assert agrees(ours, our_logits, official, official_logits)
    plain, plain_logits = run_official(model, cfg, raw, original)
    assert not torch.allclose(plain_logits, official_logits, atol=1e-3, rtol=0)


def test_scale_up_is_one_line_on_a_bad_second_clip(weights, class_files, tmp_path):
    """A missing file, a key it does not have, an unset arch: one line naming the key."""
    from sclip.errors import SCLIPError
    path = osp.join(REPO, 'configs/cass/voc20.py')
    cfg = load_config(path)
    missing = str(tmp_path / 'ViT-L-14.pt')
    for spec, message in ((dict(arch='ViT-L-14', clip_path=missing),
                           f"^model.method.presence_clip.clip_path='{missing}': file not found"),
                          (dict(arch='ViT-L-14', clip_pth='openai'),
                           r"^model.method.presence_clip.clip_pth is not a setting; did you mean 'clip_path'\?"),
                          (dict(clip_path='openai'), '^model.method.presence_clip.arch is not set'),
                          ('ViT-L-14', r"^model.method.presence_clip='ViT-L-14' must be a dict or None")):
        with pytest.raises(SCLIPError, match=message) as error:
            build(path, dict(options(cfg, weights, class_files), **{'model.method.presence_clip': spec}))
        assert '\n' not in str(error.value)


def test_scale_up_clip_is_in_the_result_identity(presence_weights, tmp_path):
    """The second CLIP's weights are named by content (a copy elsewhere: the same identity; other
    weights: another), and a config without it keeps its identity as before."""
    import shutil

    from sclip import identity
    path = osp.join(REPO, 'configs/cass/voc20.py')
    copy = str(tmp_path / 'copy.pt')
    shutil.copy(presence_weights, copy)
    other = write_openai_checkpoint(str(tmp_path / 'other.pt'), patch_size=14, width=192, layers=2, embed_dim=48,
                                    seed=2)
    key = 'model.method.presence_clip.clip_path'

    def run_identity(clip_path):
        spec = dict(arch='ViT-L-14', clip_path=clip_path)
        return identity.run_identity(load_config(path, {'model.method.presence_clip': spec}))
    first, moved, changed = run_identity(presence_weights), run_identity(copy), run_identity(other)
    assert first['checkpoints'][key]['sha256'] == moved['checkpoints'][key]['sha256']
    assert identity.fingerprint(first) == identity.fingerprint(moved)
    assert identity.fingerprint(first) != identity.fingerprint(changed)
    assert run_identity('openai')['checkpoints'][key] == {'source': 'openai', 'sha256': None}
    assert 'checkpoints' not in identity.run_identity(load_config(path))


def test_scale_up_cells_of_a_sweep_equal_alone(weights, class_files, presence_weights):
    """Two scale-up cells reading the same images through one ``shared`` dict (a sweep's pass):
    each cell's logits are those of its run alone (each second CLIP's CLS memoised apart)."""
    path = osp.join(REPO, 'configs/cass/context59.py')
    options_ = scale_up_options(load_config(path), weights, class_files, presence_weights)
    assert_sweep_cells_equal_alone(path, options_, (224, 340), (150, 230), seed=4)
