"""PAMR against a transcription of the original implementation (Araslanov & Roth)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from sclip.models.pamr import PAMR


class LocalAffinity(nn.Module):
    def __init__(self, dilations=[1]):
        super().__init__()
        self.dilations = dilations
        self.register_buffer('kernel', self._init_aff())

    def _init_aff(self):
        weight = torch.zeros(8, 1, 3, 3)
        for i in range(weight.size(0)):
            weight[i, 0, 1, 1] = 1
        for i, (y, x) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]):
            weight[i, 0, y, x] = -1
        return weight

    def forward(self, x):
        B, K, H, W = x.size()
        x = x.view(B * K, 1, H, W)
        x_affs = []
        for d in self.dilations:
            x_pad = F.pad(x, [d] * 4, mode='replicate')
            x_affs.append(F.conv2d(x_pad, self.kernel, dilation=d))
        return torch.cat(x_affs, 1).view(B, K, -1, H, W)


class LocalAffinityCopy(LocalAffinity):
    def _init_aff(self):
        weight = torch.zeros(8, 1, 3, 3)
        for i, (y, x) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]):
            weight[i, 0, y, x] = 1
        return weight


class LocalStDev(LocalAffinity):
    def _init_aff(self):
        weight = torch.zeros(9, 1, 3, 3)
        for i in range(9):
            weight[i, 0, i // 3, i % 3] = 1
        return weight

    def forward(self, x):
        return super().forward(x).std(2, keepdim=True)


class LocalAffinityAbs(LocalAffinity):
    def forward(self, x):
        return torch.abs(super().forward(x))


class ReferencePAMR(nn.Module):
    def __init__(self, num_iter=1, dilations=[1]):
        super().__init__()
        self.num_iter = num_iter
        self.aff_x = LocalAffinityAbs(dilations)
        self.aff_m = LocalAffinityCopy(dilations)
        self.aff_std = LocalStDev(dilations)

    def forward(self, x, mask):
        mask = F.interpolate(mask, size=x.size()[-2:], mode='bilinear', align_corners=True)
        x_std = self.aff_std(x)
        x = -self.aff_x(x) / (1e-8 + 0.1 * x_std)
        x = x.mean(1, keepdim=True)
        x = F.softmax(x, 2)
        for _ in range(self.num_iter):
            m = self.aff_m(mask)
            mask = (m * x).sum(2)
        return mask


def test_pamr_matches_reference():
    torch.manual_seed(0)
    image, mask = torch.randn(1, 3, 40, 50), torch.randn(1, 4, 20, 25)
    ours = PAMR(10, (8, 16))(image, mask)
    assert torch.allclose(ours, ReferencePAMR(10, [8, 16])(image, mask), atol=1e-5)
    assert ours.shape == (1, 4, 40, 50)


def test_pamr_steps_in_one_buffer_equal_fresh_tensors_bit_for_bit():
    """The in-place steps over one reused buffer sum the same products in the same layout as
    a fresh ``neighbours * affinity`` each step: equal bit for bit, fp16 logits promoted as before."""
    from sclip.models.pamr import _NEIGHBOURS, _neighbours

    def fresh_steps(pamr, image, mask):
        mask = F.interpolate(mask, size=image.shape[-2:], mode='bilinear', align_corners=True)
        affinity = pamr.affinity(image)
        for _ in range(pamr.num_iter):
            mask = (_neighbours(mask, _NEIGHBOURS, pamr.dilations) * affinity).sum(dim=2)
        return mask

    torch.manual_seed(0)
    image = torch.randn(2, 3, 37, 45)
    for logits in (torch.randn(2, 5, 10, 12), torch.randn(2, 5, 10, 12).half()):
        pamr = PAMR(4, (1, 2, 8))
        ours = pamr(image, logits)
        expected = fresh_steps(pamr, image, logits)
        assert ours.dtype == expected.dtype == torch.float32
        assert torch.equal(ours, expected)


def test_class_maps_in_passes_equal_all_at_once_bit_for_bit(monkeypatch):
    """On the CPU in float32 the class maps go through the steps a few at a time (``PASS_BYTES``):
    the same numbers as every map at once, bit for bit, whatever the split (here 3 + 3 + 1 maps
    of 2 images, and one map a pass); fp16 logits are promoted and go at once, as before."""
    from sclip.models import pamr as module

    def all_at_once(pamr, image, mask):
        mask = F.interpolate(mask, size=image.shape[-2:], mode='bilinear', align_corners=True)
        return pamr.propagate(mask, pamr.affinity(image))

    torch.manual_seed(0)
    image, logits = torch.randn(2, 3, 30, 41), torch.randn(2, 7, 8, 11)
    pamr = PAMR(3, (1, 8))
    per_class = 2 * 8 * 2 * 30 * 41 * 4  # images × neighbours × dilations × pixels × bytes
    expected = all_at_once(pamr, image, logits)
    passes = []
    propagate = pamr.propagate
    monkeypatch.setattr(pamr, 'propagate', lambda mask, affinity: passes.append(mask.shape[1]) or
                        propagate(mask, affinity))
    for budget, split in ((3 * per_class, [3, 3, 1]), (per_class, [1] * 7), (100 * per_class, [7])):
        monkeypatch.setattr(module, 'PASS_BYTES', budget)
        passes.clear()
        assert torch.equal(pamr(image, logits), expected) and passes == split
    monkeypatch.setattr(module, 'PASS_BYTES', per_class)
    half = all_at_once(pamr, image, logits.half())
    passes.clear()
    assert torch.equal(pamr(image, logits.half()), half) and passes == [7]
