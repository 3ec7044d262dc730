"""Never a silently wrong number (issue 9): every result names the run that produced it.

Sweep cells never collide or reuse another run's numbers, a locked cell is left to its
writer, bad config values are one line, paths with spaces survive --cfg-options, a damaged
text cache is rebuilt, written files follow the umask, and read-only or full disks end in
one line with nothing half-written.
"""
import csv
import errno
import hashlib
import json
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from helpers import (REPO, assert_one_line, load_tool, make_dataset, options, run_main, tiny_clip, write_image,
                     write_label, write_openai_checkpoint)
from sclip import sweep

VOC = osp.join(REPO, 'configs', 'sclip_voc21.py')
RESCLIP_VOC = osp.join(REPO, 'configs', 'resclip', 'voc21.py')


# --- helpers ---------------------------------------------------------------------------------------

def sha256_file(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def files_under(folder):
    return sorted(osp.relpath(osp.join(d, f), folder) for d, _, names in os.walk(folder) for f in names)


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    """One tiny VOC for the tests that never change it."""
    return make_dataset('voc21', str(tmp_path_factory.mktemp('voc')))


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def read_metrics(cell_dir):
    with open(osp.join(cell_dir, 'metrics.json')) as f:
        return json.load(f)


def written(cell_dir):
    """Which write of metrics.json is there now (an atomic rewrite is a new file)."""
    stat = os.stat(osp.join(cell_dir, 'metrics.json'))
    return stat.st_ino, stat.st_mtime_ns


def sweep_options(weights, root, **more):
    return {'model.clip_path': weights, 'test_dataloader.dataset.data_root': root,
            'test_dataloader.num_workers': 0, **more}


def check_tables_match_cells(work, cfg_options):
    """results.csv and sweep.json claim exactly what each cell's metrics.json says produced it."""
    rows = read_csv(osp.join(work, 'results.csv'))
    with open(osp.join(work, 'sweep.json')) as f:
        summary = json.load(f)
    assert summary['cfg_options'] == cfg_options
    assert len(rows) == len(summary['cells'])
    for row, cell in zip(rows, summary['cells']):
        if row['status'] != 'ok':
            assert row['mIoU'] == '' and not cell['fingerprint']
            continue
        metrics = read_metrics(row['work_dir'])
        assert row['fingerprint'] == cell['fingerprint'] == metrics['identity']['fingerprint']
        assert float(row['mIoU']) == pytest.approx(metrics['mIoU'])
    return rows


# --- sweep cells ------------------------------------------------------------------------------

def test_readme_method_sweep_gives_each_method_its_own_cell_and_numbers(tmp_path, voc, tiny_checkpoint,
                                                                        monkeypatch):
    """clearclip/voc21.py and naclip/voc21.py shared WORK/default/voc21: NACLIP showed ClearCLIP's number."""
    monkeypatch.chdir(REPO)
    work = str(tmp_path / 'methods')
    configs = ['configs/sclip_voc21.py', 'configs/clearclip/voc21.py', 'configs/naclip/voc21.py']
    args = ['--configs', *configs, '--work-dir', work, '--cfg-options', f'model.clip_path={tiny_checkpoint}',
            f'test_dataloader.dataset.data_root={voc}', 'test_dataloader.num_workers=0']
    load_tool('sweep').main(args)
    rows = check_tables_match_cells(work, sweep_options(tiny_checkpoint, voc))
    assert [row['method'] for row in rows] == ['SCLIP', 'ClearCLIP', 'NACLIP']
    assert len({row['work_dir'] for row in rows}) == 3
    for row, config in zip(rows, configs):
        metrics = read_metrics(row['work_dir'])
        assert metrics['method'] == row['method']
        assert osp.abspath(metrics['identity']['config']['file']) == osp.join(REPO, config)
    first = [written(row['work_dir']) for row in rows]

    load_tool('sweep').main(args)  # resumed: each cell keeps its own result
    again = check_tables_match_cells(work, sweep_options(tiny_checkpoint, voc))
    assert [row['reused'] for row in again] == ['True'] * 3
    assert [row['mIoU'] for row in again] == [row['mIoU'] for row in rows]
    assert [written(row['work_dir']) for row in again] == first


def test_long_overrides_sharing_their_first_120_characters_get_their_own_cells(tmp_path, voc, tiny_checkpoint):
    """Override slugs were cut at 120 characters: the second variant reused the first one's result."""
    prefix = 'a photo of ' + 'a very, very long description of the scene ' * 3
    first, second = f'["{prefix}{{}} one."]', f'["{prefix}{{}} two."]'
    assert len(prefix) > 120
    work = str(tmp_path / 'sweep')
    results = sweep.run_sweep([VOC], sweep.parse_axes([f'model.templates={first},{second}']), work,
                              sweep_options(tiny_checkpoint, voc), log=lambda *_: None, quiet=True)
    assert [r.status for r in results] == ['ok', 'ok'], [r.error for r in results]
    assert results[0].work_dir != results[1].work_dir
    for result, expected in zip(results, (first, second)):
        identity = read_metrics(result.work_dir)['identity']
        assert json.dumps(identity['config']['overrides']['model.templates']) == expected
    check_tables_match_cells(work, sweep_options(tiny_checkpoint, voc))


# --- resume: only a run of the same inputs is reused ----------------------------------------------

def test_resume_reruns_when_weights_data_or_overrides_change(tmp_path):
    """A real sweep: resumed only on the same inputs; new weights (same path), data or overrides re-run."""
    weights = write_openai_checkpoint(str(tmp_path / 'weights' / 'ViT-B-16.pt'))
    root = make_dataset('voc21', str(tmp_path / 'data'))
    work = str(tmp_path / 'sweep')
    cfg_options = sweep_options(weights, root)
    log = []

    def sweep_once():
        log.clear()
        (result,) = sweep.run_sweep([VOC], [], work, dict(cfg_options), log=log.append, quiet=True)
        check_tables_match_cells(work, cfg_options)
        changed = [re.search(r're-ran \(([^)]*)\)', line) for line in log]
        return result, [match.group(1) for match in changed if match]

    result, changed = sweep_once()
    assert result.status == 'ok' and not result.reused and not changed
    identity, before = read_metrics(result.work_dir)['identity'], written(result.work_dir)
    assert identity['weights']['sha256'] == sha256_file(weights) and identity['data']['num_images'] == 2

    result, changed = sweep_once()
    assert result.reused and not changed and written(result.work_dir) == before
    assert any('reused' in line for line in log), log

    write_openai_checkpoint(weights, seed=1)  # other weights under the same file name
    result, changed = sweep_once()
    assert not result.reused and written(result.work_dir) != before
    assert len(changed) == 1 and 'weights' in changed[0], log
    assert 'data' not in changed[0] and 'config' not in changed[0], changed
    assert read_metrics(result.work_dir)['identity']['weights']['sha256'] == sha256_file(weights)
    before = written(result.work_dir)

    stem = '2008_000009'  # one more image in the split
    write_image(osp.join(root, 'JPEGImages', stem + '.jpg'), (48, 36), seed=7)
    write_label(osp.join(root, 'SegmentationClass', stem + '.png'), (48, 36), [0, 15], seed=8)
    with open(osp.join(root, 'ImageSets/Segmentation/val.txt'), 'a') as f:
        f.write(stem + '\n')
    result, changed = sweep_once()
    assert not result.reused and written(result.work_dir) != before
    assert len(changed) == 1 and 'data' in changed[0], log
    assert read_metrics(result.work_dir)['identity']['data']['num_images'] == 3
    before = written(result.work_dir)

    split = osp.join(root, 'ImageSets/Segmentation/val.txt')  # the same count, another image listed
    with open(split) as f:
        stems = f.read().split()
    other = '2008_000010'
    write_image(osp.join(root, 'JPEGImages', other + '.jpg'), (40, 44), seed=9)
    write_label(osp.join(root, 'SegmentationClass', other + '.png'), (40, 44), [0, 1], seed=10)
    with open(split, 'w') as f:
        f.write('\n'.join(stems[:-1] + [other]) + '\n')
    result, changed = sweep_once()
    assert not result.reused and written(result.work_dir) != before
    assert len(changed) == 1 and 'data' in changed[0], log
    assert read_metrics(result.work_dir)['identity']['data']['num_images'] == 3
    before = written(result.work_dir)

    cfg_options['model.prob_thd'] = 0.2  # an override for every cell (the config has 0.1): same folder, another run
    result, changed = sweep_once()
    assert not result.reused and written(result.work_dir) != before
    assert len(changed) == 1 and 'config' in changed[0], log
    assert read_metrics(result.work_dir)['identity']['config']['overrides']['model.prob_thd'] == 0.2

    cfg_options['model.prob_thd'] = 2  # a re-run that fails never shows the previous number
    result, _ = sweep_once()
    assert result.status == 'failed' and result.mIoU is None and 'model.prob_thd=2' in result.error


# --- a second process on the same cell --------------------------------------------------------------

# Holds sclip.files.CellLock on each folder given; imports sclip/files.py without sclip/__init__.py
# (which would import torch and mmseg for seconds).
HOLD_LOCKS = '''
import sys, time, types
package = types.ModuleType('sclip')
package.__path__ = [sys.argv[1] + '/sclip']
sys.modules['sclip'] = package
from sclip.files import CellLock
locks = [CellLock(folder) for folder in sys.argv[2:]]
assert all(lock.acquire() for lock in locks)
print('locked', flush=True)
time.sleep(300)
'''


def test_a_locked_cell_is_left_to_its_writer(capsys, tmp_path, voc, tiny_checkpoint):
    test_dir = str(tmp_path / 'test-run')
    sweep_dir = str(tmp_path / 'sweep')
    cell_dir = sweep.Cell(VOC).cell_dir(sweep_dir)
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCKS, REPO, test_dir, cell_dir],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        before = {name: open(osp.join(cell_dir, name)).read() for name in os.listdir(cell_dir)}
        assert list(before) == ['.lock'] and str(holder.pid) in before['.lock']

        code, err = run_main(capsys, VOC, '--work-dir', test_dir, *options(voc, tiny_checkpoint))
        assert_one_line(code, err, test_dir, f'pid {holder.pid}')
        assert not osp.exists(osp.join(test_dir, 'metrics.json'))

        results = sweep.run_sweep([VOC], [], sweep_dir, sweep_options(tiny_checkpoint, voc),
                                  log=lambda *_: None, quiet=True)
        assert [r.status for r in results] == ['busy']
        assert f'pid {holder.pid}' in results[0].error and results[0].mIoU is None
        assert [row['status'] for row in read_csv(osp.join(sweep_dir, 'results.csv'))] == ['busy']
        after = {name: open(osp.join(cell_dir, name)).read() for name in os.listdir(cell_dir)}
        assert after == before  # no error.txt, no metrics.json, the holder's lock file untouched
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# --- config values ----------------------------------------------------------------------------------

@pytest.mark.parametrize('config,override,needles', [
    pytest.param(config, override, needles, id=override) for config, override, needles in [
        (VOC, 'model.logit_scale=0', ['model.logit_scale=0 ']),
        (VOC, 'model.logit_scale=-1', ['model.logit_scale=-1']),
        (VOC, 'model.logit_scale=abc', ['model.logit_scale', 'abc']),
        (VOC, 'model.prob_thd=2', ['model.prob_thd=2']),
        (VOC, 'model.area_thd=5', ['model.area_thd=5']),
        (VOC, 'model.slide_crop=-1', ['model.slide_crop=-1']),
        (VOC, 'model.pamr_steps=-1', ['model.pamr_steps=-1']),
        (VOC, 'model.atention.type=csa', ['model.atention', "'attention'"]),
        (VOC, 'model.logit_scael=40', ['model.logit_scael', "'logit_scale'"]),
        (RESCLIP_VOC, 'model.method.tempthd=0.1', ['tempthd', "'temp_thd'"]),
        (RESCLIP_VOC, 'model.method.type=resclipp', ['model.method.type', 'resclipp', "'resclip'"]),
        (VOC, 'model.logit_scale=inf', ['model.logit_scale=inf', 'finite']),
        (VOC, 'model.memory_budget_mb=inf', ['model.memory_budget_mb=inf', 'finite']),
        (VOC, 'model.slide_stride=300', ['model.slide_stride=300', 'model.slide_crop=224']),
        (VOC, 'model.pamr_dilations=(-8,16)', ['model.pamr_dilations=(-8, 16)', 'positive']),
        (VOC, 'model=abc', ["model='abc'", 'dict']),
        (VOC, 'test_dataloader.dataset.data_rooot=/x', ['test_dataloader.dataset.data_rooot', "'data_root'"]),
        (VOC, 'test_evaluator.iou_metric=[mIoU]', ['test_evaluator.iou_metric', "'iou_metrics'"]),
        (VOC, 'test_dataloadr.dataset.data_root=/x', ["'test_dataloadr'", "'test_dataloader'"]),
        (VOC, 'test_pipeline.1.scale=(100,100)', ['test_pipeline', 'test_dataloader.dataset.pipeline']),
        (VOC, 'data_root=/x', ['data_root', 'test_dataloader.dataset.data_root']),
        (VOC, 'test_dataloader.num_workers=-1', ['test_dataloader.num_workers=-1']),
        (VOC, 'test_dataloader.batch_size=0', ['test_dataloader.batch_size=0']),
        (VOC, 'model.attention=[1,2]', ['model.attention=[1, 2]', 'a dict']),
        (RESCLIP_VOC, 'model.method.sfr=Flase', ["model.method.sfr='Flase'", 'true or false']),
        (RESCLIP_VOC, 'model.method.temp_thd=abc', ["model.method.temp_thd='abc'", 'a number']),
        (RESCLIP_VOC, 'model.method.rcs_weights=2.0', ['model.method.rcs_weights=2.0', 'a list of numbers']),
        (RESCLIP_VOC, 'model.method.rcs_blocks=[6,x]', ["model.method.rcs_blocks=[6, 'x']", 'integers']),
        (RESCLIP_VOC, 'model.method.provisional_pamr_steps=-1', ['provisional_pamr_steps=-1']),
        (RESCLIP_VOC, 'model.method.attn_strategy=naclp', ["did you mean 'naclip'"]),
        (VOC, 'model.precision=fp61', ["did you mean 'fp16'"]),
    ]])
def test_bad_config_value_or_key_is_one_line(capsys, tmp_path, voc, tiny_checkpoint, config, override, needles):
    work = tmp_path / 'w'
    code, err = run_main(capsys, config, '--work-dir', str(work), *options(voc, tiny_checkpoint, override))
    assert_one_line(code, err, *needles)
    assert not (work / 'metrics.json').exists()


def test_quoted_and_spaced_paths_in_cfg_options(tmp_path, tiny_checkpoint):
    """mmengine's DictAction dropped the spaces: '/x/my weights/a.pt' became '/x/myweights/a.pt'."""
    weights = str(tmp_path / 'my weights' / 'ViT-B-16.pt')
    os.makedirs(osp.dirname(weights))
    shutil.copy(tiny_checkpoint, weights)
    root = make_dataset('voc21', str(tmp_path / 'my data (copy)'))  # unquoted below: spaces and brackets
    work = str(tmp_path / 'w')
    load_tool('test').main([VOC, '--work-dir', work, '--cfg-options', f'model.clip_path="{weights}"',
                            f'test_dataloader.dataset.data_root={root}', 'test_dataloader.num_workers=0'])
    with open(osp.join(work, 'metrics.json')) as f:
        identity = json.load(f)['identity']
    assert identity['weights']['source'] == weights and ' ' in identity['weights']['source']
    assert identity['weights']['sha256'] == sha256_file(weights)
    assert identity['data']['root'] == root and identity['data']['num_images'] == 2


def test_cfg_option_values_parse_as_mmengine_but_keep_inner_spaces():
    from mmengine.config import DictAction
    from sclip.errors import SCLIPError
    from sclip.options import parse_value
    for text in ['1', '-0.5', 'true', 'None', 'a,b', '[1,2]', '(8,16)', '[(1,2),[3,4]]', '[]', '1,', 'csa_q',
                 '"quoted"', '[a,b]']:
        assert parse_value(text) == DictAction._parse_iterable(text), text
    assert parse_value('/d/my data (copy)/VOC') == '/d/my data (copy)/VOC'
    assert parse_value("['a cat', 'dog']") == ['a cat', 'dog'] and parse_value('"a, b"') == 'a, b'
    assert parse_value(' (8, 16) ') == (8, 16)
    with pytest.raises(SCLIPError, match='unbalanced'):
        parse_value('[1,2')


# --- the text cache ---------------------------------------------------------------------------------

NAMES, TEMPLATES = ['cat', 'dining table'], ['a photo of a {}.', 'a {}.']


@pytest.fixture(scope='module')
def text_model():
    return tiny_clip()


@pytest.fixture(scope='module')
def fresh_embeddings(text_model):
    import open_clip
    from sclip.models import text_classifier as tc
    return tc.build_class_embeddings(text_model, open_clip.tokenize, NAMES, TEMPLATES, 'cpu')


def load_or_build(text_model, cache_dir):
    import open_clip
    from sclip.models import text_classifier as tc
    return tc.load_or_build(text_model, open_clip.tokenize, NAMES, TEMPLATES, 'cpu', 'tiny', str(cache_dir))


def forge(entry, embeddings):
    """A cache entry whose shape, dtype and checksum all agree with its (wrong) embeddings."""
    from sclip.models import text_classifier as tc
    entry = dict(entry)
    entry.update(embeddings=embeddings, shape=list(embeddings.shape), dtype=str(embeddings.dtype),
                 sha256=tc.tensor_checksum(embeddings))
    return entry


def zeros(path, entry):
    torch.save(forge(entry, torch.zeros_like(entry['embeddings'])), path)


def nans(path, entry):
    torch.save(forge(entry, torch.full_like(entry['embeddings'], float('nan'))), path)


def wrong_size(path, entry):
    rows = entry['embeddings'].shape[0]
    torch.save(forge(entry, F.normalize(torch.randn(rows, entry['embeddings'].shape[1] + 16), dim=-1)), path)


def flipped_byte(path, entry):
    """One bit of the stored tensor flipped in the file (a value off by one ulp: finite, unit norm)."""
    data = bytearray(open(path, 'rb').read())
    stored = entry['embeddings'].contiguous().numpy().tobytes()
    start = bytes(data).find(stored)
    assert start >= 0
    data[start + 4 * 5] ^= 0x01
    open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('damage,reason', [pytest.param(damage, reason, id=damage.__name__) for damage, reason in [
    (zeros, 'norm'), (nans, 'finite'), (flipped_byte, 'checksum'), (wrong_size, 'shape')]])
def test_damaged_text_cache_is_detected_and_rebuilt(tmp_path, text_model, fresh_embeddings, damage, reason, caplog):
    from sclip.models import text_classifier as tc
    assert torch.equal(load_or_build(text_model, tmp_path), fresh_embeddings)
    (path,) = (tmp_path / 'text').glob('*.pt')
    damage(str(path), torch.load(path, weights_only=True))
    with caplog.at_level(logging.WARNING, logger='sclip'):
        rebuilt = load_or_build(text_model, tmp_path)
    assert torch.equal(rebuilt, fresh_embeddings)
    assert any('rebuil' in record.getMessage() and reason in record.getMessage() and str(path) in record.getMessage()
               for record in caplog.records)
    cached = tc.verify_cached(torch.load(path, weights_only=True), len(NAMES))  # rewritten, valid
    assert cached is not None and torch.equal(cached, fresh_embeddings)
    assert [p.name for p in (tmp_path / 'text').iterdir()] == [path.name]


def test_full_disk_while_writing_the_text_cache_warns_and_goes_on(tmp_path, text_model, fresh_embeddings,
                                                                   monkeypatch, caplog):
    FaultyFolder(monkeypatch, tmp_path, errno.ENOSPC, write=True)  # half of the bytes land, then ENOSPC
    with caplog.at_level(logging.WARNING, logger='sclip'):
        embeddings = load_or_build(text_model, tmp_path)
    assert torch.equal(embeddings, fresh_embeddings)
    assert any('could not write the text cache' in record.getMessage() and 'No space left' in record.getMessage()
               for record in caplog.records), [r.getMessage() for r in caplog.records]
    assert files_under(tmp_path) == []  # no temporary file, no partial cache file


def test_cache_entry_of_other_names_under_this_key_is_refused(tmp_path, text_model, fresh_embeddings, caplog):
    """A valid entry copied over another key's file (same number of names) is not used."""
    import open_clip
    from sclip.models import text_classifier as tc
    assert torch.equal(load_or_build(text_model, tmp_path), fresh_embeddings)
    (path,) = (tmp_path / 'text').glob('*.pt')
    other = tc.load_or_build(text_model, open_clip.tokenize, ['dog', 'sofa'], TEMPLATES, 'cpu', 'tiny', str(tmp_path))
    assert not torch.equal(other, fresh_embeddings)
    (other_path,) = [p for p in (tmp_path / 'text').glob('*.pt') if p != path]
    shutil.copy(other_path, path)
    with caplog.at_level(logging.WARNING, logger='sclip'):
        assert torch.equal(load_or_build(text_model, tmp_path), fresh_embeddings)
    assert any(str(path) in r.getMessage() and 'other names' in r.getMessage() for r in caplog.records)


# --- permissions ------------------------------------------------------------------------------------

@pytest.fixture
def umask():
    """``umask(mask)`` for one test; the previous umask comes back after it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_written_files_follow_the_umask(tmp_path, voc, tiny_checkpoint, umask):
    umask(0o022)
    work = str(tmp_path / 'w')
    load_tool('test').main([VOC, '--work-dir', work, *options(voc, tiny_checkpoint)])
    cache_files = [osp.join(d, f) for d, _, names in os.walk(os.environ['SCLIP_CACHE_DIR']) for f in names
                   if d.endswith('text')]
    assert cache_files
    for path in [osp.join(work, 'metrics.json'), *cache_files]:
        assert os.stat(path).st_mode & 0o777 == 0o644, path

    umask(0o002)  # a group-shared work dir; a sweep whose cell fails at once still writes its tables
    results = sweep.run_sweep([VOC], [], str(tmp_path / 'sweep'),
                              sweep_options(tiny_checkpoint, voc, **{'model.prob_thd': 2}), log=lambda *_: None)
    assert results[0].status == 'failed'
    for path in [osp.join(results[0].work_dir, 'error.txt'),
                 *(str(tmp_path / 'sweep' / name) for name in ('results.csv', 'results.md', 'sweep.json'))]:
        assert os.stat(path).st_mode & 0o777 == 0o664, path


# --- read-only and full disks -------------------------------------------------------------------------

class FaultyFolder:
    """Makes the file system under ``folder`` fail as a read-only or a full disk would.

    ``create``: making folders or files raises ``error``; ``write``: writing bytes into files
    raises it (after half of them reach the file, as a disk that fills up midway). Patched at
    the os/builtins level, so the code under test can use any way of writing. Root ignores
    chmod, so a real read-only folder cannot be made in the test.
    """

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def __init__(self, monkeypatch, folder, error, create=False, write=False):
        self.folder, self.error = osp.abspath(str(folder)), error
        self.create, self.write = create, write
        real_mkdir, real_open, real_os_open = os.mkdir, open, os.open
        real_fdopen, real_write = os.fdopen, os.write

        def mkdir(path, *args, **kwargs):
            if self.create and self.inside(path):
                self.fail(path)
            return real_mkdir(path, *args, **kwargs)

        def os_open(path, flags, *args, **kwargs):
            if self.create and flags & self.WRITE_FLAGS and self.inside(path):
                self.fail(path)
            return real_os_open(path, flags, *args, **kwargs)

        def builtin_open(file, mode='r', *args, **kwargs):
            writing = any(c in mode for c in 'wax+')
            if writing and self.create and self.inside(file):
                self.fail(file)
            handle = real_open(file, mode, *args, **kwargs)
            return self.failing(handle) if writing and self.write and self.inside(file) else handle

        def fdopen(fd, mode='r', *args, **kwargs):
            handle = real_fdopen(fd, mode, *args, **kwargs)
            writing = any(c in mode for c in 'wax+')
            return self.failing(handle) if writing and self.write and self.inside(self.fd_path(fd)) else handle

        def os_write(fd, data):
            if self.write and self.inside(self.fd_path(fd)):
                self.fail(self.fd_path(fd))
            return real_write(fd, data)

        monkeypatch.setattr(os, 'mkdir', mkdir)
        monkeypatch.setattr(os, 'open', os_open)
        monkeypatch.setattr(os, 'fdopen', fdopen)
        monkeypatch.setattr(os, 'write', os_write)
        import builtins
        monkeypatch.setattr(builtins, 'open', builtin_open)

    @staticmethod
    def fd_path(fd):
        try:
            return os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            return ''

    def inside(self, path):
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        path = osp.abspath(os.fsdecode(path))
        return path == self.folder or path.startswith(self.folder + os.sep)

    def fail(self, path):
        raise OSError(self.error, os.strerror(self.error), os.fsdecode(path))

    def failing(self, handle):
        """``handle`` whose writes put half of the data in the file, then fail."""
        path = handle.name if isinstance(handle.name, str) else self.fd_path(handle.name)
        folder = self

        class HalfWrites:
            def write(self, data):
                handle.write(data[:len(data) // 2])
                handle.flush()
                folder.fail(path)

            def __getattr__(self, name):
                return getattr(handle, name)

            def __iter__(self):
                return iter(handle)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()
        return HalfWrites()


def test_read_only_work_dir_is_one_line(capsys, tmp_path, voc, tiny_checkpoint, monkeypatch):
    read_only = tmp_path / 'read-only'
    read_only.mkdir()
    work = str(read_only / 'w')
    FaultyFolder(monkeypatch, read_only, errno.EROFS, create=True, write=True)
    code, err = run_main(capsys, VOC, '--work-dir', work, *options(voc, tiny_checkpoint))
    assert_one_line(code, err, work, 'read-only file system')
    assert files_under(str(read_only)) == []


def test_full_disk_work_dir_is_one_line(capsys, tmp_path, voc, tiny_checkpoint, monkeypatch):
    """A full disk still lets empty files be made; only writing bytes fails."""
    full = tmp_path / 'full'
    full.mkdir()
    work = str(full / 'w')
    FaultyFolder(monkeypatch, full, errno.ENOSPC, write=True)
    code, err = run_main(capsys, VOC, '--work-dir', work, *options(voc, tiny_checkpoint))
    assert_one_line(code, err, work, 'no space left')
    assert files_under(str(full)) == []


def test_disk_full_while_writing_metrics_is_one_line(capsys, tmp_path, voc, tiny_checkpoint, monkeypatch):
    """The evaluation finishes, then metrics.json cannot be written: one line, no partial file."""
    from mmengine.runner import Runner
    work = tmp_path / 'w'
    disk = FaultyFolder(monkeypatch, work, errno.ENOSPC)
    real_test = Runner.test

    def test_then_disk_full(self):
        metrics = real_test(self)
        disk.write = True
        return metrics
    monkeypatch.setattr(Runner, 'test', test_then_disk_full)
    code, err = run_main(capsys, VOC, '--work-dir', str(work), *options(voc, tiny_checkpoint))
    assert_one_line(code, err, str(work / 'metrics.json'), 'no space left')
    left = files_under(str(work))
    assert 'metrics.json' not in left and not [name for name in left if name.endswith('.tmp')], left


def test_disk_filling_up_during_the_run_is_one_line(capsys, tmp_path, voc, tiny_checkpoint, monkeypatch):
    """The work dir is writable at the start; the disk fills up while mmengine writes its logs
    and its copy of the config: one line, and no copy of the config or empty file left."""
    from mmengine.runner import Runner
    work = tmp_path / 'w'
    work.mkdir()
    disk = FaultyFolder(monkeypatch, work, errno.ENOSPC)
    real_from_cfg = Runner.from_cfg.__func__

    def from_cfg_on_a_filling_disk(cls, cfg):
        disk.write = True
        return real_from_cfg(cls, cfg)
    monkeypatch.setattr(Runner, 'from_cfg', classmethod(from_cfg_on_a_filling_disk))
    code, err = run_main(capsys, VOC, '--work-dir', str(work), *options(voc, tiny_checkpoint))
    assert_one_line(code, err, 'no space left')
    left = files_under(str(work))
    assert 'metrics.json' not in left and 'sclip_voc21.py' not in left, left
    assert not [name for name in left if osp.getsize(osp.join(work, name)) == 0 and name != '.lock'], left


# --- other fault paths --------------------------------------------------------------------------------

@pytest.mark.parametrize('option,name', [('--label-map', 'labels.jpg'), ('--label-map', 'labels'),
                                         ('--label-map', '.'), ('--out', 'overlay.jpg')])
def test_demo_outputs_must_be_png_files(capsys, tmp_path, option, name):
    """A JPEG label map changes class indices silently; a folder or no suffix cannot be saved."""
    from sclip.cli import main_guard
    image = str(tmp_path / 'photo.jpg')
    write_image(image, (50, 40), seed=5)
    target = str(tmp_path / name)
    args = [image, '--classes', 'cat; dog', '--cfg-options', 'model.pretrained=/nonexistent.pt']
    args += ['--out', str(tmp_path / 'overlay.png')] if option == '--label-map' else []
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('demo').main(args + [option, target]))
    assert_one_line(exit_info.value.code, capsys.readouterr().err, option, '.png')
    assert sorted(os.listdir(tmp_path)) == ['photo.jpg']


def test_no_message_suggests_weights_only_false(capsys, tmp_path, voc):
    """Loading untrusted pickles is never the advice: not in our sources, not relayed from torch.
    The one load without torch's weights_only check is the released training checkpoints' (GroupViT,
    TCL), through the tensors-only unpickler that runs nothing (test_fidelity_groupvit.py::test_pickled_code_in_a_checkpoint_does_not_run)."""
    for folder in ('sclip', 'tools'):
        for directory, _, names in os.walk(osp.join(REPO, folder)):
            for name in names:
                if name.endswith('.py'):
                    text = open(osp.join(directory, name)).read()
                    for match in re.finditer(r'weights_only\W{0,3}(=|set to)\W{0,3}False', text):
                        line = text[text.rfind('\n', 0, match.start()) + 1:text.find('\n', match.end())]
                        assert 'pickle_module=TENSORS_ONLY' in line, (name, line)

    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))
    unsafe = str(tmp_path / 'unsafe.pt')
    with open(unsafe, 'wb') as f:
        import pickle
        pickle.dump({'visual.conv1.weight': Payload()}, f)
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, unsafe))
    line = assert_one_line(code, err, unsafe)
    assert 'weights_only' not in line and 'False' not in line, line
    assert not marker.exists()

    from sclip.errors import SCLIPError
    from sclip.models.vfm.checkpoint import read_checkpoint
    from sclip.models.vfm.specs import SPECS
    with pytest.raises(SCLIPError) as error:
        read_checkpoint(unsafe, next(iter(SPECS.values())))
    assert 'weights_only' not in str(error.value) and 'False' not in str(error.value), str(error.value)
    assert not marker.exists()


def test_checkpoint_of_another_patch_size_than_the_arch_fails_naming_both(capsys, tmp_path, voc):
    """An OpenAI-layout ViT-S/32 (tiny text tower) under the config's model.arch='ViT-B-16'."""
    weights = write_openai_checkpoint(str(tmp_path / 'vit-s-32.pt'), patch_size=32, width=384, layers=12)
    code, err = run_main(capsys, VOC, '--work-dir', str(tmp_path / 'w'), *options(voc, weights))
    assert_one_line(code, err, 'vit-s-32.pt', 'ViT-S-32', 'patch 32', "model.arch='ViT-B-16'", 'patch 16')


@pytest.mark.parametrize('content', ['{"mIoU": 1.0, "identity": "abc"}', '[1, 2]', '{"identity": {"fingerprint": 3}}'])
def test_damaged_metrics_json_is_rerun_not_trusted(tmp_path, content):
    from types import SimpleNamespace
    from sclip.group_eval import Job, existing_metrics
    (tmp_path / 'metrics.json').write_text(content)
    job = Job(SimpleNamespace(work_dir=str(tmp_path)), {}, {'fingerprint': 'f' * 64})
    metrics, changed = existing_metrics(job)
    assert metrics is None and changed


@pytest.mark.parametrize('content', ['null', '[1]', '{"x": 1}', '{bad json'])
def test_damaged_file_hash_cache_is_rebuilt(tmp_path, monkeypatch, content):
    from sclip.identity import file_sha256
    monkeypatch.setenv('SCLIP_CACHE_DIR', str(tmp_path / 'cache'))
    os.makedirs(tmp_path / 'cache')
    (tmp_path / 'cache' / 'file_hashes.json').write_text(content)
    target = tmp_path / 'weights.pt'
    target.write_bytes(b'weights')
    os.utime(target, (1e9, 1e9))  # not written just now: a racily recent file is hashed but not cached
    assert file_sha256(str(target)) == sha256_file(str(target))
    with open(tmp_path / 'cache' / 'file_hashes.json') as f:
        assert sha256_file(str(target)) in json.load(f).values()


@pytest.mark.parametrize('option', ['--out', '--show-dir'])
def test_unwritable_out_or_show_dir_names_its_option(capsys, tmp_path, voc, tiny_checkpoint, option):
    blocker = tmp_path / 'afile'
    blocker.write_text('a file where a folder should go')
    work = tmp_path / 'w'
    code, err = run_main(capsys, VOC, '--work-dir', str(work), option, str(blocker / 'sub'),
                         *options(voc, tiny_checkpoint))
    assert_one_line(code, err, str(blocker / 'sub'), f'pass a writable {option}')
    assert not work.exists()


def test_failed_run_leaves_no_empty_folders(capsys, tmp_path, voc, tiny_checkpoint):
    """The run fails while the model is built: neither its work dir nor the folders made for it
    stay behind."""
    work = tmp_path / 'work_dirs' / 'scclip' / 'voc21'
    code, err = run_main(capsys, VOC, '--work-dir', str(work), *options(voc, tiny_checkpoint, 'model.slide_stride=300'))
    assert code == 2 and 'slide_stride' in err
    assert not (tmp_path / 'work_dirs').exists()
