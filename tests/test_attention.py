"""Every attention variant against a direct computation on tiny tensors, fused vs explicit."""
import math

import pytest
import torch

from sclip.errors import SCLIPError
from sclip.models.attention import ATTENTIONS, AttentionInputs, attend, get_attention


def make_inputs(batch=2, heads=3, grid=(3, 4), dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = grid[0] * grid[1] + 1
    x = torch.randn(batch, n, heads * dim, generator=g)
    q, k, v = (torch.randn(batch, heads, n, dim, generator=g) for _ in range(3))
    return AttentionInputs(x=x, q=q, k=k, v=v, grid=grid)


def row_softmax(m):
    e = torch.exp(m - m.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def direct(a, b, scale):
    """softmax(a·bᵀ·scale), one head and one image at a time, with explicit loops over rows."""
    out = torch.empty(a.shape[0], a.shape[1], a.shape[2], b.shape[2])
    for i in range(a.shape[0]):
        for h in range(a.shape[1]):
            out[i, h] = row_softmax(a[i, h] @ b[i, h].T * scale)
    return out


def test_csa_is_sum_of_two_self_correlations():
    t = make_inputs()
    s = t.q.shape[-1] ** -0.5
    expected = direct(t.q, t.q, s) + direct(t.k, t.k, s)
    assert torch.allclose(ATTENTIONS['csa'].weights(t), expected, atol=1e-6)
    assert torch.allclose(ATTENTIONS['csa'].weights(t).sum(-1), torch.full((2, 3, 13), 2.0), atol=1e-5)


@pytest.mark.parametrize('name,expected', [
    ('vanilla', lambda t, s: direct(t.q, t.k, s)),
    ('csa_q', lambda t, s: direct(t.q, t.q, s)),
    ('csa_k', lambda t, s: direct(t.k, t.k, s)),
    ('csa_qkv', lambda t, s: direct(t.q, t.q, s) + direct(t.k, t.k, s) + direct(t.v, t.v, s)),
    ('sharpen', lambda t, s: direct(t.q, t.k, s * 2.0)),
    ('maskclip', lambda t, s: torch.eye(13).expand(2, 3, 13, 13)),
])
def test_variant_weights(name, expected):
    t = make_inputs()
    assert torch.allclose(ATTENTIONS[name].weights(t), expected(t, t.q.shape[-1] ** -0.5), atol=1e-6)


def test_csa_identity_splits_the_input_per_head():
    t = make_inputs()
    x = t.x.view(2, 13, 3, 5).permute(0, 2, 1, 3)
    assert torch.allclose(ATTENTIONS['csa_identity'].weights(t), direct(x, x, 5 ** -0.5), atol=1e-6)


def test_csa_random_is_seeded_and_reproducible():
    t = make_inputs()
    a, b = ATTENTIONS['csa_random'].weights(t, seed=3), ATTENTIONS['csa_random'].weights(t, seed=3)
    c = ATTENTIONS['csa_random'].weights(t, seed=4)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    w = torch.randn(15, 15, generator=torch.Generator().manual_seed(3)) / math.sqrt(15)
    r = (t.x @ w).view(2, 13, 3, 5).permute(0, 2, 1, 3)
    assert torch.allclose(a, direct(r, r, 5 ** -0.5), atol=1e-5)


def test_local_attention_masks_outside_the_window_and_keeps_cls_global():
    t = make_inputs(grid=(3, 4))
    w = ATTENTIONS['local'].weights(t, window=3)
    # patch (0, 0) is token 1; its neighbours are (0,0),(0,1),(1,0),(1,1) -> tokens 1, 2, 5, 6
    allowed = {1, 2, 5, 6}
    for j in range(13):
        assert (w[:, :, 1, j] > 0).all() == (j in allowed)
    logits = t.q[0, 0, 1] @ t.k[0, 0, [1, 2, 5, 6]].T * 5 ** -0.5
    assert torch.allclose(w[0, 0, 1, [1, 2, 5, 6]], row_softmax(logits), atol=1e-6)
    assert torch.allclose(w[:, :, 0], direct(t.q, t.k, 5 ** -0.5)[:, :, 0], atol=1e-6)


def test_naclip_adds_a_gaussian_over_patch_positions():
    t = make_inputs(grid=(3, 4))
    sigma = 2.0
    w = ATTENTIONS['naclip'].weights(t, sigma=sigma)
    pos = [(r, c) for r in range(3) for c in range(4)]
    g = torch.zeros(13, 13)
    for i, (ri, ci) in enumerate(pos):
        for j, (rj, cj) in enumerate(pos):
            g[i + 1, j + 1] = math.exp(-((ri - rj) ** 2 + (ci - cj) ** 2) / (2 * sigma ** 2))
    expected = torch.stack([torch.stack([row_softmax(t.k[b, h] @ t.k[b, h].T * 5 ** -0.5 + g)
                                         for h in range(3)]) for b in range(2)])
    assert torch.allclose(w, expected, atol=1e-6)


def test_early_layer_returns_the_recorded_map():
    t = make_inputs()
    t.recorded[3] = torch.rand(2, 3, 13, 13)
    assert torch.equal(ATTENTIONS['early_layer'].weights(t, layer=3), t.recorded[3])


@pytest.mark.parametrize('name', sorted(set(ATTENTIONS) - {'early_layer'}))
def test_fused_path_equals_explicit(name):
    t = make_inputs()
    variant, kwargs = get_attention(dict(type=name))
    assert torch.allclose(attend(variant, kwargs, t, fused=True), attend(variant, kwargs, t, fused=False),
                          atol=1e-5)


def test_unknown_variant_and_argument_are_one_line_errors():
    with pytest.raises(SCLIPError, match="model.attention.type='nope' is unknown"):
        get_attention(dict(type='nope'))
    with pytest.raises(SCLIPError, match="'sharpen' takes no argument 'window'"):
        get_attention(dict(type='sharpen', window=3))
