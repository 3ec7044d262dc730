"""ITACLIP: every config predicts what the official code predicts (tests/official/itaclip.py).

1. Settings: each configs/itaclip/<benchmark>.py, translated into the official segmentor's
   keywords, equals the values of m-arda-aydn/ITACLIP's configs/cfg_<benchmark>.py (written out
   below), with its class file and LLM text file byte for byte the official ones.
2. Labels and logits: a random 12-block CLIP with 2 heads, a synthetic image of four textured
   quadrants (three windows at stride 28, the last shifted back inside); the oracle builds its own text
   features from the text tower (the official per-name loop and mixing), so the text side is
   checked too. Every config runs as configured and with the thresholds off
   (``prob_thd=0, area_thd=None``); the latter must be discriminating (several labels, none on
   90 % of the pixels). PAMR runs in every official config, so the class files are cut to their
   three classes (two names at most) and the description files to those classes' lines.
3. One full-size random ViT-B/16 on a small image; the batched fast path equals the simple one.
"""
from __future__ import annotations

import hashlib
import os.path as osp

import open_clip
import pytest
import torch

from helpers import REPO, write_openai_checkpoint
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import itaclip as official
from test_method_fidelity import (agreement, build, load_config, method_settings,
                                  official_input, run_ours, segmentor_settings, windows)

BENCHMARKS = ('cityscapes', 'coco_object', 'coco_stuff164k', 'context60', 'voc21')
CONFIGS = [osp.join(REPO, 'configs/itaclip', f'{b}.py') for b in BENCHMARKS]

# configs/cfg_<benchmark>.py of m-arda-aydn/ITACLIP @ 521a33c4 (model keys, test resize, files)
COMMON = dict(img_engineering=True, attn_self=True, slide_stride=28, slide_crop=224, pamr_steps=10,
              pamr_stride=(8, 16), area_thd=None, prob_thd=0.0, intermediate_layers=(7, 8, 10), closing=3,
              templates='openai_imagenet', arch='ViT-B-16', clip_path='openai')
OFFICIAL = {
    'voc21': dict(def_coefficient=0.05, img_eng_coefficient=0.7, logit_scale=60.0, prob_thd=0.1, area_thd=0.1,
                  resize=336, bg=True, cls='voc21', aux='voc21_definitions'),
    'context60': dict(def_coefficient=0.15, img_eng_coefficient=0.75, logit_scale=55.0, prob_thd=0.1, resize=336,
                      bg=True, cls='context60', aux='context60_definitions'),
    'coco_object': dict(def_coefficient=0.1, img_eng_coefficient=0.75, logit_scale=50.0, prob_thd=0.1, resize=336,
                        bg=True, cls='coco_object', aux='coco_object_synonyms'),
    'coco_stuff164k': dict(def_coefficient=0.2, img_eng_coefficient=0.75, logit_scale=40.0, resize=448, bg=False,
                           cls='coco_stuff', aux='coco_stuff_definitions'),
    'cityscapes': dict(def_coefficient=0.05, img_eng_coefficient=0.7, logit_scale=40.0, resize=560, bg=False,
                       cls='cityscapes', aux='cityscapes_synonyms'),
}
# sha256 (16 hex digits) of the official files: configs/cls_<name>.txt, llama_generated_texts/<aux>.txt
FILES = {
    'cityscapes': '75773bc7fa5cb719', 'coco_object': '6948c61f59efa147', 'coco_stuff': 'c7a8610f3315a62f',
    'context60': '6b01ea406ff15633', 'voc21': '4ac9b6259995f7a5',
}


def sha(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def itaclip_settings(cfg) -> dict:
    """Our config as the official segmentor's keywords (plus what its code hard-codes)."""
    model = segmentor_settings(cfg)
    method = method_settings(model)
    descriptions = dict(model['text']['descriptions'])
    resize = [s for s in cfg.test_dataloader.dataset.pipeline if s['type'] == 'Resize'][0]['scale'][1]
    return dict(img_engineering=method['image_engineering'], attn_self=method['attn_self'],
                img_eng_coefficient=float(method['img_eng_coefficient']),
                intermediate_layers=tuple(method['intermediate_layers']),
                def_coefficient=float(descriptions['weight']), bg=descriptions['first_class'] == 1,
                templates=descriptions.get('templates', 'openai_imagenet'), closing=int(model['label_closing']),
                logit_scale=float(model['logit_scale']), prob_thd=float(model['prob_thd']), area_thd=model['area_thd'],
                pamr_steps=int(model['pamr_steps']), pamr_stride=tuple(model['pamr_dilations']),
                resize=int(resize), arch=model['arch'], clip_path=model['clip_path'], **windows(model),
                cls=sha(model['class_names']), aux=osp.basename(descriptions['file'])[:-4])


@pytest.mark.parametrize('path', CONFIGS, ids=BENCHMARKS)
def test_config_translates_to_the_official_settings(path):
    cfg = load_config(path)
    expected = dict(COMMON, **OFFICIAL[cfg.benchmark])
    expected['cls'] = FILES[expected['cls']]
    assert itaclip_settings(cfg) == expected


# sha256 (16 hex digits) of llama_generated_texts/<name>.txt at the same commit
TEXT_FILES = {'cityscapes_synonyms': 'be2a6a10b6b570f2', 'coco_object_synonyms': '4814fb858fa19ef5',
              'coco_stuff_definitions': 'b5ec8b2a597ae079', 'context60_definitions': '8084d97548ab40e7',
              'voc21_definitions': 'd8f8413f656b8498'}


def test_official_text_files_are_copied_unchanged():
    folder = osp.join(REPO, 'configs/class_texts/itaclip')
    assert {name: sha(osp.join(folder, f'{name}.txt')) for name in TEXT_FILES} == TEXT_FILES


# --- models and inputs ----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A 12-block random CLIP of width 128: two attention heads."""
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('itaclip_weights') / 'clip12.pt'), width=128,
                                   layers=12)


# which classes a reduced file keeps: the first three, except where those three are too alike for
# the random CLIP to tell apart (the maps must be discriminating)
KEPT_CLASSES = {'cityscapes': (1, 8, 13)}


@pytest.fixture(scope='module')
def reduced(tmp_path_factory):
    """``config -> (class file, description file)``: three classes (two names at most) and
    their description lines."""
    folder = tmp_path_factory.mktemp('itaclip_reduced')

    def make(cfg):
        model = cfg.model
        kept = KEPT_CLASSES.get(cfg.benchmark, (0, 1, 2))
        with open(model.class_names) as f:
            lines = f.read().splitlines()
        names = folder / f'{cfg.benchmark}_names.txt'
        names.write_text('\n'.join(', '.join(lines[i].split(', ')[:2]) for i in kept) + '\n')
        first = model.text.descriptions.first_class
        with open(model.text.descriptions.file) as f:
            texts = f.read().splitlines()
        aux = folder / f'{cfg.benchmark}_aux.txt'
        aux.write_text('\n'.join(texts[i - first] for i in kept if i >= first) + '\n')
        return str(names), str(aux)
    return make


def structured_image(size, seed: int = 3) -> torch.Tensor:
    """A uint8 BGR image of 3 x 4 textured tiles of different colours, so a random CLIP sees
    different things in different places."""
    generator = torch.Generator().manual_seed(seed)
    height, width = size
    image = torch.randint(0, 256, (3, height, width), generator=generator).float()
    tints = torch.randint(0, 256, (12, 3), generator=generator).float()
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    tile = (rows * 3 // height) * 4 + cols * 4 // width
    image = 0.3 * image + 0.7 * tints[tile].permute(2, 0, 1)
    return image.clamp(0, 255).to(torch.uint8)


def oracle(model, cfg, raw, original, templates=None, aux=None, **overrides):
    """Official labels and logits, with the official text features built from our text tower."""
    settings = itaclip_settings(cfg)
    settings.update(overrides)
    query_words, query_idx = official.get_cls_idx_itaclip(model.names.path)
    templates = templates or official.imagenet_templates()
    feats = official.query_features(model.text_model.encode_text, open_clip.tokenize, query_words,
                                    torch.tensor(query_idx), templates, aux, settings['bg'],
                                    settings['def_coefficient'])
    clip = model.text_model
    clip.visual = model.backbone.visual
    keys = ('pamr_steps', 'pamr_stride', 'prob_thd', 'logit_scale', 'slide_stride', 'slide_crop', 'area_thd',
            'img_engineering', 'attn_self', 'img_eng_coefficient')
    try:
        return official.predict(clip, feats, query_idx, official_input(raw), original, return_logits=True,
                                **{k: settings[k] for k in keys if k in settings})
    finally:
        clip.visual = None


# Not the benchmark's resized size: at ITACLIP's stride of 28 that is 30 to 150 windows, each seen
# five ways; 224 x 262 gives three windows, the last one shifted back inside the image.
SIZE, ORIGINAL = (224, 262), (151, 171)


def discriminating(labels: torch.Tensor) -> None:
    values, counts = labels.unique(return_counts=True)
    assert len(values) >= 2 and counts.max().item() <= 0.9 * labels.numel(), dict(zip(values.tolist(),
                                                                                       counts.tolist()))


@pytest.mark.parametrize('thresholds', [True, False], ids=['configured', 'thresholds_off'])
@pytest.mark.parametrize('path', CONFIGS, ids=BENCHMARKS)
def test_config_predicts_the_official_labels(path, thresholds, weights, reduced, tmp_path):
    cfg = load_config(path)
    names, aux = reduced(cfg)
    options = {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': str(tmp_path),
               'model.class_names': names, 'model.text.descriptions.file': aux}
    overrides = {} if thresholds else dict(prob_thd=0.0, area_thd=None)
    model = build(path, options, fused_attention=False, slide_mode='simple', **overrides)
    size, original = SIZE, ORIGINAL
    if BENCHMARKS.index(cfg.benchmark) % 2 == 1:  # portrait on every other benchmark
        size, original = size[::-1], original[::-1]
    raw = structured_image(size)
    ours, our_logits = run_ours(model, raw, original)
    expected, expected_logits = oracle(model, cfg, raw, original, aux=aux, **overrides)
    assert ours.shape == (1, *original) and expected.shape == (1, *original)
    assert agreement(ours, expected.to(ours.dtype)) >= 0.9999
    assert torch.allclose(our_logits, expected_logits[0], atol=1e-5, rtol=0)
    if not thresholds:
        discriminating(expected)


def test_full_size_vit_b16_predicts_the_official_labels(tmp_path):
    """A random ViT-B/16 on one small image (VOC21's settings, 4 classes, one template, PAMR off:
    the PAMR step is the configs' and is checked above)."""
    model_file = tmp_path / 'vit-b-16-random.pt'
    clip = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
    torch.save({k: v.half() for k, v in clip.state_dict().items()}, str(model_file))
    names = tmp_path / 'names.txt'
    names.write_text('background, sky\ncat\ndog, puppy\ncar\n')
    aux = tmp_path / 'aux.txt'
    aux.write_text('cat >=a small pet.\ndog >=a loyal animal.\ncar >=a road vehicle.\n')
    path = osp.join(REPO, 'configs/itaclip/voc21.py')
    cfg = load_config(path)
    template = ['a photo of a {}.']
    options = {'model.clip_path': str(model_file), 'model.precision': 'fp32', 'model.text_cache_dir': False,
               'model.class_names': str(names), 'model.templates': template,
               'model.text.descriptions.file': str(aux), 'model.text.descriptions.templates': template}
    model = build(path, options, fused_attention=False, slide_mode='simple', prob_thd=0.0, area_thd=None,
                  pamr_steps=0)
    assert model.backbone.vit.width == 768 and model.backbone.vit.depth == 12
    raw = structured_image((224, 224), seed=7)  # one window, five views
    original = (237, 241)
    ours, our_logits = run_ours(model, raw, original)
    expected, expected_logits = oracle(model, cfg, raw, original, templates=[lambda c: f'a photo of a {c}.'],
                                       aux=str(aux), prob_thd=0.0, area_thd=None, pamr_steps=0)
    assert agreement(ours, expected.to(ours.dtype)) >= 0.9999
    assert torch.allclose(our_logits, expected_logits[0], atol=1e-5, rtol=0)


def test_batched_equals_simple(weights, reduced, tmp_path):
    path = CONFIGS[BENCHMARKS.index('voc21')]
    cfg = load_config(path)
    names, aux = reduced(cfg)
    options = {'model.clip_path': weights, 'model.precision': 'fp32', 'model.text_cache_dir': str(tmp_path),
               'model.class_names': names, 'model.text.descriptions.file': aux, 'model.pamr_steps': 0}
    fast = build(path, options, slide_mode='batched', window_batch_size=4, fused_attention=True)
    simple = build(path, options, slide_mode='simple', fused_attention=False)
    generator = torch.Generator().manual_seed(0)
    images = [torch.randn(3, 224, 276, generator=generator), torch.randn(3, 250, 224, generator=generator)]
    sizes = [tuple(i.shape[-2:]) for i in images]
    with torch.no_grad():
        for a, b in zip(fast.query_logits(images, sizes), simple.query_logits(images, sizes)):
            assert torch.allclose(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize('key,value,needle', [
    ('model.method.intermediate_layers', (7, 12), 'model.method.intermediate_layers: block 12'),
    ('model.method.img_eng_coefficient', 1.5, 'model.method.img_eng_coefficient=1.5'),
    ('model.method.blur_kernel', 4, 'model.method.blur_kernel=4'),
    ('model.label_closing', 2, 'model.label_closing'),
    ('model.text.descriptions.first_class', 0, 'description lines for'),
])
def test_bad_settings_are_one_line(key, value, needle, weights):
    from sclip.errors import SCLIPError
    path = CONFIGS[BENCHMARKS.index('voc21')]
    options = {'model.clip_path': weights, 'model.text_cache_dir': False, key: value}
    with pytest.raises(SCLIPError) as error:
        build(path, options)
    assert needle in str(error.value) and '\n' not in str(error.value)
