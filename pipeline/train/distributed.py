"""Cross-device helpers that are no-ops on one process.

Under `accelerate launch` torch.distributed is initialised; everything here then gathers
across ranks. On a single process (tests, the CPU demo) it returns its input.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(local: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows concatenated, this rank's rows keeping their gradient.

    Returns the gathered tensor and the row offset of this rank's rows in it. Ranks may
    hold different row counts (the last batch of an epoch, hard negatives).
    """
    rank, size = world()
    if size == 1:
        return local, 0
    counts = torch.tensor([local.shape[0]], device=local.device)
    all_counts = [torch.zeros_like(counts) for _ in range(size)]
    dist.all_gather(all_counts, counts)
    sizes = [int(c.item()) for c in all_counts]
    width = max(sizes)
    padded = torch.zeros((width, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local.detach()
    gathered = [torch.zeros_like(padded) for _ in range(size)]
    dist.all_gather(gathered, padded)
    pieces = [g[:n] for g, n in zip(gathered, sizes, strict=True)]
    pieces[rank] = local  # the autograd path back to this rank's encoder
    return torch.cat(pieces), sum(sizes[:rank])


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """All ranks' rows, concatenated in rank order (no gradient)."""
    gathered, _ = gather_with_grad(local.detach())
    return gathered
