"""Run a grid of config overrides × benchmark configs and tabulate the mIoU.

    python tools/sweep.py --configs configs/sclip_voc21.py configs/sclip_context59.py \\
        --set model.attention.type=csa,csa_q,csa_k,csa_identity --work-dir work_dirs/proj
    python tools/sweep.py --grid grid.json --work-dir work_dirs/my_sweep

Each cell runs like tools/test.py in WORK_DIR/<overrides>/<config>/; results.csv and
results.md (rows: variants, columns: benchmarks and the average) are rewritten after every
cell. Rerunning resumes: cells with a metrics.json are not run again; failed cells are.
A grid file is JSON: {"configs": [...], "set": {"KEY": [V1, V2]}, "cfg_options": {"k": v}}.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sclip.cli import main_guard  # noqa: E402
from sclip.errors import SCLIPError  # noqa: E402
from sclip.runner import DictAction  # noqa: E402
from sclip.sweep import parse_axes, run_sweep  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description='Sweep config overrides over benchmark configs.')
    parser.add_argument('--configs', nargs='+', default=[], help='benchmark or method configs')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=V1,V2',
                        help='one axis of the grid; repeat for more axes')
    parser.add_argument('--grid', help='JSON grid file (configs, set, cfg_options)')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides applied to every cell (e.g. model.pretrained=...)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    args = parser.parse_args(argv)
    configs, axes, options = list(args.configs), parse_axes(args.set), dict(args.cfg_options or {})
    if args.grid:
        try:
            with open(args.grid) as f:
                grid = json.load(f)
        except (OSError, ValueError) as error:
            raise SCLIPError(f'--grid {args.grid!r}: {error}')
        configs += grid.get('configs', [])
        axes += [(k, [json.dumps(v) if not isinstance(v, str) else v for v in values])
                 for k, values in grid.get('set', {}).items()]
        options = {**grid.get('cfg_options', {}), **options}
    if not configs:
        raise SCLIPError('no configs: pass --configs CFG [CFG ...] or a --grid file.')
    results = run_sweep(configs, axes, args.work_dir, options, args.launcher)
    with open(os.path.join(args.work_dir, 'results.md')) as f:
        print(f.read())
    failed = sum(r.status != 'ok' for r in results)
    if failed:
        print(f'{failed} of {len(results)} cells failed; see results.csv and each error.txt', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main_guard(main)
