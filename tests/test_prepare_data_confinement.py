"""tools/prepare_data.py treats downloads as untrusted (issue 19): nothing is read outside SRC
and DST or written outside DST (``../`` entries, symlinks), a differing destination file of the
same size is replaced, a read-only or full DST is one line, and killing a conversion ends its
workers."""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.io import savemat

from helpers import REPO
from test_prepare_data import fails, make_cocostuff10k, prepare, write_jpg
from test_coco_object import write_png


def make_voc(root, ids=('2007_000033',)):
    voc = root / 'VOCdevkit/VOC2012'
    (voc / 'ImageSets/Segmentation').mkdir(parents=True)
    (voc / 'ImageSets/Segmentation/val.txt').write_text(''.join(f'{i}\n' for i in ids))
    for i in ids:
        write_jpg(voc / f'JPEGImages/{i}.jpg')
        write_png(voc / f'SegmentationClass/{i}.png', [[0, 255]])
    return voc


def snapshot(folder):
    """Every file under ``folder`` with its bytes (to prove nothing outside was written)."""
    return {str(p): p.read_bytes() for p in folder.rglob('*') if p.is_file() and not p.is_symlink()}


@pytest.fixture
def outside(tmp_path):
    """A folder beside SRC and DST holding a 'secret' the conversion must neither read nor overwrite."""
    folder = tmp_path / 'outside'
    write_jpg(folder / 'secret.jpg')
    write_png(folder / 'secret.png', [[7, 7]])
    (folder / 'secret.mat').write_bytes(b'not yours')
    return folder


@pytest.mark.parametrize('entry', ['../../../../outside/secret', '../../../outside/secret',
                                   '../../escaped', '/abs/olute', 'ok/../../../../../outside/secret'])
def test_voc_split_entries_leaving_src_or_dst_are_refused(tmp_path, capsys, outside, entry):
    src = make_voc(tmp_path / 'src')
    split = src / 'ImageSets/Segmentation/val.txt'
    split.write_text(split.read_text() + entry + '\n')
    if entry == '../../escaped':  # stays inside SRC for reading, but its copy would land above DST
        write_jpg(src / '../escaped.jpg')
        write_png(src / '../escaped.png', [[0, 0]])
    dst = tmp_path / 'dst/VOC2012'
    before = snapshot(tmp_path / 'outside')
    err = fails(capsys, 'voc', tmp_path / 'src', dst)
    assert 'outside' in err and ('SRC' in err or 'DST' in err), err
    assert snapshot(tmp_path / 'outside') == before
    assert not (tmp_path / 'dst').exists() or not any(p.is_file() for p in (tmp_path / 'dst').rglob('*'))
    assert not (tmp_path / 'escaped.jpg').exists() and not (tmp_path / 'dst/escaped.jpg').exists()


@pytest.mark.parametrize('target', ['secret.jpg', 'secret.png'])
def test_symlink_in_the_source_pointing_out_of_it_is_refused(tmp_path, capsys, outside, target):
    src = make_voc(tmp_path / 'src')
    name = 'JPEGImages/2007_000033.jpg' if target.endswith('.jpg') else 'SegmentationClass/2007_000033.png'
    (src / name).unlink()
    (src / name).symlink_to(outside / target)
    err = fails(capsys, 'voc', tmp_path / 'src', tmp_path / 'dst/VOC2012')
    assert str(src / name) in err and str(outside / target) in err and 'symlink' in err


def test_symlinked_folder_in_dst_pointing_elsewhere_is_not_written_through(tmp_path, capsys, outside):
    make_voc(tmp_path / 'src')
    dst = tmp_path / 'dst/VOC2012'
    dst.mkdir(parents=True)
    (dst / 'JPEGImages').symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    err = fails(capsys, 'voc', tmp_path / 'src', dst)
    assert 'outside DST' in err and snapshot(outside) == before


def test_coco_stuff10k_list_entries_and_symlinked_annotations_are_refused(tmp_path, capsys, outside):
    src, dst = tmp_path / 'cocostuff-10k-v1.1', tmp_path / 'coco_stuff10k'
    make_cocostuff10k(src, {'COCO_train2014_000000000078': np.ones((2, 2))})
    lists = src / 'imageLists' / 'test.txt'
    lists.write_text('../../outside/secret\n')
    before = snapshot(outside)
    assert 'outside SRC and DST' in fails(capsys, 'coco_stuff10k', src, dst, '--splits', 'test2014')
    lists.write_text('COCO_train2014_000000000078\n')
    mat = src / 'annotations' / 'COCO_train2014_000000000078.mat'
    mat.unlink()
    savemat(str(outside / 'label.mat'), {'S': np.ones((2, 2), np.uint16)})
    mat.symlink_to(outside / 'label.mat')
    assert 'outside SRC and DST' in fails(capsys, 'coco_stuff10k', src, dst, '--splits', 'test2014')
    assert {k: v for k, v in snapshot(outside).items() if 'label.mat' not in k} == before


def test_coco_stuff164k_symlinked_label_out_of_src_is_refused(tmp_path, capsys, outside):
    src, dst = tmp_path / 'download', tmp_path / 'coco_stuff164k'
    write_png(src / 'val2017/000000000139.png', [[0, 12]])
    (src / 'val2017/000000000285.png').symlink_to(outside / 'secret.png')
    err = fails(capsys, 'coco_stuff164k', src, dst)
    assert '000000000285.png' in err and 'outside SRC and DST' in err


def test_differing_destination_file_of_the_same_size_is_replaced(tmp_path, capsys):
    src = make_voc(tmp_path / 'src', ids=('a', 'b'))
    dst = tmp_path / 'dst/VOC2012'
    prepare('voc', tmp_path / 'src', dst)
    for name in ('JPEGImages/a.jpg', 'SegmentationClass/b.png', 'ImageSets/Segmentation/val.txt'):
        data = bytearray((dst / name).read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, other content
        (dst / name).write_bytes(bytes(data))
    untouched = (dst / 'JPEGImages/b.jpg').stat().st_mtime_ns
    prepare('voc', tmp_path / 'src', dst)
    for name in ('JPEGImages/a.jpg', 'SegmentationClass/b.png', 'ImageSets/Segmentation/val.txt'):
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
    assert (dst / 'JPEGImages/b.jpg').stat().st_mtime_ns == untouched  # equal files are not rewritten


@pytest.mark.parametrize('code,reason', [(errno.EROFS, 'read-only file system'), (errno.ENOSPC, 'no space left'),
                                         (errno.EACCES, 'permission denied'), (errno.EDQUOT, 'quota')])
@pytest.mark.parametrize('dataset', ['voc', 'coco_stuff164k'])
def test_read_only_or_full_destination_is_one_line(tmp_path, capsys, monkeypatch, code, reason, dataset):
    if dataset == 'voc':
        make_voc(tmp_path / 'src')
        src, dst = tmp_path / 'src', tmp_path / 'dst/VOC2012'
    else:
        src, dst = tmp_path / 'download', tmp_path / 'coco_stuff164k'
        write_png(src / 'val2017/000000000139.png', [[0, 12]])
    real_replace = os.replace

    def refuse(a, b, *args, **kwargs):
        if str(dst) in str(b):
            raise OSError(code, os.strerror(code), str(b))
        return real_replace(a, b, *args, **kwargs)
    monkeypatch.setattr(os, 'replace', refuse)
    err = fails(capsys, dataset, src, dst)
    assert reason in err and str(dst) in err and 'DST' in err
    assert not [p for p in dst.rglob('*') if p.is_file()] if dst.exists() else True


KILL_SCRIPT = '''
import os, sys, time
sys.path.insert(0, {repo!r})
from sclip.data_prep import common
original = common.copy_file
def slow_copy(src, dst):
    time.sleep(0.3)
    return original(src, dst)
common.copy_file = slow_copy
from sclip.data_prep import prepare
prepare('voc', sys.argv[1], sys.argv[2], workers=3)
'''


def children(pid):
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            state = [line for line in f if line.startswith('State:')][0]
        return 'Z' not in state.split()[1]
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM])
def test_killed_conversion_leaves_no_worker_running(tmp_path, sig):
    ids = [f'2007_{i:06d}' for i in range(60)]
    make_voc(tmp_path / 'src', ids=ids)
    dst = tmp_path / 'dst/VOC2012'
    process = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT.format(repo=REPO), str(tmp_path / 'src'), str(dst)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers, deadline = [], time.time() + 120
    while time.time() < deadline and not (len(workers) >= 2 and dst.is_dir() and any(dst.rglob('*.jpg'))):
        workers = children(process.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, 'the conversion never started its workers'
    process.send_signal(sig)
    process.wait(timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)]
    written = sorted(p.name for p in dst.rglob('*') if p.is_file())
    time.sleep(1.0)
    assert sorted(p.name for p in dst.rglob('*') if p.is_file()) == written  # nobody writes on
    assert len([n for n in written if n.endswith('.jpg')]) < len(ids)
