"""FLOSS's template rankings, computed for any dataset (``tools/floss_rankings.py``).

Why: FLOSS (yasserben/FLOSS @ ccf1d49) picks each class's expert templates from a ranking that it
computes per dataset, unsupervised, and ships only for its five benchmarks
(configs/class_texts/floss_naclip/). Its procedure is ``tools/eval_naclip.py --mode
compute_metric``: NACLIP's segmentor with each of the 80 ImageNet templates alone as the classifier,
and ``EntropyMetric`` over the predictions. Transcribed here (the oracle: tests/official/floss_ranking.py):

1. per template ``t``, per window: cosine logits of the normalised patch features with the names in
   template ``t`` alone, upsampled to the window (bilinear), averaged over the windows on the canvas
   (whole image: to the input size), resized to the original size; ``softmax(logit_scale · ·)`` over
   the names, each class the max over its names (``predict`` in ``compute_metric`` mode);
2. per template, ``argmax`` over the classes; per class ``c`` the entropy ``-Σ p log(p + 1e-10)``
   (over the classes) of the pixels predicted ``c``, summed and counted over the images;
3. per class and template ``entropy = sum / count`` and ``pixel_percentage = 100 · count /`` all
   pixels, both 0.0 where the template never predicts the class (official: such a template then
   ranks first among a class's; kept); templates sorted by entropy ascending (stable), ``rank``
   from 1. JSON: ``{model, dataset, split, classes: {key: {entropy_ranking: [...]}}}``.

The vision features of a window do not depend on the template: each window is encoded once and the
80 single-template classifiers are products with those features (the official code runs the 80
classifiers in one convolution too). Templates go through the canvas, resize and softmax in chunks
that fit ``memory_mb``. Labels are never read: the ranking is unsupervised.

Class keys: FLOSS keys its file by the dataset's class names with the spaces removed (its NACLIP
rule). Ours are each class's names as the class file lists them, joined by ``,``, spaces removed
(``class_key``): a class file line as our datasets name their classes (ADE-847's whole lines,
whose first names repeat). ``model.text.template_ranking.keys='class'`` reads them back.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

import torch
from torch import Tensor

from .class_names import class_key
from .errors import SCLIPError

EPSILON = 1e-10  # official: torch.log(class_probs + 1e-10)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp', '.webp')


@dataclass
class EntropyTally:
    """``EntropyMetric``'s running sums: per template and class the entropy sum and pixel count
    (float64), and all pixels of the images seen."""
    sums: Tensor    # (T, C) float64
    counts: Tensor  # (T, C) float64
    total_pixels: float = 0.0
    images: int = 0

    @classmethod
    def empty(cls, num_templates: int, num_classes: int) -> 'EntropyTally':
        zeros = torch.zeros(num_templates, num_classes, dtype=torch.float64)
        return cls(zeros, zeros.clone())

    def add(self, template: int, scores: Tensor) -> None:
        """One template's class scores (C, h, w) at the original size."""
        num_classes = scores.shape[0]
        labels = scores.argmax(dim=0).flatten()
        entropy = -(scores * torch.log(scores + EPSILON)).sum(dim=0).flatten()
        self.sums[template] += torch.bincount(labels, weights=entropy.double(), minlength=num_classes).cpu()
        self.counts[template] += torch.bincount(labels, minlength=num_classes).double().cpu()


def ranking_table(tally: EntropyTally, keys: Sequence[str], model: str, dataset: str, split: str) -> dict:
    """The JSON of ``EntropyMetric.compute_metrics`` (a new file, every template at once)."""
    classes: dict = {}
    for index, key in enumerate(keys):
        entries = []
        for template in range(tally.sums.shape[0]):
            count = float(tally.counts[template, index])
            if count > 0:
                entropy = float(tally.sums[template, index]) / count
                percentage = count / float(tally.total_pixels) * 100
            else:  # official: never predicted -> 0.0, which ranks such a template first
                entropy, percentage = 0.0, 0.0
            entries.append({'template_id': template, 'entropy': entropy, 'pixel_percentage': percentage})
        ranked = sorted(entries, key=lambda entry: entry['entropy'])
        # a repeated key: the official merge by template id leaves the later class's values, first position
        classes[key] = {'entropy_ranking': [{**entry, 'rank': rank + 1} for rank, entry in enumerate(ranked)]}
    return {'model': model, 'dataset': dataset, 'split': split, 'classes': classes}


def check_model(model) -> None:
    """The ranking runs a segmentor whose windows give patch features (NACLIP in FLOSS)."""
    method = getattr(getattr(model, 'backbone', None), 'method', None)
    if method is None or not hasattr(model, 'extract_feat') or not hasattr(model, 'names'):
        raise SCLIPError(f'model.type={type(model).__name__}: FLOSS rankings need a CLIP segmentor '
                         '(SCLIPSegmentor; FLOSS ranks with NACLIP: configs/floss/, configs/naclip/).')
    own = [flag for flag in ('whole_image', 'scores_queries', 'gives_scores') if getattr(method, flag, False)]
    if own or method.views != 1 or getattr(model, 'region_masks', None) is not None:
        raise SCLIPError(f'model.method={type(method).__name__}: its windows give scores of its own, not patch '
                         'features to classify per template; rank with a NACLIP config (configs/floss/, configs/naclip/).')


def template_classifiers(model, templates: Sequence[str]) -> Tensor:
    """(T, Q, D): every name in each template alone, encoded as the model encodes its names
    (official ``encode_text_features`` in ``compute_metric``: one prompt, normalised)."""
    from .models.text_classifier import load_or_build_sets
    queries = model.names.queries
    sets = [[template.format(name)] for template in templates for name in queries]
    flat = load_or_build_sets(model.text_model, model.tokenizer, sets, model.device, model.weights_name,
                              model.text_cache_dir, model.text_batch_size, official=model.official)
    return flat.unflatten(0, (len(templates), len(queries)))


def templates_per_chunk(num_templates: int, queries: int, pixels: int, memory_mb: float) -> int:
    """Templates whose canvas, resized logits and probabilities (4 bytes, about 4 copies) fit."""
    per_template = queries * pixels * 4 * 4
    return max(1, min(num_templates, int(memory_mb * 2 ** 20 // max(per_template, 1))))


@torch.no_grad()
def tally_image(model, image: Tensor, size: Tuple[int, int], classifiers: Tensor, tally: EntropyTally,
                memory_mb: float = 1024) -> None:
    """Add one normalised image (3, H, W) of original size ``size`` to ``tally``."""
    from .models.postprocess import class_scores
    from .models.sliding_window import slide_inference, upsample_window
    if model.official and model.official_cast_input:
        image = image.half()
    num_templates, queries = classifiers.shape[:2]
    size = tuple(int(s) for s in size)
    chunk = templates_per_chunk(num_templates, queries, max(size[0] * size[1], image.shape[-2] * image.shape[-1]),
                                memory_mb)
    features: dict = {}  # each window's patch features, computed once for every template

    def scores(feats: Tensor, weights: Tensor) -> Tensor:  # (n, gh, gw, D) -> (n, k·Q, gh, gw)
        return (feats @ weights.reshape(-1, weights.shape[-1]).to(feats.dtype).T).permute(0, 3, 1, 2)

    def resize(logits: Tensor, size, pad=(0, 0, 0, 0)) -> Tensor:
        """(k·Q, gh, gw) -> (k, Q, h, w); bilinear per map, templates as the batch (4x faster on
        the CPU than k·Q channels of one image, the same numbers)."""
        return upsample_window(logits.unflatten(0, (-1, queries)), tuple(size), pad)

    whole = model.slide_crop[0] <= 0
    for start in range(0, num_templates, chunk):
        weights = classifiers[start:start + chunk]
        if whole:
            if 'whole' not in features:
                features['whole'] = model.extract_feat(image[None])
            patch = scores(features['whole'], weights)[0]
            if model.whole_image_upsample == 'via_input':
                patch = resize(patch, image.shape[-2:]).flatten(0, 1)
            logits = resize(patch.float(), size)
        else:
            def encode(windows, key, weights=weights):
                if key not in features:
                    features[key] = model.extract_feat(windows())
                return scores(features[key], weights)
            batch = model.window_batch_size if model.slide_mode == 'batched' else 1
            canvas = slide_inference([image], encode, weights.shape[0] * queries, model.slide_crop,
                                     model.slide_stride, batch, pad_multiple=model.slide_pad, keyed=True,
                                     upsample=lambda patch, size, pad: resize(patch[0], size, pad).flatten(0, 1)[None])[0]
            logits = resize(canvas.float(), size)
        for offset, template_logits in enumerate(logits):
            tally.add(start + offset, class_scores(template_logits, model.query_class, model.num_classes,
                                                   model.logit_scale))
    tally.total_pixels += float(size[0] * size[1])
    tally.images += 1


# --- which images ----------------------------------------------------------------------------------

def folder_images(folder: str) -> List[str]:
    """Every image file under ``folder`` (recursive), sorted."""
    if not osp.isdir(folder):
        raise SCLIPError(f'--img-dir {folder}: no such folder; pass a folder of images.')
    found = sorted(osp.join(root, name) for root, _, files in os.walk(folder) for name in files
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise SCLIPError(f'--img-dir {folder}: no image files ({", ".join(IMAGE_SUFFIXES)}) in it.')
    return found


def config_images(cfg) -> Tuple[List[str], str]:
    """The images of the config's test split (its labels are not needed) and the folder they are in."""
    from .data_check import dataset_cfg, dataset_paths, expected_pairs
    root, img_dir, _, split = dataset_paths(dataset_cfg(cfg))
    hint = ('prepare the dataset (data/README.md), set test_dataloader.dataset.data_root=DIR, '
            'or pass --img-dir with your images')
    if not osp.isdir(img_dir):
        raise SCLIPError(f'image folder {img_dir!r} not found; {hint}.')
    if split and not osp.isfile(split):
        raise SCLIPError(f'split file {split!r} not found; {hint}.')
    pairs, _, _ = expected_pairs(cfg)
    images = [image for image, _ in pairs]
    if not images:
        raise SCLIPError(f'image folder {img_dir!r} holds no images of the split; {hint}.')
    missing = [image for image in images if not osp.isfile(image)]
    if missing:
        raise SCLIPError(f'{missing[0]}: listed by the split but not found; {hint}.')
    return images, img_dir


def image_pipeline(cfg) -> list:
    """The config's test pipeline without its label loading (the ranking reads no label)."""
    pipeline = cfg.test_dataloader.dataset.get('pipeline') or cfg.get('test_pipeline')
    return [dict(step) for step in pipeline if 'Annotation' not in str(step.get('type', ''))]


def samples(model, cfg, images: Iterable[str]):
    """(normalised image (3, H, W), original size) of each file, through the config's pipeline."""
    from mmengine.dataset import Compose
    transform = Compose(image_pipeline(cfg))
    for path in images:
        packed = transform(dict(img_path=path, seg_fields=[], reduce_zero_label=False))
        data = model.data_preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
                                       False)
        sample = data['data_samples'][0]
        yield path, data['inputs'][0], tuple(sample.metainfo.get('ori_shape', data['inputs'][0].shape[-2:]))[:2]


@torch.no_grad()
def compute_rankings(model, cfg, images: Sequence[str], dataset: str, split: str,
                     progress=None, memory_mb: float = 1024) -> dict:
    """FLOSS's ranking JSON of ``images`` under ``model`` (built from ``cfg`` without ``model.text``)."""
    from .models.text_classifier import openai_imagenet_templates
    check_model(model)
    templates = openai_imagenet_templates()
    classifiers = template_classifiers(model, templates)
    tally = EntropyTally.empty(len(templates), model.num_classes)
    for index, (path, image, size) in enumerate(samples(model, cfg, images)):
        tally_image(model, image, size, classifiers, tally, memory_mb)
        if progress is not None:
            progress(index + 1, len(images), path)
    keys = [class_key(names) for names in model.names.classes]
    method = cfg.model.get('method') or cfg.model.get('attention')  # NACLIP: attention type 'naclip'
    name = (method.get('type') if isinstance(method, dict) else method) or 'naclip'
    return ranking_table(tally, keys, str(name), dataset, split)


def ranking_command(config: str, out: str) -> str:
    """The command that writes a config's ranking file (quoted in the missing-file error)."""
    return f'python tools/floss_rankings.py {config} --out {out}'


def write_json(table: dict, path: str) -> None:
    """``json.dump(rankings, f, indent=2)`` as the official metric writes it."""
    folder = osp.dirname(path)
    try:
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(table, f, indent=2)
    except OSError as error:
        raise SCLIPError(f'--out {path}: cannot be written ({error.strerror or error}); choose a writable path.') from None
