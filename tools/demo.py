"""Segment any image with any class names.

    python tools/demo.py IMAGE --classes "cat; dog; grass, lawn" [--out overlay.png]
        [--class-file FILE] [--label-map labels.png] [--config configs/sclip_demo.py]
        [--device cuda|cpu] [--cfg-options model.pretrained=ViT-B-16.pt ...]

Classes are separated by ";" and synonyms by "," (or one class a line in --class-file).
Writes the image with the predicted segments in colour and a legend of the classes found;
--label-map also writes the raw label map (pixel value = class index).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sclip.class_names import load_class_names, parse_class_names  # noqa: E402
from sclip.cli import main_guard  # noqa: E402
from sclip.errors import SCLIPError  # noqa: E402
from sclip.runner import DictAction, load_config  # noqa: E402
from sclip.visualize import draw_segmentation, save_png  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_model(config: str, class_file: str, cfg_options, device: str):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = load_config(config, cfg_options)
    cfg.model.class_names = class_file
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    return model.to(device).eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description='Segment an image with free-form class names.')
    parser.add_argument('image')
    parser.add_argument('--classes', help='"cat; dog; grass, lawn": ";" between classes, "," between synonyms')
    parser.add_argument('--class-file', help='one class a line, synonyms separated by ", "')
    parser.add_argument('--out', default='overlay.png')
    parser.add_argument('--label-map', help='also save the label map (class index per pixel) here')
    parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'sclip_demo.py'))
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if bool(args.classes) == bool(args.class_file):
        raise SCLIPError('pass exactly one of --classes "cat; dog" or --class-file FILE.')
    try:
        image = np.array(Image.open(args.image).convert('RGB'))
    except Exception:
        raise SCLIPError(f'{args.image}: cannot be read as an image; pass a JPEG or PNG file.')
    with tempfile.TemporaryDirectory() as tmp:
        if args.classes:
            names = parse_class_names(args.classes.split(';'), source='--classes')
            class_file = os.path.join(tmp, 'classes.txt')
            with open(class_file, 'w') as f:
                f.write('\n'.join(', '.join(c) for c in names.classes))
        else:
            names, class_file = load_class_names(args.class_file), args.class_file
        model = build_model(args.config, class_file, args.cfg_options, args.device)
        from mmseg.apis import inference_model
        result = inference_model(model, image[..., ::-1].copy())  # mmseg pipelines take BGR arrays
    labels = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
    picture = draw_segmentation(image, labels, names.display_names, model.dataset_meta['palette'])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_png(picture, args.out, [names.display_names[c] for c in np.unique(labels)])
    if args.label_map:
        Image.fromarray(labels.astype(np.uint8 if names.num_classes <= 256 else np.uint16)).save(args.label_map)
    found = ', '.join(names.display_names[c] for c in np.unique(labels))
    print(f'wrote {args.out} ({image.shape[1]}x{image.shape[0]}); classes found: {found}')


if __name__ == '__main__':
    main_guard(main)
