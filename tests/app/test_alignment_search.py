"""The Alignment and Live retrieval tabs through gradio_client, against a served app on a
store with real embeddings (two tiny trained models, projected by `vlmembed project`)."""

from __future__ import annotations

import re
import resource
import shutil
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from app import launch
from tests.app.helpers import free_port
from tests.search.bad_inputs import AWKWARD, UNUSABLE, write_bad_inputs

pytestmark = pytest.mark.timeout(300)
INSTRUCTION = "Identify the colour of the square"


@pytest.fixture(scope="module")
def served(embedded_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "store.duckdb"
    shutil.copyfile(embedded_store.path, path)
    blocks, url = launch(path, port=free_port(), block=False, poll_s=0.5)
    yield Client(url, verbose=False)
    blocks.close()


def frame(payload: dict) -> pd.DataFrame:
    return pd.DataFrame(payload["data"], columns=payload["headers"])


def alignment(client, dataset="Colours", method=None, model_a=None, stage_a=None, model_b=None, stage_b=None,
              pairs=150, view="ab", grid_stage=None):
    out = client.predict(dataset, method, model_a, stage_a, model_b, stage_b, pairs, view, grid_stage,
                         api_name="/alignment")
    return {"controls": out[:9], "maps": out[9], "table": frame(out[10]), "lines": out[11], "caption": out[12]}


def maps_of(html: str) -> list[str]:
    return html.split('class="vm-map"')[1:]


def test_alignment_shows_two_models_on_the_same_pairs(served):
    view = alignment(served)
    dataset, method, model_a, stage_a, model_b, stage_b, *_ = view["controls"]
    assert [v for _, v in dataset["choices"]] == ["Colours", "ColoursOOD"]
    assert model_a["value"] != model_b["value"] and len(model_a["choices"]) == 2
    assert stage_a["value"].endswith(":final") and len(stage_a["choices"]) == 2  # checkpoint and final
    panels = maps_of(view["maps"])
    assert len(panels) == 2
    for panel in panels:
        assert panel.count('data-role="query"') == 16 and panel.count('data-role="target"') == 8
        assert panel.count("<line ") == 16  # a dashed line per pair
        assert panel.count("data:image/png;base64,") == 16  # hover cards carry the query thumbnails
        assert "vm-card" in panel
    table = view["table"]
    assert len(table) == 4 and set(table["stage"]) == {"checkpoint", "final"}
    assert {"paired cos. distance", "modality gap", "alignment", "uniformity", "i2t R@1", "t2i R@1"} <= set(table)
    assert "16 of 16 pairs" in view["caption"]


def test_alignment_sample_size_stage_and_method(served):
    first = alignment(served)
    model_a, stages = first["controls"][2]["value"], first["controls"][3]["choices"]
    checkpoint = next(v for label, v in stages if label.startswith("checkpoint"))
    view = alignment(served, method="pca", model_a=model_a, stage_a=checkpoint, pairs=5)
    assert view["controls"][1]["value"] == "pca" and view["controls"][3]["value"] == checkpoint
    panels = maps_of(view["maps"])
    assert all(p.count('data-role="query"') == 5 and p.count("<line ") == 5 for p in panels)
    queries = [sorted(re.findall(r'left:([\d.]+)px;top:([\d.]+)px', p)) for p in panels]
    assert queries[0] != queries[1]  # different models, different maps of the same pairs
    assert "checkpoint (32 samples)" in view["maps"]
    stale = alignment(served, dataset="Nope", model_a="x", stage_a="y")
    assert stale["controls"][0]["value"] == "Colours" and stale["controls"][3]["value"].endswith(":final")


def test_alignment_values_from_a_url_are_checked(embedded_store):
    from app.alignment_view import AlignmentData
    from app.tabs.alignment import DEFAULT_PAIRS, MAX_PAIRS, resolve
    from storage import StoreReader

    data = AlignmentData.load(StoreReader(embedded_store.path))
    assert resolve(data, {"pairs": "-4"})["pairs"] == 3
    assert resolve(data, {"pairs": "1e9"})["pairs"] == MAX_PAIRS
    assert resolve(data, {"pairs": "many", "method": "mds"})["pairs"] == DEFAULT_PAIRS
    assert resolve(data, {"method": "mds"})["method"] == "tsne"  # the first stored, in umap, tsne, pca order


def test_alignment_grid_shows_every_family_on_the_same_pairs(served):
    view = alignment(served, view="grid", pairs=6)
    assert view["controls"][7] == "grid" and view["controls"][8]["value"].startswith("final")
    panels = maps_of(view["maps"])
    assert len(panels) == 2  # this store holds one AR and one diffusion family; the demo's grid has four
    assert all(p.count('data-role="query"') == 6 for p in panels) and "on both maps" in view["caption"]
    assert "(autoregressive)" in view["maps"] and "(diffusion)" in view["maps"]


def test_alignment_metric_lines_cover_every_stage(served):
    import json

    figure = json.loads(alignment(served)["lines"]["plot"])
    traces = [t for t in figure["data"] if t["type"] == "scatter"]
    assert {t["name"] for t in traces} == {"tiny llava", "tiny lavida"}
    assert all(list(t["x"]) == [32, 64] for t in traces)


def test_search_image_upload_shows_every_model_with_gold_and_map(served, embedded_store):
    assert served.predict("Colours", api_name="/search_instruction") == INSTRUCTION
    status, results, maps, raw, _ = served.predict(handle_file(str(embedded_store.eval_image(3))), "", INSTRUCTION,
                                                "Colours", [], 5, api_name="/search")
    assert "2 of 2 models answered" in status and "stored query 3 of Colours" in status
    assert results.count('class="sv-col"') == 2 and results.count('class="sv-hit') == 10
    assert len(raw["runs"]) == 2 and all(r["available"] for r in raw["runs"])
    for run in raw["runs"]:
        gold = [h for h in run["hits"] if h["gold"]]
        assert (run["gold_rank"] <= 5) == bool(gold)
        assert run["placement"]["dataset"] == "Colours"
    assert maps.count('class="vm-star"') == 2


def test_search_text_in_the_whole_store(served):
    status, results, _, raw, _ = served.predict(None, "red", "", "all", [], 3, api_name="/search")
    assert "2 of 2" in status and raw["pool"] == "all"
    assert all(len(r["hits"]) == 3 for r in raw["runs"]) and "red" in results
    # the trailing "Trained on" input chooses the runs when none is ticked
    status, *_ = served.predict(None, "red", "", "all", [], 3, "classification", api_name="/search")
    assert "2 of 2" in status
    status, *_ = served.predict(None, "red", "", "all", [], 3, "vqa", api_name="/search")
    assert status.startswith("⚠️") and "trained on vqa" in status


def test_every_bad_input_gets_a_message_and_the_app_keeps_serving(served, tmp_path):
    uploads = write_bad_inputs(tmp_path)
    for name, fragment in UNUSABLE.items():
        status, results, _, raw, _ = served.predict(handle_file(str(uploads[name])), "", "", "all", [], 3,
                                                 api_name="/search")
        assert status.startswith("⚠️") and fragment in status, (name, status)
        assert "sv-col" not in results and "error" in raw
    for name in AWKWARD:
        status, _, _, raw, seen = served.predict(handle_file(str(uploads[name])), "", "", "all", [], 3,
                                                 api_name="/search")
        assert "2 of 2 models answered" in status, (name, status)
        assert f"{AWKWARD[name][0]}x{AWKWARD[name][1]}" in raw["query"]
        with Image.open(seen) as shown:  # the preview is what the models got: upright RGB
            assert shown.size == AWKWARD[name] and shown.mode == "RGB"
    status, *_ = served.predict(None, "  ", "Represent it", "all", [], 3, api_name="/search")
    assert "empty query" in status
    status, *_ = served.predict(None, "blue", "", "all", [], 3, api_name="/search")
    assert "2 of 2 models answered" in status


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_twenty_simultaneous_queries_all_get_answers(served):
    words = ["red", "green", "blue", "yellow", "black", "white", "purple", "orange", "pink", "grey"]

    def ask(i):
        return served.predict(None, f"{words[i % 10]} square {i}", "", "all", [], 4, api_name="/search")

    with ThreadPoolExecutor(20) as pool:
        first = list(pool.map(ask, range(20)))
    peak = _rss_mb()
    with ThreadPoolExecutor(20) as pool:
        second = list(pool.map(ask, range(20, 40)))
    for i, (status, _, _, raw, _) in enumerate(first + second):
        assert "2 of 2 models answered" in status, status
        assert raw["query"] == f"text '{words[i % 10]} square {i}'"
    assert _rss_mb() - peak < 200  # a second burst reuses the loaded encoders and caches


def test_a_store_without_embeddings_explains_what_to_run(mixed_store_file, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copyfile(mixed_store_file, path)
    blocks, url = launch(path, port=free_port(), block=False)
    try:
        client = Client(url, verbose=False)
        out = client.predict(None, None, None, None, None, None, 20, "grid", None, api_name="/alignment")
        assert "No 2-D maps in this store yet" in out[9] and "vlmembed project" in out[9]
        status, results, _, raw, _ = client.predict(None, "red", "", "all", [], 3, api_name="/search")
        assert status.startswith("⚠️") and "has stored embeddings" in status and "error" in raw
    finally:
        blocks.close()


def test_previews_served_under_concurrency_are_whole(served, embedded_store):
    """Many searches with the same image at once: each downloads its preview whole (Gradio used to
    rewrite the one cached file in place while serving it: "Too little data for declared Content-Length")."""
    image = embedded_store.eval_image(0)

    def ask(i):
        return served.predict(handle_file(str(image)), "", "", "all", [], 2, api_name="/search")

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(ask, range(24)))
    with Image.open(image) as original:
        expected = original.convert("RGB").tobytes()
    for status, _, _, _, seen in answers:
        assert "2 of 2 models answered" in status, status
        with Image.open(seen) as shown:
            assert shown.mode == "RGB" and shown.tobytes() == expected
