"""The store as every process of an `accelerate launch` sees it: one writer, on the main process.

A store has a single writer. Under several processes the main one opens it; the others train and
evaluate alongside it, skip every write, receive the main process's answers to questions about
the store (so every rank makes the same skip / resume decisions), and wait at a barrier while it
publishes. On one process this is the plain `StoreWriter`.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from storage import StoreWriter

WRITES = ("upsert_models", "upsert_datasets", "add_items", "set_dataset_rows", "add_run")


class Processes:
    """Rank, size and collectives of this launch (accelerate's state; one process without it)."""

    def __init__(self) -> None:
        from accelerate import PartialState

        self.state = PartialState()  # joins the process group `accelerate launch` set up, if any

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def count(self) -> int:
        return self.state.num_processes

    @property
    def device(self) -> Any:
        return self.state.device

    def wait(self) -> None:
        self.state.wait_for_everyone()

    def share(self, value: Any) -> Any:
        """The main process's `value`, on every process."""
        if self.count == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def on_main(self, action, *args: Any, **kwargs: Any) -> Any:
        """Run `action` on the main process only (file writes), then let every process go on."""
        result = action(*args, **kwargs) if self.is_main else None
        self.wait()
        return result


class MainProcessStore:
    """A `StoreWriter` on the main process; a follower of it on the others."""

    def __init__(self, path: str | Path, processes: Processes) -> None:
        self.processes = processes
        self.writer = StoreWriter(path) if processes.is_main else None

    def __enter__(self) -> MainProcessStore:
        if self.writer is not None:
            self.writer.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if self.writer is not None:
                self.writer.__exit__(kind, error, trace)
        finally:
            if kind is None:  # after a failure another rank may never arrive: do not wait for it
                self.processes.wait()

    def has_run(self, *args: Any, **kwargs: Any) -> bool:
        answer = self.writer.has_run(*args, **kwargs) if self.writer is not None else None
        return bool(self.processes.share(answer))

    def with_writer(self, action, *args: Any, **kwargs: Any) -> Any:
        """`action(writer, ...)` on the main process (a write computed from the store itself, such as a
        run's intervals); the other processes skip it."""
        return action(self.writer, *args, **kwargs) if self.writer is not None else None

    def publish(self, **kwargs: Any) -> None:
        if self.writer is not None:
            self.writer.publish(**kwargs)
        self.processes.wait()

    def __getattr__(self, name: str) -> Any:
        if name not in WRITES:
            raise AttributeError(f"{name!r} is not a store write the followers may skip; add it to WRITES "
                                 "or answer it through Processes.share")
        if self.writer is not None:
            return getattr(self.writer, name)
        return lambda *args, **kwargs: None
