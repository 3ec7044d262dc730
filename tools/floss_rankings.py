"""FLOSS's per-class template rankings for any dataset, as its ``EntropyMetric`` writes them.

    python tools/floss_rankings.py CONFIG --out FILE.json [--img-dir DIR] [--split NAME]
        [--dataset NAME] [--device cuda|cpu] [--memory-mb MB] [--cfg-options KEY=VALUE ...]

CONFIG is a NACLIP or NACLIP + FLOSS config (configs/floss/, configs/remote_sensing/floss/,
configs/naclip/); its ``model.text`` (the rankings it would read) is not used. Each image goes
through the config's pipeline and windows once; each of the 80 ImageNet templates alone classifies
the same features (sclip/floss_ranking.py). No label is read: the ranking is unsupervised. The
images are the config's test split, or every image under --img-dir (FLOSS ranked its benchmarks on
their train split; pass yours). The JSON is FLOSS's (``template_rankings_naclip_<dataset>.json``
layout), its class keys each class file line's names joined by ',' without spaces, read back by
``model.text.template_ranking.keys='class'``.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compute FLOSS's template rankings of a dataset (no labels needed).")
    parser.add_argument('config', metavar='CONFIG', help='a NACLIP or NACLIP + FLOSS config, e.g. configs/floss/ade847.py')
    parser.add_argument('--out', required=True, metavar='FILE.json', help='the ranking JSON to write (its folder is created)')
    parser.add_argument('--img-dir', metavar='DIR',
                        help="rank on every image under DIR (recursive) instead of the config's test split "
                             '(FLOSS used the train split)')
    parser.add_argument('--split', metavar='NAME',
                        help='the "split" written in the JSON (FLOSS\'s files say "train"; by default the image '
                             'folder read)')
    parser.add_argument('--dataset', metavar='NAME', help='the "dataset" written in the JSON (by default the config\'s '
                                                          'benchmark, else its file name)')
    parser.add_argument('--device', help='cuda or cpu (by default cuda when available)')
    parser.add_argument('--memory-mb', type=float, default=1024, metavar='MB',
                        help='memory for the per-template maps of one image at its original size (default: 1024)')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='config overrides, as in tools/test.py (e.g. model.clip_path=...)')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    # imported after parsing: --help and argument errors must not wait for torch/mmseg
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from sclip.cli import resolve_device
    from sclip.errors import SCLIPError
    from sclip.floss_ranking import compute_rankings, config_images, folder_images, write_json
    from sclip.logs import opencv_silent
    from sclip.options import parse_cfg_options
    from sclip.preflight import check_class_names, check_weights
    from sclip.runner import load_config
    if args.memory_mb <= 0:
        raise SCLIPError(f'--memory-mb {args.memory_mb:g}: pass a positive number of megabytes.')
    if not args.out.endswith('.json'):
        raise SCLIPError(f'--out {args.out}: the rankings are JSON; name a .json file.')
    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    cfg.model.text = None  # the rankings being computed are not read
    check_class_names(cfg)
    check_weights(cfg)
    if args.img_dir:
        images, folder = folder_images(args.img_dir), args.img_dir
    else:
        images, folder = config_images(cfg)
    device = resolve_device(args.device)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).to(device).eval()
    dataset = args.dataset or cfg.get('benchmark') or os.path.splitext(os.path.basename(args.config))[0]
    start = time.perf_counter()

    def progress(done, total, path):
        print(f'\r{done}/{total} images ({time.perf_counter() - start:.0f} s)', end='' if done < total else '\n',
              file=sys.stderr, flush=True)
    with opencv_silent():
        table = compute_rankings(model, cfg, images, dataset, args.split or folder, progress, args.memory_mb)
    write_json(table, args.out)
    print(f'{args.out}: rankings of {len(table["classes"])} classes x 80 templates over {len(images)} images')


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()  # --help and usage errors exit here, before torch and mmseg are imported
    from sclip.cli import main_guard
    main_guard(lambda: run(arguments))
