"""See the whole harness work with nothing downloaded: ``python tools/try_it.py [--config CONFIG]
[--images 4] [--work-dir work_dirs/try_it]``.

Writes a random (untrained) CLIP in OpenAI's checkpoint layout and a generated dataset in the
config's benchmark layout (sclip/synthetic.py), then evaluates the config on them exactly as
``tools/test.py`` does: weights loaded, class names encoded, images segmented window by window,
mmseg's per-class table, ``metrics.json`` with its identity, the label maps (``--out``) and the
pictures (``--show-dir``). About a minute on a laptop CPU. The numbers it prints are
MEANINGLESS (random weights on random images): it only shows that everything runs here.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BANNER = ('!' * 78 + '\n'
          '!! SYNTHETIC RUN: a random, untrained CLIP on generated images. Every number below\n'
          '!! is MEANINGLESS; it only shows that the harness runs end to end on this machine.\n'
          + '!' * 78)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run the whole pipeline on a random CLIP and a generated '
                                                 'dataset (nothing downloaded; the numbers are meaningless).')
    parser.add_argument('--config', default='configs/sclip_voc21.py',
                        help='any benchmark config (default: configs/sclip_voc21.py)')
    parser.add_argument('--images', type=int, default=4, help='how many images to generate (default: 4)')
    parser.add_argument('--work-dir', default=os.path.join('work_dirs', 'try_it'),
                        help='where the data, weights and results go (default: work_dirs/try_it)')
    parser.add_argument('--verbose', action='store_true', help="mmengine's dumps and library warnings")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from sclip.logs import quiet_unless
    from sclip.progress import status_lines
    with quiet_unless(args.verbose), status_lines():
        return try_it(args)


def try_it(args: argparse.Namespace) -> dict:
    from sclip.errors import SCLIPError
    from sclip.files import ensure_writable
    from sclip.logs import quiet_config
    from sclip.progress import status
    from sclip.runner import load_config, run_test
    from sclip.synthetic import LAYOUTS, make_dataset, write_openai_checkpoint
    if not 1 <= args.images <= 100:
        raise SCLIPError(f'--images {args.images}: pass 1 to 100.')
    cfg = load_config(args.config)
    benchmark = cfg.get('benchmark')
    if benchmark not in LAYOUTS:
        raise SCLIPError(f'{args.config}: benchmark {benchmark!r} has no synthetic layout; pass one of the '
                         f'benchmark configs (configs/sclip_<benchmark>.py: {", ".join(LAYOUTS)}).')
    work = os.path.abspath(args.work_dir)
    ensure_writable(work)
    print(BANNER, flush=True)
    status(f'writing a random CLIP ({cfg.model.get("arch")}-shaped, tiny) and {args.images} generated '
           f'{benchmark} images under {work}')
    weights = write_openai_checkpoint(os.path.join(work, 'random-clip-NOT-TRAINED.pt'))
    sizes = [(160 + 24 * (i % 4), 120 + 16 * (i % 3)) for i in range(args.images)]
    root = make_dataset(benchmark, os.path.join(work, 'data'), sizes=sizes)
    overrides = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': root,
                 'test_dataloader.num_workers': 0, 'model.text_cache_dir': os.path.join(work, 'text_cache')}
    cfg = load_config(args.config, overrides, os.path.join(work, 'run'))
    if not args.verbose:
        quiet_config(cfg)
    out, show = os.path.join(work, 'run', 'predictions'), os.path.join(work, 'run', 'pictures')
    metrics = run_test(cfg, out_dir=out, show_dir=show, overrides=overrides)
    print(BANNER)
    print(f"mIoU {metrics['mIoU']:.2f}  aAcc {metrics['aAcc']:.2f}  mAcc {metrics['mAcc']:.2f}  (MEANINGLESS: "
          'random weights, random images)')
    print(f"wrote {os.path.join(cfg.work_dir, 'metrics.json')}, label maps in {out}, pictures in {show}")
    print('next: download the weights and a dataset (README: Weights, Data) and run tools/test.py CONFIG')
    return metrics


def main(argv=None) -> dict:
    return run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    main_guard(lambda: run(arguments))
