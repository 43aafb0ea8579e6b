"""The demo build: complete runs, deterministic, and safe for a dashboard reading meanwhile."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.demo.build import (
    DEMO_MODELS,
    DUAL_ENCODER_BASELINES,
    PRESETS,
    SEED_FAMILIES,
    DemoConfig,
    build_demo,
    final_vs_chance,
)
from pipeline.demo.pretrain import PretrainConfig
from pipeline.train.config import TrainConfig
from storage import StoreReader
from storage.paths import builtin_bench_dir

QWEN = next(m for m in SEED_FAMILIES if m.family == "qwen2_5_vl")
MICRO = DemoConfig(
    name="demo-micro", bench="small", train_cap=40, eval_limit=6, models=(QWEN,), meta_tasks=("classification",),
    pretrain=PretrainConfig(steps=3, batch_size=8, warmup=1, tokenizer_steps=2),
    train=TrainConfig(global_batch_size=8, chunk_size=8, max_steps=3, lora=None, temperature=0.05,
                      checkpoint_samples=(8,)),
    project_method=None, baselines=False,  # test_micro_demo_baselines builds them
    first_look=False)  # tests/demo/test_first_look.py covers it


@pytest.fixture(scope="module")
def bench_home(tmp_path_factory):
    """One built-in benchmark for the module (building it takes seconds)."""
    from pipeline.data.builtin import BuildConfig, build_benchmark

    home = tmp_path_factory.mktemp("demo_home")
    build_benchmark(BuildConfig(out=home / "bench" / "small-seed0", size="small", seed=0, progress=False))
    return home


@pytest.fixture
def home(bench_home, monkeypatch):
    monkeypatch.setenv("VLMEMBED_HOME", str(bench_home))
    shutil.rmtree(bench_home / "demo", ignore_errors=True)  # every test pretrains afresh
    return bench_home


def _scores(path):
    reader = StoreReader(path)
    try:
        return reader._frame("SELECT run_id, dataset, metric, value FROM v_scores WHERE source = 'demo' "
                            "ORDER BY ALL")
    finally:
        reader.close()


def test_micro_demo_lands_paper_and_every_stage(home, tmp_path, capfd):
    path = tmp_path / "store.duckdb"
    capfd.readouterr()
    report = build_demo(path, MICRO, progress=False)
    err = capfd.readouterr().err
    assert "\r" not in err and "it/s" not in err, err[-500:]  # no bar from pretraining, training or evaluation
    stages = sorted(r.rsplit(":", 1)[1] for r in report.runs)
    assert stages == ["checkpoint-8", "final", "zero-shot-0"]
    reader = StoreReader(path)
    runs = reader.runs()
    assert set(runs["source"]) == {"paper", "demo"}
    demo = runs[runs["source"] == "demo"]
    assert set(demo["model"]) == {QWEN.name}
    assert (home / "demo").is_dir() and list((home / "demo").glob("*/qwen2_5_vl/pretrain.json"))
    again = build_demo(path, MICRO, progress=False)  # everything stored: nothing reruns
    assert again.runs == []
    reader.close()


def test_micro_demo_baselines(home, tmp_path):
    """Chance, blind and the untrained miniature land as 'baseline' runs; the untrained one only once."""
    from dataclasses import replace

    from pipeline.demo.baselines import above_baseline

    path = tmp_path / "store.duckdb"
    report = build_demo(path, replace(MICRO, baselines=True), progress=False)
    assert report.baselines[-2:] == ["baseline:chance", "baseline:blind"]
    assert [r for r in report.baselines if "untrained" in r] == [
        "baseline:demo-micro-untrained:Qwen2.5-VL-like (tiny, untrained):classification:default:zero-shot-0"]
    reader = StoreReader(path)
    baselines = reader.runs("baseline")
    assert set(baselines["model"]) == {"chance (uniform)", "blind (text only)", "Qwen2.5-VL-like (tiny, untrained)"}
    table = above_baseline(reader)
    assert set(table["baseline"]) == set(baselines["model"]) and set(table["meta_task"]) == {"classification"}
    assert ((table["lower"] <= table["diff"]) & (table["diff"] <= table["upper"])).all()
    assert (table["above"] == (table["lower"] > 0)).all()
    reader.close()
    again = build_demo(path, replace(MICRO, baselines=True), progress=False)
    assert again.baselines == ["baseline:chance", "baseline:blind"]  # the untrained run is stored: not rerun


def test_the_clip_like_baseline_is_trained_scored_and_stored_as_a_dual_encoder(home, tmp_path):
    """The tiny CLIP-like model goes through the demo's stages like a VLM miniature (pretraining with
    CLIP's own loss, fine-tuning, evaluation) and lands with paradigm 'dual-encoder' and scores."""
    clip_like = replace(MICRO, models=DUAL_ENCODER_BASELINES, baselines=True)
    report = build_demo(tmp_path / "store.duckdb", clip_like, progress=False)
    assert sorted(r.rsplit(":", 1)[1] for r in report.runs) == ["checkpoint-8", "final", "zero-shot-0"]
    pretrained = next((home / "demo").glob("*/clip/pretrain.json"))
    assert "loss_last" in pretrained.read_text()
    reader = StoreReader(tmp_path / "store.duckdb")
    rows = reader._frame("SELECT r.source, r.model, r.stage, m.paradigm, count(s.value) AS n FROM runs r "
                         "JOIN models m USING (model, variant) JOIN v_scores s USING (run_id) "
                         "WHERE m.family = 'clip' GROUP BY ALL ORDER BY ALL")
    finals = final_vs_chance(reader)
    reader.close()
    assert set(rows["paradigm"]) == {"dual-encoder"} and (rows["n"] > 0).all()
    assert set(zip(rows["source"], rows["stage"], strict=True)) == {
        ("demo", "zero-shot"), ("demo", "checkpoint"), ("demo", "final"), ("baseline", "zero-shot")}
    final = finals[finals["model"] == "CLIP-like (tiny demo)"]
    assert len(final) == 1 and final["p_at_1"].between(0, 100).all()


def test_same_seed_same_scores(home, tmp_path):
    build_demo(tmp_path / "a.duckdb", MICRO, progress=False)
    shutil.rmtree(home / "demo")  # pretrain again too
    build_demo(tmp_path / "b.duckdb", MICRO, progress=False)
    first, second = _scores(tmp_path / "a.duckdb"), _scores(tmp_path / "b.duckdb")
    assert len(first) > 0
    assert first["run_id"].tolist() == second["run_id"].tolist()
    np.testing.assert_array_equal(first["value"].to_numpy(), second["value"].to_numpy())


def test_parallel_workers_land_the_same_runs_and_scores_as_one_process(home, tmp_path):
    lavida = next(m for m in SEED_FAMILIES if m.family == "lavida")
    two = replace(MICRO, models=(QWEN, lavida))
    serial = build_demo(tmp_path / "serial.duckdb", two, progress=False, workers=1)
    parallel = build_demo(tmp_path / "parallel.duckdb", two, progress=False, workers=2)
    assert sorted(parallel.runs) == sorted(serial.runs) and len(serial.runs) == 6
    first, second = _scores(tmp_path / "serial.duckdb"), _scores(tmp_path / "parallel.duckdb")
    assert first["run_id"].tolist() == second["run_id"].tolist()
    np.testing.assert_allclose(first["value"].to_numpy(), second["value"].to_numpy())
    assert not list(tmp_path.glob(".parallel.duckdb.*.worker-*")), "worker stores are cleaned up"
    reader = StoreReader(tmp_path / "parallel.duckdb")
    assert set(reader.runs()["source"]) == {"paper", "demo"}
    reader.close()


def test_zero_shot_runs_land_first_and_leave_the_trained_runs_unchanged(home, tmp_path):
    """The early first stage (every family's zero-shot runs and maps before any fine-tuning) changes
    when runs land, not what they score: the same runs and values as a build without it."""
    from pipeline.demo.status import read_status

    lavida = next(m for m in SEED_FAMILIES if m.family == "lavida")
    two = replace(MICRO, models=(QWEN, lavida), project_method="pca")
    late = build_demo(tmp_path / "late.duckdb", replace(two, early_zero_shot=False), progress=False, workers=1)
    early = build_demo(tmp_path / "early.duckdb", two, progress=False, workers=1)
    stages = [r.rsplit(":", 1)[1] for r in early.runs]
    assert stages[:2] == ["zero-shot-0"] * 2 and "zero-shot-0" not in stages[2:]
    assert early.runs[0].split(":")[2] == QWEN.name  # the cheapest family's first stage lands first
    assert sorted(early.runs) == sorted(late.runs)
    first, second = _scores(tmp_path / "late.duckdb"), _scores(tmp_path / "early.duckdb")
    assert first["run_id"].tolist() == second["run_id"].tolist()
    np.testing.assert_array_equal(first["value"].to_numpy(), second["value"].to_numpy())
    reader = StoreReader(tmp_path / "early.duckdb")
    mapped = set(reader.projected()["run_id"])
    assert {r for r in early.runs if r.endswith("zero-shot-0")} <= mapped  # the first stage brings its maps
    reader.close()
    status = read_status(tmp_path / "early.duckdb")
    assert status.finished and sorted(status.done) == sorted(status.first_stage) == ["LaViDa-like", "Qwen2.5-VL-like"]


def test_a_failing_family_loses_only_its_own_runs(home, tmp_path, monkeypatch):
    import pipeline.demo.build as build_module

    lavida = next(m for m in SEED_FAMILIES if m.family == "lavida")
    two = replace(MICRO, models=(QWEN, lavida))
    real = build_module.build_family

    def crash_lavida(model, *args, **kwargs):
        if model.family == "lavida":
            raise MemoryError("killed mid-run")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(build_module, "build_family", crash_lavida)
    path = tmp_path / "store.duckdb"
    with pytest.raises(RuntimeError, match=r"1 of 2 demo families failed \(LaViDa-like.*again to retry"):
        build_demo(path, two, progress=False, workers=1)
    reader = StoreReader(path)
    assert set(reader.runs().query("source == 'demo'")["model"]) == {QWEN.name}
    reader.close()
    monkeypatch.setattr(build_module, "build_family", real)
    retried = build_demo(path, two, progress=False, workers=1)
    assert {r.split(":")[2] for r in retried.runs} == {lavida.name}  # only the failed family is built again


def test_a_reader_mid_query_survives_every_swap(home, tmp_path):
    path = tmp_path / "store.duckdb"
    from storage import StoreWriter
    from storage.paper_import import import_paper

    with StoreWriter(path) as writer:
        import_paper(writer)
    reader = StoreReader(path)
    done, errors, counts = threading.Event(), [], []

    def keep_querying():
        while not done.is_set():
            try:  # a deliberately heavy join so that swaps land while it runs
                counts.append(reader._frame(
                    "SELECT count(DISTINCT s.run_id) AS n FROM v_scores s, range(20000) t "
                    "WHERE s.value >= 0 AND t.range % 1000 = 0")["n"].iloc[0])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    thread = threading.Thread(target=keep_querying)
    thread.start()
    try:
        build_demo(path, MICRO, progress=False)
    finally:
        done.set()
        thread.join()
    reader.close()
    assert not errors, errors[:3]
    assert len(counts) > 3
    assert counts == sorted(counts), "a reader saw runs disappear"
    assert counts[-1] > counts[0]


def test_presets_fit_the_paper_shape():
    for config in PRESETS.values():
        assert {m.family for m in config.models} == {"llava_next", "qwen2_5_vl", "lavida", "mmada", "clip"}
        assert config.meta_tasks == ("classification", "vqa", "retrieval")
        assert config.train.checkpoint_samples, "data-scale points feed the Figure 3 curves"
    assert PRESETS["small"].pretrain_key() != PRESETS["full"].pretrain_key()
    assert builtin_bench_dir("small", 0).name == "small-seed0"


@pytest.mark.slow
def test_small_demo_builds_every_family_and_meta_task(bench_home, monkeypatch, tmp_path):
    """`vlmembed demo --small`: complete runs for 5 models (4 VLMs, CLIP-like) x 3 meta-tasks, above exactly the baselines the
    README says (a paired test at 0.05; e.g. Qwen2.5-VL-like retrieval, 2.0, is not above chance, 2.0)."""
    from pipeline.cli import main

    monkeypatch.setenv("VLMEMBED_HOME", str(bench_home))
    path = tmp_path / "store.duckdb"
    assert main(["demo", "--small", "--no-progress", "--store", str(path)]) == 0
    reader = StoreReader(path)
    finals = reader._frame("SELECT model, train_task FROM runs WHERE source = 'demo' AND stage = 'final' "
                           "AND run_id NOT LIKE '%:text:%'")
    assert len(finals) == 15  # 5 models x 3 meta-tasks
    assert set(finals["model"]) == {m.name for m in DEMO_MODELS}
    # the text task: every VLM miniature in both attention/pooling settings, the CLIP-like one in its own,
    # pretrained and after retrieval training
    text = reader._frame("SELECT stage, train_task FROM runs WHERE source = 'demo' AND run_id LIKE '%:text:%'")
    assert len(text) == 16 + 2 and set(text["train_task"].dropna()) == {"retrieval"}
    assert set(finals["train_task"]) == {"classification", "vqa", "retrieval"}
    stages = reader._frame("SELECT DISTINCT stage FROM runs WHERE source = 'demo'")["stage"]
    assert set(stages) == {"zero-shot", "checkpoint", "final"}
    assert reader._frame("SELECT count(*) AS n FROM projections")["n"].iloc[0] > 0
    assert reader._frame("SELECT count(*) AS n FROM alignment")["n"].iloc[0] > 0
    scores = final_vs_chance(reader)
    reader.close()
    assert len(scores) == 15 and scores["p_at_1"].notna().all()
    # The README says which baselines each final model beats; exactly those pass the paired test at 0.05.
    from pipeline.demo.baselines import above_baseline

    reader = StoreReader(path)
    measured = above_baseline(reader)
    reader.close()
    beaten = {(r.model, r.meta_task): set() for r in measured.itertuples()}
    for r in measured[measured["above"]].itertuples():
        beaten[(r.model, r.meta_task)].add(_SHORT.get(r.baseline, "untrained"))
    assert beaten == readme_baseline_claims(), measured.to_string()


README = Path(__file__).resolve().parents[2] / "README.md"
_SHORT = {"chance (uniform)": "chance", "blind (text only)": "blind"}


def readme_baseline_claims() -> dict[tuple[str, str], set[str]]:
    """The README's table of which baselines each `--small` final model is above (paired test at 0.05)."""
    text = README.read_text().split("<!-- baseline-claims -->")[1]
    lines = [line for line in text.splitlines() if line.startswith("|")]
    tasks = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    claims = {}
    for line in lines[2:]:
        model, *cells = [c.strip() for c in line.strip("|").split("|")]
        for task, cell in zip(tasks, cells, strict=True):
            claims[(model, task)] = set() if cell in ("", "–", "none") else {c.strip() for c in cell.split(",")}
    return claims


def test_readme_claims_name_every_model_and_meta_task():
    claims = readme_baseline_claims()
    assert {m for m, _ in claims} == {m.name for m in DEMO_MODELS}  # the four VLM miniatures and CLIP-like
    assert {t for _, t in claims} == {"classification", "vqa", "retrieval"}
    assert set().union(*claims.values()) <= {"chance", "blind", "untrained"}


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
def test_killing_the_demo_stops_its_workers(bench_home, tmp_path):
    """`vlmembed app` stops its background demo with SIGTERM: the worker processes go with it
    instead of finishing their families for nobody."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "VLMEMBED_HOME": str(bench_home)}
    demo = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "demo", "--small", "--workers", "2", "--no-progress",
                             "--store", str(tmp_path / "store.duckdb")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:  # spawn's resource tracker is a child too
            time.sleep(0.5)
            workers = {p for p in _children(demo.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) == 2, "the demo never started its two workers"
        time.sleep(3)  # let them get into their families
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(p) for p in workers), "workers outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()


def test_building_the_benchmark_without_progress_prints_no_bar(tmp_path, monkeypatch, capfd):
    """`vlmembed app` logs its background demo to a file: no carriage-return bars in it."""
    from pipeline.runner import resolve_data_root

    monkeypatch.setenv("VLMEMBED_HOME", str(tmp_path))
    capfd.readouterr()
    root = resolve_data_root("builtin:small", 0, progress=False)
    err = capfd.readouterr().err
    assert (root / "manifest.json").is_file()
    assert "\r" not in err and "dataset/s" not in err, err[-300:]
