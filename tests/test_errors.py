"""Each bad input stops before any image is processed, with one line naming the culprit."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from helpers import REPO, assert_one_line, make_dataset, options, run_main

VOC = osp.join(REPO, 'configs', 'sclip_voc21.py')


@pytest.fixture
def voc(tmp_path):
    return make_dataset('voc21', str(tmp_path / 'data'))


def test_missing_data_root(capsys, tmp_path, tiny_checkpoint):
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'),
                         *options(str(tmp_path / 'nowhere'), tiny_checkpoint))
    assert_one_line(code, err, 'nowhere', 'data_root')


def test_missing_split_file(capsys, tmp_path, voc, tiny_checkpoint):
    os.remove(osp.join(voc, 'ImageSets/Segmentation/val.txt'))
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, tiny_checkpoint))
    assert_one_line(code, err, 'split file', 'val.txt')


def test_missing_weights_file(capsys, tmp_path, voc):
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, '/no/such/ViT-B-16.pt'))
    assert_one_line(code, err, '/no/such/ViT-B-16.pt', 'not found')


def test_weights_not_downloadable(capsys, tmp_path, voc, monkeypatch):
    import open_clip

    def offline(*args, **kwargs):
        raise RuntimeError('Failed to download weights: no network')
    monkeypatch.setattr(open_clip, 'create_model', offline)
    from sclip.models import clip_loader
    monkeypatch.setattr(clip_loader, 'cached_weights', lambda *a, **k: None)
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: True)
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, 'openai'))
    assert_one_line(code, err, 'could not be downloaded', 'model.clip_path=/path/to/ViT-B-16.pt')
    monkeypatch.setattr(clip_loader, 'network_reachable', lambda *a, **k: False)  # offline: at once
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, 'openai'))
    assert_one_line(code, err, 'not cached and there is no network', 'model.clip_path=')


def test_not_a_clip_checkpoint(capsys, tmp_path, voc):
    import torch
    path = str(tmp_path / 'resnet50.pth')
    torch.save({'layer1.0.conv1.weight': torch.zeros(2)}, path)
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, path))
    assert_one_line(code, err, 'resnet50.pth', 'not a CLIP ViT checkpoint')


def test_class_count_mismatch(capsys, tmp_path, voc, tiny_checkpoint):
    names = tmp_path / 'names.txt'
    names.write_text('cat\ndog\n')
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'),
                         *options(voc, tiny_checkpoint, f'model.class_names={names}'))
    assert_one_line(code, err, 'names.txt lists 2 classes', 'has 21')


def test_empty_class_name(capsys, tmp_path, voc, tiny_checkpoint):
    names = tmp_path / 'names.txt'
    names.write_text('\n'.join(['background'] + ['cat'] * 9 + ['dog, '] + ['cow'] * 10))
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'),
                         *options(voc, tiny_checkpoint, f'model.class_names={names}'))
    assert_one_line(code, err, 'names.txt', 'class 11 has an empty name')


def test_missing_label_named_before_start(capsys, tmp_path, voc, tiny_checkpoint):
    os.remove(osp.join(voc, 'SegmentationClass', '2008_000003.png'))
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, tiny_checkpoint))
    assert_one_line(code, err, '2008_000003.png', 'missing')


@pytest.mark.parametrize('workers', [0, 1])  # with workers, DataLoader wraps the error
def test_corrupt_image_named(capsys, tmp_path, voc, tiny_checkpoint, workers):
    with open(osp.join(voc, 'JPEGImages', '2008_000003.jpg'), 'wb') as f:
        f.write(b'\xff\xd8 this is not a jpeg')
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'),
                         *options(voc, tiny_checkpoint, f'test_dataloader.num_workers={workers}'))
    assert_one_line(code, err, '2008_000003.jpg', 'cannot be read as an image')


def test_missing_config_in_a_real_process(tmp_path):
    result = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), 'configs/nope.py'],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: config 'configs/nope.py' not found (looked for " \
                                    f"{osp.join(REPO, 'configs', 'nope.py')}); pass a file such as configs/sclip_voc21.py."


def test_corrupt_label_points_to_check_data(capsys, tmp_path, voc, tiny_checkpoint):
    with open(osp.join(voc, 'SegmentationClass', '2008_000003.png'), 'wb') as f:
        f.write(b'not a png')
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, tiny_checkpoint))
    assert_one_line(code, err, 'label file could not be decoded', 'tools/check_data.py')


@pytest.mark.parametrize('module,cls,key,meant', [
    ('sclip.models.segmentor', 'SCLIPSegmentor', 'slide_crp', 'slide_crop'),
    ('sclip.models.groupvit.segmentor', 'GroupViTSegmentor', 'bg_thres', 'bg_thresh'),
    ('sclip.models.tcl.segmentor', 'TCLSegmentor', 'kp_ww', 'kp_w'),
    ('sclip.models.cliper_segmentor', 'CLIPerSegmentor', 'logit_scal', 'logit_scale'),
])
def test_a_misspelt_segmentor_setting_is_refused_with_its_closest(module, cls, key, meant):
    """Built directly (not through a config, whose planning checks first), each segmentor still
    refuses a setting it does not have, before building anything, naming the one meant."""
    import importlib
    import inspect

    from sclip.errors import SCLIPError
    segmentor = getattr(importlib.import_module(module), cls)
    required = [name for name, p in inspect.signature(segmentor.__init__).parameters.items()
                if name != 'self' and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
    with pytest.raises(SCLIPError) as error:
        segmentor(*['unused-file.txt'] * len(required), **{key: 1, 'zz_other': 2})
    message = str(error.value)
    assert message.startswith(f'model.{key} is not a setting; did you mean {meant!r}? (valid: '), message
    valid = message[message.index('(valid: ') + 8:-2].split(', ')
    assert '\n' not in message and meant in valid and 'self' not in valid and 'unknown' not in valid
