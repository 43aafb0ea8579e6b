"""InfoNCE as `pipeline.train.loss` computes it: hand-computed values, hard negatives, masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.train.loss import InfoNCELoss


def test_hard_negatives_enter_the_loss():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(4, 8), dim=-1)
    t = F.normalize(q + 0.1 * torch.randn(4, 8), dim=-1)
    loss_fn = InfoNCELoss(0.02, gather=False)
    without = loss_fn(q, t)["loss"]
    near = F.normalize(q + 0.05 * torch.randn(4, 8), dim=-1)  # negatives closer than the positives
    with_neg = loss_fn(q, t, near)
    assert with_neg["loss"] > without + 0.5
    assert with_neg["hardest_negative_cosine"] > loss_fn(q, t)["hardest_negative_cosine"]


def test_loss_matches_hand_computed_infonce():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    t = F.normalize(torch.tensor([[1.0, 0.2], [0.3, 1.0]]), dim=-1)
    temp = 0.1
    logits = q @ t.T / temp
    expected = -(torch.log_softmax(logits, dim=1).diagonal()).mean()
    assert torch.allclose(InfoNCELoss(temp, gather=False)(q, t)["loss"], expected)


def test_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)


def test_copies_of_a_positive_are_not_its_negatives():
    torch.manual_seed(1)
    q = F.normalize(torch.randn(4, 8), dim=-1)
    t = F.normalize(torch.randn(4, 8), dim=-1)
    t[2] = t[0]  # the same class label drawn twice: one item, two rows
    n = F.normalize(torch.randn(4, 8), dim=-1)
    keys, neg_keys = torch.tensor([10, 11, 10, 12]), torch.tensor([20, 21, 10, 22])  # negative 2 is label 10 too
    loss_fn = InfoNCELoss(0.1, gather=False)
    masked = loss_fn(q, t, n, target_keys=keys, negative_keys=neg_keys)["loss"]
    logits = q @ torch.cat([t, n]).T / 0.1
    expected = []
    for i, key in enumerate(keys.tolist()):
        keep = [j for j, k in enumerate(keys.tolist() + neg_keys.tolist()) if k != key or j == i]
        expected.append(-torch.log_softmax(logits[i, keep], dim=0)[keep.index(i)])
    assert torch.allclose(masked, torch.stack(expected).mean())
    assert masked < loss_fn(q, t, n)["loss"]  # unmasked, query 0 is pushed away from its own label


def test_item_keys_must_cover_every_candidate():
    q = F.normalize(torch.randn(3, 4), dim=-1)
    with pytest.raises(ValueError, match="item keys"):
        InfoNCELoss(0.1, gather=False)(q, q, q[:2], target_keys=torch.arange(3), negative_keys=torch.arange(1))
