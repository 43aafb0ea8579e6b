"""Pretraining the demo's miniature VLMs before contrastive fine-tuning.

Real VLMs start from a pretrained LLM and learn to read images from image-text pairs; the
miniatures do the same at toy scale: their token embeddings start from wordllama's
pretrained Llama-2 table (projected to the model width; every family gets the same
start), then the whole model learns to caption the built-in benchmark's images with its
own paradigm's objective. MMaDA-like models first train their MAGVIT-v2 image tokenizer
as an autoencoder (reconstruction with lookup-free quantization), then freeze it, as
MMaDA does.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.demo.objectives import paradigm_loss
from pipeline.models.base import Example, VLMEncoder
from pipeline.models.tokenizer import pretrained_token_embeddings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup: int = 20
    tokenizer_steps: int = 200  # MAGVIT-v2 autoencoder steps (families with discrete image codes)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("pretraining needs positive steps, batch_size and learning_rate")


def seed_token_embeddings(encoder: VLMEncoder) -> int:
    """Copy wordllama's pretrained rows (PCA-projected to the model width) into the LM's
    token embeddings; returns how many rows were set. Special and image-code rows keep
    their random initialisation."""
    table = pretrained_token_embeddings()  # (32000, 256)
    embedding = encoder.input_embeddings()
    rows, width = min(table.shape[0], embedding.num_embeddings), embedding.embedding_dim
    centred = table[:rows] - table[:rows].mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ v[: min(width, v.shape[0])].T  # (rows, <= width)
    if projected.shape[1] < width:
        projected = F.pad(projected, (0, width - projected.shape[1]))
    with torch.no_grad():
        scale = embedding.weight[:rows].std() / projected.std().clamp(min=1e-8)
        embedding.weight[:rows] = (projected * scale).to(embedding.weight.dtype)
    return rows


def _lr_at(step: int, config: PretrainConfig) -> float:
    if step < config.warmup:
        return config.learning_rate * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


def pretrain(encoder: VLMEncoder, captions: Sequence[Example], config: PretrainConfig,
             progress: bool = True) -> list[float]:
    """Train the whole model (minus a frozen image tokenizer) with its paradigm's objective."""
    from tqdm.auto import tqdm

    if len(captions) < config.batch_size:
        raise ValueError(f"pretraining needs at least {config.batch_size} captioned images, got {len(captions)}")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    encoder.train()
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    losses: list[float] = []
    bar = tqdm(range(config.steps), desc=f"pretrain {encoder.spec.name} ({encoder.spec.paradigm})",
               disable=not progress)
    tick = time.perf_counter()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        chosen = rng.choice(len(captions), size=config.batch_size, replace=False)
        batch = encoder.collate([captions[i] for i in chosen])
        loss = paradigm_loss(encoder, batch, generator)
        if not torch.isfinite(loss):
            raise RuntimeError(f"pretraining {encoder.spec.name} diverged at step {step} (loss {float(loss)})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    encoder.eval()
    log.info("pretrained %s in %.0fs: loss %.3f -> %.3f", encoder.spec.name, time.perf_counter() - tick,
             float(np.mean(losses[:10])), float(np.mean(losses[-10:])))
    return losses
