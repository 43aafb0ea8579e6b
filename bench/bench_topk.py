"""Top-10 over 100k stored 256-d candidates, without the encoder: the live search's
in-memory ranking against DuckDB's own `array_cosine_similarity ... ORDER BY ... LIMIT`.

    python bench/bench_topk.py [--candidates 100000] [--dim 256] [--queries 200]

A store is written through StoreWriter (one dataset whose rows hold 100k candidate
items, one run with their embeddings). Both sides rank the same run's candidates for the
same random query vectors, and their top-10 item ids are asserted equal for every query.
The in-memory side is `SearchEngine.index(run, None).search` (a cached unit float32
matrix; one mat-vec and an argpartition); the SQL side is `StoreReader.nearest_sql`.
Building the in-memory matrix (once per store version) is reported separately.
Target: in-memory p50 <= 20 ms. Results go to bench/results/topk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "topk.json"
TARGET_P50_MS = 20.0
K = 10
ROW_CANDIDATES = 100  # candidates per eval row; rows = candidates / this


def build_store(path: Path, n: int, dim: int, seed: int = 0) -> str:
    from storage import DatasetRecord, DatasetRow, ItemRecord, ModelRecord, RunRecord, StoreWriter

    rng = np.random.default_rng(seed)
    items = [f"c{i:06d}" for i in range(n)]
    queries = [f"q{i:05d}" for i in range(n // ROW_CANDIDATES)]
    with StoreWriter(path, fresh=True) as writer:
        writer.upsert_models([ModelRecord("bench-model", "bench model", "autoregressive", "tiny")])
        writer.upsert_datasets([DatasetRecord("bench", "builtin", "retrieval", True, "text", "text")])
        writer.add_items([ItemRecord(i, "text", text=i) for i in items + queries])
        writer.set_dataset_rows("bench", [DatasetRow("bench", r, q, tuple(items[r * ROW_CANDIDATES:(r + 1) * ROW_CANDIDATES]))
                                          for r, q in enumerate(queries)])
    with StoreWriter(path) as writer:  # a reopened store, as the runner adds runs
        vecs = rng.normal(size=(n, dim)).astype(np.float32)
        writer.add_run(RunRecord(run_id="bench:run", source="pipeline", model="bench-model", label="bench",
                                 embedding_items=items, embeddings=vecs))
    return "bench:run"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sql-queries", type=int, default=30, help="DuckDB is slower; fewer of its queries")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from pipeline.search import SearchEngine
    from storage import StoreReader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.duckdb"
        start = time.perf_counter()
        run = build_store(path, args.candidates, args.dim)
        write_s = time.perf_counter() - start
        reader = StoreReader(path)
        engine = SearchEngine(reader)
        start = time.perf_counter()
        index = engine.index(run, None)
        build_s = time.perf_counter() - start
        assert len(index.item_ids) == args.candidates and index.dim == args.dim
        rng = np.random.default_rng(1)
        qs = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        memory_ms, sql_ms = [], []
        for q in qs:
            start = time.perf_counter()
            engine.index(run, None).search(q, K)  # through the engine's cache, as a request does
            memory_ms.append((time.perf_counter() - start) * 1000)
        for q in qs[:args.sql_queries]:
            start = time.perf_counter()
            sql = reader.nearest_sql(run, q, K)
            sql_ms.append((time.perf_counter() - start) * 1000)
            mine = [item for item, _ in index.search(q, K)]
            assert sql["item_id"].tolist() == mine, "DuckDB and the in-memory index disagree on the top-k"
            assert np.allclose(sql["score"].to_numpy(), [s for _, s in index.search(q, K)], atol=1e-4)
    out = {
        "what": f"top-{K} over {args.candidates} stored {args.dim}-d candidates, no encoder",
        "target_p50_ms": TARGET_P50_MS,
        "in_memory": {"p50_ms": round(percentile(memory_ms, 50), 3), "p95_ms": round(percentile(memory_ms, 95), 3),
                      "mean_ms": round(statistics.mean(memory_ms), 3), "queries": len(memory_ms),
                      "index_build_s": round(build_s, 3)},
        "duckdb_array_cosine_similarity": {"p50_ms": round(percentile(sql_ms, 50), 1),
                                           "p95_ms": round(percentile(sql_ms, 95), 1), "queries": len(sql_ms)},
        "same_top_k_asserted_for_queries": len(sql_ms),
        "meets_target": percentile(memory_ms, 50) <= TARGET_P50_MS,
        "store_write_s": round(write_s, 1),
        "cpu_count": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out["speedup_p50"] = round(out["duckdb_array_cosine_similarity"]["p50_ms"] / max(out["in_memory"]["p50_ms"], 1e-6), 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
