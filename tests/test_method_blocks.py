"""Each building block of our methods against a direct computation on tiny tensors.

SC-CLIP (sclip/models/methods/scclip.py), ResCLIP (resclip.py), ProxyCLIP (proxyclip.py),
NACLIP's Gaussian term (attention.gaussian_window), the memoised CLIP trunk (clip_vit.Trunk)
and the window padding (sliding_window). The references are written here with loops, by hand,
or (NACLIP's conv2d construction, ClearCLIP / ProxyCLIP's compute_padsize) with the official
arithmetic transcribed in tests/official/.
"""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_clip
from official import common, naclip
from sclip.models import sliding_window
from sclip.models.attention import gaussian_window
from sclip.models.clip_vit import CLIPViT, Trunk
from sclip.models.methods import TextSide
from sclip.models.methods.proxyclip import ProxyCLIP, proxy_attention
from sclip.models.methods.resclip import ResCLIP, patch_queries, same_entity_paths, semantic_attention
from sclip.models.methods.scclip import (SCCLIP, aggregate, lof_outliers, outlier_grid, replace_by_neighbour_mean,
                                         squared_distances)


@pytest.fixture(scope='module')
def vit12():
    """A random 12-block CLIP ViT (width 64, one head): ResCLIP reads blocks 6-9."""
    return CLIPViT(tiny_clip(width=64, layers=12, seed=2).visual, fused=False)


def windows(n=2, size=48, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- SC-CLIP ---------------------------------------------------------------------------------

def test_squared_distances_against_a_double_loop():
    x = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(0))
    expected = torch.tensor([[[float(((x[b, i] - x[b, j]) ** 2).sum()) for j in range(7)] for i in range(7)]
                             for b in range(2)])
    assert torch.allclose(squared_distances(x), expected, atol=1e-5)
    assert torch.equal(squared_distances(x, max_elements=2 * 7 * 5), squared_distances(x))  # two rows a chunk


def naive_lof_outliers(points: np.ndarray, k: int, contamination: float) -> list:
    """The official LOF, one point at a time: squared distances, the k nearest others, each
    point's own k-distance as every reach distance, lrd = k / mean reach, LOF = mean over the
    neighbours of lrd(o) / lrd(p), outliers above the (1 - contamination) quantile."""
    n = len(points)
    d2 = [[float(((points[i] - points[j]) ** 2).sum()) for j in range(n)] for i in range(n)]
    neighbours = [sorted((j for j in range(n) if j != i), key=lambda j: d2[i][j])[:k] for i in range(n)]
    kdist = [d2[i][neighbours[i][-1]] for i in range(n)]
    lrd = [k / (sum(max(d2[i][o], kdist[i]) for o in neighbours[i]) / k) for i in range(n)]
    lof = [sum(lrd[o] / lrd[i] for o in neighbours[i]) / k for i in range(n)]
    threshold = np.quantile(np.array(lof, dtype=np.float32), 1 - contamination)
    return [i for i in range(n) if lof[i] > threshold]


def test_lof_outliers_against_a_naive_lof():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 45, 6, generator=generator, dtype=torch.float64)
    x[0, 17] += 6.0  # a planted outlier in window 0
    flags = lof_outliers(x.float(), n_neighbors=30, contamination=0.05)
    assert flags.shape == (2, 45)
    for window in range(2):
        expected = naive_lof_outliers(x[window].numpy(), 30, 0.05)
        assert torch.nonzero(flags[window]).flatten().tolist() == expected
    assert flags[0, 17] and 1 <= int(flags[0].sum()) <= 3
    # fewer patches than neighbours + 1 (the official code fails): every other patch is a neighbour
    few = x[:1, :12].float()
    assert torch.nonzero(lof_outliers(few, 30, 0.05)[0]).flatten().tolist() == \
        naive_lof_outliers(x[0, :12].numpy(), 11, 0.05)


def test_outlier_grid_places_flat_indices_as_the_official_code_and_never_fails():
    def cells(flat_indices, grid):
        flags = torch.zeros(1, grid[0] * grid[1], dtype=torch.bool)
        flags[0, flat_indices] = True
        return sorted(map(tuple, torch.nonzero(outlier_grid(flags, grid)[0]).tolist()))

    assert cells([0, 5, 14], (4, 4)) == [(0, 0), (1, 1), (3, 2)]  # square: row-major
    # 3 x 5 (wide): official (f // 3, f % 3); 7 -> (2, 1) lies inside and is kept, 13 -> (4, 1)
    # would be past the last row: the row-major (2, 3) instead
    assert cells([7, 13], (3, 5)) == [(2, 1), (2, 3)]
    # 5 x 3 (tall): 7 -> (1, 2) kept; 4 -> (0, 4) would be past the last column: row-major (1, 1)
    assert cells([4, 7], (5, 3)) == [(1, 1), (1, 2)]
    for grid in [(3, 5), (5, 3), (2, 7), (7, 2)]:  # no flat index of any grid shape fails
        assert int(outlier_grid(torch.ones(1, grid[0] * grid[1], dtype=torch.bool), grid).sum()) >= 1


def test_replace_by_neighbour_mean_against_a_loop():
    generator = torch.Generator().manual_seed(1)
    feature_map = torch.randn(2, 3, 4, 5, generator=generator)
    outliers = torch.zeros(2, 4, 5, dtype=torch.bool)
    outliers[0, 0, 0] = outliers[0, 1, 1] = outliers[0, 3, 4] = True
    outliers[1, :3, :3] = True  # (1, 1) has no non-outlier neighbour: it stays
    out = replace_by_neighbour_mean(feature_map, outliers)
    expected = feature_map.clone()
    for b, i, j in itertools.product(range(2), range(4), range(5)):
        if not outliers[b, i, j]:
            continue
        near = [(y, x) for y in range(i - 1, i + 2) for x in range(j - 1, j + 2)
                if (y, x) != (i, j) and 0 <= y < 4 and 0 <= x < 5 and not outliers[b, y, x]]
        if near:
            expected[b, :, i, j] = torch.stack([feature_map[b, :, y, x] for y, x in near]).mean(0)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(out[1, :, 1, 1], feature_map[1, :, 1, 1])


def test_aggregate_by_hand():
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]]])
    similarity = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]])
    out = aggregate(tokens, similarity)
    expected = torch.tensor([[[0.5, 1.0], [2.0, 3.0], [0.0, 0.0]]])  # (t0 + t1) / 2, (t1 + t2) / 2, nothing
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(out[0, 0], (tokens[0, 0] + tokens[0, 1]) / (2 + 1e-6))


@pytest.mark.parametrize('guided', [True, False])
def test_scclip_last_block_attention_against_a_direct_computation(vit12, guided):
    """(softmax(3 (S - mean S), -inf below 0) + softmax(k kᵀ / √d)) / 2, mean per window."""
    method = SCCLIP(guided_attention=guided)
    trunk = Trunk(vit12, windows(2, 48))
    tokens = trunk.tokens(11)[:, 1:]
    guide = torch.rand(2, 9, 9, generator=torch.Generator().manual_seed(4)) * torch.tensor([1.0, 3.0]).view(2, 1, 1)
    with torch.no_grad():
        out = method.last_block(trunk, tokens, guide)
        block = vit12.block(12)
        h = block.ln_1(tokens)
        w_q, w_k, w_v = block.attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = block.attn.in_proj_bias.chunk(3)
        k, v = h @ w_k.T + b_k, h @ w_v.T + b_v  # one head of width 64
        expected = []
        for window in range(2):
            weights = (k[window] @ k[window].T / 8.0).softmax(-1)
            if guided:
                centred = (guide[window] - guide[window].mean()) * 3.0
                weights = (centred.masked_fill(centred < 0, float('-inf')).softmax(-1) + weights) / 2
            expected.append(block.attn.out_proj(weights @ v[window]))
    assert torch.allclose(out, torch.stack(expected), atol=1e-5)


# --- ResCLIP ---------------------------------------------------------------------------------

def test_patch_queries_by_hand_with_ties_threshold_and_cut_border():
    """2 x 2 patches of 2 x 2 pixels (+ a 5th row / column beyond the last whole patch)."""
    probabilities = torch.full((3, 5, 5), 0.2)
    probabilities[2, :2, :2] = 0.9  # patch (0, 0): query 2
    probabilities[1, :2, 2:4] = 0.35  # patch (0, 1): query 1, but under temp_thd 0.4 -> 0
    probabilities[1, 2:4, 0] = 0.9  # patch (1, 0): two pixels of query 1, two of query 0: tie -> 0
    probabilities[2, 2:4, 2:4] = 0.9
    probabilities[1, 2, 2] = 0.95  # patch (1, 1): three pixels of query 2, one of query 1
    probabilities[1, 4, :] = probabilities[1, :, 4] = 0.99  # beyond the last whole patch: ignored
    assert patch_queries(probabilities, 2, (2, 2), temp_thd=0.4).tolist() == [[2, 0], [0, 2]]
    tie = torch.full((3, 2, 2), 0.1)
    tie[2, 0, :] = tie[1, 1, :] = 0.9  # two pixels of query 2, two of query 1: the smaller wins
    assert patch_queries(tie, 2, (1, 1), temp_thd=0.0).tolist() == [[1]]
    assert patch_queries(probabilities, 2, (2, 2), temp_thd=0.3).tolist() == [[2, 1], [0, 2]]


def loop_same_entity_paths(labels: torch.Tensor):
    """The official check_path for one pair at a time: sample t = s / max_steps (float32
    linspace) for s = 0..steps(p, q), round half to even, compare with p's label."""
    rows, cols = labels.shape
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    steps = [[max(abs(a[0] - b[0]), abs(a[1] - b[1])) for b in cells] for a in cells]
    most = max(max(row) for row in steps)
    t = torch.linspace(0, 1, steps=most + 1)
    valid = []
    for i, a in enumerate(cells):
        row = []
        for j, b in enumerate(cells):
            ok = True
            for s in range(steps[i][j] + 1):
                y = torch.round(torch.tensor(float(a[0])) * (1 - t[s]) + torch.tensor(float(b[0])) * t[s])
                x = torch.round(torch.tensor(float(a[1])) * (1 - t[s]) + torch.tensor(float(b[1])) * t[s])
                ok &= bool(labels[int(y), int(x)] == labels[a])
            row.append(ok)
        valid.append(row)
    return valid, steps


def test_same_entity_paths_against_a_loop_over_pairs():
    labels = torch.tensor([[0, 0, 1, 1, 2],
                           [0, 1, 1, 2, 2],
                           [0, 0, 1, 2, 0],
                           [2, 0, 0, 1, 1]])
    valid, steps = loop_same_entity_paths(labels)
    on_entity, ours_steps = same_entity_paths(labels)
    assert ours_steps.tolist() == steps
    assert on_entity.tolist() == valid
    assert not all(all(row) for row in valid) and any(any(row) for row in valid)
    chunked, _ = same_entity_paths(labels, pairs_per_chunk=7)  # chunking changes nothing
    assert torch.equal(chunked, on_entity)


LABELS_3X3 = torch.tensor([[0, 0, 1],
                           [1, 0, 1],
                           [1, 1, 1]])  # the 1s at (1, 0) and (1, 2) see each other through the 0 at (1, 1)


def test_semantic_attention_by_hand_on_a_3x3_grid():
    # a tiny sigma makes the blur a one-tap identity (size min(9, int(6 * 0.1 + 1)) = 1): each row
    # is the same-label indicator normalised by the label's count
    plain = semantic_attention(LABELS_3X3, sigma=0.1, delete_same_entity=False)
    same = (LABELS_3X3.flatten()[:, None] == LABELS_3X3.flatten()[None, :]).float()
    expected = torch.zeros(1, 10, 10)
    expected[0, 1:, 1:] = same / (same.sum(1, keepdim=True) + 1e-8)
    assert torch.allclose(plain, expected, atol=1e-7)
    assert plain[0, 1, 1:].tolist() == pytest.approx([1 / 3, 1 / 3, 0, 0, 1 / 3, 0, 0, 0, 0], abs=1e-6)
    assert plain[0, 7, 1:].tolist() == pytest.approx([0, 0, 1 / 6, 1 / 6, 0, 1 / 6, 1 / 6, 1 / 6, 1 / 6], abs=1e-6)

    # sigma 5: a 9-tap Gaussian along the flattened row (zero padding), ReLU, row-normalised,
    # after the pairs without a same-label path decay by exp(-steps / max_steps)
    valid, steps = loop_same_entity_paths(LABELS_3X3)
    assert not valid[3][5] and same[3, 5] == 1  # (1, 0) -> (1, 2) decays
    decayed = torch.where(torch.tensor(valid), same, same * torch.exp(-torch.tensor(steps) / 2.0))
    taps = torch.exp(-(torch.arange(9.0) - 4) ** 2 / (2 * 5.0 ** 2))
    taps = taps / taps.sum()
    blurred = torch.zeros(9, 9)
    for i, j in itertools.product(range(9), range(9)):
        blurred[i, j] = sum(decayed[i, j + s - 4] * taps[s] for s in range(9) if 0 <= j + s - 4 < 9)
    expected[0, 1:, 1:] = blurred / (blurred.sum(1, keepdim=True) + 1e-8)
    ours = semantic_attention(LABELS_3X3, sigma=5.0, delete_same_entity=True)
    assert ours.dtype == torch.float32 and torch.allclose(ours, expected, atol=1e-6)
    assert not torch.allclose(semantic_attention(LABELS_3X3, 5.0, False), ours)


@pytest.fixture(scope='module')
def text():
    embeddings = F.normalize(torch.randn(4, 32, generator=torch.Generator().manual_seed(5)), dim=-1)
    return TextSide(embeddings, 40.0)


def test_feedback_is_per_window_max_normalised_and_fp16(vit12, text):
    method = ResCLIP(temp_thd=0.1, provisional_pamr_steps=0)
    method.setup(vit12)
    trunk = Trunk(vit12, windows(2, 48))
    with torch.no_grad():
        rcs = torch.stack([trunk.attention(b) for b in (6, 7, 8, 9)]).mean(0)
        sfr = method.feedback(trunk, method.last_block(trunk, rcs, None), text)
    assert sfr.dtype == torch.float16 and sfr.shape == (2, 10, 10)
    assert sfr.flatten(1).max(1)[0].tolist() == [1.0, 1.0]  # S / max S, per window


def test_sfr_term_mixes_the_fp16_similarity(vit12):
    """official: ``attn_sfr.to(torch.float16)``, so λ·S is an fp16 product added to fp32 logits."""
    method = ResCLIP(temp_thd=0.1, sfr_weights=(2.1, 0.7))
    trunk = Trunk(vit12, windows(1, 48))
    q, k, _ = vit12.qkv(12, vit12.block(12).ln_1(trunk.tokens(11)))
    sfr = torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(6)).half()
    with torch.no_grad():
        ours = method.attention(trunk, q, k, None, sfr)
        prior = gaussian_window((3, 3), 5.0, torch.float32, 'cpu')
        logits = k @ k.transpose(-2, -1) * 64 ** -0.5
        expected = (2.1 * ((1 - 0.7) * logits + (0.7 * sfr[:, None]).float()) + prior).softmax(-1)
        in_fp32 = (2.1 * ((1 - 0.7) * logits + 0.7 * sfr[:, None].float()) + prior).softmax(-1)
    assert torch.allclose(ours, expected, atol=1e-6)
    assert (ours - in_fp32).abs().max() > 1e-6  # the fp16 product really is what is used


def test_rcs_and_sfr_switches_really_switch(vit12, text):
    trunk = Trunk(vit12, windows(1, 48))
    neither = ResCLIP(rcs=False, sfr=False)
    with torch.no_grad():
        plain = neither(trunk, text)
        q, k, v = vit12.qkv(12, vit12.block(12).ln_1(trunk.tokens(11)))
        naclip_weights = (k @ k.transpose(-2, -1) * 64 ** -0.5 + gaussian_window((3, 3), 5.0, torch.float32,
                                                                                   'cpu')).softmax(-1)
        expected = vit12.patch_features(vit12.attention_output(12, naclip_weights @ v), (3, 3))
        assert torch.allclose(plain, expected, atol=1e-6)  # NACLIP's last block, nothing else

        rcs_only = ResCLIP(rcs=True, sfr=False, rcs_weights=(2.0, 0.3))(trunk, text)
        rcs = torch.stack([trunk.attention(b) for b in (6, 7, 8, 9)]).mean(0)
        weights = 2.0 * (0.7 * naclip_weights + 0.3 * rcs)
        expected = vit12.patch_features(vit12.attention_output(12, weights @ v), (3, 3))
        assert torch.allclose(rcs_only, expected, atol=1e-6)

        both = ResCLIP(temp_thd=0.1, provisional_pamr_steps=0)(trunk, text)
        sfr_only = ResCLIP(rcs=False, temp_thd=0.1, provisional_pamr_steps=0)(trunk, text)
    assert not torch.allclose(both, rcs_only, atol=1e-4)
    assert not torch.allclose(sfr_only, plain, atol=1e-4)
    assert not torch.allclose(sfr_only, both, atol=1e-4)


# --- ProxyCLIP -------------------------------------------------------------------------------

def test_proxy_attention_on_a_2x2_grid_by_hand():
    """Tokens a = (1, 0), b = (1, 0), c = (0, 1), d = (0.6, 0.8): cosine rows a [1, 1, 0, .6],
    c [0, 0, 1, .8], d [.6, .6, .8, 1]; mean 10 / 16; (S - 1.2 · 0.625) · 3 masked below 0."""
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]).T.reshape(1, 2, 2, 2)
    out = proxy_attention(features, beta=1.2, gamma=3.0, dtype=torch.float32)
    e = math.exp
    expected = torch.tensor([
        [0.5, 0.5, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.0, 0.0, e(0.75) / (e(0.75) + e(0.15)), e(0.15) / (e(0.75) + e(0.15))],
        [0.0, 0.0, e(0.15) / (e(0.15) + e(0.75)), e(0.75) / (e(0.15) + e(0.75))]])
    assert torch.allclose(out[0], expected, atol=1e-6)
    # the mean is per window: a second, different window in the batch changes nothing
    other = torch.randn(1, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(proxy_attention(torch.cat([features, other]), 1.2, 3.0, torch.float32)[0], expected,
                          atol=1e-6)
    assert proxy_attention(features, 1.2, 3.0, torch.float16).dtype == torch.float16


class GridVFM(torch.nn.Module):
    """A stand-in foundation model: fixed random features on a 6 x 6 grid for any input."""
    resizes_input = False
    patch_size = 8

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(5, 3, generator=torch.Generator().manual_seed(7)))

    def forward(self, images):
        pooled = F.adaptive_avg_pool2d(images, (6, 6))
        return torch.einsum('oc,bchw->bohw', self.weight, pooled)


def test_proxyclip_output_lives_on_the_vfm_grid(vit12):
    method = ProxyCLIP()
    method.vfm, method.crop = GridVFM(), 48
    images = windows(2, 48)
    trunk = Trunk(vit12, images)
    with torch.no_grad():
        out = method(trunk)
        assert out.shape == (2, 6, 6, 32)  # the VFM's grid, not CLIP's 3 x 3
        from sclip.models.vfm import proxy_input
        features = method.vfm(proxy_input(images, method.vfm, 48))
        _, _, v = vit12.qkv(12, vit12.block(12).ln_1(trunk.tokens(11)))
        v = F.interpolate(v[:, 0, 1:].transpose(1, 2).reshape(2, 64, 3, 3), size=(6, 6), mode='bilinear',
                          align_corners=False).flatten(2).transpose(1, 2)
        expected = vit12.project(vit12.block(12).attn.out_proj(proxy_attention(features, 1.2, 3.0, v.dtype) @ v))
    assert torch.allclose(out, expected.reshape(2, 6, 6, 32), atol=1e-5)


# --- NACLIP's Gaussian term ------------------------------------------------------------------

@pytest.mark.parametrize('grid', [(1, 1), (2, 3), (4, 4), (5, 2), (14, 14), (21, 28)])
@pytest.mark.parametrize('sigma', [1.0, 5.0])
def test_gaussian_window_equals_naclips_conv2d_construction(grid, sigma):
    window = naclip.gaussian_window(2 * grid[0] - 1, 2 * grid[1] - 1, std=sigma)
    official = naclip.get_attention_addition(*grid, window)
    ours = gaussian_window(grid, sigma, torch.float32, 'cpu')
    assert ours.shape == official.shape == (grid[0] * grid[1] + 1,) * 2
    assert torch.equal(ours, official)


# --- the memoised trunk ----------------------------------------------------------------------

def test_trunk_runs_each_block_once_and_equals_clips_own_blocks(vit12, monkeypatch):
    images = windows(2, 48)
    trunk = Trunk(vit12, images)
    calls = []
    standard_block = vit12.standard_block
    monkeypatch.setattr(vit12, 'standard_block', lambda index, x: calls.append(index) or standard_block(index, x))
    with torch.no_grad():
        seventh = trunk.tokens(7)
        assert calls == [1, 2, 3, 4, 5, 6, 7]
        assert trunk.tokens(7) is seventh and trunk.tokens(3) is trunk.tokens(3)
        trunk.tokens(9)
        assert calls == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # 8 and 9 only

        visual = vit12.visual
        x, _ = vit12.embed(images)
        assert torch.equal(trunk.tokens(0), x)
        for index, block in enumerate(visual.transformer.resblocks[:9], start=1):
            x = block(x)  # open_clip's own block (batch-first, nn.MultiheadAttention)
            assert torch.allclose(trunk.tokens(index), x, atol=1e-5)

        attention = trunk.attention(6)
        h = visual.transformer.resblocks[5].ln_1(trunk.tokens(5))
        w_q, w_k, _ = visual.transformer.resblocks[5].attn.in_proj_weight.chunk(3)
        b_q, b_k, _ = visual.transformer.resblocks[5].attn.in_proj_bias.chunk(3)
        expected = ((h @ w_q.T + b_q) @ (h @ w_k.T + b_k).transpose(1, 2) / 8.0).softmax(-1)
        assert torch.allclose(attention[:, 0], expected, atol=1e-6)
        assert trunk.attention(6) is attention and calls == list(range(1, 10))

    computed = []
    assert trunk.memo('vfm', lambda: computed.append(1) or 'features') == 'features'
    assert trunk.memo('vfm', lambda: computed.append(1) or 'other') == 'features' and computed == [1]
    with pytest.raises(IndexError):
        trunk.tokens(13)


# --- window padding --------------------------------------------------------------------------

SIZES = [(224, 224), (200, 203), (300, 336), (301, 337), (15, 16), (1, 55), (448, 300)]


@pytest.mark.parametrize('multiple', [16, 56, 14])
def test_padding_is_the_official_compute_padsize(multiple):
    for height, width in SIZES:
        assert sliding_window.padding(height, width, multiple) == common.compute_padsize(height, width, multiple)
    assert sliding_window.padding(200, 203, 0) == (0, 0, 0, 0)  # 0: padding off


def test_pad_windows_and_upsample_window_against_the_official_arithmetic():
    generator = torch.Generator().manual_seed(8)
    crops = torch.randn(2, 3, 200, 203, generator=generator)
    padded, pad = sliding_window.pad_windows(crops, 16)
    left, right, top, bottom = common.compute_padsize(200, 203, 16)
    assert pad == (left, right, top, bottom) == (2, 3, 4, 4)
    assert torch.equal(padded, F.pad(crops, (left, right, top, bottom)))
    assert padded.shape[-2:] == (208, 208) and torch.equal(padded[..., 4:204, 2:205], crops)
    unpadded, none = sliding_window.pad_windows(crops[..., :192, :192], 16)
    assert none == (0, 0, 0, 0) and unpadded.shape[-2:] == (192, 192)

    logits = torch.randn(2, 5, 13, 13, generator=generator)  # patch logits of the padded window
    ours = sliding_window.upsample_window(logits, (200, 203), pad)
    official = F.interpolate(logits, size=(208, 208), mode='bilinear')[:, :, top:top + 200, left:left + 203]
    assert ours.shape == (2, 5, 200, 203) and torch.equal(ours, official)


def test_window_grid_is_the_official_loop():
    for (height, width), (crop, stride) in itertools.product(SIZES + [(560, 574), (336, 350)],
                                                              [(224, 112), (448, 224), (336, 112), (224, 224)]):
        assert sliding_window.window_grid(height, width, (crop, crop), (stride, stride)) == \
            list(common.window_grid(height, width, stride, crop))
