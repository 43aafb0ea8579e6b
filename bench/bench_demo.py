"""Wall time of `vlmembed demo` from nothing: benchmark build, pretraining, fine-tuning, evaluation.

Runs the real build into a temporary VLMEMBED_HOME (so no cached benchmark or pretrained
miniature is reused) and prints each stage's seconds next to the issue's targets:
`--small` <= 300 s and the full demo <= 900 s on 2 cores. Also prints the final runs'
meta-task averages next to chance (the mean of 1 / #candidates over each meta-task's datasets).

    python bench/bench_demo.py --preset small
    python bench/bench_demo.py --preset full
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



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(TARGETS_S), default="small")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

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
