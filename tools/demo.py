"""Segment any image with any class names.

    python tools/demo.py IMAGE --classes "cat; dog; grass, lawn" [--out overlay.png]
        [--class-file FILE] [--label-map labels.png] [--config configs/demo/sclip.py]
        [--device cuda|cpu] [--cfg-options model.pretrained=ViT-B-16.pt ...]

Classes are separated by ";" and synonyms by "," (or one class a line in --class-file).
Writes the image with the predicted segments in colour and a legend of the classes found
(text ~2.5% of the image's short side; a benchmark's own colours when the classes are a
known benchmark's, else well-separated ones); --label-map also writes the raw label map
(pixel value = class index; its folder is created). One class alone (e.g. "cat, dog, grass",
three synonyms of one class) is an error: it would label every pixel.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# torch, mmseg and sclip are imported after argparse, so that --help answers at once.


def build_model(config: str, class_file: str, cfg_options, device: str):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from sclip.runner import load_config
    cfg = load_config(config, cfg_options)
    cfg.model.class_names = class_file
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    return model.to(device).eval()


def check_several_classes(names, args) -> None:
    """One class (with or without synonyms) labels every pixel with it: nothing is segmented.
    Usually commas typed where ';' separates classes ("cat, dog, grass"), so say so."""
    from sclip.errors import SCLIPError
    if names.num_classes > 1:
        return
    synonyms = names.classes[0]
    if args.classes:
        given = f'--classes {args.classes!r}'
        example = '; '.join(synonyms) if len(synonyms) > 1 else f'{synonyms[0]}; background'
        raise SCLIPError(f'{given} is one class ({", ".join(synonyms)} are its synonyms) and would label every '
                         f'pixel with it: separate classes with ";", e.g. --classes "{example}" '
                         '("," separates synonyms of one class, as in "grass, lawn").')
    raise SCLIPError(f'--class-file {args.class_file}: one class only, which would label every pixel; '
                     'write one class a line (at least two lines).')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Segment an image with free-form class names.')
    parser.add_argument('image', help='the photo to segment (JPEG, PNG, ...)')
    parser.add_argument('--classes', help='"cat; dog; grass, lawn": ";" between classes, "," between synonyms')
    parser.add_argument('--class-file', help='one class a line, synonyms separated by ", "')
    parser.add_argument('--out', default='overlay.png', help='the overlay PNG to write (default: overlay.png)')
    parser.add_argument('--label-map', help='also save the label map (class index per pixel) as this .png')
    parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'demo', 'sclip.py'),
                        help='model config (default: configs/demo/sclip.py); any method config works')
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='config overrides, as in tools/test.py')
    parser.add_argument('--verbose', action='store_true', help='show library warnings')
    args = parser.parse_args(argv)
    return args


def main(argv=None):
    run(parse_args(argv))


def run(args: argparse.Namespace) -> None:
    from sclip.logs import quiet_unless
    from sclip.progress import status_lines
    with quiet_unless(args.verbose), status_lines():
        segment(args)


def segment(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from sclip.class_names import load_class_names, parse_class_names
    from sclip.cli import resolve_device
    from sclip.errors import SCLIPError
    from sclip.options import parse_cfg_options
    from sclip.visualize import draw_segmentation, names_for_classes, palette_for_classes, save_png
    from sclip.files import check_output_name, describe_os_error
    if bool(args.classes) == bool(args.class_file):
        raise SCLIPError('pass exactly one of --classes "cat; dog" or --class-file FILE.')
    if args.class_file and not os.path.isfile(args.class_file):
        raise SCLIPError(f'--class-file {args.class_file}: file not found; pass a file with one class a line.')
    for option, path in (('--out', args.out), ('--label-map', args.label_map)):  # before the model is built
        if path is not None:
            check_output_name(option, path, ('.png',), ' (PNG is lossless: a JPEG would change class indices)')
    cfg_options = parse_cfg_options(args.cfg_options)
    try:
        image = np.array(Image.open(args.image).convert('RGB'))
    except Exception:
        raise SCLIPError(f'{args.image}: cannot be read as an image; pass a JPEG or PNG file.')
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        if args.classes:
            # "cat; dog; grass, lawn": spaces around names are the user's typing, not prompt text
            entries = [', '.join(name.strip() for name in entry.split(',')) for entry in args.classes.split(';')]
            names = parse_class_names(entries, source='--classes')
            class_file = os.path.join(tmp, 'classes.txt')
            with open(class_file, 'w') as f:
                f.write('\n'.join(', '.join(c) for c in names.classes))
        else:
            names, class_file = load_class_names(args.class_file), args.class_file
        check_several_classes(names, args)
        print(f'segmenting with {names.num_classes} classes on {device}: {", ".join(names.display_names)}',
              flush=True)
        model = build_model(args.config, class_file, cfg_options, device)
        from mmseg.apis import inference_model
        result = inference_model(model, image[..., ::-1].copy())  # mmseg pipelines take BGR arrays
    labels = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
    legend = names_for_classes(names.classes)
    picture = draw_segmentation(image, labels, legend, palette_for_classes(names.classes))
    found = [legend[c] for c in np.unique(labels)]
    try:  # a read-only or full disk is one line naming the file, not an errno
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        save_png(picture, args.out, found)
    except OSError as error:
        raise describe_os_error(error, args.out, 'the overlay', '--out') from None
    if args.label_map:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(args.label_map)), exist_ok=True)
            Image.fromarray(labels.astype(np.uint8 if names.num_classes <= 256 else np.uint16)).save(args.label_map)
        except OSError as error:
            raise describe_os_error(error, args.label_map, 'the label map', '--label-map') from None
    print(f'wrote {args.out} ({image.shape[1]}x{image.shape[0]}); classes found: {", ".join(found)}')


if __name__ == '__main__':
    arguments = parse_args()  # --help and usage errors exit here, before torch is imported
    from sclip.cli import main_guard
    main_guard(lambda: run(arguments))
