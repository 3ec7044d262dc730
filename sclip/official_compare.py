"""A config against its method's official segmentor: one process, the same images and weights.

Why: "as fast as the official code" and "the same labels as the official code" are claims only
when both run side by side. The official repositories of these methods are mmseg segmentors
(``clip_segmentor.py`` and the like, configured by ``configs/cfg_<benchmark>.py``); this module
imports such a checkout as it is (no file of it is edited), builds its segmentor from its own
config with our weights file, and times it against our config in interleaved rounds.

The official code is written for CUDA (``device=torch.device('cuda')`` defaults, ``.cuda()``,
``.to('cuda')``); while it runs, those calls are redirected to the CPU (``cuda_redirected``), and
its ``@MODELS.register_module()`` decorators leave our registry alone (``registrations_ignored``).

The codes that combine CLIP with a foundation model (ProxyCLIP, FSA, CASS) fetch it from the
network: ``torch.hub.load('facebookresearch/dino:main', ...)`` and
``torch.hub.load_state_dict_from_url``; ``hub_redirected`` serves the first from a local clone of
that hub repository (``source='local'``) and the second from the checkpoint file our config loads
(matched by file name), so that both sides run the same weights. Their vendored packages
(ProxyCLIP's modified ``open_clip``) shadow ours while they are imported
(``checkout_modules_first``), and their OpenAI CLIP download is answered with our weights file.
They also cast CLIP and the foundation model to fp16 (``precision='fp16'``, ``.half()``): a CUDA
speed choice which our configs' default precision drops on a CPU (``precision='auto'`` is fp32
there); ``half_redirected`` drops it on the official side as well, so that both sides compute the
same fp32 numerics (fp16 matrix products on a CPU are many times slower than fp32 ones and would
time the kernels, not the codes). Trident's and CorrCLIP's vendored open_clip fetch OpenCLIP tags
from the Hugging Face hub (``download_pretrained_from_hf``), answered with our weights file too;
Trident takes SAM's checkpoint by file (``CHECKPOINT_KEYS``), matched by its official file name.

SegEarth-OV ``torch.load``s the SimFeatUp checkpoint it ships: ``checkpoint_loads_redirected``
answers with our file of that name; its featup CUDA kernel is ours on the CPU
(``_cuda_extensions_redirected``). FLOSS ships a modified ``mmseg``: its segmentor is found inside
that package (``package_module_defining``), imported by its dotted name with the package shadowing
ours, its registries left unattached to our scope (``registry_scopes_shared``), and its script's
keyword ``mode='fusion'`` given as an override (``--official-options mode=fusion``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import os.path as osp
import statistics
import sys
import time
import types
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence
from urllib.parse import urlparse

import torch

from .errors import SCLIPError

# Official config files whose name is not cfg_<benchmark>.py.
OFFICIAL_CONFIG_NAMES = {'cityscapes': 'cfg_city_scapes.py'}
# The constructor argument that takes the CLIP weights, by official code (ITACLIP's: model_name).
WEIGHTS_KEYS = ('clip_path', 'model_name')
# Constructor arguments that take a foundation model's checkpoint file, by official code, with the
# official file-name prefix of that checkpoint (Trident's SAM: sam_ckpt, sam_vit_b_01ec64.pth).
CHECKPOINT_KEYS = {'sam_ckpt': 'sam_'}


def _cpu(device):
    """``device`` with CUDA replaced by the CPU (strings, torch.device, ints as CUDA ordinals)."""
    if isinstance(device, int) or (isinstance(device, (str, torch.device)) and str(device).startswith('cuda')):
        return torch.device('cpu')
    return device


@contextlib.contextmanager
def cuda_redirected():
    """Make the official code's CUDA calls land on the CPU while it runs, without editing it."""
    saved = dict(tensor_cuda=torch.Tensor.cuda, module_cuda=torch.nn.Module.cuda, tensor_to=torch.Tensor.to,
                 module_to=torch.nn.Module.to, synchronize=torch.cuda.synchronize,
                 empty_cache=torch.cuda.empty_cache)

    def on_cpu(original):
        """``original`` (Tensor.to or Module.to) with a CUDA device argument replaced by the CPU."""
        def to(self, *args, **kwargs):
            if args and not isinstance(args[0], torch.dtype) and not torch.is_tensor(args[0]):
                args = (_cpu(args[0]),) + args[1:]
            if 'device' in kwargs:
                kwargs['device'] = _cpu(kwargs['device'])
            return original(self, *args, **kwargs)
        return to

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.to = on_cpu(saved['tensor_to'])
    torch.nn.Module.to = on_cpu(saved['module_to'])
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved['tensor_cuda'], saved['module_cuda']
        torch.Tensor.to, torch.nn.Module.to = saved['tensor_to'], saved['module_to']
        torch.cuda.synchronize, torch.cuda.empty_cache = saved['synchronize'], saved['empty_cache']


def _fp32(dtype):
    """``dtype`` with float16 replaced by float32."""
    return torch.float32 if dtype == torch.float16 else dtype


@contextlib.contextmanager
def half_redirected():
    """Make the official code's fp16 casts (``.half()``, ``.to(torch.float16)``) keep float32 while it
    runs, without editing it: what our ``precision='auto'`` does on a CPU."""
    saved = dict(tensor_half=torch.Tensor.half, module_half=torch.nn.Module.half, tensor_to=torch.Tensor.to,
                 module_to=torch.nn.Module.to)

    def in_fp32(original):
        """``original`` (Tensor.to or Module.to) with a float16 dtype argument replaced by float32."""
        def to(self, *args, **kwargs):
            args = tuple(_fp32(arg) if isinstance(arg, torch.dtype) else arg for arg in args)
            if 'dtype' in kwargs:
                kwargs['dtype'] = _fp32(kwargs['dtype'])
            return original(self, *args, **kwargs)
        return to

    torch.Tensor.half = lambda self, *a, **k: self.float()
    torch.nn.Module.half = lambda self: self.float()
    torch.Tensor.to = in_fp32(saved['tensor_to'])
    torch.nn.Module.to = in_fp32(saved['module_to'])
    try:
        yield
    finally:
        torch.Tensor.half, torch.nn.Module.half = saved['tensor_half'], saved['module_half']
        torch.Tensor.to, torch.nn.Module.to = saved['tensor_to'], saved['module_to']


def official_half_dropped(ours) -> bool:
    """Whether the official side's fp16 casts are dropped (``half_redirected``): where ours drops
    them, i.e. runs fp32 (CASS keeps its official fp16 DINO keys at every precision, so its
    official side keeps them too)."""
    return getattr(ours, 'precision', None) == 'fp32' and \
        getattr(getattr(getattr(ours, 'backbone', None), 'method', None), 'official_vfm_fp16', True)


@contextlib.contextmanager
def hub_redirected(hub_dir: Optional[str], checkpoints: Sequence[str] = ()):
    """The official code's network loads served locally: ``torch.hub.load(<github repo>, name)`` from
    ``hub_dir`` (a clone of that repository, ``source='local'``) and
    ``torch.hub.load_state_dict_from_url(url)`` from the file of ``checkpoints`` of the URL's file
    name (the weights our config loads); anything else is a one-line error, never a download."""
    saved_load, saved_from_url = torch.hub.load, torch.hub.load_state_dict_from_url

    def load(repo_or_dir, model, *args, source='github', **kwargs):
        if source == 'local':
            return saved_load(repo_or_dir, model, *args, source='local', **kwargs)
        if hub_dir is None or not osp.isfile(osp.join(hub_dir, 'hubconf.py')):
            raise SCLIPError(f"the official code loads {model!r} from torch.hub's {repo_or_dir!r} (network); pass "
                             f'--hub-dir DIR, a local clone of {repo_or_dir.split(":")[0]} (a folder with hubconf.py)'
                             + (f', not {hub_dir!r}' if hub_dir else '') + '.')
        kwargs.pop('trust_repo', None)
        kwargs.pop('force_reload', None)
        return saved_load(hub_dir, model, *args, source='local', **kwargs)

    def load_state_dict_from_url(url, *args, **kwargs):
        name = osp.basename(urlparse(url).path)
        for path in checkpoints:
            if osp.basename(path) == name:
                return torch.load(path, map_location='cpu', weights_only=True)
        raise SCLIPError(f'the official code downloads {url}; no local file named {name!r} was given '
                         '(--vfm-checkpoint FILE, the file our config loads, under its official name).')

    torch.hub.load, torch.hub.load_state_dict_from_url = load, load_state_dict_from_url
    try:
        yield
    finally:
        torch.hub.load, torch.hub.load_state_dict_from_url = saved_load, saved_from_url


@contextlib.contextmanager
def checkpoint_loads_redirected(checkpoints: Sequence[str] = ()):
    """The official code's ``torch.load`` of a checkpoint it ships (SegEarth-OV's SimFeatUp
    ``simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt``) answered with the file of
    ``checkpoints`` of the same file name, the one our config loads; any other load as written."""
    saved_load = torch.load
    by_name = {osp.basename(path): path for path in checkpoints}

    def load(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and osp.basename(os.fspath(f)) in by_name:
            f = by_name[osp.basename(os.fspath(f))]
        return saved_load(f, *args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = saved_load


@contextlib.contextmanager
def checkout_modules_first(repo: str):
    """While the official module is imported, the checkout's own top-level packages and modules
    (ProxyCLIP's modified ``open_clip``) win over ours of the same name already imported; ours are
    back in ``sys.modules`` afterwards (the official code keeps references to its own)."""
    names = {osp.splitext(name)[0] for name in os.listdir(repo)
             if name.endswith('.py') or osp.isfile(osp.join(repo, name, '__init__.py'))}
    shadowed = {name for name in names if name in sys.modules}

    def ours(key):
        return key.split('.')[0] in shadowed

    saved = {key: sys.modules.pop(key) for key in list(sys.modules) if ours(key)}
    try:
        yield
    finally:
        for key in [key for key in sys.modules if ours(key)]:
            del sys.modules[key]
        sys.modules.update(saved)


def _checkout_modules(repo: str) -> List[types.ModuleType]:
    """The imported modules whose file lies in the checkout ``repo`` (an absolute path)."""
    return [module for module in list(sys.modules.values())
            if osp.abspath(getattr(module, '__file__', None) or '/').startswith(repo + os.sep)]


def _downloads_answered(repo: str, function: str, weights: Optional[str]) -> None:
    """Each module of the checkout holding a download ``function`` answers with ``weights`` instead."""
    if weights is None:
        return
    for module in _checkout_modules(repo):
        if callable(getattr(module, function, None)):
            setattr(module, function, lambda *a, **k: weights)


def _hf_downloads_redirected(repo: str, weights: Optional[str]) -> None:
    """The checkout's vendored open_clip downloads the OpenCLIP tags (Trident's and CorrCLIP's
    ``laion2b_s32b_b79k`` for ViT-H/14) from the Hugging Face hub: its ``download_pretrained_from_hf``
    answers with ``weights`` (an open_clip state dict) instead."""
    _downloads_answered(repo, 'download_pretrained_from_hf', weights)


def _openai_downloads_redirected(repo: str, weights: Optional[str]) -> None:
    """The checkout's vendored open_clip downloads OpenAI's CLIP for ``pretrained='openai'``: each of
    its modules holding ``download_pretrained_from_url`` answers with ``weights`` instead."""
    _downloads_answered(repo, 'download_pretrained_from_url', weights)


def _cuda_extensions_redirected(repo: str) -> None:
    """A CUDA kernel the checkout imports optionally and calls unconditionally (SegEarth-OV's
    SimFeatUp: ``AdaptiveConv = None`` when featup's CUDA extension is not built, then
    ``AdaptiveConv.apply(source, kernel)``) is answered on the CPU by ours of the same
    computation (``sclip.models.simfeatup.adaptive_conv``, offset by offset as a direct kernel
    does): the checkout's Python fallback, ``adaptive_conv_py_simple`` (commented out at its call),
    unfolds all 49 shifted copies of a 224 window's 512 channels at once (about 5 GB a call), more
    than this machine holds beside the rest."""
    from .models.simfeatup import adaptive_conv
    for module in _checkout_modules(repo):
        if 'AdaptiveConv' in vars(module) and module.AdaptiveConv is None:
            module.AdaptiveConv = types.SimpleNamespace(apply=adaptive_conv)


@contextlib.contextmanager
def registrations_ignored():
    """The official modules register classes under names our registries may already hold
    (``CLIPForSegmentation``, dataset names): while they are imported, registering is a no-op."""
    from mmengine.registry import Registry
    original = Registry.register_module

    def register_module(self, name=None, force=False, module=None):
        if module is not None:
            return module
        if inspect.isclass(name):  # used as @register_module without parentheses
            return name
        return lambda cls: cls

    Registry.register_module = register_module
    try:
        yield
    finally:
        Registry.register_module = original


@contextlib.contextmanager
def registry_scopes_shared():
    """A checkout that ships its own copy of a package we import (FLOSS's modified ``mmseg``)
    creates registries under the scope ours already holds (``Registry('model', parent=...,
    scope='mmseg')``, which mmengine refuses as a second child of that scope): while it is
    imported, such a second child is left unattached; ours stays the scope's registry."""
    from mmengine.registry import Registry
    original = Registry._add_child

    def add_child(self, registry):
        if registry.scope not in self.children:
            original(self, registry)

    Registry._add_child = add_child
    try:
        yield
    finally:
        Registry._add_child = original


@contextlib.contextmanager
def in_checkout(repo: str, working: Optional[str] = None, on_path: bool = True):
    """Run as the official scripts are run: ``working`` (default: the checkout's root) the working
    folder, the root first on ``sys.path`` unless ``on_path`` is False; both restored afterwards."""
    cwd = os.getcwd()
    if on_path:
        sys.path.insert(0, repo)
    os.chdir(working or repo)
    try:
        yield
    finally:
        os.chdir(cwd)
        if on_path:
            sys.path.remove(repo)


def official_config_path(repo: str, benchmark: str, official_config: Optional[str] = None) -> str:
    """The official config file of a benchmark in the checkout (``configs/cfg_<benchmark>.py``)."""
    relative = official_config or osp.join('configs', OFFICIAL_CONFIG_NAMES.get(benchmark, f'cfg_{benchmark}.py'))
    path = relative if osp.isabs(relative) else osp.join(repo, relative)
    if not osp.isfile(path):
        raise SCLIPError(f'--against-official {repo}: no official config {relative!r} there; pass '
                         '--official-config FILE (relative to the checkout) for this benchmark.')
    return path


def _defines(path: str, class_name: str) -> bool:
    with open(path, encoding='utf-8', errors='replace') as handle:
        return f'class {class_name}(' in handle.read()


def _module_defining(repo: str, class_name: str) -> str:
    """The top-level ``.py`` file of the checkout that defines ``class_name``, else the dotted name
    of the module of one of its packages that does (FLOSS's ``mmseg.models.segmentors.naclip.naclip``
    in the modified mmseg it ships: ``package_module_defining``)."""
    for name in sorted(os.listdir(repo)):
        path = osp.join(repo, name)
        if name.endswith('.py') and osp.isfile(path) and _defines(path, class_name):
            return path
    dotted = package_module_defining(repo, class_name)
    if dotted:
        return dotted
    raise SCLIPError(f'--against-official {repo}: no .py file there defines class {class_name!r} '
                     '(the type of its config\'s model); is this the method\'s official checkout?')


def package_module_defining(repo: str, class_name: str) -> Optional[str]:
    """The dotted name of the module, inside a package of the checkout (folders with
    ``__init__.py`` from the top down), that defines ``class_name``; None where none does.
    Imported by that name, its relative imports and its package's own modules work as written."""
    for root, folders, files in os.walk(repo):
        folders[:] = sorted(folder for folder in folders if osp.isfile(osp.join(root, folder, '__init__.py')))
        if root == repo:
            continue
        for name in sorted(files):
            if name.endswith('.py') and _defines(osp.join(root, name), class_name):
                parts = osp.relpath(osp.join(root, osp.splitext(name)[0]), repo).split(os.sep)
                return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
    return None


def _import_official(repo: str, source: str) -> types.ModuleType:
    """The official module: a top-level file of the checkout under a private name, or a module of
    one of its packages by its dotted name (the package then shadows ours of the same name while
    it is imported: ``checkout_modules_first``)."""
    if osp.isfile(source):
        spec = importlib.util.spec_from_file_location(f'_official_{osp.splitext(osp.basename(source))[0]}', source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(source)


def stub_module(name: str) -> types.ModuleType:
    """A module ``name`` whose every attribute refuses to run."""
    module = types.ModuleType(name)

    def refuse(attribute):
        if attribute.startswith('__'):  # __file__, __path__: what module walkers look up
            raise AttributeError(attribute)

        def call(*args, **kwargs):
            raise SCLIPError(f'{name}.{attribute} was stubbed (--official-stub {name}) but the official code '
                             'calls it: this config needs that module; drop the stub.')
        return call

    module.__getattr__ = refuse
    return module


@contextlib.contextmanager
def stubbed(names: Sequence[str]):
    """While the official module is imported, ``names`` are stubs (``stub_module``): for an import
    it makes at load time for a branch the measured config never takes (ClearCLIP's BLIP code,
    whose dependencies this stack lacks, when its config runs CLIP or GEM)."""
    saved = {name: sys.modules[name] for name in names if name in sys.modules}
    sys.modules.update({name: stub_module(name) for name in names})
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _checkout_path(repo: str, value: str) -> str:
    """A file the official config names relative to the checkout (or, as ITACLIP's do, to the
    folder it runs from, the checkout's parent), as an absolute path; ``value`` where neither has it."""
    if osp.isabs(value):
        return value
    return next((osp.join(base, value) for base in (repo, osp.dirname(repo)) if osp.exists(osp.join(base, value))),
                value)


def build_official_segmentor(repo: str, config_path: str, weights: Optional[str], hub_dir: Optional[str] = None,
                             checkpoints: Sequence[str] = (), half_to_fp32: bool = False,
                             stubs: Sequence[str] = (), overrides: Optional[dict] = None) -> torch.nn.Module:
    """The official segmentor of ``config_path`` in checkout ``repo``, on the CPU, with ``weights``
    as its CLIP (its ``clip_path`` or ``model_name``, or its OpenAI download; None: the config's own,
    e.g. 'ViT-B/16', which the official code downloads); its torch.hub loads from ``hub_dir`` and
    ``checkpoints`` (``hub_redirected``); ``half_to_fp32``: its fp16 casts keep float32
    (``half_redirected``); ``stubs``: modules it imports for branches the config never runs;
    ``overrides``: constructor arguments over its config's (``--official-options``: a short class
    file, Trident's ViT-H/14 ``model_type``, CorrCLIP's ``instance_mask_path``); a foundation model's
    checkpoint goes to its ``CHECKPOINT_KEYS`` argument (Trident's ``sam_ckpt``)."""
    from mmengine import Config
    repo = osp.abspath(repo)
    try:
        model_cfg = dict(Config.fromfile(config_path).model)
    except Exception as error:
        raise SCLIPError(f'official config {config_path!r} could not be read: {str(error).splitlines()[0]}')
    class_name = model_cfg.pop('type', None)
    if not class_name:
        raise SCLIPError(f'official config {config_path!r} has no model.type.')
    source = _module_defining(repo, class_name)
    try:  # in the checkout: the official configs name their class files relative to it
        with in_checkout(repo), registrations_ignored(), registry_scopes_shared(), cuda_redirected(), \
                hub_redirected(hub_dir, checkpoints), checkpoint_loads_redirected(checkpoints), \
                half_redirected() if half_to_fp32 else contextlib.nullcontext():
            with checkout_modules_first(repo), stubbed(stubs):
                module = _import_official(repo, source)
                _openai_downloads_redirected(repo, None if weights is None else osp.abspath(weights))
                _cuda_extensions_redirected(repo)
                _hf_downloads_redirected(repo, None if weights is None else osp.abspath(weights))
            segmentor_class = getattr(module, class_name)
            accepted = inspect.signature(segmentor_class.__init__).parameters
            weights_key = next((key for key in WEIGHTS_KEYS if key in accepted), None)
            if weights is not None and weights_key:
                model_cfg[weights_key] = osp.abspath(weights)
            if 'device' in accepted:
                model_cfg['device'] = torch.device('cpu')
            if 'dataset' in accepted and 'dataset' not in model_cfg:  # CASS: its eval.py passes the config path
                model_cfg['dataset'] = config_path
            model_cfg.update(official_overrides(segmentor_class, checkpoints, overrides or {}))
            for key, value in list(model_cfg.items()):  # class files named relative to the checkout
                if key.endswith('_path') and isinstance(value, str):
                    model_cfg[key] = _checkout_path(repo, value)
            segmentor = segmentor_class(**model_cfg)
    except SCLIPError:
        raise
    except Exception as error:
        raise SCLIPError(f'the official segmentor {class_name} of {source} could not be built: '
                         f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}')
    return segmentor.eval()


def official_overrides(segmentor_class, checkpoints: Sequence[str], overrides: dict) -> dict:
    """The constructor arguments set over the official config: each foundation-model checkpoint
    the constructor takes by file (``CHECKPOINT_KEYS``, matched on the official file name), then
    ``overrides``; a key the constructor does not take is a one-line error."""
    parameters = inspect.signature(segmentor_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    settings = {key: osp.abspath(path) for key, prefix in CHECKPOINT_KEYS.items() if key in parameters
                for path in checkpoints if osp.basename(path).startswith(prefix)}
    for key, value in overrides.items():
        if key not in parameters and not takes_any:
            raise SCLIPError(f'--official-options {key}=...: the official {segmentor_class.__name__} takes no '
                             f'argument {key!r}; it takes {", ".join(p for p in parameters if p != "self")}.')
        settings[key] = value
    return settings


def official_pamr_steps(segmentor) -> Optional[int]:
    """The PAMR steps the official segmentor runs: its ``pamr`` module's ``num_iter`` (the SCLIP
    family's ``PAMR(pamr_steps, ...) if pamr_steps > 0 else None``); None where it has no such
    attribute (a code that refines otherwise, or not at all)."""
    if not hasattr(segmentor, 'pamr'):
        return None
    pamr = segmentor.pamr
    return 0 if pamr is None else getattr(pamr, 'num_iter', None)


def check_same_pamr(our_steps: int, segmentor) -> None:
    """Refuse to time unlike runs: PAMR costs as much as the rest of some methods (NACLIP's
    official segmentor runs 10 steps unless its ``eval.py --pamr off``; our NACLIP configs run
    none, ``configs/naclip_pamr/`` ten)."""
    theirs = official_pamr_steps(segmentor)
    ours = int(our_steps or 0)
    if theirs is not None and theirs != ours:
        raise SCLIPError(f'--against-official: ours runs {ours} PAMR steps (model.pamr_steps), the official '
                         f'{type(segmentor).__name__} {theirs}; time like with like: --official-options '
                         f'pamr_steps={ours}, or --cfg-options model.pamr_steps={theirs} (or the config that runs it).')


def packed_samples(cfg, image_files: Sequence[str]) -> List[dict]:
    """Each image through the config's test pipeline (labels left out), as ``test_step`` takes them."""
    from mmengine.dataset import Compose
    from mmseg.registry import TRANSFORMS
    steps = [dict(step) for step in cfg.test_dataloader.dataset.pipeline if 'LoadAnnotations' not in step['type']]
    pipeline = Compose([TRANSFORMS.build(step) for step in steps])
    return [pipeline(dict(img_path=path, seg_map_path=None, reduce_zero_label=False, seg_fields=[]))
            for path in image_files]


def predict_labels(model, samples: Sequence[dict], official: bool, half_to_fp32: bool = False) -> List[torch.Tensor]:
    """Label maps of ``model`` for ``samples`` (one image a step, as both evaluations run);
    ``official``: under the CUDA redirection, and ``half_to_fp32`` the fp16 one."""
    import copy
    labels = []
    context = cuda_redirected() if official else contextlib.nullcontext()
    half = half_redirected() if official and half_to_fp32 else contextlib.nullcontext()
    with torch.no_grad(), context, half:
        for sample in samples:
            batch = dict(inputs=[sample['inputs']], data_samples=[copy.deepcopy(sample['data_samples'])])
            labels.append(model.test_step(batch)[0].pred_sem_seg.data.cpu())
    return labels


@dataclass
class Comparison:
    """Seconds per round of each side, and how many predicted pixels agree."""
    ours: List[float]
    official: List[float]
    same_pixels: int
    pixels: int

    @property
    def ratio(self) -> float:
        """How many times faster ours is (median official time / median time of ours)."""
        return statistics.median(self.official) / statistics.median(self.ours)

    @property
    def agreement(self) -> float:
        return self.same_pixels / self.pixels


def compare(ours, official, samples: Sequence[dict], rounds: int,
            clock: Callable[[], float] = time.perf_counter, half_to_fp32: bool = False,
            log: Callable[[str], None] = lambda message: None) -> Comparison:
    """``timed_rounds`` of two mmseg segmentors on ``samples``."""
    return timed_rounds(lambda warm_up: predict_labels(ours, samples[:1] if warm_up else samples, official=False),
                        lambda warm_up: predict_labels(official, samples[:1] if warm_up else samples, official=True,
                                                       half_to_fp32=half_to_fp32),
                        rounds, clock, log)


def timed_rounds(ours: Callable[[bool], List[torch.Tensor]], official: Callable[[bool], List[torch.Tensor]],
                 rounds: int, clock: Callable[[], float] = time.perf_counter,
                 log: Callable[[str], None] = lambda message: None) -> Comparison:
    """Interleaved rounds (ours, official, official, ours, ...) after one warm-up each, so that
    a slower or faster stretch of the machine hits both sides alike; ``log`` hears each time as it
    is taken (a run on a busy machine can take an hour). Each side is a callable that predicts the
    label maps of all the images, or with ``True`` of the first one only (the warm-up: first-call
    allocations, text caches)."""
    ours(True)
    official(True)
    timings: Dict[bool, List[float]] = {False: [], True: []}
    labels: Dict[bool, List[torch.Tensor]] = {}
    for round_index in range(rounds):
        for is_official in ((False, True) if round_index % 2 == 0 else (True, False)):
            start = clock()
            labels[is_official] = (official if is_official else ours)(False)
            timings[is_official].append(clock() - start)
            log(f'round {round_index + 1} of {rounds}: {"official" if is_official else "ours"} '
                f'{timings[is_official][-1]:.2f} s')
    same = sum(int((a == b).sum()) for a, b in zip(labels[False], labels[True]))
    total = sum(a.numel() for a in labels[False])
    return Comparison(ours=timings[False], official=timings[True], same_pixels=same, pixels=total)
