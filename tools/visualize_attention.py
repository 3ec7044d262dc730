"""The paper's key figure: last-block attention of chosen query points, per variant.

    python tools/visualize_attention.py IMAGE --points 120,80 200,150 \\
        [--variants vanilla csa maskclip ...] [--out attention.png] [--size 224]
        [--cfg-options model.pretrained=ViT-B-16.pt]

The image is resized to SIZE x SIZE (the model's input size by default); for each query
point the head-averaged attention of its patch over all patches is shown, CLIP's own
(vanilla) next to CSA's and any other registered variant, in one PNG grid.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from sclip.cli import main_guard  # noqa: E402
from sclip.errors import SCLIPError  # noqa: E402
from sclip.models.attention import ATTENTIONS  # noqa: E402
from sclip.models.backbone import CLIPDenseViT  # noqa: E402
from sclip.models.clip_loader import load_clip  # noqa: E402
from sclip.models.segmentor import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD  # noqa: E402
from sclip.runner import DictAction, load_config  # noqa: E402
from sclip.visualize import attention_grid_figure, query_attention  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_point(text: str):
    try:
        x, y = (float(v) for v in text.split(','))
        return x, y
    except ValueError:
        raise SCLIPError(f'--points {text!r}: write each point as X,Y in pixels of the input image.')


def attention_maps(visual, image: torch.Tensor, variants, points_xy, size) -> np.ndarray:
    """(points, variants, gh, gw) head-averaged attention maps of the last block."""
    maps = []
    for spec in variants:
        backbone = CLIPDenseViT(visual, spec)
        grid = (image.shape[-2] // backbone.patch_size[0], image.shape[-1] // backbone.patch_size[1])
        weights = backbone.attention_maps(image)[0]
        maps.append([query_attention(weights, grid, p, size) for p in points_xy])
    return np.array(maps).transpose(1, 0, 2, 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Attention maps of query points, per attention variant.')
    parser.add_argument('image')
    parser.add_argument('--points', nargs='+', required=True, help='X,Y pixel coordinates in the image')
    parser.add_argument('--variants', nargs='+', default=['vanilla', 'csa'],
                        help=f'registered attention variants: {", ".join(sorted(ATTENTIONS))}')
    parser.add_argument('--out', default='attention.png')
    parser.add_argument('--size', type=int, help="side of the square input (default: the model's)")
    parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'sclip_demo.py'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in ATTENTIONS]
    if unknown:
        raise SCLIPError(f'--variants: {unknown[0]!r} is not registered ({", ".join(sorted(ATTENTIONS))}).')
    try:
        picture = Image.open(args.image).convert('RGB')
    except Exception:
        raise SCLIPError(f'{args.image}: cannot be read as an image; pass a JPEG or PNG file.')
    cfg = load_config(args.config, args.cfg_options)
    visual = load_clip(cfg.model.pretrained, cfg.model.get('arch'), cfg.model.get('clip_format', 'auto')).visual
    size = args.size or visual.image_size[0]
    points = [parse_point(p) for p in args.points]
    scaled = [(x * size / picture.width, y * size / picture.height) for x, y in points]
    array = np.array(picture.resize((size, size), Image.BICUBIC))
    mean, std = torch.tensor(OPENAI_CLIP_MEAN).view(3, 1, 1), torch.tensor(OPENAI_CLIP_STD).view(3, 1, 1)
    tensor = ((torch.from_numpy(array).permute(2, 0, 1).float() - mean) / std)[None]
    with torch.no_grad():
        maps = attention_maps(visual, tensor, args.variants, scaled, (size, size))
    upsampled = F.interpolate(torch.from_numpy(maps).float(), size=(size, size), mode='nearest').numpy()
    attention_grid_figure(array, scaled, args.variants, upsampled, args.out)
    print(f'wrote {args.out}: {len(points)} point(s) x {len(args.variants)} variant(s)')


if __name__ == '__main__':
    main_guard(main)
