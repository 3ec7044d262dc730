"""Every method on one image, side by side: what tools/web_demo.py computes, without the page.

Why: comparing methods on one's own image is what users of every one of these repositories ask
for, and each method is a config away. The methods offered are read from the harness itself:
every ``configs/_base_/<method>.py`` (a file that names its ``method``), the CLIP and MaskCLIP
baselines of SCLIP's table (sclip/paper.py), and every method registered in
``sclip.models.methods`` that no such file uses (built on SCLIP's base), so a method added to the
harness appears here without touching this module. Each runs with its benchmark-free defaults
(its ``_base_`` file, or ``configs/demo/<method>.py`` where the base leaves a setting to the
benchmarks) and the knobs of :class:`Knobs`, through exactly
the config keys ``tools/test.py --cfg-options`` takes (:func:`method_options`), so a label map
here equals that of ``tools/test.py`` on the same image with the same settings.

The methods of one request share what sweeps share (sclip/group_eval.py): one CLIP (and one
foundation model) for all, one ``shared`` dict in which CLIP's unmodified blocks of every
window run once, and the class embeddings (encoded once, then read from the text cache).
"""
from __future__ import annotations

import glob
import logging
import os
import os.path as osp
import re
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from .errors import SCLIPError, one_line

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_DIR = osp.join(REPO, 'configs', '_base_')
DEMO_DIR = osp.join(REPO, 'configs', 'demo')
DEFAULT_SHORT_SIDE = 336  # configs/demo/sclip.py and most benchmark pipelines
MAX_SIDE = 1024           # larger uploads are downscaled first (the methods see short side 336 anyway)
# The attention method's four keys in SCLIP's base, cleared when another registered method runs on it.
ATTENTION_KEYS = ('attention', 'num_modified_blocks', 'last_block_residual', 'last_block_mlp')


@dataclass(frozen=True)
class MethodEntry:
    """One method the page offers: its base config and the overrides that make it that method."""
    key: str                 # stable identifier: the base file's stem, or the registered name
    name: str                # what the page shows
    base: str                # configs/_base_/<file>.py or configs/demo/<file>.py
    overrides: Dict = field(default_factory=dict)


def method_catalogue() -> List[MethodEntry]:
    """Every ``configs/_base_/*.py`` that names a ``method`` (SCLIP first), the baselines of
    SCLIP's table (overrides of its configs, sclip/paper.py), then every registered method type
    none of them uses. A method's config is ``configs/demo/<file>`` when there is one (a setting
    its base leaves to the benchmarks), else its base."""
    from mmengine import Config
    from .models.methods import METHODS
    from .paper import METHOD_CONFIGS, METHOD_OVERRIDES, SOURCES
    entries, used = [], set()
    paths = sorted(glob.glob(osp.join(BASE_DIR, '*.py')), key=lambda p: (osp.basename(p) != 'sclip.py', p))
    for path in paths:
        cfg = Config.fromfile(path)
        if not isinstance(cfg.get('method'), str) or 'model' not in cfg:
            continue  # runtime, pipelines: not a method
        method = cfg.model.get('method')
        used.add((method if isinstance(method, str) else (method or {}).get('type')) or 'attention')
        demo = osp.join(DEMO_DIR, osp.basename(path))
        entries.append(MethodEntry(osp.splitext(osp.basename(path))[0], cfg.method,
                                   demo if osp.isfile(demo) else path))
    sclip_base = next(entry.base for entry in entries if entry.key == 'sclip')
    for key, overrides in METHOD_OVERRIDES.items():  # the baselines of SCLIP's table (CLIP, MaskCLIP)
        if METHOD_CONFIGS.get(key) == METHOD_CONFIGS['sclip']:
            row = re.search(r'\((\w+) row\)', SOURCES.get(key, ''))
            entries.append(MethodEntry(key, f'{row.group(1) if row else key} (baseline)', sclip_base, dict(overrides)))
    for name in sorted(set(METHODS) - used):
        overrides = {'model.method': dict(type=name), **{f'model.{k}': None for k in ATTENTION_KEYS}}
        entries.append(MethodEntry(name, f'{name} (registered method, on SCLIP\'s base)', sclip_base, overrides))
    return entries


@dataclass
class Knobs:
    """The main settings, applied to every method of a request; ``None`` keeps each method's
    own default (its ``_base_`` file)."""
    short_side: int = DEFAULT_SHORT_SIDE
    window: Optional[int] = None      # model.slide_crop (0: the whole image in one pass)
    stride: Optional[int] = None      # model.slide_stride
    prob_thd: Optional[float] = None  # model.prob_thd: below it, a pixel goes to class 0
    area_thd: Optional[float] = None  # model.area_thd
    pamr_steps: Optional[int] = None  # model.pamr_steps

    def options(self) -> Dict:
        keys = dict(window='model.slide_crop', stride='model.slide_stride', prob_thd='model.prob_thd',
                    area_thd='model.area_thd', pamr_steps='model.pamr_steps')
        return {key: getattr(self, name) for name, key in keys.items() if getattr(self, name) is not None}


def pipeline(short_side: int) -> list:
    """The image pipeline of the demo (configs/demo/sclip.py's, with the short side chosen)."""
    return [dict(type='LoadImageFromNDArray'), dict(type='Resize', scale=(2048, int(short_side)), keep_ratio=True),
            dict(type='PackSegInputs')]


# --- classes ---------------------------------------------------------------------------------

def parse_typed_classes(text: str) -> List[List[str]]:
    """"background, cat, dog" (or one class a line) -> one name per class; spaces around names
    are the user's typing, not prompt text."""
    names = [name.strip() for line in (text or '').splitlines() for name in line.split(',')]
    names = [name for name in names if name]
    if not names:
        raise SCLIPError('no class names: type them comma separated (e.g. "background, cat, dog") '
                         'or pick a benchmark vocabulary.')
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SCLIPError(f'class {duplicates[0]!r} is typed twice; give each class once.')
    return [[name] for name in names]


def vocabularies() -> Dict[str, str]:
    """Benchmark vocabularies of configs/class_names/ (SCLIP's files), by file stem."""
    folder = osp.join(REPO, 'configs', 'class_names')
    return {osp.splitext(name)[0]: osp.join(folder, name) for name in sorted(os.listdir(folder))
            if name.endswith('.txt')}


def write_class_file(classes: List[List[str]], separator: str, folder: str) -> str:
    """A class-name file in a method's own separator (names containing it are refused)."""
    for names in classes:
        for name in names:
            if separator.strip() and separator.strip() in name:
                raise SCLIPError(f'class name {name!r} contains {separator.strip()!r}, which separates '
                                 'synonyms for this method; remove it.')
    path = osp.join(folder, f'classes_{separator.encode().hex()}.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(separator.join(names) for names in classes) + '\n')
    return path


# --- weights ---------------------------------------------------------------------------------

@dataclass
class Weights:
    """Where the weights come from: an explicit CLIP file or tag, a folder of downloaded files
    (``--weights DIR``), else open_clip's cache as ``tools/test.py`` finds it (``'openai'``).
    ``random``: the page was started with --random-weights (tiny random models, tests only)."""
    clip: Optional[str] = None
    folder: Optional[str] = None
    random: bool = False

    def clip_path(self, arch: str) -> str:
        """An explicit file or tag, else ``<arch>.pt`` in the folder, else ``'openai'`` when
        open_clip has it cached; the page never starts a download of hundreds of MB."""
        if self.clip:
            return self.clip
        if self.folder:  # README "Weights": ViT-B-16.pt, ViT-L-14.pt, ViT-L-14-336px.pt
            for name in (f'{arch}.pt', f'{arch}px.pt'):
                if osp.isfile(osp.join(self.folder, name)):
                    return osp.join(self.folder, name)
        import open_clip
        from .models.clip_loader import cached_weights
        tag_cfg = open_clip.get_pretrained_cfg(arch, 'openai') if arch in open_clip.list_models() else {}
        if not tag_cfg or cached_weights(tag_cfg) is None:
            where = f'{self.folder} or ' if self.folder else ''
            raise SCLIPError(f'no {arch} weights: {arch}.pt is not in {where}open_clip\'s cache; download it '
                             '(README "Weights") and pass --weights DIR, or give its path in the weights field.')
        return 'openai'

    def vfm(self, vfm: dict) -> dict:
        """The foundation model's settings: tiny and random with random weights; else its
        official file from the folder, else from the cache where the CLI downloads it."""
        from .models.vfm import get_spec
        from .models.vfm.checkpoint import default_cache_dir
        vfm = dict(vfm)
        if self.random:
            return dict(vfm, checkpoint=None, download=False, tiny=True)
        if vfm.get('checkpoint'):
            return vfm
        spec = get_spec(vfm['type'])
        for folder in ([self.folder] if self.folder else []) + [default_cache_dir()]:
            if osp.isfile(osp.join(folder, spec.filename)):
                return dict(vfm, checkpoint=osp.join(folder, spec.filename))
        where = f'{self.folder} or ' if self.folder else ''
        raise SCLIPError(f'no {vfm["type"]} weights: {spec.filename} is not in {where}{default_cache_dir()}; '
                         f'download {spec.url} into the --weights folder.')


def method_options(entry: MethodEntry, knobs: Knobs, weights: Weights, class_file: str) -> Dict:
    """The ``--cfg-options`` of ``tools/test.py`` that make ``entry``'s base config this run."""
    from mmengine import Config
    base = Config.fromfile(entry.base)
    options = dict(entry.overrides)
    options['model.class_names'] = class_file
    options['model.clip_path'] = weights.clip_path(base.model.get('arch') or 'ViT-B-16')
    options.update(knobs.options())
    if base.model.get('vfm'):
        for key, value in weights.vfm(base.model.vfm).items():
            options[f'model.vfm.{key}'] = value
    return options


def method_config(entry: MethodEntry, options: Dict, short_side: int):
    """The loaded config: the base file with ``options``, and the demo pipeline."""
    from .config_file import load_config
    cfg = load_config(entry.base, options, work_dir=tempfile.gettempdir())
    cfg.test_pipeline = pipeline(short_side)
    return cfg


# --- one request -----------------------------------------------------------------------------

@dataclass
class MethodResult:
    entry: MethodEntry
    labels: Optional[np.ndarray] = None   # (H, W) class indices at the image's size
    seconds: float = 0.0
    error: str = ''

    def areas(self, num_classes: int) -> np.ndarray:
        """Fraction of the image each class covers."""
        counts = np.bincount(self.labels.ravel(), minlength=num_classes)
        return counts / max(self.labels.size, 1)


def prepare_image(image: np.ndarray, max_side: int = MAX_SIDE):
    """(RGB image at most ``max_side`` on its long side, a note when it was downscaled)."""
    from PIL import Image
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, ''
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.array(Image.fromarray(image).resize(size, Image.BICUBIC))
    return resized, (f'the image ({width}x{height}) was resized to {size[0]}x{size[1]} (long side at most '
                     f'{max_side} px); the methods then resize it as their pipelines do.')


class SideBySide:
    """Runs methods on images; keeps CLIP (and foundation models) loaded between requests."""

    def __init__(self, weights: Weights, device=None):
        import torch
        from .group_eval import ModelBuilder
        self.weights = weights
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.builder = ModelBuilder(self.device)

    def build(self, entry: MethodEntry, options: Dict, short_side: int):
        from .plan import model_plan
        cfg = method_config(entry, options, short_side)
        return self.builder.build(model_plan(cfg, options, label=entry.name)), cfg

    def run(self, image: np.ndarray, classes: List[List[str]], entries: Sequence[MethodEntry], knobs: Knobs,
            progress: Callable[[float, str], None] = lambda f, s: None) -> Iterator[MethodResult]:
        """Each entry's result on the RGB ``image``, as soon as it is done (never raises for one
        method: its ``error`` holds one line)."""
        import torch
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope
        from .identity import canonical
        init_default_scope('mmseg')
        with tempfile.TemporaryDirectory() as tmp:
            sample = Compose(pipeline(knobs.short_side))(dict(img=np.ascontiguousarray(image[..., ::-1])))
            shared_by_preprocessor: Dict[str, dict] = {}
            for index, entry in enumerate(entries):
                progress(index / max(len(entries), 1), f'{entry.name}: {index + 1} of {len(entries)}')
                result = MethodResult(entry)
                start = time.perf_counter()
                try:
                    separator = _separator(entry)
                    options = method_options(entry, knobs, self.weights, write_class_file(classes, separator, tmp))
                    model, cfg = self.build(entry, options, knobs.short_side)
                    shared = shared_by_preprocessor.setdefault(canonical(cfg.model.get('data_preprocessor')), {})
                    with torch.no_grad():
                        data = model.data_preprocessor(dict(inputs=[sample['inputs']],
                                                            data_samples=[sample['data_samples']]), False)
                        output = model.predict(data['inputs'], data['data_samples'], shared=shared)[0]
                    result.labels = output.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                except Exception as error:  # noqa: BLE001 - one line in this method's panel, the others go on
                    result.error = one_line(error) or type(error).__name__
                    if not isinstance(error, SCLIPError):
                        logging.getLogger('sclip').warning('%s failed:\n%s', entry.name, traceback.format_exc())
                result.seconds = time.perf_counter() - start
                yield result
            progress(1.0, 'done')


def _separator(entry: MethodEntry) -> str:
    from mmengine import Config
    return Config.fromfile(entry.base).model.get('class_name_separator', ', ')


# --- random weights (tests and offline trials only) -----------------------------------------------

def random_clip(folder: str, seed: int = 0) -> str:
    """A tiny random 12-block CLIP ViT-B/16-shaped model (width 64) in OpenAI's checkpoint layout,
    loaded through the real loader. Its predictions mean nothing."""
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    path = osp.join(folder, f'random-clip-seed{seed}.pt')
    if osp.isfile(path):
        return path
    torch.manual_seed(seed)
    model = CLIP(32, vision_cfg=CLIPVisionCfg(layers=12, width=64, patch_size=16, image_size=224),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
                 quick_gelu=True)
    state = {k: v.half() for k, v in model.state_dict().items()}
    state.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    os.makedirs(folder, exist_ok=True)
    torch.save(state, path + '.tmp')
    os.replace(path + '.tmp', path)
    return path
