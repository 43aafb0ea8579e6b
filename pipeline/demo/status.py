"""How far a demo build is: written by `build_demo` beside the store, read by the dashboard.

The file (`<store>.demo-status.json`) holds what the build knows at each event: whether the
first look (pipeline/demo/first_look.py) is running, shown or replaced, families with their
first stage (zero-shot runs and maps) landed, families done, what is running, and when it started. The dashboard turns it into one status line and into the empty
states' "what is coming and when", so a user watching the first minutes always knows what
the background build is doing. The estimate of time left is the build's own pace so far
(work done against seconds spent), or the preset's measured wall time before anything
landed; it is an estimate and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# A family's first stage (pretraining, zero-shot runs, their maps) against the rest (fine-tuning, its
# checkpoints and final runs, their maps): about a third of its build (bench/results/demo_full.json).
FIRST_STAGE_SHARE = 0.35
# All first stages run before any fine-tuning, so the first family is done about two thirds in
# (a schedule of the measured full-preset stage times on two workers).
FIRST_FAMILY_SHARE = 0.65
# The built-in benchmark's build, before any family starts: 42 of 578 s for the full preset.
BENCHMARK_SHARE = 0.07
STALE_S = 30 * 60  # a status untouched this long belongs to a build that died without saying so


def status_path(store: str | os.PathLike) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".demo-status.json")


@dataclass
class DemoStatus:
    """A demo build's progress; `families` in build order, `costs` their relative build times."""

    families: list[str]
    costs: dict[str, float]
    expected_s: float  # the preset's measured wall time on 2 idle cores, before any family landed
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    first_stage: list[str] = field(default_factory=list)  # families whose zero-shot runs and maps landed
    done: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # "<family>: <stage>" per busy worker
    finished: bool = False
    error: str | None = None
    benchmark_s: float | None = None  # how long the benchmark took; None while it builds
    pid: int = field(default_factory=os.getpid)  # the build's process: a killed build is not building
    # the first look (pipeline/demo/first_look.py): "" (none), running, landed, replaced (by the full
    # runs) or failed; first_look_s its expected seconds on 2 cores
    first_look: str = ""
    first_look_s: float = 45.0

    # -- progress -------------------------------------------------------------------
    def fraction(self) -> float:
        """Share of the build's work done (families weighted by their cost)."""
        total = sum(self.costs.get(f, 1.0) for f in self.families) or 1.0
        done = sum(self.costs.get(f, 1.0) * (1.0 if f in self.done else FIRST_STAGE_SHARE if f in self.first_stage
                                               else 0.0) for f in self.families)
        return min(1.0, done / total)

    def work_done(self) -> float:
        """Share of the whole build done: the benchmark, then the families' stages."""
        if self.benchmark_s is None:
            return 0.0
        return BENCHMARK_SHARE + (1.0 - BENCHMARK_SHARE) * self.fraction()

    def pace(self, now: float | None = None) -> float:
        """This build's seconds per second of the preset's measured timing (2 when twice as slow)."""
        elapsed = max(0.0, (now or time.time()) - self.started_at)
        work = self.work_done()
        if work > 0.0:
            return elapsed / (work * self.expected_s)
        return max(1.0, elapsed / (BENCHMARK_SHARE * self.expected_s))  # still on the benchmark

    def seconds_left(self, now: float | None = None) -> float:
        """Estimated seconds until every family is done (the pace so far against the preset's timing)."""
        if self.fraction() >= 1.0:
            return 0.0
        elapsed = max(0.0, (now or time.time()) - self.started_at)
        return max(self.pace(now) * self.expected_s - elapsed, 30.0)

    def seconds_to_first_stage(self, now: float | None = None) -> float:
        """Estimated seconds until the first family's zero-shot runs and maps land (0 once they have)."""
        if self.first_stage or self.done or self.first_look == "landed":
            return 0.0
        elapsed = max(0.0, (now or time.time()) - self.started_at)
        if self.first_look == "running":
            return max(self.first_look_s - elapsed, 15.0)
        cheapest = min((self.costs.get(f, 1.0) for f in self.families), default=1.0)
        total = sum(self.costs.get(f, 1.0) for f in self.families) or 1.0
        workers = max(1, len(self.running))
        share = BENCHMARK_SHARE + (1.0 - BENCHMARK_SHARE) * workers * cheapest * FIRST_STAGE_SHARE / total
        return max(self.pace(now) * self.expected_s * share - elapsed, 15.0)

    def seconds_to_first_family(self, now: float | None = None) -> float:
        """Estimated seconds until the first family is fully done (0 once one is)."""
        if self.done:
            return 0.0
        elapsed = max(0.0, (now or time.time()) - self.started_at)
        total = elapsed + self.seconds_left(now)
        return max(FIRST_FAMILY_SHARE * total - elapsed, 15.0)

    @property
    def building(self) -> bool:
        return (not self.finished and self.error is None and time.time() - self.updated_at < STALE_S
                and _alive(self.pid))

    # -- words ----------------------------------------------------------------------
    def line(self, now: float | None = None) -> str:
        """One status line: families done / total, the current stage, the time left."""
        n = len(self.families)
        if self.error:
            return f"Demo build stopped: {self.error} (`vlmembed demo` resumes it)."
        if self.finished:
            return f"Demo built: {len(self.done)}/{n} families."
        stage = "; ".join(self.running) or "starting"
        first = f", {len(self.first_stage)}/{n} with zero-shot results" if len(self.first_stage) > len(self.done) else ""
        if self.first_look == "landed":
            first += " (shown meanwhile: a first look, zero-shot on a sample, replaced when the full runs land)"
        return (f"Demo building in the background: {len(self.done)}/{n} families done{first}. "
                f"Now: {stage}. About {_duration(self.seconds_left(now))} left (estimate).")

    def coming(self, what: str, needs_training: bool = False, now: float | None = None) -> str:
        """What an empty view will show and when: `what` lands with the first stage (or after training)."""
        # fine-tuning comes after every family's first stage, so trained runs land late
        wait = self.seconds_to_first_family(now) if needs_training else self.seconds_to_first_stage(now)
        when = "any moment now" if wait <= 15 else f"in about {_duration(wait)}"
        return f"{what[0].upper()}{what[1:]} will appear here {when}. {self.line(now)}"

    # -- file -----------------------------------------------------------------------
    def write(self, store: str | os.PathLike) -> None:
        """Replace the status file whole (a reader never sees half of it)."""
        self.updated_at = time.time()
        path = status_path(store)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)


def read_status(store: str | os.PathLike) -> DemoStatus | None:
    """The store's demo build status, or None when no build ever wrote one (or the file is unreadable)."""
    path = status_path(store)
    with contextlib.suppress(OSError, ValueError, TypeError):
        return DemoStatus(**json.loads(path.read_text()))
    return None


def building_status(store: str | os.PathLike) -> DemoStatus | None:
    """The status of a demo build in progress on this store, else None."""
    status = read_status(store)
    return status if status is not None and status.building else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's
        return True
    return True


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{max(seconds, 10) // 10 * 10} s"
    return f"{round(seconds / 60)} min"
