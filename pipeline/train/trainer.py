"""Contrastive fine-tuning of a VLM encoder: InfoNCE, GradCache, LoRA, resumable.

The data order is a seeded permutation per epoch, so step k always sees the same pairs;
together with the checkpointed random state this makes a killed-and-resumed run end in
exactly the state of an uninterrupted one. Under `accelerate launch` each process takes
its slice of every global batch and the loss gathers embeddings across processes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.models.base import Example, VLMEncoder
from pipeline.models.lora import apply_lora
from pipeline.train.checkpointing import (
    CheckpointInfo,
    latest_checkpoint,
    prune_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from pipeline.train.config import TrainConfig
from pipeline.train.gradcache import full_batch_step, gradcache_step
from pipeline.train.loss import InfoNCELoss

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    user_facing = True


@dataclass(frozen=True)
class ContrastivePair:
    """A query, its positive target and optional hard negatives (already materialised).

    The ids name the positive's and negatives' items (equal id, same item): the trainer needs
    them to mask false negatives.
    """

    query: Example
    positive: Example
    negatives: tuple[Example, ...] = ()
    positive_id: str | None = None
    negative_ids: tuple[str, ...] = ()


@dataclass
class TrainResult:
    steps: int
    samples: int
    log: list[dict[str, float]] = field(default_factory=list)
    data_scale_checkpoints: list[CheckpointInfo] = field(default_factory=list)
    seconds: float = 0.0


PairSource = Callable[[Sequence[int]], list[ContrastivePair]]


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def item_keys(ids: Sequence[str | None]) -> torch.Tensor:
    """(N,) int64 keys of item ids, equal across processes for equal ids."""
    if any(i is None for i in ids):
        raise ValueError("mask_false_negatives needs the item id of every positive and negative "
                         "(ContrastivePair.positive_id / negative_ids)")
    return torch.tensor([int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little", signed=True)
                         for i in ids], dtype=torch.int64)


def dataset_batches(groups: Sequence[str], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch of batches, each drawn from one dataset, in a seeded random order.

    Each dataset's pairs are shuffled and cut into full batches (the remainder is dropped,
    as for mixed batches); then the batches of all datasets are shuffled together.
    """
    rng = np.random.default_rng([seed, epoch])
    labels = np.asarray(groups)
    batches = []
    for name in sorted(set(groups)):
        members = rng.permutation(np.flatnonzero(labels == name))
        batches += [members[i : i + batch_size] for i in range(0, len(members) - batch_size + 1, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def enable_gradient_checkpointing(model: torch.nn.Module) -> int:
    """Turn on activation checkpointing in every transformers sub-model; returns how many."""
    count = 0
    for module in model.modules():
        if hasattr(module, "gradient_checkpointing_enable") and getattr(module, "supports_gradient_checkpointing", False):
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            count += 1
    return count


class ContrastiveTrainer:
    """Fine-tunes `encoder` on pairs; `pairs_at(indices)` materialises pairs (images loaded lazily).

    `groups` names each pair's dataset; `batch_by_dataset` needs it.
    """

    def __init__(self, encoder: VLMEncoder, config: TrainConfig, n_pairs: int, pairs_at: PairSource,
                 output_dir: str | Path, accelerator: Any = None, progress: bool = True,
                 groups: Sequence[str] | None = None):
        from accelerate import Accelerator

        if n_pairs < config.global_batch_size:
            raise ValueError(f"{n_pairs} training pairs cannot fill one global batch of {config.global_batch_size}; "
                             "lower global_batch_size or add data")
        if config.batch_by_dataset and (groups is None or len(groups) != n_pairs):
            raise ValueError("batch_by_dataset needs the dataset of every training pair (groups)")
        self.config = config
        self.n_pairs = n_pairs
        self.groups = list(groups) if groups is not None else None
        if config.batch_by_dataset and self.batches_per_epoch == 0:
            raise ValueError(f"no dataset has {config.global_batch_size} training pairs to fill a batch of its "
                             "own; lower global_batch_size or turn batch_by_dataset off")
        self._epoch_batches: tuple[int, list[np.ndarray]] | None = None
        self.pairs_at = pairs_at
        self.output_dir = Path(output_dir)
        self.progress = progress  # a progress bar on the main process; off for logs written to a file
        self.accelerator = accelerator or Accelerator(mixed_precision="bf16" if config.bf16 else "no")
        torch.manual_seed(config.seed)
        if config.lora is not None:
            apply_lora(encoder, config.lora)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(encoder)
        self.encoder = encoder
        params = [p for p in encoder.parameters() if p.requires_grad]
        if not params:
            raise ValueError("nothing to train: every parameter is frozen")
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.total_steps = self._total_steps()
        warmup = int(config.warmup_ratio * self.total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear_decay(warmup, self.total_steps))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(encoder, optimizer, scheduler)
        self.loss_fn = InfoNCELoss(config.temperature, gather=self.accelerator.num_processes > 1)

    # -- schedule ------------------------------------------------------------------------
    @cached_property
    def batches_per_epoch(self) -> int:
        bs = self.config.global_batch_size
        if self.config.batch_by_dataset:  # each dataset drops its own last partial batch
            return sum(n // bs for n in Counter(self.groups).values())
        return self.n_pairs // bs  # the last partial batch is dropped

    def _dataset_batches(self, epoch: int) -> list[np.ndarray]:
        """This epoch's one-dataset batches, built once per epoch rather than at every step."""
        if self._epoch_batches is None or self._epoch_batches[0] != epoch:
            self._epoch_batches = (epoch, dataset_batches(self.groups, self.config.global_batch_size,
                                                          self.config.seed, epoch))
        return self._epoch_batches[1]

    def _total_steps(self) -> int:
        if self.config.max_steps is not None:
            return self.config.max_steps
        return max(1, math.floor(self.batches_per_epoch * self.config.epochs))

    def batch_indices(self, step: int) -> list[int]:
        """Pair indices of this process's share of global batch `step` (0-based)."""
        bs = self.config.global_batch_size
        epoch, within = divmod(step, self.batches_per_epoch)
        if self.config.batch_by_dataset:
            batch = self._dataset_batches(epoch)[within].tolist()
        else:
            order = np.random.default_rng([self.config.seed, epoch]).permutation(self.n_pairs)
            batch = order[within * bs : (within + 1) * bs].tolist()
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        share = math.ceil(bs / world)
        return batch[rank * share : (rank + 1) * share]

    def data_scale_steps(self) -> dict[int, int]:
        """{step: samples} at which the data-scale checkpoints fall."""
        bs = self.config.global_batch_size
        return {max(1, math.ceil(s / bs)): s for s in self.config.checkpoint_samples
                if math.ceil(s / bs) <= self.total_steps}

    # -- one step ------------------------------------------------------------------------
    def _step(self, pairs: list[ContrastivePair]) -> dict[str, float]:
        unwrapped = self.accelerator.unwrap_model(self.model)
        k = self.config.hard_negatives
        queries = [p.query for p in pairs]
        targets = [p.positive for p in pairs]
        negatives = [n for p in pairs for n in p.negatives[:k]]
        size = self.config.chunk_size if self.config.uses_gradcache else max(len(queries), len(negatives), 1)
        keys = None
        if self.config.mask_false_negatives:
            device = self.accelerator.device
            keys = {"target_keys": item_keys([p.positive_id for p in pairs]).to(device),
                    "negative_keys": item_keys([n for p in pairs for n in p.negative_ids[:k]]).to(device)}
            if len(keys["negative_keys"]) != len(negatives):
                raise ValueError("every hard negative needs its item id to mask false negatives")
        with self.accelerator.autocast():
            if self.config.uses_gradcache:
                terms = gradcache_step(
                    self.model,
                    [unwrapped.collate(c) for c in _chunks(queries, size)],
                    [unwrapped.collate(c) for c in _chunks(targets, size)],
                    [unwrapped.collate(c) for c in _chunks(negatives, size)],
                    self.loss_fn,
                    sync=self._sync_context,
                    loss_kwargs=keys,
                )
            else:
                terms = full_batch_step(self.model, unwrapped.collate(queries), unwrapped.collate(targets),
                                        unwrapped.collate(negatives) if negatives else None, self.loss_fn, keys)
        return {k: float(v) for k, v in terms.items()}

    def _sync_context(self, is_last: bool):
        import contextlib

        return contextlib.nullcontext() if is_last else self.accelerator.no_sync(self.model)

    # -- the loop ------------------------------------------------------------------------
    def train(self, resume: bool = True, on_data_scale: Callable[[CheckpointInfo], None] | None = None,
              stop_after: int | None = None) -> TrainResult:
        """Run to the end (or `stop_after` steps, for tests); resumes from the latest checkpoint."""
        from tqdm.auto import tqdm

        start_step, samples, history = 0, 0, []
        latest = latest_checkpoint(self.output_dir) if resume else None
        if latest is not None:
            extra = restore_checkpoint(latest, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler)
            start_step, samples, history = latest.step, latest.samples, extra.get("history", [])
        scale_steps = self.data_scale_steps()
        result = TrainResult(steps=start_step, samples=samples, log=history)
        bar = tqdm(total=self.total_steps, initial=start_step, desc="train", unit="step",
                   disable=not (self.progress and self.accelerator.is_main_process))
        began = time.perf_counter()
        end = self.total_steps if stop_after is None else min(self.total_steps, start_step + stop_after)
        for step in range(start_step, end):
            self.model.train()
            tick = time.perf_counter()
            terms = self._step(self.pairs_at(self.batch_indices(step)))
            if not math.isfinite(terms["loss"]):
                self.optimizer.zero_grad(set_to_none=True)
                good = latest_checkpoint(self.output_dir)
                where = f"the last good checkpoint is {good.path}" if good else "no checkpoint was written yet"
                raise TrainingDivergedError(
                    f"loss became {terms['loss']} at step {step + 1}; stopped without applying it ({where}). "
                    "Lower the learning rate or the temperature's sharpness, or resume from that checkpoint "
                    "in fp32 (bf16=false).")
            if self.config.max_grad_norm > 0:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            samples += self.config.global_batch_size
            lr = self.scheduler.get_last_lr()[0]
            history.append({"step": step + 1, "samples": samples, "loss": terms["loss"], "lr": lr,
                            "accuracy": terms["accuracy"]})
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.3f}", lr=f"{lr:.1e}",
                            samples_s=f"{self.config.global_batch_size / (time.perf_counter() - tick):.1f}")
            self._maybe_checkpoint(step + 1, samples, history, scale_steps, result, on_data_scale)
        bar.close()
        result.steps, result.samples, result.log = end, samples, history
        result.seconds = time.perf_counter() - began
        return result

    def _maybe_checkpoint(self, step: int, samples: int, history: list, scale_steps: dict[int, int],
                          result: TrainResult, on_data_scale: Callable[[CheckpointInfo], None] | None) -> None:
        every = self.config.checkpoint_every
        due = step in scale_steps or step == self.total_steps or (every and step % every == 0)
        if not due:
            return
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            info = save_checkpoint(self.output_dir, self.accelerator.unwrap_model(self.model), self.optimizer,
                                   self.scheduler, step, samples, extra={"history": history})
            prune_checkpoints(self.output_dir, self.config.keep_checkpoints, protected=set(scale_steps) | {step})
            if step in scale_steps:
                result.data_scale_checkpoints.append(info)
                if on_data_scale is not None:
                    on_data_scale(info)
        self.accelerator.wait_for_everyone()


def _warmup_linear_decay(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor
