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
    """A label map (w, h) in blocks of the given values (255 allowed): uint8, or 16-bit when a
    value exceeds 255 (Detectron2's large-vocabulary ``.tif``, 65535 = ignored)."""
    rng = np.random.default_rng(seed)
    w, h = size
    label = np.full((h, w), values[0], np.uint16 if max(values) > 255 else np.uint8)
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
# SegEarth-OV's 17 remote-sensing benchmarks (configs/_base_/datasets/rs_<key>.py), in the layout that
# ``tools/prepare_data.py <key>`` writes: make_dataset(key, data_dir) or make_remote_sensing_dataset.
REMOTE_SENSING_LAYOUTS: Dict[str, tuple] = {
    'openearthmap': ('OpenEarthMap', 'img_dir/val', 'ann_dir/val', '.tif', '.tif', None, [0, 1, 4, 8]),
    'loveda': ('LoveDA', 'img_dir/val', 'ann_dir/val', '.png', '.png', None, [0, 1, 4, 7]),
    'isaid': ('iSAID', 'img_dir/val', 'ann_dir/val', '.png', '_instance_color_RGB.png', None, [0, 1, 15, 255]),
    'potsdam': ('potsdam', 'img_dir/val', 'ann_dir/val', '.png', '.png', None, [0, 1, 3, 6]),
    'vaihingen': ('vaihingen', 'img_dir/val', 'ann_dir/val', '.png', '.png', None, [0, 1, 3, 6]),
    'uavid': ('UAVid', 'img_dir/test', 'ann_dir/test', '.png', '.png', None, [0, 1, 3, 6, 255]),
    'udd5': ('UDD/UDD/UDD5', 'val/src', 'val/gt', '.JPG', '.png', None, [0, 1, 4]),
    'vdd': ('VDD', 'test/src', 'test/gt', '.JPG', '.png', None, [0, 2, 6]),
    'whu_aerial': ('WHU-BD', 'val/image', 'val/label_cvt', '.png', '.png', None, [0, 1]),
    'whu_sat2': ('WHU_Sat_II', 'test/image', 'test/label_cvt', '.tif', '.tif', None, [0, 1]),
    'inria': ('Inria', 'img_dir/split_test', 'ann_dir/split_test', '.png', '.png', None, [0, 1]),
    'xbd_pre': ('xBD', 'test/images_pre', 'test/targets_cvt_pre', '.png', '.png', None, [0, 1]),
    'chn6_cug': ('CHN6-CUG', 'val/image_cvt', 'val/label_cvt', '.jpg', '.png', None, [0, 1]),
    'deepglobe_road': ('GlobalRoadSet_Val/DeepGlobe_test_1530', 'image_cvt', 'label_cvt', '.jpg', '.png', None,
                       [0, 1]),
    'massachusetts_road': ('GlobalRoadSet_Val/Massachusetts_test_49', 'img', 'label_cvt', '.jpg', '.png', None,
                           [0, 1]),
    'spacenet_road': ('GlobalRoadSet_Val/SpaceNet_test_567', 'img', 'label_cvt', '.jpg', '.png', None, [0, 1]),
    'wbs_si': ('WaterBodiesDatasetPreprocessed', 'Images', 'Masks_cvt', '.jpg', '.png', 'val.txt', [0, 1]),
}
LAYOUTS.update(REMOTE_SENSING_LAYOUTS)
STEMS = {'cityscapes': ['frankfurt/frankfurt_000000_000294', 'lindau/lindau_000001_000019'],
         'coco_object': ['000000000139', '000000000285'], 'coco_stuff164k': ['000000000139', '000000000285'],
         'coco_stuff10k': ['COCO_train2014_000000000077', 'COCO_train2014_000000000109'],
         'ade20k': ['ADE_val_00000001', 'ADE_val_00000002'], 'ade847': ['ADE_val_00000001', 'ADE_val_00000002'],
         # remote sensing: file names as the converters write them
         'openearthmap': ['aachen_1', 'kyoto_12'], 'loveda': ['2522', '4191'],
         'isaid': ['P0003_0_896_0_896', 'P0003_0_896_512_1408'], 'potsdam': ['2_13_0_0_512_512', '2_13_512_0_1024_512'],
         'vaihingen': ['area2_0_0_512_512', 'area2_512_0_1024_512'],
         'uavid': ['seq21_000000_0_1080_0_1280', 'seq21_000000_0_1080_1280_2560'], 'udd5': ['DJI_0538', 'DJI_0544'],
         'vdd': ['DJI_0032', 'DJI_0047'], 'whu_aerial': ['0001', '0002'], 'whu_sat2': ['0', '1'],
         'inria': ['austin1_0_0_1000_1000', 'austin1_1000_0_2000_1000'],
         'xbd_pre': ['guatemala-volcano_00000003_pre_disaster', 'hurricane-florence_00000004_pre_disaster'],
         'chn6_cug': ['am100001', 'am100002'], 'deepglobe_road': ['104_', '109_'], 'massachusetts_road': ['10378780_15', '10828720_15'],
         'spacenet_road': ['AOI_2_Vegas_img1', 'AOI_2_Vegas_img10'], 'wbs_si': ['water_body_2396', 'water_body_1074']}
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


def make_remote_sensing_dataset(key: str, data_dir: str, sizes=SIZES) -> str:
    """Write a tiny synthetic copy of remote-sensing benchmark ``key`` (one of
    ``REMOTE_SENSING_LAYOUTS``: openearthmap, loveda, isaid, potsdam, vaihingen, uavid, udd5, vdd,
    whu_aerial, whu_sat2, inria, xbd_pre, chn6_cug, deepglobe_road, massachusetts_road, spacenet_road,
    wbs_si) under ``data_dir``, in the prepared layout of configs/_base_/datasets/rs_<key>.py, with
    ``data_dir`` in the place of ``data/``; returns its data_root (pass it as
    ``test_dataloader.dataset.data_root``). Labels hold raw values of that benchmark (reduce_zero_label
    sets get 0 = ignored, iSAID/UAVid 255 = padding), images are flat colour blocks."""
    if key not in REMOTE_SENSING_LAYOUTS:
        raise KeyError(f'{key!r} is not a remote-sensing benchmark; choose one of {", ".join(REMOTE_SENSING_LAYOUTS)}')
    return make_dataset(key, data_dir, sizes)


BENCHMARKS = [name for name in LAYOUTS if name not in LARGE_VOCAB and name not in REMOTE_SENSING_LAYOUTS]
