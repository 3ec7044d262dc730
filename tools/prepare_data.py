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
    # SegEarth-OV's remote-sensing sets (configs/_base_/datasets/rs_<key>.py; its dataset_prepare.md)
    'openearthmap': ('OpenEarthMap_wo_xBD (val.txt, <region>/images|labels/*.tif)', 'data/OpenEarthMap',
                     'val.txt images + labels (0..8, checked) -> img_dir/val, ann_dir/val'),
    'loveda': ('folder with Train.zip, Val.zip', 'data/LoveDA',
               'Rural + Urban images_png/masks_png (0..7, checked) -> img_dir/<split>, ann_dir/<split>'),
    'isaid': ('iSAID folder: val/images/*.zip (DOTA), val/Semantic_masks/images.zip', 'data/iSAID',
              'colour masks -> indices 0..15, 896x896 patches (overlap 384) -> img_dir/val, ann_dir/val'),
    'potsdam': ('folder with 2_Ortho_RGB.zip, 5_Labels_all_noBoundary.zip', 'data/potsdam',
                'colour labels -> indices 0..6, 512x512 tiles -> img_dir/<split>, ann_dir/<split>'),
    'vaihingen': ('folder with ISPRS_semantic_labeling_Vaihingen.zip and ..._ground_truth_eroded_COMPLETE.zip',
                  'data/vaihingen', 'colour labels -> indices 0..6, 512x512 tiles -> img_dir/<split>, ann_dir/<split>'),
    'uavid': ('UAVid folder with test_gt/<seq>/{Images,Labels}/*.png', 'data/UAVid',
              'colour labels -> indices 0..6 (moving car = car), 1280x1080 patches -> img_dir/test, ann_dir/test'),
    'udd5': ('the UDD5 folder of the release (<split>/src/*.JPG, <split>/gt/*.png)', 'data/UDD/UDD/UDD5',
             'nothing to convert: checks labels 0..4, copies them if DST differs'),
    'vdd': ('the VDD folder of the release (<split>/src/*.JPG, <split>/gt/*.png)', 'data/VDD',
            'nothing to convert: checks labels 0..6, copies them if DST differs'),
    'whu_aerial': ('WHU aerial folder with val/image, val/label', 'data/WHU-BD', 'masks >= 128 -> 1: val/label_cvt'),
    'whu_sat2': ("WHU Sat.II East Asia's 1.cropped (test/image, test/label)", 'data/WHU_Sat_II',
                 'masks >= 128 -> 1: test/label_cvt'),
    'inria': ('AerialImageDataset/train (images/*.tif, gt/*.tif)', 'data/Inria',
              "FCtL's splits cut 1000x1000, masks >= 128 -> 1: img_dir|ann_dir/split_{test,val}"),
    'xbd_pre': ('xBD folder with test/images, test/targets', 'data/xBD',
                'pre-disaster targets >= 1 -> 1: test/images_pre, test/targets_cvt_pre'),
    'chn6_cug': ('CHN6-CUG folder with val/images (*_sat.jpg), val/gt (*_mask.png)', 'data/CHN6-CUG',
                 'masks >= 128 -> 1: val/image_cvt, val/label_cvt'),
    'deepglobe_road': ('GlobalRoadSet_Val/DeepGlobe_test_1530 (img, gt)', 'data/GlobalRoadSet_Val/DeepGlobe_test_1530',
                       'masks >= 128 -> 1: image_cvt, label_cvt'),
    'massachusetts_road': ('GlobalRoadSet_Val/Massachusetts_test_49 (img, gt)',
                           'data/GlobalRoadSet_Val/Massachusetts_test_49', 'masks >= 128 -> 1: label_cvt'),
    'spacenet_road': ('GlobalRoadSet_Val/SpaceNet_test_567 (img, gt)', 'data/GlobalRoadSet_Val/SpaceNet_test_567',
                      'masks >= 128 -> 1: label_cvt'),
    'wbs_si': ('WaterBodiesDatasetPreprocessed (Images/*.jpg, Masks/*.jpg)', 'data/WaterBodiesDatasetPreprocessed',
               "SegEarth-OV's 499 val masks >= 128 -> 1: Masks_cvt/*.png + val.txt"),
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
                             'cityscapes, loveda, potsdam, vaihingen), validation (ade*), split_test (inria); the '
                             'benchmarks need only those '
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
