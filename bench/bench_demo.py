"""Wall time of `vlmembed demo` from nothing: benchmark build, pretraining, fine-tuning, evaluation.

Runs the real build into a temporary VLMEMBED_HOME (so no cached benchmark or pretrained
miniature is reused) and prints each stage's seconds next to the issue's targets:
`--small` <= 300 s and the full demo <= 900 s on 2 cores. Also prints the final runs'
meta-task averages next to chance (the mean of 1 / #candidates over each meta-task's datasets).

"Seconds to every tab filled" (`--first-minute`): the background build `vlmembed app` starts,
from an empty VLMEMBED_HOME, with the store polled every second until each tab's default view
has content from this machine's runs (defined in bench/tab_content.py); the build is stopped
then. The issue's target is 60 s after the dashboard answers, which bench_app.py --fresh-start
measures with the app itself; this is the demo's share.

    python bench/bench_demo.py --preset small
    python bench/bench_demo.py --preset full
    python bench/bench_demo.py --first-minute [--preset full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS_S = {"small": 300, "full": 900}
FIRST_MINUTE_TARGET_S = 60


def seconds_to_every_tab_filled(preset: str, timeout_s: float = 900, poll_s: float = 1.0) -> dict:
    """Start the demo build as `vlmembed app` does (a background process on an empty home) and time
    when each tab first has content; the build is stopped once every tab has."""
    from bench.tab_content import TABS, filled_tabs, first_look_stage
    from pipeline.cli.app import DemoProcess

    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as home:
        env_home = os.environ.get("VLMEMBED_HOME")
        os.environ["VLMEMBED_HOME"] = home  # the demo process inherits it
        store = Path(home) / "store.duckdb"
        command = [sys.executable, "-m", "pipeline.cli", "demo", "--store", str(store), "--no-progress"]
        tick = time.perf_counter()
        demo = DemoProcess(command + (["--small"] if preset == "small" else []), Path(home) / "demo.log")
        filled: dict[str, float] = {}
        stages: dict[str, float] = {}
        try:
            while len(filled) < len(TABS) and time.perf_counter() - tick < timeout_s and not demo.ended.is_set():
                now = filled_tabs(store)
                seconds = time.perf_counter() - tick
                filled.update({tab: round(seconds, 1) for tab, ok in now.items() if ok and tab not in filled})
                stages.update({k: round(seconds, 1) for k in first_look_stage(store) if k not in stages})
                time.sleep(poll_s)
        finally:
            demo.stop()
            if env_home is None:
                os.environ.pop("VLMEMBED_HOME", None)
            else:
                os.environ["VLMEMBED_HOME"] = env_home
    every = max(filled.values()) if len(filled) == len(TABS) else None
    return {"preset": preset, "seconds_per_tab": filled, "every_tab_filled_s": every,
            "missing": [t for t in TABS if t not in filled], "first_look_s": stages,
            "load_avg_at_start": load_at_start, "load_avg_at_end": os.getloadavg()}


def first_minute(args: argparse.Namespace) -> None:
    result = seconds_to_every_tab_filled(args.preset, args.timeout)
    every = result["every_tab_filled_s"]
    print(f"demo --{args.preset} started as `vlmembed app` starts it: seconds to every tab filled "
          f"{every if every is not None else 'not reached'} (missing: {', '.join(result['missing']) or 'none'}); "
          f"first look {result['first_look_s'] or 'none'}; load average at the start "
          f"{result['load_avg_at_start'][0]:.1f}, at the end {result['load_avg_at_end'][0]:.1f}")
    for tab, seconds in sorted(result["seconds_per_tab"].items(), key=lambda kv: kv[1]):
        print(f"  {tab:12s} {seconds:7.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"demo_first_minute_{args.preset}.json").write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(TARGETS_S), default="small")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--first-minute", action="store_true",
                        help="time each tab's first content during the build instead of the whole build")
    parser.add_argument("--timeout", type=float, default=900, help="--first-minute gives up after this many seconds")
    args = parser.parse_args()
    if args.first_minute:
        first_minute(args)
        return

    with tempfile.TemporaryDirectory() as home:
        os.environ["VLMEMBED_HOME"] = home
        from pipeline.demo.build import PRESETS, build_demo, default_workers, final_alignment, final_vs_chance
        from storage import StoreReader

        store = Path(home) / "store.duckdb"
        tick = time.perf_counter()
        workers = args.workers or default_workers(len(PRESETS[args.preset].models))
        report = build_demo(store, PRESETS[args.preset], progress=False, workers=workers)
        total = time.perf_counter() - tick
        reader = StoreReader(store)
        table = final_vs_chance(reader)
        alignment = final_alignment(reader)
        reader.close()

    target = TARGETS_S[args.preset]
    print(f"demo --{args.preset}: {total:.0f} s for {len(report.runs)} runs with {workers} workers; target {target} s "
          f"(ratio {total / target:.2f})")
    for stage, seconds in report.seconds.items():
        print(f"  {stage:28s} {seconds:7.1f} s")
    print(table.to_string(index=False))
    print(alignment.to_string(index=False))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "preset": args.preset, "total_s": round(total, 1), "target_s": target, "runs": len(report.runs),
        "workers": workers,
        "stages_s (per worker; the families overlap)": {k: round(v, 1) for k, v in report.seconds.items()},
        "final_vs_chance": table.to_dict(orient="records"),
        "final_alignment": alignment.to_dict(orient="records"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__},
    }
    (args.out / f"demo_{args.preset}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
