"""Runner plumbing: an inference-only model wrapper, a side-by-side visualisation hook and
a progress hook.

Why: mmengine wraps distributed models in DDP, which refuses modules without trainable
parameters and CPU device ids; evaluation needs no gradient sync, so the wrapper only
forwards ``test_step``. The hook saves image | prediction | ground truth in one PNG.
"""
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
    """Writes ``<out_dir>/<image stem>.png``: the image, the prediction and the ground truth,
    side by side, drawn by mmseg's ``SegLocalVisualizer`` (class names on the segments)."""

    def __init__(self, out_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.out_dir = out_dir

    def _draw(self, image: np.ndarray, labels) -> np.ndarray:
        meta = self._visualizer.dataset_meta
        return self._visualizer._draw_sem_seg(image.copy(), labels, meta['classes'], meta['palette'], True)

    def after_test_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        if not self.draw:
            return
        for output in outputs:
            image = mmcv.imread(output.img_path, channel_order='rgb')
            panels = [image, self._draw(image, output.pred_sem_seg)]
            if 'gt_sem_seg' in output:
                panels.append(self._draw(image, output.gt_sem_seg))
            stem = osp.splitext(osp.basename(output.img_path))[0]
            mmcv.imwrite(np.concatenate(panels, axis=1)[..., ::-1], osp.join(self.out_dir, f'{stem}.png'),
                         auto_mkdir=True)


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
        if (batch_idx + 1) % self.interval and self._images < self._total:
            return
        elapsed = time.perf_counter() - self._start
        rate = self._images / elapsed if elapsed > 0 else 0.0
        world = get_world_size()
        left = (self._total - self._images * world) / (rate * world) if rate > 0 else 0.0
        runner.logger.info(f'progress: {min(self._images * world, self._total)}/{self._total} images, '
                           f'{rate * world:.2f} images/s, {_duration(max(left, 0))} left')


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{seconds:02d}'
