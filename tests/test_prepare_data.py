"""tools/prepare_data.py: each converter on a tiny hand-made example of its source format
(.png/.mat/.json written here), output pixels checked against values worked out by hand."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from helpers import REPO, load_tool
from test_coco_object import OFFICIAL_164K, official_convert, read_png, write_png

# The PASCAL-Context release's labels.txt: line i is "i: <name>" (1-based), 459 classes.
PASCAL_CONTEXT_459 = (
    'accordion|aeroplane|air conditioner|antenna|artillery|ashtray|atrium|baby carriage|bag|ball|balloon|'
    'bamboo weaving|barrel|baseball bat|basket|basketball backboard|bathtub|bed|bedclothes|beer|bell|'
    'bench|bicycle|binoculars|bird|bird cage|bird feeder|bird nest|blackboard|board|boat|bone|book|'
    'bottle|bottle opener|bowl|box|bracelet|brick|bridge|broom|brush|bucket|building|bus|cabinet|'
    'cabinet door|cage|cake|calculator|calendar|camel|camera|camera lens|can|candle|candle holder|cap|'
    'car|card|cart|case|casette recorder|cash register|cat|cd|cd player|ceiling|cell phone|cello|chain|'
    'chair|chessboard|chicken|chopstick|clip|clippers|clock|closet|cloth|clothes tree|coffee|'
    'coffee machine|comb|computer|concrete|cone|container|control booth|controller|cooker|'
    'copying machine|coral|cork|corkscrew|counter|court|cow|crabstick|crane|crate|cross|crutch|cup|'
    'curtain|cushion|cutting board|dais|disc|disc case|dishwasher|dock|dog|dolphin|door|drainer|dray|'
    'drink dispenser|drinking machine|drop|drug|drum|drum kit|duck|dumbbell|earphone|earrings|egg|'
    'electric fan|electric iron|electric pot|electric saw|electronic keyboard|engine|envelope|equipment|'
    'escalator|exhibition booth|extinguisher|eyeglass|fan|faucet|fax machine|fence|ferris wheel|'
    'fire extinguisher|fire hydrant|fire place|fish|fish tank|fishbowl|fishing net|fishing pole|flag|'
    'flagstaff|flame|flashlight|floor|flower|fly|foam|food|footbridge|forceps|fork|forklift|fountain|fox|'
    'frame|fridge|frog|fruit|funnel|furnace|game controller|game machine|gas cylinder|gas hood|gas stove|'
    'gift box|glass|glass marble|globe|glove|goal|grandstand|grass|gravestone|ground|guardrail|guitar|'
    'gun|hammer|hand cart|handle|handrail|hanger|hard disk drive|hat|hay|headphone|heater|helicopter|'
    'helmet|holder|hook|horse|horse-drawn carriage|hot-air balloon|hydrovalve|ice|inflator pump|ipod|'
    'iron|ironing board|jar|kart|kettle|key|keyboard|kitchen range|kite|knife|knife block|ladder|'
    'ladder truck|ladle|laptop|leaves|lid|life buoy|light|light bulb|lighter|line|lion|lobster|lock|'
    'machine|mailbox|mannequin|map|mask|mat|match book|mattress|menu|metal|meter box|microphone|'
    'microwave|mirror|missile|model|money|monkey|mop|motorbike|mountain|mouse|mouse pad|'
    'musical instrument|napkin|net|newspaper|oar|ornament|outlet|oven|oxygen bottle|pack|pan|paper|'
    'paper box|paper cutter|parachute|parasol|parterre|patio|pelage|pen|pen container|pencil|person|'
    'photo|piano|picture|pig|pillar|pillow|pipe|pitcher|plant|plastic|plate|platform|player|playground|'
    'pliers|plume|poker|poker chip|pole|pool table|postcard|poster|pot|pottedplant|printer|projector|'
    'pumpkin|rabbit|racket|radiator|radio|rail|rake|ramp|range hood|receiver|recorder|'
    'recreational machines|remote control|road|robot|rock|rocket|rocking horse|rope|rug|ruler|runway|'
    'saddle|sand|saw|scale|scanner|scissors|scoop|screen|screwdriver|sculpture|scythe|sewer|'
    'sewing machine|shed|sheep|shell|shelves|shoe|shopping cart|shovel|sidecar|sidewalk|sign|'
    'signal light|sink|skateboard|ski|sky|sled|slippers|smoke|snail|snake|snow|snowmobiles|sofa|spanner|'
    'spatula|speaker|speed bump|spice container|spoon|sprayer|squirrel|stage|stair|stapler|stick|'
    'sticky note|stone|stool|stove|straw|stretcher|sun|sunglass|sunshade|surveillance camera|swan|'
    'sweeper|swim ring|swimming pool|swing|switch|table|tableware|tank|tap|tape|tarp|telephone|'
    'telephone booth|tent|tire|toaster|toilet|tong|tool|toothbrush|towel|toy|toy car|track|train|'
    'trampoline|trash bin|tray|tree|tricycle|tripod|trophy|truck|tube|turtle|tvmonitor|tweezers|'
    'typewriter|umbrella|unknown|vacuum cleaner|vending machine|video camera|video game console|'
    'video player|video tape|violin|wakeboard|wall|wallet|wardrobe|washing machine|watch|water|'
    'water dispenser|water pipe|water skate board|watermelon|whale|wharf|wheel|wheelchair|window|'
    'window blinds|wineglass|wire|wood|wool'
).split('|')
# mmseg's tools/dataset_converters/pascal_context.py ``_mapping``: background + the 59 classes' ids.
MMSEG_CONTEXT_MAPPING = [
    0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162, 420, 454, 295, 296,
    427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355, 85, 347, 220, 349,
    360, 98, 187, 104, 105, 366, 189, 368, 113, 115]


def prepare(benchmark, src, dst, *extra):
    load_tool('prepare_data').main([benchmark, str(src), str(dst), '--workers', '1', *extra])


def fails(capsys, benchmark, src, dst, *extra) -> str:
    """Run the tool as its __main__ does; the one-line error it prints (exit code 2)."""
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: prepare(benchmark, src, dst, *extra))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith('error: ') and len(err.splitlines()) == 1, err
    return err


def write_jpg(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (4, 2), (10, 20, 30)).save(path)


def hidden_files(folder):
    return [os.path.join(r, n) for r, _, names in os.walk(folder) for n in names if n.startswith('.')]


# ---- command line ---------------------------------------------------------------------------

def test_help_lists_every_benchmark_without_heavy_imports():
    code = ("import runpy, sys; sys.argv = ['prepare_data.py', '--help']\n"
            "try: runpy.run_path('tools/prepare_data.py', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "heavy = {'torch', 'mmseg', 'mmengine', 'sclip'}\n"
            "print('loaded:', sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ('voc', 'context', 'coco_stuff164k', 'coco_stuff10k', 'coco_object', 'cityscapes', 'ade20k',
                 '(default: 4)', '(default: every split found)'):
        assert name in result.stdout
    assert result.stdout.strip().endswith('loaded: []')


def test_bad_source_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    import runpy
    monkeypatch.setattr(sys, 'argv', ['prepare_data.py', 'coco_stuff164k', str(tmp_path / 'nowhere'),
                                      str(tmp_path / 'out')])
    with pytest.raises(SystemExit) as exit_info:  # the tool's own __main__ block, in this process
        runpy.run_path(os.path.join(REPO, 'tools/prepare_data.py'), run_name='__main__')
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith('error: ') and len(err.strip().splitlines()) == 1
    assert 'nowhere' in err and not (tmp_path / 'out').exists()


def test_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    from sclip.data_prep.common import write_atomically
    target = tmp_path / '000000000139_labelTrainIds.png'
    target.write_bytes(b'old')

    def write_half_then_fail(path):
        with open(path, 'wb') as f:
            f.write(b'par')
        raise OSError('No space left on device')
    with pytest.raises(OSError):
        write_atomically(str(target), write_half_then_fail)
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == [target.name]


# ---- COCO-Stuff164k -------------------------------------------------------------------------

def test_coco_stuff164k_from_the_zip_layout(tmp_path, capsys):
    src, dst = tmp_path / 'download', tmp_path / 'coco_stuff164k'
    # raw ids: 0 person, 12 stop sign, 91 banner (first stuff), 181 wood, 255 unlabelled, 26 umbrella
    write_png(src / 'val2017/000000000139.png', [[0, 12, 91], [181, 255, 26]])
    every_value = np.arange(256, dtype=np.uint8).reshape(16, 16)
    write_png(src / 'val2017/000000000285.png', every_value)
    for stem in ('000000000139', '000000000285'):
        write_jpg(src / f'images/val2017/{stem}.jpg')
    load_tool('prepare_data').main(['coco_stuff164k', str(src), str(dst), '--workers', '2'])
    out = dst / 'annotations/val2017'
    assert read_png(out / '000000000139_labelTrainIds.png') == [[0, 11, 80], [170, 255, 24]]
    assert read_png(out / '000000000285_labelTrainIds.png') == official_convert(every_value, OFFICIAL_164K).tolist()
    assert sorted(os.listdir(dst / 'images/val2017')) == ['000000000139.jpg', '000000000285.jpg']
    assert 'val2017: wrote 2 label maps' in capsys.readouterr().out
    assert 'train2017 not found' in fails(capsys, 'coco_stuff164k', src, dst, '--splits', 'train2017')


def test_coco_stuff164k_with_images_and_maps_in_one_folder(tmp_path):
    """Both zips unpacked into one download folder: val2017/ holds the .jpg and the raw .png."""
    src, dst = tmp_path / 'download', tmp_path / 'coco_stuff164k'
    write_png(src / 'val2017/000000000139.png', [[0, 91]])
    write_jpg(src / 'val2017/000000000139.jpg')
    prepare('coco_stuff164k', src, dst)
    assert os.listdir(dst / 'images/val2017') == ['000000000139.jpg']
    assert read_png(dst / 'annotations/val2017/000000000139_labelTrainIds.png') == [[0, 80]]


def test_coco_stuff164k_in_place_skips_converted_files(tmp_path):
    folder = tmp_path / 'annotations/val2017'
    write_png(folder / '000000000139.png', [[1, 255]])
    prepare('coco_stuff164k', tmp_path, tmp_path)
    prepare('coco_stuff164k', tmp_path, tmp_path)  # a re-run must not read its own outputs as raw maps
    assert sorted(os.listdir(folder)) == ['000000000139.png', '000000000139_labelTrainIds.png']
    assert read_png(folder / '000000000139_labelTrainIds.png') == [[1, 255]]


# ---- COCO-Stuff10k --------------------------------------------------------------------------

def make_cocostuff10k(root, labels):
    """cocostuff-10k-v1.1 layout: images/, annotations/*.mat (S, 1-based ids), imageLists/."""
    (root / 'imageLists').mkdir(parents=True)
    names = {'train': ['COCO_train2014_000000000077'], 'test': list(labels)}
    for split, stems in names.items():
        (root / 'imageLists' / f'{split}.txt').write_text(''.join(f'{s}\n' for s in stems))
    (root / 'annotations').mkdir()
    for stem in names['train'] + names['test']:
        write_jpg(root / 'images' / f'{stem}.jpg')
        label = labels.get(stem, np.zeros((2, 2)))
        savemat(str(root / 'annotations' / f'{stem}.mat'), {'S': np.asarray(label, np.uint16), 'names': 'x'})


def test_coco_stuff10k_from_mat_files(tmp_path):
    src, dst = tmp_path / 'cocostuff-10k-v1.1', tmp_path / 'coco_stuff10k'
    every_raw = np.arange(1, 183, dtype=np.uint16)[None]
    # S (1-based): 0 unlabelled, 1 person, 13 stop sign, 27 umbrella, 92 banner, 182 wood
    make_cocostuff10k(src, {'COCO_train2014_000000000139': [[0, 1, 13], [27, 92, 182]],
                            'COCO_train2014_000000000285': every_raw})
    prepare('coco_stuff10k', src, dst)
    out = dst / 'annotations/test2014'
    assert read_png(out / 'COCO_train2014_000000000139_labelTrainIds.png') == [[0, 1, 12], [25, 81, 171]]
    # with reduce_zero_label (k -> k - 1) these are COCO-Stuff164k's train ids of the same classes
    used = sorted(k for k in OFFICIAL_164K if k != 255)
    converted = np.array(read_png(out / 'COCO_train2014_000000000285_labelTrainIds.png'))[0]
    assert (converted[used] - 1).tolist() == [OFFICIAL_164K[k] for k in used]
    assert sorted(os.listdir(dst / 'images/test2014')) == ['COCO_train2014_000000000139.jpg',
                                                             'COCO_train2014_000000000285.jpg']
    assert os.listdir(dst / 'images/train2014') == ['COCO_train2014_000000000077.jpg']


def test_coco_stuff10k_corrupt_mat(tmp_path, capsys):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    make_cocostuff10k(src, {'COCO_train2014_000000000139': [[1, 2]]})
    broken = src / 'annotations/COCO_train2014_000000000139.mat'
    broken.write_bytes(broken.read_bytes()[:100])
    err = fails(capsys, 'coco_stuff10k', src, dst, '--splits', 'test2014')
    assert str(broken) in err
    assert not (dst / 'annotations/test2014/COCO_train2014_000000000139_labelTrainIds.png').exists()
    assert not hidden_files(dst)


# ---- PASCAL Context -------------------------------------------------------------------------

def make_context(tmp_path, label_maps, main_splits):
    """The release (trainval/*.mat, labels.txt) and a VOC2010 folder with ImageSets/Main."""
    src, voc2010 = tmp_path / 'pascal-context', tmp_path / 'VOC2010'
    (src / 'trainval').mkdir(parents=True)
    (src / 'labels.txt').write_text(''.join(f'{i}: {n}\n' for i, n in enumerate(PASCAL_CONTEXT_459, 1)))
    for stem, label in label_maps.items():
        savemat(str(src / 'trainval' / f'{stem}.mat'), {'LabelMap': np.asarray(label, np.uint16)})
        write_jpg(voc2010 / 'JPEGImages' / f'{stem}.jpg')
    (voc2010 / 'ImageSets/Main').mkdir(parents=True)
    for split, stems in main_splits.items():
        (voc2010 / 'ImageSets/Main' / f'{split}.txt').write_text(''.join(f'{s}\n' for s in stems))
    return src, voc2010


def test_context_mapping_is_mmseg_s():
    import sclip  # noqa: F401  (mmseg needs the mmcv.ops stand-in)
    from mmseg.datasets import PascalContextDataset
    from sclip.data_prep.pascal_context import CONTEXT59_CLASSES, context_table
    assert len(PASCAL_CONTEXT_459) == 459
    assert ('background',) + CONTEXT59_CLASSES == tuple(PascalContextDataset.METAINFO['classes'])
    with open(os.path.join(REPO, 'configs/class_names/context60.txt')) as f:
        assert [line.split(',')[0].strip() for line in f if line.strip()] == ['background', *CONTEXT59_CLASSES]
    table = context_table(dict(enumerate(PASCAL_CONTEXT_459, 1)))
    assert sorted(table) == sorted(MMSEG_CONTEXT_MAPPING)[1:]  # mmseg: sorted ids -> 1..59
    assert [table[i] for i in sorted(table)] == list(range(1, 60))


def test_context_from_mat_files(tmp_path):
    # ids: 0 unlabelled, 2 aeroplane, 459 wool (not one of the 59), 458 wood, 284 person, 1 accordion
    src, voc2010 = make_context(tmp_path, {'2008_000002': [[0, 2, 459], [458, 284, 1]], '2008_000003': [[9, 9]]},
                                {'train': ['2008_000003'], 'val': ['2008_000002']})
    prepare('context', src, voc2010)
    assert read_png(voc2010 / 'SegmentationClassContext/2008_000002.png') == [[0, 1, 0], [59, 37, 0]]
    assert read_png(voc2010 / 'SegmentationClassContext/2008_000003.png') == [[2, 2]]  # 9 bag
    splits = voc2010 / 'ImageSets/SegmentationContext'
    assert (splits / 'val.txt').read_text() == '2008_000002\n'
    assert (splits / 'train.txt').read_text() == '2008_000003\n'


def test_context_split_from_merged_json_and_existing_split_kept(tmp_path):
    src, voc2010 = make_context(tmp_path, {'2008_000002': [[2]], '2008_000003': [[9]], '2008_000004': [[0]]},
                                {'train': ['2008_000002'], 'val': ['2008_000003', '2008_000004']})
    images = [{'file_name': '2008_000002.jpg', 'phase': 'train'}, {'image_id': 2008000003, 'phase': 'val'}]
    (src / 'trainval_merged.json').write_text(json.dumps({'images': images}))
    splits = voc2010 / 'ImageSets/SegmentationContext'
    splits.mkdir(parents=True)
    (splits / 'train.txt').write_text('2008_000004\n')
    prepare('context', src, voc2010)
    assert (splits / 'train.txt').read_text() == '2008_000004\n'  # kept as it was
    assert (splits / 'val.txt').read_text() == '2008_000003\n'  # from the json, not ImageSets/Main
    assert sorted(os.listdir(voc2010 / 'SegmentationClassContext')) == ['2008_000003.png', '2008_000004.png']


def test_context_bad_inputs(tmp_path, capsys):
    src, voc2010 = make_context(tmp_path, {'2008_000002': [[2]]}, {'val': ['2008_000002', '2008_000009']})
    err = fails(capsys, 'context', src, voc2010, '--splits', 'val')
    assert '2008_000009.mat: not found' in err
    (src / 'labels.txt').write_text('1: accordion\n2: aeroplane\n')
    assert 'has no class named bag' in fails(capsys, 'context', src, voc2010)


# ---- Cityscapes -----------------------------------------------------------------------------

CITY_STEM = 'gtFine/val/frankfurt/frankfurt_000000_000294'


def test_cityscapes_from_label_ids(tmp_path):
    src, dst = tmp_path / 'download', tmp_path / 'cityscapes'
    # ids: 7 road, 8 sidewalk, 0 unlabeled, 26 car, 33 bicycle, 34 (no such id)
    write_png(src / f'{CITY_STEM}_gtFine_labelIds.png', [[7, 8, 0], [26, 33, 34]])
    image = src / 'leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png'
    write_png(image, np.zeros((2, 3)))
    prepare('cityscapes', src, dst)
    assert read_png(dst / f'{CITY_STEM}_gtFine_labelTrainIds.png') == [[0, 1, 255], [13, 18, 255]]
    assert (dst / image.relative_to(src)).read_bytes() == image.read_bytes()


def test_cityscapes_table_is_cityscapesscripts():
    labels = pytest.importorskip('cityscapesscripts.helpers.labels').labels
    from sclip.data_prep.cityscapes import LABEL_ID_TO_TRAIN_ID
    assert LABEL_ID_TO_TRAIN_ID == {label.id: label.trainId for label in labels if label.id >= 0}


def polygons(path):
    """A 4x2 annotation: road everywhere, a car group on the right, a license plate (never drawn)."""
    objects = [{'label': 'road', 'polygon': [[0, 0], [3, 0], [3, 1], [0, 1]]},
               {'label': 'cargroup', 'polygon': [[2, 0], [3, 0], [3, 1], [2, 1]]},
               {'label': 'license plate', 'polygon': [[3, 0], [3, 1], [3, 1]]}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'imgHeight': 2, 'imgWidth': 4, 'objects': objects}))


def test_cityscapes_from_polygons_matches_label_ids_route(tmp_path):
    pytest.importorskip('cityscapesscripts')
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    src = tmp_path / 'download'
    polygons(src / f'{CITY_STEM}_gtFine_polygons.json')
    prepare('cityscapes', src, src)
    from_json = read_png(src / f'{CITY_STEM}_gtFine_labelTrainIds.png')
    assert from_json == [[0, 0, 13, 13], [0, 0, 13, 13]]  # road 0, car 13
    other = tmp_path / 'label_ids'  # the same polygons as a labelIds PNG, through our table
    (other / CITY_STEM).parent.mkdir(parents=True)
    json2labelImg(str(src / f'{CITY_STEM}_gtFine_polygons.json'), str(other / f'{CITY_STEM}_gtFine_labelIds.png'))
    prepare('cityscapes', other, other)
    assert read_png(other / f'{CITY_STEM}_gtFine_labelTrainIds.png') == from_json


def test_cityscapes_polygons_need_the_package_and_a_valid_file(tmp_path, capsys, monkeypatch):
    import sclip.data_prep.cityscapes as cityscapes
    polygon_file = tmp_path / f'{CITY_STEM}_gtFine_polygons.json'
    polygons(polygon_file)
    monkeypatch.setattr(cityscapes, 'has_cityscapesscripts', lambda: False)
    assert 'pip install cityscapesscripts' in fails(capsys, 'cityscapes', tmp_path, tmp_path)
    monkeypatch.undo()
    if cityscapes.has_cityscapesscripts():
        polygon_file.write_text('{"imgHeight": 2, "imgWid')  # truncated
        assert str(polygon_file) in fails(capsys, 'cityscapes', tmp_path, tmp_path)
    assert not list(tmp_path.rglob('*labelTrainIds.png')) and not hidden_files(tmp_path)


# ---- no conversion: VOC2012, ADE20k ---------------------------------------------------------

def test_voc_checks_and_copies(tmp_path, capsys):
    voc = tmp_path / 'VOCdevkit/VOC2012'
    (voc / 'ImageSets/Segmentation').mkdir(parents=True)
    (voc / 'ImageSets/Segmentation/val.txt').write_text('2007_000033\n')
    write_jpg(voc / 'JPEGImages/2007_000033.jpg')
    write_jpg(voc / 'JPEGImages/2007_000099.jpg')  # not in a segmentation split: not copied
    write_png(voc / 'SegmentationClass/2007_000033.png', [[0, 255]])
    prepare('voc', tmp_path, voc)
    assert 'VOC2012 needs no conversion' in capsys.readouterr().out
    dst = tmp_path / 'data/VOC2012'
    prepare('voc', tmp_path, dst)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob('*.*')) == [
        'ImageSets/Segmentation/val.txt', 'JPEGImages/2007_000033.jpg', 'SegmentationClass/2007_000033.png']
    (voc / 'SegmentationClass/2007_000033.png').unlink()
    assert '2007_000033.png: not found' in fails(capsys, 'voc', voc, voc)


def test_ade20k_checks_and_copies(tmp_path, capsys):
    ade = tmp_path / 'ADEChallengeData2016'
    write_jpg(ade / 'images/validation/ADE_val_00000001.jpg')
    write_png(ade / 'annotations/validation/ADE_val_00000001.png', [[0, 150]])
    prepare('ade20k', tmp_path, ade)
    assert 'ADE20k needs no conversion' in capsys.readouterr().out
    dst = tmp_path / 'data/ade/ADEChallengeData2016'
    prepare('ade20k', ade, dst)
    assert read_png(dst / 'annotations/validation/ADE_val_00000001.png') == [[0, 150]]
    assert (dst / 'images/validation/ADE_val_00000001.jpg').is_file()
