"""GroupViT: every configs/groupvit/ config predicts what GroupViT's official evaluation predicts.

1. Settings: each config carries the official test set-up (short side 448, 448/224 windows,
   ImageNet normalisation, template 'simple', the dataset's CLASSES, bg_thresh 0.95 / 0.35).
2. Labels and logits: ours (mmseg 1.x test_step on a uint8 BGR image) against the transcription
   of the official code (tests/official/groupvit.py, working on the checkpoint's state dict by
   its official key names) on a random tiny GroupViT written in the released checkpoint layout,
   per config, with a reduced class file (its first lines, ``background`` kept first); the
   official map has several labels. One image needs several sliding windows.
3. Loading: a missing file, a file of another model, a checkpoint that does not fit the heads,
   a corrupt file: one line each, naming the file.
"""
from __future__ import annotations

import os.path as osp

import pytest
import torch

from helpers import (IMAGENET_MEAN, IMAGENET_STD, REPO, first_lines_of, label_spread, method_configs,
                     structured_image)
from helpers import one_thread  # noqa: F401 (an autouse fixture: this module runs on one thread)
from official import groupvit as official
from sclip.errors import SCLIPError
from sclip.models.groupvit.testing import TINY, write_groupvit_checkpoint
from sclip.runner import load_config

CONFIGS = method_configs('groupvit')
IDS = [osp.splitext(osp.basename(p))[0] for p in CONFIGS]
TABLE1 = ['ade20k', 'cityscapes', 'coco_object', 'coco_stuff164k', 'context59', 'context60', 'voc20', 'voc21']
BG_THRESH = {'voc21': 0.95, 'context60': 0.35, 'coco_object': 0.95}  # the official test_cfg
HEADS = list(TINY['num_heads'])


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return write_groupvit_checkpoint(str(tmp_path_factory.mktemp('groupvit') / 'group_vit_tiny.pth'))


@pytest.fixture(scope='module')
def reduced(tmp_path_factory):
    first_lines = first_lines_of(tmp_path_factory.mktemp('groupvit_classes'))
    return lambda path, lines=6: first_lines(path, lines)


def test_every_table1_benchmark_has_a_config():
    assert sorted(load_config(p).benchmark for p in CONFIGS) == TABLE1


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_carries_the_official_settings(path):
    cfg = load_config(path)
    model = cfg.model
    assert model.type == 'GroupViTSegmentor'
    assert (model.slide_crop, model.slide_stride, list(model.templates)) == (448, 224, ['a photo of a {}.'])
    assert list(model.num_heads) == [6, 6, 6]
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert resize['scale'] == (2048, 448) and resize['keep_ratio']
    with open(model.class_names) as f:
        names = f.read().splitlines()
    with_bg = cfg.benchmark in BG_THRESH
    assert (names[0] == 'background') == with_bg
    if with_bg:
        assert model.bg_thresh == BG_THRESH[cfg.benchmark]
    import mmseg.datasets as datasets
    official_classes = {'voc21': datasets.PascalVOCDataset, 'context60': datasets.PascalContextDataset,
                        'context59': datasets.PascalContextDataset59, 'cityscapes': datasets.CityscapesDataset,
                        'ade20k': datasets.ADE20KDataset, 'coco_stuff164k': datasets.COCOStuffDataset}
    if cfg.benchmark in official_classes:
        assert tuple(names) == official_classes[cfg.benchmark].METAINFO['classes']
    elif cfg.benchmark == 'voc20':  # TCL's PascalVOCDataset20 (MaskCLIP's)
        assert tuple(names) == datasets.PascalVOCDataset.METAINFO['classes'][1:]
    else:  # GroupViT's COCOObjectDataset
        assert len(names) == 81 and names[:3] == ['background', 'person', 'bicycle'] and names[-1] == 'toothbrush'


def official_tokens(names, templates, context_length: int = 77) -> torch.Tensor:
    """GroupViT's ``Tokenize(SimpleTokenizer())`` on each class x template (build_dataset_class_tokens)."""
    from open_clip.tokenizer import SimpleTokenizer
    tokenizer = SimpleTokenizer()
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id  # encoder['<|startoftext|>'], ['<|endoftext|>']
    out = torch.zeros(len(names), len(templates), context_length, dtype=torch.long)
    for i, name in enumerate(names):
        for j, template in enumerate(templates):
            tokens = [sot] + tokenizer.encode(template.format(name)) + [eot]
            out[i, j, :len(tokens)] = torch.tensor(tokens)
    return out


def run_both(path: str, checkpoint: str, class_file: str, size, original, extra=None):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    options = {'model.checkpoint': checkpoint, 'model.num_heads': HEADS, 'model.class_names': class_file,
               **(extra or {})}
    cfg = load_config(path, options)
    model = MODELS.build(cfg.model).eval()
    raw = structured_image(size)
    sample = SegDataSample(metainfo=dict(ori_shape=original, img_shape=tuple(size)))
    with torch.no_grad():
        ours = model.test_step(dict(inputs=[raw], data_samples=[sample]))[0]
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['model']
    arch = dict(depths=TINY['depths'], num_heads=HEADS, num_group_tokens=TINY['num_group_tokens'])
    with open(class_file) as f:
        names = f.read().splitlines()
    queries = names[1:] if names[0] == 'background' else names
    image = ((raw[[2, 1, 0]].float() - IMAGENET_MEAN) / IMAGENET_STD)[None]
    labels, logits = official.predict(state, arch, official_tokens(queries, ['a photo of a {}.']), names, image,
                                      original, bg_thresh=cfg.model.bg_thresh, return_logits=True)
    return ours, labels, logits


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_predicts_the_official_labels(path, checkpoint, reduced):
    """One window (an image smaller than the crop, landscape or portrait) per config. The tiny random
    model often puts such a window in one segment of one class: the maps with several labels are
    compared in the sliding-window and threshold tests below."""
    cfg = load_config(path)
    portrait = IDS.index(cfg.benchmark) % 2 == 1
    size, original = ((240, 320), (180, 250)) if not portrait else ((320, 240), (250, 180))
    ours, labels, logits = run_both(path, checkpoint, reduced(cfg.model.class_names), size, original)
    assert torch.equal(ours.pred_sem_seg.data, labels)
    assert torch.allclose(ours.seg_logits.data, torch.softmax(logits, dim=1)[0], atol=1e-6, rtol=0)


def test_sliding_windows_predict_the_official_labels(checkpoint, reduced):
    """448 x 700: three overlapping windows, averaged on the canvas, then resized to the original size."""
    path = osp.join(REPO, 'configs/groupvit/context60.py')
    class_file = reduced(load_config(path).model.class_names, 8)
    ours, labels, logits = run_both(path, checkpoint, class_file, (448, 700), (300, 470))
    assert torch.equal(ours.pred_sem_seg.data, labels)
    assert torch.allclose(ours.seg_logits.data, torch.softmax(logits, dim=1)[0], atol=1e-6, rtol=0)
    assert label_spread(labels)[0] >= 2


def test_background_threshold_reaches_the_official_code(checkpoint, reduced):
    """bg_thresh decides the background pixels: another threshold, another map, still the official one."""
    path = osp.join(REPO, 'configs/groupvit/voc21.py')
    class_file = reduced(load_config(path).model.class_names)
    results = [run_both(path, checkpoint, class_file, (240, 320), (240, 320), {'model.bg_thresh': t})
               for t in (0.95, 0.2)]
    for ours, labels, _ in results:
        assert torch.equal(ours.pred_sem_seg.data, labels)
    assert not torch.equal(results[0][1], results[1][1])


def build(checkpoint, **options):
    from mmseg.registry import MODELS
    cfg = load_config(osp.join(REPO, 'configs/groupvit/voc21.py'),
                      {'model.checkpoint': checkpoint, 'model.num_heads': HEADS, **options})
    return MODELS.build(cfg.model)


def test_bad_checkpoints_are_one_line_errors(tmp_path, checkpoint):
    cases = {}
    cases['missing'] = (str(tmp_path / 'absent.pth'), 'does not exist')
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    cases['corrupt'] = (str(corrupt), 'could not be read as a PyTorch checkpoint')
    other = tmp_path / 'clip.pth'
    torch.save({'visual.conv1.weight': torch.zeros(4, 3, 16, 16)}, str(other))
    cases['other model'] = (str(other), 'it is not a GroupViT checkpoint')
    state = torch.load(checkpoint, weights_only=False)['model']
    del state['img_encoder.layers.0.downsample.assign.q_proj.weight']
    partial = tmp_path / 'partial.pth'
    torch.save({'model': state}, str(partial))
    cases['missing key'] = (str(partial), 'missing img_encoder.layers.0.downsample.assign.q_proj.weight')
    for name, (path, message) in cases.items():
        with pytest.raises(SCLIPError) as error:
            build(path)
        assert message in str(error.value) and path in str(error.value), name
        assert '\n' not in str(error.value), name
    with pytest.raises(SCLIPError, match=r'model.num_heads=\[3, 3, 3\] does not fit'):
        build(checkpoint, **{'model.num_heads': [3, 3, 3]})
    with pytest.raises(SCLIPError, match='model.checkpoint is not set'):
        build(None)


def test_pickled_code_in_a_checkpoint_does_not_run(tmp_path, checkpoint):
    """The released files hold a config object: read as inert, and nothing in the pickle executes."""
    state = torch.load(checkpoint, weights_only=False)['model']
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'trap.pth')
    torch.save({'model': state, 'config': Trap(str(marker))}, path)
    build(path)
    assert not marker.exists()


class Trap:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_paper_table_lists_groupvit_and_tcl():
    """Every row of SCLIP's Table 1 has its numbers and sources; paper_table accepts both methods."""
    from helpers import load_tool
    from sclip import paper
    assert paper.PUBLISHED['groupvit']['average'] == 30.7 and paper.PUBLISHED['tcl']['average'] == 33.9
    voc = paper.expected('groupvit', 'voc21')
    assert (voc.value, voc.paper) == (52.3, 52.3) and 'GroupViT README.md line 108' in voc.source
    context = paper.expected('groupvit', 'context60')  # README (GCC+YFCC) 22.4, SCLIP's table 18.7
    assert (context.value, context.paper) == (22.4, 18.7)
    assert paper.expected('groupvit', 'ade20k').value == 10.4
    tcl = paper.expected('tcl', 'coco_stuff164k')
    assert tcl.value == 19.6 and 'PAMR on' in tcl.setting
    tool = load_tool('paper_table')
    for method in ('groupvit', 'tcl'):
        assert tool.parse_args(['--method', method]).method == method
