"""Evaluate a config: ``python tools/test.py CONFIG [--work-dir DIR] [--out DIR] [--show-dir DIR]
[--cfg-options k=v ...] [--launcher none|pytorch|slurm]``.

Prints mmseg's per-class table and summary and writes ``WORK_DIR/metrics.json``. Runs on
CUDA when available, else on the CPU. Input problems end with one line and exit code 2.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sclip.cli import main_guard  # noqa: E402
from sclip.runner import DictAction, load_config, run_test  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a training-free CLIP segmentor.')
    parser.add_argument('config', help='config file, e.g. configs/sclip_voc21.py')
    parser.add_argument('--work-dir', help='where logs and metrics.json go')
    parser.add_argument('--out', help='save every predicted label map as <image>.png here')
    parser.add_argument('--show-dir', help='save image | prediction | ground truth PNGs here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.pretrained=ViT-B-16.pt')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    metrics = run_test(cfg, out_dir=args.out, show_dir=args.show_dir, launcher=args.launcher)
    from mmengine.dist import get_rank
    if get_rank() == 0:
        print(f"mIoU {metrics['mIoU']:.2f}  aAcc {metrics['aAcc']:.2f}  mAcc {metrics['mAcc']:.2f}  "
              f"-> {os.path.join(cfg.work_dir, 'metrics.json')}")


if __name__ == '__main__':
    main_guard(main)
