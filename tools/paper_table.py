"""Print the paper's Table 1 for our results, beside a method's published numbers.

    python tools/paper_table.py [--results-dir work_dirs] [--method sclip] [--suite table1|rs] [--run]
        [--check TOL] [--cfg-options k=v ...]

Reads the metrics.json of the eight benchmarks from the default work dirs of tools/test.py
(work_dirs/sclip_<benchmark>/, work_dirs/clearclip/<benchmark>/, ...), else from wherever under
--results-dir a metrics.json records the method's benchmark config and overrides (runs with a
--work-dir of their own, sweep cells). With --run, every benchmark without a result of the
same identity (config, weights, data, code) is run first, the same way as tools/test.py. The
expected numbers are the official code's own reported ones for the commit its configs follow
where they exist (its README), else the paper's; the paper's row is shown beside, and every
number's source and setting are listed under the table (sclip/paper.py, ``expected``).
--check TOL exits 1 when a benchmark is missing or differs from the expected number by more
than TOL mIoU points: what a GPU CI with the datasets runs. --suite rs: the columns are SegEarth-OV's
17 remote-sensing sets (the default for --method segearth_ov; another method's configs there are
configs/remote_sensing/<method>/, ours, tools/make_rs_configs.py).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ['cass', 'cass-l', 'clearclip', 'clip', 'cliper', 'corrclip', 'floss', 'freecp', 'fsa', 'gem', 'groupvit', 'itaclip', 'maskclip', 'naclip',
           'naclip+pamr', 'proxyclip', 'resclip', 'scclip', 'sclip', 'segearth_ov', 'sfp', 'tcl', 'trident', 'trident-h']
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Table 1 of the paper for our results.')
    parser.add_argument('--results-dir', default='work_dirs',
                        help='where the results are, anywhere below, found by the config and overrides each '
                             'metrics.json records (default: work_dirs)')
    parser.add_argument('--method', default='sclip', choices=METHODS,
                        help='published row to compare with (default: sclip); clip and maskclip are the sclip '
                             'configs with model.attention.type=vanilla|maskclip, kept in <results-dir>/clip|maskclip/')
    parser.add_argument('--suite', choices=['table1', 'rs'],
                        help="the columns: Table 1's eight benchmarks, or SegEarth-OV's 17 remote-sensing sets "
                             '(default: rs for segearth_ov, else table1)')
    parser.add_argument('--run', action='store_true', help='run the benchmarks that have no result of this identity')
    parser.add_argument('--check', type=float, metavar='TOL',
                        help="exit 1 if any |ours - expected| > TOL (expected: the official README's number for "
                             "the commit followed where there is one, else the paper's)")
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='overrides for --run (e.g. model.clip_path=...)')
    parser.add_argument('--no-share', action='store_true',
                        help='with --run: evaluate the benchmarks one by one instead of sharing passes over '
                             'the same images (VOC21+VOC20, Context60+Context59)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher for --run (default: none)')
    parser.add_argument('--verbose', action='store_true', help="mmengine's dumps and library warnings")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    from sclip.logs import quiet_unless
    from sclip.progress import status_lines
    with quiet_unless(args.verbose), status_lines():
        from sclip.errors import SCLIPError
        from sclip.options import parse_cfg_options
        if args.check is not None and not args.check >= 0:
            raise SCLIPError(f'--check {args.check}: pass a tolerance in mIoU points >= 0, e.g. 1.0.')
        from sclip.paper import (METHOD_OVERRIDES, check_expected, collect, config_pattern, expected_sources,
                                 expected_table, format_table, method_columns, result_dir, source_summary)
        suite = args.suite
        if not method_columns(args.method, suite):
            raise SCLIPError(f'--method {args.method} has no configs for --suite {suite}: '
                             f'{config_pattern(args.method, suite).format("<benchmark>")} does not exist '
                             '(README, "Remote sensing": which methods have remote-sensing configs and why).')
        if args.run:
            from sclip.config_file import load_config
            from sclip.group_eval import evaluate_jobs
            from sclip.logs import quiet_config
            from sclip.plan import plan_run
            options = {**parse_cfg_options(args.cfg_options), **METHOD_OVERRIDES.get(args.method, {})}
            jobs = []
            for benchmark, _ in method_columns(args.method, suite):  # the benchmarks the method has configs for
                config = osp.join(REPO, config_pattern(args.method, suite).format(benchmark))
                cfg = load_config(config, options, result_dir(args.results_dir, args.method, benchmark, suite))
                if not args.verbose:
                    quiet_config(cfg)
                jobs.append(plan_run(cfg, options, label=benchmark, strict=False))
            outcomes = evaluate_jobs(jobs, args.launcher, share=not args.no_share, quiet=not args.verbose)
            for job, outcome in zip(jobs, outcomes):
                print(f'{job.label}: {outcome.status} {outcome.how or outcome.error}')
        ours = collect(args.results_dir, args.method, suite)
        if not ours and not args.run:
            wanted = config_pattern(args.method, suite).format('<benchmark>') + ''.join(
                f' {k}={v}' for k, v in METHOD_OVERRIDES.get(args.method, {}).items())
            raise SCLIPError(f'no result of the {args.method} row ({wanted}) in any metrics.json under '
                             f'{args.results_dir!r}; run the benchmarks first or pass --run.')
        print(format_table(expected_table(ours, args.method, suite)))
        print(f'expected: {source_summary(args.method, suite) or "nothing published that could be verified"}')
        for line in expected_sources(args.method, suite):
            print(f'  {line}')
        if args.check is not None:
            problems = check_expected(ours, args.method, args.check, suite)
            for problem in problems:
                print(f'check failed: {problem}', file=sys.stderr)
            if problems:
                sys.exit(1)
            count = len(method_columns(args.method, suite))
            print(f'all {"eight" if count == 8 else count} benchmarks within {args.check} mIoU of the expected numbers '
                  f'({source_summary(args.method, suite)})')


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: run(arguments))
