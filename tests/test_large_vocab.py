"""ADE-847 and PASCAL Context-459: the converters on hand-made examples of the original downloads,
the 16-bit labels' loading and checks, and every method's config end to end on synthetic data.

Text encoding of 847 classes (1,600 names with SCLIP's ', ' synonyms) x 80 templates takes minutes on
a loaded CPU even with a one-layer text tower; the end-to-end runs use one template
(``model.templates``), which changes only the prompts, not the data path under test."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from helpers import LAYOUTS, REPO, load_tool, make_dataset, run_main, assert_one_line, options, \
    write_openai_checkpoint
from sclip import sweep
from sclip.data_check import dataset_classes
from sclip.data_prep.ade847 import ADE847_IDS
from sclip.datasets.transforms import value_problem
from test_prepare_data import PASCAL_CONTEXT_459, fails, prepare

ONE_TEMPLATE = ['a photo of a {}.']
FEWER_PAMR_STEPS = {'naclip_pamr': {'model.pamr_steps': 1},  # as tests/test_methods_e2e.py
                    'resclip': {'model.method.provisional_pamr_steps': 1}, 'itaclip': {'model.pamr_steps': 1}}
METHOD_CONFIGS = [f'configs/{m}/{b}.py' for m in ('clearclip', 'naclip', 'naclip_pamr', 'scclip', 'resclip',
                                                   'proxyclip', 'gem', 'fsa', 'cass', 'sfp', 'freecp', 'itaclip')
                  for b in ('ade847', 'context459')] + ['configs/sclip_ade847.py', 'configs/sclip_context459.py']


# --- ADE-847: ADE20K_2021_17_01 -> images_detectron2 / annotations_detectron2 ---------------------

def seg_png(classes: np.ndarray) -> np.ndarray:
    """The release's _seg.png of an object-class map: R = class // 256 * 10 (+ noise < 10), G = class % 256."""
    rgb = np.zeros(classes.shape + (3,), np.uint8)
    rgb[..., 0] = classes // 256 * 10 + (np.arange(classes.size).reshape(classes.shape) % 10)  # R/10 truncates
    rgb[..., 1] = classes % 256
    rgb[..., 2] = 7  # instance channel, not used
    return rgb


def ade_release(root, images):
    """``images``: {file name: object-class map}; writes index_ade20k.pkl and the image/_seg.png pairs."""
    release = root / 'ADE20K_2021_17_01'
    folders, names = [], []
    for name, classes in images.items():
        folder = f"ADE20K_2021_17_01/images/ADE/{'validation' if '_val_' in name else 'training'}/home/kitchen"
        os.makedirs(root / folder, exist_ok=True)
        h, w = classes.shape
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / folder / name)
        Image.fromarray(seg_png(classes)).save(root / folder / name.replace('.jpg', '_seg.png'))
        folders.append(folder)
        names.append(name)
    os.makedirs(release, exist_ok=True)
    with open(release / 'index_ade20k.pkl', 'wb') as f:
        pickle.dump({'folder': folders, 'filename': names, 'objectnames': ['-']}, f)
    return release


WALL, ADDING_MACHINE, TRAIN_ID_255 = 2978, 3148, ADE847_IDS[255]  # MaskFormer's ids of train ids 0, 846, 255


def block_map(h, w):
    classes = np.full((h, w), WALL, np.int64)
    classes[: h // 2, w // 2:] = ADDING_MACHINE
    classes[h // 2:, : w // 3] = TRAIN_ID_255
    classes[h // 2:, w // 3: w // 2] = 1  # an ADE class outside the 847 -> ignored
    return classes


def test_ade847_converter_writes_maskformer_labels(tmp_path):
    import cv2
    small, large = block_map(30, 40), block_map(520, 600)  # 520 > 512: resized to 512 x 591
    release = ade_release(tmp_path / 'src', {'ADE_val_00000001.jpg': small, 'ADE_train_00000001.jpg': large,
                                             'ADE_val_00000002.jpg': large})
    dst = tmp_path / 'out'
    prepare('ade847', release, dst)
    lut = {WALL: 0, ADDING_MACHINE: 846, TRAIN_ID_255: 255, 1: 65535}
    label = np.array(Image.open(dst / 'annotations_detectron2/validation/ADE_val_00000001.tif'))
    assert label.dtype == np.uint16 and label.shape == (30, 40)
    assert (label == np.vectorize(lut.get)(small)).all()
    resized = np.array(Image.open(dst / 'annotations_detectron2/validation/ADE_val_00000002.tif'))
    expected = cv2.resize(large.astype(np.int32), (591, 512), interpolation=cv2.INTER_NEAREST)
    assert resized.shape == (512, 591) and (resized == np.vectorize(lut.get)(expected)).all()
    with Image.open(dst / 'images_detectron2/validation/ADE_val_00000002.jpg') as image:
        assert image.format == 'JPEG' and image.size == (591, 512)
    assert osp.isfile(dst / 'annotations_detectron2/training/ADE_train_00000001.tif')
    assert sorted(os.listdir(dst / 'images_detectron2/validation')) == ['ADE_val_00000001.jpg', 'ADE_val_00000002.jpg']


def test_ade847_bad_downloads_are_one_line(tmp_path, capsys):
    release = ade_release(tmp_path / 'src', {'ADE_val_00000001.jpg': block_map(8, 8)})
    os.makedirs(tmp_path / 'nothing')
    assert 'index_ade20k.pkl' in fails(capsys, 'ade847', tmp_path / 'nothing', tmp_path / 'o')
    assert 'split training not found' in fails(capsys, 'ade847', release, tmp_path / 'o', '--splits', 'training')
    seg = next(p for p in (tmp_path / 'src').rglob('*_seg.png'))
    seg.unlink()
    assert str(seg) in fails(capsys, 'ade847', release, tmp_path / 'o')


# --- Context-459: trainval/*.mat -> annotations_detectron2/pc459_val/*.tif -------------------------

def context_release(root, maps):
    os.makedirs(root / 'trainval', exist_ok=True)
    (root / 'labels.txt').write_text(''.join(f'{i}: {n}\n' for i, n in enumerate(PASCAL_CONTEXT_459, 1)))
    for stem, label in maps.items():
        savemat(root / 'trainval' / f'{stem}.mat', {'LabelMap': label.astype(np.uint16)})
    split = root / 'ImageSets' / 'SegmentationContext'
    os.makedirs(split, exist_ok=True)
    (split / 'val.txt').write_text(''.join(f'{s}\n' for s in maps))
    return root


def test_context459_converter_writes_catseg_labels(tmp_path):
    person = PASCAL_CONTEXT_459.index('person') + 1  # its line in labels.txt
    label = np.array([[0, 1, 2], [459, person, 0]])
    root = context_release(tmp_path / 'VOC2010', {'2008_000002': label, '2008_000003': label[::-1]})
    prepare('context459', root, root)
    out = np.array(Image.open(root / 'annotations_detectron2/pc459_val/2008_000002.tif'))
    assert out.dtype == np.uint16
    assert out.tolist() == [[65535, 0, 1], [458, person - 1, 65535]]  # class of line k -> k - 1, 0 -> ignored
    assert open(osp.join(REPO, 'configs/class_names/context459.txt')).read().splitlines()[person - 1] == 'person'
    assert np.array(Image.open(root / 'annotations_detectron2/pc459_val/2008_000003.tif')).tolist() == \
        [[458, person - 1, 65535], [65535, 0, 1]]


def test_context459_bad_downloads_are_one_line(tmp_path, capsys):
    root = context_release(tmp_path / 'VOC2010', {'2008_000002': np.array([[0, 460]])})
    assert '2008_000002.mat' in fails(capsys, 'context459', root, root)
    assert 'split train not found' in fails(capsys, 'context459', root, root, '--splits', 'train')
    (root / 'ImageSets/SegmentationContext/val.txt').write_text('2008_000002\n2008_000009\n')
    savemat(root / 'trainval' / '2008_000002.mat', {'LabelMap': np.array([[0, 459]], np.uint16)})
    assert '2008_000009.mat' in fails(capsys, 'context459', root, root)
    (root / 'labels.txt').write_text('1: accordion\n2: aeroplane\n')
    assert 'labels.txt' in fails(capsys, 'context459', root, root)


# --- 16-bit labels: values, loading, end to end -------------------------------------------------

def test_label_values_outside_the_classes_are_named():
    label = np.array([[0, 846, 65535]], np.uint16)
    assert value_problem(label, 'a.tif', 847, ignore_index=65535) is None
    problem = value_problem(np.array([[0, 847, 255]], np.uint16), 'a.tif', 847, ignore_index=65535)
    assert problem.startswith('a.tif: label values [847] outside 0..846 or 65535 (ignored)')
    assert value_problem(np.array([[459]], np.uint16), 'b.tif', 459, ignore_index=65535) is not None


def test_bad_label_stops_the_run_with_one_line(tmp_path, capsys):
    root = make_dataset('ade847', str(tmp_path / 'data'))
    bad = osp.join(root, 'annotations_detectron2/validation/ADE_val_00000001.tif')  # the first sample: the
    Image.fromarray(np.full((45, 60), 900, np.uint16)).save(bad)  # run stops before encoding 847 classes
    weights = write_openai_checkpoint(str(tmp_path / 'w.pt'), layers=2, width=64)
    code, err = run_main(capsys, osp.join(REPO, 'configs/sclip_ade847.py'), '--work-dir', str(tmp_path / 'w'),
                         *options(root, weights, f'model.templates={ONE_TEMPLATE}'))
    assert_one_line(code, err, bad, '900')


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp('large_vocab')
    for benchmark in ('ade847', 'context459'):
        make_dataset(benchmark, str(folder / 'data'), sizes=[(64, 48), (40, 56)])
    weights = write_openai_checkpoint(str(folder / 'w12.pt'), width=64, layers=12)
    from sclip.models.vfm.testing import write_official_checkpoint
    dino = write_official_checkpoint(str(folder / 'dino.pth'), 'dino_vitb8', tiny=True)
    return folder, weights, dino


def test_every_method_config_end_to_end(workspace, monkeypatch):
    folder, weights, dino = workspace
    monkeypatch.chdir(folder)  # the configs' relative data roots
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(folder / 'text_cache'))
    # one template and a short side of 112 (one window per image): 847 query maps per window over
    # the configs' own 336-560 sides take minutes per config on 2 loaded CPU cores
    small = [dict(type='SCLIPLoadImage'), dict(type='Resize', scale=(2048, 112), keep_ratio=True),
             dict(type='SCLIPLoadAnnotations'), dict(type='PackSegInputs')]
    opts = {'model.clip_path': weights, 'test_dataloader.num_workers': 0, 'model.templates': ONE_TEMPLATE,
            'test_dataloader.dataset.pipeline': small,
            'model.vfm.checkpoint': dino, 'model.vfm.tiny': True}
    configs = [osp.join(REPO, c) for c in METHOD_CONFIGS]
    results = []
    for config in configs:  # proxyclip, fsa and cass alone take the vfm options
        extra = ({} if osp.basename(osp.dirname(config)) in ('proxyclip', 'fsa', 'cass') else
                 {'model.vfm.checkpoint': None, 'model.vfm.tiny': None})
        merged = {k: v for k, v in {**opts, **extra}.items() if v is not None}
        merged.update(FEWER_PAMR_STEPS.get(osp.basename(osp.dirname(config)), {}))
        results += sweep.run_sweep([config], [], str(folder / 'runs' / osp.basename(osp.dirname(config))
                                                  / osp.basename(config)), merged, log=lambda *a: None, quiet=True)
    assert [r.status for r in results] == ['ok'] * len(configs), [r.error for r in results]
    import json
    for result in results:
        cfg = sweep.load_config(result.config)
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
        classes = dataset_classes(cfg.test_dataloader.dataset)
        assert len(classes) == (847 if cfg.benchmark == 'ade847' else 459)
        assert list(metrics['per_class']['IoU']) == classes
        assert metrics['identity']['data']['num_images'] == 2
        # classes present in the synthetic labels get an IoU; 65535 is ignored, absent classes are None
        labels = (folder / 'data' / LAYOUTS[cfg.benchmark][0] / LAYOUTS[cfg.benchmark][2]).glob('*.tif')
        values = set(np.unique(np.concatenate([np.array(Image.open(p)).ravel() for p in labels])).tolist())
        assert 65535 in values and len(values) > 2
        present = {classes[v] for v in values if v != 65535}
        scored = {name for name, iou in metrics['per_class']['IoU'].items() if iou is not None}
        assert present <= scored
        assert cfg.test_evaluator.ignore_index == 65535


@pytest.mark.parametrize('name', ['ade847', 'context459'])
def test_check_data_knows_the_large_vocabularies(name, tmp_path, capsys):
    tool = load_tool('check_data')
    root = make_dataset(name, str(tmp_path / 'data'))
    config = osp.join(REPO, f'configs/sclip_{name}.py')
    override = ['--cfg-options', f'test_dataloader.dataset.data_root={root}']
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, *override])  # 2 images, not the official split size
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and ('2000' if name == 'ade847' else '5104') in err, err
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', *override])
    assert exit_info.value.code == 0 and 'OK (2 images checked' in capsys.readouterr().out
    _, _, seg_dir, _, seg_suffix, _, _ = LAYOUTS[name]
    bad = sorted(p for p in (tmp_path / 'data').rglob(f'*{seg_suffix}'))[0]
    label = np.array(Image.open(bad))
    label[0, 0] = 847 if name == 'ade847' else 459
    Image.fromarray(label).save(bad)
    with pytest.raises(SystemExit) as exit_info:
        tool.main([config, '--no-count', *override])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error:')]
    assert exit_info.value.code == 2 and len(lines) == 1 and str(bad) in lines[0] and str(label[0, 0]) in lines[0]


def test_a_tampered_index_pickle_runs_no_code(tmp_path, capsys):
    """index_ade20k.pkl is read by a restricted unpickler: a pickle that would call a function
    is one line naming the file, and the function never runs."""
    import numpy as np

    from sclip.data_prep.ade847 import read_index
    from sclip.errors import SCLIPError

    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    good = tmp_path / 'good.pkl'
    with open(good, 'wb') as f:
        pickle.dump({'folder': np.array(['a', 'b']), 'filename': ['ADE_val_1.jpg', 'ADE_train_2.jpg']}, f)
    assert read_index(str(good)) == [('a', 'ADE_val_1.jpg'), ('b', 'ADE_train_2.jpg')]
    bad = tmp_path / 'index_ade20k.pkl'
    with open(bad, 'wb') as f:
        pickle.dump({'folder': ['a'], 'filename': [Payload()]}, f)
    with pytest.raises(SCLIPError) as error:
        read_index(str(bad))
    assert str(bad) in str(error.value) and 'io.open' in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize('method', ['groupvit', 'tcl'])
def test_trained_segmenters_run_the_large_vocabularies(method, workspace, monkeypatch, tmp_path):
    """GroupViT and TCL (ours on these sets): one name a class (ADE-847: the first of each line), no
    background class, every class scored where present, end to end on a tiny random checkpoint."""
    import json
    from test_trained_e2e import TINY_OPTIONS  # the tiny GroupViT's head counts
    if method == 'groupvit':
        from sclip.models.groupvit.testing import write_groupvit_checkpoint as write
    else:
        from sclip.models.tcl.testing import write_tcl_checkpoint as write
    folder, weights, _ = workspace
    monkeypatch.chdir(folder)
    checkpoint = write(str(tmp_path / f'{method}.pth'))
    # as tests/test_trained_e2e.py: one 64-pixel window per image (every setting's exactness: the fidelity tests)
    opts = {'model.checkpoint': checkpoint, 'test_dataloader.num_workers': 0, 'model.templates': ONE_TEMPLATE,
            'test_dataloader.dataset.pipeline.1.scale': (2048, 64), 'model.slide_crop': 64,
            'model.slide_stride': 32, **TINY_OPTIONS[method]}
    configs = [osp.join(REPO, f'configs/{method}/{b}.py') for b in ('ade847', 'context459')]
    results = sweep.run_sweep(configs, [], str(tmp_path / 'runs'), opts, log=lambda *a: None, quiet=True)
    assert [r.status for r in results] == ['ok', 'ok'], [r.error for r in results]
    with open(configs[0].replace(f'{method}/ade847.py', 'class_names/ade847.txt')) as f:
        first = [line.split(',')[0].strip() for line in f.read().splitlines()]
    for result in results:
        cfg = sweep.load_config(result.config)
        names = open(cfg.model.class_names).read().splitlines()
        classes = dataset_classes(cfg.test_dataloader.dataset)
        assert len(names) == len(classes) and names[0] != 'background'
        if cfg.benchmark == 'ade847':
            assert names == first
        with open(osp.join(result.work_dir, 'metrics.json')) as f:
            assert list(json.load(f)['per_class']['IoU']) == classes


def test_corrclip_large_vocabularies_make_sam2_masks():
    """No published CorrCLIP masks exist for ADE-847 or Context-459: its configs there make SAM2's."""
    for benchmark, count in (('ade847', 847), ('context459', 459)):
        cfg = sweep.load_config(osp.join(REPO, f'configs/corrclip/{benchmark}.py'))
        assert cfg.model.region_masks.type == 'sam2' and cfg.benchmark == benchmark
        assert len(open(cfg.model.class_names).read().splitlines()) == count


def test_cliper_runs_the_large_vocabularies(workspace, monkeypatch, tmp_path):
    """CLIPer (ours on these sets): its class-file format (background words, then one name a class:
    ADE-847's first of each line), end to end on a tiny random CLIP; its background goes to 65535,
    the ignored label (255 is a class here): with bkg_thre above every class map, no pixel is a class."""
    import json
    from sclip.errors import SCLIPError
    folder, weights, _ = workspace
    monkeypatch.chdir(folder)
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(folder / 'text_cache'))
    configs = [osp.join(REPO, f'configs/cliper/{b}.py') for b in ('ade847', 'context459')]
    opts = {'model.clip_path': weights, 'test_dataloader.num_workers': 0,
            'test_dataloader.dataset.pipeline.0.size': 64, 'model.sliding_crop_size': 0}
    for extra, scored in (({}, None), ({'model.bkg_thre': 100.0}, 0.0)):
        results = sweep.run_sweep(configs, [], str(tmp_path / f'runs{len(extra)}'), {**opts, **extra},
                                  log=lambda *a: None, quiet=True)
        assert [r.status for r in results] == ['ok', 'ok'], [r.error for r in results]
        for result in results:
            cfg = sweep.load_config(result.config)
            classes = dataset_classes(cfg.test_dataloader.dataset)
            with open(osp.join(result.work_dir, 'metrics.json')) as f:
                metrics = json.load(f)
            assert list(metrics['per_class']['IoU']) == classes
            if scored is not None:  # every pixel CLIPer's background: no class predicted anywhere
                assert {iou for iou in metrics['per_class']['IoU'].values() if iou is not None} == {scored}
    with open(osp.join(REPO, 'configs/class_names/groupvit/ade847.txt')) as f:
        assert open(sweep.load_config(configs[0]).model.class_names).read() == 'background\n' + f.read()
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(configs[0])
    cfg.merge_from_dict({'model.clip_path': weights, 'model.background_label': None})
    with pytest.raises(SCLIPError, match='model.background_label=255 is one of the 847 classes'):
        MODELS.build(cfg.model)
