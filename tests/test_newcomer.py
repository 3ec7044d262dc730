"""What a newcomer hits first (issue 24): demo class syntax, the import trap, the README's API
example, configs from another folder, the shell launchers' --help, results found by identity,
sweeps reusing cells by fingerprint, folders and locks, and the progress a long run prints."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, assert_one_line, load_tool, write_image


def run_demo(capsys, *args):
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('demo').main(list(args)))
    return exit_info.value.code, capsys.readouterr().err


# --- demo -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('classes,example', [('cat, dog, grass', '--classes "cat; dog; grass"'),
                                             ('cat', '--classes "cat; background"')])
def test_demo_with_a_single_class_is_one_line_showing_the_semicolon_form(capsys, tmp_path, tiny_checkpoint,
                                                                         classes, example):
    image = str(tmp_path / 'photo.jpg')
    write_image(image, (50, 40), seed=5)
    out = str(tmp_path / 'overlay.png')
    code, err = run_demo(capsys, image, '--classes', classes, '--out', out,
                         '--cfg-options', f'model.pretrained={tiny_checkpoint}')
    assert_one_line(code, err, 'one class', example, '";"')
    assert not osp.exists(out)


def test_readme_demo_line_shows_both_separators():
    readme = open(osp.join(REPO, 'README.md')).read()
    line = [row for row in readme.splitlines() if row.startswith('| `tools/demo.py`')][0]
    assert '"cat; dog; grass, lawn"' in line and '`;` between classes' in line and '`,` between synonyms' in line


def test_demo_label_map_creates_its_folder(tmp_path, tiny_checkpoint, capsys):
    image = str(tmp_path / 'photo.jpg')
    write_image(image, (50, 40), seed=5)
    label_map = tmp_path / 'new' / 'deeper' / 'labels.png'
    load_tool('demo').main([image, '--classes', 'cat; dog', '--out', str(tmp_path / 'overlay.png'),
                            '--label-map', str(label_map), '--cfg-options', f'model.pretrained={tiny_checkpoint}'])
    labels = np.array(Image.open(label_map))
    assert labels.shape == (40, 50) and set(np.unique(labels)) <= {0, 1}
    assert 'segmenting with 2 classes' in capsys.readouterr().out


# --- the shell launchers ----------------------------------------------------------------------------

@pytest.mark.parametrize('script,argv', [('dist_test.sh', ['--help']), ('slurm_test.sh', ['--help']),
                                         ('slurm_test.sh', ['gpu', 'job', 'configs/sclip_voc21.py', '-h'])])
def test_shell_launchers_answer_help_without_torch_or_srun(tmp_path, script, argv):
    bin_dir = tmp_path / 'bin'  # an srun that leaves a trace, so calling it cannot go unnoticed
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(f'#!/bin/sh\ntouch {tmp_path}/srun-was-called\n')
    (bin_dir / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}')
    done = subprocess.run(['bash', osp.join(REPO, 'tools', script), *argv], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'usage: ') and script in done.stdout.splitlines()[0]
    assert '--cfg-options' in done.stdout and 'Traceback' not in done.stderr + done.stdout
    assert not (tmp_path / 'srun-was-called').exists()


@pytest.mark.parametrize('script,argv', [('dist_test.sh', []), ('dist_test.sh', ['configs/sclip_voc21.py']),
                                         ('slurm_test.sh', ['gpu'])])
def test_shell_launchers_without_their_arguments_print_usage(script, argv):
    done = subprocess.run(['bash', osp.join(REPO, 'tools', script), *argv], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr.startswith('usage: ') and done.stderr.splitlines()[1].startswith('error: ')


# --- check_data names the config; work dirs keep no lock ------------------------------------------

def test_check_data_prints_each_error_with_its_config(tmp_path, capsys):
    from helpers import make_dataset
    root = make_dataset('voc21', str(tmp_path / 'data'))
    os.remove(osp.join(root, 'SegmentationClass', '2008_000002.png'))
    configs = [osp.join(REPO, 'configs', 'sclip_voc21.py'), osp.join(REPO, 'configs', 'sclip_voc20.py')]
    with pytest.raises(SystemExit) as exit_info:
        load_tool('check_data').main([*configs, '--no-count', '--cfg-options',
                                      f'test_dataloader.dataset.data_root={root}'])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error: ')]
    for config in configs:  # both configs read the broken label; each line says which one it is from
        mine = [line for line in errors if line.startswith(f'error: {config}: ')]
        assert mine and all('2008_000002' in line for line in mine), errors
    assert len(errors) == sum(line.startswith(tuple(f'error: {c}: ' for c in configs)) for line in errors)


def test_cell_lock_file_goes_with_its_release_and_a_second_holder_waits(tmp_path):
    from sclip.files import CellLock
    first, second = CellLock(str(tmp_path)), CellLock(str(tmp_path))
    assert first.acquire() and (tmp_path / '.lock').is_file()
    assert not second.acquire() and f'pid {os.getpid()}' in second.holder
    stale = open(first.path, 'a+')  # opened by a third process just before the holder removes it
    first.release()
    assert not (tmp_path / '.lock').exists()
    import fcntl
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # that inode is free now, but no longer the lock
    assert second.acquire() and (tmp_path / '.lock').is_file()
    stale.close()
    second.release()
    assert os.listdir(tmp_path) == []


# --- configs named relative to the repository, from any folder --------------------------------------

def test_tools_find_repository_configs_from_another_folder(tmp_path, monkeypatch, tiny_checkpoint, capsys):
    from helpers import make_dataset
    root = make_dataset('voc21', str(tmp_path / 'data'))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    options = ['--cfg-options', f'model.clip_path={tiny_checkpoint}', f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.num_workers=0']
    load_tool('test').main(['configs/sclip_voc21.py', *options])
    with open(elsewhere / 'work_dirs' / 'sclip_voc21' / 'metrics.json') as f:  # the default work dir, here
        assert json.load(f)['identity']['data']['num_images'] == 2
    assert not (elsewhere / 'work_dirs' / 'sclip_voc21' / '.lock').exists()  # a finished run keeps no lock
    with pytest.raises(SystemExit) as exit_info:
        load_tool('check_data').main(['configs/sclip_voc21.py', 'configs/clearclip/voc20.py', '--no-count', *options[:1],
                                      *options[2:]])
    assert exit_info.value.code == 0
    assert 'configs/clearclip/voc20.py: OK (2 images checked)' in capsys.readouterr().out
    from sclip.sweep import run_sweep
    results = run_sweep(['configs/sclip_voc21.py'], [], str(elsewhere / 'sweep'),
                        {'model.clip_path': tiny_checkpoint, 'test_dataloader.dataset.data_root': root,
                         'test_dataloader.num_workers': 0}, log=lambda *_: None, quiet=True)
    assert [r.status for r in results] == ['ok'] and osp.isfile(osp.join(results[0].work_dir, 'metrics.json'))
    assert results[0].work_dir == osp.join(str(elsewhere / 'sweep'), 'default', 'sclip_voc21')
    assert not osp.exists(osp.join(results[0].work_dir, '.lock'))


def test_a_missing_config_says_where_it_looked(tmp_path, monkeypatch, capsys):
    from helpers import run_main
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, 'configs/sclip_voc99.py')
    assert_one_line(code, err, f"config 'configs/sclip_voc99.py' not found",
                    str(tmp_path / 'configs' / 'sclip_voc99.py'), osp.join(REPO, 'configs', 'sclip_voc99.py'))


# --- Python started beside the clone ----------------------------------------------------------------

def python_beside_the_clone(tmp_path, code, *flags):
    """Run ``code`` in the folder holding a clone of this repository named ``sclip`` (as ``git clone``
    names it), with nothing on PYTHONPATH: what a newcomer types after cloning."""
    holder = tmp_path / 'holder'
    holder.mkdir()
    (holder / 'sclip').symlink_to(REPO, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return subprocess.run([sys.executable, *flags, '-c', code], cwd=holder, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_beside_the_clone_gets_the_real_package(tmp_path):
    done = python_beside_the_clone(tmp_path, 'import sclip; from mmseg.apis import init_model; '
                                             'import sclip.runner; print(sclip.__file__); print(sclip.__version__)')
    assert done.returncode == 0, done.stderr[-2000:]
    path, version = done.stdout.split()
    assert path.endswith(osp.join('sclip', '__init__.py')) and version == '0.2.0'
    assert osp.dirname(path) != str(tmp_path / 'holder' / 'sclip')  # not the clone's top folder


def test_import_beside_a_clone_that_is_not_installed_uses_its_package(tmp_path):
    import sysconfig
    site_packages = sysconfig.get_paths()['purelib']  # the libraries, without the .pth files' editable finder
    done = python_beside_the_clone(tmp_path, f'import sys; sys.path.append({site_packages!r}); import sclip; '
                                             'import sclip.runner; print(sclip.runner.__file__)', '-S')
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(tmp_path / 'holder' / 'sclip' / 'sclip' / 'runner.py')


# --- paper_table finds results by identity ------------------------------------------------------------

def test_paper_table_finds_a_run_with_its_own_work_dir(tmp_path, tiny_checkpoint, capsys):
    from helpers import make_dataset, run_tool
    root = make_dataset('voc21', str(tmp_path / 'data'))
    metrics = run_tool('configs/sclip_voc21.py', root, tiny_checkpoint, str(tmp_path / 'results' / 'my' / 'voc'))
    capsys.readouterr()
    load_tool('paper_table').main(['--results-dir', str(tmp_path / 'results')])
    ours = [row for row in capsys.readouterr().out.splitlines() if row.split('|')[0].strip() == 'ours'][0]
    assert float(ours.split('|')[1]) == pytest.approx(metrics['mIoU'], abs=0.01) and ours.split('|')[2].strip() == '-'
    from sclip.errors import SCLIPError
    with pytest.raises(SCLIPError, match=r"no result of the clip row \(configs/sclip_<benchmark>.py "
                                         r"model.attention.type=vanilla\)"):
        load_tool('paper_table').main(['--results-dir', str(tmp_path / 'results'), '--method', 'clip'])


def test_results_are_told_apart_by_config_and_overrides(tmp_path):
    from sclip import paper

    def write(folder, config, overrides, miou, finished='2026-01-01T00:00:00Z', benchmark='voc21', key='sclip'):
        os.makedirs(tmp_path / folder)
        identity = {'config': {'file': osp.join('/somewhere', config), 'overrides': overrides}}
        (tmp_path / folder / 'metrics.json').write_text(json.dumps(dict(
            mIoU=miou, config=config, benchmark=benchmark, paper_key=key, identity=identity, finished=finished)))

    write('sweep/default/sclip_voc21', 'configs/sclip_voc21.py', {'model.clip_path': '/w.pt'}, 50.0)
    write('sweep/later/sclip_voc21', 'configs/sclip_voc21.py', {}, 51.0, finished='2026-02-01T00:00:00Z')
    write('sweep/vanilla/sclip_voc21', 'configs/sclip_voc21.py', {'model.attention.type': 'vanilla'}, 20.0)
    write('sweep/pamr/voc21', 'configs/ablations/pamr_voc21.py', {}, 60.0)  # SCLIP's paper_key, another config
    write('sweep/default/clearclip/voc20', 'configs/clearclip/voc20.py', {}, 80.0, benchmark='voc20',
          key='clearclip')
    write('elsewhere/sclip_voc20/predictions/x', 'configs/sclip_voc20.py', {}, 70.0, benchmark='voc20')
    assert paper.collect(str(tmp_path), 'sclip') == {'voc21': 51.0}  # the newest; no file under predictions/
    assert paper.collect(str(tmp_path), 'clip') == {'voc21': 20.0}
    assert paper.collect(str(tmp_path), 'clearclip') == {'voc20': 80.0}
    assert paper.collect(str(tmp_path), 'naclip') == {}
    os.makedirs(tmp_path / 'sclip_voc21')  # the default work dir of tools/test.py comes first
    (tmp_path / 'sclip_voc21' / 'metrics.json').write_text(json.dumps(dict(mIoU=40.0)))
    assert paper.collect(str(tmp_path), 'sclip') == {'voc21': 40.0}


# --- a sweep reuses equal cells whatever their folder ---------------------------------------------------

def test_adding_an_axis_to_a_finished_sweep_recomputes_no_equal_cell(tmp_path, tiny_checkpoint, monkeypatch):
    from helpers import make_dataset
    from sclip import group_eval, sweep
    root = make_dataset('voc21', str(tmp_path / 'data'))
    options = {'model.clip_path': tiny_checkpoint, 'test_dataloader.dataset.data_root': root,
               'test_dataloader.num_workers': 0}
    config, work = osp.join(REPO, 'configs', 'sclip_voc21.py'), str(tmp_path / 'sweep')
    axes = [('model.attention.type', ['csa', 'vanilla'])]
    first = sweep.run_sweep([config], axes, work, options, log=lambda *_: None, quiet=True)
    assert [r.reused for r in first] == [False, False]
    evaluated = []
    real_run_group = group_eval.run_group
    monkeypatch.setattr(group_eval, 'run_group', lambda jobs, *a, **k: evaluated.extend(
        j.cfg.model.prob_thd for j in jobs) or real_run_group(jobs, *a, **k))
    lines = []
    axes.append(('model.prob_thd', ['0.1', '0.3']))  # 0.1 is VOC21's own value: the first two cells again
    second = sweep.run_sweep([config], axes, work, options, log=lines.append, quiet=True)
    assert evaluated == [0.3, 0.3]  # only the new cells ran
    by_variant = {r.variant: r for r in second}
    for old in first:
        new = by_variant[f'{old.variant} model.prob_thd=0.1']
        assert new.reused and new.work_dir != old.work_dir and new.mIoU == old.mIoU
        assert new.fingerprint == old.fingerprint
        with open(osp.join(new.work_dir, 'metrics.json')) as f:
            copied = json.load(f)
        assert copied['reused_from'] == osp.join(old.work_dir, 'metrics.json')
        assert copied['identity']['config']['overrides']['model.prob_thd'] == 0.1
    assert not by_variant['model.attention.type=csa model.prob_thd=0.3'].reused
    assert any('same fingerprint as' in line for line in lines) and '2 run, 2 reused' in lines[-1]


# --- no long silences ---------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_lines_are_sparse_off_a_terminal():
    import io
    from sclip.progress import Progress
    clock, lines, stream = FakeClock(), [], io.StringIO()
    progress = Progress(100, stream=stream, line=lines.append, line_every=30, clock=clock)
    assert not progress.tty
    for done in range(1, 101):  # one image a second
        clock.now += 1
        progress.update(done)
    progress.close()
    assert stream.getvalue() == ''  # nothing drawn in place where no terminal is
    assert [line.split(',')[0] for line in lines] == ['progress: 1/100 images', 'progress: 31/100 images',
                                                      'progress: 61/100 images', 'progress: 91/100 images',
                                                      'progress: 100/100 images']
    assert lines[1] == 'progress: 31/100 images, 1.00 images/s, 0:01:09 left'
    assert lines[-1] == 'progress: 100/100 images, 1.00 images/s, 0:00:00 left'


def test_progress_bar_on_a_terminal_moves_between_images():
    import io
    from sclip.progress import Progress
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(10, stream=stream, tty=True, clock=clock, ticker=False, width=10)
    clock.now += 4
    progress.update(2)
    assert stream.getvalue().split('\r')[-1] == \
        '2/10 images |##........|  20%  0.50 images/s  0:00:04 elapsed, 0:00:16 left\033[K'
    clock.now += 2  # no image finished: the clock thread's redraw still moves elapsed time and the rate
    progress.draw()
    assert stream.getvalue().split('\r')[-1].startswith('2/10 images |##........|  20%  0.33 images/s  0:00:06 elapsed')
    progress.close()
    assert stream.getvalue().endswith('\n')


def test_progress_clock_thread_redraws_without_updates():
    import io
    import time
    from sclip.progress import Progress
    stream = io.StringIO()
    progress = Progress(10, stream=stream, tty=True, refresh=0.01)
    progress.update(1)
    redraws = stream.getvalue().count('\r')
    deadline = time.monotonic() + 30
    while stream.getvalue().count('\r') < redraws + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    progress.close()
    assert stream.getvalue().count('\r') >= redraws + 3


def test_status_lines_clear_the_bar_and_only_print_inside_a_tool(capsys):
    import io
    from sclip.progress import Progress, status, status_lines
    status('not shown: library use')
    assert capsys.readouterr().out == ''
    with status_lines():
        stream = io.StringIO()
        progress = Progress(3, stream=stream, tty=True, ticker=False)
        status('loading something')
        progress.close()
    assert capsys.readouterr().out == '... loading something\n'
    assert '\r\033[K' in stream.getvalue()  # the bar line was cleared before the status line


def test_a_run_says_what_it_does_before_its_first_image(tmp_path, tiny_checkpoint, capsys):
    import glob
    from helpers import make_dataset, run_tool
    root = make_dataset('voc21', str(tmp_path / 'data'))
    run_tool('configs/sclip_voc21.py', root, tiny_checkpoint, str(tmp_path / 'w'))
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith('... ')]
    assert steps[0].startswith('... loading CLIP ViT-B-16 weights') and tiny_checkpoint in steps[0]
    assert '... evaluating 2 images' in steps
    assert any(line.startswith('... encoding 56 class names x 80 templates') for line in steps), steps
    log = open(glob.glob(str(tmp_path / 'w' / '*' / '*.log'))[0]).read()
    assert 'progress: 1/2 images' in log and 'progress: 2/2 images' in log


def test_tools_test_draws_a_bar_on_a_terminal(tmp_path, tiny_checkpoint):
    import pty
    from helpers import make_dataset
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=[(60, 45)] * 3)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=REPO, SCLIP_CACHE_DIR=str(tmp_path / 'cache'))
    process = subprocess.Popen([sys.executable, osp.join(REPO, 'tools', 'test.py'), 'configs/sclip_voc21.py',
                                '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                                f'model.clip_path={tiny_checkpoint}', f'test_dataloader.dataset.data_root={root}',
                                'test_dataloader.num_workers=0'], stdout=slave, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    os.close(master)
    screen = b''.join(chunks).decode(errors='replace')
    bars = [part for part in screen.split('\r') if '|' in part and 'images/s' in part]
    assert bars and '3/3 images |' in bars[-1] and '100%' in bars[-1] and 'left' in bars[-1], screen[-2000:]
    assert '... loading CLIP' in screen and '... evaluating 3 images' in screen
    assert 'progress: ' not in screen  # the sparse lines go to the log file only
    log = open(next(p for p in (tmp_path / 'w').rglob('*.log'))).read()
    assert 'progress: 3/3 images' in log


# --- trying it with nothing downloaded -------------------------------------------------------------

def test_try_it_runs_the_whole_pipeline_and_says_the_numbers_are_meaningless(tmp_path, capsys):
    metrics = load_tool('try_it').main(['--images', '1', '--work-dir', str(tmp_path / 'try')])
    out = capsys.readouterr().out
    assert out.count('MEANINGLESS') >= 3 and out.startswith('!' * 78)
    summary = [line for line in out.splitlines() if line.startswith('mIoU ')]
    assert summary == [f"mIoU {metrics['mIoU']:.2f}  aAcc {metrics['aAcc']:.2f}  mAcc {metrics['mAcc']:.2f}  "
                       '(MEANINGLESS: random weights, random images)']
    run = tmp_path / 'try' / 'run'
    with open(run / 'metrics.json') as f:
        written = json.load(f)
    assert written['mIoU'] == metrics['mIoU'] and written['identity']['data']['num_images'] == 1
    assert written['identity']['weights']['source'].endswith('random-clip-NOT-TRAINED.pt')
    assert sorted(os.listdir(run / 'predictions')) == ['.sclip-predictions.json', '2008_000002.png'] and os.listdir(run / 'pictures') == ['2008_000002.png']
    assert not os.listdir(os.environ['SCLIP_CACHE_DIR']) or 'text' not in os.listdir(os.environ['SCLIP_CACHE_DIR'])


def test_readme_documents_try_it():
    readme = open(osp.join(REPO, 'README.md')).read()
    setup = readme.split('## Set-up', 1)[1].split('##', 1)[0]
    assert 'python tools/try_it.py' in setup and 'meaningless' in setup


def test_test_helpers_build_with_the_package_builders():
    import helpers
    from sclip import synthetic
    assert helpers.make_dataset is synthetic.make_dataset and helpers.tiny_clip is synthetic.tiny_clip
