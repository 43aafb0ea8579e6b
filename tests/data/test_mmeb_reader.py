import json
from pathlib import Path

import pytest

from pipeline.data.imagestore import ImageStore
from pipeline.data.mmeb import MMEBFormatError, MMEBReader, materialise
from pipeline.data.records import item_id, unique_items
from tests.data.conftest import imagenet_train_rows, png, write_image, write_jsonl, write_parquet

VQA = "Represent the given image with the following question:"


def test_mmeb_train_hub_layout_reads_with_instruction_split(imagenet_train: Path):
    reader = MMEBReader(imagenet_train)
    pairs = reader.train("ImageNet-1K")  # the eval name finds the ImageNet_1K train subset
    assert len(pairs) == 30
    p = pairs[0]
    assert p.query.instruction == "Represent the given image for classification."
    assert p.query.text is None and p.query.image.startswith("images/ImageNet_1K/Train/")
    assert p.positive.text.startswith("label ") and p.positive.image is None and p.negatives == ()
    q, pos, negs = p.examples()
    assert q.image.size == (16, 16) and q.modality == "image" and pos.modality == "text" and negs == []
    assert [d.name for d in reader.datasets()] == ["ImageNet-1K"]


def test_images_are_decoded_only_when_an_example_is_materialised(imagenet_train: Path, monkeypatch):
    opened = []
    real_open = ImageStore.open
    monkeypatch.setattr(ImageStore, "open", lambda self, key: opened.append(key) or real_open(self, key))
    pairs = MMEBReader(imagenet_train).train("ImageNet-1K", check_images="exists")
    assert opened == []
    pairs[3].query.example()
    assert opened == [pairs[3].query.image]


def test_zip_members_found_without_unpacking(vqa_eval_zip: Path):
    reader = MMEBReader(vqa_eval_zip / "data", image_root=vqa_eval_zip)
    rows = reader.eval("OK-VQA")
    assert len(rows) == 5 and reader.report.n_skipped == 0
    row = rows[2]
    assert row.query.instruction == VQA and row.query.text == "What is 2?"
    assert row.gold.text == "answer 2" and len(row.candidates) == 3
    assert row.query.example().image.getpixel((0, 0)) == (10, 80, 10)
    assert not (vqa_eval_zip / "OK-VQA").exists()  # nothing was extracted


def test_jsonl_and_json_layouts_for_a_custom_dataset(tmp_path: Path):
    write_image(tmp_path, "images/a.png")
    write_jsonl(tmp_path / "train" / "MyData.jsonl", [
        {"qry": "a caption", "qry_image_path": "", "pos_text": "<|image_1|>\nRepresent the given image.\n",
         "pos_image_path": "images/a.png", "neg_text": ["x", "y"], "neg_image_path": ["", "images/a.png"]}])
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "MyData.json").write_text(json.dumps([
        {"qry_text": "a caption", "qry_img_path": "", "tgt_text": ["<|image_1|>\nRepresent the given image.\n", "b"],
         "tgt_img_path": ["images/a.png", ""]}]))
    reader = MMEBReader(tmp_path)
    assert reader.info("MyData") is None  # unknown to MMEB: read anyway, metadata unknown
    (pair,) = reader.train("MyData")
    assert pair.query.text == "a caption" and pair.positive.instruction == "Represent the given image."
    assert [(n.text, n.image) for n in pair.negatives] == [("x", None), ("y", "images/a.png")]
    (row,) = reader.eval("MyData")
    assert row.gold.image == "images/a.png" and row.gold.text is None and row.candidates[1].text == "b"


def test_mmeb_v2_separate_instruction_fields(tmp_path: Path):
    write_image(tmp_path, "img/q.png")
    write_parquet(tmp_path / "GQA" / "test-00000.parquet", [
        {"qry_inst": "<|image_1|>\nRepresent the given image with the following question:", "qry_text": "Is it red?",
         "qry_img_path": "img/q.png", "tgt_inst": "", "tgt_text": ["yes", "no"], "tgt_img_path": ["", ""]}])
    (row,) = MMEBReader(tmp_path).eval("GQA")
    assert row.query.instruction == VQA and row.query.text == "Is it red?"


def test_cap_takes_a_seeded_sample_in_a_seeded_order(imagenet_train: Path):
    reader = MMEBReader(imagenet_train)
    a = [p.index for p in reader.train("ImageNet-1K", cap=10, seed=1)]
    b = [p.index for p in MMEBReader(imagenet_train).train("ImageNet-1K", cap=10, seed=1)]
    c = [p.index for p in reader.train("ImageNet-1K", cap=10, seed=2)]
    assert a == b and len(a) == 10 and len(set(a)) == 10
    assert a != c
    assert sorted(p.index for p in reader.train("ImageNet-1K", cap=None, seed=1)) == list(range(30))
    assert [p.index for p in reader.train("ImageNet-1K", shuffle=False, cap=5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        reader.train("ImageNet-1K", cap=0)


def test_eval_limit_is_a_seeded_sample_kept_in_file_order(vqa_eval_zip: Path):
    reader = MMEBReader(vqa_eval_zip / "data", image_root=vqa_eval_zip)
    a = [r.index for r in reader.eval("OK-VQA", limit=3, seed=7)]
    assert a == sorted(a) and len(a) == 3
    assert a == [r.index for r in reader.eval("OK-VQA", limit=3, seed=7)]


def _bad_image_folder(tmp_path: Path) -> Path:
    good = png()
    files = {"good.png": good, "empty.png": b"", "corrupt.png": b"this is not an image at all",
             "truncated.png": good[: len(good) // 2]}
    for name, data in files.items():
        write_image(tmp_path, f"images/ImageNet_1K/Train/{name}", data)
    rows = imagenet_train_rows(5)
    for row, name in zip(rows, ["good.png", "missing.png", "empty.png", "corrupt.png", "truncated.png"], strict=True):
        row["qry_image_path"] = f"images/ImageNet_1K/Train/{name}"
    write_parquet(tmp_path / "ImageNet_1K" / "original-0.parquet", rows)
    return tmp_path


def test_missing_and_empty_images_skipped_at_read_corrupt_ones_at_load(tmp_path: Path):
    reader = MMEBReader(_bad_image_folder(tmp_path))
    pairs = reader.train("ImageNet-1K", check_images="exists")
    assert len(pairs) == 3  # good, corrupt, truncated pass a size check
    report = reader.report.for_dataset("ImageNet-1K", "train")
    assert report.skipped == {"missing image": 1, "empty image": 1}
    loaded = list(materialise(pairs, reader.report))
    assert [p.query.image.rsplit("/", 1)[1] for p, *_ in loaded] == ["good.png"]
    assert report.skipped["corrupt image (at load)"] == 2 and report.rows_kept == 1
    text = reader.report.summary()
    assert "ImageNet-1K (train)" in text and "missing.png" in text and "corrupt image (at load)" in text


def test_decode_check_skips_every_bad_image_before_use(tmp_path: Path):
    reader = MMEBReader(_bad_image_folder(tmp_path))
    pairs = reader.train("ImageNet-1K", check_images="decode")
    assert [p.query.image.rsplit("/", 1)[1] for p in pairs] == ["good.png"]
    assert reader.report.skipped_by_reason() == {"missing image": 1, "empty image": 1, "corrupt image": 2}
    assert "truncated.png" in reader.report.summary() or "corrupt.png" in reader.report.summary()


def test_eval_row_with_a_broken_candidate_is_dropped_whole(tmp_path: Path):
    write_image(tmp_path, "i/ok.png")
    write_image(tmp_path, "i/bad.png", b"\x89PNG broken")
    write_parquet(tmp_path / "eval" / "X.parquet", [
        {"qry_text": "q1", "qry_img_path": "", "tgt_text": ["", ""], "tgt_img_path": ["i/ok.png", "i/bad.png"]},
        {"qry_text": "q2", "qry_img_path": "", "tgt_text": ["", "t"], "tgt_img_path": ["i/ok.png", ""]}])
    reader = MMEBReader(tmp_path)
    assert [r.query.text for r in reader.eval("X")] == ["q2"]
    assert reader.report.for_dataset("X", "eval").skipped == {"corrupt image": 1}


def test_malformed_rows_are_counted_and_skipped(tmp_path: Path):
    good = {"qry": "q", "qry_image_path": "", "pos_text": "p", "pos_image_path": ""}
    write_jsonl(tmp_path / "train" / "T.jsonl", [
        good,
        {k: v for k, v in good.items() if k != "pos_text"},
        {**good, "qry": 42},
        [1, 2],
        "{not json",
        {**good, "qry": "", "qry_image_path": None},
        {**good, "neg_text": ["a", "b"], "neg_image_path": ["", "", ""]},
    ])
    ok = {"qry_text": "q", "qry_img_path": "", "tgt_text": ["a", "b"], "tgt_img_path": ["", ""]}
    write_jsonl(tmp_path / "eval" / "T.jsonl", [
        ok,
        {**ok, "tgt_text": []},
        {**ok, "tgt_text": "a"},
        {**ok, "tgt_img_path": [""]},
        {**ok, "tgt_text": ["a", 3]},
        {k: v for k, v in ok.items() if k != "qry_img_path"},
    ])
    reader = MMEBReader(tmp_path)
    assert len(reader.train("T")) == 1 and len(reader.eval("T")) == 1
    train = reader.report.for_dataset("T", "train").skipped
    assert train == {
        "malformed row: missing field 'pos_text'": 1,
        "malformed row: wrong type for 'qry' (int, expected str)": 1,
        "malformed row: row is a list, not a record": 1,
        "malformed row: invalid JSON (Expecting property name enclosed in double quotes)": 1,
        "malformed row: the query has no text and no image": 1,
        "malformed row: neg_text and neg_image_path differ in length": 1,
    }
    evals = reader.report.for_dataset("T", "eval").skipped
    assert evals == {
        "malformed row: empty candidate list": 1,
        "malformed row: wrong type for 'tgt_text' (str, expected list/tuple)": 1,
        "malformed row: tgt_text has 2 candidates but tgt_img_path 1": 1,
        "malformed row: wrong type inside tgt_text / tgt_img_path (expected strings)": 1,
        "malformed row: missing field 'qry_img_path'": 1,
    }
    assert "row 1" in reader.report.summary()


def test_unreadable_files_and_missing_datasets_say_what_to_do(tmp_path: Path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "Broken.parquet").write_bytes(b"PAR1 garbage")
    reader = MMEBReader(tmp_path)
    with pytest.raises(MMEBFormatError, match="re-download or rebuild"):
        reader.eval("Broken")
    with pytest.raises(FileNotFoundError, match="no eval files for 'Nope'"):
        reader.eval("Nope")
    with pytest.raises(FileNotFoundError, match="build-bench"):
        MMEBReader(tmp_path / "absent")


def test_item_ids_are_content_hashes_and_shared_items_count_once(vqa_eval_zip: Path):
    rows = MMEBReader(vqa_eval_zip / "data", image_root=vqa_eval_zip).eval("OK-VQA")
    assert rows[0].candidates[1].id == rows[1].candidates[1].id  # "other" appears in every row
    assert rows[0].query.id == item_id(VQA, "What is 0?", "images/OK-VQA/Test/q0.jpg")
    items = unique_items(rows)
    assert len(items) == 5 + 5 + 2  # queries, gold answers, and the shared "other" / "third"


def test_hub_rows_come_through_datasets_load_dataset(monkeypatch, vqa_eval_zip: Path):
    import datasets

    calls = []
    rows = [{"qry_text": "<|image_1|>\nRepresent the given image with the following question: Why?\n",
             "qry_img_path": "images/OK-VQA/Test/q1.jpg", "tgt_text": ["because", "no"], "tgt_img_path": ["", ""]}]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or rows)
    reader = MMEBReader(None, image_root=vqa_eval_zip, hub="TIGER-Lab/MMEB-eval")
    (row,) = reader.eval("OK-VQA")
    assert calls == [(("TIGER-Lab/MMEB-eval", "OK-VQA"), {"split": "test"})]
    assert row.query.text == "Why?" and row.query.example().image.size == (16, 16)
