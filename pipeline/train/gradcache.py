"""GradCache: a contrastive step over a large batch in the memory of one chunk.

(Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup".) 1) embed every chunk without a graph, remembering each chunk's random state;
2) compute the loss on the detached embeddings and back-propagate to them only;
3) re-embed chunk by chunk with the same random state (so dropout masks repeat) and
back-propagate each chunk's cached embedding gradient into the model. Gradients equal
those of one full-batch step; peak activation memory is that of one chunk. Works on a
single device too (VLM2Vec's only runs with more than one GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.models.base import Batch

SyncContext = Callable[[bool], contextlib.AbstractContextManager]


@dataclass
class RandomState:
    """CPU and CUDA generator states, to replay a forward pass with identical dropout."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls) -> RandomState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        devices = list(range(len(self.cuda))) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def _no_sync(_: bool) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def embed_chunks_without_graph(model: nn.Module, chunks: Sequence[Batch]) -> tuple[torch.Tensor, list[RandomState]]:
    """(N, D) embeddings of all chunks, no autograd graph kept; and each chunk's random state."""
    states, reps = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandomState.capture())
            reps.append(model(chunk))
    return torch.cat(reps), states


def backward_through_chunks(
    model: nn.Module,
    chunks: Sequence[Batch],
    states: Sequence[RandomState],
    grads: torch.Tensor,  # (N, D): d loss / d embedding, rows in chunk order
    sync: SyncContext = _no_sync,
    last_group: bool = True,
) -> None:
    """Re-embed each chunk with its recorded random state and push its cached gradient in."""
    start = 0
    for i, (chunk, state) in enumerate(zip(chunks, states, strict=True)):
        with state.replay():
            rep = model(chunk)  # (b, D)
        piece = grads[start : start + rep.shape[0]]
        start += rep.shape[0]
        is_last = last_group and i == len(chunks) - 1
        with sync(is_last):  # gradient all-reduce only once, after the last chunk
            torch.autograd.backward(rep, grad_tensors=piece.to(rep.dtype))


def gradcache_step(
    model: nn.Module,
    query_chunks: Sequence[Batch],
    target_chunks: Sequence[Batch],
    negative_chunks: Sequence[Batch],
    loss_fn: nn.Module,
    sync: SyncContext = _no_sync,
    loss_kwargs: dict | None = None,
) -> dict[str, torch.Tensor]:
    """One contrastive step with cached embedding gradients; returns the loss terms (detached).

    `sync(is_last)` returns the context for each backward (e.g. `accelerator.no_sync` on
    all but the last), so distributed gradients are reduced once per step. `loss_kwargs`
    go to `loss_fn` (item keys for false-negative masking).
    """
    q, q_states = embed_chunks_without_graph(model, query_chunks)
    t, t_states = embed_chunks_without_graph(model, target_chunks)
    n = None
    n_states: list[RandomState] = []
    if negative_chunks:
        n, n_states = embed_chunks_without_graph(model, negative_chunks)
    q, t = q.detach().requires_grad_(), t.detach().requires_grad_()
    if n is not None:
        n = n.detach().requires_grad_()
    terms = loss_fn(q, t, n, **(loss_kwargs or {}))
    terms["loss"].backward()
    groups = [(query_chunks, q_states, q.grad), (target_chunks, t_states, t.grad)]
    if n is not None:
        groups.append((negative_chunks, n_states, n.grad))
    for g, (chunks, states, grad) in enumerate(groups):
        backward_through_chunks(model, chunks, states, grad, sync, last_group=g == len(groups) - 1)
    return {k: v.detach() for k, v in terms.items()}


def full_batch_step(
    model: nn.Module,
    queries: Batch,
    targets: Batch,
    negatives: Batch | None,
    loss_fn: nn.Module,
    loss_kwargs: dict | None = None,
) -> dict[str, torch.Tensor]:
    """The plain step GradCache must match: one forward and backward over the whole batch."""
    terms = loss_fn(model(queries), model(targets), model(negatives) if negatives is not None else None,
                    **(loss_kwargs or {}))
    terms["loss"].backward()
    return {k: v.detach() for k, v in terms.items()}
