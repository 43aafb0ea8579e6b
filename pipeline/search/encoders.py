"""Encoders for live search: each loaded once per process from its run's checkpoint.

A run names the directory its encoder was saved in (`runs.checkpoint`, holding
`encoder.json`); `pipeline.models.recipe.load_encoder` rebuilds exactly that model. A run
evaluated without training (`vlmembed eval`) records its recipe in `runs.config` instead.
A run whose encoder cannot be built is *unavailable*, with the reason; the reason is
remembered (no retry on every query) until its checkpoint files change.

One lock per encoder: a torch module is not re-entered by two requests at once; different
models encode in parallel.

How many stay loaded is set by the device's memory, not by a count alone: before a load, the
least recently used encoders are dropped until the free memory (the GPU's, or the host's for the
CPU) holds the largest encoder loaded so far plus a margin; a load that still runs out of memory
drops one more and retries. An encoder that does not fit even alone makes its run unavailable
with that reason; the other runs still answer. `max_loaded` stays as an upper bound.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEVICE_ENV = "VLMEMBED_DEVICE"
MAX_ENCODERS_ENV = "VLMEMBED_SEARCH_MAX_ENCODERS"
FIT_MARGIN = 1.2  # free memory a new encoder needs, in units of the largest one loaded (activations too)


class EncoderUnavailable(RuntimeError):
    """This run's encoder cannot be used for live search; str() is the reason."""


def resolve_device(device: str | None = None) -> str:
    """The explicit device, else $VLMEMBED_DEVICE, else the CPU (tiny demo models)."""
    return device or os.environ.get(DEVICE_ENV) or "cpu"


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@dataclass(frozen=True)
class EncoderSource:
    """Where a run's encoder comes from: a model directory, or a recipe stored with the run."""

    directory: Path | None = None
    recipe: dict | None = None

    @classmethod
    def of_run(cls, checkpoint: str | None, config: Any = None) -> EncoderSource:
        """Raises EncoderUnavailable when the run records neither."""
        if checkpoint and (Path(checkpoint) / "encoder.json").is_file():
            return cls(directory=Path(checkpoint))
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError:
                config = None
        recipe = config.get("recipe") if isinstance(config, dict) else None
        if isinstance(recipe, dict):
            return cls(recipe=recipe)
        if not checkpoint:
            raise EncoderUnavailable("the run records no checkpoint (runs imported from the paper have none)")
        if not Path(checkpoint).exists():
            raise EncoderUnavailable(f"its checkpoint directory {checkpoint} is missing (moved or deleted?); "
                                     "re-run the experiment to recreate it")
        raise EncoderUnavailable(f"{checkpoint} holds no encoder.json, so the model cannot be rebuilt")

    def key(self) -> Hashable:
        """Changes when the files change, so a fixed or retrained checkpoint is loaded afresh."""
        if self.directory is None:
            return ("recipe", json.dumps(self.recipe, sort_keys=True))
        files = sorted(self.directory.glob("*.json")) + sorted(self.directory.glob("*.pt"))
        return ("dir", str(self.directory.resolve()), tuple((f.name, _stamp(f)) for f in files))

    def load(self, device: str):
        from pipeline.models.recipe import EncoderRecipe, load_encoder

        if self.directory is not None:
            return load_encoder(self.directory, device=device)
        return EncoderRecipe(**self.recipe).build(device=device)  # type: ignore[arg-type]


@dataclass
class LoadedEncoder:
    encoder: Any  # pipeline.models.base.VLMEncoder
    lock: threading.Lock

    @property
    def nbytes(self) -> int:
        """Parameter and buffer bytes (what it holds on its device)."""
        tensors = [*getattr(self.encoder, "parameters", list)(), *getattr(self.encoder, "buffers", list)()]
        return int(sum(t.numel() * t.element_size() for t in tensors))

    def encode(self, example) -> np.ndarray:
        """(D,) float32, unit length."""
        with self.lock:
            return self.encoder.encode([example], batch_size=1)[0].numpy().astype(np.float32)


class EncoderPool:
    """Loaded encoders by source (least recently used dropped beyond `max_loaded`), and the
    reasons of those that failed."""

    def __init__(self, device: str | None = None, max_loaded: int | None = None):
        self.device = resolve_device(device)
        self.max_loaded = max_loaded or int(os.environ.get(MAX_ENCODERS_ENV, "8"))
        self._loaded: OrderedDict[Hashable, LoadedEncoder] = OrderedDict()
        self._failed: dict[Hashable, str] = {}
        self._gates: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self._largest = 0  # bytes of the largest encoder loaded so far: the room a new one needs

    def get(self, source: EncoderSource) -> LoadedEncoder:
        key = source.key()
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            if key in self._failed:
                raise EncoderUnavailable(self._failed[key])
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:  # one load per source, however many requests ask at once
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
                if key in self._failed:
                    raise EncoderUnavailable(self._failed[key])
            loaded = self._load_fitting(source, key)
            with self._lock:
                self._loaded[key] = loaded
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
            return loaded

    def _free_bytes(self) -> int:
        if self.device.startswith("cuda"):
            import torch

            return int(torch.cuda.mem_get_info(torch.device(self.device))[0])
        import psutil

        return int(psutil.virtual_memory().available)

    def _drop_oldest(self) -> bool:
        with self._lock:
            if not self._loaded:
                return False
            key, _ = self._loaded.popitem(last=False)
        log.info("dropped encoder %s to make room", str(key)[:120])
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
        return True

    def _load_fitting(self, source: EncoderSource, key: Hashable) -> LoadedEncoder:
        """Load after making room (see the module's note); retry once per encoder dropped on OOM."""
        while self._loaded and self._free_bytes() < FIT_MARGIN * self._largest and self._drop_oldest():
            pass
        while True:
            try:
                loaded = self._load(source, key)
            except EncoderUnavailable as exc:
                out_of_memory = "out of memory" in str(exc).lower()
                if out_of_memory and self._drop_oldest():
                    with self._lock:
                        self._failed.pop(key, None)
                    continue
                raise
            self._largest = max(self._largest, loaded.nbytes)
            return loaded

    def _load(self, source: EncoderSource, key: Hashable) -> LoadedEncoder:
        try:
            if self.device.startswith("cuda"):
                import torch

                if not torch.cuda.is_available():
                    raise EncoderUnavailable(f"device {self.device} was asked for but CUDA is not available; "
                                             f"unset {DEVICE_ENV} or pass --device cpu")
            encoder = source.load(self.device)
        except Exception as exc:  # noqa: BLE001 - any failure makes this one run unavailable, not the app
            reason = str(exc) if isinstance(exc, EncoderUnavailable) else f"loading failed: {type(exc).__name__}: {exc}"
            log.warning("encoder %s unavailable: %s", key[1][:120] if len(key) > 1 else key, reason)
            with self._lock:
                self._failed[key] = reason.splitlines()[0] if reason else type(exc).__name__
            raise EncoderUnavailable(self._failed[key]) from exc
        log.info("loaded encoder %s on %s", source.directory or source.recipe, self.device)
        return LoadedEncoder(encoder, threading.Lock())

    @property
    def loaded(self) -> int:
        return len(self._loaded)
