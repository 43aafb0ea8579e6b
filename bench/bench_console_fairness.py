"""Does a light SQL query still answer while others run heavy ones?

    python bench/bench_console_fairness.py [--heavy 4] [--trials 5]

Serves the dashboard in-process over the paper's numbers and measures, through
gradio_client, the round trip of a light console query (`SELECT count(*) FROM runs`) from
its own client: first on an idle server, then while `--heavy` other clients (one browser
session each) each run a query that only its time limit stops. The result is the light
query's median latency in both cases and their ratio; the target is under 1 s while busy.
Results go to bench/results/console_fairness.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.labelled import save_labelled  # noqa: E402 - after the path that finds it

RESULTS = ROOT / "bench" / "results" / "console_fairness.json"
LIGHT = "SELECT count(*) AS n FROM runs"
HEAVY = "SELECT sum(hash(a.range + b.range)) FROM range(1000000000) a, range(1000) b"
HEAVY_LIMIT_S = 10.0
TARGET_S = 1.0


def light_latency(client) -> float:
    start = time.perf_counter()
    status, *_ = client.predict(LIGHT, 10, HEAVY_LIMIT_S, api_name="/sql")
    elapsed = time.perf_counter() - start
    if not status.startswith("1 rows"):
        raise RuntimeError(f"the light query failed: {status}")
    return elapsed


def busy_latencies(url: str, heavy: int, trials: int) -> tuple[list[float], list[str]]:
    """Light-query latencies while `heavy` clients each keep one heavy query running."""
    from gradio_client import Client

    heavy_clients = [Client(url, verbose=False) for _ in range(heavy)]
    light = Client(url, verbose=False)
    samples, outcomes = [], []
    for _ in range(trials):
        jobs = [c.submit(HEAVY, 10, HEAVY_LIMIT_S, api_name="/sql") for c in heavy_clients]
        time.sleep(1.5)  # let every heavy query start
        samples.append(light_latency(light))
        outcomes += [str(j.result()[0])[:60] for j in jobs]
    return samples, outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heavy", type=int, default=4)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--label", default="current", help="key of this measurement in the results file")
    args = parser.parse_args()

    from gradio_client import Client

    from app import launch
    from storage import StoreWriter
    from storage.paper_import import import_paper
    from tests.app.helpers import free_port

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VLMEMBED_HOME"] = tmp
        path = Path(tmp) / "store.duckdb"
        with StoreWriter(path) as writer:
            import_paper(writer)
        blocks, url = launch(path, port=free_port(), block=False)
        try:
            idle_client = Client(url, verbose=False)
            idle = [light_latency(idle_client) for _ in range(args.trials + 1)][1:]
            busy, outcomes = busy_latencies(url, args.heavy, args.trials)
        finally:
            blocks.close()
    result = {"light_query": LIGHT, "heavy_query": HEAVY, "heavy_clients": args.heavy,
              "idle_p50_s": round(statistics.median(idle), 3), "busy_p50_s": round(statistics.median(busy), 3),
              "busy_max_s": round(max(busy), 3), "ratio_busy_over_idle": round(statistics.median(busy)
                                                                                / statistics.median(idle), 1),
              "meets_target_1s": max(busy) < TARGET_S, "heavy_outcomes": sorted(set(outcomes)),
              "threads_alive_after": threading.active_count(), "cpu_count": os.cpu_count(),
              "machine": platform.machine(), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    save_labelled(RESULTS, args.label, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
