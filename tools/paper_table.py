"""Print the paper's Table 1 for our results, beside the published SCLIP numbers.

    python tools/paper_table.py [--results-dir work_dirs] [--run] [--check TOL]
        [--method sclip] [--cfg-options k=v ...]

Reads the metrics.json of the eight benchmarks from the default work dirs of tools/test.py
(work_dirs/sclip_<benchmark>/, work_dirs/clearclip/<benchmark>/, ...). With --run, missing benchmarks are run first (the same code as
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
from sclip.paper import (METHOD_CONFIGS, PUBLISHED, TABLE1_COLUMNS, check, collect, format_table,  # noqa: E402
                         result_dir, table)
from sclip.runner import DictAction, load_config, run_test  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description='Table 1 of the paper for our results.')
    parser.add_argument('--results-dir', default='work_dirs')
    parser.add_argument('--method', default='sclip', choices=sorted(PUBLISHED),
                        help='published row to compare with; clip/maskclip reuse the sclip configs: give them their own '
                             '--results-dir and --cfg-options model.attention.type=vanilla|maskclip')
    parser.add_argument('--run', action='store_true', help='run the benchmarks that have no result')
    parser.add_argument('--check', type=float, metavar='TOL', help='exit 1 if any |ours - published| > TOL')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.run:
        for benchmark, _ in TABLE1_COLUMNS:
            work_dir = result_dir(args.results_dir, args.method, benchmark)
            if not osp.isfile(osp.join(work_dir, 'metrics.json')):
                config = osp.join(REPO, METHOD_CONFIGS[args.method].format(benchmark))
                run_test(load_config(config, dict(args.cfg_options or {}), work_dir))
    ours = collect(args.results_dir, args.method)
    if not ours and not args.run:
        where = result_dir(args.results_dir, args.method, '<benchmark>')
        raise SCLIPError(f'no metrics.json under {where!r}; run the benchmarks first or pass --run.')
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
