"""Make COCO-Object labels (older name of ``tools/prepare_data.py coco_object ROOT ROOT``):
``python tools/convert_coco_object.py data/coco_stuff164k [--split val2017] [--workers 4]``.

Writes ``annotations/<split>/*_instanceTrainIds.png`` from the raw COCO-Stuff maps in that
folder, or from mmseg's ``*_labelTrainIds.png`` there, as SCLIP's official converter
(unlabelled pixels become background 0).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('coco_stuff_root', help='COCO-Stuff164k root, e.g. data/coco_stuff164k')
    parser.add_argument('--split', default='val2017', help='folder under annotations/ (default: val2017)')
    parser.add_argument('--workers', type=int, default=4, help='processes in parallel (default: 4)')
    return parser


def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, REPO)
    from sclip.data_prep import prepare
    for line in prepare('coco_object', args.coco_stuff_root, args.coco_stuff_root, workers=args.workers,
                        splits=[args.split]):
        print(line)


def main(argv=None) -> None:
    run(build_parser().parse_args(argv))


if __name__ == '__main__':
    parsed = build_parser().parse_args()
    sys.path.insert(0, REPO)
    from sclip.cli import main_guard
    main_guard(lambda: run(parsed))
