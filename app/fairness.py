"""Sharing the SQL console fairly between clients: settings, per-client slots, gone clients.

Gradio's `concurrency_limit` bounds queries over all clients together, so one client with
many tabs or scripts could fill it. `ClientSlots` bounds each client (a browser session)
as well, and the total is set above `clients x per-client` of a small crowd, so a light
query from someone else never waits behind heavy ones: it runs beside them, each query
on one DuckDB thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import gradio as gr

from storage.console import DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class ConsoleSettings:
    """What the server's operator chooses (`vlmembed app --sql-time-limit / --sql-per-client`)."""

    time_limit_s: float = DEFAULT_TIMEOUT_S  # the longest a query may run; a user may ask for less
    per_client: int = 2  # queries one browser session may have running at once
    total: int = 8  # queries running at once over every client

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"the SQL time limit must be positive, got {self.time_limit_s}")
        if not 1 <= self.per_client <= self.total:
            raise ValueError(f"queries per client must be between 1 and {self.total}, got {self.per_client}")


class ClientSlots:
    """At most `limit` running queries per client key; a refused client is told at once, not queued."""

    def __init__(self, limit: int):
        self.limit = limit
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        with self._lock:
            if self._running.get(client, 0) >= self.limit:
                return False
            self._running[client] = self._running.get(client, 0) + 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            left = self._running.get(client, 0) - 1
            if left > 0:
                self._running[client] = left
            else:
                self._running.pop(client, None)

    def running(self, client: str) -> int:
        with self._lock:
            return self._running.get(client, 0)


def client_gone(blocks: gr.Blocks, session_hash: str | None) -> bool:
    """Whether Gradio saw this session's event stream close (a closed tab, a dropped connection).

    Gradio marks the session's running events not alive but leaves their threads running, so a
    long query would hold its slot until its time limit; the console polls this to stop it instead.
    It reads the queue's internals (Gradio 6), hence the guard: unknown means "still here".
    """
    queue = getattr(blocks, "_queue", None)
    if queue is None or session_hash is None:
        return False
    try:
        jobs = [event for job_set in list(queue.active_jobs) if job_set for event in job_set]
    except (AttributeError, TypeError):
        return False
    mine = [event for event in jobs if getattr(event, "session_hash", None) == session_hash]
    return bool(mine) and not any(getattr(event, "alive", True) for event in mine)
