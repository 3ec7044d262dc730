"""tools/sweep.py: grid, resume, failure recording, atomic results; tools/paper_table.py."""
import csv
import json
import os
import os.path as osp

import pytest

from helpers import REPO, load_tool, make_dataset
from sclip import group_eval, paper, sweep


def test_split_and_parse_values():
    assert sweep.split_values('csa,vanilla') == ['csa', 'vanilla']
    assert sweep.split_values('(8, 16),(4,8),None') == ['(8, 16)', '(4,8)', 'None']
    assert sweep.parse_value('(8, 16)') == (8, 16) and sweep.parse_value('csa') == 'csa'
    assert sweep.parse_value('2') == 2 and sweep.parse_value('true') is True
    axes = sweep.parse_axes(['model.attention.type=csa,vanilla', 'model.logit_scale=40,50'])
    cells = sweep.build_grid(['a.py', 'b.py'], axes)
    assert len(cells) == 8 and cells[0].overrides == {'model.attention.type': 'csa', 'model.logit_scale': '40'}


def test_a_cell_named_twice_is_one_cell():
    config = osp.join(REPO, 'configs', 'sclip_voc21.py')
    relative = osp.relpath(config)
    cells = sweep.build_grid([config, relative], sweep.parse_axes(['model.prob_thd=0.1,0.1,0.2']))
    assert [(c.config, c.overrides['model.prob_thd']) for c in cells] == [(config, '0.1'), (config, '0.2')]


@pytest.mark.parametrize('content,needle', [
    ('{"configs": ["a.py"], "set": {"model.prob_thd": 0.2}}', '"set" must map each key to a non-empty list'),
    ('[{"configs": ["a.py"]}]', 'must hold a JSON object'),
    ('{"configs": "a.py"}', '"configs" must be a list'),
    ('{"config": ["a.py"]}', "did you mean 'configs'"),
    ('{"configs": ["a.py"], "cfg_options": [1]}', '"cfg_options" must be an object'),
    ('{"configs": [', 'grid.json'),
])
def test_bad_grid_file_is_one_line(tmp_path, capsys, content, needle):
    grid = tmp_path / 'grid.json'
    grid.write_text(content)
    from sclip.cli import main_guard
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('sweep').main(['--grid', str(grid), '--work-dir', str(tmp_path / 'w')]))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and err.startswith('error:'), err
    assert needle in err and str(grid) in err


def test_real_sweep_with_failure_and_resume(tmp_path, tiny_checkpoint, monkeypatch):
    root = make_dataset('voc21', str(tmp_path / 'data'))
    work = str(tmp_path / 'sweep')
    tool = load_tool('sweep')
    args = ['--configs', osp.join(REPO, 'configs', 'sclip_voc21.py'),
            '--set', 'model.attention.type=csa,vanilla,not_a_variant', '--work-dir', work,
            '--cfg-options', f'model.pretrained={tiny_checkpoint}', f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.num_workers=0']
    with pytest.raises(SystemExit) as exit_info:
        tool.main(args)
    assert exit_info.value.code == 1  # one cell failed, the others ran
    with open(osp.join(work, 'results.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [r['status'] for r in rows] == ['ok', 'ok', 'failed']
    assert "model.attention.type='not_a_variant' is unknown" in rows[2]['error']
    assert osp.isfile(osp.join(rows[2]['work_dir'], 'error.txt'))
    for row in rows[:2]:
        with open(osp.join(row['work_dir'], 'metrics.json')) as f:
            assert float(row['mIoU']) == pytest.approx(json.load(f)['mIoU'])
    table = open(osp.join(work, 'results.md')).read()
    assert '| SCLIP model.attention.type=csa |' in table and '| voc21 |' in table.splitlines()[0] + ' |'
    assert not [f for _, _, files in os.walk(work) for f in files if f.endswith('.tmp')]

    # resume: finished cells are not run again
    calls = []
    monkeypatch.setattr(group_eval, 'run_test', lambda cfg, **kw: calls.append(cfg.work_dir))
    with pytest.raises(SystemExit):
        tool.main(args + ['--no-share'])
    assert len(calls) == 1 and 'not_a_variant' in calls[0]


def fake_run_test(cfg, identity=None, **kwargs):
    from sclip.files import write_json_atomic
    value = {'csa': 50.0, 'vanilla': 10.0}.get(cfg.model.attention.type, 30.0) + (1 if 'context' in cfg.filename else 0)
    write_json_atomic(osp.join(cfg.work_dir, 'metrics.json'), dict(mIoU=value, aAcc=90.0, mAcc=60.0,
                                                                   identity=identity))


def test_table_and_interrupt_keeps_finished_cells(tmp_path, monkeypatch):
    configs = [osp.join(REPO, 'configs', 'sclip_voc21.py'), osp.join(REPO, 'configs', 'sclip_context59.py')]
    axes = sweep.parse_axes(['model.attention.type=csa,vanilla'])
    calls = []

    def interrupted(cfg, **kwargs):
        calls.append(cfg.work_dir)
        if len(calls) == 3:
            raise KeyboardInterrupt
        fake_run_test(cfg, **kwargs)
    monkeypatch.setattr(group_eval, 'run_test', interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(configs, axes, str(tmp_path), log=lambda *_: None, share=False)
    with open(tmp_path / 'results.csv') as f:
        assert len(list(csv.DictReader(f))) == 2
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    results = sweep.run_sweep(configs, axes, str(tmp_path), log=lambda *_: None, share=False)
    assert [r.mIoU for r in results] == [50.0, 51.0, 10.0, 11.0]
    lines = (tmp_path / 'results.md').read_text().splitlines()
    assert lines[0] == '| variant | voc21 | context59 | average |'
    assert lines[2] == '| SCLIP model.attention.type=csa | 50.00 | 51.00 | 50.50 |'
    assert lines[3] == '| SCLIP model.attention.type=vanilla | 10.00 | 11.00 | 10.50 |'


def test_grid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    grid = tmp_path / 'grid.json'
    grid.write_text(json.dumps(dict(configs=[osp.join(REPO, 'configs', 'sclip_voc21.py')],
                                    set={'model.attention.type': ['csa', 'vanilla']})))
    load_tool('sweep').main(['--grid', str(grid), '--work-dir', str(tmp_path / 'w'), '--no-share'])
    assert 'vanilla | 10.00' in (tmp_path / 'w' / 'results.md').read_text()


def write_metrics(root, values):
    for benchmark, miou in values.items():
        os.makedirs(root / f'sclip_{benchmark}', exist_ok=True)
        (root / f'sclip_{benchmark}' / 'metrics.json').write_text(json.dumps(dict(mIoU=miou)))


def test_paper_table_format_and_check(tmp_path, capsys):
    """Against the expected numbers (SCLIP's README @ b56bd30), the paper's row beside."""
    expected = {k: paper.expected('sclip', k).value for k, _ in paper.TABLE1_COLUMNS}
    values = {k: expected[k] + 0.3 for k in expected}
    values['ade20k'] = expected['ade20k'] - 2.0
    write_metrics(tmp_path, values)
    tool = load_tool('paper_table')
    tool.main(['--results-dir', str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split('|')[1].strip() == 'VOC21' and out[0].split('|')[-1].strip() == 'Avg'
    assert [c.strip() for c in out[2].split('|')][:3] == ['expected', '59.63', '31.74']
    assert [c.strip() for c in out[3].split('|')][:3] == ['paper', '59.1', '30.4']
    assert [c.strip() for c in out[5].split('|')][7] == '-2.00'
    assert [c.strip() for c in out[4].split('|')][-1] == f'{sum(values.values()) / 8:.2f}'
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['--results-dir', str(tmp_path), '--check', '1.0'])
    assert exit_info.value.code == 1
    assert 'ADE: 14.45 vs expected 16.45 from wangf3014/SCLIP README.md line 70 @ b56bd30' in capsys.readouterr().err
    tool.main(['--results-dir', str(tmp_path), '--check', '2.5'])
    assert 'within 2.5' in capsys.readouterr().out


def test_paper_table_for_another_method(tmp_path, capsys):
    for benchmark, _ in paper.TABLE1_COLUMNS:
        os.makedirs(tmp_path / 'naclip' / benchmark)
        (tmp_path / 'naclip' / benchmark / 'metrics.json').write_text(
            json.dumps(dict(mIoU=paper.PUBLISHED['naclip'][benchmark])))
    load_tool('paper_table').main(['--results-dir', str(tmp_path), '--method', 'naclip', '--check', '0.01'])
    out = capsys.readouterr().out
    assert 'within 0.01' in out and out.splitlines()[3].split('|')[-1].strip() == '39.4' and '[second-hand]' in out
    assert sum(paper.PUBLISHED['naclip'][k] for k, _ in paper.TABLE1_COLUMNS) / 8 == pytest.approx(39.4, abs=0.05)
    assert sum(paper.PUBLISHED['clearclip'][k] for k, _ in paper.TABLE1_COLUMNS) / 8 == pytest.approx(38.1, abs=0.05)


def test_killed_sweep_keeps_finished_cells_and_resumes(tmp_path, tiny_checkpoint):
    """SIGKILL a real sweep after its first cell: nothing finished is lost, nothing is half-written."""
    import signal
    import subprocess
    import sys
    import time
    root = make_dataset('voc21', str(tmp_path / 'data'))
    work = tmp_path / 'sweep'
    args = [sys.executable, 'tools/sweep.py', '--configs', 'configs/sclip_voc21.py',
            '--set', 'model.attention.type=csa,vanilla,maskclip', '--work-dir', str(work),
            '--cfg-options', f'model.pretrained={tiny_checkpoint}', f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.num_workers=0', '--no-share']  # one by one: a cell finishes before the next starts
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (work / 'results.csv').exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with open(work / 'results.csv') as f:
        done = [row for row in csv.DictReader(f)]
    assert done and all(row['status'] == 'ok' for row in done) and len(done) < 3
    for row in done:
        with open(osp.join(row['work_dir'], 'metrics.json')) as f:
            assert json.load(f)['mIoU'] == pytest.approx(float(row['mIoU']))
    finished = {row['work_dir'] for row in done}
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(work / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['status'] for r in rows] == ['ok'] * 3
    for row in rows:
        if row['work_dir'] in finished:  # resumed, not rerun: its log folder count is unchanged
            assert len([d for d in os.listdir(row['work_dir']) if d[:8].isdigit()]) == 1


def test_full_disk_for_the_sweep_table_is_one_line(tmp_path, monkeypatch, capsys):
    import errno
    from sclip import files
    from sclip.cli import main_guard
    monkeypatch.setattr(group_eval, 'run_test', fake_run_test)
    real_write = files.write_text_atomic

    def full_for_tables(path, text):
        if osp.basename(path) in ('results.csv', 'results.md', 'sweep.json'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(path, text)
    monkeypatch.setattr(files, 'write_text_atomic', full_for_tables)
    work = tmp_path / 'w'
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: load_tool('sweep').main(['--configs', osp.join(REPO, 'configs', 'sclip_voc21.py'),
                                                    '--work-dir', str(work), '--no-share']))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert str(work / 'results.csv') in err and 'no space left' in err


@pytest.mark.parametrize('share', [True, False])
def test_shared_or_not_a_wrong_data_root_is_the_same_one_line(tmp_path, tiny_checkpoint, share):
    root = make_dataset('voc21', str(tmp_path / 'data'))  # a VOC2012 root given to Context60
    results = sweep.run_sweep([osp.join(REPO, 'configs', 'sclip_context60.py')], [], str(tmp_path / 'w'),
                              {'model.clip_path': tiny_checkpoint, 'test_dataloader.dataset.data_root': root},
                              log=lambda *_: None, quiet=True, share=share)
    (result,) = results
    assert result.status == 'failed' and 'SegmentationClassContext' in result.error
    assert 'set test_dataloader.dataset.data_root=DIR' in result.error and '\n' not in result.error


def test_paper_table_refuses_results_of_another_row(tmp_path):
    """SCLIP's sclip_<benchmark> configs make three rows: SCLIP, CLIP (vanilla) and MaskCLIP."""
    from sclip.errors import SCLIPError

    def write(method, overrides):
        folder = paper.result_dir(str(tmp_path), method, 'voc21')
        os.makedirs(folder, exist_ok=True)
        identity = {'config': {'overrides': {'model.clip_path': '/w.pt', **overrides}}}
        with open(osp.join(folder, 'metrics.json'), 'w') as f:
            json.dump(dict(mIoU=20.0, paper_key='sclip', identity=identity), f)

    assert paper.result_dir('w', 'clip', 'voc21') == osp.join('w', 'clip', 'sclip_voc21')
    write('clip', {'model.attention.type': 'vanilla'})
    write('sclip', {})
    assert paper.collect(str(tmp_path), 'clip') == {'voc21': 20.0}
    assert paper.collect(str(tmp_path), 'sclip') == {'voc21': 20.0}
    write('clip', {'model.attention.type': 'csa'})
    with pytest.raises(SCLIPError, match='model.attention.type=csa, not as the clip row'):
        paper.collect(str(tmp_path), 'clip')
    write('sclip', {'model.attention.type': 'vanilla'})
    with pytest.raises(SCLIPError, match='not as the sclip row'):
        paper.collect(str(tmp_path), 'sclip')
    assert paper.paper_row('sclip', {'model.attention.type': 'maskclip'}) == 'maskclip'
    assert paper.paper_row('clearclip', {'model.attention.type': 'vanilla'}) is None
