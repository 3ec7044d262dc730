"""Post-processing on hand-made logits with known answers."""
import torch

from sclip.models.postprocess import class_scores, predict_labels


def test_synonyms_take_the_max_over_names():
    # queries: class 0 has names 0 and 1, class 1 has name 2; one pixel per column
    logits = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.5, 2.0]]).view(3, 1, 2)
    p = torch.softmax(logits * 10, dim=0)
    scores = class_scores(logits, torch.tensor([0, 0, 1]), 2, logit_scale=10)
    assert torch.allclose(scores[0], torch.maximum(p[0], p[1]))
    assert torch.allclose(scores[1], p[2])


def test_prob_thd_sets_background():
    logits = torch.tensor([[0.0, 0.0], [0.1, 5.0], [0.0, 0.0]]).view(3, 1, 2)
    _, labels = predict_labels(logits, torch.tensor([0, 1, 2]), 3, logit_scale=1, prob_thd=0.5)
    # pixel 0: best is class 1 with p ~ 0.36 < 0.5 -> background 0; pixel 1: class 1 with p ~ 0.99
    assert labels.tolist() == [[[0, 1]]]


def test_background_index_is_configurable():
    logits = torch.tensor([[0.0], [0.1], [0.0]]).view(3, 1, 1)
    _, labels = predict_labels(logits, torch.tensor([0, 1, 2]), 3, logit_scale=1, prob_thd=0.5, bg_idx=2)
    assert labels.item() == 2


def test_area_thd_removes_small_classes():
    # 10 pixels: class 1 wins 7, class 2 wins 2, class 0 (background) wins 1.
    winners = [1] * 7 + [2] * 2 + [0]
    logits = torch.zeros(3, 1, 10)
    for i, c in enumerate(winners):
        logits[c, 0, i] = 5.0
    logits[1, 0, 7:9] = 4.0  # class 1 is second best where class 2 wins
    scores, labels = predict_labels(logits, torch.tensor([0, 1, 2]), 3, logit_scale=1, area_thd=0.25)
    # foreground areas: 7 and 2 of 9; 2 <= 0.25*9 -> class 2 zeroed, its pixels go to class 1
    assert labels[0, 0].tolist() == [1] * 9 + [0]
    assert (scores[2] == 0).all()
    _, labels = predict_labels(logits, torch.tensor([0, 1, 2]), 3, logit_scale=1, area_thd=0.2)
    assert labels[0, 0].tolist() == winners  # 2 > 0.2*9 = 1.8 -> kept


def test_area_thd_equals_official_one_hot_computation():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, 9)
    query_class = torch.tensor([0, 1, 1, 2, 3])
    scores, labels = predict_labels(logits, query_class, 4, logit_scale=20, prob_thd=0.3, area_thd=0.2)
    # official: one-hot multiply, max over queries, one-hot area, multiply, argmax, threshold
    p = (logits * 20).softmax(0).unsqueeze(0)
    one_hot = torch.nn.functional.one_hot(query_class).T.view(4, 5, 1, 1)
    s = (p * one_hot).max(1)[0]
    pred = torch.nn.functional.one_hot(s.argmax(0), 4).to(s.dtype)
    area = pred[:, :, 1:].sum((0, 1), keepdim=True)
    area = (area > 0.2 * area.sum()).to(s.dtype)
    s[1:] *= area.transpose(0, -1)
    expected = s.argmax(0, keepdim=True)
    expected[s.max(0, keepdim=True)[0] < 0.3] = 0
    assert torch.allclose(scores, s) and torch.equal(labels, expected)
