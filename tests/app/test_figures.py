"""Figures carry the right numbers and labels (checked on the figure's data, no rendering)."""

from __future__ import annotations

import re

import pytest

from app import figures, tables


def _paper(snapshot):
    return snapshot.averages[snapshot.averages["source"] == "paper"]


def _plain(text: str) -> str:
    """Figure text without its HTML line breaks and tags."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def _traces(fig, name):
    return [t for t in fig.data if t.name == name]


def test_meta_task_bars_one_bar_per_model_and_task(snapshot):
    fig = figures.meta_task_bars(_paper(snapshot))
    assert [t.name for t in fig.data] == ["LLaVA-1.6", "Qwen2.5-VL", "LaViDa", "MMaDA"]
    llava = _traces(fig, "LLaVA-1.6")[0]
    assert list(llava.x) == ["classification", "vqa", "retrieval"]
    assert [round(v, 1) for v in llava.y] == [59.7, 57.8, 67.6]
    assert fig.data[0].marker.color != fig.data[2].marker.color  # AR and diffusion hues differ


def test_compare_mode_puts_sources_in_labelled_panels(snapshot):
    fig = figures.meta_task_bars(snapshot.averages)
    titles = [_plain(a.text) for a in fig.layout.annotations]
    assert len(titles) == 3 and "not comparable in absolute terms" in titles[2] and titles[0].startswith("paper the published")
    panels = {t.xaxis for t in fig.data}
    assert panels == {"x", "x2", "x3"}
    assert {t.name for t in fig.data if t.xaxis == "x3"} == {"llava_next-tiny", "lavida-tiny"}
    # A model's legend entry appears once even when it is drawn in two panels.
    assert sum(1 for t in fig.data if t.name == "LaViDa" and t.showlegend) == 1


def test_id_ood_figure_shows_section5_numbers(snapshot):
    fig = figures.id_ood_bars(_paper(snapshot))
    by_split = {t.name: dict(zip(t.x, t.y, strict=True)) for t in fig.data if t.xaxis == "x"}  # classification
    assert round(by_split["in-domain"]["LLaVA-1.6"], 1) == 76.9 and round(by_split["OOD"]["LLaVA-1.6"], 1) == 42.5
    assert round(by_split["in-domain"]["LaViDa"], 1) == 67.9 and round(by_split["OOD"]["LaViDa"], 1) == 44.5


def test_id_ood_compare_mode_warns_about_demo(snapshot):
    fig = figures.id_ood_bars(snapshot.averages)
    assert "not comparable in absolute terms" in _plain(fig.layout.title.text)


def test_gap_bars(snapshot):
    gaps = tables.paradigm_gap(_paper(snapshot))
    fig = figures.gap_bars(gaps)
    overall = _traces(fig, "all")[0]
    assert dict(zip(overall.x, [round(v, 2) for v in overall.y], strict=True))["classification"] == 3.53


def test_heatmap_matches_the_table(snapshot):
    scores = tables.filter_scores(snapshot.scores, sources=["paper"], meta_task="retrieval", variants=["default"])
    table = tables.per_dataset_table(scores, snapshot.series)
    fig = figures.heatmap(table, "precision@1")
    z = fig.data[0].z
    assert len(z) == 12 and len(z[0]) == 4 and list(fig.data[0].x) == tables.value_columns(table)


def test_delta_bars_colour_by_sign(snapshot):
    keys = snapshot.series.set_index("source_label")["series"]
    delta = tables.delta_table(snapshot.scores, keys["paper · LLaVA-1.6"], keys["pipeline · LLaVA-1.6"])
    fig = figures.delta_bars(delta, "a", "b")
    assert set(fig.data[0].marker.color) == {"#16a34a"} and len(fig.data[0].y) == 4


@pytest.mark.parametrize("make", [
    lambda s: figures.meta_task_bars(s.averages.iloc[:0]),
    lambda s: figures.gap_bars(tables.paradigm_gap(s.averages.iloc[:0])),
    lambda s: figures.id_ood_bars(s.averages.iloc[:0]),
    lambda s: figures.heatmap(tables.per_dataset_table(s.scores.iloc[:0], s.series), "precision@1"),
    lambda s: figures.delta_bars(tables.delta_table(s.scores, "x", "y"), "a", "b"),
])
def test_empty_input_gives_a_message_not_an_error(snapshot, make):
    fig = make(snapshot)
    assert not fig.data and fig.layout.annotations[0].text


def test_missing_values_are_blank_not_nan(snapshot):
    demo = snapshot.averages[snapshot.averages["source"] == "demo"]  # demo VQA has no OOD dataset
    fig = figures.id_ood_bars(demo)
    texts = [t for trace in fig.data for t in trace.text]
    assert "nan" not in texts and "" in texts
    scores = tables.filter_scores(snapshot.scores, sources=["paper", "pipeline"], meta_task="classification")
    heat = figures.heatmap(tables.per_dataset_table(scores, snapshot.series), "precision@1")
    assert "nan" not in {t for row in heat.data[0].text for t in row}


def test_id_ood_legend_sits_above_the_panels_and_bars_leave_room_for_their_labels(snapshot):
    averages = _paper(snapshot)
    fig = figures.id_ood_bars(averages)
    assert fig.layout.legend.y > 1 and fig.layout.legend.yanchor == "bottom"  # not over the rotated names
    top = max(averages[["in_domain", "ood"]].max().max(), averages.filter(like="upper").max().max())
    assert fig.layout.yaxis.range[1] >= top * 1.15  # the tallest label stays under its meta-task's title


def test_meta_task_bars_leave_room_over_each_panel_for_its_labels(snapshot):
    fig = figures.meta_task_bars(snapshot.averages)  # compare: a panel per source, each with its own y axis
    for axis, source in zip(["yaxis", "yaxis2"], figures._sources(snapshot.averages), strict=False):
        part = snapshot.averages[snapshot.averages["source"] == source]
        assert fig.layout[axis].range[1] >= part["average"].max() * 1.15
