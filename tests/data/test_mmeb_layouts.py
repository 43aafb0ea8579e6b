"""MMEB as downloaded: each layout of TIGER-Lab/MMEB-train and MMEB-eval, written here with
pyarrow and zipfile from the names the Hub and VLM2Vec publish (not with our own writer).

Published facts the fixtures follow:
* MMEB-train, main branch: ``<Subset>/original-00000-of-00001.parquet`` beside
  ``diverse_instruction-00000-of-00001.parquet`` and the older ``train-00000-of-00001.parquet``
  (the Hub's file listing); images in ``images_zip/<Subset>.zip``, which the dataset's
  ``unzip_file.py`` unpacks into ``images/``; VLM2Vec trains with ``--image_dir MMEB-train/``, so
  rows name ``images/<Subset>/...``.
* MMEB-eval, main branch: ``<Subset>/test-00000-of-00001.parquet``; images in ``images.zip``,
  unpacked with ``unzip images.zip -d eval_images/`` and read with ``--image_dir eval_images/``
  (VLM2Vec's README), so rows name ``<Subset>/...`` below ``eval_images/``.
* The ``refs/convert/parquet`` branch: ``<Subset>/<split>/0000.parquet`` (``OK-VQA/test/0000.parquet``,
  ``ImageNet_1K/original/0000.parquet``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipeline.data.mmeb import DatasetAbsent, MMEBReader
from tests.data.conftest import png, write_image, write_parquet

CLS = "<|image_1|>\nRepresent the given image for classification.\n"
VQA = "<|image_1|>\nRepresent the given image with the following question: "
SPLITS = ("original", "diverse_instruction", "train")


def train_rows(split: str, n: int = 4) -> list[dict]:
    """ImageNet_1K rows of one MMEB-train split; the label text names the split it came from."""
    return [{"qry": CLS, "qry_image_path": f"images/ImageNet_1K/Train/n{i:02d}.JPEG", "pos_text": f"{split} label {i}",
             "pos_image_path": "", "neg_text": "", "neg_image_path": ""} for i in range(n)]


def eval_rows(n: int = 3) -> list[dict]:
    return [{"qry_text": f"{VQA}What is {i}?\n", "qry_img_path": f"OK-VQA/Val/q{i}.jpg",
             "tgt_text": [f"answer {i}", "other"], "tgt_img_path": ["", ""]} for i in range(n)]


def write_train_images(base: Path, zipped: bool) -> None:
    """MMEB-train's images: members ``ImageNet_1K/Train/*`` in ``images_zip/ImageNet_1K.zip``, or unpacked in ``images/``."""
    names = [f"ImageNet_1K/Train/n{i:02d}.JPEG" for i in range(4)]
    if zipped:
        (base / "images_zip").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(base / "images_zip" / "ImageNet_1K.zip", "w") as zf:
            for name in names:
                zf.writestr(name, png())
    else:
        for name in names:
            write_image(base / "images", name)


def write_eval_images(base: Path, zipped: bool, folder: str = "eval_images") -> None:
    """MMEB-eval's images: ``images.zip`` with members ``OK-VQA/Val/*``, or unpacked into `folder`."""
    names = [f"OK-VQA/Val/q{i}.jpg" for i in range(3)]
    if zipped:
        base.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(base / "images.zip", "w") as zf:
            for name in names:
                zf.writestr(name, png((20, 200, 20)))
    else:
        for name in names:
            write_image(base / folder, name, png((20, 200, 20)))


def mmeb_train_main(base: Path, zipped: bool = True) -> Path:
    for split in SPLITS:
        write_parquet(base / "ImageNet_1K" / f"{split}-00000-of-00001.parquet", train_rows(split))
    write_train_images(base, zipped)
    return base


def mmeb_eval_main(base: Path, zipped: bool = True) -> Path:
    write_parquet(base / "OK-VQA" / "test-00000-of-00001.parquet", eval_rows())
    write_eval_images(base, zipped)
    return base


def _labels(pairs) -> set[str]:
    return {p.positive.text.rsplit(" label", 1)[0] for p in pairs}


@pytest.mark.parametrize("zipped", [True, False], ids=["images_zip", "unzipped-images"])
def test_mmeb_train_reads_only_the_named_split(tmp_path: Path, zipped: bool):
    root = mmeb_train_main(tmp_path, zipped)
    pairs = MMEBReader(root).train("ImageNet-1K", check_images="decode")
    assert len(pairs) == 4 and _labels(pairs) == {"original"}  # not 12: the other splits stay unread
    assert pairs[0].query.example().image.size == (16, 16)
    diverse = MMEBReader(root, train_split="diverse_instruction").train("ImageNet-1K")
    assert len(diverse) == 4 and _labels(diverse) == {"diverse_instruction"}


def test_a_split_the_folder_lacks_is_absent_and_the_error_names_the_splits_there(tmp_path: Path):
    root = mmeb_train_main(tmp_path)
    with pytest.raises(DatasetAbsent, match=r"holds split\(s\) diverse_instruction, original, train but not 'v2'; "
                                            r"set \[data\] train_split"):
        MMEBReader(root, train_split="v2").train("ImageNet-1K")


@pytest.mark.parametrize("zipped", [True, False], ids=["images.zip", "eval_images"])
def test_mmeb_eval_main_branch(tmp_path: Path, zipped: bool):
    reader = MMEBReader(mmeb_eval_main(tmp_path, zipped))
    rows = reader.eval("OK-VQA")  # decodes every image: a missing one would drop its row
    assert len(rows) == 3 and reader.report.n_skipped == 0
    assert rows[1].query.text == "What is 1?" and rows[1].gold.text == "answer 1"
    assert rows[1].query.example().image.getpixel((0, 0)) == (20, 200, 20)
    assert [d.name for d in reader.datasets()] == ["OK-VQA"]


def test_refs_convert_parquet_layout(tmp_path: Path):
    for split in SPLITS:
        write_parquet(tmp_path / "ImageNet_1K" / split / "0000.parquet", train_rows(split, 3))
    write_parquet(tmp_path / "OK-VQA" / "test" / "0000.parquet", eval_rows())
    write_train_images(tmp_path, zipped=True)
    write_eval_images(tmp_path, zipped=True)
    reader = MMEBReader(tmp_path)
    pairs = reader.train("ImageNet-1K")
    assert len(pairs) == 3 and _labels(pairs) == {"original"}
    assert len(reader.eval("OK-VQA")) == 3 and reader.report.n_skipped == 0
    assert {d.name for d in reader.datasets()} == {"ImageNet-1K", "OK-VQA"}


def test_eval_and_train_folders_side_by_side(tmp_path: Path):
    """MMEB-train downloaded into train/, MMEB-eval into eval/, each with its own images."""
    mmeb_train_main(tmp_path / "train", zipped=True)
    mmeb_eval_main(tmp_path / "eval", zipped=False)
    reader = MMEBReader(tmp_path)
    pairs = reader.train("ImageNet-1K", check_images="decode")
    assert len(pairs) == 4 and _labels(pairs) == {"original"}
    rows = reader.eval("OK-VQA")
    assert len(rows) == 3 and reader.report.n_skipped == 0


def test_images_unpacked_under_images_without_the_prefix_in_rows(tmp_path: Path):
    """Eval rows name ``OK-VQA/...``; the images were unpacked into ``images/`` instead of ``eval_images/``."""
    write_parquet(tmp_path / "OK-VQA" / "test-00000-of-00001.parquet", eval_rows())
    write_eval_images(tmp_path, zipped=False, folder="images")
    reader = MMEBReader(tmp_path)
    assert len(reader.eval("OK-VQA")) == 3 and reader.report.n_skipped == 0


def test_a_zip_packed_with_its_images_folder_serves_rows_without_it(tmp_path: Path):
    write_parquet(tmp_path / "OK-VQA" / "test-00000-of-00001.parquet", eval_rows())
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"eval_images/OK-VQA/Val/q{i}.jpg", png())
        zf.writestr("__MACOSX/OK-VQA/Val/._q0.jpg", b"resource fork, not an image")
    reader = MMEBReader(tmp_path)
    assert len(reader.eval("OK-VQA")) == 3 and reader.report.n_skipped == 0


def test_an_absent_dataset_is_reported_as_absent(tmp_path: Path):
    reader = MMEBReader(mmeb_eval_main(tmp_path))
    assert reader.has("OK-VQA", "eval") and not reader.has("GQA", "eval")
    with pytest.raises(DatasetAbsent, match="no eval files for 'GQA': looked for"):
        reader.eval("GQA")
