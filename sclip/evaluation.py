"""mmseg's IoUMetric that also keeps its per-class numbers for ``metrics.json``.

Why: ``IoUMetric`` prints the per-class table but returns only the summary; tools that
write ``metrics.json`` need per-class IoU and Acc by class name.
"""
from collections import OrderedDict

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class SCLIPIoUMetric(IoUMetric):
    """``IoUMetric`` + ``self.per_class``: ``{'IoU': {name: %}, 'Acc': {name: %}}`` after evaluation.

    ``default_prefix = ''``: metric names stay unprefixed (``mIoU``) and mmengine does not warn
    "The prefix is not set" on every run.
    """
    default_prefix = ''

    def compute_metrics(self, results: list) -> dict:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        areas = tuple(zip(*results))
        per_class = self.total_area_to_metrics(sum(areas[0]), sum(areas[1]), sum(areas[2]), sum(areas[3]),
                                               self.metrics, self.nan_to_num, self.beta)
        names = self.dataset_meta['classes']
        self.per_class = OrderedDict(
            (key, OrderedDict((name, None if np.isnan(v) else round(float(v) * 100, 2))
                              for name, v in zip(names, np.asarray(values))))
            for key, values in per_class.items() if key != 'aAcc')
        return metrics
