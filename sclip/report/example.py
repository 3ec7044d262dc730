"""Synthetic finished runs, to show what ``tools/report.py`` makes without data or a GPU.

    python -m sclip.report.example /tmp/report_example
    python tools/report.py /tmp/report_example/runs --out /tmp/report_example/report.html \\
        --title 'Example report (synthetic numbers)'

SCLIP, ClearCLIP and NACLIP (and one SCLIP variant) on VOC21 and Context59: mIoU = the
expected number +- a small random delta, random per-class IoU with that mean, cartoon
scenes in each benchmark's folder layout and predictions = ground truth with random
blobs of wrong classes. Nothing here is measured.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

from .expected import expected

SIZE = (360, 480)  # height, width
IMAGES = 6
# benchmark: (dataset type, data root, seg folder, split, reduce_zero_label, stuff bands, things)
# bands and things are (class index, RGB look); VOC's stuff is all 'background' (0).
BENCHMARKS = {
    'voc21': ('PascalVOCDataset', 'VOCdevkit/VOC2012', 'SegmentationClass', 'ImageSets/Segmentation/val.txt',
              False, [(0, (120, 170, 225)), (0, (95, 140, 70)), (0, (140, 120, 95))],
              [(15, (200, 80, 70)), (7, (60, 70, 160)), (12, (150, 110, 60)), (13, (110, 70, 40))]),
    'context59': ('PascalContext59Dataset', 'VOCdevkit/VOC2010', 'SegmentationClassContext',
                  'ImageSets/SegmentationContext/val.txt', True,
                  [(46, (125, 175, 230)), (52, (60, 110, 50)), (28, (100, 160, 70)), (40, (110, 110, 110))],
                  [(36, (200, 80, 70)), (13, (170, 40, 40)), (22, (150, 110, 60))]),
}
METHODS = [('SCLIP', 'sclip', 'configs/sclip_{}.py', {}, 0.14),
           ('SCLIP', 'sclip', 'configs/sclip_{}.py', {'model.attention.type': 'csa_q'}, 0.18),
           ('ClearCLIP', 'clearclip', 'configs/clearclip/{}.py', {}, 0.12),
           ('NACLIP', 'naclip', 'configs/naclip/{}.py', {}, 0.10)]


def fake_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def scene(rng: np.random.Generator, bands, things, boundary: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(RGB image, label map): wavy horizontal stuff bands and a few elliptic things."""
    height, width = SIZE
    ys, xs = np.mgrid[:height, :width]
    labels, look = np.zeros(SIZE, np.int32), np.zeros((*SIZE, 3), np.float32)
    cuts = np.sort(rng.uniform(0.25, 0.85, len(bands) - 1)) * height
    for index, (label, colour) in enumerate(bands):
        wave = 12 * np.sin(xs / rng.uniform(40, 90) + rng.uniform(0, 6))
        mask = ys >= (cuts[index - 1] + wave if index else -1)
        labels[mask], look[mask] = label, colour
    for label, colour in [things[i] for i in rng.choice(len(things), rng.integers(1, 4), replace=False)]:
        cy, cx = rng.uniform(0.45, 0.8) * height, rng.uniform(0.15, 0.85) * width
        ry, rx = rng.uniform(0.12, 0.25) * height, rng.uniform(0.06, 0.16) * width
        mask = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
        labels[mask], look[mask] = label, colour
    shade = 1 - 0.25 * ys / height
    image = np.clip(look * shade[..., None] + rng.normal(0, 9, look.shape), 0, 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(1.2)))
    if boundary:  # VOC's 255 outline around objects
        edge = np.zeros(SIZE, bool)
        for shift in (1, 2):
            edge[:, shift:] |= labels[:, shift:] != labels[:, :-shift]
            edge[shift:] |= labels[shift:] != labels[:-shift]
        labels = np.where(edge, 255, labels)
    return image, labels


def blobs(rng: np.random.Generator, fraction: float) -> np.ndarray:
    """A smooth random mask covering about ``fraction`` of the image."""
    noise = Image.fromarray((rng.random((SIZE[0] // 30, SIZE[1] // 30)) * 255).astype(np.uint8))
    smooth = np.asarray(noise.resize(SIZE[::-1], Image.BICUBIC), np.float32)
    return smooth >= np.quantile(smooth, 1 - fraction)


def per_class(rng: np.random.Generator, names: Sequence[str], miou: float, difficulty: np.ndarray) -> Dict[str, float]:
    """IoU per class: the benchmark's class difficulty (shared by the methods) plus noise, with mean ``miou``."""
    values = miou + difficulty + rng.normal(0, 6, len(names))
    for _ in range(20):  # shift towards the wanted mean within [1, 95]
        values = np.clip(values + miou - values.mean(), 1, 95)
    return {name: round(float(v), 2) for name, v in zip(names, values)}


def write_example(root: str, seed: int = 0) -> List[str]:
    """Write datasets under ``root/data`` and runs under ``root/runs``; returns the run folders."""
    import sclip  # noqa: F401  (registers the Context59 dataset)
    from mmseg.registry import DATASETS
    rng, folders = np.random.default_rng(seed), []
    for benchmark, (data_type, data_dir, seg_dir, split, reduce, bands, things) in BENCHMARKS.items():
        data_root = osp.join(osp.abspath(root), 'data', data_dir)
        names = list(DATASETS.get(data_type).METAINFO['classes'])
        for folder in ('JPEGImages', seg_dir, osp.dirname(split)):
            os.makedirs(osp.join(data_root, folder), exist_ok=True)
        stems = [f'2008_{index:06d}' for index in range(1, IMAGES + 1)]
        truths = {}
        for stem in stems:
            image, labels = scene(rng, bands, things, boundary=not reduce)
            Image.fromarray(image).save(osp.join(data_root, 'JPEGImages', stem + '.jpg'), quality=92)
            encoded = labels + 1 if reduce else labels  # Context59 files: 0 = background, class c = c + 1
            Image.fromarray(encoded.astype(np.uint8)).save(osp.join(data_root, seg_dir, stem + '.png'))
            truths[stem] = np.where(labels == 255, 0, labels)
        with open(osp.join(data_root, split), 'w') as f:
            f.write('\n'.join(stems) + '\n')
        present = sorted({label for label, _ in bands + things})
        difficulty = rng.normal(0, 16, len(names))
        for method, paper_key, config, overrides, error in METHODS:
            if overrides and benchmark != 'voc21':
                continue
            slug = '_'.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items()) or 'default'
            work_dir = osp.join(osp.abspath(root), 'runs', paper_key, slug, benchmark)
            os.makedirs(osp.join(work_dir, 'pred'), exist_ok=True)
            for stem, truth in truths.items():
                cells = Image.fromarray(rng.choice(present, size=(SIZE[0] // 40, SIZE[1] // 40)).astype(np.uint8))
                wrong = np.asarray(cells.resize(SIZE[::-1], Image.NEAREST))  # one wrong class per 40 px cell
                predicted = np.where(blobs(rng, error), wrong, truth)
                Image.fromarray((predicted + (1 if reduce else 0)).astype(np.uint8)).save(
                    osp.join(work_dir, 'pred', stem + '.png'))
            miou = round(expected(paper_key, benchmark).value + rng.uniform(-0.8, 0.8) - (3.0 if overrides else 0.0), 2)
            all_overrides = {'model.pretrained': '/data/weights/ViT-B-16.pt',
                             'test_dataloader.dataset.data_root': data_root, **overrides}
            identity = {
                'fingerprint': fake_sha(f'{method}{overrides}{benchmark}'),
                'config': {'file': config.format(benchmark), 'overrides': all_overrides,
                           'resolved_sha256': fake_sha(f'cfg{method}{overrides}{benchmark}')},
                'weights': {'arch': 'ViT-B-16', 'source': '/data/weights/ViT-B-16.pt',
                            'sha256': fake_sha('ViT-B-16.pt')},
                'vfm': None,
                'text': {'class_names': f'configs/class_names/{benchmark}.txt', 'templates': 'openai_imagenet'},
                'data': {'type': data_type, 'root': data_root, 'img_dir': osp.join(data_root, 'JPEGImages'),
                         'img_suffix': '.jpg', 'split': split, 'num_images': len(stems)},
                'code': {'version': '0.2.0', 'git': fake_sha('commit')[:40], 'source_sha256': fake_sha('source')},
                'libraries': {'torch': '2.14.1', 'mmseg': '1.2.2', 'open_clip': '3.3.0'}}
            metrics = {'schema': 2, 'mIoU': miou, 'aAcc': round(miou + 30, 2), 'mAcc': round(miou + 10, 2),
                       'per_class': {'IoU': per_class(rng, names, miou, difficulty)},
                       'config': config.format(benchmark), 'method': method, 'paper_key': paper_key,
                       'benchmark': benchmark, 'predictions_dir': osp.join(work_dir, 'pred'), 'identity': identity,
                       'finished': '2026-11-29T21:00:00Z'}
            with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
                json.dump(metrics, f, indent=1)
            folders.append(work_dir)
    return folders


if __name__ == '__main__':
    print('\n'.join(write_example(sys.argv[1] if len(sys.argv) > 1 else 'report_example')))
