"""GroupViT's and TCL's official code against our configs: one process, the same images and checkpoint.

Why: their official evaluations (NVlabs/GroupViT, kakaobrain/tcl) are written for mmseg 0.x and
mmcv 1.x, which cannot be installed beside mmseg 1.x / mmcv 2.x. Their *model* code does not need
them: it needs a handful of names at import time and mmseg 0.x's ``EncoderDecoder`` test loop
(slide windows, resize, softmax, argmax) around their ``encode_decode``. While the checkout is
imported, ``zero_x_shims`` puts those names in ``sys.modules`` (and takes them out afterwards):

- ``mmseg.models.EncoderDecoder``: ``ZeroXEncoderDecoder``, mmseg 0.x's ``simple_test`` /
  ``inference`` / ``slide_inference`` / ``whole_inference`` (the base class both segmentors call);
- ``mmcv.Config`` (mmengine's), ``mmcv.utils.Registry`` (type-keyed build, mmcv 1.x's
  ``build_from_cfg``), ``mmcv.utils.get_logger``, ``mmcv.runner.CheckpointLoader`` (``torch.load``);
- refusing stubs (``official_compare.stub_module``) for what only their training and data loading
  import: ``mmcv.parallel``, ``mmseg.datasets``, ``diffdist``, ``webdataset``, ``braceexpand``,
  ``nltk``.

Everything timed on the official side is their code: the grouping ViT and
``GroupViTSegInference.encode_decode``; TCL's CLIP, masker, decoder, PAMR and keep-prior branch in
``TCLSegInference.encode_decode``. Images go in as their 0.x pipeline leaves them: our config's
resized uint8 BGR image through mmcv's ``imnormalize`` (``Normalize(to_rgb=True)``). The checkout's
top-level packages (``models``, ``utils``, ``datasets``, TCL's ``sclip``) are imported under their
own names while ours are set aside, and taken out of ``sys.modules`` afterwards.
einops and omegaconf must be importable (e.g. a private folder on PYTHONPATH).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import os.path as osp
import sys
import types
import warnings
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from .errors import SCLIPError
from .official_compare import in_checkout, stub_module

# Our segmentor type -> the official evaluation it follows.
METHODS = {'GroupViTSegmentor': 'groupvit', 'TCLSegmentor': 'tcl'}
# Our benchmark -> the official dataset config (segmentation/configs/_base_/datasets/), per method.
DATASET_CONFIGS = {
    'groupvit': {'voc21': 'pascal_voc12.py', 'context60': 'pascal_context.py', 'coco_object': 'coco.py'},
    'tcl': {'voc21': 'pascal_voc12.py', 'voc20': 'pascal_voc12_20.py', 'context60': 'pascal_context.py',
            'context59': 'pascal_context59.py', 'coco_object': 'coco.py', 'coco_stuff164k': 'stuff.py',
            'cityscapes': 'cityscapes.py', 'ade20k': 'ade20k.py'},
}
# Imported only by their training and data-loading code.
TRAINING_ONLY = ('mmcv.parallel', 'mmcv.parallel.data_container', 'mmseg.datasets', 'mmseg.datasets.pipelines',
                 'diffdist', 'diffdist.functional', 'webdataset', 'braceexpand', 'nltk')

# Names newer libraries dropped that their training code imports (GroupViT's image augmentation).
TRAINING_ONLY_NAMES = {'timm.data.transforms': ('_pil_interp',)}


class ZeroXEncoderDecoder(torch.nn.Module):
    """mmseg 0.x's ``EncoderDecoder`` test path (mmseg/models/segmentors/encoder_decoder.py, v0.x):
    what ``GroupViTSegInference`` and ``TCLSegInference`` inherit around their ``encode_decode``.
    Their ``__init__`` calls ``super(EncoderDecoder, self).__init__()`` and sets ``test_cfg``,
    ``num_classes`` and ``align_corners`` itself."""

    def slide_inference(self, img, img_meta, rescale):
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        batch_size, _, h_img, w_img = img.size()
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds = img.new_zeros((batch_size, self.num_classes, h_img, w_img))
        count_mat = img.new_zeros((batch_size, 1, h_img, w_img))
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y1, x1 = h_idx * h_stride, w_idx * w_stride
                y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                crop_seg_logit = self.encode_decode(img[:, :, y1:y2, x1:x2], img_meta)
                preds += F.pad(crop_seg_logit, (int(x1), int(preds.shape[3] - x2), int(y1), int(preds.shape[2] - y2)))
                count_mat[:, :, y1:y2, x1:x2] += 1
        assert (count_mat == 0).sum() == 0
        preds = preds / count_mat
        if rescale:
            preds = F.interpolate(preds, size=img_meta[0]['ori_shape'][:2], mode='bilinear',
                                  align_corners=self.align_corners)
        return preds

    def whole_inference(self, img, img_meta, rescale):
        seg_logit = self.encode_decode(img, img_meta)
        if rescale:
            seg_logit = F.interpolate(seg_logit, size=img_meta[0]['ori_shape'][:2], mode='bilinear',
                                      align_corners=self.align_corners)
        return seg_logit

    def inference(self, img, img_meta, rescale):
        assert self.test_cfg.mode in ['slide', 'whole']
        if self.test_cfg.mode == 'slide':
            seg_logit = self.slide_inference(img, img_meta, rescale)
        else:
            seg_logit = self.whole_inference(img, img_meta, rescale)
        output = F.softmax(seg_logit, dim=1)
        if img_meta[0]['flip']:
            flip_direction = img_meta[0]['flip_direction']
            output = output.flip(dims=(3,) if flip_direction == 'horizontal' else (2,))
        return output

    def simple_test(self, img, img_meta, rescale=True):
        seg_pred = self.inference(img, img_meta, rescale).argmax(dim=1)
        return list(seg_pred.cpu().numpy())


class ZeroXRegistry:
    """mmcv 1.x's ``Registry`` as their ``models/builder.py`` uses it: ``register_module()`` and
    ``build(cfg)`` (the class named by ``type``, the other keys as keyword arguments)."""

    def __init__(self, name: str):
        self.name, self.classes = name, {}

    def register_module(self, name=None, force=False, module=None):
        def register(cls):
            self.classes[name or cls.__name__] = cls
            return cls
        return register(module) if module is not None else register

    def build(self, cfg):
        cfg = dict(cfg)
        kind = cfg.pop('type')
        if kind not in self.classes:
            raise KeyError(f'{kind} is not in the {self.name} registry')
        return self.classes[kind](**cfg)


class CheckpointLoader:
    """mmcv 1.x's ``mmcv.runner.CheckpointLoader`` for a local file."""

    @staticmethod
    def load_checkpoint(filename, map_location=None, logger=None):
        # the released files hold tensors and plain containers only: read as our own loader reads them
        from .models.trained_checkpoint import TENSORS_ONLY
        return torch.load(filename, map_location=map_location, weights_only=False, pickle_module=TENSORS_ONLY)


def _get_logger(name, log_file=None, log_level=logging.INFO, file_mode='w'):
    logger = logging.getLogger(name)
    logger.setLevel(log_level)
    return logger


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    module.__path__ = []  # a package: its submodules are shims too
    return module


def shim_modules() -> Dict[str, types.ModuleType]:
    """The mmcv 1.x / mmseg 0.x names their code imports at load time (module docstring)."""
    import mmcv as mmcv2
    from mmengine import Config
    mmcv = _module('mmcv', Config=Config, imread=mmcv2.imread, imwrite=mmcv2.imwrite,
                   bgr2rgb=mmcv2.bgr2rgb, rgb2bgr=mmcv2.rgb2bgr, mkdir_or_exist=lambda *a, **k: None)
    modules = {'mmcv': mmcv,
               'mmcv.utils': _module('mmcv.utils', Registry=ZeroXRegistry, get_logger=_get_logger),
               'mmcv.runner': _module('mmcv.runner', CheckpointLoader=CheckpointLoader),
               'mmseg': _module('mmseg'),
               'mmseg.models': _module('mmseg.models', EncoderDecoder=ZeroXEncoderDecoder)}
    for name in TRAINING_ONLY:
        modules[name] = stub_module(name)
    modules['mmcv'].utils, modules['mmcv'].runner = modules['mmcv.utils'], modules['mmcv.runner']
    modules['mmseg'].models = modules['mmseg.models']
    return modules


def _top_level_names(repo: str) -> set:
    return {osp.splitext(name)[0] for name in os.listdir(repo)
            if name.endswith('.py') or osp.isfile(osp.join(repo, name, '__init__.py'))}


@contextlib.contextmanager
def _training_only_names():
    """``TRAINING_ONLY_NAMES`` that the installed library lacks, as refusing stubs while the checkout
    is imported."""
    import importlib

    added = []
    for module_name, names in TRAINING_ONLY_NAMES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if not hasattr(module, name):
                setattr(module, name, getattr(stub_module(module_name), name))
                added.append((module, name))
    try:
        yield
    finally:
        for module, name in added:
            delattr(module, name)


@contextlib.contextmanager
def zero_x_shims(repo: str):
    """While the checkout is imported: the shims in ``sys.modules``, the checkout first on
    ``sys.path``, its top-level packages under their own names (ours of the same name, such as
    ``sclip`` for TCL, set aside). Afterwards ``sys.modules`` holds what it held before; the
    official modules keep their references to what they imported."""
    shims = shim_modules()  # before ours are set aside: it reads the real mmcv and mmengine
    owned = _top_level_names(repo) | {name.split('.')[0] for name in shims}

    def taken(key):
        return key.split('.')[0] in owned

    saved = {key: sys.modules.pop(key) for key in list(sys.modules) if taken(key)}
    sys.modules.update(shims)
    sys.path.insert(0, repo)
    try:
        with warnings.catch_warnings(), _training_only_names():
            warnings.simplefilter('ignore')  # timm's deprecated module paths, pkg_resources
            yield
    finally:
        sys.path.remove(repo)
        for key in [key for key in sys.modules if taken(key)]:
            del sys.modules[key]
        sys.modules.update(saved)


def _in_checkout(repo: str):
    """TCL's eval config and both dataset configs are named relative to the checkout (``sys.path``
    is ``zero_x_shims``' part)."""
    return in_checkout(repo, on_path=False)


def official_test_cfg(repo: str, method: str, benchmark: str) -> dict:
    """``test_cfg`` (slide windows; GroupViT's bg_thresh) of the checkout's dataset config of ``benchmark``."""
    from mmengine import Config
    name = DATASET_CONFIGS[method].get(benchmark)
    if name is None:
        raise SCLIPError(f'--against-official: the official {method} code has no dataset config for {benchmark}; '
                         f'measure one of: {", ".join(sorted(DATASET_CONFIGS[method]))}.')
    path = osp.join(repo, 'segmentation', 'configs', '_base_', 'datasets', name)
    if not osp.isfile(path):
        raise SCLIPError(f'--against-official {repo}: no {osp.relpath(path, repo)} there; '
                         f'is this the official {method} checkout?')
    return dict(Config.fromfile(path, import_custom_modules=False).test_cfg)


def _load_official(repo: str, method: str, imports: Sequence[str]) -> list:
    """The modules ``imports`` of the checkout, imported under the shims."""
    import importlib
    try:
        with zero_x_shims(repo), _in_checkout(repo):
            return [importlib.import_module(name) for name in imports]
    except SCLIPError:
        raise
    except Exception as error:  # an import the stack lacks: name it
        raise SCLIPError(f'--against-official {repo}: the official {method} code could not be imported: '
                         f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""} '
                         '(einops and omegaconf must be importable; timm 0.4-1.x)')


def build_official_groupvit(repo: str, checkpoint: str, class_names: Sequence[str], benchmark: str):
    """``GroupViTSegInference`` as main_seg.py builds it: the model of
    configs/group_vit_gcc_yfcc_30e.yml with ``checkpoint`` loaded, the 'simple' template's text
    embedding of ``class_names`` (a first 'background' is with_bg), the dataset config's test_cfg."""
    repo = osp.abspath(repo)
    test_cfg = official_test_cfg(repo, 'groupvit', benchmark)
    models, seg, data, utils = _load_official(
        repo, 'groupvit', ['models', 'segmentation.evaluation.group_vit_seg', 'datasets', 'utils'])
    with _in_checkout(repo):
        cfg = utils.config.load_config(osp.join('configs', 'group_vit_gcc_yfcc_30e.yml'))
    model = models.build_model(cfg.model)
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    model.load_state_dict(state['model'], strict=False)  # utils/checkpoint.py load_checkpoint
    model.eval()
    with_bg = class_names[0] == 'background'
    transform = data.build_text_transform(False, cfg.data.text_aug, with_dc=False)
    tokens = utils.build_dataset_class_tokens(transform, cfg.evaluate.seg.template,
                                              class_names[1:] if with_bg else class_names)
    with torch.no_grad():
        embedding = model.build_text_embedding(tokens)
    return seg.GroupViTSegInference(model, embedding, with_bg=with_bg, test_cfg=test_cfg).eval()


def build_official_tcl(repo: str, checkpoint: str, clip_file: str, class_names: Sequence[str], benchmark: str):
    """``TCLSegInference`` as main.py's ``--resume tcl.pth --eval`` builds it: configs/tcl.yml,
    then configs/eval.yml (pamr, bg_thresh 0.4, kp_w 0.3, template 'custom'), its CLIP built from
    ``clip_file`` (the ViT-B/16 it downloads otherwise), ``checkpoint`` loaded over it."""
    from omegaconf import OmegaConf
    repo = osp.abspath(repo)
    test_cfg = official_test_cfg(repo, 'tcl', benchmark)
    models, seg, data, templates, utils = _load_official(
        repo, 'tcl', ['models', 'segmentation.evaluation.tcl_seg', 'datasets.builder', 'datasets.templates', 'utils'])
    with _in_checkout(repo):
        cfg = OmegaConf.merge(utils.config.load_config(osp.join('configs', 'tcl.yml')),
                              OmegaConf.load(osp.join('configs', 'eval.yml')))
    cfg.model.clip_model = osp.abspath(clip_file)
    cfg.checkpoint.resume = osp.abspath(checkpoint)
    model = models.build_model(cfg.model)
    utils.checkpoint.load_checkpoint(cfg, model, None, None, None)
    model.eval()
    with_bg = class_names[0] == 'background'
    transform = data.build_text_transform()
    tokens = [torch.stack([transform(t.format(name)) for t in templates.get_template(cfg.evaluate.template)])
              for name in (class_names[1:] if with_bg else class_names)]  # builder.build_dataset_class_tokens
    with torch.no_grad():
        embedding = model.build_text_embedding(torch.stack(tokens))
    evaluate = {k: v for k, v in OmegaConf.to_container(cfg.evaluate).items()}
    return seg.TCLSegInference(model, embedding, with_bg=with_bg, test_cfg=test_cfg, **evaluate).eval()


class ZeroXSegmentor(torch.nn.Module):
    """An mmseg 0.x segmentor behind mmseg 1.x's ``test_step``, as ``official_compare.compare``
    calls it: the sample's resized uint8 BGR image through mmcv's ``imnormalize`` (the 0.x
    ``Normalize(to_rgb=True)``, ImageNet mean/std) and ``ImageToTensor``, then ``simple_test``
    with ``rescale=True`` to the original size, as 0.x's ``single_gpu_test`` runs it."""

    MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def test_step(self, batch):
        import mmcv
        import numpy as np
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        results = []
        for image, sample in zip(batch['inputs'], batch['data_samples']):
            hwc = image.permute(1, 2, 0).numpy()
            normalised = mmcv.imnormalize(hwc, np.array(self.MEAN, dtype=np.float32),
                                          np.array(self.STD, dtype=np.float32), to_rgb=True)
            img = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]
            meta = dict(ori_shape=(*sample.ori_shape[:2], 3), img_shape=(*img.shape[-2:], 3), flip=False)
            label = self.segmentor.simple_test(img, [meta], rescale=True)[0]
            results.append(SegDataSample(pred_sem_seg=PixelData(data=torch.from_numpy(label)[None])))
        return results


@dataclasses.dataclass
class TrainedFiles:
    """The checkpoint both sides load, and (TCL) the CLIP file its official code builds from."""
    checkpoint: str
    clip: Optional[str] = None


def random_checkpoints(method: str, folder: str, clip_file: Optional[str] = None) -> TrainedFiles:
    """Full-size random checkpoints in the released layouts (group_vit_gcc_yfcc_30e.pth, tcl.pth)."""
    if method == 'groupvit':
        from .models.groupvit.model import GroupViTArch
        from .models.groupvit.testing import write_groupvit_checkpoint
        path = osp.join(folder, 'group_vit_gcc_yfcc_30e-random.pth')
        if not osp.isfile(path):
            write_groupvit_checkpoint(path, **dataclasses.asdict(GroupViTArch()))
        return TrainedFiles(path)
    from .models.tcl.model import TCLArch
    from .models.tcl.testing import write_tcl_checkpoint
    path = osp.join(folder, 'tcl-random.pth')
    if not osp.isfile(path):
        write_tcl_checkpoint(path, **dataclasses.asdict(TCLArch()))
    return TrainedFiles(path, clip_file)


def build_official_trained(repo: str, cfg, files: TrainedFiles) -> ZeroXSegmentor:
    """The official segmentor of our config ``cfg``'s method (GroupViT or TCL), wrapped for ``compare``."""
    method = METHODS[cfg.model.type]
    with open(cfg.model.class_names) as handle:
        class_names = [line.strip() for line in handle if line.strip()]
    if method == 'groupvit':
        segmentor = build_official_groupvit(repo, files.checkpoint, class_names, cfg.benchmark)
    else:
        segmentor = build_official_tcl(repo, files.checkpoint, files.clip, class_names, cfg.benchmark)
    return ZeroXSegmentor(segmentor).eval()
