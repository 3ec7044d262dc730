"""The paper's key figure: last-block attention of chosen query points, per variant.

    python tools/visualize_attention.py IMAGE --points 120,80 200,150 \\
        [--variants vanilla csa maskclip ...] [--out attention.png] [--size 224]
        [--cfg-options model.pretrained=ViT-B-16.pt]

The model sees the image resized to SIZE x SIZE (the model's input size by default). For
each query point (X,Y in pixels of IMAGE) the head-averaged attention of its patch over all
patches is upsampled bilinearly to the image and drawn as a heat map over the photo (scaled
to each panel's own min..max), at the image's aspect ratio: one row per point, the photo
first, then CLIP's own (vanilla) attention next to CSA's and any other registered variant.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# torch, mmseg and sclip are imported after argparse, so that --help answers at once.


def parse_point(text: str):
    from sclip.errors import SCLIPError
    try:
        x, y = (float(v) for v in text.split(','))
        return x, y
    except ValueError:
        raise SCLIPError(f'--points {text!r}: write each point as X,Y in pixels of the input image.')


def check_inside(texts, points, width: int, height: int, image_path: str) -> None:
    """Every point must lie on the image: 0 <= X < width, 0 <= Y < height."""
    from sclip.errors import SCLIPError
    for text, (x, y) in zip(texts, points):
        if not (0 <= x < width and 0 <= y < height):
            raise SCLIPError(f'--points {text}: ({x:g}, {y:g}) is outside {image_path}, which is '
                             f'{width}x{height} pixels (width x height); pass X in [0, {width}) '
                             f'and Y in [0, {height}).')


def attention_maps(visual, image, variants, points_xy, size):
    """(points, variants, gh, gw) head-averaged attention maps of the last block."""
    import numpy as np

    from sclip.models.backbone import CLIPDenseViT
    from sclip.visualize import query_attention
    maps = []
    for spec in variants:
        backbone = CLIPDenseViT(visual, spec)
        grid = (image.shape[-2] // backbone.patch_size[0], image.shape[-1] // backbone.patch_size[1])
        weights = backbone.attention_maps(image)[0]
        maps.append([query_attention(weights, grid, p, size) for p in points_xy])
    return np.array(maps).transpose(1, 0, 2, 3)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Attention maps of query points, per attention variant.')
    parser.add_argument('image', help='the photo (JPEG, PNG, ...)')
    parser.add_argument('--points', nargs='+', required=True, help='X,Y pixel coordinates in the image')
    parser.add_argument('--variants', nargs='+', default=['vanilla', 'csa'],
                        help='registered attention variants (sclip/models/attention.py), e.g. vanilla csa maskclip '
                             '(default: vanilla csa)')
    parser.add_argument('--out', default='attention.png', help='the figure to write (default: attention.png)')
    parser.add_argument('--size', type=int, help="side of the square model input (default: the model's)")
    parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'demo', 'sclip.py'),
                        help='model config (default: configs/demo/sclip.py)')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='config overrides, as in tools/test.py')
    parser.add_argument('--verbose', action='store_true', help='show library warnings')
    args = parser.parse_args(argv)
    return args


def main(argv=None):
    run(parse_args(argv))


def run(args: argparse.Namespace) -> None:
    from sclip.logs import quiet_unless
    with quiet_unless(args.verbose):
        draw(args)


def draw(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from sclip.errors import SCLIPError
    from sclip.models.attention import ATTENTIONS
    from sclip.models.clip_loader import load_clip
    from sclip.models.segmentor import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    from sclip.files import check_output_name, describe_os_error
    from sclip.models.segmentor import resolve_weights
    from sclip.options import parse_cfg_options
    from sclip.runner import load_config
    from sclip.visualize import attention_figure, save_png
    unknown = [v for v in args.variants if v not in ATTENTIONS]
    if unknown:
        raise SCLIPError(f'--variants: {unknown[0]!r} is not registered ({", ".join(sorted(ATTENTIONS))}).')
    try:
        picture = Image.open(args.image).convert('RGB')
    except Exception:
        raise SCLIPError(f'{args.image}: cannot be read as an image; pass a JPEG or PNG file.')
    points = [parse_point(p) for p in args.points]
    check_inside(args.points, points, picture.width, picture.height, args.image)
    if args.size is not None and args.size < 1:
        raise SCLIPError(f'--size {args.size}: pass a positive input side in pixels, e.g. 224.')
    check_output_name('--out', args.out, ('.png',))
    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    weights = resolve_weights(cfg.model.get('clip_path'), cfg.model.get('pretrained'))
    visual = load_clip(weights, cfg.model.get('arch'), cfg.model.get('clip_format', 'auto')).visual
    size = args.size or visual.image_size[0]
    patch = visual.conv1.kernel_size[0]
    if size < patch:
        raise SCLIPError(f'--size {size} is smaller than one {patch}-pixel patch; pass at least {patch}.')
    scaled = [(x * size / picture.width, y * size / picture.height) for x, y in points]
    array = np.array(picture.resize((size, size), Image.BICUBIC))
    mean, std = torch.tensor(OPENAI_CLIP_MEAN).view(3, 1, 1), torch.tensor(OPENAI_CLIP_STD).view(3, 1, 1)
    tensor = ((torch.from_numpy(array).permute(2, 0, 1).float() - mean) / std)[None]
    with torch.no_grad():
        maps = attention_maps(visual, tensor, args.variants, scaled, (size, size))
    figure, text = attention_figure(np.array(picture), points, args.variants, maps)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        save_png(figure, args.out, text=text)
    except OSError as error:
        raise describe_os_error(error, args.out, 'the figure', '--out') from None
    print(f'wrote {args.out}: {len(points)} point(s) x {len(args.variants)} variant(s)')


if __name__ == '__main__':
    arguments = parse_args()  # --help and usage errors exit here, before torch is imported
    from sclip.cli import main_guard
    main_guard(lambda: run(arguments))
