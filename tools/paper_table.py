"""Print the paper's Table 1 for our results, beside the published SCLIP numbers.

    python tools/paper_table.py [--results-dir work_dirs] [--run] [--check TOL]
        [--method sclip] [--cfg-options k=v ...]

Reads WORK/<config>/metrics.json for the eight benchmarks (the default work dirs of
tools/test.py). With --run, missing benchmarks are run first (the same code as
tools/test.py). --check TOL exits 1 when a benchmark is missing or differs from the
published number by more than TOL mIoU points: what a GPU CI with the datasets runs.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sclip.cli import main_guard  # noqa: E402
from sclip.errors import SCLIPError  # noqa: E402
from sclip.paper import PUBLISHED, TABLE1_COLUMNS, check, collect, format_table, table  # noqa: E402
from sclip.runner import DictAction, load_config, run_test  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description='Table 1 of the paper for our results.')
    parser.add_argument('--results-dir', default='work_dirs')
    parser.add_argument('--method', default='sclip', choices=sorted(PUBLISHED),
                        help='published row to compare with (run CLIP/MaskCLIP rows with --cfg-options model.attention.type=...)')
    parser.add_argument('--run', action='store_true', help='run the benchmarks that have no result')
    parser.add_argument('--check', type=float, metavar='TOL', help='exit 1 if any |ours - published| > TOL')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    prefix = 'sclip_'
    if args.run:
        for benchmark, _ in TABLE1_COLUMNS:
            work_dir = osp.join(args.results_dir, f'{prefix}{benchmark}')
            if not osp.isfile(osp.join(work_dir, 'metrics.json')):
                config = osp.join(REPO, 'configs', f'{prefix}{benchmark}.py')
                run_test(load_config(config, dict(args.cfg_options or {}), work_dir))
    ours = collect(args.results_dir, prefix)
    if not ours and not args.run:
        raise SCLIPError(f'no metrics.json under {args.results_dir!r}/sclip_<benchmark>/; run the '
                         'benchmarks first or pass --run.')
    published = PUBLISHED[args.method]
    print(format_table(table(ours, published)))
    if args.check is not None:
        problems = check(ours, published, args.check)
        for problem in problems:
            print(f'check failed: {problem}', file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f'all eight benchmarks within {args.check} mIoU of the published numbers')


if __name__ == '__main__':
    main_guard(main)
