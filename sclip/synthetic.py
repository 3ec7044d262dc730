"""Random CLIP checkpoints and synthetic benchmark datasets: the harness end to end with nothing
downloaded (tools/try_it.py) and the test suite's fixtures (tests/helpers.py).

The checkpoint is written in OpenAI's state-dict layout (float16, with OpenAI's header
buffers), so it goes through the same loading code as the real ViT-B-16.pt. Datasets are
written in each benchmark's exact on-disk layout with a few images of flat colour blocks and
labels of random blocks: any number measured on them is meaningless.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image


def tiny_clip(patch_size: int = 16, image_size: int = 224, width: int = 128, layers: int = 3,
              text_width: int = 64, text_layers: int = 1, embed_dim: int = 32, seed: int = 0):
    """A random open_clip CLIP ViT (QuickGELU, 64-wide heads as OpenAI's)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    torch.manual_seed(seed)
    vision = CLIPVisionCfg(layers=layers, width=width, patch_size=patch_size, image_size=image_size)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=text_width, heads=text_width // 64,
                       layers=text_layers)
    model = CLIP(embed_dim, vision_cfg=vision, text_cfg=text, quick_gelu=True)
    with torch.no_grad():  # open_clip zero-inits some biases; random ones test the bias handling
        for name, param in model.named_parameters():
            if name.endswith('bias'):
                param.normal_(0, 0.02)
    return model.eval()


def write_openai_checkpoint(path: str, **kwargs) -> str:
    """Save a tiny random CLIP as OpenAI's state dict: float16 tensors and header buffers."""
    model = tiny_clip(**kwargs)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    state['input_resolution'] = torch.tensor(kwargs.get('image_size', 224))
    state['context_length'] = torch.tensor(77)
    state['vocab_size'] = torch.tensor(49408)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    torch.save(state, path)
    return path


def write_image(path: str, size: Tuple[int, int], seed: int) -> None:
    """An RGB image (w, h) with a few flat colour blocks (JPEG or PNG by suffix)."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h), rng.integers(0, w)
        image[y:, x:] = rng.integers(0, 256, 3)
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path, quality=95) if path.endswith('.jpg') else Image.fromarray(image).save(path)


def write_label(path: str, size: Tuple[int, int], values: List[int], seed: int) -> None:
    """A uint8 label map (w, h) in blocks of the given values (255 allowed); a ``.tif`` is
    16-bit, as Detectron2's large-vocabulary labels (65535 = ignored)."""
    rng = np.random.default_rng(seed)
    w, h = size
    label = np.full((h, w), values[0], np.uint16 if path.endswith('.tif') else np.uint8)
    for value in values[1:]:
        y, x = rng.integers(0, h), rng.integers(0, w)
        label[y:, x:] = value
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(label).save(path)


# benchmark -> (data_root suffix, image dir, label dir, image suffix, label suffix, split file, label values)
LAYOUTS: Dict[str, tuple] = {
    'voc21': ('VOCdevkit/VOC2012', 'JPEGImages', 'SegmentationClass', '.jpg', '.png',
              'ImageSets/Segmentation/val.txt', [0, 1, 15, 255]),
    'voc20': ('VOCdevkit/VOC2012', 'JPEGImages', 'SegmentationClass', '.jpg', '.png',
              'ImageSets/Segmentation/val.txt', [0, 1, 15, 20, 255]),
    'context60': ('VOCdevkit/VOC2010', 'JPEGImages', 'SegmentationClassContext', '.jpg', '.png',
                  'ImageSets/SegmentationContext/val.txt', [0, 3, 59]),
    'context59': ('VOCdevkit/VOC2010', 'JPEGImages', 'SegmentationClassContext', '.jpg', '.png',
                  'ImageSets/SegmentationContext/val.txt', [0, 3, 59]),
    'coco_object': ('coco_stuff164k', 'images/val2017', 'annotations/val2017', '.jpg',
                    '_instanceTrainIds.png', None, [0, 1, 80]),
    'coco_stuff164k': ('coco_stuff164k', 'images/val2017', 'annotations/val2017', '.jpg',
                       '_labelTrainIds.png', None, [0, 5, 170, 255]),
    'coco_stuff10k': ('coco_stuff10k', 'images/test2014', 'annotations/test2014', '.jpg',
                      '_labelTrainIds.png', None, [1, 5, 171]),
    'cityscapes': ('cityscapes', 'leftImg8bit/val', 'gtFine/val', '_leftImg8bit.png',
                   '_gtFine_labelTrainIds.png', None, [0, 7, 18, 255]),
    'ade20k': ('ade/ADEChallengeData2016', 'images/validation', 'annotations/validation', '.jpg',
               '.png', None, [0, 1, 150]),
    'ade847': ('ADE20K_2021_17_01', 'images_detectron2/validation', 'annotations_detectron2/validation', '.jpg',
               '.tif', None, [0, 255, 300, 846, 65535]),
    'context459': ('VOCdevkit/VOC2010', 'JPEGImages', 'annotations_detectron2/pc459_val', '.jpg', '.tif',
                   'ImageSets/SegmentationContext/val.txt', [0, 58, 458, 65535]),
}
LARGE_VOCAB = ('ade847', 'context459')  # tests/test_large_vocab.py; not in BENCHMARKS
STEMS = {'cityscapes': ['frankfurt/frankfurt_000000_000294', 'lindau/lindau_000001_000019'],
         'coco_object': ['000000000139', '000000000285'], 'coco_stuff164k': ['000000000139', '000000000285'],
         'coco_stuff10k': ['COCO_train2014_000000000077', 'COCO_train2014_000000000109'],
         'ade20k': ['ADE_val_00000001', 'ADE_val_00000002'], 'ade847': ['ADE_val_00000001', 'ADE_val_00000002']}
SIZES = [(60, 45), (40, 52)]


def make_dataset(benchmark: str, data_dir: str, sizes=SIZES) -> str:
    """Write a synthetic dataset for ``benchmark`` under ``data_dir``; returns its data_root."""
    sub, img_dir, seg_dir, img_suffix, seg_suffix, split, values = LAYOUTS[benchmark]
    root = osp.join(data_dir, sub)
    base = STEMS.get(benchmark, ['2008_000002', '2008_000003'])
    stems = (base + [f'{base[-1]}{extra}' for extra in range(len(sizes))])[:len(sizes)]
    for index, (stem, size) in enumerate(zip(stems, sizes)):
        write_image(osp.join(root, img_dir, stem + img_suffix), size, seed=index)
        write_label(osp.join(root, seg_dir, stem + seg_suffix), size, values, seed=100 + index)
    if split:
        os.makedirs(osp.dirname(osp.join(root, split)), exist_ok=True)
        with open(osp.join(root, split), 'w') as f:
            f.write('\n'.join(stems) + '\n')
    return root


BENCHMARKS = [name for name in LAYOUTS if name not in LARGE_VOCAB]
