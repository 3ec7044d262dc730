"""tools/benchmark.py --against-official for GroupViT and TCL (sclip/official_trained.py).

Their official code is mmseg 0.x / mmcv 1.x; the stand-in checkout here is written like theirs
(``segmentation/evaluation/*_seg.py`` subclassing ``mmseg.models.EncoderDecoder`` with
``super(EncoderDecoder, self).__init__()`` and ``mmcv.Config``, a ``models`` package on
``mmcv.utils.Registry``, training-only imports of ``diffdist``/``webdataset``/``mmcv.parallel``,
TCL's top-level ``sclip`` package). Its ``encode_decode`` is a per-pixel linear map, so the
sliding windows must average to the whole image's map: an independent computation.
"""
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from helpers import REPO, load_tool

SEG = '''
import mmcv
import torch
from mmseg.models import EncoderDecoder
from mmcv.runner import CheckpointLoader  # noqa: F401  (imported at load time by their utils)
import diffdist.functional  # noqa: F401  (training only)
from mmseg.datasets import build_dataloader  # noqa: F401  (data loading only)
from sclip.clip import marker  # TCL's own top-level package, not ours


class StandInSegInference(EncoderDecoder):
    def __init__(self, weight, test_cfg):
        super(EncoderDecoder, self).__init__()
        self.test_cfg = test_cfg if isinstance(test_cfg, mmcv.Config) else mmcv.Config(test_cfg)
        self.register_buffer('weight', weight)
        self.num_classes, self.align_corners, self.seen = weight.shape[0], False, []

    def encode_decode(self, img, img_metas):
        self.seen.append(img)
        return torch.einsum('kc,bchw->bkhw', self.weight, img) + marker
'''

MODELS = '''
from mmcv.utils import Registry
MODELS = Registry('model')


@MODELS.register_module()
class Linear:
    def __init__(self, scale):
        self.scale = scale
'''


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / 'official'
    files = {'segmentation/__init__.py': '', 'segmentation/evaluation/__init__.py': '',
             'segmentation/evaluation/stand_in_seg.py': SEG, 'models/__init__.py': MODELS,
             'sclip/__init__.py': '', 'sclip/clip.py': 'marker = 0.0\n'}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return str(root)


def load(checkout):
    from sclip.official_trained import _load_official
    return _load_official(checkout, 'groupvit', ['segmentation.evaluation.stand_in_seg', 'models'])


def test_the_checkout_imports_under_the_shims_and_sys_modules_is_ours_again(checkout):
    import mmcv
    import mmseg.models

    import sclip
    before = {name: sys.modules[name] for name in ('mmcv', 'mmseg', 'mmseg.models', 'sclip')}
    seg, models = load(checkout)
    assert models.MODELS.build(dict(type='Linear', scale=3)).scale == 3  # mmcv 1.x's build_from_cfg
    assert seg.EncoderDecoder.__module__ == 'sclip.official_trained'  # the 0.x test loop
    for name, module in before.items():
        assert sys.modules[name] is module, name
    assert 'segmentation' not in sys.modules and 'diffdist' not in sys.modules
    assert not hasattr(mmcv, 'Config') and hasattr(mmseg.models, 'EncoderDecoder') and sclip.__file__.startswith(REPO)
    with pytest.raises(Exception, match='stubbed'):  # a training-only name refuses to run
        seg.build_dataloader()


@pytest.mark.parametrize('size, mode', [((130, 200), 'slide'), ((150, 90), 'slide'), ((120, 160), 'whole')])
def test_zero_x_test_loop_gives_the_whole_image_map_and_normalises_as_the_0x_pipeline(checkout, size, mode):
    """A per-pixel map computed window by window, averaged and resized, is the whole image's map."""
    from mmengine.structures import BaseDataElement

    from sclip.official_trained import ZeroXSegmentor
    seg, _ = load(checkout)
    weight = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    segmentor = seg.StandInSegInference(weight, dict(mode=mode, stride=(48, 48), crop_size=(96, 96)))
    raw = torch.randint(0, 256, (3, *size), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    original = (size[0] * 2 - 3, size[1] + 7)
    sample = BaseDataElement(metainfo=dict(ori_shape=original))
    labels = ZeroXSegmentor(segmentor).test_step(dict(inputs=[raw], data_samples=[sample]))[0].pred_sem_seg.data
    mean, std = torch.tensor([123.675, 116.28, 103.53]), torch.tensor([58.395, 57.12, 57.375])
    image = ((raw[[2, 1, 0]].float() - mean[:, None, None]) / std[:, None, None])[None]  # BGR -> RGB, ImageNet
    first = segmentor.seen[0]  # the top-left window (the whole image in 'whole' mode)
    assert torch.allclose(first, image[..., :first.shape[-2], :first.shape[-1]], atol=1e-5)
    windows = {((130, 200), 'slide'): 2 * 4, ((150, 90), 'slide'): 3 * 1, ((120, 160), 'whole'): 1}[size, mode]
    assert len(segmentor.seen) == windows
    logits = F.interpolate(torch.einsum('kc,bchw->bkhw', weight, image), size=original, mode='bilinear')
    probabilities = segmentor.inference(image, [dict(ori_shape=original, flip=False)], rescale=True)
    assert torch.allclose(probabilities, logits.softmax(dim=1), atol=1e-5)
    assert labels.shape == (1, *original) and torch.equal(labels[0], logits.argmax(dim=1)[0])
    assert len(labels.unique()) >= 2


def test_a_checkout_without_the_dataset_config_is_one_line(tmp_path, capsys):
    from helpers import assert_one_line

    from sclip.cli import main_guard
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', str(tmp_path), '--config', 'configs/groupvit/voc21.py']))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, 'segmentation/configs/_base_/datasets/pascal_voc12.py')


def test_a_benchmark_the_official_code_has_no_config_for_is_one_line(checkout):
    from sclip.errors import SCLIPError
    from sclip.official_trained import official_test_cfg
    with pytest.raises(SCLIPError, match='no dataset config for ade20k; measure one of: coco_object, context60, voc21'):
        official_test_cfg(checkout, 'groupvit', 'ade20k')


def test_tcl_checkpoints_number_the_masker_blocks_as_the_official_model(tmp_path):
    """The official MaskerBackbone holds CLIP's ``resblocks[ie_freeze:]``, an nn.Sequential slice
    that keeps its keys: the released tcl.pth names them from ie_freeze; ours counts from 0 and
    reads both numberings into the same model."""
    from sclip.models.tcl.checkpoint import load_tcl
    from sclip.models.tcl.testing import TINY, write_tcl_checkpoint
    path = write_tcl_checkpoint(str(tmp_path / 'tcl.pth'))
    saved = torch.load(path, weights_only=False)
    blocks = 'masker.image_encoder.backbone.transformer.resblocks.'
    numbers = {k[len(blocks):].split('.')[0] for k in saved['model'] if k.startswith(blocks)}
    assert numbers == {str(i) for i in range(TINY['ie_freeze'], TINY['layers'])}
    from_zero = {(k.replace(f'{blocks}{TINY["ie_freeze"]}.', f'{blocks}0.') if k.startswith(blocks) else k): v
                 for k, v in saved['model'].items()}
    torch.save({**saved, 'model': from_zero}, str(tmp_path / 'zero.pth'))
    official, renumbered = load_tcl(path).state_dict(), load_tcl(str(tmp_path / 'zero.pth')).state_dict()
    assert official.keys() == renumbered.keys()
    assert all(torch.equal(official[k], renumbered[k]) for k in official)
    assert torch.equal(official[f'{blocks}0.attn.in_proj_weight'],
                       saved['model'][f'{blocks}{TINY["ie_freeze"]}.attn.in_proj_weight'].float())
