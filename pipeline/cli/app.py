"""`vlmembed app`: serve the dashboard over the results store (building it from the paper first if absent)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for every one)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--no-demo", action="store_true",
                        help="do not build the demo runs in the background when the store lacks them")


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    path = store_path(args)
    if not path.exists():
        # The CLI may write; the app never does. A first run gets the paper's numbers to look at.
        from pipeline.stats.landing import import_paper_with_intervals
        from storage import StoreWriter

        with StoreWriter(path) as writer:
            n = import_paper_with_intervals(writer)
        print(f"no store at {path} yet: created it with the paper's numbers ({n} runs)")

    demo = None if args.no_demo else _start_demo(path)
    from app import launch

    try:
        with _exit_on_termination():
            launch(path, host=args.host, port=args.port)
    except OSError as exc:
        raise UserError(f"cannot serve on {args.host}:{args.port} ({exc}); pick another with --port") from exc
    finally:
        if demo is not None and demo.poll() is None:
            demo.terminate()  # stored runs stay; the next `vlmembed app` resumes the rest
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


def _start_demo(path: Path) -> subprocess.Popen:
    """Run `vlmembed demo` in a separate process: it builds whatever demo runs the store lacks
    (none if it is complete) and the dashboard shows them as they land."""
    from storage.paths import vlmembed_home

    log_path = vlmembed_home() / "demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pipeline.cli", "demo", "--store", str(path), "--no-progress"]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    print(f"building any missing demo runs in the background (pid {process.pid}, log {log_path}); "
          "they appear in the dashboard as they land")
    return process


COMMAND = Command("app", "serve the dashboard (http://127.0.0.1:7860 by default)", _add, _run,
                  description="Serve the Gradio dashboard over the results store. If the store does not exist "
                  "yet it is created with the paper's published numbers first, and unless --no-demo is given, "
                  "the demo runs (`vlmembed demo`) are built in a background process. The dashboard only "
                  "reads; runs published while it is open appear within seconds.")
