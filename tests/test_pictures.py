"""Readable pictures: titled panels, error maps, scaled legends, benchmark and distinct palettes,
attention heat maps at the image's aspect ratio, and the tools' instant --help."""
import glob
import itertools
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFont

from helpers import LARGE_VOCAB, REPO, load_tool, write_image
from sclip import visualize
from sclip.class_names import load_class_names


def class_lines(name):
    with open(osp.join(REPO, 'configs', 'class_names', name)) as f:
        return [line for line in f.read().splitlines() if line.strip()]


# --- titles and the error panel -------------------------------------------------------------
def test_titled_grid_draws_and_records_titles(tmp_path):
    rng = np.random.default_rng(0)
    panels = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(3)]
    titles = ['image', 'prediction', 'ground truth']
    picture, text = visualize.titled_grid([panels], [titles])
    path = str(tmp_path / 'panels.png')
    visualize.save_png(picture, path, text=text)
    saved = Image.open(path)
    assert saved.text['sclip:panels'].split('\n') == titles
    strip = int(saved.text['sclip:title_height'])
    gap = (saved.width - 3 * 120) // 2
    assert saved.size == (3 * 120 + 2 * gap, strip + 90) and strip >= 12
    rgb = np.array(saved.convert('RGB'))
    for index, panel in enumerate(panels):
        left = index * (120 + gap)
        assert np.array_equal(rgb[strip:, left:left + 120], panel)  # panels unchanged under the strip
        title = rgb[:strip, left:left + 120]
        dark = title.max(-1) < 100
        assert dark.sum() >= 20 and (title == 255).all(-1).mean() > 0.5  # black text on white
        columns = np.flatnonzero(dark.any(0))
        assert abs((columns[0] + columns[-1]) / 2 - 60) <= 3  # centred over its panel
    wider = np.flatnonzero((rgb[:strip, 2 * (120 + gap):].max(-1) < 100).any(0))
    assert wider[-1] - wider[0] > columns[-1] - columns[0] - 1  # 'ground truth' is wider text than 'image'


def test_title_size_scales_with_the_image():
    def ink_height(side):
        panel = np.zeros((side, side, 3), np.uint8)
        picture, text = visualize.titled_grid([[panel]], [['prediction']])
        strip = np.array(picture.convert('L'))[:int(text['sclip:title_height'])]
        rows = np.flatnonzero((strip < 100).any(1))
        return rows[-1] - rows[0] + 1
    assert ink_height(1500) > 4 * ink_height(200)


def test_error_panel_marks_wrong_and_ignored_pixels():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    truth = rng.integers(0, 3, (20, 30))
    truth[:5] = 255
    prediction = truth.copy()
    prediction[10:15, 10:20] = (prediction[10:15, 10:20] + 1) % 3
    prediction[:2] = 0  # a prediction on ignored pixels is no error
    panel = visualize.error_panel(image, prediction, truth)
    wrong = np.zeros((20, 30), bool)
    wrong[10:15, 10:20] = True
    assert np.array_equal((panel == [255, 0, 0]).all(-1), wrong)
    assert np.array_equal((panel == [128, 128, 128]).all(-1), truth == 255)
    correct = ~wrong & (truth != 255)
    assert np.abs(panel[correct].astype(float) - image[correct] * 0.4).max() <= 0.5


# --- legend -------------------------------------------------------------------------------
def legend_of(side):
    image = np.full((side, side, 3), 90, np.uint8)
    labels = np.zeros((side, side), np.int64)
    labels[:, side // 2:] = 1
    picture = visualize.draw_segmentation(image, labels, ['cat', 'dog'], [[200, 30, 30], [30, 30, 200]])
    return np.array(picture.convert('RGB'))[side:]


def test_legend_grows_with_the_image():
    small, large = legend_of(200), legend_of(2000)
    assert small.shape[0] >= 20 and large.shape[0] > 3 * small.shape[0]  # legend box height
    ink_rows = [np.flatnonzero((legend.max(-1) < 40).any(1)) for legend in (small, large)]
    text_small, text_large = (rows[-1] - rows[0] + 1 for rows in ink_rows)
    assert text_small >= 8 and text_large > 3 * text_small  # the text itself, not only the padding
    swatch = [((legend == [200, 30, 30]).all(-1)).sum() for legend in (small, large)]
    assert swatch[1] > 10 * swatch[0] > 0


def test_truetype_font_with_pillow_fallback(monkeypatch):
    font = visualize.load_font(30)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.size == 30
    assert osp.basename(font.path) == 'DejaVuSans.ttf'
    monkeypatch.setattr(visualize, '_truetype_path', lambda: None)
    visualize.load_font.cache_clear()
    try:
        fallback = visualize.load_font(30)
        assert getattr(fallback, 'size', None) == 30  # PIL's default font, scaled (Pillow >= 10.1)
        assert legend_of(2000).shape[0] > 3 * legend_of(200).shape[0]
    finally:
        visualize.load_font.cache_clear()


# --- palettes -----------------------------------------------------------------------------
def test_known_benchmarks_get_their_mmseg_palette():
    from mmseg.datasets import ADE20KDataset, CityscapesDataset, PascalVOCDataset
    voc_lines = class_lines('voc21.txt')  # first line is SCLIP's background synonyms, 'sky, wall, ...'
    palette = visualize.palette_for_classes(voc_lines)
    aeroplane = [line.split(',')[0] for line in voc_lines].index('aeroplane')
    assert palette[aeroplane] == list(PascalVOCDataset.METAINFO['palette'][aeroplane]) == [128, 0, 0]
    assert palette == [list(c) for c in PascalVOCDataset.METAINFO['palette']]
    ade = load_class_names(osp.join(REPO, 'configs', 'class_names', 'ade20k.txt')).classes  # synonym lists
    assert visualize.palette_for_classes(ade) == [list(c) for c in ADE20KDataset.METAINFO['palette']]
    city = CityscapesDataset.METAINFO['classes']  # mmseg's own names match too
    assert visualize.palette_for_classes(city) == [list(c) for c in CityscapesDataset.METAINFO['palette']]
    assert visualize.benchmark_of(city) == 'CityscapesDataset'
    # a subset or another order is not the benchmark: well-separated colours instead
    assert visualize.palette_for_classes(voc_lines[1:6]) == visualize.distinct_palette(5)
    assert visualize.benchmark_of(['cat', 'dog']) is None


def test_class_file_table_matches_the_configs():
    from mmengine import Config
    configs = sorted(glob.glob(osp.join(REPO, 'configs', 'sclip_*.py'))
                     + [p for method in ('clearclip', 'naclip', 'naclip_pamr', 'scclip', 'resclip', 'proxyclip', 'fsa',
                                         'cass')
                        for p in glob.glob(osp.join(REPO, 'configs', method, '*.py'))])
    # ADE-847 and Context-459 have no mmseg palette: their pictures use distinct_palette
    configs = [p for p in configs if not p.endswith(LARGE_VOCAB)]
    pairs = set()
    for path in configs:
        cfg = Config.fromfile(path)
        dataset = cfg.get('test_dataloader', {}).get('dataset', {}).get('type')
        if dataset and cfg.model.get('class_names'):
            class_file = osp.relpath(osp.abspath(cfg.model.class_names), osp.join(REPO, 'configs', 'class_names'))
            pairs.add((class_file, dataset))
    assert len(pairs) == 14  # 8 SCLIP files (COCO-Stuff twice), ClearCLIP's 3, ProxyCLIP's 3
    for class_file, dataset in pairs:
        assert visualize.CLASS_FILE_DATASETS[class_file] == dataset, class_file
        assert visualize.benchmark_of(class_lines(class_file)) == dataset, class_file


def test_generic_palette_is_well_separated_and_deterministic():
    palette = visualize.distinct_palette(30)
    rgb = np.array(palette, float)
    assert rgb.shape == (30, 3) and ((0 <= rgb) & (rgb <= 255)).all()
    closest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(rgb, 2))
    assert closest > 40  # random colours (the old palette_for) get as close as 18
    assert visualize.palette_for_classes([f'class {i}' for i in range(30)]) == palette
    assert visualize.distinct_palette(12) == palette[:12]  # adding classes keeps the earlier colours
    assert rgb.max(1).min() > 50 and rgb.min(1).max() < 230  # no near-black, no near-white (legend is white)


# --- attention heat maps ------------------------------------------------------------------
def test_upsample_bilinear_matches_torch():
    values = np.random.default_rng(2).random((3, 7))
    expected = F.interpolate(torch.from_numpy(values)[None, None], size=(40, 25), mode='bilinear',
                             align_corners=False)[0, 0].numpy()
    assert np.allclose(visualize.upsample_bilinear(values, (40, 25)), expected, atol=1e-9)


def test_attention_overlay_keeps_the_aspect_ratio():
    import matplotlib
    image = np.full((120, 300, 3), 100, np.uint8)  # H x W = 120 x 300
    maps = np.tile(np.arange(14, dtype=float), (14, 1))[None, None]  # attention grows left to right
    picture, text = visualize.attention_figure(image, [(30, 60)], ['csa'], maps)
    assert text['sclip:grid'] == '1x2' and text['sclip:panels'].split('\n') == ['image (30, 60)', 'csa (30, 60)']
    assert text['sclip:panel_size'] == '300x120'
    strip = int(text['sclip:title_height'])
    gap = picture.width - 600
    heat = np.array(picture.convert('RGB'), float)[strip:, 300 + gap:]
    assert heat.shape == (120, 300, 3)
    upsampled = F.interpolate(torch.from_numpy(maps).float(), size=(120, 300), mode='bilinear',
                              align_corners=False)[0, 0].numpy()
    normalised = (upsampled - upsampled.min()) / (upsampled.max() - upsampled.min())
    expected = 100 * 0.5 + matplotlib.colormaps['turbo'](normalised)[..., :3] * 255 * 0.5
    far = np.ones((120, 300), bool)
    far[40:80, 10:50] = False  # the query-point marker at (30, 60)
    assert np.abs(heat - expected)[far].max() <= 1.5
    marker = np.array(picture.convert('RGB'))[strip:, :300][55:66, 20:41]
    assert (marker == 255).all(-1).any() and (marker == 0).all(-1).any()  # white ring on black


def test_attention_point_outside_the_image_is_one_line_error(tmp_path, capsys):
    from sclip.cli import main_guard
    image_path = str(tmp_path / 'photo.png')
    write_image(image_path, (300, 120), seed=3)
    tool = load_tool('visualize_attention')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main([image_path, '--points', '20,30', '310,50', '--config', 'unused.py']))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert '310,50' in err and '300x120' in err and 'outside' in err


@pytest.mark.parametrize('tool', ['demo', 'visualize_attention'])
def test_help_imports_no_torch(tool):
    script = (f"import runpy, sys\nsys.argv = ['{tool}.py', '--help']\n"
              f"try:\n    runpy.run_path({osp.join(REPO, 'tools', tool + '.py')!r}, run_name='__main__')\n"
              "except SystemExit:\n    pass\n"
              "print('heavy:', sorted(m for m in ('torch', 'mmseg', 'mmengine', 'sclip') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=60)
    assert 'usage:' in result.stdout and 'heavy: []' in result.stdout, result.stdout + result.stderr


def test_legend_names_are_the_benchmarks_own():
    """SCLIP's VOC file starts with background synonyms ('sky, wall, ...') and says 'ship' for
    boat; a legend says what the benchmark calls each class."""
    from mmseg.datasets import PascalVOCDataset
    from sclip.class_names import load_class_names
    from sclip.visualize import names_for_classes
    voc = load_class_names(osp.join(REPO, 'configs', 'class_names', 'voc21.txt'))
    assert voc.display_names[0] == 'sky'
    assert names_for_classes(voc.classes) == list(PascalVOCDataset.METAINFO['classes'])
    assert names_for_classes([['cat', 'kitten'], ['grass', 'lawn']]) == ['cat', 'grass']
