"""Intervals on the dashboard: joined onto the Overview's averages and gap, drawn as error bars, and
every number without one says why."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from app import figures, stats_view
from app.store import StoreCache
from app.tabs.overview import overview_view
from pipeline.stats.landing import store_intervals
from pipeline.stats.paired import Comparison
from storage import StoreWriter


@pytest.fixture(scope="module")
def with_intervals(mixed_store_file, tmp_path_factory):
    """The mixed store after `vlmembed stats`."""
    path = tmp_path_factory.mktemp("stats") / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    with StoreWriter(path) as writer:
        store_intervals(writer)
    return StoreCache(path).snapshot()


def test_every_overview_average_has_an_interval_around_it(with_intervals):
    averages = with_intervals.averages
    assert averages["lower"].notna().all() and (averages["interval_note"] == "").all()
    assert ((averages["lower"] <= averages["average"]) & (averages["average"] <= averages["upper"])).all()
    paper = averages[averages["source"] == "paper"].set_index(["label", "meta_task"])
    assert set(paper["method"]) == {"normal-n"}
    # 10 datasets of 1000 queries each: the mean's half-width is about 1.96 * sqrt(sum p(1-p)/1000) / 10
    llava = paper.loc[("LLaVA-1.6", "classification")]
    assert 0.6 < llava["upper"] - llava["average"] < 1.0


def test_overview_bars_and_gap_carry_error_bars(with_intervals):
    _, bars, gap, _, _ = overview_view(with_intervals, "paper")
    llava = next(t for t in bars.data if t.name == "LLaVA-1.6")
    assert llava.error_y.array is not None and (np.asarray(llava.error_y.array) > 0).all()
    assert all(text.startswith("95% CI") for text in llava.customdata[:, 2])
    overall = next(t for t in gap.data if t.name == "all")
    assert (np.asarray(overall.error_y.array) > 0).all()
    assert "unpaired" in overall.customdata[0, 4]  # the paper's numbers: computed from n
    gaps = with_intervals.gaps.query("source == 'paper' and split == 'all'")
    assert ((gaps["lower"] < gaps["gap"]) & (gaps["gap"] < gaps["upper"])).all()


def test_numbers_without_intervals_say_why(snapshot):
    averages = snapshot.averages  # the mixed store before `vlmembed stats`
    assert averages["lower"].isna().all()
    assert set(averages["interval_note"]) == {stats_view.NO_INTERVAL_STATS}
    bars = figures.meta_task_bars(averages[averages["source"] == "paper"])
    assert "vlmembed stats" in bars.data[0].customdata[0, 2]


def _gaps() -> tuple[pd.DataFrame, pd.DataFrame]:
    averages = pd.DataFrame({"source": "demo", "meta_task": "vqa", "label": ["ar", "diff", "mixed"],
                             "run_id": ["run-ar", "run-diff", None]})
    gaps = pd.DataFrame({"source": ["demo", "demo"], "meta_task": "vqa", "split": ["all", "OOD"],
                         "ar_model": ["ar", "mixed"], "ar": 30.0, "diffusion_model": "diff", "diffusion": 20.0,
                         "gap": 10.0})
    return gaps, averages


def test_gap_interval_comes_from_the_comparison_of_its_two_runs():
    gaps, averages = _gaps()
    calls = []

    def compare(a, b):
        calls.append((a, b))
        rows = pd.DataFrame({"meta_task": ["vqa"], "split": ["all"], "lower": [4.0], "upper": [16.0]})
        return Comparison("precision@1", pd.DataFrame(), rows), "paired: bootstrap of the difference"

    out = stats_view.gap_with_intervals(gaps, averages, compare)
    assert calls == [("run-ar", "run-diff")]  # the mixed series has no single run to compare
    assert (out.loc[0, "lower"], out.loc[0, "upper"]) == (4.0, 16.0) and out.loc[0, "how"].startswith("paired")
    assert np.isnan(out.loc[1, "lower"]) and out.loc[1, "how"] == stats_view.NO_INTERVAL_MIXED


def test_gap_without_shared_queries_says_so():
    gaps, averages = _gaps()

    def compare(a, b):
        raise ValueError("run-ar and run-diff share no evaluated queries")

    out = stats_view.gap_with_intervals(gaps.head(1), averages, compare)
    assert np.isnan(out.loc[0, "lower"]) and "share no evaluated queries" in out.loc[0, "how"]


def _series(snap, source: str, model: str) -> str:
    cat = snap.series
    return cat[(cat["source"] == source) & (cat["model"] == model) & (cat["stage"] == "final")]["series"].iloc[0]


def test_per_dataset_cells_show_their_interval(with_intervals):
    from app.tabs.datasets import table_view

    styled, caption, _, _ = table_view(with_intervals, ["paper"], "classification", "all", [], ["default"],
                                       ["final"], "precision@1", True)
    cells = styled.data.set_index("dataset")
    assert cells.loc["HatefulMemes", "LLaVA-1.6"] == "70.1 [67.2, 72.9]"  # Wilson, 701 of 1000
    assert cells.loc["HatefulMemes", "best"] == "LLaVA-1.6" and "95% interval" in caption
    plain, _, _, _ = table_view(with_intervals, ["paper"], "classification", "all", [], ["default"], ["final"],
                                "precision@1", False)
    assert plain.data.set_index("dataset").loc["HatefulMemes", "LLaVA-1.6"] == pytest.approx(70.1)


def test_delta_marks_only_differences_that_survive_holm(with_intervals):
    from app.tabs.datasets import delta_view

    a, b = _series(with_intervals, "paper", "LLaVA-1.6"), _series(with_intervals, "paper", "LaViDa")
    summary, table, fig = delta_view(with_intervals, "precision@1", a, b)
    rows = table.set_index("dataset")
    assert rows.loc["HatefulMemes", "at 0.05"] == "✓ survives Holm"  # 50.6 vs 70.1
    assert rows.loc["CIRR", "at 0.05"] == ""  # 53.2 vs 53.6: the paper's "markedly stronger" does not hold
    assert (rows["p (Holm)"] >= rows["p"] - 1e-12).all()
    assert (rows[["p", "p (Holm)"]].dropna() == rows[["p", "p (Holm)"]].dropna().round(4)).all().all()  # shown, 4 places
    n_real = int((rows["at 0.05"] != "").sum())
    assert 0 < n_real < len(rows) and f"{n_real} of {len(rows)} differences survive Holm" in summary
    assert "unpaired" in summary
    bar = fig.data[0]
    assert bar.error_x.array is not None and sum("✓" in t for t in bar.text) == n_real


def test_a_reproduction_off_by_one_point_is_not_a_real_difference(with_intervals):
    from app.tabs.datasets import delta_view

    a, b = _series(with_intervals, "paper", "LaViDa"), _series(with_intervals, "pipeline", "LaViDa")
    summary, table, _ = delta_view(with_intervals, "precision@1", a, b)
    assert len(table) == 4 and (table["b − a"] == -1.0).all() and (table["at 0.05"] == "").all()
    assert "0 of 4 differences survive Holm" in summary


def test_a_cell_click_links_to_the_per_query_view(with_intervals):
    import html
    from urllib.parse import parse_qs

    from app.tabs.datasets import cell_link_view

    snap = with_intervals
    values = dict(sources=["demo"], task="all", split="all", models=[], variants=["default"], stages=["final"],
                  metric="precision@1", a=_series(snap, "demo", "llava_next-tiny"),
                  b=_series(snap, "demo", "lavida-tiny"))
    text = cell_link_view(snap, values, [0, 3])  # first dataset, first series column
    assert 'target="_self"' in text  # the same browser tab
    query = parse_qs(html.unescape(text.split('href="?')[1].split('"')[0]))
    assert query["tab"] == ["per_query"] and query["qb"] and query["qa"] != query["qb"]
    paper = dict(values, sources=["paper"], a="", b="")
    assert "no per-query results" in cell_link_view(snap, paper, [0, 3])
    assert "Click a score" in cell_link_view(snap, values, [0, 0])  # the dataset column is not a score


def test_in_domain_and_ood_bars_carry_their_own_intervals(with_intervals):
    paper = with_intervals.averages[with_intervals.averages["source"] == "paper"]
    fig = figures.id_ood_bars(paper)
    checked = 0
    for trace in (t for t in fig.data if t.xaxis == "x"):  # the classification panel
        column = "in_domain" if trace.name == "in-domain" else "ood"
        rows = paper[paper["meta_task"] == "classification"].set_index("label").loc[list(trace.x)]
        checked += 1
        np.testing.assert_allclose(trace.error_y.array, rows[f"{column}_upper"] - rows[column])
        np.testing.assert_allclose(trace.error_y.arrayminus, rows[column] - rows[f"{column}_lower"])
    assert checked == 2
