"""Checks that run before a model is built or an image is read.

Why: a long evaluation that dies after loading weights because a path was wrong wastes
minutes; a class-name file with the wrong number of lines gives a silently wrong mIoU.
Each check raises ``SCLIPError`` with one line naming the key or path and the fix.
"""
from __future__ import annotations

import os
import os.path as osp
import zipfile

from mmengine import Config

from .class_names import load_class_names
from .config_check import check_registered_keys
from .data_check import check_data_paths, check_dataset, dataset_cfg, dataset_classes
from .errors import SCLIPError


def check_structure(cfg: Config) -> None:
    """``model`` is a dict; the dataset's and the evaluator's keys are ones their classes take."""
    from mmseg.registry import DATASETS, METRICS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    model = cfg.get('model')
    if not isinstance(model, dict):
        raise SCLIPError(f'model={model!r} must be a dict; set its keys one by one, e.g. '
                         '--cfg-options model.logit_scale=40.')
    check_registered_keys('test_dataloader.dataset', dataset_cfg(cfg), DATASETS)
    loader = cfg.get('test_dataloader', {})
    for key, low in (('num_workers', 0), ('batch_size', 1)):
        value = loader.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise SCLIPError(f'test_dataloader.{key}={value!r} must be an integer of at least {low}.')
    evaluators = cfg.get('test_evaluator')
    for i, evaluator in enumerate(evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]):
        if evaluator is not None:
            name = 'test_evaluator' if not isinstance(evaluators, (list, tuple)) else f'test_evaluator[{i}]'
            check_registered_keys(name, evaluator, METRICS)


def check_class_names(cfg: Config) -> None:
    model = cfg.get('model', {})
    path = model.get('class_names')
    if not path:
        raise SCLIPError('model.class_names is not set; point it at a class-name file.')
    dataset = dataset_cfg(cfg)
    classes = dataset_classes(dataset)
    if model.get('type') == 'CLIPerSegmentor':  # background words, then classes; its own label mapping
        from .models.cliper_segmentor import dataset_class_count
        count = dataset_class_count(path, model.get('reduce_zero_label', False), model.get('background_label'))
        if count != len(classes):
            raise SCLIPError(f'{path} with model.reduce_zero_label={model.get("reduce_zero_label", False)} gives '
                             f'{count} classes but {dataset["type"]} has {len(classes)}; use the class file and '
                             'label mapping of this benchmark (configs/cliper/).')
        return
    names = load_class_names(path, model.get('class_name_separator', ', '))
    if names.num_classes != len(classes):
        raise SCLIPError(f'{path} lists {names.num_classes} classes but {dataset["type"]} has '
                         f'{len(classes)}; use the class-name file of this benchmark.')


def check_ranking_file(cfg: Config) -> None:
    """A FLOSS template-ranking file of the computed kind (``keys='class'``: none ships for the
    dataset) exists; else one line with the command that writes it."""
    text = cfg.get('model', {}).get('text')
    ranking = text.get('template_ranking') if isinstance(text, dict) else None
    if not isinstance(ranking, dict) or ranking.get('keys') != 'class' or not ranking.get('file'):
        return
    path = osp.expanduser(str(ranking['file']))
    if osp.isfile(path):
        return
    from .floss_ranking import ranking_command
    config = cfg.filename or 'CONFIG'
    if not osp.relpath(config).startswith('..'):
        config = osp.relpath(config)
    raise SCLIPError(f"model.text.template_ranking.file={path!r} not found: FLOSS's rankings of this dataset are "
                     f'computed, not shipped; write them with: {ranking_command(config, path)} '
                     "(plus this run's --cfg-options, if any).")


def check_weights(cfg: Config) -> None:
    from .models.clip_loader import check_arch_name
    check_arch_name(cfg.get('model', {}).get('arch', 'ViT-B-16'))
    check_load_from(cfg)
    pretrained = cfg.get('model', {}).get('pretrained')
    if pretrained and (os.sep in str(pretrained) or str(pretrained).endswith(('.pt', '.pth', '.bin'))):
        if not osp.isfile(osp.expanduser(str(pretrained))):
            raise SCLIPError(f'model.clip_path={pretrained!r}: file not found; pass an existing '
                             "checkpoint or 'openai' to download OpenAI's weights.")


def check_load_from(cfg: Config) -> None:
    """``load_from`` (mmengine's checkpoint into the whole model) exists and holds only tensors:
    torch would otherwise stop with a traceback advising to unpickle the file's code."""
    path = cfg.get('load_from')
    if not path:
        return
    if not osp.isfile(osp.expanduser(str(path))):
        raise SCLIPError(f'load_from={path!r}: file not found; pass an existing checkpoint or leave load_from unset.')
    import torch
    from .errors import load_failure_reason
    try:
        torch.load(osp.expanduser(str(path)), map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as error:  # noqa: BLE001 - corrupt file, unsafe pickle, not a checkpoint
        raise SCLIPError(f'load_from={path!r} could not be read as a checkpoint ({load_failure_reason(error)[:200]}); '
                         'pass a torch.save file of tensors (a state dict) or leave load_from unset.') from None


def checks_before_listing(cfg: Config) -> None:
    """What must hold before the dataset can be listed: the config's structure and data folders."""
    check_structure(cfg)
    check_ranking_file(cfg)
    check_data_paths(cfg)


def checks_after_listing(cfg: Config, check_files: bool = True, listing=None) -> None:
    """Class names, weights path and (optionally) the listed files' presence; ``listing``: the
    run plan's ``DatasetPlan`` (else the dataset is listed here)."""
    check_class_names(cfg)
    check_weights(cfg)
    if check_files:
        problems = check_dataset(cfg, deep=False, listing=listing)
        if problems:
            more = f' (and {len(problems) - 1} more; run tools/check_data.py)' if len(problems) > 1 else ''
            raise SCLIPError(f'{problems[0]}{more}')


def preflight(cfg: Config, check_files: bool = True, listing=None) -> None:
    """Every cheap check: config structure, data paths, class names, weights path, and
    (optionally) file pairs (of ``listing``, a ``DatasetPlan``, when given)."""
    checks_before_listing(cfg)
    checks_after_listing(cfg, check_files, listing)
