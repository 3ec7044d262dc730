"""Run a grid of config overrides × benchmark configs and tabulate the mIoU.

    python tools/sweep.py --configs configs/sclip_voc21.py configs/sclip_context59.py \\
        --set model.attention.type=csa,csa_q,csa_k,csa_identity --work-dir work_dirs/proj
    python tools/sweep.py --grid grid.json --work-dir work_dirs/my_sweep

Each cell runs like tools/test.py in WORK_DIR/<overrides>/<config path under configs/>/;
results.csv and results.md (rows: variants, columns: benchmarks and the average) are
rewritten after every cell. Rerunning resumes: a cell whose metrics.json has the same
fingerprint (config after overrides, weights, class names, templates, data, code) is reused;
one whose inputs changed is run again, and the log says what changed. Two processes on one
work dir share the grid: a cell another process is running is left to it.
A grid file is JSON: {"configs": [...], "set": {"KEY": [V1, V2]}, "cfg_options": {"k": v}}.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Sweep config overrides over benchmark configs.')
    parser.add_argument('--configs', nargs='+', default=[], help='benchmark or method configs')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=V1,V2',
                        help='one axis of the grid; repeat for more axes')
    parser.add_argument('--grid', help='JSON grid file (configs, set, cfg_options)')
    parser.add_argument('--work-dir', required=True, help='where every cell and the tables go')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='overrides applied to every cell (e.g. model.clip_path=...)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher (default: none)')
    parser.add_argument('--no-share', action='store_true',
                        help='run cells one by one (each through the Runner) instead of one pass per group of '
                             'cells reading the same images; for checking')
    parser.add_argument('--save-predictions', action='store_true',
                        help="save each cell's label maps under <cell>/predictions (as tools/test.py --out)")
    parser.add_argument('--verbose', action='store_true', help="mmengine's dumps and library warnings")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    from sclip.logs import quiet_unless
    from sclip.progress import status_lines
    with quiet_unless(args.verbose), status_lines():
        from sclip.errors import SCLIPError
        from sclip.options import parse_cfg_options
        from sclip.sweep import parse_axes, read_grid, run_sweep
        configs, axes = list(args.configs), parse_axes(args.set)
        options = parse_cfg_options(args.cfg_options)
        if args.grid:
            grid_configs, grid_axes, grid_options = read_grid(args.grid)
            configs, axes, options = configs + grid_configs, axes + grid_axes, {**grid_options, **options}
        if not configs:
            raise SCLIPError('no configs: pass --configs CFG [CFG ...] or a --grid file.')
        results = run_sweep(configs, axes, args.work_dir, options, args.launcher, quiet=not args.verbose,
                            share=not args.no_share, save_predictions=args.save_predictions)
        with open(os.path.join(args.work_dir, 'results.md')) as f:
            print(f.read())
        failed = sum(r.status == 'failed' for r in results)
        if failed:
            print(f'{failed} of {len(results)} cells failed; see results.csv and each error.txt', file=sys.stderr)
            sys.exit(1)


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: run(arguments))
