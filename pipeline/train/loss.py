"""InfoNCE over in-batch and hard negatives, gathered across devices.

Each query is scored against every target in the (global) batch plus every hard negative
in it; the positive of query i is target i. This is the paper's Eq. 1 with
phi(q, t) = exp(cos(q, t) / T), T = 0.02 (VLM2Vec; DiffEmbed's "scale 50").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.train.distributed import gather_with_grad


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
    ) -> dict[str, torch.Tensor]:
        if queries.shape != targets.shape:
            raise ValueError(f"queries {tuple(queries.shape)} and targets {tuple(targets.shape)} must match")
        offset = 0
        if self.gather:
            # Every device scores its queries against all targets; the positives of the local
            # queries sit at this device's offset in the gathered targets.
            targets, offset = gather_with_grad(targets)
            if negatives is not None:
                negatives, _ = gather_with_grad(negatives)
        candidates = targets if negatives is None or negatives.numel() == 0 else torch.cat([targets, negatives])
        logits = queries.float() @ candidates.float().T / self.temperature  # (B, B_global + M_global)
        labels = torch.arange(queries.shape[0], device=queries.device) + offset
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            cos = logits * self.temperature
            positive = cos.gather(1, labels[:, None]).squeeze(1)
            masked = cos.scatter(1, labels[:, None], float("-inf"))
            accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {
            "loss": loss,
            "accuracy": accuracy,
            "positive_cosine": positive.mean(),
            "hardest_negative_cosine": masked.max(dim=1).values.mean(),
        }
