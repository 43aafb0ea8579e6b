"""The dashboard's API, through gradio_client, against the app served in-process on a free port."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import Client

from app import launch
from storage import StoreWriter
from tests.app.helpers import free_port, pipeline_run

pytestmark = pytest.mark.timeout(120)


def _serve(path):
    blocks, url = launch(path, port=free_port(), block=False, poll_s=0.5)
    return blocks, Client(url, verbose=False)


@contextlib.contextmanager
def _serve_copy(store, tmp_path):
    """(path, client) of the app served over a copy of `store` that the test may change."""
    path = tmp_path / "store.duckdb"
    shutil.copyfile(store, path)
    blocks, client = _serve(path)
    try:
        yield path, client
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def client(mixed_store_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    blocks, client = _serve(path)
    yield client
    blocks.close()


def frame(payload: dict) -> pd.DataFrame:
    return pd.DataFrame(payload["data"], columns=payload["headers"])


def table_for(client, sources=("paper",), task="all", split="all", models=(), variants=("default",),
              stages=("final",), metric="precision@1"):
    out = client.predict(list(sources), task, split, list(models), list(variants), list(stages), metric,
                         api_name="/per_dataset")
    return frame(out[0]), out[1], out[2], out[3]


def test_overview_recomputes_section5(client):
    note, bars, gap, id_ood, table = client.predict("paper", api_name="/overview")
    assert "paper" in note and "demo" not in note
    rows = frame(table).set_index(["model", "meta_task"])
    assert tuple(rows.loc[("LLaVA-1.6", "classification"), ["in_domain", "ood"]]) == (76.9, 42.5)
    assert tuple(rows.loc[("LaViDa", "classification"), ["in_domain", "ood"]]) == (67.9, 44.5)
    assert bars["type"] == "plotly" and len(json.loads(bars["plot"])["data"]) == 4


def test_overview_keeps_demo_apart_and_labels_it(client):
    note, bars, *_ = client.predict("demo", api_name="/overview")
    assert "not comparable in absolute terms" in note
    names = {t["name"] for t in json.loads(bars["plot"])["data"]}
    assert names == {"llava_next-tiny", "lavida-tiny"}
    note, bars, *_ = client.predict("compare", api_name="/overview")
    titles = [" ".join(re.sub(r"<[^>]+>", " ", a["text"]).split())
              for a in json.loads(bars["plot"])["layout"]["annotations"]]
    assert len(titles) == 3 and any("not comparable in absolute terms" in t for t in titles)


def test_per_dataset_filter(client, tmp_path):
    table, caption, heat, csv_path = table_for(client, task="classification", split="OOD")
    assert sorted(table["dataset"]) == ["Country-211", "ImageNet-A", "ImageNet-R", "ObjectNet", "Place365"]
    assert table.set_index("dataset").loc["ObjectNet", "best"] == "MMaDA"
    assert "5 datasets × 4 series" in caption
    downloaded = pd.read_csv(csv_path)
    assert list(downloaded.columns) == list(table.columns) and len(downloaded) == 5
    only_lavida, *_ = table_for(client, models=["LaViDa"])
    assert [c for c in only_lavida.columns if c not in ("dataset", "meta_task", "split", "best")] == ["LaViDa"]


def test_per_dataset_mixed_sources_are_named_and_demo_is_labelled(client):
    table, caption, *_ = table_for(client, sources=["paper", "demo"], stages=["checkpoint", "final"])
    assert "paper · LaViDa" in table.columns and "demo · lavida-tiny @ 1,000 samples" in table.columns
    assert "not comparable in absolute terms" in caption


def test_delta_paper_vs_reproduced(client):
    summary, table, fig = client.predict("precision@1", "paper|paper|LaViDa|default|final|",
                                         "pipeline||LaViDa|default|final|", api_name="/delta")
    delta = frame(table)
    assert len(delta) == 4 and set(delta["b − a"].round(3)) == {-1.0}
    assert "over 4 datasets: mean -1.0" in summary and "classification -1.0 (in-domain -1.0, OOD -1.0)" in summary
    summary, table, _ = client.predict("precision@1", "paper|paper|LaViDa|default|final|",
                                       "demo||lavida-tiny|default|final|", api_name="/delta")
    assert "share no dataset" in summary
    summary, table, _ = client.predict("precision@1", "paper|paper|LLaVA-1.6|default|final|",
                                       "paper|paper|LaViDa|default|final|", api_name="/delta")
    assert len(frame(table)) == 32 and "classification -3.5 (in-domain -9.1, OOD +2.0)" in summary


def test_sql_good_query(client):
    status, result, _ = client.predict("SELECT model, count(*) AS n FROM v_scores WHERE source = 'demo' GROUP BY model "
                                    "ORDER BY model", 100, 5, api_name="/sql")
    assert status.startswith("2 rows")
    assert frame(result).to_dict("list") == {"model": ["lavida-tiny", "llava_next-tiny"], "n": [24, 24]}


def test_sql_rounds_on_screen_keeps_the_csv_exact_and_cleans_headers(client):
    status, result, csv = client.predict('SELECT 1 / 3 AS third, avg("x") FROM (VALUES (1), (2)) t(x)', 10, 5,
                                         api_name="/sql")
    assert status.startswith("1 rows")
    assert frame(result).to_dict("list") == {"third": [0.3333], "avg(x)": [1.5]}
    assert "0.3333333333333333" in Path(csv).read_text()


def test_sql_example_picker(client):
    text = client.predict("Runs in the store", api_name="/sql_example")
    status, result, _ = client.predict(text, 1000, 5, api_name="/sql")
    assert "rows in" in status and len(frame(result)) == 21


@pytest.mark.parametrize("statement", ["DROP TABLE scores", "DELETE FROM scores",
                                       "COPY scores TO '/tmp/vlmembed-stolen.csv'", "ATTACH '/tmp/x.duckdb' AS x",
                                       "SET enable_external_access = true", "SELECT * FROM read_csv('/etc/passwd')",
                                       "SELECT 1; DROP TABLE scores",
                                       "EXPLAIN ANALYZE CREATE TABLE memory.main.pwn AS SELECT 42 AS x",
                                       "EXPLAIN ANALYZE DROP TABLE scores", "EXPLAIN ANALYZE SET threads = 64",
                                       "CREATE TEMP TABLE pwn AS SELECT 42 AS x", "INSTALL httpfs",
                                       "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"])
def test_sql_hostile_statements_are_refused(client, statement):
    status, _, _ = client.predict(statement, 100, 5, api_name="/sql")
    assert status.startswith("**Refused or failed:**") and "Traceback" not in status
    count, result, _ = client.predict("SELECT count(*) AS n FROM scores", 10, 5, api_name="/sql")
    assert frame(result)["n"][0] == 138 + 24 * 2 + 8
    for table in ("memory.main.pwn", "temp.main.pwn", "pwn"):  # nothing left behind for the next request
        status, _, _ = client.predict(f"SELECT * FROM {table}", 10, 5, api_name="/sql")
        assert status.startswith("**Refused or failed:**") and "does not exist" in status


def test_sql_bad_sql_and_limits(client):
    status, _, _ = client.predict("SELEC nonsense FROM", 100, 5, api_name="/sql")
    assert status.startswith("**Refused or failed:**") and "\n" not in status
    status, result, _ = client.predict("SELECT * FROM range(5000)", 100, 5, api_name="/sql")
    assert "cut at 100 rows" in status and len(frame(result)) == 100
    status, _, _ = client.predict("SELECT sum(hash(a.range + b.range)) FROM range(100000000) a, range(1000) b",
                               100, 0.5, api_name="/sql")
    assert "took too long" in status


def test_new_runs_appear_without_restart(mixed_store_file, tmp_path):
    with _serve_copy(mixed_store_file, tmp_path) as (path, client):
        old_version, _ = client.predict("", api_name="/store_version")
        before, *_ = table_for(client, sources=["pipeline"], task="classification")
        assert "Qwen2.5-VL" not in before.columns
        with StoreWriter(path) as writer:
            writer.add_run(pipeline_run("Qwen2.5-VL", 3.0))
        new_version, status = client.predict(old_version, api_name="/store_version")
        assert new_version != old_version and "3 pipeline" in status
        after, *_ = table_for(client, sources=["pipeline"], task="classification", models=["Qwen2.5-VL"])
        assert list(after.dropna()["dataset"]) and "Qwen2.5-VL" in after.columns
        _, _, _, _, overview = client.predict("pipeline", api_name="/overview")
        assert "Qwen2.5-VL" in set(frame(overview)["model"])


def test_missing_store_is_a_message_then_appears(mixed_store_file, tmp_path):
    path = tmp_path / "absent.duckdb"
    blocks, client = _serve(path)
    try:
        note, *_ = client.predict("paper", api_name="/overview")
        assert "vlmembed import-paper --store" in note
        status, _, _ = client.predict("SELECT 1", 10, 5, api_name="/sql")
        assert "Store unavailable" in status and "vlmembed import-paper" in status
        shutil.copyfile(mixed_store_file, path)
        version, status = client.predict("", api_name="/store_version")
        assert not version.startswith("error") and "runs" in status
        note, *_ = client.predict("paper", api_name="/overview")
        assert "Store unavailable" not in note
    finally:
        blocks.close()


def test_corrupt_store_is_a_message(tmp_path):
    path = tmp_path / "broken.duckdb"
    path.write_bytes(b"not a database" * 500)
    blocks, client = _serve(path)
    try:
        note, *_ = client.predict("paper", api_name="/overview")
        assert "Move it aside" in note and "vlmembed import-paper" in note
        _, caption, *_ = table_for(client)
        assert "Store unavailable" in caption
    finally:
        blocks.close()


def test_sql_huge_value_is_cut_not_sent(client):
    status, result, _ = client.predict("SELECT repeat('x', 200000000) AS s", 10, 10, api_name="/sql")
    assert "truncated" in status and "MB cap" in status and len(frame(result)) == 0


def test_a_bad_file_swapped_in_under_the_app_is_refused(mixed_store_file, tmp_path):
    """A truncated copy published over the store: every view keeps serving the last good version."""
    import os

    with _serve_copy(mixed_store_file, tmp_path) as (path, client):
        version, _ = client.predict("", api_name="/store_version")
        before, *_ = table_for(client)
        cut = tmp_path / "cut.duckdb"
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        os.replace(cut, path)
        new_version, status = client.predict(version, api_name="/store_version")
        assert new_version == version and "runs" in status
        note, *_ = client.predict("paper", api_name="/overview")
        assert "Store unavailable" not in note
        after, *_ = table_for(client)
        assert after.equals(before)
        status, result, _ = client.predict("SELECT count(*) AS n FROM runs", 10, 5, api_name="/sql")
        assert status.startswith("1 rows") and frame(result)["n"][0] == 21
