"""The demo's first look: labelled runs on a sample land first, and the full runs replace them whole."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

import pipeline.demo.first_look as first_look
from pipeline.data.builtin.build import SizePlan
from pipeline.demo.build import build_demo, build_family
from pipeline.demo.status import DemoStatus, read_status
from storage import StoreReader, StoreWriter
from tests.demo.test_demo_build import MICRO, _scores, bench_home, home  # noqa: F401 - fixtures

LOOK = replace(MICRO, first_look=True, project_method="pca")


@pytest.fixture(autouse=True)
def tiny_sample(monkeypatch):
    monkeypatch.setattr(first_look, "FIRST_LOOK_PLAN", SizePlan(n_train=8, n_eval=8, n_captions=40))


def _items(path) -> set[str]:
    reader = StoreReader(path)
    try:
        return set(reader._frame("SELECT item_id FROM items")["item_id"])
    finally:
        reader.close()


@pytest.mark.usefixtures("home")
def test_the_first_look_lands_labelled_runs_and_the_full_runs_replace_them(tmp_path, monkeypatch):
    path = tmp_path / "store.duckdb"
    seen = {}
    retire = first_look.retire

    def watch(writer, look_items):  # called before the first full runs are published
        reader = StoreReader(path)
        seen["runs"], seen["maps"] = reader.runs(), reader.projected()
        reader.close()
        seen["status"] = read_status(path)
        return retire(writer, look_items)

    monkeypatch.setattr(first_look, "retire", watch)
    report = build_demo(path, LOOK, progress=False, workers=1)

    demo = seen["runs"][seen["runs"]["source"] == "demo"]
    assert len(demo) == 1 and set(demo["experiment"]) == {first_look.EXPERIMENT}  # only the first look, so far
    assert demo["label"].str.endswith(first_look.LABEL_NOTE).all()
    assert demo["notes"].str.startswith("First look").all()
    assert set(seen["maps"]["run_id"]) == set(demo["run_id"]) and set(seen["maps"]["method"]) == {"pca"}
    assert seen["status"].first_look == "landed" and "first look" in seen["status"].line()
    assert report.first_look == demo["run_id"].tolist()

    plain = tmp_path / "plain.duckdb"
    build_demo(plain, replace(LOOK, first_look=False), progress=False, workers=1)
    after, before = _scores(path), _scores(plain)  # the same runs and values as a build without a first look
    assert after["run_id"].tolist() == before["run_id"].tolist()
    np.testing.assert_array_equal(after["value"].to_numpy(), before["value"].to_numpy())
    assert _items(path) == _items(plain)  # the sample's items went with its runs
    assert read_status(path).first_look == "replaced"
    assert build_demo(path, LOOK, progress=False, workers=1).first_look == []  # a store with runs gets none


@pytest.mark.usefixtures("home")
def test_a_first_look_left_by_a_killed_build_is_replaced_on_resume(tmp_path):
    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:  # what a build killed right after its first look leaves
        runs = first_look.land(writer, LOOK, tmp_path / "copy.duckdb", build_family)
    assert runs
    build_demo(path, LOOK, progress=False, workers=1)
    plain = tmp_path / "plain.duckdb"
    build_demo(plain, replace(LOOK, first_look=False), progress=False, workers=1)
    assert _scores(path)["run_id"].tolist() == _scores(plain)["run_id"].tolist()
    assert _items(path) - _items(plain) == set()


@pytest.mark.usefixtures("home")
def test_a_failing_first_look_costs_only_itself(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no sample today")

    monkeypatch.setattr(first_look, "land", broken)
    path = tmp_path / "store.duckdb"
    report = build_demo(path, LOOK, progress=False, workers=1)
    assert report.first_look == [] and report.runs
    status = read_status(path)
    assert status.first_look == "failed" and status.finished


def test_the_status_counts_down_to_the_first_look_then_says_it_is_shown():
    status = DemoStatus(families=["A", "B"], costs={"A": 1.0, "B": 1.0}, expected_s=600, first_look="running",
                        first_look_s=45, running=["building the benchmark", "A: first look (zero-shot on a sample)"])
    now = status.started_at + 10
    assert status.seconds_to_first_stage(now) == pytest.approx(35)
    assert "first look" in status.line(now)
    status.first_look = "landed"
    assert status.seconds_to_first_stage(now) == 0
    assert "in about" not in status.coming("the maps", now=now)
    assert "first look" in status.line(time.time())
