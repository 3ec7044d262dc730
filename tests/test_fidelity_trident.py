"""Every Trident config predicts what the official Trident code predicts (tests/official/trident.py).

1. Settings: each configs/trident/<benchmark>.py, translated into the official ``Trident``
   keywords, equals YuHengsss/Trident @ a93b346's base_config.py + cfg_<benchmark>.py (written
   out below), with its class files (byte for byte ProxyCLIP's / ours), resize and models.
2. Labels and logits: our ``test_step`` (fp32) against the oracle on a random 3-block CLIP with
   2 heads, a tiny random DINO ViT-B/16 and a tiny random SAM ViT-B (official layouts), on a
   synthetic picture written to a file (SAM reads the original file, officially), resized to the
   benchmark's short side (+14 on the long side, so that the image is first resized to patch
   multiples as officially); every config with its own ``prob_thd`` and with
   ``model.prob_thd=0``; labels equal pixel for pixel, logits to 1e-5. The oracle's maps hold
   several labels, none over 90 % of the pixels (asserted).
3. Mutations: a changed official detail (the per-window mean, the SAM threshold's factor, the
   halves of Cityscapes, SAM on the pipeline's image instead of the file) fails the comparison.
4. Memory: the largest tensor our SAM correlation holds is smaller than the official one's.
5. SAM's refinement (``model.method.sam_refine=True``, official ``--sam_refine``): its settings
   are the official ones per benchmark; every config refined predicts the official refined
   labels pixel for pixel and class scores to 1e-5, where the refinement changes the labels;
   keeping every SAM mask or dropping the mask prompt fails the comparison; its prompt encoder
   and mask decoder are the checkpoint's, an encoder-only checkpoint is one line.
"""
from __future__ import annotations

import glob
import hashlib
import os.path as osp
from typing import Tuple

import cv2
import numpy as np
import pytest
import torch

from helpers import REPO, write_openai_checkpoint
from official import common, trident
from test_fidelity_fsa import class_files, discriminating, one_thread  # noqa: F401 (fixtures)
from test_method_fidelity import (COMMON, build, load_config, method_settings, official_input,
                                  post_processing, resize_short_side, segmentor_settings, windows)

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs/trident/*.py')))
IDS = [osp.splitext(osp.basename(path))[0] for path in CONFIGS]
BENCHMARKS = ('ade20k', 'ade847', 'cityscapes', 'coco_object', 'coco_stuff164k', 'context459', 'context59',
              'context60', 'voc20', 'voc21')  # those the official repository has configs for

# Trident's constructor defaults with configs/base_config.py on top (the refinement's: base_config's
# sam_iou_thresh=0.80, coarse_thresh=0.2, minimal_area=225, the constructor's sam_mask_coff=0.005)
REFINE_KEYS = ('coarse_thresh', 'minimal_area', 'sam_iou_thresh', 'sam_mask_coff')
OFFICIAL_DEFAULTS = dict(vfm='dino_vitb16', sam='sam_vit_b', beta=1.2, gamma=3.0, cos_fac=1.2, refine_neg_cos=True,
                         logit_scale=40.0, prob_thd=0.0, slide_crop=336, slide_stride=224, separator='; ',
                         dataset_type='PascalVOCDataset', resize=448, coarse_thresh=0.2, minimal_area=225,
                         sam_iou_thresh=0.8, sam_mask_coff=0.005)
OFFICIAL_PER_BENCHMARK = {
    'ade20k': dict(refine_neg_cos=False, resize=576, coarse_thresh=0.05),
    'cityscapes': dict(dataset_type='CityscapesDataset', cos_fac=3.0, refine_neg_cos=False, resize=688,
                       coarse_thresh=0.10),
    'coco_object': dict(prob_thd=0.25, coarse_thresh=0.25),
    'coco_stuff164k': dict(coarse_thresh=0.05),
    'context59': dict(resize=576, coarse_thresh=0.15),
    'context60': dict(prob_thd=0.15, resize=576, coarse_thresh=0.15),
    'voc20': dict(slide_stride=112, cos_fac=0.0, resize=336, coarse_thresh=0.2),
    'voc21': dict(prob_thd=0.2, coarse_thresh=0.2),
}
# sha256 prefixes of Trident's class files (configs/cls_*.txt @ a93b346; the large-vocabulary
# ones differ from ours only by their missing final newline)
OFFICIAL_CLASS_FILES = {
    'ade20k': 'e53ded02c488', 'cityscapes': '6f6782fc1bf9', 'coco_object': '87b6d3e1d3ad',
    'coco_stuff164k': 'fb98709b9ab1', 'context59': 'cd808465f06a', 'context60': '5e620446a869',
    'voc20': '6b9a85ffb907', 'voc21': '6a194e9134d4', 'ade847': '5d6612d2a2f9', 'context459': 'c9fe8ff7083d'}
WITHOUT_FINAL_NEWLINE = ('ade847', 'context459')


def trident_settings(cfg) -> dict:
    """Our config as the official segmentor's keywords."""
    model = segmentor_settings(cfg)
    method = method_settings(model)
    assert method['type'] == 'trident' and model['pamr_steps'] == 0
    return dict(beta=float(method['beta']), gamma=float(method['gamma']), cos_fac=float(method['cos_fac']),
                refine_neg_cos=bool(method['refine_neg_cos']), **{key: method[key] for key in REFINE_KEYS},
                dataset_type='CityscapesDataset' if method['sam_halves'] else 'PascalVOCDataset',
                **post_processing(model, area=False), **windows(model))


def test_every_official_benchmark_has_a_config():
    assert sorted(load_config(path).benchmark for path in CONFIGS) == sorted(BENCHMARKS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_translates_to_the_official_settings(path):
    cfg = load_config(path)
    model = segmentor_settings(cfg)
    method = method_settings(model)
    with open(model['class_names'], 'rb') as f:
        raw = f.read()
    if cfg.benchmark in WITHOUT_FINAL_NEWLINE:
        raw = raw.rstrip(b'\n')
    ours = dict(trident_settings(cfg), resize=resize_short_side(cfg), vfm=model['vfm']['type'],
                sam=method['sam']['type'], separator=model['class_name_separator'], templates=model['templates'],
                clip_arch=model['arch'], clip_path=model['clip_path'],
                class_file=hashlib.sha256(raw).hexdigest()[:12])
    official = {**COMMON, **OFFICIAL_DEFAULTS, **OFFICIAL_PER_BENCHMARK.get(cfg.benchmark, {}),
                'class_file': OFFICIAL_CLASS_FILES[cfg.benchmark]}
    assert ours == official


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 3-block random CLIP (width 128: 2 heads), tiny random DINO ViT-B/16 and SAM ViT-B, official
    layouts; SAM's IoU head predicts 0.3 more than at random, so that SAM's refinement keeps some
    masks and rejects others at the official 0.8."""
    from sclip.models.vfm.testing import official_checkpoint, write_official_checkpoint
    folder = tmp_path_factory.mktemp('trident_weights')
    sam = official_checkpoint('sam_vit_b', tiny=True)
    sam['mask_decoder.iou_prediction_head.layers.0.bias'] += 0.3
    torch.save(sam, str(folder / 'sam.pt'))
    return dict(clip=write_openai_checkpoint(str(folder / 'clip.pt'), width=128, layers=3),
                dino=write_official_checkpoint(str(folder / 'dino.pt'), 'dino_vitb16', tiny=True),
                sam=str(folder / 'sam.pt'))


@pytest.fixture(scope='module')
def text_cache(tmp_path_factory):
    """Class embeddings encoded once per class file for all the models of this module."""
    return str(tmp_path_factory.mktemp('trident_text_cache'))


@pytest.fixture(scope='module')
def sam_prompts(weights):
    """The official refinement's prompt encoder and mask decoder, from the SAM file."""
    from sclip.models.vfm.sam_decoder import build_sam_prompt_modules
    return build_sam_prompt_modules('sam_vit_b', weights['sam'], tiny=True)


@pytest.fixture(scope='module')
def official_runs():
    """benchmark -> (image, original size, file, official labels, official logits), computed once."""
    return {}


def picture(size: Tuple[int, int], seed: int = 0) -> np.ndarray:
    """A BGR uint8 picture (H, W, 3): a 3 × 3 grid of random flat colours plus noise in [0, 32)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 32, (*size, 3), dtype=np.uint8)
    h, w = size
    for i in range(3):
        for j in range(3):
            image[i * h // 3:(i + 1) * h // 3, j * w // 3:(j + 1) * w // 3] += rng.integers(0, 224, 3, dtype=np.uint8)
    return image


def inputs(cfg, folder) -> Tuple[torch.Tensor, Tuple[int, int], str]:
    """The network input (3, H, W) BGR uint8 at the benchmark's short side (long side + 14, so
    that the official resize to patch multiples runs), the original size, and its file."""
    short = resize_short_side(cfg)
    size = (short, short + 14) if cfg.benchmark != 'cityscapes' else (short, 2 * short + 14)
    original = (size[0] * 3 // 5 + 1, size[1] * 3 // 5 + 2)
    if IDS.index(cfg.benchmark) % 2 == 1 and cfg.benchmark != 'cityscapes':
        size, original = size[::-1], original[::-1]
    image = picture(original)
    path = str(folder / f'{cfg.benchmark}.png')
    cv2.imwrite(path, image)
    resized = cv2.resize(image, (size[1], size[0]))
    return torch.from_numpy(resized).permute(2, 0, 1).contiguous(), original, path


def run_ours(model, raw: torch.Tensor, original, path):
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(ori_shape=original, img_shape=tuple(raw.shape[-2:]), img_path=path))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[raw], data_samples=[sample]))[0]
    return out.pred_sem_seg.data, out.seg_logits.data


def options_for(path, weights, class_files, text_cache) -> dict:
    settings = segmentor_settings(load_config(path))
    return {'model.clip_path': weights['clip'], 'model.precision': 'fp32', 'model.text_cache_dir': text_cache,
            'model.vfm.checkpoint': weights['dino'], 'model.vfm.tiny': True,
            'model.method.sam': dict(type='sam_vit_b', checkpoint=weights['sam'], tiny=True),
            'model.class_names': class_files(settings['class_names'])}


def official_run(cfg, model, folder, official_runs, prompts):
    """(image, original size, file, official labels, official logits) of the benchmark, computed
    once; the official refined labels and class scores of the same run under (benchmark, 'refined')."""
    if cfg.benchmark not in official_runs:
        raw, original, file = inputs(cfg, folder)
        method = model.backbone.method
        clip = model.text_model
        clip.visual = model.backbone.visual
        try:
            official = trident.OfficialTrident(clip, model.class_embeddings, model.names.query_class,
                                               vfm_features=method.vfm, sam_encoder=method.sam.encoder,
                                               sam_refinement=True, prompt_encoder=prompts.prompt_encoder,
                                               mask_decoder=prompts.mask_decoder, **trident_settings(cfg))
            with torch.no_grad():
                logits = official.get_trident_seg(official_input(raw), file, original)
                official.sam_refine = False
                labels, _ = official.postprocess_result(logits, file)
                official.sam_refine = True
                refined, scores = official.postprocess_result(logits, file)
        finally:
            clip.visual = None
        official_runs[cfg.benchmark] = (raw, original, file, labels, logits)
        official_runs[(cfg.benchmark, 'refined')] = (refined, scores)
    return official_runs[cfg.benchmark]


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, weights, class_files, text_cache, official_runs,
                                            tmp_path_factory, sam_prompts):
    """The config's own prob_thd and, where it has one, ``model.prob_thd=0``."""
    cfg = load_config(path)
    options = options_for(path, weights, class_files, text_cache)
    model = build(path, options, fused_attention=False)
    assert model.backbone.vit.num_heads == 2
    raw, original, file, official, official_logits = official_run(cfg, model, tmp_path_factory.mktemp('images'),
                                                                  official_runs, sam_prompts)
    captured = []
    post_process = model.set_prediction
    model.set_prediction = lambda image, sample, size, logits: captured.append(logits) or post_process(
        image, sample, size, logits)
    ours, _ = run_ours(model, raw, original, file)
    del model.set_prediction
    assert ours.shape == official.shape == (1, *original)
    assert discriminating(official)
    assert torch.equal(ours, official)
    assert torch.allclose(captured[-1], official_logits[0], atol=1e-5, rtol=0)
    settings = segmentor_settings(cfg)
    if settings['prob_thd'] > 0:
        unthresholded = build(path, dict(options, **{'model.prob_thd': 0.0}), fused_attention=False)
        ours_at_0, _ = run_ours(unthresholded, raw, original, file)
        official_at_0 = common.postprocess_clearclip(official_logits, model.query_class, settings['logit_scale'], 0.0)
        assert discriminating(official_at_0)
        assert torch.equal(ours_at_0, official_at_0)


# --- SAM's refinement (official eval.py --sam_refine) ---------------------------------------------

def test_the_configs_do_not_refine():
    """The official eval.py's default (its eval_all.py passes --sam_refine: an override here)."""
    for path in CONFIGS:
        assert method_settings(segmentor_settings(load_config(path)))['sam_refine'] is False


def refined_options(path, weights, class_files, text_cache) -> dict:
    return dict(options_for(path, weights, class_files, text_cache), **{'model.method.sam_refine': True})


def official_refined_run(cfg, model, folder, official_runs, prompts):
    """(image, original size, file, official refined labels, their class scores, unrefined labels)."""
    raw, original, file, coarse, _ = official_run(cfg, model, folder, official_runs, prompts)
    return (raw, original, file) + official_runs[(cfg.benchmark, 'refined')] + (coarse,)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_refined_config_predicts_the_official_labels(path, weights, class_files, text_cache, official_runs,
                                                    tmp_path_factory, sam_prompts):
    """``model.method.sam_refine=True``: labels pixel for pixel, refined class scores to 1e-5;
    the refinement changes the official labels (SAM kept some masks)."""
    cfg = load_config(path)
    model = build(path, refined_options(path, weights, class_files, text_cache), fused_attention=False)
    raw, original, file, official, official_scores, coarse = official_refined_run(
        cfg, model, tmp_path_factory.mktemp('images'), official_runs, sam_prompts)
    ours, our_scores = run_ours(model, raw, original, file)
    assert not torch.equal(official, coarse)
    assert discriminating(official)
    assert torch.equal(ours, official)
    assert torch.allclose(our_scores, official_scores, atol=1e-5, rtol=0)


def test_the_refinement_reads_the_full_sam_checkpoint(weights, tmp_path):
    """Its prompt encoder and mask decoder are the file's tensors; an encoder-only file is one line."""
    from sclip.errors import SCLIPError
    from sclip.models.methods.trident import Trident
    method = Trident(sam=dict(type='sam_vit_b', checkpoint=weights['sam'], tiny=True), sam_refine=True)
    state = torch.load(weights['sam'])
    for name, value in method.sam_prompts.state_dict().items():
        assert torch.equal(value, state[name])
    encoder_only = str(tmp_path / 'encoder.pth')
    torch.save({k[len('image_encoder.'):]: v for k, v in state.items() if k.startswith('image_encoder.')}, encoder_only)
    Trident(sam=dict(type='sam_vit_b', checkpoint=encoder_only, tiny=True))  # enough without the refinement
    with pytest.raises(SCLIPError) as caught:
        Trident(sam=dict(type='sam_vit_b', checkpoint=encoder_only, tiny=True), sam_refine=True)
    message = str(caught.value)
    assert '\n' not in message and message.startswith('model.method.sam.checkpoint=') and 'full' in message


def test_sweep_cells_share_sams_work(weights, class_files, text_cache, official_runs, tmp_path_factory,
                                     sam_prompts, monkeypatch):
    """Two cells on one SAM (refined, and not refined at prob_thd 0) given one ``shared`` dict run
    SAM's encoder once for the image, and each still predicts the official labels."""
    from mmseg.structures import SegDataSample
    from sclip.models.methods import trident as ours
    path = osp.join(REPO, 'configs/trident/voc21.py')
    cfg = load_config(path)
    options = options_for(path, weights, class_files, text_cache)
    refined = build(path, dict(options, **{'model.method.sam_refine': True}), fused_attention=False)
    plain = build(path, dict(options, **{'model.prob_thd': 0.0}), fused_attention=False)
    plain.backbone.method.sam = refined.backbone.method.sam  # as group_eval.ModelBuilder does
    raw, original, file, official, official_scores, _ = official_refined_run(
        cfg, refined, tmp_path_factory.mktemp('images'), official_runs, sam_prompts)
    official_logits = official_runs[cfg.benchmark][4]
    passes = []
    original_init = ours.SAMCorrelation.__init__
    monkeypatch.setattr(ours.SAMCorrelation, '__init__', lambda self, *a: passes.append(1) or original_init(self, *a))
    shared = {}
    predictions = []
    for model in (refined, plain):
        sample = SegDataSample(metainfo=dict(ori_shape=original, img_shape=tuple(raw.shape[-2:]), img_path=file))
        data = model.data_preprocessor(dict(inputs=[raw], data_samples=[sample]), False)
        with torch.no_grad():
            predictions.append(model.predict(data['inputs'], data['data_samples'], shared=shared)[0].pred_sem_seg.data)
    assert len(passes) == 1
    assert torch.equal(predictions[0], official)
    assert torch.equal(predictions[1], common.postprocess_clearclip(official_logits, refined.query_class, 40, 0.0))


def test_the_published_rows_are_the_refined_runs():
    """tools/paper_table.py --method trident / trident-h compares runs refined with SAM only."""
    from sclip import paper
    refine = {'model.method.sam_refine': True}
    vit_h = {'model.arch': 'ViT-H-14', 'model.clip_path': 'laion2b_s32b_b79k'}
    assert paper.paper_row('trident', {}) is None
    assert paper.paper_row('trident', refine) == 'trident'
    assert paper.paper_row('trident', dict(vit_h, **refine)) == 'trident-h'
    assert paper.paper_row('trident', vit_h) is None
    assert paper.paper_row('sclip', {}) == 'sclip'
    assert "refinement of the labels on" in paper.expected('trident-h', 'voc21').setting


def keep_every_mask(monkeypatch):
    from sclip.models import sam_refine
    original = sam_refine.decode
    monkeypatch.setattr(sam_refine, 'decode', lambda *args: (lambda out: (out[0], out[1] * 0 + 1e9))(original(*args)))


def no_mask_prompt(monkeypatch):
    from sclip.models import sam_refine
    original = sam_refine.mask_prompt
    monkeypatch.setattr(sam_refine, 'mask_prompt', lambda *args: original(*args) * 0)


REFINE_MUTATIONS = [('voc21', 'every SAM mask kept', keep_every_mask),
                    ('voc21', 'no mask prompt', no_mask_prompt)]


@pytest.mark.parametrize('bench, what, mutate', REFINE_MUTATIONS, ids=[m[1] for m in REFINE_MUTATIONS])
def test_a_mutated_refinement_fails_the_comparison(bench, what, mutate, weights, class_files, text_cache,
                                                   official_runs, tmp_path_factory, monkeypatch, sam_prompts):
    path = osp.join(REPO, f'configs/trident/{bench}.py')
    cfg = load_config(path)
    model = build(path, refined_options(path, weights, class_files, text_cache), fused_attention=False)
    raw, original, file, official, official_scores, _ = official_refined_run(
        cfg, model, tmp_path_factory.mktemp('images'), official_runs, sam_prompts)
    mutate(monkeypatch)
    ours, our_scores = run_ours(model, raw, original, file)
    assert not torch.equal(ours, official)


# --- mutations: a changed official detail fails the comparison ------------------------------------

def per_window_mean(monkeypatch):
    from sclip.models.methods import trident as ours
    original = ours.proxy_attention
    monkeypatch.setattr(ours, 'proxy_attention', lambda *args, per_window=False: original(*args, per_window=True))


def pipeline_image_for_sam(monkeypatch):
    from sclip.models.methods import trident as ours
    monkeypatch.setattr(ours, 'read_rgb', lambda path: None)


def unthresholded_sam_attention(monkeypatch):
    from sclip.models.methods import trident as ours

    def weights(self, cos_fac, refine_neg_cos):
        kept = sum(self.attention(head) for head in range(self.heads)) / self.heads
        return kept / kept.sum(dim=-1, keepdim=True)
    monkeypatch.setattr(ours.SAMCorrelation, 'weights', weights)


MUTATIONS = [
    ('voc20', 'similarity mean per window', per_window_mean, {}),
    ('voc20', 'SAM sees the pipeline image', pipeline_image_for_sam, {}),
    ('voc20', 'SAM attention not thresholded', unthresholded_sam_attention, {}),
    ('cityscapes', 'SAM on the whole image', None, {'model.method.sam_halves': False}),
]


@pytest.mark.parametrize('bench, what, mutate, overrides', MUTATIONS, ids=[m[1] for m in MUTATIONS])
def test_a_mutated_trident_fails_the_comparison(bench, what, mutate, overrides, weights, class_files, text_cache,
                                                official_runs, tmp_path_factory, monkeypatch, sam_prompts):
    path = osp.join(REPO, f'configs/trident/{bench}.py')
    cfg = load_config(path)
    options = options_for(path, weights, class_files, text_cache)
    raw, original, file, official, _ = official_run(cfg, build(path, options, fused_attention=False),
                                                    tmp_path_factory.mktemp('images'), official_runs, sam_prompts)
    if mutate is not None:
        mutate(monkeypatch)
    model = build(path, dict(options, **overrides), fused_attention=False)
    ours, our_scores = run_ours(model, raw, original, file)
    assert not torch.equal(ours, official)


# --- memory: SAM's correlation one head at a time ---------------------------------------------------

class LargestTensor(torch.utils._python_dispatch.TorchDispatchMode):
    """The most elements any op's output has while the mode is on."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


def test_sam_correlation_holds_less_than_the_official():
    """Our SAM correlation (SAM's encoder included) never builds a tensor as large as the
    official code's largest: SAM's attention of all heads over the full padded grid (heads × G⁴;
    G = 64 at the official 1024 pixels); ours is at most one head's (G⁴), and the weights equal
    the official ones. At the official geometry with SAM ViT-H (16 heads) the official largest is
    16 × 4096² (0.5 GB in fp16), ours 4096² (34 MB)."""
    from sclip.models.methods.trident import SAMCorrelation
    from sclip.models.vfm import build_vfm
    sam = build_vfm('sam_vit_b', download=False, tiny=True, config_overrides=dict(heads=4, image_size=512))
    image = cv2.cvtColor(picture((150, 200)), cv2.COLOR_BGR2RGB)
    with torch.no_grad(), LargestTensor() as ours_mode:
        correlation = SAMCorrelation(sam, image)
        ours = correlation.weights(1.2, True)
    predictor = trident.SamPredictor(sam.encoder)
    with torch.no_grad(), LargestTensor() as official_mode:
        _, attn, v, h, w = trident.get_sam_feat(predictor, image, 16, 4)
        official = trident.get_sam_sim(v, attn, 1.2, 4, True)[0, 0]
    grid = sam.spec.image_size // sam.spec.patch_size
    assert official_mode.largest == 4 * grid ** 4
    assert ours_mode.largest <= grid ** 4 < official_mode.largest
    assert torch.allclose(ours, official, atol=1e-6, rtol=0)


def test_a_missing_or_wrong_sam_checkpoint_is_one_line(weights, tmp_path):
    from sclip.errors import SCLIPError
    from sclip.models.methods.trident import Trident
    for checkpoint, says in ((str(tmp_path / 'sam.pth'), 'does not exist'), (weights['dino'], 'DINO/MAE ViT checkpoint')):
        with pytest.raises(SCLIPError) as caught:
            Trident(sam=dict(type='sam_vit_b', checkpoint=checkpoint))
        message = str(caught.value)
        assert '\n' not in message and message.startswith('model.method.sam.checkpoint=') and says in message
