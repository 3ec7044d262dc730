"""Sliding windows: coverage, border shifts, small images, batched == simple == whole image."""
import pytest
import torch
import torch.nn.functional as F

from sclip.models.sliding_window import coverage, grid_count, slide_inference, window_grid


@pytest.mark.parametrize('h,w', [(336, 448), (336, 500), (224, 224), (100, 300), (50, 60), (561, 1120)])
def test_every_pixel_covered_and_windows_inside(h, w):
    windows = window_grid(h, w, (224, 224), (112, 112))
    assert len(windows) == grid_count(h, 224, 112) * grid_count(w, 224, 112)
    assert (coverage(h, w, windows) > 0).all()
    for y1, y2, x1, x2 in windows:
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
        assert y2 - y1 == min(224, h) and x2 - x1 == min(224, w)


def test_border_window_is_shifted_back_inside():
    # 336 x 500: columns start at 0, 112, 224, then 336 would pass 500 -> shifted to 276
    windows = window_grid(336, 500, (224, 224), (112, 112))
    assert sorted({x1 for _, _, x1, _ in windows}) == [0, 112, 224, 276]
    assert sorted({y1 for y1, _, _, _ in windows}) == [0, 112]


def test_grid_count_formula():
    assert grid_count(336, 224, 112) == 2
    assert grid_count(224, 224, 112) == 1
    assert grid_count(100, 224, 112) == 1
    assert grid_count(337, 224, 112) == 3


def fake_encoder(weight):
    """A position-dependent 'model': 16x16 average pooling then a linear map to 3 queries."""
    def encode(crops):
        pooled = F.avg_pool2d(crops, 16)
        return torch.einsum('bchw,qc->bqhw', pooled, weight)
    return encode


def reference_slide(image, encode, crop, stride):
    """The official loop, transcribed: F.pad each window logit onto the canvas."""
    _, h, w = image.shape
    preds = torch.zeros(1, 3, h, w)
    count = torch.zeros(1, 1, h, w)
    for hi in range(max(h - crop + stride - 1, 0) // stride + 1):
        for wi in range(max(w - crop + stride - 1, 0) // stride + 1):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            crop_img = image[None, :, y1:y2, x1:x2]
            logit = F.interpolate(encode(crop_img), size=crop_img.shape[-2:], mode='bilinear')
            preds += F.pad(logit, (x1, preds.shape[3] - x2, y1, preds.shape[2] - y2))
            count[:, :, y1:y2, x1:x2] += 1
    return (preds / count)[0]


@pytest.mark.parametrize('batch', [1, 2, 64])
def test_batched_and_simple_match_the_official_loop(batch):
    torch.manual_seed(0)
    encode = fake_encoder(torch.randn(3, 3))
    images = [torch.randn(3, 336, 448), torch.randn(3, 400, 336), torch.randn(3, 120, 500)]
    ours = slide_inference(images, encode, 3, (224, 224), (112, 112), batch)
    for image, result in zip(images, ours):
        assert torch.allclose(result, reference_slide(image, encode, 224, 112), atol=1e-5)


def test_one_window_equals_whole_image_inference():
    torch.manual_seed(0)
    encode = fake_encoder(torch.randn(3, 3))
    image = torch.randn(3, 224, 224)
    whole = F.interpolate(encode(image[None]), size=(224, 224), mode='bilinear', align_corners=False)[0]
    assert torch.allclose(slide_inference([image], encode, 3, (224, 224), (112, 112), 8)[0], whole)
    small = torch.randn(3, 96, 160)  # smaller than the crop on both axes: one window of its size
    whole = F.interpolate(encode(small[None]), size=(96, 160), mode='bilinear', align_corners=False)[0]
    assert torch.allclose(slide_inference([small], encode, 3, (224, 224), (112, 112), 8)[0], whole)
