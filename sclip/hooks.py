"""Runner plumbing: an inference-only model wrapper, a side-by-side visualisation hook and
a progress hook.

Why: mmengine wraps distributed models in DDP, which refuses modules without trainable
parameters and CPU device ids; evaluation needs no gradient sync, so the wrapper only
forwards ``test_step``. The hook saves image | prediction | ground truth | errors, titled,
in one PNG.
"""
import os
import os.path as osp
import time

import mmcv
import numpy as np
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.registry import MODEL_WRAPPERS
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS

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
    """Logs images done, images/s and the time left every ``interval`` test iterations."""

    def __init__(self, interval: int = 50):
        self.interval = max(int(interval), 1)

    def before_test(self, runner) -> None:
        self._start = time.perf_counter()
        self._images = 0
        self._total = len(runner.test_dataloader.dataset)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._images += len(outputs or [])
        world = get_world_size()  # each rank sees its share: the last line comes when all are done
        if (batch_idx + 1) % self.interval and self._images * world < self._total:
            return
        elapsed = time.perf_counter() - self._start
        rate = self._images / elapsed if elapsed > 0 else 0.0
        left = (self._total - self._images * world) / (rate * world) if rate > 0 else 0.0
        runner.logger.info(f'progress: {min(self._images * world, self._total)}/{self._total} images, '
                           f'{rate * world:.2f} images/s, {_duration(max(left, 0))} left')


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{seconds:02d}'
