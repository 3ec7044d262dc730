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

from helpers import MMSEG_BOILERPLATE, REPO, load_tool, report_rows

SEGMENTOR = '''
import types

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
                 area_thd=None, slide_stride=112, slide_crop=224, background_only=False, pamr_steps=0):
        super().__init__(data_preprocessor=SegDataPreProcessor(
            mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], rgb_to_bgr=True))
        with open(name_path) as handle:  # a relative path: read from the checkout
            handle.read()
        self.inner = Ours(class_names=name_path, clip_path=clip_path, logit_scale=logit_scale,
                                    prob_thd=prob_thd, area_thd=area_thd, slide_stride=slide_stride,
                                    slide_crop=slide_crop, text_cache_dir=False).to(device)
        self.background_only = background_only
        # as the SCLIP family holds its refinement (its labels here come from ours, without it)
        self.pamr = types.SimpleNamespace(num_iter=pamr_steps) if pamr_steps > 0 else None
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
''' + MMSEG_BOILERPLATE


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


def run(capsys, checkout, weights, *extra):
    tool = load_tool('benchmark')
    tool.main(['--against-official', checkout, '--pretrained', weights, '--images', '2', '--rounds', '2', *extra])
    out = capsys.readouterr().out
    return report_rows(out)


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


# A checkout in FreeCP's shape: its own open_clip (the name of ours) that loads CLIP only by the
# 'openai' tag in fp16, a segmentor that opens each image's label file and casts its input to half;
# ITACLIP's weights key (model_name) and class file named from the checkout's parent; ClearCLIP's
# load-time import of code the config never runs (BLIP).
VENDORED = {
    'open_clip/__init__.py': 'from .factory import create_model\nfrom . import openai, pretrained\nVENDORED = True\n',
    'open_clip/factory.py': textwrap.dedent('''\
        from .openai import load_openai_model
        def create_model(model_name, pretrained=None, precision='fp32', device='cpu'):
            return load_openai_model(model_name, precision)
        '''),
    'open_clip/openai.py': textwrap.dedent('''\
        import torch
        from .pretrained import download_pretrained_from_url
        def load_openai_model(name, precision):
            weights = torch.zeros(1).to(torch.float16 if precision == 'fp16' else torch.float32)
            return download_pretrained_from_url('https://openaipublic.azureedge.net/clip/ViT-B-16.pt'), str(weights.dtype)
        '''),
    'open_clip/pretrained.py': 'def download_pretrained_from_url(url, cache_dir=None):\n    raise RuntimeError("network")\n',
    'BLIP/__init__.py': '',
    'BLIP/models/__init__.py': '',
    'BLIP/models/blip_retrieval.py': 'raise ImportError("No module named fairscale")\n',
    'freecp_like.py': textwrap.dedent('''\
        import json
        import sys
        import torch
        from PIL import Image
        from mmseg.models.segmentors import BaseSegmentor
        from mmseg.models.data_preprocessor import SegDataPreProcessor
        from mmengine.structures import PixelData
        from open_clip import create_model
        from BLIP.models.blip_retrieval import blip_retrieval


        class FreeCPLike(BaseSegmentor):
            def __init__(self, model_name, name_path, record, device=torch.device('cuda')):
                super().__init__(data_preprocessor=SegDataPreProcessor(
                    mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], bgr_to_rgb=True))
                weights, dtype = create_model('ViT-B/16', pretrained='openai', precision='fp16')
                self.seen = dict(weights=weights, dtype=dtype, model_name=model_name,
                                 classes=open(name_path).read().splitlines()[0],
                                 vendored=getattr(sys.modules['open_clip'], 'VENDORED', False))
                self.record = record

            def predict(self, inputs, data_samples):
                label = data_samples[0].metainfo['img_path'].replace('JPEGImages', 'SegmentationClass')
                self.seen.update(label_size=list(Image.open(label).size), half=str(inputs.half().dtype))
                with open(self.record, 'w') as handle:
                    json.dump(self.seen, handle)
                for sample in data_samples:
                    sample.set_data(dict(pred_sem_seg=PixelData(data=torch.zeros(
                        (1,) + tuple(sample.metainfo['ori_shape']), dtype=torch.int64))))
                return data_samples
        ''') + MMSEG_BOILERPLATE,
}


def make_vendoring_checkout(folder):
    for name, text in VENDORED.items():
        os.makedirs(osp.dirname(osp.join(folder, name)), exist_ok=True)
        with open(osp.join(folder, name), 'w') as f:
            f.write(text)
    os.makedirs(osp.join(folder, 'configs'))
    with open(osp.join(folder, 'configs', 'cls_voc21.txt'), 'w') as f:
        f.write('background\naeroplane\n')
    record = osp.join(folder, 'seen.json')
    with open(osp.join(folder, 'configs', 'cfg_voc21.py'), 'w') as f:  # named from the checkout's parent
        f.write(f"model = dict(type='FreeCPLike', model_name='ViT-B/16', record={record!r},\n"
                f"             name_path='./{osp.basename(folder)}/configs/cls_voc21.txt')\n")
    return record


def test_a_vendored_open_clip_runs_as_its_own_and_ours_stays(tmp_path, tiny_weights, capsys):
    import json
    import sys

    import open_clip
    half = torch.Tensor.half
    checkout = str(tmp_path / 'official')
    record = make_vendoring_checkout(checkout)
    rows = run(capsys, checkout, tiny_weights, '--image-size', '64x48', '--official-stub', 'BLIP.models.blip_retrieval')
    seen = json.load(open(record))
    assert seen['weights'] == osp.abspath(tiny_weights)  # 'openai' loads the weights file given, not the network
    assert seen['dtype'] == 'torch.float32'  # its fp16 stays fp32 on the CPU, as ours runs
    assert seen['model_name'] == osp.abspath(tiny_weights)  # ITACLIP's weights key
    assert seen['classes'] == 'background'  # its class file, named from the checkout's parent, was found
    assert not seen['vendored']  # built after the import: sys.modules holds ours again
    assert seen['label_size'] == [64, 48]  # the label file it opens is there, at the image's size
    assert seen['half'] == 'torch.float32'
    assert rows['ours'].strip().endswith('(2 images, 64x48)')
    assert sys.modules['open_clip'] is open_clip and not hasattr(open_clip, 'VENDORED')  # ours is back
    assert 'BLIP.models.blip_retrieval' not in sys.modules
    assert torch.Tensor.half is half


def test_without_the_stub_the_load_time_import_is_one_line(tmp_path, tiny_weights, capsys):
    from helpers import assert_one_line

    from sclip.cli import main_guard
    from sclip.errors import SCLIPError
    from sclip.official_compare import stub_module
    checkout = str(tmp_path / 'official')
    make_vendoring_checkout(checkout)
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', checkout, '--pretrained', tiny_weights]))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, 'fairscale')
    with pytest.raises(SCLIPError, match='--official-stub BLIP'):
        stub_module('BLIP').blip_retrieval(pretrained='x.pth')  # a stub the code does call says so
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', checkout, '--image-size', '64']))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, '--image-size 64')


def test_unlike_pamr_steps_are_refused_before_timing(tmp_path, tiny_weights, capsys):
    """NACLIP's official segmentor runs 10 PAMR steps unless told otherwise, our NACLIP config none:
    timing them side by side would time PAMR, not the codes."""
    from helpers import assert_one_line

    from sclip.cli import main_guard
    checkout = make_checkout(str(tmp_path / 'official'))
    with open(osp.join(checkout, 'configs', 'cfg_voc21.py'), 'a') as handle:
        handle.write("model['pamr_steps'] = 10\n")
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', checkout, '--pretrained', tiny_weights,
                                      '--images', '1', '--image-size', '64x48']))
    err = capsys.readouterr().err
    assert_one_line(exit_info.value.code, err, 'ours runs 0 PAMR steps')
    assert 'official SCLIPSegmentor 10' in err and '--official-options pamr_steps=0' in err
    assert 'round' not in err  # refused before anything was timed
    rows = run(capsys, checkout, tiny_weights, '--official-options', 'pamr_steps=0')
    assert rows['pixel agreement'].strip().startswith('1.00000')
