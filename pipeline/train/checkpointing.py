"""Resumable training checkpoints: written whole or not at all.

A checkpoint directory holds the trainable weights, optimizer and scheduler state, the
step and sample counters and every random generator's state, so a resumed run continues
bit for bit where the killed one stopped. It is written under a temporary name and
renamed when complete; a directory without `state.pt` is never read.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

PREFIX = "step-"


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    step: int
    samples: int


def _rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer, scheduler, step: int, samples: int,
                    extra: dict | None = None) -> CheckpointInfo:
    final = directory / f"{PREFIX}{step:07d}"
    tmp = directory / f".{PREFIX}{step:07d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainable_state(model), tmp / "weights.pt")
    torch.save({
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "samples": samples,
        "rng": _rng_state(),
        "extra": extra or {},
    }, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return CheckpointInfo(final, step, samples)


def latest_checkpoint(directory: Path) -> CheckpointInfo | None:
    if not directory.is_dir():
        return None
    done = sorted(p for p in directory.glob(f"{PREFIX}*") if (p / "state.pt").is_file())
    if not done:
        return None
    state = torch.load(done[-1] / "state.pt", map_location="cpu", weights_only=False)
    return CheckpointInfo(done[-1], state["step"], state["samples"])


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load a checkpoint's trainable weights into a model prepared the same way (e.g. LoRA)."""
    weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    missing = set(weights) - set(model.state_dict())
    if missing:
        raise ValueError(f"{path}: {len(missing)} saved weights have no place in the model, e.g. {sorted(missing)[:3]}; "
                         "was it trained with other LoRA or model settings?")
    model.load_state_dict(weights, strict=False)


def restore_checkpoint(info: CheckpointInfo, model: torch.nn.Module, optimizer, scheduler) -> dict:
    load_weights(info.path, model)
    state = torch.load(info.path / "state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    log.info("resumed from %s (step %d, %d samples)", info.path.name, info.step, info.samples)
    return state["extra"]


def prune_checkpoints(directory: Path, keep: int, protected: set[int]) -> None:
    """Delete old resumable checkpoints, never the data-scale points in `protected`."""
    done = sorted(p for p in directory.glob(f"{PREFIX}*") if (p / "state.pt").is_file())
    removable = [p for p in done if int(p.name[len(PREFIX):]) not in protected]
    for path in removable[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
