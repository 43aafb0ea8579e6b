"""GradCache gives the gradients of one full-batch step; the loss uses hard negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.train.gradcache import full_batch_step, gradcache_step
from pipeline.train.loss import InfoNCELoss


class BagEncoder(nn.Module):
    """A small model with dropout, so GradCache must replay random state to match."""

    def __init__(self, vocab: int = 50, dim: int = 16):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, 32)
        self.drop = nn.Dropout(0.3)
        self.proj = nn.Linear(32, dim)

    def forward(self, batch):
        return F.normalize(self.proj(self.drop(self.emb(batch["ids"]))), dim=-1)


def _batch(rows: torch.Tensor) -> dict:
    return {"ids": rows}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _data(n=12, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 50, (n, k), generator=g), torch.randint(0, 50, (n, k), generator=g),
            torch.randint(0, 50, (n, k), generator=g))


def _chunks(x, size):
    return [_batch(x[i : i + size]) for i in range(0, len(x), size)]


def test_gradcache_matches_full_batch_with_dropout_and_negatives():
    q, t, n = _data()
    loss_fn = InfoNCELoss(0.05, gather=False)
    torch.manual_seed(0)
    model = BagEncoder()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(123)
    full = full_batch_step(model, _batch(q), _batch(t), _batch(n), loss_fn)
    expected = _grads(model)

    model.load_state_dict(state)
    model.zero_grad()
    torch.manual_seed(123)
    cached = gradcache_step(model, _chunks(q, 12), _chunks(t, 12), _chunks(n, 12), loss_fn)
    # one chunk each: identical random stream, so identical loss and gradients
    assert torch.allclose(cached["loss"], full["loss"], atol=1e-6)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, expected[name], atol=1e-5), name


def test_gradcache_chunked_equals_unchunked_gradcache():
    """Chunking changes nothing but memory: 4-row chunks give the 12-row gradients."""
    q, t, n = _data()
    loss_fn = InfoNCELoss(0.05, gather=False)
    torch.manual_seed(0)
    model = BagEncoder()
    model.eval()  # dropout off: chunk order then cannot matter for the random stream
    state = {k: v.clone() for k, v in model.state_dict().items()}
    full_batch_step(model, _batch(q), _batch(t), _batch(n), loss_fn)
    expected = _grads(model)
    model.load_state_dict(state)
    model.zero_grad()
    gradcache_step(model, _chunks(q, 4), _chunks(t, 4), _chunks(n, 4), loss_fn)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, expected[name], atol=1e-5), name


def test_gradcache_replays_dropout_per_chunk():
    """With dropout on, 4-row chunks give exactly the gradients of a graph-keeping forward of
    the same chunks in the same random stream: each chunk's dropout mask is replayed."""
    q, t, _ = _data()
    loss_fn = InfoNCELoss(0.05, gather=False)
    torch.manual_seed(0)
    model = BagEncoder()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    reps_q = torch.cat([model(c) for c in _chunks(q, 4)])
    reps_t = torch.cat([model(c) for c in _chunks(t, 4)])
    loss_fn(reps_q, reps_t)["loss"].backward()
    expected = _grads(model)

    model.load_state_dict(state)
    model.zero_grad()
    torch.manual_seed(7)
    gradcache_step(model, _chunks(q, 4), _chunks(t, 4), [], loss_fn)
    for name, grad in _grads(model).items():
        assert torch.allclose(grad, expected[name], atol=1e-5), name
    assert any(g.abs().sum() > 0 for g in expected.values())


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
    import pytest

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
    import pytest

    q = F.normalize(torch.randn(3, 4), dim=-1)
    with pytest.raises(ValueError, match="item keys"):
        InfoNCELoss(0.1, gather=False)(q, q, q[:2], target_keys=torch.arange(3), negative_keys=torch.arange(1))
