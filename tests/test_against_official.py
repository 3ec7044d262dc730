"""tools/benchmark.py --against-official: an official-style checkout imported as it is.

The checkout here is a stand-in written like the official repositories (an mmseg segmentor in
``clip_segmentor.py`` registered under a name our registry already holds, CUDA defaults and
``.cuda()`` calls, ``configs/cfg_voc21.py`` on a ``_base_``, class names relative to the
checkout). Its predictions are an independent computation of known agreement with ours.
"""
import os
import os.path as osp
import textwrap

import pytest
import torch

from helpers import REPO, load_tool, write_openai_checkpoint

SEGMENTOR = '''
import torch
import torch.nn as nn
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmengine.structures import PixelData
from sclip.models.segmentor import SCLIPSegmentor as Ours


@MODELS.register_module()
class SCLIPSegmentor(BaseSegmentor):  # the name our registry holds: registering must not replace ours
    def __init__(self, clip_path, name_path, device=torch.device('cuda'), logit_scale=40, prob_thd=0.0,
                 area_thd=None, slide_stride=112, slide_crop=224, background_only=False):
        super().__init__(data_preprocessor=SegDataPreProcessor(
            mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], rgb_to_bgr=True))
        with open(name_path) as handle:  # a relative path: read from the checkout
            handle.read()
        self.inner = Ours(class_names=name_path, clip_path=clip_path, logit_scale=logit_scale,
                                    prob_thd=prob_thd, area_thd=area_thd, slide_stride=slide_stride,
                                    slide_crop=slide_crop, text_cache_dir=False).to(device)
        self.background_only = background_only
        self.marker = torch.zeros(1).to(device)
        self.cuda()

    def predict(self, inputs, data_samples):
        inputs = inputs.cuda()
        torch.cuda.synchronize()
        samples = self.inner.predict(inputs.to('cuda'), data_samples)
        if self.background_only:
            for sample in samples:
                sample.set_data(dict(pred_sem_seg=PixelData(data=torch.zeros_like(sample.pred_sem_seg.data))))
        return samples

    def _forward(self, inputs, data_samples=None):
        pass

    def inference(self, inputs, batch_img_metas):
        pass

    def encode_decode(self, inputs, batch_img_metas):
        pass

    def extract_feat(self, inputs):
        pass

    def loss(self, inputs, data_samples):
        pass
'''


def make_checkout(folder, background_only=False):
    os.makedirs(osp.join(folder, 'configs'))
    with open(osp.join(folder, 'clip_segmentor.py'), 'w') as f:
        f.write(SEGMENTOR)
    with open(osp.join(folder, 'configs', 'base_config.py'), 'w') as f:
        f.write("model = dict(type='SCLIPSegmentor', clip_path='ViT-B/16')\n")
    with open(osp.join(REPO, 'configs', 'class_names', 'voc21.txt')) as src, \
            open(osp.join(folder, 'configs', 'cls_voc21.txt'), 'w') as dst:
        dst.write(src.read())
    with open(osp.join(folder, 'configs', 'cfg_voc21.py'), 'w') as f:
        f.write(textwrap.dedent(f'''\
            _base_ = './base_config.py'
            model = dict(name_path='./configs/cls_voc21.txt', logit_scale=65, prob_thd=0.1, area_thd=0.1,
                         background_only={background_only})
            '''))
    return folder


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    return write_openai_checkpoint(str(tmp_path_factory.mktemp('weights') / 'tiny.pt'), layers=2, width=128)


def run(capsys, checkout, weights, *extra):
    tool = load_tool('benchmark')
    tool.main(['--against-official', checkout, '--pretrained', weights, '--images', '2', '--rounds', '2', *extra])
    out = capsys.readouterr().out
    return dict(line.split('  ', 1) for line in out.splitlines() if '  ' in line)


def test_same_code_agrees_everywhere_and_leaves_our_registry_and_torch_alone(tmp_path, tiny_weights, capsys):
    from mmseg.registry import MODELS

    from sclip.models.segmentor import SCLIPSegmentor
    cuda, to = torch.Tensor.cuda, torch.Tensor.to
    rows = run(capsys, make_checkout(str(tmp_path / 'official')), tiny_weights)
    assert rows['pixel agreement'].strip().startswith('1.00000')
    assert rows['speed ratio (official / ours)'].strip().endswith('x')
    assert len(rows['ours, s per round'].split()) == 2 and len(rows['official, s per round'].split()) == 2
    assert 'cores' in rows['machine'] and 'UTC' in rows['date']  # a ratio names its machine and time
    assert MODELS.get('SCLIPSegmentor') is SCLIPSegmentor  # the checkout's registration was a no-op
    assert torch.Tensor.cuda is cuda and torch.Tensor.to is to  # the CUDA redirection is undone
    assert os.getcwd() != str(tmp_path / 'official')


def test_agreement_is_the_share_of_equal_pixels(tmp_path, tiny_weights, capsys):
    """An official side that predicts background everywhere agrees exactly where ours says 0."""
    from mmseg.registry import MODELS

    from sclip.official_compare import packed_samples, predict_labels
    from sclip.runner import load_config
    rows = run(capsys, make_checkout(str(tmp_path / 'official'), background_only=True), tiny_weights)
    same, total = rows['pixel agreement'].split('(')[1].rstrip(')').split(' of ')
    # independent count: our labels on the same images (the tool writes them the same way)
    tool = load_tool('benchmark')
    files = tool.voc_sized_images(str(tmp_path), 2)  # the images the tool timed
    cfg = load_config(osp.join(REPO, 'configs', 'sclip_voc21.py'), {'model.clip_path': tiny_weights})
    ours = MODELS.build(cfg.model).eval()
    labels = predict_labels(ours, packed_samples(cfg, files), official=False)
    assert int(total) == sum(label.numel() for label in labels) == 2 * 375 * 500
    assert int(same) == sum(int((label == 0).sum()) for label in labels)
    assert 0 < int(same) < int(total)  # the test sees a partial agreement, not a trivial one
    assert tool.benchmark_of('configs/naclip/voc21.py') == 'voc21'


@pytest.mark.parametrize('case, needle', [('no-folder', 'not a folder'), ('no-config', 'no official config'),
                                          ('no-class', 'defines class')])
def test_bad_checkouts_are_one_line(tmp_path, tiny_weights, capsys, case, needle):
    from helpers import assert_one_line

    from sclip.cli import main_guard
    checkout = str(tmp_path / 'official')
    if case != 'no-folder':
        make_checkout(checkout)
    if case == 'no-config':
        os.remove(osp.join(checkout, 'configs', 'cfg_voc21.py'))
    if case == 'no-class':
        os.remove(osp.join(checkout, 'clip_segmentor.py'))
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', checkout, '--pretrained', tiny_weights]))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, needle)
