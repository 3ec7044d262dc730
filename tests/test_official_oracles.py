"""The official-code oracles (tests/official/) checked against hand computations and each other.

The oracles are what our segmentors are compared with, so they must be right themselves:
their building blocks against direct computations on tiny tensors, whole predictions against
the older SCLIP transcription and against each other where two official codes compute the same
thing (ClearCLIP with model_type='SCLIP' is SCLIP, NACLIP with 'csa' is SCLIP, ResCLIP with zero
SFR / RCS weights is NACLIP, ProxyCLIP without a VFM is ClearCLIP's 'vanilla'), and the fp16
numerics against fp32.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import tiny_clip
from official import clearclip, common, naclip, proxyclip, resclip, scclip, sclip
from test_official_equivalence import official_predict

QUERY_IDX = [0, 1, 1, 2, 3]  # class 1 has two queries: exercises the per-class max
RESCLIP = dict(temp_thd=0.1, delete_same_entity=True, attn_rcs_weights=[2.0, 0.3], attn_sfr_weights=[2.1, 0.7])


@pytest.fixture(scope='module')
def clip3():
    """tiny_clip(width=128, layers=3): enough for SCLIP, ClearCLIP, NACLIP, ProxyCLIP."""
    return tiny_clip()


@pytest.fixture(scope='module')
def clip12():
    """width 64, one head, 12 blocks: SC-CLIP indexes blocks 3..10, ResCLIP 5..8 (seed 2: its
    random features give several labels with these queries)."""
    return tiny_clip(width=64, layers=12, seed=2)


def queries(n=len(QUERY_IDX), dim=32, seed=1):
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def image(h, w, seed=2):
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def agreement(a, b):
    assert a.shape == b.shape
    return (a == b).float().mean().item()


# --- shared pieces ---------------------------------------------------------------------------

def test_get_cls_idx_separators(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('background\ncat, kitty\nsofa,couch; settee\n')
    assert common.get_cls_idx(str(path), common.CLASS_SEPARATORS['sclip']) == (
        ['background', 'cat', 'kitty', 'sofa,couch; settee'], [0, 1, 1, 2])
    assert common.get_cls_idx(str(path), common.CLASS_SEPARATORS['clearclip']) == (
        ['background', 'cat', ' kitty', 'sofa', 'couch; settee'], [0, 1, 1, 2, 2])
    assert common.get_cls_idx(str(path), common.CLASS_SEPARATORS['proxyclip']) == (
        ['background', 'cat, kitty', 'sofa,couch', 'settee'], [0, 1, 2, 2])


def test_official_fp16_casts_what_the_loaders_cast(clip3):
    half = common.official_fp16(clip3)
    v = half.visual
    for tensor in (v.conv1.weight, v.proj, half.text_projection, v.transformer.resblocks[0].attn.in_proj_weight,
                   v.transformer.resblocks[0].attn.in_proj_bias, v.transformer.resblocks[0].attn.out_proj.weight,
                   v.transformer.resblocks[0].mlp.c_fc.weight, v.transformer.resblocks[0].mlp.c_proj.bias):
        assert tensor.dtype == torch.float16
    for tensor in (v.class_embedding, v.positional_embedding, v.ln_pre.weight, v.ln_post.bias,
                   v.transformer.resblocks[0].ln_1.weight):
        assert tensor.dtype == torch.float32
    assert clip3.visual.conv1.weight.dtype == torch.float32  # a copy: the caller's model is untouched


def test_explicit_attention_equals_the_module(clip3):
    """The torch 1.10 transcription reads the same weights as nn.MultiheadAttention."""
    blk = clip3.visual.transformer.resblocks[1]
    x = torch.randn(1, 7, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = blk(x)  # open_clip 3.x: batch-first
        ours = common.residual_block(blk, x.permute(1, 0, 2)).permute(1, 0, 2)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_padsize_by_hand():
    assert common.compute_padsize(200, 203, 16) == (2, 3, 4, 4)  # W: 5 = 2 + 3, H: 8 = 4 + 4
    assert common.compute_padsize(300, 336, 56) == (0, 0, 18, 18)
    assert common.compute_padsize(224, 224, 56) == (0, 0, 0, 0)


def test_window_grid_by_hand():
    assert list(common.window_grid(224, 336, 112, 224)) == [(0, 224, 0, 224), (0, 224, 112, 336)]
    assert list(common.window_grid(250, 100, 112, 224)) == [(0, 224, 0, 100), (26, 250, 0, 100)]


def test_postprocess_by_hand():
    """4 queries (classes 0, 1, 2, 2) on a 1 x 6 image, logit_scale 1, prob_thd 0.27.

    Pixels 0-3 are clearly class 1, pixel 4 is class 2 (0.36; class 1: 0.30), pixel 5 is
    class 1 with 0.269 < 0.27. Class 2 covers 1 of the 6 non-background argmax pixels, not more
    than area_thd 0.2 of them, so area_thd drops it and pixel 4 falls back to class 1."""
    logits = torch.tensor([[0, 5, 0, 0]] * 4 + [[0, 3, 3.2, 3.1], [0, 0.1, 0, 0]]).T.reshape(1, 4, 1, 6)
    idx = common.query_index_tensor([0, 1, 2, 2], 'cpu')
    without_area = torch.tensor([[[1, 1, 1, 1, 2, 0]]])
    assert torch.equal(common.postprocess_clearclip(logits, idx, 1, 0.27), without_area)
    assert torch.equal(common.postprocess_sclip(logits, idx, 1, 0.27, None), without_area)
    assert torch.equal(common.postprocess_sclip(logits, idx, 1, 0.27, 0.2), torch.tensor([[[1, 1, 1, 1, 1, 0]]]))
    assert torch.equal(common.postprocess_sclip(logits, idx, 1, 0.0, None), torch.tensor([[[1, 1, 1, 1, 2, 1]]]))


# --- whole predictions against the SCLIP transcription and each other -------------------------

def test_sclip_oracle_matches_the_equivalence_transcription(clip3):
    q, img = queries(), image(224, 336)
    with torch.no_grad():
        reference = official_predict(clip3.visual, q, QUERY_IDX, img, (250, 370), 65, 0.1, 0.1)
    ours = sclip.predict(clip3, q, QUERY_IDX, img, (250, 370), logit_scale=65, prob_thd=0.1, area_thd=0.1)
    assert ours.shape == (1, 250, 370)
    assert len(ours.unique()) >= 2
    assert agreement(ours, reference) >= 0.9999


def test_methods_that_reduce_to_each_other(clip3):
    q, img, ori = queries(), image(112, 224), (130, 250)  # multiples of 16 and 56: nobody pads
    ref, ref_logits = sclip.predict(clip3, q, QUERY_IDX, img, ori, logit_scale=50, prob_thd=0.2, return_logits=True)
    assert len(ref.unique()) >= 3
    clear, clear_logits = clearclip.predict(clip3, q, QUERY_IDX, img, ori, model_type='SCLIP', ignore_residual=False,
                                            slide_stride=112, slide_crop=224, prob_thd=0.2, return_logits=True)
    assert torch.allclose(clear_logits, ref_logits, atol=1e-6) and torch.equal(clear, ref)
    nac, nac_logits = naclip.predict(clip3, q, QUERY_IDX, img, ori, arch='vanilla', attn_strategy='csa', pamr_steps=0,
                                     logit_scale=50, prob_thd=0.2, return_logits=True)
    assert torch.allclose(nac_logits, ref_logits, atol=1e-6) and torch.equal(nac, ref)
    # ClearCLIP's own default (q·qᵀ, no residual) really is a different method
    assert agreement(clearclip.predict(clip3, q, QUERY_IDX, img, ori, slide_stride=112, slide_crop=224,
                                       prob_thd=0.2), ref) < 0.99

    vanilla = clearclip.predict(clip3, q, QUERY_IDX, img, ori, model_type='vanilla', ignore_residual=False,
                                slide_stride=112, slide_crop=224, logit_scale=40)
    proxy = proxyclip.predict(clip3, q, QUERY_IDX, img, ori, vfm_model=None, slide_crop=224)
    assert agreement(proxy, vanilla) >= 0.9999


def test_resclip_with_zero_weights_is_naclip(clip12):
    """λ = 0, τ = 1 for SFR and RCS leaves NACLIP's last block (ResCLIP's earlier blocks,
    bmm(q * scale, kᵀ), equal torch's q / sqrt(64): 1/8 is exact)."""
    q, img = queries(), image(64, 80)
    neutral = dict(RESCLIP, attn_rcs_weights=[1.0, 0.0], attn_sfr_weights=[1.0, 0.0])
    res, res_logits = resclip.predict(clip12, q, QUERY_IDX, img, (70, 90), return_logits=True, **neutral)
    nac, nac_logits = naclip.predict(clip12, q, QUERY_IDX, img, (70, 90), pamr_steps=0, return_logits=True)
    assert torch.allclose(res_logits, nac_logits, atol=1e-6) and torch.equal(res, nac)
    assert agreement(resclip.predict(clip12, q, QUERY_IDX, img, (70, 90), **RESCLIP), nac) < 0.99


def test_resclip_flags_are_always_on_and_area_thd_raises(clip12):
    q, img = queries(), image(64, 64)
    on = resclip.predict(clip12, q, QUERY_IDX, img, (64, 64), **RESCLIP)
    off = resclip.predict(clip12, q, QUERY_IDX, img, (64, 64), use_rcs=False, use_sfr=False, **RESCLIP)
    assert torch.equal(on, off)
    with pytest.raises(RuntimeError):
        resclip.predict(clip12, q, QUERY_IDX, img, (64, 64), area_thd=0.1, **RESCLIP)
    with pytest.raises(TypeError):  # official `raise NotImplemented` without temp_thd
        resclip.predict(clip12, q, QUERY_IDX, img, (64, 64), attn_rcs_weights=[2.0, 0.3], attn_sfr_weights=[2.1, 0.7])


SETTINGS = {
    'sclip': (sclip, 'clip3', (96, 128), dict(area_thd=0.1, prob_thd=0.1)),
    'clearclip': (clearclip, 'clip3', (96, 120), dict()),  # 120: padded to 128
    'naclip': (naclip, 'clip3', (96, 128), dict()),  # PAMR on by default
    'scclip': (scclip, 'clip12', (112, 112), dict()),
    'resclip': (resclip, 'clip12', (64, 64), RESCLIP),
    'proxyclip': (proxyclip, 'clip3', (112, 112), dict(vfm_features=lambda x: F.avg_pool2d(x, 8))),
}
# dtype of what reaches postprocess_result in the official fp16 run
FP16_CANVAS = {'sclip': torch.float32, 'clearclip': torch.float16, 'naclip': torch.float16,
               'scclip': torch.float32, 'resclip': torch.float32, 'proxyclip': torch.float32}


@pytest.mark.parametrize('method', list(SETTINGS))
def test_fp16_numerics_agree_with_fp32(method, request):
    module, model_name, (h, w), settings = SETTINGS[method]
    model = request.getfixturevalue(model_name)
    q, img, ori = queries(), image(h, w), (h + 7, w + 9)
    full, full_logits = module.predict(model, q, QUERY_IDX, img, ori, return_logits=True, **settings)
    half, half_logits = module.predict(model, q.half(), QUERY_IDX, img, ori, return_logits=True, half=True,
                                       **settings)
    assert full.shape == half.shape == (1,) + ori
    assert len(full.unique()) >= 2
    assert full_logits.dtype == torch.float32 and half_logits.dtype == FP16_CANVAS[method]
    assert not torch.equal(half_logits.float(), full_logits)  # fp16 arithmetic really ran
    assert torch.allclose(half_logits.float(), full_logits, atol=0.02)
    assert agreement(half, full) >= 0.99


# --- SC-CLIP ---------------------------------------------------------------------------------

def test_lof_against_a_direct_computation():
    """Six points, two neighbours. The official LOF uses squared distances and each point's own
    k-distance as every reach distance, so LOF(p) = mean over its neighbours o of kdist(p) / kdist(o)."""
    points = [(0.0, 0.0), (1.0, 0.2), (0.1, 1.15), (1.2, 1.0), (0.6, 0.4), (4.0, 5.0)]  # no distance ties
    k, n = 2, len(points)
    d2 = [[(a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 for b in points] for a in points]
    knn = [sorted((j for j in range(n) if j != i), key=lambda j: d2[i][j])[:k] for i in range(n)]
    kdist = [d2[i][knn[i][-1]] for i in range(n)]
    reach = [[max(d2[i][o], kdist[i]) for o in knn[i]] for i in range(n)]
    lrd = [k / (sum(r) / k) for r in reach]
    lof = [sum(lrd[o] / lrd[i] for o in knn[i]) / k for i in range(n)]
    assert lof == pytest.approx([sum(kdist[i] / kdist[o] for o in knn[i]) / k for i in range(n)])
    threshold = np.quantile(lof, 0.8)

    outliers, scores = scclip.lof_pytorch(torch.tensor(points), n_neighbors=k, contamination=0.2)
    assert scores.tolist() == pytest.approx(lof, rel=1e-5)
    assert outliers.tolist() == [i for i in range(n) if lof[i] > threshold] == [5]


def test_mean_interpolation_by_hand():
    """Outliers (0, 0) and (1, 1) of a 3 x 3 map take the mean of their non-outlier 8-neighbours."""
    first = torch.arange(1.0, 10.0).view(3, 3)
    feature_map = torch.stack([first, 10 * first])[None]
    cells = scclip.outlier_cells(torch.tensor([0, 4]), 3)
    out = scclip.mean_interpolation(feature_map, cells)
    expected = first.clone()
    expected[0, 0] = (2 + 4) / 2  # (1, 1) is an outlier too
    expected[1, 1] = (2 + 3 + 4 + 6 + 7 + 8 + 9) / 7
    assert torch.allclose(out, torch.stack([expected, 10 * expected])[None])


def test_outlier_cells_use_feat_w_for_div_and_mod():
    """Token 4 of a 2-row, 3-column grid is cell (1, 1); the official code computes (4 // 2, 4 % 2)."""
    (row, col), = scclip.outlier_cells(torch.tensor([4]), 2)
    assert (int(row), int(col)) == (2, 0)


# --- ResCLIP ---------------------------------------------------------------------------------

LABELS_3X3 = torch.tensor([[0, 0, 1],
                           [1, 0, 1],
                           [1, 1, 1]])


def direct_check_path(labels):
    """check_path with loops: pair (a, b) samples a + (b - a) k / S for k = 0 .. steps(a, b),
    S the largest Chebyshev distance of all pairs; Python's round() rounds half to even like torch."""
    cells = [(r, c) for r in range(labels.shape[0]) for c in range(labels.shape[1])]
    steps = [[max(abs(a[0] - b[0]), abs(a[1] - b[1])) for b in cells] for a in cells]
    most = max(max(row) for row in steps)
    valid = [[all(labels[round(a[0] * (1 - k / most) + b[0] * k / most), round(a[1] * (1 - k / most) + b[1] * k / most)]
                  == labels[a] for k in range(steps[i][j] + 1))
              for j, b in enumerate(cells)] for i, a in enumerate(cells)]
    return cells, steps, most, valid


def test_check_path_by_hand():
    cells, _, _, valid = direct_check_path(LABELS_3X3)
    start = torch.tensor([a for a in cells for _ in cells])
    end = torch.tensor([b for _ in cells for b in cells])
    ours = resclip.check_path(start, end, LABELS_3X3).view(9, 9)
    assert ours.tolist() == valid
    at = {cell: index for index, cell in enumerate(cells)}
    assert not ours[at[1, 0], at[1, 2]]  # through the 0 at (1, 1)
    assert ours[at[1, 0], at[2, 2]]  # (1.5, 1) rounds to (2, 1): all 1
    # a one-step pair is sampled at t = 0, 1/2 only: (0, 1.5) rounds to (0, 2) one way, to (0, 2) the other
    assert not ours[at[0, 1], at[0, 2]] and ours[at[0, 2], at[0, 1]]


def test_attention_sfr_by_hand():
    cells, steps, most, valid = direct_check_path(LABELS_3X3)
    same = np.array([[float(LABELS_3X3[a] == LABELS_3X3[b]) for b in cells] for a in cells])
    decayed = np.where(valid, same, same * np.exp(-np.array(steps) / most))
    size, std = 9, 5.0  # min(9, int(6 * 5 + 1)) = 9, odd
    taps = np.exp(-(np.arange(size) - 4) ** 2 / (2 * std ** 2))
    taps /= taps.sum()
    blurred = np.array([[sum(decayed[i, j + t - 4] * taps[t] for t in range(size) if 0 <= j + t - 4 < 9)
                         for j in range(9)] for i in range(9)])
    expected = np.zeros((10, 10))
    expected[1:, 1:] = blurred / (blurred.sum(1, keepdims=True) + 1e-8)
    ours = resclip.generate_attention_sfr(LABELS_3X3, (3, 3), gaussian_std=5.0, delete_same_entity=True)
    assert ours.shape == (1, 10, 10)
    assert np.allclose(ours[0].numpy(), expected, atol=1e-6)
    plain = resclip.generate_attention_sfr(LABELS_3X3, (3, 3), gaussian_std=5.0, delete_same_entity=False)
    assert not torch.allclose(plain, ours)


def test_patch_matrix_by_hand(clip12):
    """Per 16 x 16 patch: the most frequent query argmax, pixels under temp_thd voting for 0."""
    visual = resclip.OfficialVisual(clip12.visual, 'wo_resi', 'resclip', 5.0)
    probs = torch.full((1, 3, 32, 32), 0.2)
    probs[0, 2, :16, :16] = 0.9  # patch (0, 0): query 2
    probs[0, 1, :16, 16:] = 0.25  # patch (0, 1): query 1, but under temp_thd -> 0
    probs[0, 1, 16:, :8] = 0.9  # patch (1, 0): 128 pixels of query 1 vs 128 of query 0: tie -> smallest
    probs[0, 2, 16:, 16:28] = 0.9  # patch (1, 1): 192 pixels of query 2
    patches = visual.create_patch_matrix(probs, (2, 2), temp_thd=0.3)
    assert patches.tolist() == [[2, 0], [0, 2]]


# --- ProxyCLIP -------------------------------------------------------------------------------

def test_proxy_attention_on_a_2x2_grid_by_hand():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(4, 1).eval()
    x = torch.randn(5, 1, 4)  # CLS + 2 x 2 tokens, LND
    tokens = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    ex_feats = tokens.T.reshape(1, 3, 2, 2)
    beta, gamma = 1.2, 3.0
    with torch.no_grad():
        ours = proxyclip.custom_attn(attn, x, ex_feats, beta, gamma, token_size=(2, 2))

    f = tokens.double().numpy()
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    s = f @ f.T
    s = (s - s.mean() * beta) * gamma
    assert (s < 0).any() and (s >= 0).any()
    w = np.where(s < 0, 0.0, np.exp(np.where(s < 0, 0.0, s)))
    w /= w.sum(1, keepdims=True)
    wv = attn.in_proj_weight[8:].double().detach().numpy()
    bv = attn.in_proj_bias[8:].double().detach().numpy()
    values = x[1:, 0].double().numpy() @ wv.T + bv
    out = (w @ values) @ attn.out_proj.weight.double().detach().numpy().T + attn.out_proj.bias.double().detach().numpy()
    assert ours.shape == (4, 1, 4)
    assert np.allclose(ours[:, 0].numpy(), out, atol=1e-5)


def test_proxyclip_builds_the_vfm_input_as_the_official_code(clip3):
    seen = []

    def vfm(x):
        seen.append(x)
        return F.avg_pool2d(x, 8)

    q, img = queries(), image(100, 100)
    proxyclip.predict(clip3, q, QUERY_IDX, img, (100, 100), vfm_features=vfm)
    (window,) = seen  # one window, zero-padded to 112 (6 pixels each side)
    assert window.shape == (1, 3, 112, 112) and window.dtype == torch.float32
    clip_mean, clip_std = (torch.tensor(v).view(3, 1, 1) for v in (proxyclip.CLIP_MEAN_01, proxyclip.CLIP_STD_01))
    net_mean, net_std = (torch.tensor(v).view(3, 1, 1) for v in (proxyclip.IMAGENET_MEAN, proxyclip.IMAGENET_STD))
    assert torch.allclose(window[0, :, 6:106, 6:106], (img[0] * clip_std + clip_mean - net_mean) / net_std, atol=1e-6)
    assert torch.allclose(window[0, :, 0, 0], ((clip_mean - net_mean) / net_std).flatten(), atol=1e-6)

    seen.clear()
    sam = lambda x: seen.append(x) or F.avg_pool2d(x.float(), 16).half()  # noqa: E731
    proxyclip.predict(clip3, q.half(), QUERY_IDX, img, (100, 100), vfm_features=sam, vfm_model='sam', half=True)
    assert seen[0].shape == (1, 3, 1024, 1024) and seen[0].dtype == torch.float16

    with pytest.raises(RuntimeError):  # DINO: I, J both from the height; a 112 x 168 window cannot be reshaped
        proxyclip.predict(clip3, q, QUERY_IDX, image(112, 168), (112, 168), vfm_features=lambda x: F.avg_pool2d(x, 8))


# --- NACLIP ----------------------------------------------------------------------------------

def test_naclip_gaussian_addition_by_hand():
    addition = naclip.get_attention_addition(2, 2, naclip.gaussian_window(3, 3, std=1.0))
    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    expected = torch.zeros(5, 5)
    for i, a in enumerate(cells):
        for j, b in enumerate(cells):
            expected[i + 1, j + 1] = math.exp(-((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / 2)
    assert torch.allclose(addition, expected, atol=1e-6)
