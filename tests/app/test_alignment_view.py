"""Grouping stored maps into model lineages (one model's stages on one dataset)."""

from __future__ import annotations

import pandas as pd

from app.alignment_view import lineages


def _projected(rows):
    cols = ["run_id", "dataset", "method", "model", "experiment", "variant", "stage", "train_samples", "train_task"]
    return pd.DataFrame(rows, columns=cols)


def test_zero_shot_run_without_a_train_task_is_the_first_stage_of_its_lineage():
    projected = _projected([
        ("m:zs", "Digits", "umap", "M", "demo", "default", "zero-shot", 0, None),
        ("m:ck", "Digits", "umap", "M", "demo", "default", "checkpoint", 800, "classification"),
        ("m:fin", "Digits", "umap", "M", "demo", "default", "final", 2400, "classification"),
        ("n:zs", "Digits", "umap", "N", None, None, "zero-shot", 0, None),  # evaluated only: no lineage fields
    ])
    found = {line.label: line for line in lineages(projected, "Digits", "umap")}
    assert set(found) == {"M", "N"}
    assert found["M"].runs["run_id"].tolist() == ["m:zs", "m:ck", "m:fin"]
    assert found["N"].runs["run_id"].tolist() == ["n:zs"]
