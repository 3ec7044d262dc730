"""One self-contained HTML page (report.html) of finished runs and sweeps.

    python tools/report.py work_dirs/methods work_dirs/voc --out report.html

Every metrics.json under the folders becomes a cell of the mIoU table (with the expected
number, its source and the difference; runs are one cell only when their fingerprints are
equal), per-class IoU per benchmark (bars, or a heat-map table for many runs), a grid of predictions for a
few images when the runs saved them (tools/test.py --out), and each run's identity
(weights, config and overrides, data, code and library versions).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write one self-contained HTML report of finished runs.')
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR', help='folders searched for metrics.json')
    parser.add_argument('--out', default='report.html', help='the HTML file to write (default: report.html)')
    parser.add_argument('--images', type=int, default=4, metavar='N',
                        help='images in the predictions grid of each benchmark (0: no grid; default 4)')
    parser.add_argument('--title', default='sclip report', help='page title (default: "sclip report")')
    parser.add_argument('--per-class', choices=('auto', 'bars', 'heatmap'), default='auto',
                        help='per-class IoU as bars or as a heat-map table (default: auto, bars for up to '
                             '4 runs of a benchmark, the table beyond)')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    # imported here, after parsing: --help and argument errors must not wait for torch/mmseg
    from sclip.errors import SCLIPError
    from sclip.report import write_report
    if args.images < 0:
        raise SCLIPError(f'--images {args.images}: pass a number of images >= 0.')
    count = write_report(args.work_dirs, args.out, args.images, args.title, args.per_class,
                         warn=lambda message: print(f'warning: {message}', file=sys.stderr))
    print(f'{args.out}: {count} run{"s" * (count != 1)}')


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: run(arguments))
