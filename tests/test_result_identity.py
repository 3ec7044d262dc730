"""Every number belongs to the run it names (issue 19): data identity by content, label maps
owned by their run, no average over a subset, unknown architectures and unsafe ``load_from``
files refused in one line."""
import builtins
import json
import os
import os.path as osp
import pickle
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO, assert_one_line, make_dataset, options, run_main
from sclip import group_eval, identity, predictions, sweep
from sclip.errors import SCLIPError
from sclip.runner import load_config

VOC = osp.join(REPO, 'configs', 'sclip_voc21.py')


def fake_run_test(cfg, identity=None, **kwargs):
    from sclip.files import write_json_atomic
    write_json_atomic(osp.join(cfg.work_dir, 'metrics.json'), dict(mIoU=50.0, aAcc=90.0, mAcc=60.0,
                                                                   identity=identity))


def uncompressed_voc(folder):
    """A VOC whose labels are uncompressed PNGs (an edited pixel keeps the file size), every file
    dated a minute ago (not 'racily' recent, so its hash is cached)."""
    root = make_dataset('voc21', str(folder), sizes=[(60, 45), (40, 52), (50, 50)])
    labels = osp.join(root, 'SegmentationClass')
    for name in os.listdir(labels):
        path = osp.join(labels, name)
        Image.open(path).save(path, compress_level=0)
    backdate(root)
    return root


def backdate(root, seconds=60):
    old = time.time() - seconds
    for directory, _, names in os.walk(root):
        for name in names:
            os.utime(osp.join(directory, name), (old, old))


def edit_in_place(path, offset_from_end=20):
    """Change one byte near the end of the file, in place (same size, same inode)."""
    size, inode = os.path.getsize(path), os.stat(path).st_ino
    with open(path, 'r+b') as f:
        f.seek(size - offset_from_end)
        byte = f.read(1)
        f.seek(size - offset_from_end)
        f.write(bytes([byte[0] ^ 0x01]))
    assert os.path.getsize(path) == size and os.stat(path).st_ino == inode


def edit_label_pixel(path):
    """Re-save an uncompressed PNG label with one pixel changed: same size, same inode."""
    size, inode = os.path.getsize(path), os.stat(path).st_ino
    label = np.array(Image.open(path))
    label[0, 0] = 1 if label[0, 0] != 1 else 15
    Image.fromarray(label).save(path, compress_level=0)
    assert os.path.getsize(path) == size and os.stat(path).st_ino == inode


def data_fingerprint(root):
    cfg = load_config(VOC, {'test_dataloader.dataset.data_root': root})
    return identity.data_identity(cfg)['files_sha256']


@pytest.fixture
def counted_reads(monkeypatch):
    """Paths opened through Python's open() while the fixture is active."""
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, 'open', counting_open)
    return opened


# --- data identity by content ----------------------------------------------------------------

def test_same_size_edit_of_a_label_reruns_the_cell_and_unchanged_data_is_not_reread(tmp_path, monkeypatch,
                                                                                   counted_reads):
    root = uncompressed_voc(tmp_path / 'data')
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    work = str(tmp_path / 'sweep')
    args = dict(configs=[VOC], axes=[], work_dir=work, share=False, log=lambda *_: None,
                cfg_options={'test_dataloader.dataset.data_root': root})
    assert [r.reused for r in sweep.run_sweep(**args)] == [False]
    data_files = [osp.join(d, n) for d, _, names in os.walk(root) for n in names if not n.endswith('.txt')]

    counted_reads.clear()
    assert [r.reused for r in sweep.run_sweep(**args)] == [True]
    assert not [path for path in counted_reads if path in data_files]  # sizes and dates only: no re-read

    label = osp.join(root, 'SegmentationClass', sorted(os.listdir(osp.join(root, 'SegmentationClass')))[1])
    before = np.array(Image.open(label))
    edit_label_pixel(label)
    assert not np.array_equal(np.array(Image.open(label)), before)  # a real edit of the label's pixels
    logs = []
    counted_reads.clear()
    results = sweep.run_sweep(**dict(args, log=logs.append))
    assert [r.reused for r in results] == [False] and any('data changed' in line for line in logs), logs
    assert [path for path in counted_reads if path in data_files] == [label]  # only the edited file is read


@pytest.mark.parametrize('change', ['label_byte', 'image_byte', 'same_mtime_new_inode', 'swap_two_images'])
def test_every_same_size_change_changes_the_data_identity(tmp_path, change):
    root = uncompressed_voc(tmp_path / 'data')
    before = data_fingerprint(root)
    assert data_fingerprint(root) == before
    images = sorted(osp.join(root, 'JPEGImages', n) for n in os.listdir(osp.join(root, 'JPEGImages')))
    if change == 'label_byte':
        edit_label_pixel(osp.join(root, 'SegmentationClass', sorted(os.listdir(osp.join(root, 'SegmentationClass')))[0]))
    elif change == 'image_byte':
        edit_in_place(images[0], offset_from_end=200)
    elif change == 'same_mtime_new_inode':  # replaced by a same-size file, its date set back as it was
        stat = os.stat(images[0])
        data = bytearray(open(images[0], 'rb').read())
        data[-200] ^= 0x01
        with open(images[0] + '.new', 'wb') as f:
            f.write(bytes(data))
        os.utime(images[0] + '.new', ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(images[0] + '.new', images[0])
        assert os.stat(images[0]).st_mtime_ns == stat.st_mtime_ns and os.path.getsize(images[0]) == stat.st_size
    else:  # two images of the same size exchanged
        shutil.copy(images[2], images[0])
        backdate(root)
        assert os.path.getsize(images[0]) == os.path.getsize(images[2])
    assert data_fingerprint(root) != before


@pytest.mark.parametrize('content', ['{"x": "' + 'a' * 64 + '"}', '[1]', '{bad', 'null', 'stale_keys'])
def test_damaged_or_stale_hash_cache_is_not_trusted(tmp_path, content):
    root = uncompressed_voc(tmp_path / 'data')
    before = data_fingerprint(root)
    cache = identity._hash_cache_path()
    with open(cache) as f:
        entries = json.load(f)
    assert len(entries) == 6  # 3 images, 3 labels
    if content == 'stale_keys':  # the same paths under other dates, with forged hashes: never used
        content = json.dumps({key.rsplit('\0', 2)[0] + '\0123\0' + key.rsplit('\0', 1)[1]: 'f' * 64
                              for key in entries})
    with open(cache, 'w') as f:
        f.write(content)
    assert data_fingerprint(root) == before
    with open(cache) as f:
        assert sorted(json.load(f).values()) == sorted(entries.values())  # rebuilt


def test_a_file_written_just_now_is_hashed_but_not_cached(tmp_path):
    path = tmp_path / 'fresh.bin'
    path.write_bytes(b'abc')
    assert identity.file_sha256(str(path)) == identity.hashlib.sha256(b'abc').hexdigest()
    assert not osp.exists(identity._hash_cache_path()) or str(path) not in open(identity._hash_cache_path()).read()
    backdate(str(tmp_path))
    identity.file_sha256(str(path))
    assert str(path) in open(identity._hash_cache_path()).read()


# --- label maps belong to their run ------------------------------------------------------------

def test_rerun_on_a_shorter_split_into_the_same_out_folder_keeps_only_its_own_label_maps(
        capsys, tmp_path, tiny_checkpoint):
    from helpers import load_tool
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=[(60, 45), (40, 52), (50, 50)])
    out, tool = str(tmp_path / 'pred'), load_tool('test')
    tool.main([VOC, '--work-dir', str(tmp_path / 'w'), '--out', out, *options(root, tiny_checkpoint)])
    first = sorted(n for n in os.listdir(out) if n.endswith('.png'))
    assert len(first) == 3
    split = osp.join(root, 'ImageSets', 'Segmentation', 'val.txt')
    with open(split) as f:
        stems = f.read().split()
    with open(split, 'w') as f:
        f.write(stems[0] + '\n')
    tool.main([VOC, '--work-dir', str(tmp_path / 'w'), '--out', out, *options(root, tiny_checkpoint)])
    with open(osp.join(tmp_path / 'w', 'metrics.json')) as f:
        fingerprint = json.load(f)['identity']['fingerprint']
    assert sorted(n for n in os.listdir(out) if n.endswith('.png')) == [stems[0] + '.png']
    assert predictions.finished_label_maps(out, fingerprint) == [stems[0] + '.png']
    assert predictions.finished_label_maps(out, 'f' * 64) is None  # another run's: nothing


@pytest.mark.parametrize('manifest', [None, '{bad json', '[]', '{"fingerprint": 3}'])
def test_folder_of_foreign_pngs_is_refused_untouched(tmp_path, manifest):
    folder = tmp_path / 'photos'
    folder.mkdir()
    (folder / 'holiday.png').write_bytes(b'not ours')
    if manifest is not None:
        (folder / predictions.MANIFEST).write_text(manifest)
    with pytest.raises(SCLIPError) as error:
        predictions.claim(str(folder), 'a' * 64)
    assert str(folder) in str(error.value) and 'holiday.png' in str(error.value) and '\n' not in str(error.value)
    assert (folder / 'holiday.png').read_bytes() == b'not ours'


def test_label_maps_of_a_killed_run_are_cleared_by_the_next(tmp_path):
    folder = str(tmp_path / 'pred')
    predictions.claim(folder, 'a' * 64)
    for name in ('x.png', 'y.png'):  # the killed run got this far
        open(osp.join(folder, name), 'wb').close()
    assert predictions.finished_label_maps(folder, 'a' * 64) is None  # never finished: nothing to show
    predictions.claim(folder, 'b' * 64)
    assert sorted(os.listdir(folder)) == [predictions.MANIFEST]
    open(osp.join(folder, 'x.png'), 'wb').close()
    predictions.seal(folder, 'b' * 64)
    assert predictions.finished_label_maps(folder, 'b' * 64) == ['x.png']
    os.remove(osp.join(folder, 'x.png'))  # a file removed since: not listed
    assert predictions.finished_label_maps(folder, 'b' * 64) == []


def test_shared_sweep_cell_rerun_clears_its_earlier_predictions(tmp_path, tiny_checkpoint):
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=[(60, 45), (40, 52)])
    args = dict(configs=[VOC], axes=[], work_dir=str(tmp_path / 'sweep'), log=lambda *_: None, save_predictions=True,
                cfg_options={'test_dataloader.dataset.data_root': root, 'model.pretrained': tiny_checkpoint,
                             'test_dataloader.num_workers': 0})
    result, = sweep.run_sweep(**args)
    folder = osp.join(result.work_dir, 'predictions')
    assert len([n for n in os.listdir(folder) if n.endswith('.png')]) == 2
    split = osp.join(root, 'ImageSets', 'Segmentation', 'val.txt')
    stems = open(split).read().split()
    with open(split, 'w') as f:
        f.write(stems[1] + '\n')
    result, = sweep.run_sweep(**args)
    assert not result.reused
    assert predictions.finished_label_maps(folder, result.fingerprint) == [stems[1] + '.png']
    assert sorted(n for n in os.listdir(folder) if n.endswith('.png')) == [stems[1] + '.png']


# --- a killed sweep never averages a subset ---------------------------------------------------------

@pytest.mark.parametrize('stop_after', [1, 2])
def test_killed_sweep_table_never_averages_a_subset(tmp_path, monkeypatch, stop_after):
    configs = [VOC, osp.join(REPO, 'configs', 'sclip_context59.py'), osp.join(REPO, 'configs', 'sclip_ade20k.py')]
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    finished = []

    def log(line):
        finished.append(line)
        if ': running' in line and sum(': ok ' in entry for entry in finished) == stop_after:
            raise KeyboardInterrupt  # killed as the next cell starts, the finished cells' tables written
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(configs, [], str(tmp_path), log=log, share=False)
    table = (tmp_path / 'results.md').read_text()
    header, _, row = table.splitlines()[:3]
    assert header == '| variant | voc21 | context59 | ade20k | average |'
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1:1 + stop_after] == ['50.00'] * stop_after
    assert cells[1 + stop_after:4] == ['pending'] * (3 - stop_after)
    assert cells[4] == '' and sweep.PARTIAL_NOTE in table
    assert len(open(tmp_path / 'results.csv').read().splitlines()) == 1 + stop_after


def test_finished_sweep_averages_and_a_failed_cell_leaves_the_average_empty(tmp_path, monkeypatch):
    configs = [VOC, osp.join(REPO, 'configs', 'sclip_context59.py')]
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    sweep.run_sweep(configs, [], str(tmp_path / 'a'), log=lambda *_: None, share=False)
    table = (tmp_path / 'a' / 'results.md').read_text()
    assert '| 50.00 | 50.00 | 50.00 |' in table and sweep.PARTIAL_NOTE not in table

    def failing(cfg, **kwargs):
        if 'context' in cfg.filename:
            raise RuntimeError('out of memory')
        fake_run_test(cfg, **kwargs)
    monkeypatch.setattr(group_eval, 'run_test', failing)
    sweep.run_sweep(configs, [], str(tmp_path / 'b'), log=lambda *_: None, share=False)
    table = (tmp_path / 'b' / 'results.md').read_text()
    assert '| 50.00 | failed |  |' in table and sweep.PARTIAL_NOTE in table


# --- unknown architectures, unsafe load_from --------------------------------------------------------

@pytest.mark.parametrize('arch,hint', [('ViT-Q-99', ''), ('vit-b-16', "did you mean 'ViT-B-16'"),
                                       ('ViT-B_16', "did you mean 'ViT-B-16'"), ('ViT-B/16', "did you mean 'ViT-B-16'")])
def test_unknown_architecture_is_one_line_naming_the_known_ones(capsys, tmp_path, tiny_checkpoint, arch, hint):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(root, tiny_checkpoint),
                         f'model.arch={arch}')
    assert_one_line(code, err, f'model.arch={arch!r}', 'ViT-B-16, ', 'ViT-L-14', 'open_clip', hint)
    assert not osp.exists(tmp_path / 'w' / 'metrics.json')


def test_unknown_architecture_is_refused_by_the_model_builder_too(tiny_checkpoint):
    from sclip.models.clip_loader import load_clip
    for source in (tiny_checkpoint, 'openai'):
        with pytest.raises(SCLIPError, match="model.arch='ViT-Q-99' is not an open_clip architecture"):
            load_clip(source, 'ViT-Q-99')


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.mark.parametrize('kind', ['legacy_pickle', 'zip_with_object', 'garbage', 'missing', 'empty'])
def test_load_from_unsafe_or_broken_checkpoint_is_one_line_without_unsafe_advice(capsys, tmp_path, tiny_checkpoint,
                                                                                 kind):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / f'{kind}.pth')
    if kind == 'legacy_pickle':
        with open(path, 'wb') as f:
            pickle.dump({'state_dict': Payload(marker)}, f)
    elif kind == 'zip_with_object':
        torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)}, path)
    elif kind == 'garbage':
        with open(path, 'wb') as f:
            f.write(b'\x80\x04not a pickle at all' * 10)
    elif kind == 'empty':
        open(path, 'wb').close()
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(root, tiny_checkpoint),
                         f'load_from={path}')
    line = assert_one_line(code, err, path, 'load_from')
    assert 'weights_only' not in line and 'False' not in line, line
    assert not osp.exists(marker)


@pytest.mark.parametrize('config, key', [('configs/groupvit/voc21.py', 'model.checkpoint'),
                                         ('configs/trident/voc21.py', 'model.method.sam.checkpoint'),
                                         ('configs/segearth_ov/loveda.py', 'model.method.upsampler.checkpoint')])
def test_a_models_own_checkpoints_are_part_of_its_identity(tmp_path, config, key):
    """GroupViT's (and TCL's) trained weights, Trident's SAM and SegEarth-OV's upsampler are named by
    content: another file at the same path is another run, the same content elsewhere is the same run."""
    first, second, moved = (str(tmp_path / name) for name in ('a.pth', 'b.pth', 'moved.pth'))
    for path, content in ((first, b'weights one'), (second, b'weights two'), (moved, b'weights one')):
        with open(path, 'wb') as handle:
            handle.write(content)
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=[(40, 30)])

    def ident(path):
        cfg = load_config(osp.join(REPO, config), {key: path, 'test_dataloader.dataset.data_root': root})
        return identity.run_identity(cfg)
    a, b, c = ident(first), ident(second), ident(moved)
    assert a['checkpoints'][key]['sha256'] != b['checkpoints'][key]['sha256']
    assert a['fingerprint'] != b['fingerprint'] and a['fingerprint'] == c['fingerprint']
    assert identity.neutral_override(key)
    assert path_free(identity.resolved_config(load_config(osp.join(REPO, config), {key: first}))['model'], first)


def path_free(tree, path) -> bool:
    """No value anywhere in ``tree`` is ``path``."""
    if isinstance(tree, dict):
        return all(path_free(value, path) for value in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(path_free(value, path) for value in tree)
    return tree != path


def test_models_without_own_checkpoints_keep_their_identity_shape(tmp_path):
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=[(40, 30)])
    cfg = load_config(osp.join(REPO, 'configs/sclip_voc21.py'), {'test_dataloader.dataset.data_root': root})
    assert 'checkpoints' not in identity.run_identity(cfg)
