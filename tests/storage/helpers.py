"""Small builders for store tests."""

from __future__ import annotations

import numpy as np

from storage import DatasetRecord, DatasetRow, ItemRecord, ModelRecord, RunRecord, ScoreRecord


def seed_catalogue(writer, n_items: int = 6) -> list[str]:
    writer.upsert_models([ModelRecord("m-tiny", "m tiny", "diffusion", "tiny", family="lavida")])
    writer.upsert_datasets([DatasetRecord("toy", "builtin", "retrieval", True, "text", "image")])
    ids = [f"item{i}" for i in range(n_items)]
    writer.add_items([ItemRecord(i, "text", text=f"text {i}") for i in ids])
    half = n_items // 2
    writer.set_dataset_rows("toy", [DatasetRow("toy", r, ids[r], tuple(ids[half:])) for r in range(half)])
    return ids


def toy_run(run_id: str, ids: list[str], value: float = 50.0, dim: int = 4) -> RunRecord:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(ids), dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return RunRecord(run_id=run_id, source="demo", model="m-tiny", label="final",
                     scores=[ScoreRecord("toy", "precision@1", value, 3)],
                     embedding_items=list(ids), embeddings=vecs)
