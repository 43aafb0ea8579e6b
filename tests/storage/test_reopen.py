"""A reopened store accepts a run with embeddings as its first write (DuckDB 2 refuses
`register` while a fetchone() result of the schema check is unfinished)."""

from __future__ import annotations

import numpy as np

from storage import ItemRecord, ModelRecord, RunRecord, StoreReader, StoreWriter


def test_first_write_to_a_reopened_store_can_be_a_run_with_embeddings(tmp_path):
    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        writer.upsert_models([ModelRecord("m", "m", "autoregressive", "tiny")])
        writer.add_items([ItemRecord("a", "text", text="a"), ItemRecord("b", "text", text="b")])
    with StoreWriter(path) as writer:
        writer.add_run(RunRecord(run_id="r", source="pipeline", model="m", label="x", embedding_items=["a", "b"],
                                 embeddings=np.eye(2, dtype=np.float32)))
    ids, vecs = StoreReader(path).embeddings("r")
    assert ids == ["a", "b"] and vecs.shape == (2, 2)


def test_first_write_to_a_reopened_store_can_be_dataset_rows(tmp_path):
    from storage import DatasetRecord, DatasetRow

    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        writer.upsert_datasets([DatasetRecord("d", "builtin", "retrieval", True, "text", "text")])
        writer.add_items([ItemRecord("a", "text", text="a"), ItemRecord("b", "text", text="b")])
    with StoreWriter(path) as writer:
        writer.set_dataset_rows("d", [DatasetRow("d", 0, "a", ("b",))])
    assert StoreReader(path).pairs("d")["gold_item"].tolist() == ["b"]
