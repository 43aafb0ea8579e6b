"""`vlmembed app`: serve the dashboard over the results store (building it from the paper first if absent)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for every one)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--no-demo", action="store_true",
                        help="do not build the demo runs in the background when the store lacks them")
    parser.add_argument("--sql-time-limit", type=float, default=10.0, metavar="S",
                        help="the longest a SQL console query may run (a user may choose less)")
    parser.add_argument("--sql-per-client", type=int, default=2, metavar="N",
                        help="SQL console queries one browser session may have running at once")

log = logging.getLogger(__name__)
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL: every child is gone within this plus a moment


def _prepare_store(path: Path) -> str | None:
    """Create a missing store from the paper's numbers and check that it reads; the store's problem as
    one line (the same one the dashboard shows) or None. The app serves either way."""
    from pipeline.stats.landing import import_paper_with_intervals
    from storage import StoreError, StoreReader, StoreWriter

    try:
        if not path.exists():
            # The CLI may write; the app never does. A first run gets the paper's numbers to look at.
            with StoreWriter(path) as writer:
                n = import_paper_with_intervals(writer)
            print(f"no store at {path} yet: created it with the paper's numbers ({n} runs)")
        StoreReader(path).close()
    except StoreError as exc:
        return str(exc)
    return None


def _console_settings(args: argparse.Namespace):
    from app.fairness import ConsoleSettings

    try:
        return ConsoleSettings(time_limit_s=args.sql_time_limit, per_client=args.sql_per_client)
    except ValueError as exc:
        raise UserError(f"{exc} (--sql-time-limit, --sql-per-client)") from exc


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    console = _console_settings(args)
    path = store_path(args)
    problem = _prepare_store(path)
    if problem:
        print(f"vlmembed app: {problem} (serving anyway: the dashboard shows this until the store is fixed)",
              file=sys.stderr)
    demo = None if args.no_demo or problem else _start_demo(path)
    from app import launch

    try:
        with _exit_on_termination():
            launch(path, host=args.host, port=args.port, console=console)
    except OSError as exc:
        raise UserError(f"cannot serve on {args.host}:{args.port} ({exc}); pick another with --port") from exc
    finally:
        if demo is not None:
            demo.stop()  # stored runs stay; the next `vlmembed app` resumes the rest
    return 0


@contextlib.contextmanager
def _exit_on_termination():
    """SIGTERM / SIGHUP (a closed terminal, `kill`, a container stop) unwind like Ctrl+C, so the
    background demo is stopped rather than left running and holding the store's write lock."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class DemoProcess:
    """The background `vlmembed demo`: in a process group of its own, so that stopping it reaches its
    workers too, and waited for by a thread, so that it never lingers as a zombie once it ends."""

    def __init__(self, command: list[str], log_path: Path):
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.process.pid
        self.group = _own_group(self.pid)
        self.ended = threading.Event()
        threading.Thread(target=self._reap, daemon=True, name="demo-reaper").start()

    def _reap(self) -> None:
        code = self.process.wait()
        self.ended.set()
        log.info("background demo (pid %d) ended with exit code %s", self.pid, code)

    def _signal_group(self, sig: int) -> None:
        if self.group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing of the group is left
                os.killpg(self.group, sig)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the demo and its group (SIGCONT too, so a stopped process can act on it), then
        SIGKILL to whatever is left after `grace_s`, then wait for the demo itself."""
        if not self.ended.is_set():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        self._signal_group(signal.SIGTERM)
        self._signal_group(signal.SIGCONT)
        self.ended.wait(grace_s)
        self._signal_group(signal.SIGKILL)  # workers that outlived the demo, or a demo that ignores SIGTERM
        if not self.ended.wait(grace_s):
            self.process.kill()
            self.ended.wait()
        self._wait_group_empty(1.0)

    def _wait_group_empty(self, timeout_s: float) -> None:
        """SIGKILL is delivered asynchronously: give the group's last processes a moment to go (a worker
        left as a zombie under a non-reaping init still counts as a member, hence the bound)."""
        deadline = time.monotonic() + timeout_s
        while self.group is not None and time.monotonic() < deadline:
            try:
                os.killpg(self.group, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def _own_group(pid: int) -> int | None:
    """The process group `pid` leads (it was started in a session of its own), else None: never signal
    a group that is not the demo's."""
    try:
        return pid if os.getpgid(pid) == pid else None
    except OSError:
        return None


def _demo_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "demo", "--store", str(path), "--no-progress"]


def _start_demo(path: Path) -> DemoProcess:
    """Run `vlmembed demo` in a separate process: it builds whatever demo runs the store lacks
    (none if it is complete) and the dashboard shows them as they land."""
    from storage.paths import vlmembed_home

    log_path = vlmembed_home() / "demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    demo = DemoProcess(_demo_command(path), log_path)
    print(f"building any missing demo runs in the background (pid {demo.pid}, log {log_path}); "
          "they appear in the dashboard as they land")
    return demo


COMMAND = Command("app", "serve the dashboard (http://127.0.0.1:7860 by default)", _add, _run,
                  description="Serve the Gradio dashboard over the results store. If the store does not exist "
                  "yet it is created with the paper's published numbers first, and unless --no-demo is given, "
                  "the demo runs (`vlmembed demo`) are built in a background process. The dashboard only "
                  "reads; runs published while it is open appear within seconds.")
