"""The encoder pool keeps as many encoders as the device's memory holds, not a fixed count."""

from __future__ import annotations

import pytest
import torch

from pipeline.search.encoders import EncoderPool, EncoderSource, EncoderUnavailable

MB = 2**20


class FakeSource(EncoderSource):
    """A 'model' of n float32 parameters; `oom` loads fail with CUDA's out-of-memory message."""

    def __init__(self, name: str, n: int, oom: int = 0):
        object.__setattr__(self, "recipe", {"name": name})
        object.__setattr__(self, "directory", None)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "oom", [oom])

    def load(self, device: str):
        if self.oom[0]:
            self.oom[0] -= 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return torch.nn.Linear(self.n, 1, bias=False)


class Device:
    """Free memory: a total minus what the pool holds."""

    def __init__(self, pool: EncoderPool, total: int):
        self.pool, self.total = pool, total

    def __call__(self) -> int:
        return self.total - sum(e.nbytes for e in self.pool._loaded.values())


def test_pool_keeps_what_fits_and_drops_the_least_recent(monkeypatch):
    pool = EncoderPool("cpu", max_loaded=8)
    monkeypatch.setattr(pool, "_free_bytes", Device(pool, total=10 * MB))
    sources = [FakeSource(f"m{i}", MB) for i in range(4)]  # 4 MB each: two fit in 10 MB with the margin
    for s in sources:
        pool.get(s)
    assert pool.loaded == 2
    assert set(pool._loaded) == {sources[2].key(), sources[3].key()}


def test_out_of_memory_drops_one_and_retries_and_alone_it_is_unavailable(monkeypatch):
    pool = EncoderPool("cpu", max_loaded=8)
    monkeypatch.setattr(pool, "_free_bytes", lambda: 10**12)
    pool.get(FakeSource("a", 1000))
    pool.get(FakeSource("b", 1000, oom=1))  # fails once, succeeds after "a" is dropped
    assert pool.loaded == 1
    with pytest.raises(EncoderUnavailable, match="out of memory"):
        pool.get(FakeSource("c", 1000, oom=5))  # nothing left to drop: this run is unavailable
    assert pool.loaded == 0
