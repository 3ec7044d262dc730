"""Every bad image or label stops its sample with one line naming the file, and
tools/check_data.py names it first; good files load exactly as mmcv/mmseg load them."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, load_tool, make_dataset, write_image, write_label
from sclip.data_check import PairRules, check_pair, patch_size
from sclip.datasets.transforms import SCLIPLoadAnnotations, SCLIPLoadImage
from sclip.errors import SCLIPError

VOC = osp.join(REPO, 'configs', 'sclip_voc21.py')
STEM = '2008_000003'  # the second image of make_dataset: 40x52
FIRST = '2008_000002'  # the first, 60x45: a run that fails on it stops before the text classifier is built
NEW_LOADERS = ['test_dataloader.dataset.pipeline.0.type=SCLIPLoadImage',
               'test_dataloader.dataset.pipeline.2.type=SCLIPLoadAnnotations']


@pytest.fixture
def voc(tmp_path):
    return make_dataset('voc21', str(tmp_path / 'data'))


def image_of(root, stem=STEM):
    return osp.join(root, 'JPEGImages', stem + '.jpg')


def label_of(root, stem=STEM):
    return osp.join(root, 'SegmentationClass', stem + '.png')


def sample(image, label, reduce_zero_label=False, label_map=None):
    """A sample as mmseg's BaseSegDataset hands it to the pipeline."""
    return dict(img_path=image, seg_map_path=label, label_map=label_map, reduce_zero_label=reduce_zero_label,
                seg_fields=[], sample_idx=0)


def load_new(image, label, num_classes=21, **kwargs):
    results = SCLIPLoadImage()(sample(image, label, **kwargs))
    return SCLIPLoadAnnotations(num_classes=num_classes)(results)


def load_official(image, label, **kwargs):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations
    return LoadAnnotations()(LoadImageFromFile()(sample(image, label, **kwargs)))


def check_data(capsys, root, *extra, config=VOC):
    """tools/check_data.py in-process: (exit code, error lines, note lines)."""
    tool = load_tool('check_data')
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', '--cfg-options', f'test_dataloader.dataset.data_root={root}', *extra])
    err = capsys.readouterr().err.splitlines()
    owned = f'{config}: '  # every line names the config it belongs to

    def strip(line, kind):
        assert line.startswith(kind + owned), line
        return line[len(kind + owned):]
    return (exit_info.value.code, [strip(line, 'error: ') for line in err if line.startswith('error: ')],
            [strip(line, 'note: ') for line in err if line.startswith('note: ')])


def assert_rejected(root, path, needle, num_classes=21, **kwargs):
    """Loading the pair raises one line naming ``path`` and saying ``needle``; returns the line."""
    with pytest.raises(SCLIPError) as error:
        load_new(image_of(root), label_of(root), num_classes, **kwargs)
    message = str(error.value)
    assert '\n' not in message and path in message and needle in message, message
    return message


def write_exif_jpeg(path, size, orientation):
    """A JPEG (w, h) whose EXIF says how to orient it (tag 0x0112)."""
    rng = np.random.default_rng(1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, exif=exif.tobytes())


# ---- good files: the same arrays as mmcv's and mmseg's loaders ---------------------------

def test_same_outputs_as_official_loaders(tmp_path, voc):
    png_image = str(tmp_path / 'extra' / 'a.png')
    write_image(png_image, (33, 21), seed=5)
    grey_label = str(tmp_path / 'extra' / 'a_grey.png')
    write_label(grey_label, (33, 21), [0, 7, 255], seed=6)
    rotated = str(tmp_path / 'extra' / 'rotated.jpg')
    write_exif_jpeg(rotated, (30, 30), orientation=3)  # applied by cv2 to the image, sizes unchanged
    write_label(str(tmp_path / 'extra' / 'rotated.png'), (30, 30), [0, 3], seed=7)
    cases = [(image_of(voc), label_of(voc), {}),
             (image_of(voc), label_of(voc), dict(reduce_zero_label=True)),
             (image_of(voc), label_of(voc), dict(label_map={0: 255, 1: 0, 15: 1})),
             (png_image, grey_label, {}),
             (rotated, str(tmp_path / 'extra' / 'rotated.png'), {})]
    for image, label, kwargs in cases:
        ours, official = load_new(image, label, **kwargs), load_official(image, label, **kwargs)
        assert set(ours) == set(official)
        for key in ('img', 'gt_seg_map'):
            assert ours[key].dtype == official[key].dtype and np.array_equal(ours[key], official[key]), (image, key)
        for key in ('img_shape', 'ori_shape', 'seg_fields', 'reduce_zero_label'):
            assert ours[key] == official[key]
    stored = np.array(Image.open(rotated))[..., ::-1].astype(float)  # BGR, as saved, before the EXIF turn
    decoded = load_new(rotated, cases[-1][1])['img']
    assert np.abs(decoded - stored[::-1, ::-1]).mean() < 3 < np.abs(decoded - stored).mean()


@pytest.mark.parametrize('options', [dict(to_float32=True), dict(color_type='grayscale'),
                                     dict(imdecode_backend='pillow')])
def test_image_options_as_mmcv(voc, options):
    from mmcv.transforms import LoadImageFromFile
    ours = SCLIPLoadImage(**options)(sample(image_of(voc), None))
    official = LoadImageFromFile(**options)(sample(image_of(voc), None))
    assert ours['img'].dtype == official['img'].dtype and np.array_equal(ours['img'], official['img'])


def test_class_count_comes_from_the_dataset(voc, tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    pipeline = [dict(type='SCLIPLoadImage'), dict(type='SCLIPLoadAnnotations')]
    for dataset_type, count in [('PascalVOCDataset', 21), ('PascalVOC20Dataset', 20)]:
        dataset = DATASETS.build(dict(type=dataset_type, data_root=voc, ann_file='ImageSets/Segmentation/val.txt',
                                      data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                                      pipeline=pipeline))
        assert dataset.pipeline.transforms[1].num_classes == count
        assert dataset[1]['gt_seg_map'].shape == (52, 40)
    loose = SCLIPLoadAnnotations()  # outside any dataset: refuses to guess
    with pytest.raises(SCLIPError, match='does not know the number of classes'):
        loose(sample(image_of(voc), label_of(voc)))
    assert loose({'img_path': image_of(voc)}) == {'img_path': image_of(voc)}  # inference: no label, no change


# ---- one test per bad file ---------------------------------------------------------------

def test_label_value_outside_class_range(capsys, voc):
    label = np.array(Image.open(label_of(voc)))
    label[0, :3] = [40, 21, 254]
    Image.fromarray(label).save(label_of(voc))
    message = assert_rejected(voc, label_of(voc), 'label values [21, 40, 254] outside 0..20 or 255')
    code, errors, _ = check_data(capsys, voc)
    assert code == 2 and errors == [message]


def test_label_value_outside_range_after_reduce_zero_label(capsys, voc):
    label = np.array(Image.open(label_of(voc)))
    label[0, :2] = [21, 20]  # VOC20: raw 20 is class 19, raw 21 is nothing
    Image.fromarray(label).save(label_of(voc))
    message = assert_rejected(voc, label_of(voc), 'label values [21] outside 0..20 (reduce_zero_label',
                              num_classes=20, reduce_zero_label=True)
    code, errors, _ = check_data(capsys, voc, config=osp.join(REPO, 'configs', 'sclip_voc20.py'))
    assert code == 2 and errors == [message]


def test_sixteen_bit_label_not_wrapped_into_uint8(capsys, voc):
    label = np.array(Image.open(label_of(voc))).astype(np.uint16)
    label[0, 0] = 256 + 15  # mmseg's astype(uint8) would make it class 15
    Image.fromarray(label).save(label_of(voc))
    message = assert_rejected(voc, label_of(voc), 'label values [271]')
    assert check_data(capsys, voc)[1] == [message]


def test_label_size_differs_from_image(capsys, voc):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(label_of(voc))
    message = assert_rejected(voc, label_of(voc), 'label size 10x10 differs from image size 40x52')
    assert check_data(capsys, voc)[:2] == (2, [message])


@pytest.mark.parametrize('mode, channels', [('RGB', 3), ('RGBA', 4)])
def test_colour_label(capsys, voc, mode, channels):
    Image.fromarray(np.array(Image.open(label_of(voc)))).convert(mode).save(label_of(voc))
    message = assert_rejected(voc, label_of(voc), f'label has {channels} channels')
    assert 'convert it to class indices' in message
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_jpeg_data_in_a_label_file(capsys, voc):
    """In-range values, so only the format tells: a JPEG label's edges are lossy class indices."""
    Image.open(label_of(voc)).convert('L').save(label_of(voc), format='JPEG', quality=90)
    message = assert_rejected(voc, label_of(voc), 'JPEG data')
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_truncated_png_label(capsys, voc):
    data = open(label_of(voc), 'rb').read()
    with open(label_of(voc), 'wb') as f:
        f.write(data[:len(data) - 20])  # cut inside the pixel data
    message = assert_rejected(voc, label_of(voc), 'label file is truncated')
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_truncated_jpeg_image_even_when_pil_pads(capsys, voc, monkeypatch):
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)  # PIL would fill the rest in grey
    data = open(image_of(voc), 'rb').read()
    with open(image_of(voc), 'wb') as f:
        f.write(data[:int(len(data) * 0.8)])
    for backend in ('cv2', 'pillow'):
        with pytest.raises(SCLIPError, match='file is truncated') as error:
            SCLIPLoadImage(imdecode_backend=backend)(sample(image_of(voc), None))
        assert image_of(voc) in str(error.value)
    assert check_data(capsys, voc)[:2] == (2, [str(error.value)])


@pytest.mark.parametrize('fmt', ['BMP', 'TIFF'])
def test_truncated_image_of_other_formats_is_one_line_without_opencv_logs(capfd, voc, fmt):
    """OpenCV logs its own decode errors straight to the terminal (file descriptor 2)."""
    buffer = __import__('io').BytesIO()
    Image.open(image_of(voc)).save(buffer, format=fmt)
    with open(image_of(voc), 'wb') as f:  # the .jpg name is kept: decoders go by content
        f.write(buffer.getvalue()[:len(buffer.getvalue()) * 3 // 4])
    code, problems, _ = check_data(capfd, voc)
    assert code == 2 and len(problems) == 1 and image_of(voc) in problems[0], problems
    capfd.readouterr()
    tool = load_tool('check_data')
    with pytest.raises(SystemExit):
        tool.main([VOC, '--no-count', '--cfg-options', f'test_dataloader.dataset.data_root={voc}'])
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [f'error: {VOC}: {problems[0]}'], err


def test_progressive_jpeg_is_complete(voc):
    Image.open(image_of(voc)).save(image_of(voc), progressive=True, quality=90)
    assert load_new(image_of(voc), label_of(voc))['img'].shape == (52, 40, 3)


def test_zero_byte_image(capsys, voc):
    open(image_of(voc), 'wb').close()
    message = assert_rejected(voc, image_of(voc), 'file is empty (0 bytes)')
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_undecodable_image_and_label(capsys, voc):
    with open(label_of(voc), 'wb') as f:
        f.write(b'not a png')
    message = assert_rejected(voc, label_of(voc), 'label file could not be decoded')
    assert check_data(capsys, voc)[:2] == (2, [message])
    with open(image_of(voc), 'wb') as f:
        f.write(b'\xff\xd8 not a jpeg')
    message = assert_rejected(voc, image_of(voc), 'cannot be read as an image')
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_missing_file(capsys, voc):
    os.remove(label_of(voc))
    assert_rejected(voc, label_of(voc), 'file not found')
    assert check_data(capsys, voc)[:2] == (2, [f'{image_of(voc)}: its label {label_of(voc)} is missing'])


def test_help_imports_neither_torch_nor_mmseg():
    import subprocess
    import sys
    script = ("import runpy, sys\nsys.argv = ['check_data.py', '--help']\ntry:\n"
              f"    runpy.run_path({osp.join(REPO, 'tools', 'check_data.py')!r}, run_name='__main__')\n"
              "except SystemExit:\n    pass\nprint('torch' in sys.modules, 'mmseg' in sys.modules)")
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True)
    assert 'usage: check_data.py' in result.stdout and result.stdout.strip().endswith('False False')


def test_exif_rotation_that_swaps_the_sides(capsys, voc):
    write_exif_jpeg(image_of(voc), (40, 52), orientation=6)  # label stays 40x52, the image becomes 52x40
    message = assert_rejected(voc, image_of(voc), 'has EXIF orientation 6, which the official pipeline applies '
                              f'to the image but not to its label {label_of(voc)}')
    assert check_data(capsys, voc)[:2] == (2, [message])


def test_exif_rotation_keeping_the_sides_is_a_note(capsys, voc):
    write_exif_jpeg(image_of(voc), (40, 52), orientation=3)
    assert load_new(image_of(voc), label_of(voc))['img'].shape == (52, 40, 3)
    code, errors, notes = check_data(capsys, voc)
    assert (code, errors) == (0, [])
    assert len(notes) == 1 and image_of(voc) in notes[0] and 'EXIF orientation 3' in notes[0]


# ---- small and thin images: loaded, then judged against the model's patch ----------------

def test_thin_panorama(capsys, voc):
    Image.fromarray(np.zeros((50, 10000, 3), np.uint8)).save(image_of(voc))
    Image.fromarray(np.zeros((50, 10000), np.uint8)).save(label_of(voc))
    assert load_new(image_of(voc), label_of(voc))['gt_seg_map'].shape == (50, 10000)  # not a load error
    code, errors, _ = check_data(capsys, voc)
    assert code == 2 and errors == [f'{image_of(voc)} (10000x50) resizes to 2048x10, thinner than one '
                                    '16-pixel patch; remove it from the split']
    code, errors, _ = check_data(capsys, voc, 'model.arch=ViT-B-32')
    assert 'thinner than one 32-pixel patch' in errors[0]
    assert check_data(capsys, voc, "test_dataloader.dataset.pipeline.1.scale=(3000,336)")[1][0].startswith(
        f'{image_of(voc)} (10000x50) resizes to 3000x15,')


def test_patch_size_from_arch():
    assert [patch_size(a) for a in ('ViT-B-16', 'ViT-L-14-336', 'ViT-B-32', 'ViT-L/14@336px', None)] == \
        [16, 14, 32, 14, 16]


def test_one_pixel_image(capsys, voc, tmp_path):
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(image_of(voc))
    Image.fromarray(np.full((1, 1), 15, np.uint8)).save(label_of(voc))
    results = load_new(image_of(voc), label_of(voc))
    assert results['img'].shape == (1, 1, 3) and results['gt_seg_map'].tolist() == [[15]]
    assert check_data(capsys, voc)[:2] == (0, [])  # Resize makes it 336x336
    unresized = check_pair(image_of(voc), label_of(voc), PairRules(num_classes=21))
    assert unresized.problems == [f'{image_of(voc)} (1x1) is thinner than one 16-pixel patch; remove it from the split']


def test_coco_object_label_from_an_old_converter(capsys, tmp_path):
    root = make_dataset('coco_object', str(tmp_path / 'data'))
    folder = osp.join(root, 'annotations', 'val2017')
    for name in os.listdir(folder):  # 255 where the old converter left unlabelled pixels
        array = np.array(Image.open(osp.join(folder, name)))
        array[:2, :2] = 255
        Image.fromarray(array).save(osp.join(folder, name))
    config = osp.join(REPO, 'configs', 'sclip_coco_object.py')
    code, errors, _ = check_data(capsys, root, config=config)
    assert code == 2 and len(errors) == 2
    assert all('contains 255' in e and 'python tools/prepare_data.py coco_object' in e for e in errors)
    for name in os.listdir(folder):  # as the official converter: unlabelled is background
        path = osp.join(folder, name)
        array = np.array(Image.open(path))
        Image.fromarray(np.where(array == 255, 0, array).astype(np.uint8)).save(path)
    assert check_data(capsys, root, config=config)[:2] == (0, [])


# ---- whole runs: one error line, or a finished run -------------------------------------

def run_test_tool(capsys, tmp_path, root, weights, workers=0):
    from sclip.cli import main_guard
    tool = load_tool('test')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main([VOC, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                                      f'test_dataloader.dataset.data_root={root}', f'model.pretrained={weights}',
                                      f'test_dataloader.num_workers={workers}', *NEW_LOADERS]))
    return exit_info.value.code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize('workers', [0, 1])  # with a worker, DataLoader wraps the error
def test_run_stops_on_label_value_with_one_line(capsys, tmp_path, voc, tiny_checkpoint, workers):
    label = np.array(Image.open(label_of(voc, FIRST)))
    label[0, 0] = 40
    Image.fromarray(label).save(label_of(voc, FIRST))
    code, lines = run_test_tool(capsys, tmp_path, voc, tiny_checkpoint, workers)
    assert code == 2 and lines == [f'error: {label_of(voc, FIRST)}: label values [40] outside 0..20 or 255 '
                                   '(ignored); they would be counted as wrong pixels or dropped; fix the label or '
                                   'use the config of its benchmark.']


def test_run_stops_on_exif_rotation_with_one_line(capsys, tmp_path, voc, tiny_checkpoint):
    write_exif_jpeg(image_of(voc, FIRST), (60, 45), orientation=8)
    code, lines = run_test_tool(capsys, tmp_path, voc, tiny_checkpoint, workers=0)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f'error: {image_of(voc, FIRST)} has EXIF orientation 8, which the official')


def test_run_finishes_with_a_one_pixel_image(tmp_path, voc, tiny_checkpoint):
    from helpers import run_tool
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(image_of(voc))
    Image.fromarray(np.full((1, 1), 15, np.uint8)).save(label_of(voc))
    metrics = run_tool('configs/sclip_voc21.py', voc, tiny_checkpoint, str(tmp_path / 'w'), '--cfg-options',
                       *NEW_LOADERS)
    assert 0 <= metrics['mIoU'] <= 100
