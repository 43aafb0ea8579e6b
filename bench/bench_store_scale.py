"""A synthetic store of a fraction of the paper's grid at real dimensions, written as the runner writes.

    python bench/bench_store_scale.py [--fraction 0.1] [--dim 4096] [--rows-per-run 21000] [--dir /tmp]
        [--sql-rows 64000] [--big-rows 250000] [--out bench/results/store_scale_0.1.json]
    python bench/bench_store_scale.py --big-only --big-rows 1000000 --out bench/results/store_big_insert.json

The paper's grid is 61 runs (4 classification, 5 VQA and 5 retrieval stages per model, plus the
MMaDA ablation) of about 20k embedded items each at 3584-4096 dimensions. This builds
round(61 x fraction) such runs, one `StoreWriter` (open, add_run, publish) per run as
`vlmembed run` does, and reports, side by side in one process:

* publish time of each run against the store's size before it (flat is the goal: the largest
  publish under 2x the smallest);
* peak disk use of the store's directory while publishing (sampled), beside the run's own bytes;
* the writer's peak RSS (this process; sampled);
* app start: the dashboard's snapshot plus the search engine's store view (the start-up reads);
* search: a warm top-10 over min(8, runs) runs' full candidate pools, and RSS after;
* with --sql-rows: SQL similarity at N x dim, side by side in one process: the pre-issue-18 query
  (a `FLOAT[]` list column cast to `FLOAT[dim]` per row, `array_cosine_similarity`, the query vector
  cast once in a scalar subquery: its best form) against `embedding_cosine` over the float16 file,
  and top-10 recall of float16 against float32 (exact, numpy) for 20 stored queries;
* with --big-rows: the writer's peak RSS (and anonymous RSS, what the process itself allocates) while
  landing one run of that many rows, read from a float32 memory map as a runner would stream it
  (--big-only: that alone, without the grid's store).

Run it against another checkout to compare (e.g. `PYTHONPATH=/tmp/old python bench/bench_store_scale.py`):
it uses only StoreWriter, StoreReader, app.store and pipeline.search. The store is deleted at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID_RUNS = 61  # 14 stages x 4 models + the MMaDA ablation's
N_DATASETS = 12
CANDIDATES_PER_ROW = 100


class Sampler:
    """Peak RSS of this process and peak bytes under a directory, sampled every 50 ms."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.peak_rss = 0
        self.peak_anon = 0
        self.peak_disk = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, me.memory_info().rss)
            self.peak_anon = max(self.peak_anon, anon_rss())
            self.peak_disk = max(self.peak_disk, dir_bytes(self.directory))
            time.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def anon_rss() -> int:
    """RssAnon: memory the process allocated itself (not file pages it maps, which the kernel may drop)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def dir_bytes(directory: Path) -> int:
    total = 0
    for p in directory.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_blocks * 512  # allocated, not apparent: what the disk holds
        except FileNotFoundError:
            pass  # swapped or removed while we walked
    return total


def seed(path: Path, rows_per_run: int) -> list[str]:
    """Models, datasets, items (with ~1 KB thumbnails) and eval rows, published once."""
    from storage import DatasetRecord, DatasetRow, ItemRecord, ModelRecord, StoreWriter

    rng = np.random.default_rng(0)
    ids = [f"item{i:07d}" for i in range(rows_per_run)]
    per_dataset = rows_per_run // N_DATASETS
    with StoreWriter(path) as w:
        w.upsert_models([ModelRecord("Synthetic-8B", "synthetic", "autoregressive", "published")])
        w.upsert_datasets([DatasetRecord(f"ds{d}", "MMEB", "retrieval", d < 8) for d in range(N_DATASETS)])
        w.add_items([ItemRecord(i, "image+text", text=f"caption {i}", thumbnail=rng.bytes(1024)) for i in ids])
        for d in range(N_DATASETS):
            block = ids[d * per_dataset:(d + 1) * per_dataset]
            half = len(block) // 2
            rows = [DatasetRow(f"ds{d}", r, block[r], tuple([block[half + r]] +
                               [block[half + (r + j) % half] for j in range(1, min(CANDIDATES_PER_ROW, half))]))
                    for r in range(half)]
            w.set_dataset_rows(f"ds{d}", rows)
    return ids


def make_run(n: int, ids: list[str], dim: int):
    from storage import RunRecord, ScoreRecord

    rng = np.random.default_rng(n + 1)
    vecs = rng.standard_normal((len(ids), dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return RunRecord(run_id=f"run{n:02d}", source="pipeline", model="Synthetic-8B", label=f"stage {n}",
                     stage="final" if n % 5 == 4 else "checkpoint", train_task="retrieval", train_samples=1000 * n,
                     scores=[ScoreRecord(f"ds{d}", "precision@1", 50.0, 100) for d in range(N_DATASETS)],
                     embedding_items=ids, embeddings=vecs)


def publish_all(path: Path, ids: list[str], n_runs: int, dim: int) -> list[dict]:
    """One writer per run, as `vlmembed run` does: open (copies the catalogue), add_run, publish."""
    from storage import StoreWriter

    rows = []
    for n in range(n_runs):
        run = make_run(n, ids, dim)
        before = dir_bytes(path.parent)
        with Sampler(path.parent) as sampler:
            start, cpu = time.perf_counter(), time.process_time()
            w = StoreWriter(path)
            opened = time.perf_counter()
            w.add_run(run)
            added = time.perf_counter()
            w.publish()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows.append({"run": n, "store_gb_before": before / 1e9, "publish_s": seconds, "cpu_s": cpu,
                     "load_1min": os.getloadavg()[0],
                     "open_s": opened - start, "add_run_s": added - opened, "swap_s": start + seconds - added,
                     "run_mb": run.embeddings.nbytes / 1e6,
                     "disk_extra_mb": (sampler.peak_disk - before) / 1e6, "rss_peak_mb": sampler.peak_rss / 1e6})
        print(f"run {n:2d}: store {before / 1e9:6.2f} GB  write+publish {seconds:6.2f} s "
              f"(open {opened - start:.2f}, add_run {added - opened:.2f}, swap {start + seconds - added:.2f}; "
              f"CPU {cpu:.2f} s, load {os.getloadavg()[0]:.1f})  "
              f"extra disk peak {(sampler.peak_disk - before) / 1e6:7.0f} MB (run {run.embeddings.nbytes / 1e6:.0f} MB"
              f" float32)  RSS peak {sampler.peak_rss / 1e6:6.0f} MB", flush=True)
        del run
    return rows


def sql_similarity(root: Path, n: int, dim: int, trials: int = 3) -> dict:
    """Today's list-cast query against `embedding_cosine`, on the same n x dim vectors; recall of float16."""
    import duckdb
    import pyarrow as pa

    from storage import DatasetRecord, ItemRecord, ModelRecord, RunRecord, StoreReader, StoreWriter

    rng = np.random.default_rng(3)
    # clustered like real embeddings (a query's neighbours are close), not uniform noise
    centres = rng.standard_normal((n // 50, dim), dtype=np.float32)
    vecs = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [f"x{i:07d}" for i in range(n)]
    base = duckdb.connect(str(root / "list_cast.duckdb"), config={"memory_limit": "2GB"})
    base.execute("CREATE TABLE embeddings (run_id VARCHAR, item_id VARCHAR, dim INTEGER, vec FLOAT[])")
    for s in range(0, n, 8000):
        block = vecs[s:s + 8000]
        base.register("t", pa.table({"run_id": ["r"] * len(block), "item_id": ids[s:s + len(block)],
                                     "dim": pa.array([dim] * len(block), pa.int32()),
                                     "vec": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), dim)
                                     .cast(pa.list_(pa.float32()))}))
        base.execute("INSERT INTO embeddings SELECT * FROM t")
        base.unregister("t")
    base.close()
    base = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
    base.execute(f"ATTACH '{root / 'list_cast.duckdb'}' AS s (READ_ONLY)")
    base.execute("USE s")
    store = root / "sql.duckdb"
    with StoreWriter(store) as w:
        w.upsert_models([ModelRecord("Synthetic-8B", "synthetic", "autoregressive", "published")])
        w.upsert_datasets([DatasetRecord("ds", "MMEB", "retrieval", True)])
        w.add_items([ItemRecord(i, "text", text=i) for i in ids])
        w.add_run(RunRecord(run_id="r", source="pipeline", model="Synthetic-8B", label="final",
                            embedding_items=ids, embeddings=vecs))
    reader = StoreReader(store)
    listed, ours = [], []
    for t in range(trials):
        q = ids[t * 7]
        start = time.perf_counter()
        a = base.execute(f"""SELECT item_id, array_cosine_similarity(vec::FLOAT[{dim}],
            (SELECT vec::FLOAT[{dim}] FROM embeddings WHERE item_id = ?)) AS s
            FROM embeddings WHERE run_id = 'r' ORDER BY s DESC LIMIT 10""", [q]).fetchall()
        listed.append(time.perf_counter() - start)
        start = time.perf_counter()
        b = reader.nearest_to_item_sql("r", q, 10)
        ours.append(time.perf_counter() - start)
        assert [r[0] for r in a][:1] == b["item_id"].tolist()[:1] == [q]
    _, half = reader.embedding_matrix("r")
    recalls = []
    for i in rng.choice(n, 20, replace=False):
        exact = set(np.argpartition(-(vecs @ vecs[i]), 10)[:10])
        approx = set(np.argpartition(-(np.asarray(half, np.float32) @ np.asarray(half[i], np.float32)), 10)[:10])
        recalls.append(len(exact & approx) / 10)
    file_mb = sum(p.stat().st_size for p in (root / "sql.duckdb.vectors").iterdir()) / 1e6
    out = {"rows": n, "dim": dim, "list_cast_s_median": statistics.median(listed),
           "embedding_cosine_s_median": statistics.median(ours),
           "speedup": statistics.median(listed) / statistics.median(ours),
           "list_cast_store_mb": (root / "list_cast.duckdb").stat().st_size / 1e6, "float16_file_mb": file_mb,
           "float32_mb": vecs.nbytes / 1e6, "recall_at_10_float16_vs_float32": min(recalls)}
    print(json.dumps(out, indent=2), flush=True)
    return out


def big_insert(root: Path, n: int, dim: int) -> dict:
    """One run of n rows landed through the writer, the matrix streamed from a float32 memory map
    (how a run too big for memory hands it over: 16 GB of float32 at 1M x 4096). RSS is the whole
    process's, the mapped source's file pages included, sampled every 50 ms."""
    from storage import ItemRecord, ModelRecord, RunRecord, StoreWriter
    from storage.vectors import vectors_dir

    source = root / "big.f32"
    rng = np.random.default_rng(5)
    with open(source, "wb") as f:  # plain writes: generating the source keeps none of it resident
        for s in range(0, n, 8192):
            block = rng.standard_normal((min(8192, n - s), dim), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            f.write(memoryview(block).cast("B"))
            if s // 8192 % 16 == 0:
                print(f"big insert: source {s + len(block)}/{n} rows", flush=True)
    matrix = np.memmap(source, dtype=np.float32, mode="r", shape=(n, dim))
    ids = [f"b{i:08d}" for i in range(n)]
    path = root / "big.duckdb"
    with StoreWriter(path) as w:
        w.upsert_models([ModelRecord("Synthetic-8B", "synthetic", "autoregressive", "published")])
        w.add_items([ItemRecord(i, "text", text=i) for i in ids])
    base_rss, base_anon = psutil.Process().memory_info().rss, anon_rss()
    print(f"big insert: landing {n} x {dim} (RSS before {base_rss / 1e9:.2f} GB)", flush=True)
    with Sampler(root) as sampler:
        start = time.perf_counter()
        with StoreWriter(path) as w:
            w.add_run(RunRecord(run_id="big", source="pipeline", model="Synthetic-8B", label="final",
                                embedding_items=ids, embeddings=matrix))
        seconds = time.perf_counter() - start
    folder = vectors_dir(path)
    out = {"rows": n, "dim": dim, "seconds": seconds, "rss_peak_mb": sampler.peak_rss / 1e6,
           "rss_before_mb": base_rss / 1e6, "anon_rss_peak_mb": sampler.peak_anon / 1e6,
           "anon_rss_before_mb": base_anon / 1e6, "rss_target_mb": 4000,
           "source_float32_gb": source.stat().st_size / 1e9,
           "float16_file_gb": sum(p.stat().st_size for p in folder.iterdir()) / 1e9,
           "catalogue_mb": path.stat().st_size / 1e6,
           "disk_peak_gb_without_source": (sampler.peak_disk - source.stat().st_blocks * 512) / 1e9,
           "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out, indent=2), flush=True)
    del matrix
    source.unlink()
    return out


def app_start(path: Path) -> tuple[float, float]:
    """Seconds to the dashboard's first snapshot, and to the search engine's store view."""
    from app.store import StoreCache
    from pipeline.search.engine import SearchEngine
    from storage import StoreReader

    start = time.perf_counter()
    StoreCache(path).snapshot()
    snapshot = time.perf_counter() - start
    start = time.perf_counter()
    SearchEngine(StoreReader(path)).view()
    return snapshot, time.perf_counter() - start


def search(path: Path, n_runs: int, dim: int, trials: int = 5) -> dict:
    """Warm top-10 over each ticked run's whole candidate pool (the encoders are left out: they
    are measured by bench_encoders), and this process's RSS after."""
    from pipeline.search.engine import SearchEngine
    from storage import StoreReader

    engine = SearchEngine(StoreReader(path))
    runs = [r.run_id for r in engine.runs()][:8]
    q = np.random.default_rng(9).standard_normal(dim).astype(np.float32)
    q /= np.linalg.norm(q)
    start = time.perf_counter()
    for r in runs:
        engine.index(r, None).search(q, 10)
    cold = time.perf_counter() - start
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        for r in runs:
            engine.index(r, None).search(q, 10)
        times.append(time.perf_counter() - start)
    return {"runs_ticked": len(runs), "cold_s": cold, "warm_s_median": statistics.median(times),
            "rss_mb_after": psutil.Process().memory_info().rss / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--rows-per-run", type=int, default=21_000, help="~1.3M rows / 61 runs")
    parser.add_argument("--sql-rows", type=int, default=0, help="also time SQL similarity at this many rows")
    parser.add_argument("--big-rows", type=int, default=0, help="also land one run of this many rows (RSS)")
    parser.add_argument("--skip-search", action="store_true", help="skip the search timing (issue 18 part 3's)")
    parser.add_argument("--big-only", action="store_true", help="only the --big-rows insert (no grid store)")
    parser.add_argument("--dir", default=None, help="where to build the store (default: a temp dir)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    n_runs = max(1, round(GRID_RUNS * args.fraction))
    root = Path(tempfile.mkdtemp(prefix="store-scale-", dir=args.dir))
    path = root / "store.duckdb"
    if not args.big_only:
        print(f"{n_runs} runs x {args.rows_per_run} rows x {args.dim}-d "
              f"({n_runs * args.rows_per_run * args.dim * 4 / 1e9:.1f} GB of float32) in {root}")
    import torch  # noqa: F401 - loaded in the runner that writes; its cold import is not a publish's cost

    if args.big_only:
        try:
            result = {"big_insert": big_insert(root, args.big_rows or 1_000_000, args.dim),
                      "machine": {"cpus": os.cpu_count(), "memory_gb": psutil.virtual_memory().total / 2**30},
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if args.out:
                Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        return
    try:
        ids = seed(path, args.rows_per_run)
        rows = publish_all(path, ids, n_runs, args.dim)
        found: dict = {}
        snapshot_s, view_s = app_start(path)
        if not args.skip_search:
            try:
                found = search(path, n_runs, args.dim)
            except Exception as exc:  # the search side's API is another module's; report, do not lose the rest
                found = {"search_error": f"{type(exc).__name__}: {exc}"}
        times = [r["publish_s"] for r in rows]
        cpus = [r["cpu_s"] for r in rows]
        summary = {"runs": n_runs, "rows_per_run": args.rows_per_run, "dim": args.dim,
                   "store_gb": dir_bytes(root) / 1e9, "publish_s_min": min(times), "publish_s_max": max(times),
                   "publish_max_over_min": max(times) / min(times),
                   "publish_cpu_s_min": min(cpus), "publish_cpu_s_max": max(cpus),
                   "publish_cpu_max_over_min": max(cpus) / min(cpus),
                   "disk_extra_over_run_max": max(r["disk_extra_mb"] / r["run_mb"] for r in rows),
                   "writer_rss_peak_mb": max(r["rss_peak_mb"] for r in rows),
                   "store_catalogue_mb": path.stat().st_size / 1e6,
                   "app_snapshot_s": snapshot_s, "search_view_s": view_s, **found}
        print(json.dumps(summary, indent=2), flush=True)
        result = {"summary": summary, "publishes": rows}
        if args.sql_rows:
            result["sql_similarity"] = sql_similarity(root, args.sql_rows, args.dim)
        if args.big_rows:
            result["big_insert"] = big_insert(root, args.big_rows, args.dim)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
