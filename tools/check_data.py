"""Verify datasets before a long run: ``python tools/check_data.py CONFIG [CONFIG ...]
[--cfg-options test_dataloader.dataset.data_root=DIR] [--no-count]``.

Checks that the folders and split exist, that the image count equals the official split
size (the config's ``expected_images``; --no-count skips it), that every image has its
label, that label values lie in the class range or are 255, and that image and label
sizes agree. Prints one line per problem, naming the file, and exits 1 if any.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sclip.cli import main_guard  # noqa: E402
from sclip.data_check import check_dataset  # noqa: E402
from sclip.runner import DictAction, load_config  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description='Verify benchmark datasets.')
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--no-count', action='store_true', help='do not compare with the official split size')
    parser.add_argument('--max-problems', type=int, default=50, help='lines printed per config')
    args = parser.parse_args(argv)
    failed = False
    for config in args.configs:
        cfg = load_config(config, args.cfg_options)
        expected = None if args.no_count else cfg.get('expected_images')
        problems = check_dataset(cfg, deep=True, expected_count=expected)
        if problems:
            failed = True
            for problem in problems[:args.max_problems]:
                print(f'{config}: {problem}')
            if len(problems) > args.max_problems:
                print(f'{config}: ... and {len(problems) - args.max_problems} more problems')
        else:
            print(f'{config}: OK')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main_guard(main)
