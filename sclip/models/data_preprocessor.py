"""mmseg's SegDataPreProcessor, without its same-size requirement at test time.

Why: the batched sliding window runs the windows of several images in one pass, and the
images of a loader batch have different sizes after a keep-ratio resize. mmseg's
pre-processor asserts equal sizes when testing; this one returns a list of normalised
(3, H, W) images in that case (a stacked tensor when sizes agree, as before).
"""
import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class SCLIPDataPreProcessor(SegDataPreProcessor):
    def forward(self, data: dict, training: bool = False) -> dict:
        if training:
            return super().forward(data, training)
        data = self.cast_data(data)
        inputs = data['inputs']
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [image[[2, 1, 0], ...] for image in inputs]
        inputs = [image.float() for image in inputs]
        if self._enable_normalize:
            inputs = [(image - self.mean) / self.std for image in inputs]
        if all(image.shape == inputs[0].shape for image in inputs):
            inputs = torch.stack(inputs, dim=0)
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
