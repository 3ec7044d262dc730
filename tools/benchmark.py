"""Speed of the fast path (batched windows, fused attention) against the simple path.

    python tools/benchmark.py [--pretrained openai|FILE] [--images 4] [--device cuda|cpu]
        [--precision fp16|bf16|fp32] [--class-names configs/class_names/voc21.txt]

Both paths run in one process on the same weights (a random ViT-B/16 when no weights are
given) and the same VOC-sized images (500x375, resized to short side 336). Prints images/s,
windows/s, the speed-up, the vision transformer's achieved GFLOP/s against this machine's
measured matmul GFLOP/s, the text-classifier build time cold and cached, and peak memory.
A benchmark, not a test: nothing here asserts a timing.
"""
import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import sclip  # noqa: E402,F401
from sclip.cli import main_guard  # noqa: E402
from sclip.models.sliding_window import window_grid  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def matmul_gflops(device, dtype, size=2048, repeats=10):
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
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.backbone(torch.randn(1, 3, crop, crop, device=device))
    return counter.get_total_flops()


def build_model(args, device, cache_dir):
    from mmseg.registry import MODELS
    from sclip.runner import load_config
    pretrained = args.pretrained
    if pretrained is None:  # a random ViT-B/16 in OpenAI's layout, through the real loader
        import open_clip
        path = os.path.join(cache_dir, 'random-vit-b-16.pt')
        model = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
        torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
        pretrained = path
    cfg = load_config(os.path.join(REPO, 'configs', 'sclip_voc21.py'), {'model.pretrained': pretrained})
    cfg.model.update(class_names=args.class_names, precision=args.precision, text_cache_dir=cache_dir)
    return MODELS.build(cfg.model).to(device).eval()


def time_text_classifier(model):
    start = time.perf_counter()
    model._class_embeddings = None
    model.class_embeddings  # noqa: B018  (cold: encodes and writes the cache)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    model._class_embeddings = None
    model.class_embeddings  # noqa: B018  (cached: reads the file)
    return cold, time.perf_counter() - start


def run_path(model, images, device, batched):
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pretrained', help="'openai' or a checkpoint; default: random ViT-B/16")
    parser.add_argument('--images', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--precision', default='fp16', choices=['fp16', 'bf16', 'fp32'])
    parser.add_argument('--class-names', default=os.path.join(REPO, 'configs', 'class_names', 'voc21.txt'))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as cache_dir:
        model = build_model(args, device, cache_dir)
        cold, cached = time_text_classifier(model)
    generator = torch.Generator().manual_seed(0)
    images = [F.interpolate(torch.randn(1, 3, 375, 500, generator=generator), size=(336, 448),
                            mode='bilinear')[0].to(device) for _ in range(args.images)]
    windows = len(window_grid(336, 448, model.slide_crop, model.slide_stride)) * len(images)
    simple = run_path(model, images, device, batched=False)
    fast = run_path(model, images, device, batched=True)
    amp = device.type == 'cuda' and args.precision != 'fp32'
    dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(args.precision) if amp else torch.float32
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
        ('text classifier cold', f'{cold:.2f} s ({len(model.names.queries)} names x {len(model.templates)} templates)'),
        ('text classifier cached', f'{cached:.3f} s'),
        ('peak memory', memory),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f'{key.ljust(width)}  {value}')


if __name__ == '__main__':
    main_guard(main)
