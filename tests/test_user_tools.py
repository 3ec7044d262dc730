"""What users touch: demo, attention figure, --show-dir, progress, check_data."""
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import BENCHMARKS, LAYOUTS, REPO, load_tool, make_dataset, run_tool, write_image


def test_demo_writes_overlay_with_legend(tmp_path, tiny_checkpoint):
    image_path = str(tmp_path / 'photo.jpg')
    write_image(image_path, (173, 121), seed=5)
    out, labels = str(tmp_path / 'overlay.png'), str(tmp_path / 'labels.png')
    load_tool('demo').main([image_path, '--classes', 'cat; dog; grass, lawn', '--out', out,
                            '--label-map', labels, '--cfg-options', f'model.pretrained={tiny_checkpoint}'])
    picture = Image.open(out)
    label_map = np.array(Image.open(labels))
    assert picture.width == 173 and picture.height > 121 and label_map.shape == (121, 173)
    names = ['cat', 'dog', 'grass']
    found = [names[c] for c in np.unique(label_map)]
    assert picture.text['sclip:classes'].split('\n') == found
    from sclip.models.segmentor import palette_for
    legend = np.array(picture.convert('RGB'))[121:]
    for c in np.unique(label_map):  # every legend class has its colour swatch under the image
        assert (legend == np.array(palette_for(3)[c], np.uint8)).all(-1).sum() >= 100


def test_demo_bad_inputs(tmp_path, capsys):
    from sclip.cli import main_guard
    tool = load_tool('demo')
    with pytest.raises(SystemExit):
        main_guard(lambda: tool.main([str(tmp_path / 'missing.jpg'), '--classes', 'cat']))
    assert 'missing.jpg: cannot be read as an image' in capsys.readouterr().err
    image_path = str(tmp_path / 'photo.jpg')
    write_image(image_path, (50, 40), seed=5)
    with pytest.raises(SystemExit):
        main_guard(lambda: tool.main([image_path, '--classes', 'cat;;dog']))
    assert 'class 2 has an empty name' in capsys.readouterr().err


def test_attention_maps_and_figure(tmp_path, tiny_checkpoint):
    from helpers import tiny_clip
    from sclip.models.backbone import CLIPDenseViT
    tool = load_tool('visualize_attention')
    visual = tiny_clip().visual
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        maps = tool.attention_maps(visual, image, ['vanilla', 'csa'], [(40, 100)], (224, 224))
        weights = CLIPDenseViT(visual, dict(type='csa')).attention_maps(image)[0]
    token = 1 + (100 // 16) * 14 + 40 // 16
    assert maps.shape == (1, 2, 14, 14)
    assert np.allclose(maps[0, 1], weights[:, token, 1:].mean(0).reshape(14, 14).numpy(), atol=1e-6)
    assert not np.allclose(maps[0, 0], maps[0, 1])
    image_path = str(tmp_path / 'photo.jpg')
    write_image(image_path, (300, 200), seed=2)
    out = str(tmp_path / 'attention.png')
    tool.main([image_path, '--points', '30,40', '250,150', '--variants', 'vanilla', 'csa', 'maskclip',
               '--out', out, '--cfg-options', f'model.pretrained={tiny_checkpoint}'])
    width, height = Image.open(out).size
    assert width > height > 0  # 2 rows x 4 columns


def test_show_dir_and_progress(tmp_path, tiny_checkpoint):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    show = tmp_path / 'show'
    run_tool('configs/sclip_voc21.py', root, tiny_checkpoint, str(tmp_path / 'w'), '--show-dir', str(show))
    pictures = sorted(show.glob('*.png'))
    assert [p.name for p in pictures] == ['2008_000002.png', '2008_000003.png']
    assert Image.open(pictures[0]).size == (3 * 60, 45)  # image | prediction | ground truth
    logs = glob.glob(str(tmp_path / 'w' / '*' / '*.log'))
    text = open(logs[0]).read()
    assert 'progress: 2/2 images' in text and 'images/s' in text and 'left' in text


def check(config, root, *extra):
    tool = load_tool('check_data')
    with pytest.raises(SystemExit) as exit_info:
        tool.main([osp.join(REPO, config), '--cfg-options', f'test_dataloader.dataset.data_root={root}', *extra])
    return exit_info.value.code


@pytest.mark.parametrize('name', BENCHMARKS)
def test_check_data_per_benchmark(name, tmp_path, capsys):
    root = make_dataset(name, str(tmp_path / 'data'))
    config = f'configs/sclip_{name}.py'
    assert check(config, root, '--no-count') == 0
    assert check(config, root) == 1 and 'expected' in capsys.readouterr().out
    _, _, seg_dir, _, seg_suffix, _, _ = LAYOUTS[name]
    label = sorted(glob.glob(osp.join(root, seg_dir, '**', f'*{seg_suffix}'), recursive=True))[0]
    array = np.array(Image.open(label))
    array[0, 0] = 200  # outside every benchmark's class range (and not 255)
    Image.fromarray(array).save(label)
    assert check(config, root, '--no-count') == 1
    out = capsys.readouterr().out
    assert osp.basename(label) in out and 'outside' in out


def test_check_data_finds_each_kind_of_problem(tmp_path, capsys):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    os.remove(osp.join(root, 'SegmentationClass', '2008_000002.png'))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(osp.join(root, 'SegmentationClass', '2008_000003.png'))
    with open(osp.join(root, 'ImageSets/Segmentation/val.txt'), 'a') as f:
        f.write('2008_999999\n')
    assert check('configs/sclip_voc21.py', root, '--no-count') == 1
    out = capsys.readouterr().out
    assert "2008_000002.jpg: its label" in out and 'missing' in out
    assert '2008_000003.png: label size 10x10 differs from image size 40x52' in out
    assert '2008_999999.jpg: image listed in the split is missing' in out
    with open(osp.join(root, 'JPEGImages', '2008_000003.jpg'), 'wb') as f:
        f.write(b'broken')
    assert check('configs/sclip_voc21.py', root, '--no-count') == 1
    assert '2008_000003.jpg: cannot be read as an image' in capsys.readouterr().out
    assert check('configs/sclip_voc21.py', str(tmp_path / 'nowhere'), '--no-count') == 1
    assert 'not found' in capsys.readouterr().out
