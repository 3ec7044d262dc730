"""--against-official for Trident and CorrCLIP, and --memory (peak resident memory of each side).

The checkout here is a stand-in written like those repositories: its segmentor takes SAM's
checkpoint by file (Trident's ``sam_ckpt``, an absolute path of its author's machine in its
config), reads pre-generated region masks (CorrCLIP's ``instance_mask_path``, ``<stem>.npz``), and
loads an OpenCLIP tag through a vendored ``open_clip`` whose Hugging Face download would go to the
network. It records what it was given; nothing here reaches the network.
"""
import json
import os.path as osp
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import REPO, assert_one_line, load_tool, report_rows, write_openai_checkpoint
from test_against_official import make_checkout

VENDORED = 'vendored_hf_clip_for_test'

SEGMENTOR = f'''
import json
import numpy as np
import torch
from {VENDORED}.factory import create_model


class Trident(torch.nn.Module):
    def __init__(self, clip_type, model_type, name_path, record, device=torch.device('cuda'),
                 sam_ckpt='/home/author/exclude/sam_vit_b_01ec64.pth', instance_mask_path=None, **kwargs):
        super().__init__()
        clip = create_model(model_type, clip_type)
        masks = None if instance_mask_path is None else \\
            np.load(instance_mask_path + '/image_0.npz')['instance_mask'].tolist()
        with open(record, 'w') as handle:
            json.dump(dict(clip=clip, sam=sam_ckpt, sam_sum=float(sum(v.sum() for v in torch.load(
                sam_ckpt, weights_only=True).values())) if not sam_ckpt.startswith('/home/author') else None, masks=masks, model_type=model_type,
                name_path=name_path, kwargs=sorted(kwargs)), handle)
'''


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    repo = tmp_path / 'official'
    (repo / 'configs').mkdir(parents=True)
    (repo / VENDORED).mkdir()
    (repo / VENDORED / '__init__.py').write_text('')
    (repo / VENDORED / 'pretrained.py').write_text(
        'def download_pretrained_from_hf(model_id, filename="open_clip_pytorch_model.bin", cache_dir=None):\n'
        '    raise RuntimeError("network: " + model_id)\n')
    (repo / VENDORED / 'factory.py').write_text(  # as open_clip's: the name imported from .pretrained
        'from .pretrained import download_pretrained_from_hf\n\n\n'
        'def create_model(model_name, pretrained=None):\n'
        '    return None if pretrained == "openai" else download_pretrained_from_hf("laion/" + model_name)\n')
    (repo / 'trident.py').write_text(SEGMENTOR)
    record = str(tmp_path / 'record.json')
    (repo / 'configs' / 'cfg_voc21.py').write_text(
        f"model = dict(type='Trident', clip_type='openai', model_type='ViT-B/16', name_path='./configs/cls.txt', "
        f"record={record!r})\n")
    (repo / 'configs' / 'cls.txt').write_text('background\n')
    sam = tmp_path / 'sam_vit_b_01ec64.pth'
    torch.save({'image_encoder.neck.0.weight': torch.full((2, 2), 0.5)}, str(sam))
    monkeypatch.delitem(sys.modules, VENDORED, raising=False)
    return SimpleNamespace(repo=str(repo), config=str(repo / 'configs' / 'cfg_voc21.py'), record=record,
                           sam=str(sam))


def built(checkout, **kwargs):
    from sclip.official_compare import build_official_segmentor
    build_official_segmentor(checkout.repo, checkout.config, kwargs.pop('weights', None), **kwargs)
    with open(checkout.record) as handle:
        return json.load(handle)


def test_sam_checkpoint_hf_download_and_options_reach_the_official_constructor(checkout, tmp_path):
    weights = str(tmp_path / 'random-ViT-H-14.pt')
    seen = built(checkout, weights=weights, checkpoints=[str(tmp_path / 'dino_vitbase16_pretrain.pth'), checkout.sam],
                 overrides=dict(model_type='ViT-H-14', clip_type='laion2b_s32b_b79k', cos_fac=3.0))
    assert seen['sam'] == checkout.sam and seen['sam_sum'] == 2.0  # our SAM file, matched by its official name
    assert seen['clip'] == weights  # the OpenCLIP tag's Hugging Face download answered with our file
    assert seen['model_type'] == 'ViT-H-14' and seen['kwargs'] == ['cos_fac']
    assert osp.normpath(seen['name_path']) == osp.join(checkout.repo, 'configs', 'cls.txt')
    assert 'network' in open(osp.join(checkout.repo, VENDORED, 'pretrained.py')).read()  # the checkout is unedited
    seen = built(checkout)
    assert seen['sam'] == '/home/author/exclude/sam_vit_b_01ec64.pth' and seen['clip'] is None  # nothing given


def test_an_option_the_official_constructor_does_not_take_is_one_line(tmp_path):
    from sclip.errors import SCLIPError
    from sclip.official_compare import official_overrides

    class Strict:
        def __init__(self, clip_path, name_path):
            pass
    with pytest.raises(SCLIPError, match="takes no argument 'model_type'; it takes clip_path, name_path"):
        official_overrides(Strict, [], {'model_type': 'ViT-H-14'})
    assert official_overrides(Strict, [str(tmp_path / 'sam_vit_b_01ec64.pth')], {'name_path': 'x'}) == {'name_path': 'x'}
    tool = load_tool('benchmark')
    with pytest.raises(SCLIPError, match='--official-options'):
        tool.official_options(['name_path'])


def test_region_masks_written_once_and_read_by_both_sides(checkout, tmp_path):
    from sclip.models.region_masks import FileMasks
    from sclip.runner import load_config
    tool = load_tool('benchmark')
    files = tool.voc_sized_images(str(tmp_path / 'images'), 1, size=(40, 30))
    cfg = load_config(osp.join(REPO, 'configs', 'corrclip', 'voc21.py'))
    overrides = tool.region_masks_for(cfg, files, str(tmp_path))
    ours = FileMasks(cfg.model.region_masks.root).masks(files[0])
    assert ours.shape == (30, 40) and ours[:, :4].max() == 0  # an unsegmented band, the minimum value
    assert sorted(np.unique(ours)) == list(range(13))  # 12 regions of a 3 x 4 grid
    seen = built(checkout, overrides=overrides)
    assert np.array_equal(np.array(seen['masks']), ours)  # the official side reads the same masks
    assert tool.region_masks_for(load_config(osp.join(REPO, 'configs', 'trident', 'voc21.py')), files, '') == {}


def test_foundation_checkpoints_name_dino_and_sam(tmp_path):
    from sclip.runner import load_config
    tool = load_tool('benchmark')
    cfg = load_config(osp.join(REPO, 'configs', 'trident', 'voc21.py'))
    args = SimpleNamespace(vfm_checkpoint='/d/dino_vitbase16_pretrain.pth', sam_checkpoint='/s/sam_vit_b_01ec64.pth')
    assert tool.foundation_checkpoints(args, cfg, str(tmp_path)) == [args.vfm_checkpoint, args.sam_checkpoint]
    assert cfg.model.vfm.checkpoint == args.vfm_checkpoint and cfg.model.method.sam.checkpoint == args.sam_checkpoint


def test_peak_resident_memory_rises_and_resets():
    import mmap
    from sclip.process_memory import current_rss, peak_rss, reset_peak_rss
    size = 256 * 2 ** 20
    reset_peak_rss()
    # An anonymous mapping of its own: fresh pages that become resident when written and leave the
    # resident set on close. (A torch tensor may be served from heap pages an earlier test left resident,
    # so that neither its allocation nor its release moves the resident set.)
    block = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    during = current_rss()
    block.close()
    after = current_rss()
    assert after < during - 128 * 2 ** 20  # the block left the resident set
    assert peak_rss() >= during - 2 ** 20  # the peak remembers it
    reset_peak_rss()
    assert peak_rss() < during - 128 * 2 ** 20 and abs(peak_rss() - current_rss()) < 8 * 2 ** 20


def test_memory_mode_measures_each_side_in_its_own_process(tmp_path, capsys):
    weights = write_openai_checkpoint(str(tmp_path / 'tiny.pt'), layers=1, width=64)
    tool = load_tool('benchmark')
    tool.main(['--against-official', make_checkout(str(tmp_path / 'official')), '--pretrained', weights,
               '--images', '1', '--image-size', '64x48', '--memory'])
    rows = report_rows(capsys.readouterr().out)
    assert rows['pixel agreement'].strip() == f'1.00000 ({64 * 48} of {64 * 48})'
    for side in ('ours', 'official'):
        peak = float(rows[f'{side}: peak RSS, inference'].split()[0])
        assert peak >= float(rows[f'{side}: RSS after loading'].split()[0]) > 0.1  # GiB: torch and mmseg are in
    assert 'x inference' in rows['peak ratio (official / ours)']


def test_a_failing_side_is_one_line(tmp_path, capsys):
    from sclip.cli import main_guard
    weights = write_openai_checkpoint(str(tmp_path / 'tiny.pt'), layers=1, width=64)
    checkout = make_checkout(str(tmp_path / 'official'))
    with open(osp.join(checkout, 'configs', 'cfg_voc21.py'), 'a') as handle:
        handle.write("model['name_path'] = './configs/missing.txt'\n")
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(['--against-official', checkout, '--pretrained', weights, '--images', '1',
                                      '--image-size', '64x48', '--memory']))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, 'the official side failed')


@pytest.mark.parametrize('config, keys', [
    ('configs/trident/voc21.py', ('model.vfm.checkpoint', 'model.method.sam.checkpoint')),
    ('configs/segearth_ov/openearthmap.py', ('model.method.upsampler.checkpoint',)),
    ('configs/corrclip/voc21.py', ('model.vfm.checkpoint', 'model.region_masks.root')),
])
def test_memory_processes_load_the_files_the_parent_resolved(config, keys, tmp_path):
    """--memory's processes load the config again: the files set in the parent's config (random
    foundation models, SegEarth-OV's upsampler, CorrCLIP's masks) reach them as options."""
    from sclip.runner import load_config
    tool = load_tool('benchmark')
    cfg = load_config(osp.join(REPO, config))
    for key in keys:
        node = cfg
        *parents, last = key.split('.')
        for part in parents:
            node = node[part]
        node[last] = str(tmp_path / last)
    options = tool.file_options(cfg)
    assert sorted(options) == sorted(keys)
    again = load_config(osp.join(REPO, config), options)
    for key in keys:
        node = again
        for part in key.split('.'):
            node = node[part]
        assert node == options[key]
