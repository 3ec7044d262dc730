"""Evaluate a config: ``python tools/test.py CONFIG [--work-dir DIR] [--out DIR] [--show-dir DIR]
[--cfg-options k=v ...] [--launcher none|pytorch|slurm] [--verbose]``.

Prints the per-class table and summary and writes ``WORK_DIR/metrics.json`` with the run's
identity. Runs on CUDA when available, else on the CPU. Input problems end with one line
(``error: ...``) and exit code 2.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a training-free CLIP segmentor.')
    parser.add_argument('config', help='config file, e.g. configs/sclip_voc21.py')
    parser.add_argument('--work-dir', help='where logs and metrics.json go (default: work_dirs/<config>)')
    parser.add_argument('--out', help='save every predicted label map as <image>.png here')
    parser.add_argument('--show-dir', help='save image | prediction | ground truth | errors PNGs here')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='override config keys, e.g. model.clip_path=ViT-B-16.pt model.prob_thd=0.2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher (default: none; tools/dist_test.sh sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--verbose', action='store_true',
                        help="print mmengine's environment, config and hook dumps and every warning")
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def run(args: argparse.Namespace) -> None:
    # imported here, after parsing: --help must not wait for torch/mmseg
    from sclip.logs import quiet_unless
    from sclip.progress import status_lines
    with quiet_unless(args.verbose), status_lines():
        from sclip.config_file import load_config
        from sclip.options import parse_cfg_options
        from sclip.plan import plan_run
        from sclip.runner import execute
        overrides = parse_cfg_options(args.cfg_options)
        cfg = load_config(args.config, overrides, args.work_dir)
        if not args.verbose:
            from sclip.logs import quiet_config
            quiet_config(cfg)
        plan = plan_run(cfg, overrides, out_dir=args.out, show_dir=args.show_dir)  # checks, one listing, identity
        metrics = execute(plan, launcher=args.launcher)
        if metrics is not None:  # rank 0 only
            print(f"mIoU {metrics['mIoU']:.2f}  aAcc {metrics['aAcc']:.2f}  mAcc {metrics['mAcc']:.2f}  "
                  f"-> {os.path.join(cfg.work_dir, 'metrics.json')}")


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: run(arguments))
