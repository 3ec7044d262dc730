"""Speed of the harness: the fast path against the simple one, and shared sweeps against cells one by one.

    python tools/benchmark.py [--pretrained openai|FILE] [--images 4] [--device cuda|cpu]
        [--precision auto|official|fp16|bf16|fp32] [--class-names configs/class_names/voc21.txt]
    python tools/benchmark.py --sweep postproc|attention|datasets|all [--images 4]
    python tools/benchmark.py --against-official DIR [--config configs/sclip_voc21.py] [--images 3] [--rounds 3]
        [--hub-dir DINO_CLONE] [--vfm-checkpoint FILE] [--image-size 500x375] [--official-stub MODULE]
        [--sam-checkpoint FILE] [--cfg-options K=V ...] [--official-options K=V ...] [--memory]

Default mode: both paths run in one process on the same weights (a random ViT-B/16 when no
weights are given) and the same VOC-sized images (500x375, resized to short side 336). Prints
images/s, windows/s, the speed-up, the vision transformer's achieved GFLOP/s against this
machine's measured matmul GFLOP/s, the text-classifier build time cold and cached, peak
memory, and (on the CPU) the pixel agreement of the opt-in bf16 precision with fp32.

--sweep: times the same grid of sweep cells evaluated together (one pass over the data, shared
work) and one by one (as tools/sweep.py --no-share), in one process, on a synthetic VOC-layout
dataset of --images VOC-sized images, and prints both, the ratio, and whether every cell's
mIoU is the same both ways. Grids: postproc = 8 cells of model.prob_thd × model.logit_scale;
attention = the SCLIP paper's 6 last-block attentions; datasets = VOC21 and VOC20.
--against-official DIR: DIR is a checkout of the method's official repository (an mmseg
segmentor configured by configs/cfg_<benchmark>.py, as SCLIP, ClearCLIP, NACLIP, SC-CLIP and
ResCLIP are). Our --config and the official segmentor built from its own config run in one
process on the same weights and the same images (through our config's pipeline), in
interleaved rounds on the CPU; prints both times, the ratio and the pixel agreement. The
checkout is imported as it is: its CUDA calls are redirected to the CPU inside the tool. For the
methods with a foundation model (ProxyCLIP, FSA, CASS), its torch.hub.load of DINO is served by
--hub-dir (a local clone of facebookresearch/dino) and its checkpoint download by the file our
config loads (--vfm-checkpoint, default: a random one of the config's model in its official
layout and file name); where ours runs fp32 (the CPU default) the official fp16 casts keep fp32
too (sclip/official_compare.py). The images lie in VOC's layout beside all-background label maps
(FreeCP's official predict opens each image's label file); --image-size makes them smaller for
official codes too slow at VOC size; --official-stub MODULE replaces a module the official code
imports at load time for a branch the config never runs (ClearCLIP's BLIP code for its GEM branch).
Trident's SAM goes to its sam_ckpt (--sam-checkpoint, default a random one of the config's
model.method.sam.type in its official layout); CorrCLIP's region masks are written for the images
(a grid of regions with unsegmented pixels, the official .npz layout) and read by both sides.
--cfg-options sets our config, --official-options the official constructor's arguments (a short
class file both sides, Trident's ViT-H/14: model_type=ViT-H-14 clip_type=laion2b_s32b_b79k, whose
Hugging Face download is answered with --pretrained or a random CLIP of model.arch). --memory
measures instead of timing: each side builds and predicts the images once in a process of its own,
and the peak resident memory of loading and of inference (VmHWM, reset between the two) is printed
for both, with the pixel agreement (sclip/process_memory.py).
SegEarth-OV's SimFeatUp checkpoint load is answered with the file our config loads
(--upsampler-checkpoint, default a random one in its official layout); FLOSS's segmentor lives in
the mmseg package it ships (found and imported by its dotted name) and takes --official-options
mode=fusion (what its eval_naclip.py --mode fusion sets); CLIPer's official code is a script,
not a segmentor: its pipeline, loader and per-image steps run from its yaml
(scripts/config/vit-b-16/ovs_<benchmark>.yaml; sclip/official_cliper.py).
A benchmark, not a test: nothing here asserts a timing.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRIDS = {
    'postproc': dict(configs=['configs/sclip_voc21.py'],
                     set=['model.prob_thd=0.0,0.1,0.2,0.3', 'model.logit_scale=40,65']),
    'attention': dict(configs=['configs/sclip_voc21.py'],
                      # the defaults are the paper's rows: sharpen tau=2, local window=3, early_layer layer=3
                      set=['model.attention.type=vanilla,maskclip,sharpen,local,early_layer,csa']),
    'datasets': dict(configs=['configs/sclip_voc21.py', 'configs/sclip_voc20.py'], set=[]),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pretrained', help="'openai' or a checkpoint; default: a random ViT-B/16")
    parser.add_argument('--images', type=int, default=4, help='how many VOC-sized images to time on (default: 4)')
    parser.add_argument('--device', default=None, help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--precision', default='auto', choices=['auto', 'official', 'fp16', 'bf16', 'fp32'],
                        help="model.precision (default: auto, the configs' default: the official fp16 casts on "
                             'CUDA, fp32 on the CPU; fp16/bf16: the faster autocast opt-in)')
    parser.add_argument('--class-names', default=os.path.join(REPO, 'configs', 'class_names', 'voc21.txt'),
                        help='class-name file of the model (default: configs/class_names/voc21.txt)')
    parser.add_argument('--sweep', choices=['postproc', 'attention', 'datasets', 'all'],
                        help='time a sweep grid shared against one by one instead')
    parser.add_argument('--against-official', metavar='DIR',
                        help="time --config against the official segmentor in this checkout of the method's repository")
    parser.add_argument('--config', default='configs/sclip_voc21.py',
                        help='with --against-official: our config (default: configs/sclip_voc21.py)')
    parser.add_argument('--official-config', metavar='FILE',
                        help='with --against-official: the official config, relative to DIR '
                             '(default: configs/cfg_<benchmark>.py)')
    parser.add_argument('--rounds', type=int, default=3, help='with --against-official: timed rounds (default: 3)')
    parser.add_argument('--hub-dir', metavar='DIR',
                        help="with --against-official: a local clone of the torch.hub repository the official code "
                             'loads its foundation model from (facebookresearch/dino)')
    parser.add_argument('--vfm-checkpoint', metavar='FILE',
                        help="with --against-official: the foundation model's checkpoint, under its official file name, "
                             "for both sides (default: a random one of the config's model.vfm.type)")
    parser.add_argument('--upsampler-checkpoint', metavar='FILE',
                        help="with --against-official: SegEarth-OV's SimFeatUp checkpoint for both sides "
                             "(default: a random one of the config's model.method.upsampler.type, official layout)")
    parser.add_argument('--official-stub', action='append', default=[], metavar='MODULE',
                        help='with --against-official: a module the official code imports for a branch the '
                             'config never runs, replaced by a stub (e.g. BLIP.models.blip_retrieval for '
                             "ClearCLIP's CLIP and GEM configs); repeatable")
    parser.add_argument('--image-size', default='500x375', metavar='WxH',
                        help='with --against-official: width x height of the images (default: 500x375, VOC-sized; '
                             'smaller images have fewer windows, for official codes too slow at VOC size)')
    parser.add_argument('--sam-checkpoint', metavar='FILE',
                        help="with --against-official: SAM's checkpoint (Trident), official layout and file name, "
                             "for both sides (default: a random one of the config's model.method.sam.type)")
    parser.add_argument('--cfg-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='with --against-official: settings over our --config (e.g. model.arch=ViT-H-14)')
    parser.add_argument('--official-options', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help="with --against-official: the official constructor's arguments over its config "
                             '(e.g. name_path=FILE model_type=ViT-H-14)')
    parser.add_argument('--memory', action='store_true',
                        help='with --against-official: peak resident memory of each side (a process each) '
                             'instead of times')
    parser.add_argument('--memory-child', nargs=2, metavar=('SETUP', 'SIDE'), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def matmul_gflops(device, dtype, size=2048, repeats=10):
    import time

    import torch
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def vit_flops_per_window(model, crop, device):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.backbone(torch.randn(1, 3, crop, crop, device=device))
    return counter.get_total_flops()


def random_vit_b16(folder: str) -> str:
    """A random ViT-B/16 in OpenAI's layout (fp16 state dict), loaded through the real loader."""
    import math

    import open_clip
    import torch
    path = os.path.join(folder, 'random-vit-b-16.pt')
    if not os.path.isfile(path):
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)  # open_clip warns "no pretrained weights": random is the point here
        try:
            model = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
        finally:
            root.setLevel(level)
        state = model.state_dict()
        state['logit_scale'] = torch.tensor(math.log(100))  # OpenAI's learned 100 (FreeCP, GEM read it)
        torch.save({k: v.half() for k, v in state.items()}, path)
    return path


def random_vfm(folder: str, vfm_type: str) -> str:
    """A random full-size ``vfm_type`` checkpoint in its official layout, under its official file
    name (the name the official code downloads; ``hub_redirected`` matches on it)."""
    from sclip.models.vfm.specs import get_spec
    from sclip.models.vfm.testing import write_official_checkpoint
    path = os.path.join(folder, get_spec(vfm_type).filename)
    return path if os.path.isfile(path) else write_official_checkpoint(path, vfm_type, tiny=False)


def clip_feature_width(weights: str) -> int:
    """The joint embedding width of the CLIP in ``weights`` (OpenAI layout; 512, ViT-B/16's, for
    'openai'): the width of the features SegEarth-OV's upsampler takes."""
    import torch
    if not os.path.isfile(weights):
        return 512
    return int(torch.load(weights, map_location='cpu', weights_only=True)['text_projection'].shape[1])


def random_upsampler(folder: str, upsampler, feat_dim: int) -> str:
    """A random SimFeatUp ``upsampler.type`` for ``feat_dim``-wide features in the official
    Lightning layout, under the file name of ``upsampler.checkpoint`` (SegEarth-OV's
    ``xclip_jbu_one_million_aid.ckpt``: ``checkpoint_loads_redirected`` matches on it)."""
    import torch
    from sclip.models.simfeatup import build_upsampler, save_official_checkpoint
    path = os.path.join(folder, os.path.basename(str(upsampler.checkpoint)))
    if os.path.isfile(path):
        return path
    module = build_upsampler(upsampler.type, feat_dim)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # off the initial values, so that a swapped file would show
        for param in module.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return save_official_checkpoint(module, path)


def official_checkpoints(args, cfg, folder: str) -> dict:
    """SegEarth-OV's SimFeatUp checkpoint, which both sides load, set in ``cfg``: the file given
    (--upsampler-checkpoint), else a random one in its official layout and file name (the official
    side's load of that name gets it); by report row, with what it is."""
    files = {}
    method = cfg.model.get('method')
    upsampler = method.get('upsampler') if isinstance(method, dict) else None
    if isinstance(upsampler, dict) and upsampler.get('checkpoint'):
        path = args.upsampler_checkpoint or random_upsampler(folder, upsampler, clip_feature_width(cfg.model.clip_path))
        files['upsampler'] = (path, args.upsampler_checkpoint or
                              f'a random {upsampler.type} (official layout, {os.path.basename(path)})')
        upsampler.checkpoint = path
    return files


def build_model(args, device, cache_dir, precision=None):
    from mmseg.registry import MODELS
    from sclip.runner import load_config
    weights = args.pretrained or random_vit_b16(cache_dir)
    cfg = load_config(os.path.join(REPO, 'configs', 'sclip_voc21.py'), {'model.clip_path': weights})
    from sclip.models.precision import resolve_precision
    precision = resolve_precision(precision or args.precision, cuda=device.type == 'cuda')
    cfg.model.update(class_names=args.class_names, precision=precision, text_cache_dir=cache_dir)
    return MODELS.build(cfg.model).to(device).eval()


def time_text_classifier(model):
    import time
    start = time.perf_counter()
    model._class_embeddings = None
    model.class_embeddings  # noqa: B018  (cold: encodes and writes the cache)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    model._class_embeddings = None
    model.class_embeddings  # noqa: B018  (cached: reads the file)
    return cold, time.perf_counter() - start


def run_path(model, images, device, batched):
    import time

    import torch
    model.slide_mode = 'batched' if batched else 'simple'
    model.backbone.fused = batched
    with torch.no_grad():
        model.predict(images[:1])  # warm-up
        sync(device)
        start = time.perf_counter()
        for image in images:
            model.predict([image])
        sync(device)
    return time.perf_counter() - start


def bf16_agreement(args, images, cache_dir) -> str:
    """Pixel agreement of the CPU bf16 opt-in with fp32 on the same images."""
    import torch
    device = torch.device('cpu')
    fp32, bf16 = (build_model(args, device, cache_dir, precision) for precision in ('fp32', 'bf16'))
    same = total = 0
    with torch.no_grad():
        for image in images:
            a = fp32.predict([image.cpu()])[0].pred_sem_seg.data
            b = bf16.predict([image.cpu()])[0].pred_sem_seg.data
            same, total = same + int((a == b).sum()), total + a.numel()
    return f'{100 * same / total:.2f}% of pixels equal to fp32'


def status(message: str) -> None:
    from sclip.progress import status as say
    say(message)


def path_report(args, device) -> None:
    import resource
    import tempfile

    import torch
    import torch.nn.functional as F
    from sclip.models.sliding_window import window_grid
    with tempfile.TemporaryDirectory() as cache_dir:
        model = build_model(args, device, cache_dir)
        status('timing the text classifier, cold then cached')
        cold, cached = time_text_classifier(model)
        generator = torch.Generator().manual_seed(0)
        images = [F.interpolate(torch.randn(1, 3, 375, 500, generator=generator), size=(336, 448),
                                mode='bilinear')[0].to(device) for _ in range(args.images)]
        windows = len(window_grid(336, 448, model.slide_crop, model.slide_stride)) * len(images)
        status(f'timing the simple path (one window at a time) on {len(images)} images, {windows} windows')
        simple = run_path(model, images, device, batched=False)
        status(f'timing the fast path on the same images (the simple one took {simple:.1f} s)')
        fast = run_path(model, images, device, batched=True)
        status('measuring the matmul peak and the ViT FLOPs')
        half = {'official': torch.float16, 'fp16': torch.float16, 'bf16': torch.bfloat16}.get(model.precision)
        dtype = half if device.type == 'cuda' or model.precision == 'official' else torch.float32
        peak_matmul = matmul_gflops(device, dtype)
        vit_gflop = vit_flops_per_window(model, model.slide_crop[0], device) / 1e9
        memory = (f'{torch.cuda.max_memory_allocated(device) / 2 ** 20:.0f} MiB (CUDA)' if device.type == 'cuda'
                  else f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)')
        rows = [
            ('device', f'{device} ({torch.get_num_threads()} threads)' if device.type == 'cpu'
             else torch.cuda.get_device_name(device)),
            ('compute dtype', str(dtype).replace('torch.', '')),
            ('images (500x375 -> 448x336)', f'{len(images)}, {windows // len(images)} windows each'),
            ('simple path', f'{len(images) / simple:.3f} images/s, {windows / simple:.2f} windows/s'),
            ('fast path', f'{len(images) / fast:.3f} images/s, {windows / fast:.2f} windows/s'),
            ('speed-up (fast / simple)', f'{simple / fast:.2f}x'),
            ('ViT GFLOP per window', f'{vit_gflop:.1f}'),
            ('ViT achieved, fast path', f'{vit_gflop * windows / fast:.0f} GFLOP/s '
                                        f'({100 * vit_gflop * windows / fast / peak_matmul:.0f}% of matmul)'),
            ('matmul peak (2048^2)', f'{peak_matmul:.0f} GFLOP/s'),
            ('text classifier cold', f'{cold:.2f} s ({len(model.names.queries)} names x {len(model.templates)} '
                                     'templates)'),
            ('text classifier cached', f'{cached:.3f} s'),
            ('peak memory', memory),
        ]
        if device.type == 'cpu':
            status('CPU bf16 against fp32 on 2 images')
            rows.append(('CPU bf16 (opt-in) vs fp32', bf16_agreement(args, images[:2], cache_dir)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f'{key.ljust(width)}  {value}')


def sweep_report(args, grids) -> None:
    import shutil
    import tempfile
    import time
    from sclip.synthetic import make_dataset
    from sclip.sweep import parse_axes, run_sweep
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault('SCLIP_CACHE_DIR', os.path.join(folder, 'cache'))
        weights = args.pretrained or random_vit_b16(folder)
        root = make_dataset('voc21', os.path.join(folder, 'data'), sizes=[(500, 375)] * args.images)
        options = {'model.clip_path': weights, 'test_dataloader.dataset.data_root': root,
                   'test_dataloader.num_workers': 0}
        rows = []
        for name in grids:
            grid = GRIDS[name]
            configs = [os.path.join(REPO, c) for c in grid['configs']]
            axes = parse_axes(grid['set'])
            timings, mious = {}, {}
            # warm the text cache of every config first, so neither way pays a cold text encoder
            status(f'{name}: encoding the class names of {len(configs)} config(s) once')
            run_sweep(configs, [], os.path.join(folder, 'warm'), options, log=lambda *a: None, quiet=True)
            for share in (True, False):  # the text cache is warm for both
                status(f'{name}: the grid {"shared" if share else "one by one"}')
                work = os.path.join(folder, f'{name}-{share}')
                start = time.perf_counter()
                results = run_sweep(configs, axes, work, options, log=lambda *a: None, quiet=True, share=share)
                timings[share] = time.perf_counter() - start
                mious[share] = [(r.status, None if r.mIoU is None or r.mIoU != r.mIoU else r.mIoU)
                                for r in results]  # NaN (a class absent from tiny data) compares equal
                for r in results:
                    if r.status != 'ok':
                        print(f'{name} ({"shared" if share else "one by one"}): {r.variant} {r.status}: {r.error}')
                shutil.rmtree(work, ignore_errors=True)
            cells = len(mious[True])
            rows.append((name, cells, timings[True], timings[False], mious[True] == mious[False]))
    print(f'sweep grids on {args.images} VOC-sized images (500x375), one process:')
    print('| grid | cells | shared | one by one | speed-up | same mIoU |')
    print('|---|---|---|---|---|---|')
    for name, cells, shared, alone, same in rows:
        print(f'| {name} | {cells} | {shared:.1f} s | {alone:.1f} s | {alone / shared:.2f}x | {"yes" if same else "NO"} |')


def benchmark_of(config: str) -> str:
    """``configs/sclip_voc21.py`` and ``configs/naclip/voc21.py`` -> ``voc21``."""
    stem = os.path.splitext(os.path.basename(config))[0]
    return stem[len('sclip_'):] if stem.startswith('sclip_') else stem


def voc_sized_images(folder: str, count: int, size=(500, 375)) -> list:
    """``count`` PNGs of ``size`` (VOC-sized by default) of smooth random colour fields (several
    classes win somewhere), in VOC's layout (``JPEGImages/``) beside all-background label maps
    (``SegmentationClass/``): FreeCP's official ``predict`` opens each image's label file (its
    predictions on VOC do not depend on what the file holds)."""
    import numpy as np
    from PIL import Image
    generator = np.random.default_rng(0)
    os.makedirs(os.path.join(folder, 'JPEGImages'), exist_ok=True)
    os.makedirs(os.path.join(folder, 'SegmentationClass'), exist_ok=True)
    files = []
    for index in range(count):
        small = generator.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        path = os.path.join(folder, 'JPEGImages', f'image_{index}.png')
        Image.fromarray(small).resize(tuple(size), Image.BILINEAR).save(path)
        Image.new('L', tuple(size), 0).save(os.path.join(folder, 'SegmentationClass', f'image_{index}.png'))
        files.append(path)
    return files


def machine_line() -> str:
    """The CPU model, its cores and the 1-minute load average: a ratio belongs to its machine and to
    how quiet that machine was (other jobs slow the two sides unequally)."""
    import platform
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as handle:
            model = next((line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')), model)
    except OSError:
        pass
    load = f', load average {os.getloadavg()[0]:.2f}' if hasattr(os, 'getloadavg') else ''
    return f'{model}, {os.cpu_count()} cores{load}'


def image_size(text: str) -> tuple:
    """``'WxH'`` as ``(W, H)``; anything else is a one-line error naming the option."""
    from sclip.errors import SCLIPError
    try:
        width, height = (int(part) for part in text.lower().split('x'))
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise SCLIPError(f'--image-size {text}: give width x height in pixels, e.g. 224x224.')
    return width, height


def is_cliper(cfg) -> bool:
    """Whether ``cfg`` runs CLIPer, whose official code is a script, not an mmseg segmentor
    (its side is ``sclip/official_cliper.py``)."""
    return cfg.model.get('type') == 'CLIPerSegmentor'


def official_report(args) -> None:
    import tempfile

    from sclip.errors import SCLIPError
    from sclip.official_cliper import build_official_cliper, official_predictor, official_yaml_path, voc2012_layout
    from sclip.official_compare import (build_official_segmentor, check_same_pamr, compare,
                                        official_config_path, official_half_dropped, packed_samples,
                                        predict_labels, timed_rounds)
    from sclip.runner import load_config
    if args.rounds < 1:
        raise SCLIPError(f'--rounds {args.rounds}: time at least one round.')
    size = image_size(args.image_size)
    if not os.path.isdir(args.against_official):
        raise SCLIPError(f'--against-official {args.against_official}: not a folder; pass a checkout of the '
                         "method's official repository.")
    config = args.config if os.path.isfile(args.config) else os.path.join(REPO, args.config)
    from sclip.official_trained import METHODS as TRAINED_OFFICIAL
    base = load_config(config)
    if base.model.type in TRAINED_OFFICIAL:  # GroupViT, TCL: mmseg 0.x official code
        return trained_official_report(args, config, base, size)
    cliper = is_cliper(base)
    official_config = (official_yaml_path if cliper else official_config_path)(
        args.against_official, benchmark_of(config), args.official_config)
    machine_before = machine_line()
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault('SCLIP_CACHE_DIR', os.path.join(folder, 'cache'))
        from sclip.options import parse_cfg_options
        options = parse_cfg_options(args.cfg_options)
        weights = args.pretrained or random_clip(folder, load_config(config, options).model.get('arch', 'ViT-B-16'))
        from mmseg.registry import MODELS
        cfg = load_config(config, {**options, 'model.clip_path': weights})
        checkpoints = foundation_checkpoints(args, cfg, folder)
        extra = official_checkpoints(args, cfg, folder)  # SegEarth-OV's upsampler
        checkpoints += [path for path, _ in extra.values()]
        image_files = voc_sized_images(folder, args.images, size)
        overrides = {**region_masks_for(cfg, image_files, folder), **official_options(args.official_options)}
        if args.memory:
            return memory_report(args, dict(
                config=config, options={**options, 'model.clip_path': weights, **file_options(cfg)},
                checkpoints=checkpoints,
                image_files=image_files, overrides=overrides, repo=args.against_official,
                official_config=official_config, hub_dir=args.hub_dir, stubs=args.official_stub,
                weights=None if weights == 'openai' else weights), folder)
        ours = MODELS.build(cfg.model).eval()
        half_to_fp32 = not cliper and official_half_dropped(ours)
        if cliper:  # not an mmseg segmentor: its own pipeline and loader (sclip/official_cliper.py)
            image_files = voc2012_layout(os.path.join(folder, 'cliper'), image_files)
            official = build_official_cliper(args.against_official, official_config,
                                             'ViT-B/16' if weights == 'openai' else weights, image_files,
                                             os.path.join(folder, 'cliper'), stubs=args.official_stub)
        else:
            official = build_official_segmentor(args.against_official, official_config,
                                                None if weights == 'openai' else weights, hub_dir=args.hub_dir,
                                                checkpoints=checkpoints, half_to_fp32=half_to_fp32,
                                                stubs=args.official_stub, overrides=overrides)
            check_same_pamr(cfg.model.get('pamr_steps', 0), official)
        samples = packed_samples(cfg, image_files)
        status(f'timing ours and the official code on {len(samples)} images, {args.rounds} interleaved rounds')
        if cliper:
            result = timed_rounds(lambda warm_up: predict_labels(ours, samples[:1] if warm_up else samples,
                                                                 official=False),
                                  official_predictor(official), args.rounds, log=status)
        else:
            result = compare(ours, official, samples, args.rounds, half_to_fp32=half_to_fp32, log=status)
    rows = [('ours', f'{os.path.relpath(config, REPO)} ({args.images} images, {size[0]}x{size[1]})'),
            ('official', f'{os.path.relpath(official_config, args.against_official)} in {args.against_official}'),
            ('weights', args.pretrained or f'a random {cfg.model.get("arch", "ViT-B-16")} '
                                           f'({"OpenAI" if weights.endswith("vit-b-16.pt") else "open_clip"} layout)'),
            *option_rows(args),
            *([('SAM', args.sam_checkpoint or f'a random {cfg.model.method.sam.type} (official layout)')]
              if cfg.model.get('method', {}).get('sam') else []),
            *([('region masks', 'a random grid of regions per image (official .npz layout), both sides')]
              if 'instance_mask_path' in overrides else []),
            *([('official stubs', ', '.join(args.official_stub))] if args.official_stub else []),
            *[(row, what) for row, (_, what) in extra.items()],
            ('precision', 'fp32 both sides (official fp16 casts kept fp32)' if half_to_fp32
             else f'ours {getattr(ours, "precision", "fp32")}, official as written'),
            *comparison_rows(args, machine_before, result)]
    print_rows(rows)


def option_rows(args) -> list:
    """The report rows of the settings given over either side's config, where any were."""
    return [*([('our options', ' '.join(args.cfg_options))] if args.cfg_options else []),
            *([('official options', ' '.join(args.official_options))] if args.official_options else [])]


def comparison_rows(args, machine_before: str, result) -> list:
    """The rows every side-by-side report ends with: where and when it ran, both times, the ratio
    and the pixel agreement of ``result`` (official_compare.Comparison)."""
    import time
    return [('device', f'cpu ({__import__("torch").get_num_threads()} threads), {args.rounds} interleaved rounds'),
            ('machine', f'{machine_before} at the start, {os.getloadavg()[0]:.2f} at the end'
             if hasattr(os, 'getloadavg') else machine_before),
            ('date', time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())),
            ('ours, s per round', ' '.join(f'{t:.2f}' for t in result.ours)),
            ('official, s per round', ' '.join(f'{t:.2f}' for t in result.official)),
            ('speed ratio (official / ours)', f'{result.ratio:.2f}x'),
            ('pixel agreement', f'{result.agreement:.5f} ({result.same_pixels} of {result.pixels})')]


def print_rows(rows) -> None:
    """``key  value`` lines, the keys padded to one column."""
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f'{key.ljust(width)}  {value}')


def trained_official_report(args, config: str, base, size: tuple) -> None:
    """GroupViT's and TCL's official mmseg 0.x evaluation code against our config, under the
    import-time shims of sclip/official_trained.py, on one full-size random checkpoint in the
    released layout (or --pretrained, the released file) and the same images; ``base``: ``config``
    as loaded, without options."""
    import tempfile

    from sclip.official_compare import compare, packed_samples
    from sclip.official_trained import (METHODS, TrainedFiles, build_official_trained, official_test_cfg,
                                        random_checkpoints)
    from sclip.runner import load_config
    method = METHODS[base.model.type]
    official_test_cfg(args.against_official, method, base.benchmark)  # a bad checkout: fail first
    machine_before = machine_line()
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault('SCLIP_CACHE_DIR', os.path.join(folder, 'cache'))
        clip = random_vit_b16(folder) if method == 'tcl' else None  # what TCL builds its CLIP from
        status('writing a full-size random checkpoint in the released layout')
        files = TrainedFiles(args.pretrained, clip) if args.pretrained else random_checkpoints(method, folder, clip)
        cfg = load_config(config, {'model.checkpoint': files.checkpoint})
        from mmseg.registry import MODELS
        ours = MODELS.build(cfg.model).eval()
        status(f'building the official {method} segmentor of {args.against_official}')
        official = build_official_trained(args.against_official, cfg, files)
        samples = packed_samples(cfg, voc_sized_images(folder, args.images, size))
        status(f'timing ours and the official code on {len(samples)} images, {args.rounds} interleaved rounds')
        result = compare(ours, official, samples, args.rounds, log=status)
    rows = [('ours', f'{os.path.relpath(config, REPO)} ({args.images} images, {size[0]}x{size[1]})'),
            ('official', f'{args.against_official} (mmseg 0.x evaluation under sclip/official_trained.py shims)'),
            ('weights', args.pretrained or f'a full-size random {method} checkpoint (released layout)'
             + (', its CLIP built from a random ViT-B/16' if clip else '')),
            *comparison_rows(args, machine_before, result)]
    print_rows(rows)


def random_clip(folder: str, arch: str) -> str:
    """A random CLIP of ``arch``: ViT-B/16 in OpenAI's layout (``random_vit_b16``), any other in
    open_clip's (a float32 state dict, the layout of the OpenCLIP files such as ViT-H/14's
    ``laion2b_s32b_b79k``, which the official codes download from the Hugging Face hub; float16
    would read as an OpenAI release, QuickGELU, to our loader)."""
    if arch in ('ViT-B-16', 'ViT-B-16-quickgelu'):
        return random_vit_b16(folder)
    import open_clip
    import torch
    path = os.path.join(folder, f'random-{arch}.pt')
    if not os.path.isfile(path):
        status(f'writing a random {arch} (open_clip layout)')
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)  # open_clip warns "no pretrained weights": random is the point here
        try:
            model = open_clip.create_model(arch, pretrained=None)
        finally:
            root.setLevel(level)
        torch.save(model.state_dict(), path)
        del model
    return path


def foundation_checkpoints(args, cfg, folder: str) -> list:
    """The foundation models' checkpoints both sides load (official layouts and file names), set
    in ``cfg``: DINO & co. (``model.vfm``, --vfm-checkpoint) and Trident's SAM
    (``model.method.sam``, --sam-checkpoint); the official side finds them by file name."""
    checkpoints = []
    if cfg.model.get('vfm'):
        checkpoints.append(args.vfm_checkpoint or random_vfm(folder, cfg.model.vfm.type))
        cfg.model.vfm.checkpoint = checkpoints[-1]
    sam = cfg.model.get('method', {}).get('sam')
    if sam:
        checkpoints.append(args.sam_checkpoint or random_vfm(folder, sam.type))
        sam.checkpoint = checkpoints[-1]
    return checkpoints


def file_options(cfg) -> dict:
    """The files ``foundation_checkpoints``, ``official_checkpoints`` and ``region_masks_for`` set
    in ``cfg``, as options over the config file (for --memory's processes, which load it again):
    the foundation model's, each of the identity's ``CHECKPOINT_KEYS``, CorrCLIP's mask folder."""
    from sclip.identity import CHECKPOINT_KEYS, key_holder
    found = {}
    for key in ('model.vfm.checkpoint', *CHECKPOINT_KEYS, 'model.region_masks.root'):
        keys = key.split('.')[1:]
        holder = key_holder(cfg.model, keys)
        if holder is not None and holder.get(keys[-1]):
            found[key] = holder[keys[-1]]
    return found


def region_masks_for(cfg, image_files, folder: str) -> dict:
    """CorrCLIP's region masks (its official default reads pre-generated ones, ``<stem>.npz`` with
    ``instance_mask``): a grid of regions per image, a band of unsegmented pixels (the minimum
    value) on its left, written once and read by both sides; the official argument that names
    their folder, or nothing for configs without region masks."""
    masks = cfg.model.get('region_masks')
    if not masks or masks.get('type') != 'files':
        return {}
    import numpy as np
    from PIL import Image
    root = os.path.join(folder, 'region_masks')
    os.makedirs(root, exist_ok=True)
    for path in image_files:
        width, height = Image.open(path).size
        rows = np.minimum(np.arange(height) * 3 // height, 2)[:, None]
        columns = np.minimum(np.arange(width) * 4 // width, 3)[None, :]
        mask = (1 + rows * 4 + columns).astype(np.int32)
        mask[:, :max(1, width // 10)] = 0
        np.savez(os.path.join(root, os.path.splitext(os.path.basename(path))[0] + '.npz'), instance_mask=mask)
    masks.root = root
    return {'instance_mask_path': root}


def official_options(items) -> dict:
    """``--official-options KEY=VALUE ...`` as the official constructor's keyword arguments."""
    from sclip.errors import SCLIPError
    from sclip.options import parse_cfg_options
    try:
        return parse_cfg_options(items)
    except SCLIPError as error:
        raise SCLIPError(str(error).replace('--cfg-options', '--official-options')) from None


def memory_report(args, setup: dict, folder: str) -> None:
    """Peak resident memory of each side, each in a process of its own (``memory_child``), ours
    first (it tells whether the official fp16 casts are dropped); prints both and the agreement."""
    import json
    import subprocess
    import time

    import torch

    from sclip.errors import SCLIPError
    setup_file = os.path.join(folder, 'memory-setup.json')
    with open(setup_file, 'w') as handle:
        json.dump(setup, handle)
    results = {}
    for side in ('ours', 'official'):
        status(f'--memory: {side}, in a process of its own')
        if side == 'official':
            setup['half_to_fp32'] = results['ours']['half_to_fp32']
            with open(setup_file, 'w') as handle:
                json.dump(setup, handle)
        done = subprocess.run([sys.executable, os.path.abspath(__file__), '--memory-child', setup_file, side],
                              capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
        if done.returncode != 0 or not lines:
            raise SCLIPError(f'--memory: the {side} side failed: '
                             f'{(done.stderr.strip().splitlines() or ["no output"])[-1]}')
        results[side] = json.loads(lines[-1])
    labels = {side: torch.load(results[side]['labels'], weights_only=True) for side in results}
    same = sum(int((a == b).sum()) for a, b in zip(labels['ours'], labels['official']))
    total = sum(a.numel() for a in labels['ours'])

    def gib(value):
        return f'{value / 2 ** 30:.2f} GiB'

    rows = [('ours', f'{os.path.relpath(setup["config"], REPO)} ({len(setup["image_files"])} images, '
                     f'{args.image_size})'),
            ('official', f'{os.path.relpath(setup["official_config"], args.against_official)} in '
                         f'{args.against_official}'),
            *option_rows(args),
            ('precision', 'fp32 both sides (official fp16 casts kept fp32)' if setup['half_to_fp32']
             else 'ours as configured, official as written'),
            ('machine', machine_line()),
            ('date', time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))]
    for side in ('ours', 'official'):
        result = results[side]
        rows += [(f'{side}: peak RSS, loading', gib(result['build_peak'])),
                 (f'{side}: RSS after loading', gib(result['after_build'])),
                 (f'{side}: peak RSS, inference', f'{gib(result["inference_peak"])} '
                                                  f'(+{gib(result["inference_peak"] - result["after_build"])}; '
                                                  f'{result["seconds"]:.1f} s)')]
    rows += [('peak ratio (official / ours)',
              f'{max(results["official"]["build_peak"], results["official"]["inference_peak"]) / max(results["ours"]["build_peak"], results["ours"]["inference_peak"]):.2f}x whole process, '
              f'{results["official"]["inference_peak"] / results["ours"]["inference_peak"]:.2f}x inference'),
             ('pixel agreement', f'{same / total:.5f} ({same} of {total})')]
    print_rows(rows)


def memory_child(setup_file: str, side: str) -> None:
    """One side of --memory: build it (its peak: ``build_peak``), reset the peak, predict every
    image once (``inference_peak``); prints one JSON line and saves the labels beside the setup."""
    import json
    import time

    import torch

    from sclip.official_compare import build_official_segmentor, check_same_pamr, official_half_dropped, \
        packed_samples, predict_labels
    from sclip.process_memory import current_rss, peak_rss, reset_peak_rss
    from sclip.runner import load_config
    with open(setup_file) as handle:
        setup = json.load(handle)
    os.environ.setdefault('SCLIP_CACHE_DIR', os.path.join(os.path.dirname(setup_file), 'cache'))
    cfg = load_config(setup['config'], setup['options'])  # with the files the parent resolved (file_options)
    checkpoints = setup['checkpoints']
    samples = packed_samples(cfg, setup['image_files'])
    official = side == 'official'
    if official:
        model = build_official_segmentor(setup['repo'], setup['official_config'], setup['weights'],
                                         hub_dir=setup['hub_dir'], checkpoints=checkpoints,
                                         half_to_fp32=setup['half_to_fp32'], stubs=setup['stubs'],
                                         overrides=setup['overrides'])
        check_same_pamr(cfg.model.get('pamr_steps', 0), model)
        half_to_fp32 = setup['half_to_fp32']
    else:
        from mmseg.registry import MODELS
        model = MODELS.build(cfg.model).eval()
        with torch.no_grad():
            model.class_embeddings  # noqa: B018  (the official code encodes its classes when it is built)
        half_to_fp32 = official_half_dropped(model)
    build_peak = peak_rss()
    reset_peak_rss()
    after_build = current_rss()
    start = time.perf_counter()
    labels = predict_labels(model, samples, official=official, half_to_fp32=half_to_fp32)
    seconds = time.perf_counter() - start
    inference_peak = peak_rss()
    path = os.path.join(os.path.dirname(setup_file), f'labels-{side}.pt')
    torch.save(labels, path)
    print(json.dumps(dict(build_peak=build_peak, after_build=after_build, inference_peak=inference_peak,
                          seconds=seconds, labels=path, half_to_fp32=half_to_fp32)))


def run(args: argparse.Namespace) -> None:
    from sclip.errors import SCLIPError
    if args.memory_child:
        import sclip  # noqa: F401  (registers the models and datasets)
        return memory_child(*args.memory_child)
    if args.images < 1:
        raise SCLIPError(f'--images {args.images}: time at least one image.')
    from sclip.cli import resolve_device
    device = resolve_device(args.device)
    import sclip  # noqa: F401  (registers the models and datasets)
    from sclip.progress import status_lines
    with status_lines():
        report(args, device)


def report(args, device) -> None:
    if args.against_official:
        official_report(args)
    elif args.sweep:
        sweep_report(args, list(GRIDS) if args.sweep == 'all' else [args.sweep])
    else:
        path_report(args, device)


def main(argv=None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    arguments = parse_args()
    from sclip.cli import main_guard  # noqa: E402
    from sclip.logs import quiet_unless  # noqa: E402
    with quiet_unless(False):
        main_guard(lambda: run(arguments))
