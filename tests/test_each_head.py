"""One image's head at a time (``precision.each_head``) gives the batched attention's bits.

Where ``splits_exactly`` holds (CPU, float32) the foundation models' explicit attention
(``vfm.vit.attention``) and GEM's self-self ensemble go head by head for speed; the predictions
must stay those of the straightforward batched form, bit for bit. Each is computed both ways on
the same inputs: head by head as shipped, and batched by declaring the split inexact.
"""
import pytest
import torch
from timm.models.vision_transformer import Attention

from sclip.models import precision
from sclip.models.methods import gem as gem_module
from sclip.models.vfm import vit as vit_module


def test_each_head_fills_every_image_and_head_from_its_own_piece():
    source = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    seen = []

    def piece(one):
        seen.append(one)
        assert source[one].shape == (1, 1, 4, 5)
        return source[one] * 2
    out = precision.each_head(torch.full_like(source, float('nan')), piece)
    assert torch.equal(out, source * 2)
    assert len(seen) == 6


@pytest.mark.parametrize('scale_after_product', [True, False])
def test_vfm_attention_head_by_head_is_the_batched_bits(monkeypatch, scale_after_product):
    torch.manual_seed(0)
    attn = Attention(48, num_heads=3, qkv_bias=True).eval()
    x = torch.randn(2, 50, 48)
    monkeypatch.setattr(vit_module, 'SPLIT_BYTES', 1)  # every image's head alone, as for a DINO ViT-B/8 view
    with torch.no_grad():
        split = vit_module.attention(attn, x, fused=False, scale_after_product=scale_after_product)
        monkeypatch.setattr(vit_module, 'splits_exactly', lambda tensor: False)
        batched = vit_module.attention(attn, x, fused=False, scale_after_product=scale_after_product)
    assert torch.equal(split, batched)
    assert not torch.equal(split[0], split[1])


@pytest.mark.parametrize('inv_temp', ['per_image', 3.0])
def test_gem_ensemble_head_by_head_is_the_batched_bits(monkeypatch, inv_temp):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 40, 16) for _ in range(3))
    temp = torch.tensor([1.5, 4.0]).reshape(2, 1, 1, 1) if inv_temp == 'per_image' else inv_temp
    gem = gem_module.GEM.__new__(gem_module.GEM)
    gem.ss_attn_iter = 1
    split = gem.ensemble(q, k, v, temp, fused=False)
    monkeypatch.setattr(gem_module, 'splits_exactly', lambda tensor: False)
    batched = gem.ensemble(q, k, v, temp, fused=False)
    assert torch.equal(split, batched)
    if inv_temp == 'per_image':  # each image read its own temperature
        swapped = gem.ensemble(q, k, v, temp.flip(0), fused=False)
        assert not torch.allclose(swapped, batched)
