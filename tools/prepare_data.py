"""Prepare a benchmark's data: ``python tools/prepare_data.py BENCHMARK SRC DST [--workers N]
[--splits S ...]``.

SRC is where the downloads were unpacked, DST the config's data_root (it may be SRC). The
converters live in ``sclip/data_prep/``; data/README.md gives the downloads and commands.
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# benchmark: (what SRC holds, the DST the configs read, what is done)
BENCHMARKS = {
    'voc': ('unpacked VOCtrainval_11-May-2012.tar', 'data/VOCdevkit/VOC2012',
            'nothing to convert: checks the segmentation splits, copies them if DST differs'),
    'context': ('unpacked PASCAL-Context trainval.tar.gz (trainval/*.mat, labels.txt)', 'data/VOCdevkit/VOC2010',
                '459-class .mat -> SegmentationClassContext/*.png (60 classes) + split files'),
    'coco_stuff164k': ('stuffthingmaps_trainval2017 PNGs in annotations/<split>/ or <split>/', 'data/coco_stuff164k',
                       'raw ids -> annotations/<split>/*_labelTrainIds.png (171 classes)'),
    'coco_stuff10k': ('unzipped cocostuff-10k-v1.1', 'data/coco_stuff10k',
                      '.mat -> annotations/{train,test}2014/*_labelTrainIds.png, images copied'),
    'coco_object': ('COCO-Stuff164k: raw maps or *_labelTrainIds.png in annotations/<split>/', 'data/coco_stuff164k',
                    '-> annotations/<split>/*_instanceTrainIds.png (81 classes, as official SCLIP)'),
    'cityscapes': ('folder with gtFine/ (and leftImg8bit/)', 'data/cityscapes',
                   'polygons .json or labelIds .png -> *_gtFine_labelTrainIds.png (19 classes)'),
    'ade20k': ('unzipped ADEChallengeData2016.zip', 'data/ade/ADEChallengeData2016',
               'nothing to convert: checks images/labels, copies them if DST differs'),
    'ade847': ('unzipped ADE20K_2021_17_01.zip (index_ade20k.pkl, images/ADE/...)', 'data/ADE20K_2021_17_01',
               '_seg.png -> images_detectron2/ + annotations_detectron2/<split>/*.tif (847 classes, as MaskFormer)'),
    'context459': ('unpacked PASCAL-Context trainval.tar.gz (trainval/*.mat, labels.txt)', 'data/VOCdevkit/VOC2010',
                   '459-class .mat -> annotations_detectron2/pc459_val/*.tif (val, as CAT-Seg)'),
}


def build_parser() -> argparse.ArgumentParser:
    epilog = 'benchmarks (SRC -> DST: what is done):\n' + '\n'.join(
        f'  {name:15s} {src}\n  {"":15s}   -> {dst}: {what}' for name, (src, dst, what) in BENCHMARKS.items())
    description = ("Convert (or check) a benchmark's downloads into the layout its config reads.\n"
                   "SRC is where the downloads were unpacked, DST the config's data_root (it may be SRC).\n"
                   'Downloads and commands: data/README.md.')
    parser = argparse.ArgumentParser(description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('benchmark', choices=list(BENCHMARKS), help='which dataset to prepare')
    parser.add_argument('src', help='folder where the downloads were unpacked (see below)')
    parser.add_argument('dst', help="the config's data_root to write (may equal SRC), e.g. data/coco_stuff164k")
    parser.add_argument('--workers', type=int, default=4, help='processes converting files in parallel (default: 4)')
    parser.add_argument('--splits', nargs='+', default=None, metavar='SPLIT',
                        help='only these splits, e.g. val2017 (coco), test2014 (coco_stuff10k), val (voc, context*, '
                             'cityscapes), validation (ade*); the benchmarks need only those '
                             '(default: every split found)')
    return parser


def run(args: argparse.Namespace) -> None:
    """Heavy imports happen here, after parsing, so ``--help`` answers at once."""
    sys.path.insert(0, REPO)
    from sclip.data_prep import prepare
    from sclip.errors import SCLIPError
    if args.workers < 1:
        raise SCLIPError(f'--workers {args.workers}: pass at least 1 process.')
    for line in prepare(args.benchmark, args.src, args.dst, workers=args.workers, splits=args.splits):
        print(line)


def main(argv=None) -> None:
    run(build_parser().parse_args(argv))


if __name__ == '__main__':
    parsed = build_parser().parse_args()  # --help and usage errors exit here
    sys.path.insert(0, REPO)
    from sclip.cli import main_guard
    main_guard(lambda: run(parsed))
