"""Grouping stored maps into model lineages (one model's stages on one dataset)."""

from __future__ import annotations

import pandas as pd

from app.alignment_view import (
    carry_model,
    carry_stage,
    default_pair,
    grid_lineages,
    grid_runs,
    grid_stage_choices,
    lineages,
)


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


def _demo_like():
    """Four families (two AR, two diffusion), each trained per meta-task at three stages, on two datasets of
    two meta-tasks; plus an untrained model on one."""
    rows = []
    families = {"ArOne": "autoregressive", "ArTwo": "autoregressive", "DiffOne": "diffusion", "DiffTwo": "diffusion"}
    for model, paradigm in families.items():
        for dataset, task in (("Charts", "vqa"), ("Flags", "retrieval")):
            for stage, samples in (("zero-shot", 0), ("checkpoint", 1600), ("final", 4000)):
                rows.append((f"{model}:{task}:{stage}", dataset, "umap", model, "demo", "default", stage, samples,
                             None if stage == "zero-shot" else task, paradigm))
    return pd.DataFrame(rows, columns=["run_id", "dataset", "method", "model", "experiment", "variant", "stage",
                                       "train_samples", "train_task", "paradigm"])


def test_picks_carry_over_to_a_dataset_of_another_meta_task():
    projected = _demo_like()
    charts, flags = lineages(projected, "Charts", "umap"), lineages(projected, "Flags", "umap")
    picked = next(x.key for x in charts if x.model == "DiffTwo")
    assert carry_model(flags, picked) == next(x.key for x in flags if x.model == "DiffTwo")
    target = next(x for x in flags if x.model == "DiffTwo")
    assert carry_stage(target, "DiffTwo:vqa:checkpoint", projected) == "DiffTwo:retrieval:checkpoint"
    assert carry_stage(target, "gone", projected) == "DiffTwo:retrieval:final"  # unknown: the last stage
    assert carry_model(flags, "Nobody|demo|default|vqa") is None


def test_default_pair_is_one_ar_and_one_diffusion_model_never_the_same_twice():
    lines = lineages(_demo_like(), "Charts", "umap")
    paradigm = {x.key: x.paradigm for x in lines}
    a, b = default_pair(lines, None, None)
    assert a != b and (paradigm[a], paradigm[b]) == ("autoregressive", "diffusion")
    # A is kept; B defaults to the other paradigm than A's
    diff = next(x.key for x in lines if x.paradigm == "diffusion")
    a, b = default_pair(lines, diff, None)
    assert a == diff and paradigm[b] == "autoregressive"
    # one model only (a demo build's first minutes): B stays empty, so it is not A when others land
    assert default_pair(lines[:1], None, None) == (lines[0].key, None)
    assert default_pair(lines, lines[0].key, None)[1] != lines[0].key


def test_grid_has_two_ar_and_two_diffusion_families_at_one_stage():
    lines = lineages(_demo_like(), "Charts", "umap")
    grid = grid_lineages(list(reversed(lines)))
    assert [x.paradigm for x in grid] == ["autoregressive"] * 2 + ["diffusion"] * 2
    assert len({x.model for x in grid}) == 4
    assert grid_stage_choices(grid) == ["zero-shot (0 samples)", "checkpoint (1600 samples)", "final (4000 samples)"]
    chosen = grid_runs(grid, "checkpoint (1600 samples)")
    assert [rid for _, rid in chosen] == [f"{x.model}:vqa:checkpoint" for x in grid]
    # no run at that sample count: the same stage name
    assert [rid for _, rid in grid_runs(grid, "final (9 samples)")] == [f"{x.model}:vqa:final" for x in grid]


def test_the_tab_keeps_models_and_stages_when_the_dataset_changes_meta_task():
    from app.alignment_view import AlignmentData
    from app.tabs.alignment import GRID, resolve

    data = AlignmentData(_demo_like(), pd.DataFrame(columns=["run_id", "dataset", "metric", "value"]))
    first = resolve(data, {"dataset": "Charts", "model_a": None, "model_b": None})
    assert first["model_a"] != first["model_b"]
    picked = dict(first, model_a=next(x.key for x in first["lineages"] if x.model == "ArTwo"),
                  model_b=next(x.key for x in first["lineages"] if x.model == "DiffTwo"))
    picked["stage_a"] = "ArTwo:vqa:zero-shot"
    moved = resolve(data, {**picked, "dataset": "Flags", "view": GRID, "grid_stage": "checkpoint (1600 samples)"})
    assert moved["model_a"].startswith("ArTwo|") and moved["model_b"].startswith("DiffTwo|")
    assert moved["stage_a"] == "ArTwo:retrieval:zero-shot" and moved["stage_b"] == "DiffTwo:retrieval:final"
    assert moved["view"] == GRID and moved["grid_stage"] == "checkpoint (1600 samples)" and len(moved["grid"]) == 4
    assert resolve(data, {"view": "sideways"})["view"] == "ab"
    assert resolve(data, {"view": GRID})["grid_stage"] == "final (4000 samples)"  # the default stage
