"""The Evaluator's sharded encoding under two processes (gloo on the CPU, accelerate's
debug_launcher) gives the same embeddings, ranks and scores as one process, and each process
encodes only its share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.eval.evaluator import EvalResult, EvalTask, Evaluator
from pipeline.models.base import Example, ImageError
from pipeline.models.registry import get_family

BAD = "item-with-a-broken-image"


def _items() -> dict[str, Example | None]:
    """Text queries, image+text queries and a shared candidate pool; an odd count, so shards differ in size."""
    rng = np.random.default_rng(0)
    items: dict[str, Example | None] = {}
    for i in range(9):
        image = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) if i % 2 else None
        items[f"q{i}"] = Example("Find the matching caption:", f"query number {i}", image)
    for j in range(14):
        items[f"c{j}"] = Example("", f"candidate caption {j}: a {['red', 'blue', 'green'][j % 3]} thing")
    items[BAD] = None  # the loader raises for it: its rows are dropped on every process alike
    return items


def _tasks() -> list[EvalTask]:
    cands = [f"c{j}" for j in range(14)]
    rows_a = [(f"q{i}", [cands[(i + k) % 14] for k in range(5)]) for i in range(6)]
    rows_b = [(f"q{i}", [cands[(2 * i + k) % 14] for k in range(4)]) for i in range(6, 9)] + [("q0", [BAD, "c1"])]
    return [EvalTask("A", "retrieval", True, rows_a), EvalTask("B", "vqa", False, rows_b)]


def _evaluate(accelerator=None) -> tuple[EvalResult, int]:
    torch.set_num_threads(1)
    encoder = get_family("llava_next").build(size="tiny", seed=0).eval()  # same weights in every process
    items = _items()
    encoded = []
    encoder.register_forward_pre_hook(lambda module, args: encoded.append(int(args[0]["attention_mask"].shape[0])))

    def load(item_id: str) -> Example:
        if items[item_id] is None:
            raise ImageError(f"{item_id}: cannot decode the image")
        return items[item_id]

    evaluator = Evaluator(encoder, load, batch_size=4, accelerator=accelerator, progress=False)
    return evaluator.evaluate(_tasks()), sum(encoded)


def _save(result: EvalResult, encoded: int, path: Path) -> None:
    path.write_text(json.dumps({
        "item_ids": result.item_ids, "embeddings": result.embeddings.tolist(), "failed": sorted(result.failed_items),
        "encoded": encoded,
        "tasks": {t.name: {"rows": t.row_indices, "ranks": t.gold_ranks.tolist(), "gold": t.gold_scores.tolist(),
                           "top": t.top_items, "metrics": t.metrics} for t in result.tasks},
    }))


def _worker(out_dir: str) -> None:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a forked child must not reuse the parent's state
    accelerator = Accelerator(cpu=True)
    result, encoded = _evaluate(accelerator)
    _save(result, encoded, Path(out_dir) / f"rank{accelerator.process_index}-of-{accelerator.num_processes}.json")


def test_two_processes_match_one(tmp_path):
    from accelerate import debug_launcher

    single, encoded_single = _evaluate()
    _save(single, encoded_single, tmp_path / "single.json")
    debug_launcher(_worker, args=(str(tmp_path),), num_processes=2)
    ranks = [json.loads((tmp_path / f"rank{r}-of-2.json").read_text()) for r in range(2)]
    one = json.loads((tmp_path / "single.json").read_text())

    # Every item the rows name, but the broken one, is encoded exactly once overall.
    unique = len({i for t in _tasks() for q, cands in t.rows for i in (q, *cands)} - {BAD})
    assert one["encoded"] == unique
    assert sorted(r["encoded"] for r in ranks) == [unique // 2, unique - unique // 2]
    for rank in ranks:  # every process ends with the whole result
        assert rank["item_ids"] == one["item_ids"] and rank["failed"] == one["failed"] == [BAD]
        np.testing.assert_allclose(rank["embeddings"], one["embeddings"], atol=1e-5)
        for name, task in one["tasks"].items():
            got = rank["tasks"][name]
            assert got["rows"] == task["rows"] and got["ranks"] == task["ranks"] and got["top"] == task["top"]
            np.testing.assert_allclose(got["gold"], task["gold"], atol=1e-5)
            assert got["metrics"] == pytest.approx(task["metrics"])
    assert one["tasks"]["B"]["rows"] == [0, 1, 2]  # the row with the broken item is skipped
