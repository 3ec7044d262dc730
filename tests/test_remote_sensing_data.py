"""SegEarth-OV's 17 remote-sensing benchmarks: the datasets and base configs on synthetic data in the
prepared layout, tools/check_data.py on them, and the converters of tools/prepare_data.py on
hand-made examples of the original downloads (label maps compared with explicit colour/value tables)."""
import os.path as osp

import numpy as np
import pytest
from mmengine import Config

from helpers import REPO, load_tool
from sclip.datasets.remote_sensing import RS_DATASET_TYPES, RS_KEYS
from sclip.synthetic import REMOTE_SENSING_LAYOUTS, make_remote_sensing_dataset

# key -> (classes, reduce_zero_label): SegEarth-OV's custom_datasets.py and mmseg's classes
CLASS_COUNTS = {'openearthmap': (9, False), 'loveda': (7, True), 'isaid': (16, False), 'potsdam': (6, True),
                'vaihingen': (6, True), 'uavid': (7, False), 'udd5': (5, False), 'vdd': (7, False)}


def base_config(key):
    return Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'rs_{key}.py'))


def build(key, root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    dataset = dict(base_config(key).test_dataloader.dataset)
    dataset['data_root'] = root
    return DATASETS.build(dataset)


def test_every_key_has_a_base_config_and_a_layout():
    assert set(RS_KEYS) == set(REMOTE_SENSING_LAYOUTS) and len(RS_KEYS) == 17
    for key in RS_KEYS:
        cfg = base_config(key)
        assert cfg.benchmark == key and cfg.dataset_type == RS_DATASET_TYPES[key]
        assert cfg.data_root == 'data/' + REMOTE_SENSING_LAYOUTS[key][0]


@pytest.mark.parametrize('key', RS_KEYS)
def test_base_config_loads_its_synthetic_dataset(key, tmp_path):
    """Each base config reads the synthetic copy; the labels arrive as class indices (reduce_zero_label
    turning 0 into 255 where SegEarth-OV sets it) and stay inside the classes."""
    root = make_remote_sensing_dataset(key, str(tmp_path / 'data'))
    dataset = build(key, root)
    classes, reduce_zero = CLASS_COUNTS.get(key, (2, False))
    assert len(dataset) == 2 and len(dataset.metainfo['classes']) == classes
    assert dataset.reduce_zero_label == reduce_zero
    raw = set(REMOTE_SENSING_LAYOUTS[key][-1])
    expected = {(v - 1 if v else 255) if reduce_zero else v for v in raw}
    seen = set()
    for index in range(len(dataset)):
        seen |= set(np.unique(dataset[index]['data_samples'].gt_sem_seg.data.numpy()).tolist())
    assert seen <= expected and len(seen) >= 2
    assert all(v < classes or v == 255 for v in seen)


def test_check_data_knows_the_remote_sensing_sets(tmp_path, capsys):
    tool = load_tool('check_data')
    root = make_remote_sensing_dataset('potsdam', str(tmp_path / 'data'))
    config = osp.join(REPO, 'configs/_base_/datasets/rs_potsdam.py')
    override = ['--cfg-options', f'test_dataloader.dataset.data_root={root}']
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, *override])  # 2 images, not the official 2016
    assert exit_info.value.code == 2 and '2016' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', *override])
    assert exit_info.value.code == 0 and 'OK (2 images checked' in capsys.readouterr().out


# --- converters: hand-made examples of the original downloads ------------------------------------

import zipfile  # noqa: E402

from PIL import Image  # noqa: E402

from test_prepare_data import fails, prepare  # noqa: E402

# ISPRS 2D labelling colours (RGB), as the benchmark's documentation lists them, with the class index
# of mmseg's ISPRS converters (0 = boundary / anything else, ignored by reduce_zero_label)
ISPRS_RGB = {(255, 255, 255): 1, (0, 0, 255): 2, (0, 255, 255): 3, (0, 255, 0): 4, (255, 255, 0): 5, (255, 0, 0): 6}
OFF_PALETTE = (10, 20, 30)  # a colour of no class (e.g. a resampled edge): 0


def colour_blocks(h, w, colours, seed=0):
    """An RGB label of random rectangles in ``colours`` and its expected index map under ``table``."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((h, w, 3), np.uint8)
    for colour in colours:
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        rgb[y:y + rng.integers(8, h // 2), x:x + rng.integers(8, w // 2)] = colour
    return rgb


def expected_index(rgb, table):
    """Each pixel's class by exact RGB lookup in ``table`` (0 when absent), colour by colour."""
    colours, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    classes = np.array([table.get(tuple(int(v) for v in colour), 0) for colour in colours], np.uint8)
    return classes[inverse.ravel()].reshape(rgb.shape[:2])


def tif_bytes(array):
    import io
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='TIFF')
    return buffer.getvalue()


def png_bytes(array):
    import io
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='PNG')
    return buffer.getvalue()


def write_zip(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, 'w') as z:
        for name, data in members.items():
            z.writestr(name, data)


def read(path):
    return np.array(Image.open(path))


def photo(h, w, seed=1):
    """An RGB image of random 4x4 blocks (cheap to compress, still different at every tile offset)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(4, 0).repeat(4, 1)[:h, :w])


def test_potsdam_tiles_and_colour_labels(tmp_path):
    """A 560x600 val tile -> mmseg's four 512x512 boxes (the last shifted back inside), colours -> 0..6;
    a 512x512 train tile -> one box in train."""
    src, dst = tmp_path / 'src', tmp_path / 'data' / 'potsdam'
    colours = list(ISPRS_RGB) + [OFF_PALETTE, (0, 0, 0)]
    label, image = colour_blocks(560, 600, colours), photo(560, 600)
    write_zip(src / '2_Ortho_RGB.zip', {'2_Ortho_RGB/top_potsdam_2_13_RGB.tif': tif_bytes(image),
                                        '2_Ortho_RGB/top_potsdam_2_10_RGB.tif': tif_bytes(photo(512, 512)),
                                        '2_Ortho_RGB/top_potsdam_2_13_RGB.tfw': b'0.05'})
    write_zip(src / '5_Labels_all_noBoundary.zip', {
        'top_potsdam_2_13_label_noBoundary.tif': tif_bytes(label),
        'top_potsdam_2_10_label_noBoundary.tif': tif_bytes(colour_blocks(512, 512, colours, 3))})
    prepare('potsdam', src, dst)
    index = expected_index(label, ISPRS_RGB)
    boxes = [(0, 0, 512, 512), (88, 0, 600, 512), (0, 48, 512, 560), (88, 48, 600, 560)]  # worked out by hand
    assert sorted(p.name for p in (dst / 'ann_dir' / 'val').iterdir()) == sorted(
        f'2_13_{x0}_{y0}_{x1}_{y1}.png' for x0, y0, x1, y1 in boxes)
    for x0, y0, x1, y1 in boxes:
        name = f'2_13_{x0}_{y0}_{x1}_{y1}.png'
        np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / name), index[y0:y1, x0:x1])
        np.testing.assert_array_equal(read(dst / 'img_dir' / 'val' / name), image[y0:y1, x0:x1])
    assert [p.name for p in (dst / 'img_dir' / 'train').iterdir()] == ['2_10_0_0_512_512.png']
    assert set(np.unique(index)) == {0, 1, 2, 3, 4, 5, 6}


def test_vaihingen_areas_and_labels(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'data' / 'vaihingen'
    label = colour_blocks(520, 512, list(ISPRS_RGB) + [OFF_PALETTE], seed=5)
    image = photo(520, 512, seed=2)
    write_zip(src / 'ISPRS_semantic_labeling_Vaihingen.zip', {
        'top/top_mosaic_09cm_area2.tif': tif_bytes(image), 'top/top_mosaic_09cm_area1.tif': tif_bytes(image),
        'gts_for_participants/top_mosaic_09cm_area1.tif': tif_bytes(label)})
    write_zip(src / 'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip', {
        'top_mosaic_09cm_area2_noBoundary.tif': tif_bytes(label),
        'top_mosaic_09cm_area1_noBoundary.tif': tif_bytes(label),
        'top_mosaic_09cm_area9_noBoundary.tif': tif_bytes(label)})  # dropped, as the official script
    prepare('vaihingen', src, dst, '--splits', 'val')
    boxes = [(0, 0, 512, 512), (0, 8, 512, 520)]
    assert sorted(p.name for p in (dst / 'ann_dir' / 'val').iterdir()) == sorted(
        f'area2_{x0}_{y0}_{x1}_{y1}.png' for x0, y0, x1, y1 in boxes)
    index = expected_index(label, ISPRS_RGB)
    for x0, y0, x1, y1 in boxes:
        np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / f'area2_{x0}_{y0}_{x1}_{y1}.png'),
                                      index[y0:y1, x0:x1])
    assert not (dst / 'img_dir' / 'train').exists()  # area1 is train: not asked for


# iSAID's 16 classes in mmseg's iSAIDDataset order, with the colours of the iSAID devkit (RGB)
ISAID_RGB = {(0, 0, 0): 0, (0, 0, 63): 1, (0, 63, 63): 2, (0, 63, 0): 3, (0, 63, 127): 4, (0, 63, 191): 5,
             (0, 63, 255): 6, (0, 127, 63): 7, (0, 127, 127): 8, (0, 0, 127): 9, (0, 0, 191): 10, (0, 0, 255): 11,
             (0, 191, 127): 12, (0, 127, 191): 13, (0, 127, 255): 14, (0, 100, 155): 15}


def test_isaid_patches_padding_and_labels(tmp_path):
    """A 300x1000 image: padded to 896 high (image 0, label 255) and cut into two 896x896 patches."""
    src, dst = tmp_path / 'iSAID', tmp_path / 'data' / 'iSAID'
    label = colour_blocks(300, 1000, list(ISAID_RGB) + [OFF_PALETTE], seed=7)
    image = photo(300, 1000, seed=3)
    write_zip(src / 'val' / 'images' / 'part1.zip', {'images/P0003.png': png_bytes(image)})
    write_zip(src / 'val' / 'Semantic_masks' / 'images.zip',
              {'images/P0003_instance_color_RGB.png': png_bytes(label),
               'images/P0003_instance_id_RGB.png': png_bytes(label)})  # the instance map is not read
    prepare('isaid', src, dst)
    padded_label = np.full((896, 1000), 255, np.uint8)
    padded_label[:300] = expected_index(label, ISAID_RGB)
    padded_image = np.zeros((896, 1000, 3), np.uint8)
    padded_image[:300] = image
    for x0, x1 in ((0, 896), (104, 1000)):
        np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / f'P0003_0_896_{x0}_{x1}_instance_color_RGB.png'),
                                      padded_label[:, x0:x1])
        np.testing.assert_array_equal(read(dst / 'img_dir' / 'val' / f'P0003_0_896_{x0}_{x1}.png'),
                                      padded_image[:, x0:x1])
    assert len(list((dst / 'ann_dir' / 'val').iterdir())) == 2


UAVID_RGB = {(0, 0, 0): 0, (128, 0, 0): 1, (128, 64, 128): 2, (192, 0, 192): 3, (0, 128, 0): 4, (128, 128, 0): 5,
             (64, 64, 0): 6, (64, 0, 128): 3}  # UAVid's Moving_Car colour, merged into (static) car by SegEarth-OV


def test_uavid_patches_and_moving_car(tmp_path):
    src, dst = tmp_path / 'UAVid', tmp_path / 'data' / 'UAVid'
    label = colour_blocks(500, 1400, list(UAVID_RGB) + [OFF_PALETTE], seed=9)
    image = photo(500, 1400, seed=4)
    for folder, array in (('Images', image), ('Labels', label)):
        (src / 'test_gt' / 'seq21' / folder).mkdir(parents=True)
        Image.fromarray(array).save(src / 'test_gt' / 'seq21' / folder / '000100.png')
    prepare('uavid', src, dst)
    padded = np.full((1080, 1400), 255, np.uint8)
    padded[:500] = expected_index(label, UAVID_RGB)
    for x0, x1 in ((0, 1280), (120, 1400)):
        name = f'seq21_000100_0_1080_{x0}_{x1}.png'
        np.testing.assert_array_equal(read(dst / 'ann_dir' / 'test' / name), padded[:, x0:x1])
        np.testing.assert_array_equal(read(dst / 'img_dir' / 'test' / name)[:500], image[:, x0:x1])
    assert 7 not in np.unique(padded) and 3 in np.unique(padded)


def test_loveda_copies_both_locations_and_checks_values(tmp_path, capsys):
    src, dst = tmp_path / 'src', tmp_path / 'data' / 'LoveDA'
    masks = {loc: np.random.default_rng(i).integers(0, 8, (6, 5), dtype=np.uint8)
             for i, loc in enumerate(('Rural', 'Urban'))}
    members = {}
    for stem, loc in (('2522', 'Rural'), ('4191', 'Urban')):
        members[f'Val/{loc}/images_png/{stem}.png'] = png_bytes(photo(6, 5))
        members[f'Val/{loc}/masks_png/{stem}.png'] = png_bytes(masks[loc])
    write_zip(src / 'Val.zip', members)
    prepare('loveda', src, dst)
    np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / '2522.png'), masks['Rural'])
    np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / '4191.png'), masks['Urban'])
    assert sorted(p.name for p in (dst / 'img_dir' / 'val').iterdir()) == ['2522.png', '4191.png']
    bad = masks['Urban'].copy()
    bad[0, 0] = 9
    members['Val/Urban/masks_png/4191.png'] = png_bytes(bad)
    write_zip(src / 'Val.zip', members)
    err = fails(capsys, 'loveda', src, dst)
    assert 'Val.zip:Val/Urban/masks_png/4191.png' in err and '[9]' in err
    err = fails(capsys, 'loveda', src, dst, '--splits', 'train')  # the wrong split: Train.zip absent
    assert 'split train not found' in err


def test_openearthmap_val_list(tmp_path):
    src, dst = tmp_path / 'OpenEarthMap_wo_xBD', tmp_path / 'data' / 'OpenEarthMap'
    label = np.arange(30, dtype=np.uint8).reshape(5, 6) % 9
    for region, name in (('aachen', 'aachen_1.tif'), ('kyoto', 'kyoto_12.tif')):
        for folder, array in (('images', photo(5, 6)), ('labels', label)):
            (src / region / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(src / region / folder / name)
    (src / 'val.txt').write_text('aachen_1.tif\n')
    prepare('openearthmap', src, dst)
    assert [p.name for p in (dst / 'ann_dir' / 'val').iterdir()] == ['aachen_1.tif']
    np.testing.assert_array_equal(read(dst / 'ann_dir' / 'val' / 'aachen_1.tif'), label)


def test_udd5_checks_released_labels(tmp_path, capsys):
    src, dst = tmp_path / 'UDD5', tmp_path / 'data' / 'UDD5'
    (src / 'val' / 'src').mkdir(parents=True)
    (src / 'val' / 'gt').mkdir(parents=True)
    Image.fromarray(photo(4, 6)).save(src / 'val' / 'src' / 'DJI_0538.JPG')
    Image.fromarray(np.array([[0, 1, 2, 3, 4, 0]] * 4, np.uint8)).save(src / 'val' / 'gt' / 'DJI_0538.png')
    prepare('udd5', src, dst, '--splits', 'val')
    assert (dst / 'val' / 'gt' / 'DJI_0538.png').read_bytes() == (src / 'val' / 'gt' / 'DJI_0538.png').read_bytes()
    Image.fromarray(np.full((4, 6, 3), 128, np.uint8)).save(src / 'val' / 'gt' / 'DJI_0538.png')  # a colour map
    err = fails(capsys, 'udd5', src, dst)
    assert str(src / 'val' / 'gt' / 'DJI_0538.png') in err and 'one channel' in err


def grey_mask(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def test_binary_sets_threshold_rename_and_filter(tmp_path):
    """CHN6-CUG: >= 128 -> 1, '_sat'/'_mask' dropped; xBD: >= 1 -> 1, only pre-disaster files."""
    src, dst = tmp_path / 'CHN6-CUG', tmp_path / 'data' / 'CHN6-CUG'
    mask = grey_mask(7, 9, 0)
    mask[0, :4] = (0, 127, 128, 255)
    (src / 'val' / 'images').mkdir(parents=True)
    (src / 'val' / 'gt').mkdir(parents=True)
    Image.fromarray(photo(7, 9)).save(src / 'val' / 'images' / 'am100001_sat.jpg')
    Image.fromarray(mask).save(src / 'val' / 'gt' / 'am100001_mask.png')
    prepare('chn6_cug', src, dst)
    label = read(dst / 'val' / 'label_cvt' / 'am100001.png')
    np.testing.assert_array_equal(label, np.where(mask >= 128, 1, 0))
    assert label[0, :4].tolist() == [0, 0, 1, 1]
    assert (dst / 'val' / 'image_cvt' / 'am100001.jpg').read_bytes() == \
        (src / 'val' / 'images' / 'am100001_sat.jpg').read_bytes()

    src, dst = tmp_path / 'xBD', tmp_path / 'data' / 'xBD'
    damage = np.array([[0, 1, 2, 3, 4]], np.uint8)
    (src / 'test' / 'images').mkdir(parents=True)
    (src / 'test' / 'targets').mkdir(parents=True)
    for when in ('pre', 'post'):
        stem = f'palu-tsunami_00000001_{when}_disaster'
        Image.fromarray(photo(1, 5)).save(src / 'test' / 'images' / f'{stem}.png')
        Image.fromarray(damage).save(src / 'test' / 'targets' / f'{stem}_target.png')
    prepare('xbd_pre', src, dst)
    assert [p.name for p in (dst / 'test' / 'targets_cvt_pre').iterdir()] == ['palu-tsunami_00000001_pre_disaster.png']
    assert read(dst / 'test' / 'targets_cvt_pre' / 'palu-tsunami_00000001_pre_disaster.png').tolist() == \
        [[0, 1, 1, 1, 1]]
    assert [p.name for p in (dst / 'test' / 'images_pre').iterdir()] == ['palu-tsunami_00000001_pre_disaster.png']


def test_wbs_si_writes_lossless_masks_and_its_list(tmp_path, monkeypatch):
    from sclip.data_prep import rs_binary
    listed = tmp_path / 'list.txt'
    listed.write_text('water_body_7\n')
    monkeypatch.setattr(rs_binary, 'WBS_SI_VAL', str(listed))
    src = tmp_path / 'WaterBodiesDatasetPreprocessed'
    (src / 'Images').mkdir(parents=True)
    (src / 'Masks').mkdir(parents=True)
    for stem in ('water_body_7', 'water_body_8'):
        Image.fromarray(photo(16, 16)).save(src / 'Images' / f'{stem}.jpg')
        Image.fromarray(grey_mask(16, 16, 1)).save(src / 'Masks' / f'{stem}.jpg', quality=95)
    prepare('wbs_si', src, src)
    import cv2
    decoded = cv2.imread(str(src / 'Masks' / 'water_body_7.jpg'), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(read(src / 'Masks_cvt' / 'water_body_7.png'), np.where(decoded >= 128, 1, 0))
    assert [p.name for p in (src / 'Masks_cvt').iterdir()] == ['water_body_7.png']
    assert (src / 'val.txt').read_text() == 'water_body_7\n'


def test_the_shipped_wbs_si_list_is_segearths():
    from sclip.data_prep.rs_binary import WBS_SI_VAL
    with open(WBS_SI_VAL) as f:
        names = [line.strip() for line in f if line.strip()]
    assert len(names) == len(set(names)) == base_config('wbs_si').expected_images == 499
    assert names[:3] == ['water_body_2396', 'water_body_1074', 'water_body_2182']


def test_inria_tiles_of_the_listed_split(tmp_path, monkeypatch):
    from sclip.data_prep import rs_binary
    monkeypatch.setattr(rs_binary, 'INRIA_SPLITS', {'split_val': ('chicago24',), 'split_test': ('austin1',)})
    src, dst = tmp_path / 'train', tmp_path / 'data' / 'Inria'
    (src / 'images').mkdir(parents=True)
    (src / 'gt').mkdir(parents=True)
    mask = np.where(grey_mask(1000, 1200, 2) >= 128, 255, 0).astype(np.uint8)
    for tile in ('austin1', 'austin2'):  # austin2: a train tile, not prepared
        Image.fromarray(photo(1000, 1200)).save(src / 'images' / f'{tile}.tif')
        Image.fromarray(mask).save(src / 'gt' / f'{tile}.tif')
    prepare('inria', src, dst, '--splits', 'split_test')
    names = sorted(p.name for p in (dst / 'ann_dir' / 'split_test').iterdir())
    assert names == ['austin1_0_0_1000_1000.png', 'austin1_200_0_1200_1000.png']
    np.testing.assert_array_equal(read(dst / 'ann_dir' / 'split_test' / names[1]), mask[:, 200:] // 255)
    err_src = tmp_path / 'empty'
    (err_src / 'images').mkdir(parents=True)
    (err_src / 'gt').mkdir()
    with pytest.raises(Exception, match='austin1.tif: not found'):
        from sclip.data_prep import prepare as run
        run('inria', str(err_src), str(dst), workers=1, splits=['split_test'])


def test_bad_downloads_are_one_line(tmp_path, capsys):
    src = tmp_path / 'src'
    src.mkdir()
    dst = tmp_path / 'dst'
    err = fails(capsys, 'potsdam', src, dst)  # nothing downloaded yet
    assert str(src / '2_Ortho_RGB.zip') in err
    write_zip(src / '2_Ortho_RGB.zip', {'top_potsdam_2_13_RGB.tif': tif_bytes(photo(8, 8))})
    write_zip(src / '5_Labels_all_noBoundary.zip', {'top_potsdam_2_14_label_noBoundary.tif': tif_bytes(photo(8, 8))})
    err = fails(capsys, 'potsdam', src, dst)  # a tile whose label is missing from the archive
    assert str(src / '5_Labels_all_noBoundary.zip') in err and '2_13' in err
    (src / '5_Labels_all_noBoundary.zip').write_bytes(b'PK\x03\x04truncated')
    err = fails(capsys, 'potsdam', src, dst)
    assert str(src / '5_Labels_all_noBoundary.zip') in err and 'zip' in err
    err = fails(capsys, 'isaid', tmp_path / 'src', dst)  # no val/ folder: the wrong split or folder
    assert 'val' in err
    isaid = tmp_path / 'iSAID'
    write_zip(isaid / 'val' / 'images' / 'part1.zip', {'images/P0001.png': png_bytes(photo(4, 4))})
    write_zip(isaid / 'val' / 'Semantic_masks' / 'images.zip', {})
    err = fails(capsys, 'isaid', isaid, dst)  # the masks' part of the archive is missing
    assert str(isaid / 'val' / 'images' / 'part1.zip') in err and 'P0001' in err
    roads = tmp_path / 'roads'
    (roads / 'img').mkdir(parents=True)
    (roads / 'gt').mkdir()
    Image.fromarray(grey_mask(4, 4, 0)).save(roads / 'gt' / '10378780_15.png')
    err = fails(capsys, 'massachusetts_road', roads, dst)  # a mask without its image
    assert str(roads / 'gt' / '10378780_15.png') in err


def test_a_symlink_out_of_the_download_is_refused(tmp_path, capsys):
    outside = tmp_path / 'outside.png'
    Image.fromarray(grey_mask(4, 4, 1)).save(outside)
    roads = tmp_path / 'roads'
    (roads / 'img').mkdir(parents=True)
    (roads / 'gt').mkdir()
    Image.fromarray(photo(4, 4)).save(roads / 'img' / 'a.jpg')
    (roads / 'gt' / 'a.png').symlink_to(outside)
    err = fails(capsys, 'spacenet_road', roads, tmp_path / 'dst')
    assert str(roads / 'gt' / 'a.png') in err and 'outside SRC and DST' in err


def test_check_data_names_a_binary_label_outside_its_classes(tmp_path, capsys):
    tool = load_tool('check_data')
    root = make_remote_sensing_dataset('spacenet_road', str(tmp_path / 'data'))
    config = osp.join(REPO, 'configs/_base_/datasets/rs_spacenet_road.py')
    bad = sorted((tmp_path / 'data').rglob('*.png'))[0]
    label = read(bad)
    label[0, 0] = 2  # e.g. a JPEG-damaged mask
    Image.fromarray(label).save(bad)
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', '--cfg-options', f'test_dataloader.dataset.data_root={root}'])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error:')]
    assert exit_info.value.code == 2 and len(lines) == 1 and str(bad) in lines[0] and '[2]' in lines[0]


def test_a_method_runs_end_to_end_on_a_remote_sensing_base(tmp_path, monkeypatch):
    """ClearCLIP's base (SegEarth-OV is built on its code) with rs_loveda.py: tools/test.py scores the
    7 LoveDA classes on the synthetic copy, label 0 (no-data) ignored by reduce_zero_label."""
    from helpers import run_tool, write_openai_checkpoint
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(tmp_path / 'text_cache'))
    root = make_remote_sensing_dataset('loveda', str(tmp_path / 'data'), sizes=[(48, 40), (32, 48)])
    names = tmp_path / 'loveda.txt'
    names.write_text('background\nbuilding\nroad\nwater\nbarren\nforest\nagricultural\n')
    config = tmp_path / 'clearclip_loveda.py'
    config.write_text(f"_base_ = ['{REPO}/configs/_base_/datasets/rs_loveda.py', '{REPO}/configs/_base_/clearclip.py']\n"
                      f"model = dict(class_names='{names}', templates=['a photo of a {{}}.'])\n"
                      # one 224 window per image (the base's 448 side takes minutes on loaded CPUs)
                      "test_dataloader = dict(dataset=dict(pipeline=[dict(type='SCLIPLoadImage'), "
                      "dict(type='Resize', scale=(224, 224), keep_ratio=True), dict(type='SCLIPLoadAnnotations'), "
                      "dict(type='PackSegInputs')]))\n")
    weights = write_openai_checkpoint(str(tmp_path / 'w.pt'), width=64, layers=2)
    metrics = run_tool(str(config), root, weights, str(tmp_path / 'run'))
    assert list(metrics['per_class']['IoU']) == list(build('loveda', root).metainfo['classes'])
    assert metrics['identity']['data']['num_images'] == 2
    classes = list(metrics['per_class']['IoU'])
    raw = set(np.unique(np.concatenate([read(p).ravel() for p in (tmp_path / 'data').rglob('ann_dir/val/*.png')])).tolist())
    present = {classes[v - 1] for v in raw if v}  # reduce_zero_label: raw v is class v - 1, 0 ignored
    scored = {name for name, iou in metrics['per_class']['IoU'].items() if iou is not None}
    assert 0 in raw and len(present) >= 2 and present <= scored
