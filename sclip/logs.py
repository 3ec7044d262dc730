"""What a run prints by default: progress, the per-class table and the summary, nothing else.

Why: mmengine prints its environment dump, the whole config and a hook list, and the
libraries warn on every ordinary run (``The prefix is not set``, ``The draw is False``,
``auto_mkdir``...). ``--verbose`` brings all of it back.
"""
from __future__ import annotations

import contextlib
import warnings

# Library warnings that every ordinary run triggers and that say nothing about the run.
NOISY_MODULES = r'(mmengine|mmseg|mmcv|torch|timm|open_clip|huggingface_hub)(\..*)?'


@contextlib.contextmanager
def quiet_unless(verbose: bool):
    """Inside: library warnings, and OpenCV's own log lines (``[ERROR:0@2.7] imdecode_ ...``
    printed before our one-line error for a corrupt image), are hidden unless ``verbose``."""
    if verbose:
        yield
        return
    with warnings.catch_warnings(), opencv_silent():
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.filterwarnings('ignore', category=category, module=NOISY_MODULES)
        yield


@contextlib.contextmanager
def opencv_silent():
    try:
        from cv2.utils import logging as cv_logging
        previous = cv_logging.getLogLevel()
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    except (ImportError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        cv_logging.setLogLevel(previous)


def quiet_config(cfg) -> None:
    """Config changes for the quiet default: mmengine's dumps off (log_level WARNING while the
    runner is built, see runner.show_info) and no per-iteration log lines (the progress hook
    reports instead)."""
    cfg.log_level = 'WARNING'
    logger_hook = cfg.get('default_hooks', {}).get('logger')
    if logger_hook is not None:
        logger_hook['interval'] = 10 ** 9
