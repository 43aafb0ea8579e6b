"""`vlmembed.load(...).encode(...)`: a stored run's model embeds from Python in one line, and
gives the very vectors the run stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vlmembed
from pipeline.data.example import Example
from storage import StoreReader
from vlmembed.inputs import to_example


@pytest.fixture(scope="module")
def final_run(embedded_store):
    return embedded_store.finals[0]


def test_a_run_id_loads_the_model_that_made_its_stored_embeddings(embedded_store, final_run) -> None:
    model = vlmembed.load(final_run, store=embedded_store.path)
    reader = StoreReader(embedded_store.path)
    ids, stored = reader.embeddings(final_run)
    items = reader.items(ids, with_thumbnails=False).set_index("item_id")
    texts = [i for i in ids if items.loc[i, "modality"] == "text"][:4]
    assert texts, "the toy benchmark has text candidates"
    instruction = {i: items.loc[i, "instruction"] for i in texts}
    inputs = [{"text": items.loc[i, "text"], "instruction": v if isinstance(v, str) else ""}
              for i, v in instruction.items()]
    vectors = model.encode(inputs, batch_size=2)
    assert isinstance(vectors, np.ndarray) and vectors.shape == (len(texts), stored.shape[1])
    expected = stored[[ids.index(i) for i in texts]]
    np.testing.assert_allclose(vectors, expected, atol=1e-3)  # stored as float16 (schema 7)
    sims = model.similarity(vectors, expected)
    assert sims.shape == (len(texts), len(texts))
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-3)


def test_a_run_folder_loads_too_and_inputs_take_every_shape(embedded_store, final_run, tmp_path) -> None:
    checkpoint = StoreReader(embedded_store.path).runs().set_index("run_id").loc[final_run, "checkpoint"]
    model = vlmembed.load(checkpoint)
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    path = tmp_path / "red.png"
    image.save(path)
    one = model.encode("a red square")
    assert one.ndim == 1 and abs(float(np.linalg.norm(one)) - 1) < 1e-5
    batch = model.encode(["a red square", image, path, str(path), {"text": "red", "image": image}],
                         convert_to_numpy=False)
    assert isinstance(batch, torch.Tensor) and batch.shape[0] == 5
    torch.testing.assert_close(batch[1], batch[2])  # a PIL image and its file embed alike
    torch.testing.assert_close(batch[2], batch[3])  # a str naming an image file is that image
    assert not torch.allclose(batch[0], batch[1], atol=1e-3)
    np.testing.assert_allclose(one, batch[0].numpy(), atol=1e-5)


def test_inputs_are_checked() -> None:
    assert to_example("hello", instruction="Find it.") == Example("Find it.", "hello")
    assert to_example({"text": "x", "instruction": "Q:"}).instruction == "Q:"
    with pytest.raises(ValueError, match="unknown input keys"):
        to_example({"txt": "x"})
    with pytest.raises(TypeError, match="cannot embed"):
        to_example(3)


def test_an_unknown_run_says_how_to_list_runs(paper_store) -> None:
    with pytest.raises(ValueError, match="SELECT run_id FROM runs"):
        vlmembed.load("no-such-run", store=paper_store)
    run_id = StoreReader(paper_store).runs()["run_id"].iloc[0]
    with pytest.raises(ValueError, match="no checkpoint"):
        vlmembed.load(run_id, store=paper_store)


def test_every_trained_run_is_a_peft_folder_and_export_model_adds_its_scores(embedded_store, final_run,
                                                                            tmp_path) -> None:
    from pipeline.cli import main
    from pipeline.models.model_folder import ADAPTER_CONFIG, ADAPTER_WEIGHTS, META_FILE

    checkpoint = StoreReader(embedded_store.path).runs().set_index("run_id").loc[final_run, "checkpoint"]
    assert {ADAPTER_CONFIG, ADAPTER_WEIGHTS, META_FILE, "README.md"} <= {p.name for p in Path(checkpoint).iterdir()}
    out = tmp_path / "exported"
    assert main(["export-model", final_run, "--out", str(out), "--store", str(embedded_store.path)]) == 0
    card = (out / "README.md").read_text()
    assert "precision@1" in card and final_run in card and "library_name: peft" in card
    model = vlmembed.load(out)
    np.testing.assert_allclose(model.encode("a red square"), vlmembed.load(checkpoint).encode("a red square"),
                               atol=1e-5)
    assert main(["export-model", "no-such-run", "--out", str(out), "--store", str(embedded_store.path)]) == 2
