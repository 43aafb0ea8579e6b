"""InfoNCE over in-batch and hard negatives, gathered across devices.

Each query is scored against every target in the (global) batch plus every hard negative
in it; the positive of query i is target i. This is the paper's Eq. 1 with
phi(q, t) = exp(cos(q, t) / T), T = 0.02 (VLM2Vec; DiffEmbed's "scale 50").

Optionally (item keys given) other copies of a query's positive in the batch, e.g. the same
class label drawn twice, are left out of its negatives: they are false negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.train.distributed import gather_rows, gather_with_grad


class InfoNCELoss(nn.Module):
    """Contrastive loss with temperature; returns named terms (loss, accuracy, positive/negative cosine)."""

    def __init__(self, temperature: float = 0.02, gather: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather = gather

    def get_config_dict(self) -> dict:
        return {"temperature": self.temperature, "gather": self.gather}

    def forward(
        self,
        queries: torch.Tensor,  # (B, D) unit vectors
        targets: torch.Tensor,  # (B, D) unit vectors, targets[i] is the positive of queries[i]
        negatives: torch.Tensor | None = None,  # (M, D) hard negatives of the batch, any count
        target_keys: torch.Tensor | None = None,  # (B,) int64 item keys: equal keys, the same item
        negative_keys: torch.Tensor | None = None,  # (M,) int64 item keys of the hard negatives
    ) -> dict[str, torch.Tensor]:
        if queries.shape != targets.shape:
            raise ValueError(f"queries {tuple(queries.shape)} and targets {tuple(targets.shape)} must match")
        has_negatives = negatives is not None and negatives.numel() > 0
        local_keys = target_keys
        offset = 0
        if self.gather:
            # Every device scores its queries against all targets; the positives of the local
            # queries sit at this device's offset in the gathered targets.
            targets, offset = gather_with_grad(targets)
            if negatives is not None:
                negatives, _ = gather_with_grad(negatives)
            if target_keys is not None:
                target_keys = gather_rows(target_keys)
                negative_keys = gather_rows(negative_keys) if negative_keys is not None else None
        candidates = torch.cat([targets, negatives]) if has_negatives else targets
        logits = queries.float() @ candidates.float().T / self.temperature  # (B, B_global + M_global)
        labels = torch.arange(queries.shape[0], device=queries.device) + offset
        if target_keys is not None:
            keys = torch.cat([target_keys, negative_keys]) if has_negatives else target_keys
            if keys.shape[0] != candidates.shape[0]:
                raise ValueError(f"{keys.shape[0]} item keys for {candidates.shape[0]} candidates")
            false_negative = keys[None, :] == local_keys[:, None]  # (B, B_global + M_global)
            false_negative[torch.arange(len(labels)), labels] = False
            logits = logits.masked_fill(false_negative, float("-inf"))
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            cos = logits * self.temperature
            positive = cos.gather(1, labels[:, None]).squeeze(1)
            masked = cos.scatter(1, labels[:, None], float("-inf"))
            accuracy = (logits.argmax(dim=1) == labels).float().mean()
            hardest = masked.max(dim=1).values
        return {
            "loss": loss,
            "accuracy": accuracy,
            "positive_cosine": positive.mean(),
            # A query whose every candidate is a copy of its positive has no negative at all.
            "hardest_negative_cosine": hardest[hardest.isfinite()].mean(),
        }
