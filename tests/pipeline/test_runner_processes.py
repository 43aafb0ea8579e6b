"""`accelerate launch --num_processes 2` (gloo on the CPU) runs a grid into one store: only the main
process writes, and the scores equal a one-process run of the same grid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage import StoreReader
from tests.pipeline.toy_benchmark import write_toy_benchmark

ROOT = Path(__file__).resolve().parents[2]
# Two processes each take half of every 16-pair batch; gathered negatives and averaged gradients make
# the step the same up to float summation order, so scores agree to the printed digit.
SCORE_TOLERANCE = 0.01  # percentage points
LOSS_TOLERANCE = 1e-3


def _toml(path: Path, data_root: Path, runs: Path) -> Path:
    path.write_text(f"""
name = "toy"
source = "pipeline"
meta_tasks = ["classification"]
eval_batch_size = 16
output_dir = "{runs}"
device = "cpu"
[data]
root = "{data_root}"
selection = "builtin"
[train]
global_batch_size = 16
chunk_size = 8
learning_rate = 1e-3
epochs = 3
warmup_ratio = 0.0
seed = 0
[[models]]
name = "tiny llava"
family = "llava_next"
base = "random:tiny:0"
""")
    return path


def _run(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLMEMBED_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_land_one_store_with_the_one_process_scores(tmp_path):
    data = write_toy_benchmark(tmp_path / "toy")
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    _run([sys.executable, "-m", "pipeline.cli", "run", str(_toml(tmp_path / "one.toml", data, tmp_path / "r1")),
          "--store", str(one), "--no-progress"], tmp_path)
    _run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu", "-m", "pipeline.cli", "run",
          str(_toml(tmp_path / "two.toml", data, tmp_path / "r2")), "--store", str(two), "--no-progress"], tmp_path)
    a, b = StoreReader(one), StoreReader(two)
    assert list(b.runs()["run_id"]) == list(a.runs()["run_id"]) == ["pipeline:toy:tiny llava:classification:default:final"]
    for metric in ("precision@1", "mrr"):
        sa = a.scores(metric=metric).set_index("dataset")["value"].sort_index()
        sb = b.scores(metric=metric).set_index("dataset")["value"].sort_index()
        assert list(sa.index) == list(sb.index) == ["Colours", "ColoursOOD"]
        np.testing.assert_allclose(sb.to_numpy(), sa.to_numpy(), atol=SCORE_TOLERANCE)
    run_id = a.runs()["run_id"][0]
    la, lb = a.train_log([run_id]), b.train_log([run_id])
    np.testing.assert_allclose(lb["loss"].to_numpy(), la["loss"].to_numpy(), atol=LOSS_TOLERANCE)
    ids_a, vecs_a = a.embeddings(run_id)
    ids_b, vecs_b = b.embeddings(run_id)
    assert ids_a == ids_b and np.allclose(vecs_a, vecs_b, atol=1e-3)
    # one writer: no second working copy of the store was made beside it
    # (the store's own embedding files live in two.duckdb.vectors)
    assert {p.name for p in tmp_path.iterdir() if "two" in p.name} <= {"two.duckdb", "two.duckdb.lock", "two.toml",
                                                                         "two.duckdb.vectors"}
