"""Every method on your own image, side by side, in the browser (a local Gradio page).

    python tools/web_demo.py [--port 7860] [--host 127.0.0.1] [--weights DIR] [--clip FILE_OR_TAG]
        [--random-weights] [--device cuda|cpu]

Upload an image (or take the bundled example), type class names comma separated (or pick a
benchmark's vocabulary), tick methods, and get per method the overlay with its legend, the area of
each class, the time taken and the label map (PNG, pixel = class index). Every method of the
harness is offered (sclip/side_by_side.py reads them from configs/_base_/ and the method registry)
with its benchmark-free defaults; the knobs apply to all ticked methods. Weights: --clip (or the
page's field), else ViT-B-16.pt in --weights DIR (and the foundation models' official files), else
open_clip's cache, as tools/test.py finds them. --random-weights uses tiny random models: the page
works offline, but its predictions mean nothing (tests). The page loads nothing from the internet.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, 'docs', 'web_demo_example.png')
EXAMPLE_CLASSES = 'background, sky, grass, house, tree, sun, road'
TYPED = '(the class names typed above)'
RANDOM_BANNER = ('**RANDOM WEIGHTS: every prediction on this page is meaningless.** Started with '
                 '`--random-weights` (tiny random CLIP and foundation models, for tests and offline trials).')
# Gradio must not phone home: set before it is imported (analytics, version check, telemetry).
OFFLINE_ENV = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_DISABLE_TELEMETRY': '1', 'DO_NOT_TRACK': '1',
               'GRADIO_SSR_MODE': 'False'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Every method on your own image, side by side, in the browser.')
    parser.add_argument('--port', type=int, default=7860, help='port to serve on (default: 7860)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to serve on (default: 127.0.0.1, this machine only)')
    parser.add_argument('--weights', metavar='DIR',
                        help='folder of downloaded weights: ViT-B-16.pt (README "Weights") and the foundation '
                             "models' official files; default: open_clip's cache")
    parser.add_argument('--clip', metavar='FILE_OR_TAG', help='CLIP weights for every method (the page can change it)')
    parser.add_argument('--random-weights', action='store_true',
                        help='tiny random models: works offline, predictions are MEANINGLESS (tests)')
    parser.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--verbose', action='store_true', help='show library warnings')
    args = parser.parse_args(argv)
    if args.weights is not None and not os.path.isdir(args.weights):
        parser.error(f'--weights {args.weights}: not a folder; pass the folder holding ViT-B-16.pt.')
    return args


def read_image(path):
    """(RGB array, note) of an uploaded file; a non-image is one line (SCLIPError)."""
    import numpy as np
    from PIL import Image

    from sclip.errors import SCLIPError
    from sclip.side_by_side import prepare_image
    name = os.path.basename(path or '')
    try:
        with Image.open(path) as image:
            array = np.array(image.convert('RGB'))
    except Exception:
        raise SCLIPError(f'{name}: not an image (or a damaged one); upload a PNG, JPEG, WebP, BMP or TIFF '
                         'file.') from None
    return prepare_image(array)


def optional_number(value, name: str, kind=float):
    from sclip.errors import SCLIPError
    if value is None or value == '':
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SCLIPError(f'{name}={value!r} is not a number; leave it empty for each method\'s default.') from None


def legend_markdown(names, palette, present) -> str:
    return ' '.join(f'<span style="background: rgb{tuple(palette[c])}; padding: 0 0.6em; margin-right: 0.2em">'
                    f'&nbsp;</span>{names[c]}' for c in present)


def build_app(args: argparse.Namespace):
    """The page (a ``gr.Blocks``) and the ``SideBySide`` runner behind it."""
    os.environ.update({k: os.environ.get(k, v) for k, v in OFFLINE_ENV.items()})
    import tempfile

    import gradio as gr
    import numpy as np
    from PIL import Image

    from sclip.class_names import load_class_names
    from sclip.cli import resolve_device
    from sclip.errors import SCLIPError
    from sclip.logs import quiet_unless
    from sclip.side_by_side import (DEFAULT_SHORT_SIDE, Knobs, SideBySide, Weights, method_catalogue,
                                    parse_typed_classes, random_clip, vocabularies)
    from sclip.visualize import draw_segmentation, names_for_classes, palette_for_classes

    outputs_dir = tempfile.mkdtemp(prefix='sclip-web-demo-')
    # gradio's file cache of this server alone (its default, /tmp/gradio, is shared by every gradio process)
    os.environ.setdefault('GRADIO_TEMP_DIR', os.path.join(outputs_dir, 'gradio'))
    clip = args.clip
    if args.random_weights and not clip:
        clip = random_clip(os.path.join(outputs_dir, 'random-weights'))
    weights = Weights(clip=clip, folder=args.weights, random=args.random_weights)
    runner = SideBySide(weights, resolve_device(args.device))
    entries = method_catalogue()
    vocab = vocabularies()
    request_count = [0]

    def preview(path):
        if not path:
            return None, ''
        try:
            image, note = read_image(path)
        except SCLIPError as error:
            return None, f'error: {error}'
        return image, note

    def segment(path, typed, vocabulary, chosen, clip_field, short_side, window, stride, prob_thd, area_thd,
                pamr_steps, progress=gr.Progress()):
        panels = {entry.key: [gr.update(visible=False), '', None, None] for entry in entries}

        def frame(status, table=None):
            """The outputs; a panel is sent once after each change (re-sending a shown picture would
            rewrite gradio's cached file while the browser may still be reading it)."""
            flat = [status]
            for entry in entries:
                flat += panels[entry.key]
                panels[entry.key] = [gr.update()] * 4  # unchanged until set again
            return flat + [table]
        try:
            if not path:
                raise SCLIPError('no image: upload one or click the example.')
            image, note = read_image(path)
            if vocabulary and vocabulary != TYPED:
                classes = load_class_names(vocab[vocabulary]).classes
            else:
                classes = parse_typed_classes(typed)
            picked = [entry for entry in entries if entry.name in (chosen or [])]
            if not picked:
                raise SCLIPError('no method ticked: tick at least one.')
            knobs = Knobs(short_side=optional_number(short_side, 'short side', int) or DEFAULT_SHORT_SIDE,
                          window=optional_number(window, 'window', int), stride=optional_number(stride, 'stride', int),
                          prob_thd=optional_number(prob_thd, 'probability threshold'),
                          area_thd=optional_number(area_thd, 'area threshold'),
                          pamr_steps=optional_number(pamr_steps, 'PAMR steps', int))
        except SCLIPError as error:
            yield frame(f'error: {error}')
            return
        runner.weights.clip = (clip_field or '').strip() or clip
        names = names_for_classes(classes)
        palette = palette_for_classes(classes)
        request_count[0] += 1
        folder = os.path.join(outputs_dir, f'request-{request_count[0]}')
        os.makedirs(folder, exist_ok=True)
        status = (note + ' ' if note else '') + f'{image.shape[1]}x{image.shape[0]}, {len(classes)} classes, ' \
                                                f'{len(picked)} methods.'
        areas, table = {}, []
        for entry in picked:
            panels[entry.key] = [gr.update(visible=True), f'### {entry.name}\nwaiting...', None, None]
        yield frame(status + ' Running...')
        with quiet_unless(args.verbose):
            for result in runner.run(image, classes, picked, knobs, lambda f, desc: progress(f, desc=desc)):
                key = result.entry.key
                if result.error:
                    message = f'### {result.entry.name}\nerror: {result.error}'
                    panels[key] = [gr.update(visible=True), message, None, None]
                else:
                    present = [int(c) for c in np.unique(result.labels)]
                    picture = draw_segmentation(image, result.labels, names, palette)
                    label_path = os.path.join(folder, f'{key}_labels.png')
                    dtype = np.uint8 if len(classes) <= 256 else np.uint16
                    Image.fromarray(result.labels.astype(dtype)).save(label_path)
                    fractions = result.areas(len(classes))
                    areas[result.entry.name] = fractions
                    title = (f'### {result.entry.name}\n{result.seconds:.2f} s'
                             f'{" (random weights: meaningless)" if args.random_weights else ""}\n\n'
                             + legend_markdown(names, palette, present))
                    panels[key] = [gr.update(visible=True), title, picture, label_path]
                table = [[names[c]] + [f'{100 * areas[m][c]:.1f}' for m in areas] for c in range(len(classes))
                         if any(areas[m][c] > 0 for m in areas)]
                yield frame(status, {'headers': ['class (area %)'] + list(areas), 'data': table} if areas else None)
        yield frame(status + ' Done.', {'headers': ['class (area %)'] + list(areas), 'data': table} if areas else None)

    with gr.Blocks(title='sclip: every method on your image') as app:
        gr.Markdown('# Every method on your image\nTraining-free CLIP segmentation, side by side '
                    '(each method of this harness with its own default settings; nothing leaves this machine).')
        if args.random_weights:
            gr.Markdown(RANDOM_BANNER, elem_id='random-banner')
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label='Image (PNG, JPEG, ...)', elem_id='image-file')
                shown = gr.Image(label='Your image', interactive=False, elem_id='preview', height=240,
                                 buttons=['fullscreen'])
                note = gr.Markdown(elem_id='upload-note')
                example = gr.Button('Use the example image', size='sm', elem_id='example')
                typed = gr.Textbox(label='Class names, comma separated', value=EXAMPLE_CLASSES, elem_id='classes',
                                   info='Put "background" first to let the thresholds send unsure pixels to it '
                                        '(class 0, as the methods do on VOC, Context60 and COCO-Object).')
                vocabulary = gr.Dropdown([TYPED] + list(vocab), value=TYPED, label='or a benchmark vocabulary',
                                         elem_id='vocabulary')
                chosen = gr.CheckboxGroup([e.name for e in entries], value=[entries[0].name], label='Methods',
                                          elem_id='methods')
                with gr.Accordion('Settings (empty: each method\'s default)', open=False):
                    short_side = gr.Number(DEFAULT_SHORT_SIDE, label='resize: short side (px)', elem_id='short-side')
                    window = gr.Number(None, label='window (px; 0: whole image)', elem_id='window')
                    stride = gr.Number(None, label='stride (px)', elem_id='stride')
                    prob_thd = gr.Number(None, label='probability threshold (below: class 0)', elem_id='prob-thd')
                    area_thd = gr.Number(None, label='area threshold (fraction)', elem_id='area-thd')
                    pamr = gr.Number(None, label='PAMR steps (0: off)', elem_id='pamr')
                    clip_field = gr.Textbox(clip or '', label='CLIP weights: a file or an open_clip tag',
                                            placeholder="empty: ViT-B-16.pt in --weights DIR, else 'openai' "
                                                        "from open_clip's cache", elem_id='clip-path')
                run = gr.Button('Segment', variant='primary', elem_id='run')
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id='status')
                panel_outputs = []
                with gr.Row():
                    for entry in entries:
                        with gr.Column(visible=False, min_width=280, elem_id=f'panel-{entry.key}') as column:
                            title = gr.Markdown(elem_id=f'title-{entry.key}')
                            overlay = gr.Image(show_label=False, interactive=False, type='pil', format='png',
                                               buttons=['download', 'fullscreen'], elem_id=f'overlay-{entry.key}')
                            labels = gr.File(label='label map (PNG, pixel = class index)',
                                             elem_id=f'labels-{entry.key}')
                        panel_outputs += [column, title, overlay, labels]
                table = gr.Dataframe(label='area of each class (%)', interactive=False, elem_id='areas')
        upload.change(preview, upload, [shown, note])
        example.click(lambda: (EXAMPLE, EXAMPLE_CLASSES), None, [upload, typed])
        run.click(segment, [upload, typed, vocabulary, chosen, clip_field, short_side, window, stride, prob_thd,
                            area_thd, pamr], [status] + panel_outputs + [table])
    app.runner, app.outputs_dir = runner, outputs_dir
    return app


def launch(app, host: str, port: int, block: bool = True):
    """Serve ``app`` with nothing fetched from outside: local fonts, no analytics, no SSR node server."""
    import gradio as gr
    theme = gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                              font_mono=['ui-monospace', 'Consolas', 'monospace'])
    return app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, share=False, quiet=not block,
        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, footer_links=[], theme=theme,
        allowed_paths=[os.path.dirname(EXAMPLE)])


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.update({k: os.environ.get(k, v) for k, v in OFFLINE_ENV.items()})
    from sclip.logs import quiet_unless
    with quiet_unless(args.verbose):
        app = build_app(args)
    if args.random_weights:
        print('RANDOM WEIGHTS: the predictions of this page are meaningless (tests and offline trials only).',
              flush=True)
    print(f'serving on http://{args.host}:{args.port} (Ctrl+C to stop)', flush=True)
    try:
        launch(app, args.host, args.port)
    except OSError as error:  # gradio: "Cannot find empty port in range: N-N ..."
        from sclip.errors import SCLIPError
        raise SCLIPError(f'--port {args.port}: cannot serve on {args.host}:{args.port} ({str(error).split(".")[0]}); '
                         'pass a free port, e.g. --port 7861.') from None


if __name__ == '__main__':
    arguments = parse_args()  # --help and usage errors exit here, before torch and gradio are imported
    from sclip.cli import main_guard
    main_guard(lambda: main(sys.argv[1:]))
