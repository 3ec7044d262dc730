"""Runner plumbing: an inference-only model wrapper, a side-by-side visualisation hook and
a progress hook.

Why: mmengine wraps distributed models in DDP, which refuses modules without trainable
parameters and CPU device ids; evaluation needs no gradient sync, so the wrapper only
forwards ``test_step``. The hook saves image | prediction | ground truth | errors, titled,
in one PNG. The progress hook shows images done, rate and time left as they go.
"""
import functools
import logging
import os
import os.path as osp
import sys

import mmcv
import numpy as np
import torch.nn as nn
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import MODEL_WRAPPERS
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS

from .progress import Progress, status
from .visualize import error_panel, save_png, titled_grid


@MODEL_WRAPPERS.register_module()
class SCLIPInferenceWrapper(nn.Module):
    """Holds the model as ``.module`` (like DDP) and forwards evaluation calls."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def test_step(self, data):
        return self.module.test_step(data)

    def val_step(self, data):
        return self.module.val_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@HOOKS.register_module()
class SCLIPVisualizationHook(SegVisualizationHook):
    """Writes ``<out_dir>/<image stem>.png``: the image, the prediction, the ground truth and
    the errors side by side, each under its title. Prediction and ground truth are drawn by
    mmseg's ``SegLocalVisualizer`` (class names on the segments); the error panel shows wrong
    pixels red, ignored ones (``ignore_index``) grey and correct ones as the dimmed image. The
    titles are also stored as PNG text (``sclip:panels``)."""

    def __init__(self, out_dir: str, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.out_dir = out_dir
        self.ignore_index = int(ignore_index)

    def _draw(self, image: np.ndarray, labels) -> np.ndarray:
        meta = self._visualizer.dataset_meta
        return self._visualizer._draw_sem_seg(image.copy(), labels, meta['classes'], meta['palette'], True)

    def after_test_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        if not self.draw:
            return
        for output in outputs:
            image = mmcv.imread(output.img_path, channel_order='rgb')
            panels = [image, self._draw(image, output.pred_sem_seg)]
            titles = ['image', 'prediction']
            if 'gt_sem_seg' in output:
                prediction = output.pred_sem_seg.data[0].cpu().numpy()
                truth = output.gt_sem_seg.data[0].cpu().numpy()
                panels += [self._draw(image, output.gt_sem_seg),
                           error_panel(image, prediction, truth, self.ignore_index)]
                titles += ['ground truth', 'errors']
            picture, text = titled_grid([panels], [titles])
            stem = osp.splitext(osp.basename(output.img_path))[0]
            os.makedirs(self.out_dir, exist_ok=True)
            save_png(picture, osp.join(self.out_dir, f'{stem}.png'), text=text)


@HOOKS.register_module()
class SCLIPProgressHook(Hook):
    """Images done, images/s and time left (sclip/progress.py): a bar redrawn every second on a
    terminal, and a ``progress: ...`` line every ``line_every`` seconds in the run's log file
    (on the screen too when it is not a terminal)."""

    def __init__(self, line_every: float = 30.0):
        self.line_every = float(line_every)
        self._progress = None

    def before_test(self, runner) -> None:
        self._images = 0
        self._total = len(runner.test_dataloader.dataset)
        tty = get_rank() == 0 and sys.stdout.isatty()
        status(f'evaluating {self._total} images')
        line = functools.partial(log_to_files, runner.logger) if tty else runner.logger.info
        self._progress = Progress(self._total, tty=tty, line=line, line_every=self.line_every)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._images += len(outputs or [])
        # each rank sees its share: the last line comes when all are done
        self._progress.update(min(self._images * get_world_size(), self._total))

    def after_test(self, runner) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None


def log_to_files(logger, text: str) -> None:
    """``text`` as an INFO record in the logger's files only (the screen shows the bar)."""
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, text, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
