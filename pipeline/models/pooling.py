"""Pooling a sequence of hidden states into one vector.

`last` and `eos` both take the state of the last real token: families that pool on EOS
append the EOS token to every prompt, so it *is* the last real token. The last real token
is found from the attention mask, which makes the result independent of padding side.
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["last", "eos", "mean"]


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D), (B, L) -> (B, D): the state at each row's last position with mask 1."""
    length = attention_mask.shape[1]
    positions = torch.arange(length, device=attention_mask.device).expand_as(attention_mask)
    last = torch.where(attention_mask.bool(), positions, torch.full_like(positions, -1)).amax(dim=1)
    if (last < 0).any():
        raise ValueError("a row of the batch has no real token (attention_mask all zero)")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def masked_mean(hidden: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D), (B, L) -> (B, D): mean over positions with mask 1, accumulated in float32."""
    weights = pool_mask.to(torch.float32).unsqueeze(-1)  # (B, L, 1)
    counts = weights.sum(dim=1).clamp(min=1.0)  # (B, 1)
    return (hidden.to(torch.float32) * weights).sum(dim=1) / counts


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pool_mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    if how in ("last", "eos"):
        return last_token(hidden, attention_mask)
    if how == "mean":
        return masked_mean(hidden, pool_mask * attention_mask)
    raise ValueError(f"unknown pooling {how!r}; use 'last', 'eos' or 'mean'")
