"""The SQL console is shared fairly: a few queries per browser session, refused at once beyond that;
a cancelled or abandoned query is stopped and frees its slot; results are bounded in bytes."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from app.fairness import ClientSlots, ConsoleSettings, client_gone
from app.store import StoreCache
from app.tabs import sql as tab
from app.tabs.base import Context

HEAVY = "SELECT sum(hash(a.range + b.range)) FROM range(1000000000) a, range(1000) b"


@pytest.fixture
def store(paper_store):
    return StoreCache(paper_store)


def test_a_client_over_its_limit_is_refused_at_once_others_are_not(store):
    slots = ClientSlots(1)
    assert slots.acquire("busy")
    status, _ = tab.console(store, "SELECT 1 AS x", 10, 5, ConsoleSettings(per_client=1), slots, "busy")
    assert "you already have 1 queries running" in status
    status, frame = tab.console(store, "SELECT 1 AS x", 10, 5, ConsoleSettings(per_client=1), slots, "someone-else")
    assert status.startswith("1 rows") and list(frame["x"]) == [1]
    assert slots.running("someone-else") == 0 and slots.running("busy") == 1  # released after the query
    slots.release("busy")
    assert slots.running("busy") == 0 and slots.acquire("busy")


def test_the_time_limit_is_the_operators_cap(store):
    status, _ = tab.console(store, HEAVY, 10, 600, ConsoleSettings(time_limit_s=0.5))
    assert "Stopped after 0.5 s" in status


def test_bytes_are_capped_with_a_truncated_note(store):
    status, frame = tab.console(store, "SELECT repeat('x', 5000) AS s FROM range(10000)", 10_000, 10)
    assert "truncated" in status and "20 MB cap" in status and len(frame) == 20 * 2**20 // 5000


@pytest.mark.parametrize("settings", [dict(time_limit_s=0), dict(per_client=0), dict(per_client=9)])
def test_settings_check_themselves(settings):
    with pytest.raises(ValueError):
        ConsoleSettings(**settings)


def _wait_until(condition, bound_s: float = 10.0) -> bool:
    deadline = time.monotonic() + bound_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_cancelled_query_is_stopped_and_frees_its_slot(store):
    blocks = SimpleNamespace(_queue=SimpleNamespace(active_jobs=[]))
    ctx = Context(blocks, store, None, ConsoleSettings(time_limit_s=600))
    slots = ClientSlots(2)
    request = SimpleNamespace(session_hash="me")

    async def cancel_while_running():
        task = asyncio.ensure_future(tab.console_async(ctx, slots, HEAVY, 10, 600, request))
        while slots.running("me") == 0:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_running())
    assert _wait_until(lambda: slots.running("me") == 0), "the interrupted query kept its slot"


def test_a_query_whose_tab_closed_is_stopped(store):
    event = SimpleNamespace(session_hash="gone", alive=True)
    blocks = SimpleNamespace(_queue=SimpleNamespace(active_jobs=[[event], None]))
    ctx = Context(blocks, store, None, ConsoleSettings(time_limit_s=600))
    slots = ClientSlots(2)

    async def close_the_tab_later():
        await asyncio.sleep(0.3)
        event.alive = False  # what Gradio does when the session's event stream closes

    async def both():
        closer = asyncio.ensure_future(close_the_tab_later())
        answer = await tab.console_async(ctx, slots, HEAVY, 10, 600, SimpleNamespace(session_hash="gone"))
        await closer
        return answer

    status, _ = asyncio.run(both())
    assert "went away" in status and slots.running("gone") == 0


def test_client_gone_reads_gradios_queue():
    alive = SimpleNamespace(session_hash="a", alive=True)
    dead = SimpleNamespace(session_hash="b", alive=False)
    blocks = SimpleNamespace(_queue=SimpleNamespace(active_jobs=[[alive, dead], None]))
    assert not client_gone(blocks, "a") and client_gone(blocks, "b")
    assert not client_gone(blocks, "c")  # no event of its own: still here
    assert not client_gone(SimpleNamespace(), "b") and not client_gone(blocks, None)
