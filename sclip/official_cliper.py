"""CLIPer's official inference beside our config: its pipeline, its loader, one process.

Why: CLIPer's official code (linsun449/cliper.code) is not an mmseg segmentor: ``ovs/main_ovs.py``
reads a yaml config, builds ``ovs/pipeline.py``'s ``Pipeline`` (its ``modified_clip`` CLIPer over
OpenAI's ``clip`` package), loads the images with its own dataset classes (``data/load.py``: PIL,
its ``_resize`` and CLIP's normalisation) and labels each image with ``util/miou.py``'s
``cam_to_label``. ``official_compare.build_official_segmentor`` cannot build it, so this module
runs that script's steps on the checkout as it is (nothing of it is edited): its yaml, its
``main_ovs.py`` argument defaults with ``--refinement None`` (CLIPer without FGC, as our configs),
its ``load_dataset`` over a VOC-layout folder of our images, our weights file in place of the
OpenAI checkpoint its ``CLIPer`` loads from a fixed path, and its per-image loop from ``pipe(...)``
to ``cam_to_label`` (what ``main_ovs.py`` times) as the timed step.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence

import torch

from .errors import SCLIPError
from .official_compare import checkout_modules_first, cuda_redirected, in_checkout, stubbed

# util/args.py's defaults that main_ovs.py's config gets, with --refinement None (no FGC)
MAIN_OVS_DEFAULTS = dict(fuse_feature=True, refinement='None', attention_idx=1, attn_type='fused-attn',
                         time_step=45, sd_version='v2.1', log_path='log')
# the yaml datasets whose official loader reads VOC's layout (VOC12SegmentationDataset with 'VOC2012'
# in its root: VOC's classes)
VOC_LAYOUT = ('voc21',)


def official_yaml_path(repo: str, benchmark: str, official_config: Optional[str] = None) -> str:
    """The checkout's ViT-B/16 yaml of a benchmark (``scripts/config/vit-b-16/ovs_<benchmark>.yaml``)."""
    relative = official_config or osp.join('scripts', 'config', 'vit-b-16', f'ovs_{benchmark}.yaml')
    path = relative if osp.isabs(relative) else osp.join(repo, relative)
    if not osp.isfile(path):
        raise SCLIPError(f'--against-official {repo}: no official config {relative!r} there; pass '
                         '--official-config FILE (a yaml of scripts/config/, relative to the checkout).')
    return path


def voc2012_layout(folder: str, image_files: Sequence[str]) -> List[str]:
    """``image_files`` as JPEGs of VOC2012's layout, the names its loader decodes
    (``<folder>/VOC2012/JPEGImages/2000_00000N.jpg``, ``SegmentationClass/2000_00000N.png``
    all-background labels of the image's size, ``val.txt``); the JPEG paths, for our side too."""
    from PIL import Image
    root = osp.join(folder, 'VOC2012')
    os.makedirs(osp.join(root, 'JPEGImages'), exist_ok=True)
    os.makedirs(osp.join(root, 'SegmentationClass'), exist_ok=True)
    names, files = [], []
    for index, source in enumerate(image_files):
        name = f'2000_{index:06d}'
        image = Image.open(source).convert('RGB')
        path = osp.join(root, 'JPEGImages', f'{name}.jpg')
        image.save(path, quality=95)
        Image.new('L', image.size, 0).save(osp.join(root, 'SegmentationClass', f'{name}.png'))
        names.append(name)
        files.append(path)
    with open(osp.join(root, 'val.txt'), 'w') as handle:  # its np.loadtxt of one line is 0-d, without a len():
        handle.write('\n'.join(names * (2 if len(names) == 1 else 1)) + '\n')  # one image is listed twice
    return files


def _in_checkout(repo: str):
    """The checkout's root on ``sys.path`` and ``ovs/`` the working folder, as its
    ``scripts/sh_ovs.sh`` runs ``main_ovs.py`` (its yaml names files relative to ``ovs/``)."""
    return in_checkout(repo, osp.join(repo, 'ovs') if osp.isdir(osp.join(repo, 'ovs')) else repo)


@contextlib.contextmanager
def _checkout_folders_first(repo: str):
    """While the checkout is imported, modules already imported under the names of its top-level
    folders (namespace packages: ``data``, ``util``) are set aside, so that its own are found;
    they are back afterwards."""
    names = {name for name in os.listdir(repo) if osp.isdir(osp.join(repo, name)) and name.isidentifier()}
    saved = {key: sys.modules.pop(key) for key in list(sys.modules) if key.split('.')[0] in names}
    try:
        yield
    finally:
        sys.modules.update(saved)


@contextlib.contextmanager
def _checkout_modules_forgotten(repo: str):
    """After the block, ``sys.modules`` forgets the checkout's modules (its folders are namespace
    packages with common names, ``data``, ``util``, ``ovs``, which ``checkout_modules_first`` does
    not see): the code keeps what it imported, and a later import of those names is not theirs."""
    try:
        yield
    finally:
        theirs = [name for name, module in list(sys.modules.items()) if _lies_in(module, repo)]
        for name in theirs:  # found first: a namespace package's path is computed from its parent's
            del sys.modules[name]


def _lies_in(module, repo: str) -> bool:
    """Whether ``module`` (a file, or a namespace package's folders) lies in the checkout."""
    try:
        places = [getattr(module, '__file__', None)] + list(getattr(module, '__path__', None) or [])
    except (KeyError, TypeError):
        return False
    return any(isinstance(place, str) and osp.abspath(place).startswith(repo + os.sep) for place in places)


def _is_jit_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (OpenAI's released ``.pt`` files) rather than a
    state dict (our random weights): a zip holding ``constants.pkl``."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith('/constants.pkl') or name == 'constants.pkl' for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


@contextlib.contextmanager
def _clip_load_redirected(weights: str):
    """OpenAI ``clip.load`` of any name (CLIPer's fixed ``/home/.../ViT-B-16.pt``) loads ``weights``.
    A state-dict file takes clip.load's own state-dict branch: its ``torch.jit.load`` attempt,
    which would read the open file to its end before the fallback ``torch.load`` of the same
    handle (an EOFError on this torch), is answered with the RuntimeError it means."""
    import clip
    original = clip.load

    def not_a_jit_archive(*args, **kwargs):
        raise RuntimeError(f'{weights} is a state dict, not a TorchScript archive')

    def load(name, *args, **kwargs):
        if _is_jit_archive(weights):
            return original(weights, *args, **kwargs)
        saved = torch.jit.load
        torch.jit.load = not_a_jit_archive
        try:
            return original(weights, *args, **kwargs)
        finally:
            torch.jit.load = saved

    clip.load = load
    try:
        yield
    finally:
        clip.load = original


class OfficialCLIPer:
    """CLIPer's ``main_ovs.py`` on prepared images: its ``Pipeline`` and text features, its
    dataset's items (loaded and resized before timing, as our samples are), and the per-image
    steps its loop times, from ``pipe(...)`` to ``cam_to_label``."""

    def __init__(self, pipe, cfg, dataset, fg, bg, cam_to_label, count: int):
        self.pipe, self.cfg, self.dataset = pipe, cfg, dataset
        self.fg, self.bg, self.cam_to_label = fg, bg, cam_to_label
        self.items = [dataset[index] for index in range(min(count, len(dataset)))]

    def predict_labels(self, count: Optional[int] = None) -> List[torch.Tensor]:
        """The label map (0 background, c + 1 class c) of each of the first ``count`` images."""
        import torch.nn.functional as F
        labels = []
        with torch.no_grad(), cuda_redirected():
            for ori_img, img, mask, _, _ in self.items[:count]:
                height, width = mask.shape[-2:]
                pred_mask, final_score = self.pipe(ori_img[None], img[None], self.fg, self.bg)
                pred_mask = F.interpolate(pred_mask[None], size=(height, width), mode='bilinear')[0]
                pred_mask = pred_mask / (pred_mask.amax((-1, -2), keepdim=True) + 1e-5) * final_score[..., None, None]
                _, arg_mask = self.cam_to_label(pred_mask[None].clone(), cls_label=final_score[None],
                                                bkg_thre=self.cfg.bkg_thre, cls_thre=self.cfg.score_threshold,
                                                is_normalize=self.cfg.is_normalize)
                labels.append(arg_mask[0].cpu())
        return labels


def build_official_cliper(repo: str, yaml_path: str, weights: str, image_files: Sequence[str], folder: str,
                          stubs: Sequence[str] = ()) -> OfficialCLIPer:
    """CLIPer's official pipeline of ``yaml_path`` in checkout ``repo`` on the CPU with ``weights``
    as its CLIP, over ``image_files`` (VOC2012's layout, ``voc2012_layout``, under ``folder``);
    ``stubs``: modules it imports that the run never calls (its Stable Diffusion refinement's
    ``diffusion_model.stable_diffusion``, ``util/miou.py``'s ``texttable``). Its one fp16 cast (the
    resized positional embedding's ``.half()``, a rounding ours reproduces) is kept as written; on
    the CPU ``clip.load`` gives an fp32 CLIP, as ours runs."""
    repo = osp.abspath(repo)
    try:
        import clip  # noqa: F401  (OpenAI's package, which CLIPer's modified_clip builds on)
    except ImportError:
        raise SCLIPError("CLIPer's official code imports OpenAI's clip package (pip install openai-clip into a "
                         'folder on PYTHONPATH): it is not importable here.') from None
    root = osp.join(folder, 'VOC2012')
    try:
        with _in_checkout(repo), cuda_redirected(), _clip_load_redirected(osp.abspath(weights)):
            with checkout_modules_first(repo), _checkout_folders_first(repo), _checkout_modules_forgotten(repo), \
                    stubbed(stubs):
                from util.tools import load_yaml
                from ovs.pipeline import Pipeline
                from data.load import load_dataset
                from util.miou import cam_to_label
            cfg = load_yaml(osp.abspath(yaml_path))
            if cfg is None:
                raise SCLIPError(f'official config {yaml_path!r} could not be read as yaml.')
            if cfg.dataset_name not in VOC_LAYOUT:
                raise SCLIPError(f'official config {yaml_path!r}: dataset_name {cfg.dataset_name!r}; the CLIPer '
                                 f'comparison reads images in VOC\'s layout ({", ".join(VOC_LAYOUT)}): pass '
                                 'configs/cliper/voc21.py and its ovs_voc21.yaml.')
            for key, value in MAIN_OVS_DEFAULTS.items():
                cfg.__dict__.setdefault(key, value)
            cfg.refinement = 'None'
            cfg.semantic_templates = [line.strip() for line in open(cfg.semantic_templates)]
            cfg.voc12_root, cfg.label_dir = root, osp.join(root, 'SegmentationClass')
            cfg.img_name_list_path = osp.join(root, 'val.txt')
            pipe = Pipeline(cfg, torch.device('cpu'))
            dataset, bg, fg = load_dataset(cfg, pipe.cliper)
            official = OfficialCLIPer(pipe, cfg, dataset, fg, bg, cam_to_label, len(image_files))
    except SCLIPError:
        raise
    except Exception as error:
        raise SCLIPError(f'the official CLIPer pipeline of {repo} could not be built: '
                         f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}')
    if len(official.items) != len(image_files):
        raise SCLIPError(f'the official CLIPer loader read {len(official.items)} images of {len(image_files)}.')
    return official


def official_predictor(official: OfficialCLIPer) -> Callable[[bool], List[torch.Tensor]]:
    """``timed_rounds``'s official side: the first image for the warm-up, else all."""
    return lambda warm_up: official.predict_labels(1 if warm_up else None)
