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
    one.pop('config'), two.pop('config')
    assert one == two
