"""Test helpers: the tools in-process and their one-line errors; the tiny random CLIP checkpoints
and synthetic benchmark datasets live in sclip/synthetic.py (tools/try_it.py uses them too)."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Tuple

import numpy as np
import pytest
import torch

from sclip.synthetic import (BENCHMARKS, LAYOUTS, SIZES, STEMS, make_dataset, tiny_clip,  # noqa: F401 (re-exported)
                             write_image, write_label, write_openai_checkpoint)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The ImageNet normalisation of the trained segmenters' pipelines (GroupViT, TCL), 0-255 scale.
IMAGENET_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Fidelity tests run thousands of tiny ops: one thread runs them several times faster than
    two. Imported by a test module, it holds for that module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LARGE_VOCAB = ('ade847.py', 'context459.py')  # ours for most methods: tests/test_large_vocab.py runs them


def method_configs(method: str):
    """configs/<method>/*.py without the large-vocabulary ones (their ADE20k/Context59 program with
    another vocabulary: no official config to compare with, run end to end in test_large_vocab.py)."""
    import glob
    return sorted(p for p in glob.glob(osp.join(REPO, 'configs', method, '*.py')) if not p.endswith(LARGE_VOCAB))


def first_lines_of(folder):
    """``first_lines(path, lines)``: a copy in ``folder`` of a class file's first lines (a small
    vocabulary of the benchmark's own names, ``background`` kept first)."""
    def first_lines(path: str, lines: int) -> str:
        target = osp.join(str(folder), osp.basename(path))
        with open(path) as source, open(target, 'w') as copy:
            copy.write(''.join(source.readlines()[:lines]))
        return target
    return first_lines


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module, to call its ``main(argv)`` in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(config, data_root, weights, work_dir, *extra):
    tool = load_tool('test')
    tool.main([osp.join(REPO, config), '--work-dir', work_dir, *extra, '--cfg-options',
               f'model.clip_path={weights}', f'test_dataloader.dataset.data_root={data_root}',
               'test_dataloader.num_workers=0'])
    with open(osp.join(work_dir, 'metrics.json')) as f:
        return json.load(f)


# --- tools/test.py in-process, and its one-line errors ---------------------------------------

def run_main(capsys, *args):
    """tools/test.py in-process through its guard; returns (exit code, stderr)."""
    import pytest
    from sclip.cli import main_guard
    tool = load_tool('test')
    with pytest.raises(SystemExit) as exit_info:
        main_guard(lambda: tool.main(list(args)))
    return exit_info.value.code, capsys.readouterr().err


def assert_one_line(code, err, *needles) -> str:
    """Exit code 2 and exactly one ``error:`` line holding every needle; returns the line."""
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def options(root, weights, *more):
    """``--cfg-options`` pointing a config at a dataset root and a checkpoint."""
    return ['--cfg-options', f'test_dataloader.dataset.data_root={root}', f'model.clip_path={weights}',
            'test_dataloader.num_workers=0', *more]


# --- discriminating models and inputs for the fidelity tests --------------------------------------

def write_multihead_checkpoint(folder: str, width: int = 64, heads: int = 2, layers: int = 12,
                               sharpness: float = 3.0, embed_dim: int = 8, seed: int = 0) -> Tuple[str, str]:
    """A random CLIP ViT with ``heads`` heads of ``width // heads`` (OpenAI's files always have
    64-wide heads, so this one is an open_clip checkpoint of a model config registered under
    the returned name) -> (checkpoint path, ``model.arch``). ``sharpness`` scales the patch
    embedding, the vision q/k projections and the token embedding, and the joint embedding is
    narrow (``embed_dim`` 8): a random CLIP's class embeddings are otherwise nearly parallel
    (cosine 0.99 between names at width 32), no pixel passes a probability threshold, and every
    pixel of many configs gets one label."""
    import open_clip
    name = f'sclip-test-w{width}-h{heads}-l{layers}-e{embed_dim}-s{sharpness:g}'
    config = dict(embed_dim=embed_dim, quick_gelu=True,
                  vision_cfg=dict(image_size=224, layers=layers, width=width, head_width=width // heads,
                                  patch_size=16),
                  text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    os.makedirs(folder, exist_ok=True)
    config_path = osp.join(folder, f'{name}.json')
    with open(config_path, 'w') as f:
        json.dump(config, f)
    open_clip.add_model_config(config_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith('bias'):
                param.normal_(0, 0.02)
        model.visual.conv1.weight.mul_(sharpness)
        for block in model.visual.transformer.resblocks:
            block.attn.in_proj_weight[:2 * width].mul_(sharpness)
        model.token_embedding.weight.mul_(sharpness)
    path = osp.join(folder, f'{name}.pt')
    torch.save(model.state_dict(), path)
    return path, name


def structured_image(size: Tuple[int, int], seed: int = 3) -> torch.Tensor:
    """A uint8 BGR image (3, H, W) as mmseg's loader gives it: overlapping flat-colour rectangles
    with mild noise, so regions (not single pixels) differ, as in a photograph."""
    rng = np.random.default_rng(seed)
    height, width = size
    image = np.empty((3, height, width), np.float32)
    image[:] = rng.integers(0, 256, 3)[:, None, None]
    for _ in range(12):
        top, left = rng.integers(0, height), rng.integers(0, width)
        rows, cols = rng.integers(height // 6, height // 2 + 1), rng.integers(width // 6, width // 2 + 1)
        image[:, top:top + rows, left:left + cols] = rng.integers(0, 256, 3)[:, None, None]
    image += rng.normal(0, 8, image.shape)
    return torch.from_numpy(np.clip(image, 0, 255).astype(np.uint8))


def label_spread(labels: torch.Tensor) -> Tuple[int, float]:
    """(number of distinct labels, fraction of pixels of the most frequent one)."""
    _, counts = torch.unique(labels, return_counts=True)
    return len(counts), float(counts.max()) / labels.numel()


# The methods mmseg's BaseSegmentor declares abstract, which a stand-in official segmentor (written
# as text into a fake checkout) must define; appended to a class body indented by 4.
MMSEG_BOILERPLATE = '''
    def _forward(self, inputs, data_samples=None):
        pass

    def inference(self, inputs, batch_img_metas):
        pass

    def encode_decode(self, inputs, batch_img_metas):
        pass

    def extract_feat(self, inputs):
        pass

    def loss(self, inputs, data_samples):
        pass
'''


def report_rows(out: str) -> dict:
    """``tools/benchmark.py``'s report lines (``name  value``) by name."""
    return dict(line.split('  ', 1) for line in out.splitlines() if '  ' in line)
