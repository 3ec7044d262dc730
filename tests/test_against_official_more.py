"""tools/benchmark.py --against-official for SegEarth-OV, FLOSS and CLIPer, on stand-in checkouts.

Each stand-in is written like its official repository where the tool has to meet it:
- SegEarth-OV: a top-level segmentor that ``torch.load``s its SimFeatUp checkpoint from a path of
  the checkout (``simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt``), absent here; the tool
  answers with the file our config loads.
- FLOSS: the segmentor inside a package the checkout ships under a name we import too (FLOSS's
  modified ``mmseg``), with relative imports, a ranking file read relative to the checkout, and a
  keyword (``mode='fusion'``) its evaluation script sets over its config (``--official-options``).
- CLIPer: no mmseg segmentor but a script's pieces (``ovs/pipeline.py``, ``data/load.py``,
  ``util/tools.py``, ``util/miou.py``, ``modified_clip/model.py`` over OpenAI's ``clip``, loading
  its CLIP from a fixed path) in namespace packages, a yaml config with paths relative to ``ovs/``,
  and load-time imports of a diffusion model and ``texttable`` that the run never calls.
The official sides predict background everywhere: the agreement is the share of our background.
"""
import json
import os
import os.path as osp
import sys
import textwrap
import types

import pytest
import torch

from helpers import MMSEG_BOILERPLATE, REPO, assert_one_line, load_tool, report_rows

SEGEARTH = '''
import json
import torch
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmengine.structures import PixelData


class SegEarthLike(BaseSegmentor):
    def __init__(self, clip_path, name_path, record, feature_up_cfg, device=torch.device('cuda'), prob_thd=0.0):
        super().__init__(data_preprocessor=SegDataPreProcessor(
            mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], bgr_to_rgb=True))
        ckpt = torch.load(feature_up_cfg['model_path'])['state_dict']
        with open(record, 'w') as handle:
            json.dump({key: float(value.double().sum()) for key, value in ckpt.items()}, handle)

    def predict(self, inputs, data_samples):
        for sample in data_samples:
            sample.set_data(dict(pred_sem_seg=PixelData(data=torch.zeros(
                (1,) + tuple(sample.metainfo['ori_shape']), dtype=torch.int64))))
        return data_samples
''' + MMSEG_BOILERPLATE


def background_agreement(cfg_path, weights, files, options=None):
    """An independent count: our labels of ``files`` that are 0, and all pixels."""
    from mmseg.registry import MODELS

    from sclip.official_compare import packed_samples, predict_labels
    from sclip.runner import load_config
    cfg = load_config(osp.join(REPO, cfg_path), dict({'model.clip_path': weights}, **(options or {})))
    labels = predict_labels(MODELS.build(cfg.model).eval(), packed_samples(cfg, files), official=False)
    return sum(int((label == 0).sum()) for label in labels), sum(label.numel() for label in labels)


def test_segearth_upsampler_load_gets_the_file_our_config_loads(tmp_path, tiny_weights, capsys):
    from sclip.models import simfeatup
    checkout = tmp_path / 'official'
    (checkout / 'configs').mkdir(parents=True)
    (checkout / 'segearth_like.py').write_text(SEGEARTH)
    (checkout / 'configs' / 'cls_openearthmap.txt').write_text('background\nbuilding\n')
    record = tmp_path / 'seen.json'
    (checkout / 'configs' / 'cfg_openearthmap.py').write_text(
        f"model = dict(type='SegEarthLike', clip_path='ViT-B/16', name_path='./configs/cls_openearthmap.txt',\n"
        f"             record={str(record)!r}, prob_thd=0.1, feature_up_cfg=dict(model_name='jbu_one',\n"
        f"             model_path='simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt'))\n")
    width = int(torch.load(tiny_weights)['text_projection'].shape[1])
    tool = load_tool('benchmark')
    assert tool.clip_feature_width(tiny_weights) == width and tool.clip_feature_width('openai') == 512
    given = simfeatup.save_official_checkpoint(simfeatup.build_upsampler('jbu_one', width),
                                               str(tmp_path / 'xclip_jbu_one_million_aid.ckpt'))
    tool.main(['--against-official', str(checkout), '--pretrained', tiny_weights, '--images', '1', '--rounds', '1',
               '--config', 'configs/segearth_ov/openearthmap.py', '--image-size', '64x48',
               '--upsampler-checkpoint', given])
    rows = report_rows(capsys.readouterr().out)
    state = torch.load(given)['state_dict']
    assert json.loads(record.read_text()) == pytest.approx({k: float(v.double().sum()) for k, v in state.items()})
    assert rows['upsampler'].strip() == given
    files = tool.voc_sized_images(str(tmp_path / 'images'), 1, (64, 48))
    same, total = background_agreement('configs/segearth_ov/openearthmap.py', tiny_weights, files,
                                       {'model.method.upsampler.checkpoint': given})
    assert rows['pixel agreement'].strip() == f'{same / total:.5f} ({same} of {total})'
    assert torch.load is not None and torch.load.__module__.startswith('torch')  # the redirection is undone


def test_random_upsampler_is_in_the_official_layout_at_the_width_asked(tmp_path):
    from mmengine.config import ConfigDict

    from sclip.models import simfeatup
    tool = load_tool('benchmark')
    upsampler = ConfigDict(type='jbu_one', checkpoint='x/y/xclip_jbu_one_million_aid.ckpt')
    path = tool.random_upsampler(str(tmp_path), upsampler, 32)
    assert osp.basename(path) == 'xclip_jbu_one_million_aid.ckpt'
    simfeatup.load_upsampler('jbu_one', 32, path)  # loads strictly at width 32
    with pytest.raises(Exception, match='width'):
        simfeatup.load_upsampler('jbu_one', 64, path)


# --- FLOSS: the segmentor in a package of the checkout, under a name we import too
PACKAGE = 'shadowed_pkg_for_test'
FLOSS_FILES = {
    f'{PACKAGE}/__init__.py': 'WHOSE = "theirs"\n',
    f'{PACKAGE}/models/__init__.py': '',
    f'{PACKAGE}/models/naclip/__init__.py': 'from .naclip import NACLIPLike\n',
    f'{PACKAGE}/models/naclip/helper.py': f'from {PACKAGE} import WHOSE\n',
    f'{PACKAGE}/models/naclip/naclip.py': textwrap.dedent('''\
        import json
        import torch
        from .helper import WHOSE


        class NACLIPLike(torch.nn.Module):
            def __init__(self, clip_path, name_path, mode='default', top_n=1, dataset='cityscapes',
                         device=torch.device('cuda')):
                super().__init__()
                self.seen = dict(whose=WHOSE, clip_path=clip_path, mode=mode, top_n=top_n,
                                 names=open(name_path).read().split())
                if mode == 'fusion':
                    self.seen['ranking'] = json.load(open(f'rankings/naclip/template_rankings_naclip_{dataset}.json'))
        '''),
    'configs/naclip/pascalvoc20.py': "model = dict(type='NACLIPLike', clip_path='ViT-B/16', dataset='pascalvoc20',\n"
                                     "             name_path='./configs/naclip/cls_voc20.txt')\n",
    'configs/naclip/cls_voc20.txt': 'aeroplane\nbicycle\n',
    'rankings/naclip/template_rankings_naclip_pascalvoc20.json': '{"classes": {"aeroplane": {}}}',
}


def test_a_segmentor_inside_a_shipped_package_builds_with_the_script_keywords(tmp_path, monkeypatch):
    from sclip.official_compare import build_official_segmentor, package_module_defining
    checkout = tmp_path / 'official'
    for name, text in FLOSS_FILES.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    ours = types.ModuleType(PACKAGE)
    ours.WHOSE = 'ours'
    monkeypatch.setitem(sys.modules, PACKAGE, ours)
    assert package_module_defining(str(checkout), 'NACLIPLike') == f'{PACKAGE}.models.naclip.naclip'
    segmentor = build_official_segmentor(str(checkout), str(checkout / 'configs/naclip/pascalvoc20.py'),
                                         '/w/tiny.pt', overrides={'mode': 'fusion', 'top_n': 4})
    assert segmentor.seen == dict(whose='theirs', clip_path='/w/tiny.pt', mode='fusion', top_n=4,
                                  names=['aeroplane', 'bicycle'], ranking={'classes': {'aeroplane': {}}})
    assert sys.modules[PACKAGE] is ours and f'{PACKAGE}.models' not in sys.modules  # ours back, theirs gone


# --- CLIPer: a script's pieces, not a segmentor
CLIPER_FILES = {
    'scripts/config/vit-b-16/ovs_voc21.yaml': textwrap.dedent('''\
        dataset_name: "voc21"
        model_name: "ViT-B/16"
        semantic_templates: "../template/car_template.txt"
        label_dir: "/data/datasets/VOCdevkit/VOC2012/SegmentationClassAug"
        voc12_root: "/data/datasets/VOCdevkit/VOC2012"
        img_name_list_path: "../data/voc/val.txt"
        size: 336
        logit_scale: 100
        score_threshold: 0.7
        bkg_thre: 0.6
        is_normalize: True
        sliding_crop_size: 336
        '''),
    'template/car_template.txt': 'a photo of a {}.\n  itap of a {}.  \n',
    'util/tools.py': textwrap.dedent('''\
        import yaml


        class Config:
            def __init__(self, **kwargs):
                for key, value in kwargs.items():
                    setattr(self, key, value)


        def load_yaml(filename):
            with open(filename) as file:
                return Config(**yaml.safe_load(file))
        '''),
    'util/miou.py': textwrap.dedent('''\
        import torch
        from texttable import Texttable


        def cam_to_label(cam, cls_label, bkg_thre=0.3, cls_thre=0.4, is_normalize=True):
            return cam, torch.zeros((cam.shape[0],) + tuple(cam.shape[-2:]), dtype=torch.int64)
        '''),
    'diffusion_model/stable_diffusion.py': 'import diffusers_is_not_here\n',
    'ovs/pipeline.py': textwrap.dedent('''\
        import os
        import torch
        from diffusion_model.stable_diffusion import diffusion
        from modified_clip.model import CLIPer


        class Pipeline(torch.nn.Module):
            def __init__(self, cfg, device='cpu'):
                super().__init__()
                self.cliper = CLIPer(cfg, device)
                self.cfg = cfg
                self.cliper.seen.update(cwd=os.getcwd(), refinement=cfg.refinement, fuse=cfg.fuse_feature,
                                        templates=cfg.semantic_templates, root=cfg.voc12_root)

            def forward(self, ori_img, img, fg, bg):
                self.cliper.seen.setdefault('shapes', []).append([list(ori_img.shape), list(img.shape)])
                return torch.rand(len(fg), img.shape[2] // 16, img.shape[3] // 16), torch.rand(len(fg))
        '''),
    'modified_clip/model.py': textwrap.dedent('''\
        import clip
        import torch


        class CLIPer(torch.nn.Module):
            def __init__(self, cfg, device):
                super().__init__()
                self.model, preprocess = clip.load('/home/someone/.cache/clip/ViT-B-16.pt', device=device)
                self.preprocess = preprocess
                self.seen = dict(loaded=self.model)

            def classifier(self, classnames, templates):
                self.seen.setdefault('classes', []).append(list(classnames))
                return torch.ones(len(classnames), 4)
        '''),
    'data/load.py': textwrap.dedent('''\
        from data.voc.voc_datasets import VOC12SegmentationDataset


        def load_dataset(cfg, model):
            dataset = VOC12SegmentationDataset(cfg.img_name_list_path, cfg.label_dir, cfg.voc12_root, model.preprocess)
            return dataset, model.classifier(dataset.background, cfg.semantic_templates), \\
                model.classifier(dataset.categories, cfg.semantic_templates)
        '''),
    'data/voc/voc_datasets.py': textwrap.dedent('''\
        import os
        import numpy as np
        import torch
        from PIL import Image

        NAMES = ['ground, sky', 'aeroplane', 'bicycle']


        class VOC12SegmentationDataset:
            def __init__(self, img_name_list_path, label_dir, voc_root, img_transform=None):
                self.names = open(img_name_list_path).read().split()
                self.label_dir, self.voc_root, self.img_transform = label_dir, voc_root, img_transform
                self.background, self.categories = NAMES[0].split(', '), NAMES[1:]
                self.category_number = len(self.categories)

            def __len__(self):
                return len(self.names)

            def __getitem__(self, idx):
                name = self.names[idx]
                img = Image.open(os.path.join(self.voc_root, 'JPEGImages', name + '.jpg'))
                mask = torch.tensor(np.array(Image.open(os.path.join(self.label_dir, name + '.png'))))
                ori_img = torch.from_numpy(np.array(img.convert('RGB'))).float().permute(2, 0, 1) / 255.
                return ori_img, self.img_transform(img), mask, None, name
        '''),
}


@pytest.fixture
def cliper_checkout(tmp_path, monkeypatch):
    checkout = tmp_path / 'cliper'
    for name, text in CLIPER_FILES.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    loads = []
    fake_clip = types.ModuleType('clip')  # OpenAI's package, which the stack lacks

    def load(name, device='cuda', jit=False):
        loads.append((name, str(device)))

        def preprocess(image):
            width, height = image.size
            return torch.zeros(3, height // 16 * 16 + 16, width // 16 * 16 + 16)
        return name, preprocess

    fake_clip.load = load
    monkeypatch.setitem(sys.modules, 'clip', fake_clip)
    return checkout, loads


def test_cliper_script_runs_with_our_weights_images_and_no_refinement(cliper_checkout, tmp_path, tiny_weights, capsys):
    checkout, loads = cliper_checkout
    tool = load_tool('benchmark')
    stubs = ['--official-stub', 'diffusion_model.stable_diffusion', '--official-stub', 'texttable']
    tool.main(['--against-official', str(checkout), '--pretrained', tiny_weights, '--images', '2', '--rounds', '1',
               '--config', 'configs/cliper/voc21.py', '--image-size', '64x48', *stubs])
    rows = report_rows(capsys.readouterr().out)
    assert loads == [(osp.abspath(tiny_weights), 'cpu')]  # its fixed path answered with our weights, on the CPU
    assert rows['official'].strip().startswith('scripts/config/vit-b-16/ovs_voc21.yaml')
    # the same JPEGs both sides: ours independently on them
    from sclip.official_cliper import voc2012_layout
    files = voc2012_layout(str(tmp_path / 'again'), tool.voc_sized_images(str(tmp_path / 'images'), 2, (64, 48)))
    same, total = background_agreement('configs/cliper/voc21.py', tiny_weights, files)
    assert total == 2 * 64 * 48
    assert rows['pixel agreement'].strip() == f'{same / total:.5f} ({same} of {total})'
    from sclip.official_cliper import _lies_in
    for name in ('util', 'util.tools', 'data', 'ovs', 'ovs.pipeline', 'modified_clip.model', 'diffusion_model'):
        assert not _lies_in(sys.modules.get(name), str(checkout))  # the checkout's common names are forgotten


def test_cliper_pipeline_sees_main_ovs_settings(cliper_checkout, tmp_path, tiny_weights):
    from sclip.official_cliper import build_official_cliper, voc2012_layout
    checkout, _ = cliper_checkout
    files = voc2012_layout(str(tmp_path / 'voc'), load_tool('benchmark').voc_sized_images(str(tmp_path), 1, (40, 30)))
    official = build_official_cliper(str(checkout), str(checkout / 'scripts/config/vit-b-16/ovs_voc21.yaml'),
                                     tiny_weights, files, str(tmp_path / 'voc'),
                                     stubs=['diffusion_model.stable_diffusion', 'texttable'])
    labels = official.predict_labels()
    seen = official.pipe.cliper.seen
    assert seen['cwd'] == str(checkout / 'ovs') and seen['refinement'] == 'None' and seen['fuse'] is True
    assert seen['templates'] == ['a photo of a {}.', 'itap of a {}.']  # its template file, lines stripped
    assert seen['classes'] == [['ground', 'sky'], ['aeroplane', 'bicycle']]  # its loader's names, background first
    assert seen['root'] == str(tmp_path / 'voc' / 'VOC2012')
    assert seen['shapes'] == [[[1, 3, 30, 40], [1, 3, 32, 48]]]  # the JPEG as loaded, and its own resizing
    assert [label.shape for label in labels] == [(30, 40)]


@pytest.mark.parametrize('case, needle', [('no-stub', 'diffusers_is_not_here'), ('no-yaml', 'no official config')])
def test_cliper_bad_runs_are_one_line(cliper_checkout, tiny_weights, capsys, case, needle):
    from sclip.cli import main_guard
    checkout, _ = cliper_checkout
    if case == 'no-yaml':
        os.remove(checkout / 'scripts/config/vit-b-16/ovs_voc21.yaml')
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', str(checkout), '--pretrained', tiny_weights, '--images',
                                      '1', '--config', 'configs/cliper/voc21.py', '--image-size', '32x32',
                                      '--official-stub', 'texttable']))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, needle)
