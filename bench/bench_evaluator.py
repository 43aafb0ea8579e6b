"""Forward passes and wall time of the Evaluator (each unique item encoded once) against
encoding every row's query and candidates row by row, on the built-in small benchmark.

Both paths run in one process on the same encoder and the same rows, side by side; the
encoder's forward calls are counted (batches and examples) with a forward pre-hook. Both
must give the same Precision@1 per dataset, or the comparison is void.

    python bench/bench_evaluator.py                       # tiny llava_next and lavida on the CPU
    python bench/bench_evaluator.py --families mmada --rows 100 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.data.mmeb import MMEBReader  # noqa: E402
from pipeline.data.records import EvalRow, unique_items  # noqa: E402
from pipeline.eval.evaluator import EvalTask, Evaluator  # noqa: E402
from pipeline.models.registry import get_family  # noqa: E402

# One dataset per meta-task and split kind, from few shared candidates (digits) to many (emoji labels).
DEFAULT_DATASETS = ("HandwrittenDigits", "EmojiSubgroup", "ShapesVQA", "ChartVQA", "SceneI2T", "EmojiT2I")


@dataclass
class ForwardCounter:
    """Counts the encoder's forward calls (batches) and the examples they carry."""

    batches: int = 0
    examples: int = 0

    def __call__(self, module, args) -> None:
        self.batches += 1
        self.examples += int(args[0]["attention_mask"].shape[0])

    def reset(self) -> None:
        self.batches = self.examples = 0


def benchmark_root(explicit: Path | None) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The built-in small benchmark: --data, else $VLMEMBED_HOME/bench/small-seed0 if built, else a temp build."""
    from pipeline.data.builtin import BuildConfig, build_benchmark
    from storage.paths import builtin_bench_dir

    if explicit is not None:
        return explicit, None
    home = builtin_bench_dir("small", 0)
    if (home / "manifest.json").is_file():
        return home, None
    tmp = tempfile.TemporaryDirectory(prefix="vlmembed-bench-")
    build_benchmark(BuildConfig(out=Path(tmp.name) / "small", size="small", seed=0, progress=False))
    return Path(tmp.name) / "small", tmp


def load_rows(root: Path, datasets: tuple[str, ...], rows: int) -> dict[str, list[EvalRow]]:
    """Eval rows of the datasets; of the defaults, those this machine's benchmark has (the emoji
    ones need an emoji font, so a build without one lacks them); a dataset asked for by name must exist."""
    reader = MMEBReader(root)
    known = {d.name for d in reader.datasets()}
    missing = [d for d in datasets if d not in known]
    if missing and tuple(datasets) == DEFAULT_DATASETS and len(missing) < len(datasets):
        print(f"skipping default datasets this benchmark build lacks: {missing}")
        datasets = tuple(d for d in datasets if d in known)
    elif missing:
        raise SystemExit(f"not in {root}: {missing}; choose from {sorted(known)}")
    return {name: reader.eval(name, limit=rows, seed=0) for name in datasets}


def precision_at_1(scores: list[np.ndarray]) -> float:
    return 100.0 * float(np.mean([int(np.argmax(s) == 0) for s in scores]))


def row_by_row(encoder, evals: dict[str, list[EvalRow]], batch_size: int) -> dict[str, float]:
    """The naive evaluation: per row, load and encode the query and all its candidates, then score."""
    out = {}
    for name, rows in evals.items():
        scores = []
        for row in rows:
            vecs = encoder.encode([row.query.example()] + [c.example() for c in row.candidates],
                                  batch_size=batch_size).numpy()  # (1 + C, D) unit vectors
            scores.append(vecs[1:] @ vecs[0])
        out[name] = precision_at_1(scores)
    return out


def unique_once(encoder, evals: dict[str, list[EvalRow]], batch_size: int) -> dict[str, float]:
    """The Evaluator as the runner uses it: unique items across every dataset, encoded once."""
    items = unique_items(row for rows in evals.values() for row in rows)
    tasks = [EvalTask(name, "bench", True, [(r.query.id, [c.id for c in r.candidates]) for r in rows])
             for name, rows in evals.items()]
    evaluator = Evaluator(encoder, lambda i: items[i].example(), batch_size=batch_size, progress=False)
    result = evaluator.evaluate(tasks)
    return {t.name: t.metrics["precision@1"] for t in result.tasks}


def measure(family: str, evals: dict[str, list[EvalRow]], batch_size: int) -> dict:
    encoder = get_family(family).build(size="tiny", seed=0).eval()  # type: ignore[arg-type]
    first = next(iter(evals.values()))[0]
    with torch.no_grad():  # warm-up outside the counts, so the first side timed is not the cold one
        encoder.encode([first.query.example()] + [c.example() for c in first.candidates])
    counter = ForwardCounter()
    encoder.register_forward_pre_hook(counter)
    sides = {}
    for label, run in (("evaluator", unique_once), ("row_by_row", row_by_row)):
        counter.reset()
        tick = time.perf_counter()
        with torch.no_grad():
            p1 = run(encoder, evals, batch_size)
        sides[label] = {"wall_s": time.perf_counter() - tick, "forward_batches": counter.batches,
                        "examples_encoded": counter.examples, "precision@1": p1}
    ev, naive = sides["evaluator"], sides["row_by_row"]
    n_rows = sum(len(r) for r in evals.values())
    return {
        "family": family, "rows": n_rows,
        "unique_items": len(unique_items(row for rows in evals.values() for row in rows)),
        "row_items": sum(1 + len(r.candidates) for rows in evals.values() for r in rows),
        **sides,
        "ratio_examples": naive["examples_encoded"] / ev["examples_encoded"],
        "ratio_batches": naive["forward_batches"] / ev["forward_batches"],
        "ratio_wall": naive["wall_s"] / ev["wall_s"],
        "same_precision@1": all(abs(ev["precision@1"][n] - naive["precision@1"][n]) < 1e-9 for n in evals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["llava_next", "lavida"], help="an AR and a diffusion VLM")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--rows", type=int, default=40, help="eval rows (queries) per dataset")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: steadiest on a shared 2-core machine, where 2 threads thrash)")
    parser.add_argument("--data", type=Path, default=None, help="built-in benchmark folder (default: built on demand)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "evaluator_cpu_tiny.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    root, tmp = benchmark_root(args.data)
    try:
        evals = load_rows(root, tuple(args.datasets), args.rows)
        results = []
        for family in args.families:
            r = measure(family, evals, args.batch_size)
            results.append(r)
            ev, naive = r["evaluator"], r["row_by_row"]
            print(f"{family}: {r['rows']} rows over {len(evals)} datasets, {r['unique_items']} unique items, "
                  f"{r['row_items']} row items")
            print(f"  {'':12s} {'examples':>9s} {'batches':>8s} {'wall s':>8s}")
            for label, side in (("evaluator", ev), ("row by row", naive)):
                print(f"  {label:12s} {side['examples_encoded']:9d} {side['forward_batches']:8d} {side['wall_s']:8.2f}")
            print(f"  ratio (row by row / evaluator): examples {r['ratio_examples']:.1f}x, "
                  f"batches {r['ratio_batches']:.1f}x, wall {r['ratio_wall']:.1f}x; "
                  f"same P@1 per dataset: {r['same_precision@1']}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    meta = {"machine": platform.node(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": "cpu", "size": "tiny", "datasets": list(args.datasets), "rows_per_dataset": args.rows,
            "batch_size": args.batch_size}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
