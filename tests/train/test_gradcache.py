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
