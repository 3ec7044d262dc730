"""Verify datasets before a long run: ``python tools/check_data.py CONFIG [CONFIG ...]
[--cfg-options test_dataloader.dataset.data_root=DIR] [--no-count] [--max-problems N]``.

Checks that the folders and split exist, that the image count equals the official split
size (the config's ``expected_images``; --no-count skips it), and decodes every image and
label with the checks of the run's loaders: missing, empty, truncated or undecodable files,
labels that are not one channel, label values outside the class range (255 = ignored),
label and image sizes that differ (EXIF orientation included), images thinner than one ViT
patch after the config's Resize, and COCO-Object labels of an old converter.

Output, as the other tools: one ``error: CONFIG: ...`` line per problem and ``note: CONFIG: ...``
lines on stderr (each names the config it belongs to), one summary line per clean config on stdout; exit code 2 when any problem, else 0.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Verify benchmark datasets before a run.')
    parser.add_argument('configs', nargs='+', metavar='CONFIG', help='one or more configs, e.g. configs/sclip_*.py')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='config overrides, as in tools/test.py')
    parser.add_argument('--no-count', action='store_true', help='do not compare with the official split size')
    parser.add_argument('--max-problems', type=int, default=50, metavar='N', help='lines printed per config (default: 50)')
    args = parser.parse_args(argv)
    return args


def run(args: argparse.Namespace) -> None:
    from sclip.logs import opencv_silent
    with opencv_silent():  # our line names the corrupt file; OpenCV's own log lines say no more
        review(args)


def review(args: argparse.Namespace) -> None:
    # imported here, after parsing: --help and argument errors must not wait for torch/mmseg
    from sclip.data_check import review_dataset
    from sclip.options import parse_cfg_options
    from sclip.errors import SCLIPError
    from sclip.runner import load_config
    if args.max_problems < 1:
        raise SCLIPError(f'--max-problems {args.max_problems}: pass at least 1.')
    args.cfg_options = parse_cfg_options(args.cfg_options)
    failed = False
    for config in args.configs:
        cfg = load_config(config, args.cfg_options)
        expected = None if args.no_count else cfg.get('expected_images')
        report = review_dataset(cfg, deep=True, expected_count=expected)
        for note in report.notes[:args.max_problems]:
            print(f'note: {config}: {note}', file=sys.stderr)
        if len(report.notes) > args.max_problems:
            print(f'note: {config}: ... and {len(report.notes) - args.max_problems} more notes', file=sys.stderr)
        for problem in report.problems[:args.max_problems]:
            print(f'error: {config}: {problem}', file=sys.stderr)
        if len(report.problems) > args.max_problems:
            print(f'error: {config}: ... and {len(report.problems) - args.max_problems} more problems',
                  file=sys.stderr)
        failed = failed or bool(report.problems)
        if not report.problems:
            notes = f', {len(report.notes)} notes' if report.notes else ''
            print(f'{config}: OK ({report.pairs} images checked{notes})')
    sys.exit(2 if failed else 0)


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()  # --help and usage errors exit here, before torch and mmseg are imported
    from sclip.cli import main_guard
    main_guard(lambda: run(arguments))
