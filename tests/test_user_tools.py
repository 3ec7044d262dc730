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
    from sclip.visualize import distinct_palette
    palette = distinct_palette(3)  # no benchmark has exactly these classes
    rgb = np.array(picture.convert('RGB'))
    overlay = (np.array(Image.open(image_path).convert('RGB')) * 0.5 + np.array(palette)[label_map] * 0.5)
    assert np.abs(rgb[:121].astype(float) - overlay).max() <= 1  # each pixel blended with its class colour
    legend = rgb[121:]
    for c in np.unique(label_map):  # every legend class has its colour swatch under the image
        assert (legend == np.array(palette[c], np.uint8)).all(-1).sum() >= 64


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
    write_image(image_path, (300, 120), seed=2)
    out = str(tmp_path / 'attention.png')
    tool.main([image_path, '--points', '30,40', '250,100', '--variants', 'vanilla', 'csa', 'maskclip',
               '--out', out, '--cfg-options', f'model.clip_path={tiny_checkpoint}'])  # the documented key
    picture = Image.open(out)
    assert picture.text['sclip:grid'] == '2x4'  # rows: points; columns: the photo, then each variant
    assert picture.text['sclip:panels'].split('\n') == [
        'image (30, 40)', 'vanilla (30, 40)', 'csa (30, 40)', 'maskclip (30, 40)',
        'image (250, 100)', 'vanilla (250, 100)', 'csa (250, 100)', 'maskclip (250, 100)']
    panel_w, panel_h = (int(v) for v in picture.text['sclip:panel_size'].split('x'))
    assert panel_w / panel_h == pytest.approx(300 / 120, rel=0.02)  # the photo's aspect, not a square
    strip = int(picture.text['sclip:title_height'])
    gap = (picture.width - 4 * panel_w) // 3
    assert picture.size == (4 * panel_w + 3 * gap, 2 * (strip + panel_h) + gap)
    photo = np.array(Image.open(image_path).convert('RGB').resize((panel_w, panel_h), Image.BICUBIC), float)
    first = np.array(picture.convert('RGB'), float)[strip:strip + panel_h, :panel_w]
    far = np.ones((panel_h, panel_w), bool)
    far[20:60, 10:50] = False  # away from the query-point marker at (30, 40)
    assert np.abs(first - photo)[far].mean() < 1  # column 1 is the photo itself


def test_show_dir_and_progress(tmp_path, tiny_checkpoint):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    show, pred = tmp_path / 'show', tmp_path / 'pred'
    run_tool('configs/sclip_voc21.py', root, tiny_checkpoint, str(tmp_path / 'w'), '--show-dir', str(show),
             '--out', str(pred))
    pictures = sorted(show.glob('*.png'))
    assert [p.name for p in pictures] == ['2008_000002.png', '2008_000003.png']
    picture = Image.open(pictures[0])
    assert picture.text['sclip:panels'].split('\n') == ['image', 'prediction', 'ground truth', 'errors']
    strip, gap = int(picture.text['sclip:title_height']), (picture.width - 4 * 60) // 3
    assert picture.size == (4 * 60 + 3 * gap, strip + 45) and strip > 0
    rgb = np.array(picture.convert('RGB')).astype(int)

    def panel(index):
        return rgb[strip:, index * (60 + gap):index * (60 + gap) + 60]

    image = np.array(Image.open(osp.join(root, 'JPEGImages', '2008_000002.jpg')).convert('RGB')).astype(int)
    assert np.abs(panel(0) - image).mean() < 2  # the image itself (up to the JPEG decoder)
    for index in range(4):  # a title strip above each panel: dark text on white, unlike the image
        title = rgb[:strip, index * (60 + gap):index * (60 + gap) + 60]
        assert (title.max(-1) < 128).sum() >= 5 and (title == 255).all(-1).mean() > 0.5
    truth = np.array(Image.open(osp.join(root, 'SegmentationClass', '2008_000002.png')))
    prediction = np.array(Image.open(pred / '2008_000002.png'))
    errors = panel(3)
    assert (truth == 255).any() and ((prediction != truth) & (truth != 255)).any()
    assert np.array_equal((errors == [255, 0, 0]).all(-1), (prediction != truth) & (truth != 255))
    assert np.array_equal((errors == [128, 128, 128]).all(-1), truth == 255)
    correct = (prediction == truth)
    assert np.abs(errors[correct] - image[correct] * 0.4).max() <= 2  # correct pixels: the image dimmed
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
    assert check(config, root) == 2 and 'expected' in capsys.readouterr().err
    _, _, seg_dir, _, seg_suffix, _, _ = LAYOUTS[name]
    label = sorted(glob.glob(osp.join(root, seg_dir, '**', f'*{seg_suffix}'), recursive=True))[0]
    array = np.array(Image.open(label))
    array[0, 0] = 200  # outside every benchmark's class range (and not 255)
    Image.fromarray(array).save(label)
    assert check(config, root, '--no-count') == 2
    out = capsys.readouterr().err
    assert osp.basename(label) in out and 'outside' in out


def test_check_data_finds_each_kind_of_problem(tmp_path, capsys):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    os.remove(osp.join(root, 'SegmentationClass', '2008_000002.png'))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(osp.join(root, 'SegmentationClass', '2008_000003.png'))
    with open(osp.join(root, 'ImageSets/Segmentation/val.txt'), 'a') as f:
        f.write('2008_999999\n')
    assert check('configs/sclip_voc21.py', root, '--no-count') == 2
    out = capsys.readouterr().err
    assert "2008_000002.jpg: its label" in out and 'missing' in out
    assert '2008_000003.png: label size 10x10 differs from image size 40x52' in out
    assert '2008_999999.jpg: image listed in the split is missing' in out
    with open(osp.join(root, 'JPEGImages', '2008_000003.jpg'), 'wb') as f:
        f.write(b'broken')
    assert check('configs/sclip_voc21.py', root, '--no-count') == 2
    assert '2008_000003.jpg: cannot be read as an image' in capsys.readouterr().err
    assert check('configs/sclip_voc21.py', str(tmp_path / 'nowhere'), '--no-count') == 2
    assert 'not found' in capsys.readouterr().err


@pytest.mark.parametrize('tool,args,needle', [
    ('check_data', ['configs/sclip_voc21.py', '--cfg-options', 'bad'], "--cfg-options 'bad'"),
    ('demo', ['PHOTO', '--classes', 'cat', '--cfg-options', 'bad'], "--cfg-options 'bad'"),
    ('demo', ['PHOTO', '--classes', 'cat', '--device', 'tpu'], "--device 'tpu'"),
    ('visualize_attention', ['PHOTO', '--points', '1,1', '--cfg-options', 'bad'], "--cfg-options 'bad'"),
    ('visualize_attention', ['PHOTO', '--points', '1,1', '--size', '-5'], '--size -5'),
    ('visualize_attention', ['PHOTO', '--points', '1,1', '--size', '8', '--cfg-options', 'model.clip_path=CKPT'],
     'smaller than one'),
    ('visualize_attention', ['PHOTO', '--points', '1,1', '--out', 'x.jpg'], '--out x.jpg'),
    ('paper_table', ['--check', '-1'], '--check -1'),
    ('demo', ['PHOTO', '--class-file', 'missing.txt'], '--class-file missing.txt'),
    ('check_data', ['configs/sclip_voc21.py', '--max-problems', '0'], '--max-problems 0'),
    ('prepare_data', ['voc', 'a', 'b', '--workers', '0'], '--workers 0'),
])
def test_tool_input_errors_are_one_line(tmp_path, capsys, tiny_checkpoint, tool, args, needle):
    from sclip.cli import main_guard
    photo = str(tmp_path / 'photo.jpg')
    write_image(photo, (50, 40), seed=5)
    args = [photo if a == 'PHOTO' else a.replace('CKPT', tiny_checkpoint) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool(tool).main(args))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and err.startswith('error:'), err
    assert needle in err, err
