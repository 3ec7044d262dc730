"""tools/report.py: fake finished runs on disk -> report.html, parsed back and checked against
the metrics.json files, sclip.paper's published numbers and the label maps on disk."""
import base64
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, load_tool
from sclip.paper import PUBLISHED, TABLE1_COLUMNS

IMAGE_SIZE = (300, 200)           # width, height: thumbnails are 256 x 171
THUMBNAIL = (256, 171)
STEMS = [f'2007_{i:06d}' for i in range(5)]
SHA = {'sclip': 'a1b2c3d4e5f6' + '0' * 52, 'sclip_q': 'cafebabe0001' + '1' * 52, 'naclip': '0f9e8d7c6b5a' + '2' * 52}
NACLIP_MIOU = dict(voc21=58.4, context60=31.9, coco_object=33.5, voc20=80.1, cityscapes=35.0, context59=35.6,
                   ade20k=17.0, coco_stuff164k=23.1)
# (left class, right class) of each run's predicted label maps
PREDICTED = {'sclip': (15, 7), 'naclip': (12, 3)}


def voc_palette():
    from mmseg.registry import DATASETS
    meta = DATASETS.get('PascalVOCDataset').METAINFO
    return list(meta['classes']), [tuple(c) for c in meta['palette']]


def write_json(path, payload):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(payload, f)


def write_labels(path, left, right):
    labels = np.full(IMAGE_SIZE[::-1], left, np.uint8)
    labels[:, IMAGE_SIZE[0] // 2:] = right
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(labels).save(path)


def voc_identity(sha, data_root, overrides=None, num_images=len(STEMS)):
    return {'fingerprint': f'{sha[::-1]}{num_images}',
            'config': {'file': osp.join(REPO, 'configs', 'sclip_voc21.py'),
                       'overrides': {'test_dataloader.dataset.data_root': data_root,
                                     'model.clip_path': '/w/ViT-B-16.pt', **(overrides or {})}},
            'weights': {'arch': 'ViT-B-16', 'source': '/w/ViT-B-16.pt', 'sha256': sha},
            'data': {'type': 'PascalVOCDataset', 'root': data_root, 'img_dir': osp.join(data_root, 'JPEGImages'),
                     'img_suffix': '.jpg', 'split': 'ImageSets/Segmentation/val.txt', 'num_images': num_images},
            'code': {'version': '0.2.0', 'git': None}, 'libraries': {'torch': '2.14.1'}}


def make_runs(root):
    """Runs of SCLIP (and a variant) on VOC21, NACLIP on all eight benchmarks, an old-schema
    ClearCLIP file, an older copy of the SCLIP run (same fingerprint), an older SCLIP run on
    other weights and an older NACLIP run on two images; a tiny VOC-like dataset."""
    classes, _ = voc_palette()
    data_root = osp.join(root, 'data', 'VOC2012')
    rng = np.random.default_rng(0)
    for stem in STEMS:
        os.makedirs(osp.join(data_root, 'JPEGImages'), exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (*IMAGE_SIZE[::-1], 3), dtype=np.uint8)).save(
            osp.join(data_root, 'JPEGImages', stem + '.jpg'))
        truth = np.zeros(IMAGE_SIZE[::-1], np.uint8)
        truth[IMAGE_SIZE[1] // 2:] = 15
        os.makedirs(osp.join(data_root, 'SegmentationClass'), exist_ok=True)
        Image.fromarray(truth).save(osp.join(data_root, 'SegmentationClass', stem + '.png'))
    runs = osp.join(root, 'runs')
    sclip_iou = {name: round(10 + 4 * i + 0.25, 2) for i, name in enumerate(classes)}
    sclip_iou['cow'] = None  # class absent from the ground truth
    for stem in STEMS:
        write_labels(osp.join(runs, 'sclip', 'pred', stem + '.png'), *PREDICTED['sclip'])
    write_json(osp.join(runs, 'sclip', 'metrics.json'), {
        'schema': 2, 'mIoU': 60.12, 'per_class': {'IoU': sclip_iou}, 'method': 'SCLIP', 'paper_key': 'sclip',
        'benchmark': 'voc21', 'predictions_dir': osp.join(runs, 'sclip', 'pred'),
        'identity': voc_identity(SHA['sclip'], data_root), 'finished': '2026-11-29T21:00:00Z'})
    write_json(osp.join(runs, 'sclip_q', 'metrics.json'), {
        'schema': 2, 'mIoU': 52.5, 'per_class': {'IoU': {n: 50.0 for n in classes}}, 'method': 'SCLIP',
        'paper_key': 'sclip', 'benchmark': 'voc21', 'predictions_dir': None,
        'identity': voc_identity(SHA['sclip_q'], data_root, {'model.attention.type': 'csa_q'})})
    for benchmark, miou in NACLIP_MIOU.items():
        metrics = {'schema': 2, 'mIoU': miou, 'method': 'NACLIP', 'paper_key': 'naclip', 'benchmark': benchmark,
                   'identity': {'weights': {'sha256': SHA['naclip']}}, 'finished': '2026-11-29T20:00:00Z'}
        if benchmark == 'voc21':  # saved predictions, written as a path relative to where it ran
            metrics.update(per_class={'IoU': {n: round(80 - 3 * i, 2) for i, n in enumerate(classes)}},
                           predictions_dir='work_dirs/naclip_voc21/pred',
                           identity=voc_identity(SHA['naclip'], data_root))
            for stem in STEMS[1:]:
                write_labels(osp.join(runs, 'naclip', benchmark, 'pred', stem + '.png'), *PREDICTED['naclip'])
        write_json(osp.join(runs, 'naclip', benchmark, 'metrics.json'), metrics)
    write_json(osp.join(runs, 'old', 'clearclip_voc20', 'metrics.json'),  # schema 1: no method, identity...
               {'mIoU': 79.95, 'aAcc': 90.0, 'mAcc': 85.0, 'config': 'configs/clearclip/voc20.py'})
    older = osp.join(root, 'older', 'sclip', 'metrics.json')  # a copy of the SCLIP run: shown once
    write_json(older, {'schema': 2, 'mIoU': 60.12, 'method': 'SCLIP', 'paper_key': 'sclip', 'benchmark': 'voc21',
                       'identity': voc_identity(SHA['sclip'], data_root), 'finished': '2026-01-01T00:00:00Z'})
    write_json(osp.join(root, 'older', 'sclip_other_weights', 'metrics.json'), {
        'schema': 2, 'mIoU': 10.0, 'method': 'SCLIP', 'paper_key': 'sclip', 'benchmark': 'voc21',
        'identity': voc_identity('dead' * 16, data_root), 'finished': '2026-01-02T00:00:00Z'})
    write_json(osp.join(root, 'older', 'naclip_two_images', 'metrics.json'), {
        'schema': 2, 'mIoU': 90.0, 'method': 'NACLIP', 'paper_key': 'naclip', 'benchmark': 'voc21',
        'identity': voc_identity(SHA['naclip'], data_root, num_images=2), 'finished': '2026-01-02T00:00:00Z'})
    return [runs, osp.join(root, 'older')], older


class ReportParser(HTMLParser):
    """Table cells, images, SVG bars and the identity section's text of a report."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self.bars, self.charts, self.external = {}, [], [], set(), []
        self.identity_text, self.text = '', ''
        self.legend, self.class_legend, self.style, self.sources = [], [], '', {}
        self._cell = self._span = self._chart = self._class = self._section = self._legend = self._tag = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._tag = tag
        if tag == 'div' and attrs.get('class', '').startswith('legend'):
            self._legend = self.class_legend if 'classes' in attrs['class'] else self.legend
        elif tag == 'span' and attrs.get('class') == 'entry' and self._legend is not None:
            self._legend.append('')
        elif tag == 'li' and 'value' in attrs:
            self._source = int(attrs['value'])
            self.sources[self._source] = ''
        if tag in ('script', 'link', 'iframe') or any(
                not str(attrs.get(k)).startswith('data:') for k in ('src', 'href') if k in attrs):
            self.external.append((tag, attrs))
        if tag == 'section':
            self._section = attrs.get('id')
        elif tag == 'td' and 'cell' in attrs.get('class', '').split():
            self._cell = self.cells.setdefault((attrs['data-row'], attrs['data-benchmark']), {})
        elif tag == 'span' and self._cell is not None:
            self._span = attrs.get('class', '').split()[0]
        elif tag == 'img':
            self.images.append(attrs)
        elif tag == 'div' and attrs.get('class') == 'chart' and 'data-benchmark' in attrs:
            self._chart = attrs['data-benchmark']
            self.charts.add(self._chart)
        elif tag in ('g', 'tr') and attrs.get('class') == 'class':
            self._class = attrs['data-class']
        elif tag in ('rect', 'td') and attrs.get('class') in ('bar', 'heat'):
            self.bars.append((self._chart, self._class, attrs['data-method'], float(attrs['data-value']),
                              float(attrs.get('width', 'nan'))))

    def handle_endtag(self, tag):
        self._tag = None
        if tag == 'li':
            self._source = None
        if tag == 'div':
            self._legend = None
        if tag == 'td':
            self._cell = None
        elif tag == 'span':
            self._span = None
        elif tag == 'section':
            self._section = None

    def handle_data(self, data):
        if self._tag == 'style':
            self.style += data
            return
        self.text += data
        if self._legend:
            self._legend[-1] += data
        if getattr(self, '_source', None):
            self.sources[self._source] += data
        if self._section == 'identity':
            self.identity_text += data + ' '
        if self._cell is not None and self._span:
            self._cell[self._span] = self._cell.get(self._span, '') + data


@pytest.fixture(scope='module')
def report():
    """(parsed report, its HTML path, the folders, the superseded metrics.json)."""
    root = tempfile.mkdtemp(prefix='report_test_')
    folders, older = make_runs(root)
    out = osp.join(root, 'report.html')
    load_tool('report').main([*folders, '--out', out, '--images', '3', '--title', 'Test report'])
    parser = ReportParser()
    with open(out, encoding='utf-8') as f:
        parser.feed(f.read())
    yield parser, out, folders, older
    shutil.rmtree(root, ignore_errors=True)


SCLIP_ROW = 'SCLIP [weights ViT-B-16 a1b2c3d4e5f6]'
OTHER_WEIGHTS_ROW = 'SCLIP [weights ViT-B-16 deaddeaddead]'
VARIANT_ROW = 'SCLIP [attention.type=csa_q]'


def expected_cells(data_root):
    """(row, benchmark) -> (our mIoU, the published row it is compared with)."""
    cells = {(SCLIP_ROW, 'voc21'): (60.12, 'sclip'), (OTHER_WEIGHTS_ROW, 'voc21'): (10.0, 'sclip'),
             (VARIANT_ROW, 'voc21'): (52.5, None), ('ClearCLIP', 'voc20'): (79.95, 'clearclip'),
             (f'NACLIP [data {data_root} (2 images, files ?)]', 'voc21'): (90.0, 'naclip')}
    cells.update({('NACLIP', b): (m, 'naclip') for b, m in NACLIP_MIOU.items()})
    cells[('NACLIP', 'average')] = (sum(NACLIP_MIOU[k] for k, _ in TABLE1_COLUMNS) / len(TABLE1_COLUMNS), 'naclip')
    return cells


def test_table_numbers_and_deltas_match_metrics_and_expected(report):
    from sclip.report.expected import expected
    parsed, _, folders, older = report
    data_root = osp.join(osp.dirname(folders[0]), 'data', 'VOC2012')
    cells = expected_cells(data_root)
    assert set(parsed.cells) == set(cells)  # no average for rows without all eight benchmarks
    for (row, benchmark), (ours, paper_key) in cells.items():
        cell = parsed.cells[(row, benchmark)]
        assert float(cell['ours']) == pytest.approx(ours, abs=0.005), (row, benchmark)
        if paper_key is None:  # a variant (an override of what the method computes): no comparison
            assert 'expected' not in cell and 'delta' not in cell, cell
            continue
        target = expected(paper_key, benchmark)
        assert float(cell['expected'].replace('exp', '')) == pytest.approx(target.value)
        assert float(cell['delta']) == pytest.approx(ours - target.value, abs=0.005), (row, benchmark)
        assert cell['source'].startswith('[')
    # the same fingerprint is shown once, the copy listed as left out; other weights and other data
    # are rows of their own, said so, and the published number is on each of them
    assert older in parsed.text and 'the same fingerprint as' in parsed.text
    assert 'Runs on different settings' in parsed.text
    assert not any('clip_path' in row for row, _ in parsed.cells)  # a location is no variant


def test_sources_are_listed_and_the_paper_shown_beside_another_expected_number(report):
    """SCLIP's expected VOC21 number is its README's (not the paper's): the cell shows it, the
    difference to it, the paper's number beside, and both sources are listed."""
    from sclip.paper import expected
    parsed = report[0]
    target = expected('sclip', 'voc21')
    assert target.paper is not None and target.paper != target.value  # else this test proves nothing
    cell = parsed.cells[(SCLIP_ROW, 'voc21')]
    assert cell['expected'] == f'exp {target.value:g}' and cell['paper'] == f'paper {target.paper:g}'
    assert float(cell['delta']) == pytest.approx(60.12 - target.value)
    numbers = [int(n) for n in cell['source'].strip('[]').split('][')]
    assert parsed.sources[numbers[0]].startswith(target.source) and target.setting in parsed.sources[numbers[0]]
    assert parsed.sources[numbers[1]] == target.paper_source
    naclip = expected('naclip', 'voc21')  # quoted second-hand: said so
    number = int(parsed.cells[('NACLIP', 'voc21')]['source'].strip('[]').split('][')[0])
    assert naclip.second_hand and parsed.sources[number].endswith('quoted second-hand')


def test_average_is_compared_with_the_mean_of_the_expected_numbers(report):
    from sclip.paper import expected_row
    parsed = report[0]
    row = expected_row('naclip')
    mean = round(sum(n.value for n in row.values()) / len(row), 2)
    ours = sum(NACLIP_MIOU.values()) / len(NACLIP_MIOU)
    cell = parsed.cells[('NACLIP', 'average')]
    assert cell['expected'] == f'exp {mean:g}' and float(cell['delta']) == pytest.approx(ours - mean, abs=0.005)


def test_per_class_bars_for_every_class_and_method(report):
    parsed, *_ = report
    classes, _ = voc_palette()
    with open(osp.join(report[2][0], 'sclip', 'metrics.json')) as f:
        sclip_iou = json.load(f)['per_class']['IoU']
    bars = {(chart, name, method): (value, width) for chart, name, method, value, width in parsed.bars}
    assert parsed.charts == {'voc21'}  # the only benchmark with per-class IoU
    for i, name in enumerate(classes):
        expected = {SCLIP_ROW: sclip_iou[name], VARIANT_ROW: 50.0, 'NACLIP': round(80 - 3 * i, 2)}
        for method, value in expected.items():
            if value is None:
                assert ('voc21', name, method) not in bars
                continue
            drawn, width = bars[('voc21', name, method)]
            assert drawn == value
            assert width == pytest.approx(value / 100 * 420, abs=0.01)  # svg.BAR_AREA px for 100 %
    assert len(bars) == 3 * len(classes) - 1
    assert parsed.legend == [SCLIP_ROW, 'NACLIP', VARIANT_ROW]  # HTML, wrapped, never cut


def decode(src):
    assert src.startswith('data:image/png;base64,')
    return Image.open(io.BytesIO(base64.b64decode(src.split(',', 1)[1]))).convert('RGB')


def test_qualitative_grid_images_are_coloured_data_uris(report):
    parsed, *_ = report
    _, palette = voc_palette()
    # common stems: NACLIP saved STEMS[1:]; three chosen evenly from four -> 1, 2, 4
    images = parsed.images
    assert [img['alt'] for img in images if img['alt'].startswith('2007_')] == [STEMS[1], STEMS[2], STEMS[4]]
    assert len(images) == 3 * 4  # image, ground truth, SCLIP, NACLIP
    for index in range(0, len(images), 4):
        picture, truth, sclip_map, naclip_map = (decode(img['src']) for img in images[index:index + 4])
        assert {p.size for p in (picture, truth, sclip_map, naclip_map)} == {THUMBNAIL}
        assert truth.getpixel((128, 20)) == palette[0] and truth.getpixel((128, 150)) == palette[15]
        for picture_map, (left, right) in ((sclip_map, PREDICTED['sclip']), (naclip_map, PREDICTED['naclip'])):
            assert picture_map.getpixel((30, 85)) == palette[left]
            assert picture_map.getpixel((230, 85)) == palette[right]
    without = parsed.text.split('Without saved predictions: ')[1].split('\n')[0]
    assert VARIANT_ROW in without and OTHER_WEIGHTS_ROW in without
    assert parsed.external == []  # self-contained: no scripts, links or files referenced
    # the panels' class legend: the classes in the pictures shown (truth 0/15, maps 15/7 and 12/3)
    classes, _ = voc_palette()
    assert parsed.class_legend == [classes[i] for i in (0, 3, 7, 12, 15)] + ['ignored / unlabelled']


def test_identity_names_each_weights_sha_prefix(report):
    parsed, *_ = report
    for sha in SHA.values():
        assert sha[:12] in parsed.identity_text
    assert 'test_dataloader.dataset.data_root=' in parsed.identity_text
    assert 'model.attention.type=csa_q' in parsed.identity_text


def test_no_predictions_skips_grid(tmp_path):
    write_json(str(tmp_path / 'a' / 'metrics.json'), {'mIoU': 51.0, 'config': 'configs/clearclip/voc21.py'})
    out = str(tmp_path / 'r.html')
    load_tool('report').main([str(tmp_path), '--out', out])
    parser = ReportParser()
    parser.feed(open(out, encoding='utf-8').read())
    assert parser.images == []
    assert 'No saved predictions' in parser.text and 'grid skipped' in parser.text
    delta = float(parser.cells[('ClearCLIP', 'voc21')]['delta'])
    assert delta == pytest.approx(51.0 - PUBLISHED['clearclip']['voc21'])


def test_empty_folder_is_a_one_line_error(tmp_path, capsys):
    from sclip.cli import main_guard
    tool = load_tool('report')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main([str(tmp_path / 'empty'), '--out', str(tmp_path / 'r.html')]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: no metrics.json found under') and err.count('\n') == 1
    assert not (tmp_path / 'r.html').exists()


def test_help_imports_neither_torch_nor_mmseg():
    code = ("import runpy, sys\nsys.argv = ['report.py', '--help']\n"
            "try:\n    runpy.run_path('tools/report.py', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('torch', 'mmseg', 'mmengine', 'sclip') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '--images' in result.stdout


def chromium():
    return next((shutil.which(name) for name in ('chromium', 'chromium-browser', 'google-chrome')
                 if shutil.which(name)), None)


def render(html_path, png_path, size=(1400, 2000)):
    """Screenshot of ``html_path`` by headless chromium, offline."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        f'--user-data-dir={profile}', f'--window-size={size[0]},{size[1]}',
                        f'--screenshot={png_path}', 'file://' + osp.abspath(html_path)],
                       capture_output=True, timeout=120, check=True)


def test_chromium_renders_the_report(report, tmp_path):
    if chromium() is None:
        pytest.skip('no chromium binary found (apt-get install chromium to run this test)')
    png = str(tmp_path / 'report.png')
    render(report[1], png)
    shot = np.asarray(Image.open(png).convert('RGB'))
    assert shot.shape == (2000, 1400, 3)
    colours = {tuple(c) for c in shot.reshape(-1, 3)[::7]}
    assert len(colours) > 50  # text, bars and pictures, not a blank page
    assert (shot == (0x4e, 0x79, 0xa7)).all(-1).sum() > 500  # the first method's bars were drawn


def test_cityscapes_layout_and_reduced_labels(tmp_path):
    """Images in city sub-folders are found from the prediction's stem, their ground truth by
    the dataset's suffixes; reduce_zero_label files colour value v as class v - 1."""
    from mmseg.registry import DATASETS
    from sclip.report.images import DataLayout, class_default, colour_labels, find_image, ground_truth_path
    cityscapes = DATASETS.get('CityscapesDataset')
    img_dir, seg_dir = tmp_path / 'leftImg8bit' / 'val', tmp_path / 'gtFine' / 'val'
    (img_dir / 'frankfurt').mkdir(parents=True)
    (seg_dir / 'frankfurt').mkdir(parents=True)
    (img_dir / 'frankfurt' / 'frankfurt_000000_000294_leftImg8bit.png').write_bytes(b'')
    (seg_dir / 'frankfurt' / 'frankfurt_000000_000294_gtFine_labelTrainIds.png').write_bytes(b'')
    palette = np.asarray(cityscapes.METAINFO['palette'], np.uint8)
    layout = DataLayout(str(img_dir), class_default(cityscapes, 'img_suffix', None), str(seg_dir),
                        class_default(cityscapes, 'seg_map_suffix', None), False, palette)
    image, name = find_image(layout, 'frankfurt_000000_000294_leftImg8bit')
    assert image == str(img_dir / 'frankfurt' / 'frankfurt_000000_000294_leftImg8bit.png')
    truth = seg_dir / 'frankfurt' / 'frankfurt_000000_000294_gtFine_labelTrainIds.png'
    assert ground_truth_path(layout, name) == str(truth)
    assert find_image(layout, 'munich_000001') is None
    labels = np.array([[0, 1, 19, 255]], np.uint8)
    reduced = colour_labels(labels, palette, reduce_zero_label=True)
    assert [tuple(c) for c in reduced[0]] == [(255, 255, 255), tuple(palette[0]), tuple(palette[18]), (255, 255, 255)]
    plain = colour_labels(labels, palette, reduce_zero_label=False)
    assert [tuple(c) for c in plain[0]] == [tuple(palette[0]), tuple(palette[1]), (255, 255, 255), (255, 255, 255)]


def test_metrics_json_without_a_result_is_refused(tmp_path):
    from sclip.errors import SCLIPError
    from sclip.report.collect import load_run
    path = tmp_path / 'metrics.json'
    path.write_text('{}')
    with pytest.raises(SCLIPError, match='no mIoU'):
        load_run(str(path))


@pytest.mark.parametrize('out', ['', 'DIR', 'report.txt', 'AFILE/report.html'])
def test_bad_report_out_is_one_line(report, tmp_path, out):
    from sclip.errors import SCLIPError
    from sclip.report import write_report
    (tmp_path / 'afile').write_text('x')
    target = out.replace('DIR', str(tmp_path)).replace('AFILE', str(tmp_path / 'afile'))
    with pytest.raises(SCLIPError, match='--out') as error:
        write_report(report[2], target)
    assert '\n' not in str(error.value)
    assert not [name for name in os.listdir(tmp_path) if name.endswith('.tmp')]


# Hostile values: each must reach the page as text, never as markup, wherever it lands.
HOSTILE = ['"><script>alert(1)</script>', "' onmouseover='alert(2)", '</style><script>alert(3)</script>',
           'javascript:alert(4)', '<img src=x onerror=alert(5)>', '</title><svg onload=alert(6)>',
           '{{7*7}} ${x} %s &amp; &lt;b&gt;']
SAFE_TAGS = {'html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'h2', 'h3', 'p', 'section', 'table', 'tr',
             'th', 'td', 'span', 'div', 'svg', 'line', 'text', 'g', 'rect', 'ul', 'ol', 'li', 'br', 'code', 'img'}
SAFE_ATTRIBUTES = {'id', 'lang', 'charset', 'class', 'style', 'title', 'src', 'alt', 'xmlns', 'width', 'height', 'viewbox',
                   'x', 'y', 'x1', 'x2', 'y1', 'y2', 'text-anchor', 'fill', 'value'}


class MarkupAudit(HTMLParser):
    """Every element and attribute of a page, and its text."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.text, self.style, self._tag = [], [], '', '', None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]
        self._tag = tag

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._tag = None

    def handle_endtag(self, tag):
        self._tag = None
        if tag == 'li':
            self._source = None

    def handle_data(self, data):
        if self._tag == 'style':
            self.style += data
        else:
            self.text += data


def hostile_runs(root, value, rng):
    """A run whose every string field the report reads is ``value`` (folders and file names
    included), with an image, its ground truth and a saved prediction; and a second one, so
    the per-class chart, the grid and the sources have several entries."""
    classes, _ = voc_palette()
    data_root = osp.join(root, 'data', value.replace('/', '|'))
    stem = value.replace('/', '|')
    os.makedirs(osp.join(data_root, 'JPEGImages'))
    os.makedirs(osp.join(data_root, 'SegmentationClass'))
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
        osp.join(data_root, 'JPEGImages', stem + '.jpg'))
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(osp.join(data_root, 'SegmentationClass', stem + '.png'))
    folders = []
    for index, key in enumerate(('sclip', 'naclip')):
        work = osp.join(root, 'runs', f'{index}{value.replace("/", "|")}')
        write_labels(osp.join(work, 'pred', stem + '.png'), 15, 7)
        identity = {'fingerprint': value + str(index),
                    'config': {'file': value, 'overrides': {value: value, 'model.clip_path': value,
                                                            'model.prob_thd': value}, 'resolved_sha256': value},
                    'weights': {'arch': value, 'source': value, 'sha256': value},
                    'vfm': {'type': value, 'source': value, 'sha256': value},
                    'text': {'class_names': value, 'templates': value, 'templates_sha256': value},
                    'data': {'type': value, 'root': data_root, 'img_dir': osp.join(data_root, 'JPEGImages'),
                             'seg_map_dir': osp.join(data_root, 'SegmentationClass'), 'img_suffix': '.jpg',
                             'split': value, 'num_images': value, 'files_sha256': value},
                    'code': {'version': value, 'git': value, 'source_sha256': value}, 'libraries': {value: value}}
        write_json(osp.join(work, 'metrics.json'), {
            'schema': 2, 'mIoU': 40.0 + index, 'method': value, 'paper_key': key, 'benchmark': value,
            'config': value, 'per_class': {'IoU': {value: 12.5, **{name: 30.0 for name in classes}}},
            'predictions_dir': osp.join(work, 'pred'), 'identity': identity, 'finished': value})
        folders.append(work)
    # a plain SCLIP run too: expected numbers and their sources on the page
    write_json(osp.join(root, 'runs', 'plain', 'metrics.json'),
               {'mIoU': 59.0, 'config': 'configs/sclip_voc21.py', 'method': value})
    return folders


@pytest.mark.parametrize('value', HOSTILE)
def test_hostile_strings_in_every_field_stay_text(tmp_path, value):
    hostile_runs(str(tmp_path), value, np.random.default_rng(0))
    for form in ('bars', 'heatmap'):
        out = str(tmp_path / f'{form}.html')
        load_tool('report').main([str(tmp_path / 'runs'), '--out', out, '--title', value, '--per-class', form])
        audit_page(out, value, form)


def audit_page(out, value, form):
    from sclip.report.html import CSS
    audit = MarkupAudit()
    audit.feed(open(out, encoding='utf-8').read())
    assert set(audit.tags) <= SAFE_TAGS, set(audit.tags) - SAFE_TAGS
    assert audit.tags.count('title') == 1 + audit.tags.count('g') + audit.tags.count('rect')  # page's, tooltips
    assert audit.tags.count('style') == 1 and audit.style.strip() == CSS.strip()
    for tag, name, attribute in audit.attributes:
        assert name in SAFE_ATTRIBUTES or name.startswith('data-'), (tag, name, attribute)
        if name == 'src':
            assert attribute.startswith('data:image/png;base64,'), attribute
        if name == 'style':
            assert value not in attribute
    assert value in audit.text  # shown, as text
    assert 'prediction' in {v for _, n, v in audit.attributes if n == 'alt'}  # the grid was drawn with it
    per_class = [v for t, n, v in audit.attributes if t == ('td' if form == 'heatmap' else 'rect') and n == 'data-method']
    assert per_class and all(value in v for v in per_class)  # per-class entries carry it in an attribute


def test_the_report_makes_markup_only_from_templates():
    """Escape by construction: no f-string or %-format in sclip/report writes a tag; values go
    through markup.html, which escapes them."""
    import ast
    import glob
    offenders = []
    for path in glob.glob(osp.join(REPO, 'sclip', 'report', '*.py')):
        for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
            if isinstance(node, ast.JoinedStr) and any(
                    isinstance(v, ast.Constant) and '<' in str(v.value) for v in node.values):
                offenders.append((osp.basename(path), node.lineno))
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)) and any(
                    isinstance(side, ast.Constant) and '<' in str(side.value) for side in (node.left, node.right)):
                offenders.append((osp.basename(path), node.lineno))
    assert offenders == []


def one_line_error(tool_args, capsys):
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('report').main(tool_args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    return err


@pytest.mark.parametrize('key, value', [
    ('mIoU', '59.1'), ('mIoU', [59.1]), ('mIoU', True), ('per_class', [1, 2]), ('per_class', {'IoU': 'high'}),
    ('per_class', {'IoU': {'cat': '12'}}), ('per_class', {'IoU': {'cat': {'v': 1}}}), ('identity', 'abc'),
    ('identity', {'config': ['file']}), ('identity', {'config': {'overrides': 'a=b'}}),
    ('identity', {'weights': 7}), ('identity', {'fingerprint': 12}), ('identity', {'libraries': ['torch']}),
    ('method', {'n': 'SCLIP'}), ('benchmark', 3), ('paper_key', ['sclip']), ('predictions_dir', 5),
    ('finished', 20260101), ('config', None)])
def test_wrongly_typed_fields_are_one_line_naming_file_and_key(tmp_path, capsys, key, value):
    path = tmp_path / 'run' / 'metrics.json'
    write_json(str(path), {'mIoU': 50.0, 'method': 'SCLIP', 'benchmark': 'voc21', key: value})
    if key == 'config':  # null where a string may be absent: that is allowed, and the page is made
        load_tool('report').main([str(tmp_path), '--out', str(tmp_path / 'r.html')])
        assert (tmp_path / 'r.html').exists()
        return
    err = one_line_error([str(tmp_path), '--out', str(tmp_path / 'r.html')], capsys)
    assert str(path) in err and f'"{key}' in err, err
    assert not (tmp_path / 'r.html').exists()


def png_header(width, height):
    """A grey PNG of ``width`` x ``height`` whose data is only its first 50 rows: a few KB."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\0' * (width + 1) * 50, 9)) + chunk(b'IEND', b''))


def test_unreadable_and_oversized_pictures_are_one_warning_line_each(tmp_path, capsys):
    """A decompression-bomb prediction (a few KB on disk, 10^10 pixels), a file that is no
    image and an RGB file instead of a label map: each cell says 'not shown', the page and the
    tool say which file and why in one line, nothing else breaks."""
    folders, _ = make_runs(str(tmp_path))
    pred = osp.join(folders[0], 'sclip', 'pred')
    with open(osp.join(pred, STEMS[1] + '.png'), 'wb') as f:
        f.write(png_header(100000, 100000))
    with open(osp.join(pred, STEMS[2] + '.png'), 'wb') as f:
        f.write(b'not a png at all')
    Image.new('RGB', IMAGE_SIZE).save(osp.join(pred, STEMS[4] + '.png'))
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*folders, '--out', out, '--images', '3'])
    err = capsys.readouterr().err
    lines = err.strip().split('\n')
    assert len(lines) == 3 and all(line.startswith('warning: ' + pred) for line in lines), err
    assert 'too large' in lines[0] and 'not a readable image' in lines[1] and 'not a label map' in lines[2]
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    assert len(parsed.images) == 3 * 3  # image, ground truth and NACLIP's map of each row; SCLIP's 'not shown'
    assert parsed.text.count('not shown') == 3 and f'{STEMS[1]}.png: ' in parsed.text


def test_bomb_input_image_is_left_out_with_a_warning(tmp_path, capsys):
    from sclip.report import images
    path = tmp_path / 'huge.png'
    path.write_bytes(png_header(8000, 6000))  # 48 megapixels: more than the report reads, refused before decoding
    with pytest.raises(images.PictureError, match=f'{path}: 8000x6000 pixels, too large'):
        images.image_thumbnail(str(path))


def test_reused_out_folder_shows_only_the_runs_own_images(tmp_path):
    """Predictions left in a reused --out folder by an earlier run on a longer split are not
    the new run's: only images of the run's own split are shown."""
    folders, _ = make_runs(str(tmp_path))
    data_root = tmp_path / 'data' / 'VOC2012'
    (data_root / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (data_root / 'ImageSets' / 'Segmentation' / 'val.txt').write_text(f'{STEMS[1]}\n{STEMS[3]}\n')
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*folders, '--out', out, '--images', '5'])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    assert [img['alt'] for img in parsed.images if img['alt'].startswith('2007_')] == [STEMS[1], STEMS[3]]


def test_a_run_with_none_of_its_own_maps_left_is_set_aside_with_the_reason(tmp_path):
    folders, _ = make_runs(str(tmp_path))
    data_root = tmp_path / 'data' / 'VOC2012'
    (data_root / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (data_root / 'ImageSets' / 'Segmentation' / 'val.txt').write_text(f'{STEMS[0]}\n{STEMS[2]}\n')
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*folders, '--out', out])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    # NACLIP saved STEMS[1:], SCLIP all: NACLIP's folder has STEMS[2] only, SCLIP's both
    assert [img['alt'] for img in parsed.images if img['alt'].startswith('2007_')] == [STEMS[2]]
    (data_root / 'ImageSets' / 'Segmentation' / 'val.txt').write_text(f'{STEMS[0]}\n')
    load_tool('report').main([*folders, '--out', out])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    assert [img['alt'] for img in parsed.images if img['alt'].startswith('2007_')] == [STEMS[0]]
    assert "NACLIP (" + osp.join(folders[0], 'naclip', 'voc21', 'pred') + " holds no label map of the run's own images)" \
        in parsed.text


def test_a_manifest_of_another_run_hides_the_folder(tmp_path):
    """Where runs leave a manifest in their --out folder, only a finished run of the same
    fingerprint's listed files are shown as its predictions."""
    predictions = pytest.importorskip('sclip.predictions')
    folders, _ = make_runs(str(tmp_path))
    sclip_pred = osp.join(folders[0], 'sclip', 'pred')
    naclip_pred = osp.join(folders[0], 'naclip', 'voc21', 'pred')
    write_json(osp.join(sclip_pred, predictions.MANIFEST), {'fingerprint': 'another run', 'complete': True,
                                                            'files': [s + '.png' for s in STEMS]})
    naclip_fingerprint = voc_identity(SHA['naclip'], '')['fingerprint']
    write_json(osp.join(naclip_pred, predictions.MANIFEST), {'fingerprint': naclip_fingerprint, 'complete': True,
                                                             'files': [STEMS[3] + '.png']})
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*folders, '--out', out])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    assert [img['alt'] for img in parsed.images if img['alt'].startswith('2007_')] == [STEMS[3]]
    assert f'{sclip_pred} now holds the label maps of another (or an unfinished) run' in parsed.text


def test_an_override_every_run_shares_is_no_variant(tmp_path):
    for name, extra in (('a', {}), ('b', {'model.attention.type': 'csa_q'})):
        write_json(str(tmp_path / name / 'metrics.json'), {
            'mIoU': 40.0, 'method': 'SCLIP', 'paper_key': 'sclip', 'benchmark': 'voc21', 'identity': {
                'fingerprint': name, 'config': {'overrides': {'model.prob_thd': 0.3, 'model.clip_path': '/w.pt', **extra}}}})
    out = str(tmp_path / 'r.html')
    load_tool('report').main([str(tmp_path), '--out', out])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    assert {row for row, _ in parsed.cells} == {'SCLIP', 'SCLIP [attention.type=csa_q]'}
    assert 'Every run: prob_thd=0.3.' in parsed.text
    assert 'expected' not in parsed.cells[('SCLIP', 'voc21')]  # prob_thd=0.3 is not the published setting


def many_variants(root, count=10):
    """``count`` SCLIP variants on VOC21, each with per-class IoU (a third of the classes absent
    from the ground truth) and saved predictions; returns the folders."""
    folders, _ = make_runs(root)
    classes, _ = voc_palette()
    data_root = osp.join(root, 'data', 'VOC2012')
    for index in range(count):
        work = osp.join(root, 'variants', str(index))
        for stem in STEMS:
            write_labels(osp.join(work, 'pred', stem + '.png'), index % 21, 15)
        write_json(osp.join(work, 'metrics.json'), {
            'mIoU': 30.0 + index, 'method': 'SCLIP', 'paper_key': 'sclip', 'benchmark': 'voc21',
            'per_class': {'IoU': {n: (None if i % 3 == 2 else float(index + i)) for i, n in enumerate(classes)}},
            'predictions_dir': osp.join(work, 'pred'),
            'identity': voc_identity(SHA['sclip'], data_root, {'model.prob_thd': index / 20})})
    return [osp.join(root, 'variants')]


def test_many_variants_get_a_heatmap_and_a_grid_that_fits(tmp_path):
    from sclip.report.html import GRID_WIDTH
    classes, _ = voc_palette()
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*many_variants(str(tmp_path)), '--out', out])
    parsed = ReportParser()
    parsed.feed(open(out, encoding='utf-8').read())
    heat = {(name, method): value for chart, name, method, value, _ in parsed.bars}
    assert len({method for _, method in heat}) == 10
    for index in range(10):
        for i, name in enumerate(classes):
            assert heat.get((name, f'SCLIP [prob_thd={index / 20}]')) == (None if i % 3 == 2 else index + i)
    assert 'n/a' not in parsed.text  # absent classes are blank cells
    widths = {}
    for img in parsed.images:
        widths.setdefault(img['alt'], set()).add(decode(img['src']).size[0])
    per_row = 1 + 1 + 10  # image, ground truth, 10 predictions
    assert all(w * per_row + 6 * per_row <= GRID_WIDTH for ws in widths.values() for w in ws)


def test_chromium_lays_out_many_variants_within_1400_px(tmp_path):
    """The page (with 10 variants' predictions side by side) is no wider than a 1400 px window."""
    if chromium() is None:
        pytest.skip('no chromium binary found (apt-get install chromium to run this test)')
    out = str(tmp_path / 'r.html')
    load_tool('report').main([*many_variants(str(tmp_path)), '--out', out])
    probe = str(tmp_path / 'probe.html')  # the report plus a script that writes the page's width into it
    with open(out, encoding='utf-8') as f, open(probe, 'w', encoding='utf-8') as g:
        g.write(f.read().replace('</body>', '<script>document.title = "width=" + '
                                 'document.documentElement.scrollWidth;</script></body>'))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                              '--disable-background-networking', '--disable-component-update', '--disable-sync',
                              f'--user-data-dir={profile}', '--window-size=1400,1000', '--dump-dom',
                              'file://' + probe], capture_output=True, text=True, timeout=120, check=True).stdout
    width = int(dom.split('<title>width=')[1].split('<')[0])
    assert 1000 < width <= 1400, width
