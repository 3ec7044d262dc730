"""Make COCO-Object labels from COCO-Stuff164k: ``python tools/convert_coco_object.py
data/coco_stuff164k [--split val2017] [--workers 4]``.

Run mmseg's ``coco_stuff164k.py`` converter first (it writes ``*_labelTrainIds.png``);
this writes ``annotations/<split>/*_instanceTrainIds.png`` beside them.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sclip.cli import main_guard  # noqa: E402
from sclip.coco_object import STUFF_SUFFIX, convert_folder  # noqa: E402
from sclip.errors import SCLIPError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('coco_stuff_root', help='e.g. data/coco_stuff164k')
    parser.add_argument('--split', default='val2017')
    parser.add_argument('--workers', type=int, default=4)
    args = parser.parse_args(argv)
    folder = osp.join(args.coco_stuff_root, 'annotations', args.split)
    if not osp.isdir(folder):
        raise SCLIPError(f'{folder!r} not found; pass the COCO-Stuff164k root (with annotations/{args.split}).')
    written = convert_folder(folder, args.workers)
    if not written:
        raise SCLIPError(f'no *{STUFF_SUFFIX} in {folder!r}; run mmseg\'s tools/dataset_converters/'
                         'coco_stuff164k.py first.')
    print(f'wrote {len(written)} COCO-Object label maps to {folder}')


if __name__ == '__main__':
    main_guard(main)
