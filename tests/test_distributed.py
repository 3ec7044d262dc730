"""Two CPU processes (gloo) through tools/dist_test.sh give the metrics.json of one process."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

from helpers import REPO, SIZES, make_dataset


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path, tiny_checkpoint):
    # three images: the sampler pads the odd one out; collect_results must drop the padding
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=SIZES + [(50, 70)])
    options = ['--cfg-options', f'model.pretrained={tiny_checkpoint}',
               f'test_dataloader.dataset.data_root={root}', 'test_dataloader.num_workers=0']
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    config = osp.join(REPO, 'configs', 'sclip_voc21.py')
    single = subprocess.run([sys.executable, 'tools/test.py', config, '--work-dir', str(tmp_path / 'one'),
                             *options], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(['bash', 'tools/dist_test.sh', config, '2', '--work-dir', str(tmp_path / 'two'),
                             *options], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.load(open(tmp_path / 'one' / 'metrics.json'))
    two = json.load(open(tmp_path / 'two' / 'metrics.json'))
    for key in ('mIoU', 'aAcc', 'mAcc', 'per_class'):
        assert one[key] == two[key], key
    assert one['identity']['fingerprint'] == two['identity']['fingerprint']
    assert double.stdout.count('mIoU ') == 1  # the summary once, from rank 0
    logged = double.stdout + double.stderr  # mmengine's table and summary lines, once each
    assert logged.count('per class results') == 1 and logged.count('Iter(test)') == 1, logged[-3000:]
    assert 'progress: ' in logged


def test_grouped_sweep_on_two_processes_matches_one(tmp_path, tiny_checkpoint):
    """A shared sweep (VOC21 + VOC20 in one pass, two variants) under torchrun equals one process."""
    root = make_dataset('voc21', str(tmp_path / 'data'), sizes=SIZES + [(50, 70)])
    args = ['--configs', osp.join(REPO, 'configs', 'sclip_voc21.py'), osp.join(REPO, 'configs', 'sclip_voc20.py'),
            '--set', 'model.attention.type=csa,vanilla', '--cfg-options', f'model.clip_path={tiny_checkpoint}',
            f'test_dataloader.dataset.data_root={root}', 'test_dataloader.num_workers=0']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    single = subprocess.run([sys.executable, 'tools/sweep.py', *args, '--work-dir', str(tmp_path / 'one')],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                             '--master_port', str(free_port()), 'tools/sweep.py', *args,
                             '--work-dir', str(tmp_path / 'two'), '--launcher', 'pytorch'],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    for one in sorted((tmp_path / 'one').rglob('metrics.json')):
        two = tmp_path / 'two' / one.relative_to(tmp_path / 'one')
        a, b = json.load(open(one)), json.load(open(two))
        assert a['mIoU'] == b['mIoU'] and a['per_class'] == b['per_class'], one
        assert a['identity']['fingerprint'] == b['identity']['fingerprint']
    assert len(list((tmp_path / 'one').rglob('metrics.json'))) == 4
