"""Small MMEB-format folders written on the fly for the reader tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image


def png(color: tuple[int, int, int] = (200, 30, 30), side: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def write_image(root: Path, rel: str, data: bytes | None = None) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png() if data is None else data)
    return rel


def imagenet_train_rows(n: int) -> list[dict]:
    """Rows as MMEB-train stores ImageNet_1K (instruction with '.', trailing newline)."""
    return [{"qry": "<|image_1|>\nRepresent the given image for classification.\n",
             "qry_image_path": f"images/ImageNet_1K/Train/img_{i}.jpg", "pos_text": f"label {i}",
             "pos_image_path": "", "neg_text": "", "neg_image_path": ""} for i in range(n)]


@pytest.fixture
def imagenet_train(tmp_path: Path) -> Path:
    """MMEB-train's hub layout: ImageNet_1K/original-*.parquet, images/ImageNet_1K/Train/*."""
    rows = imagenet_train_rows(30)
    write_parquet(tmp_path / "ImageNet_1K" / "original-00000-of-00001.parquet", rows)
    for i, r in enumerate(rows):
        write_image(tmp_path, r["qry_image_path"], png((i * 8 % 255, 10, 10)))
    return tmp_path


@pytest.fixture
def vqa_eval_zip(tmp_path: Path) -> Path:
    """MMEB-eval-like OK-VQA rows whose images sit in a zip without the 'images/' prefix."""
    rows = []
    with zipfile.ZipFile(tmp_path / "OK-VQA.zip", "w") as zf:
        for i in range(5):
            zf.writestr(f"OK-VQA/Test/q{i}.jpg", png((10, i * 40, 10)))
            rows.append({"qry_text": f"<|image_1|>\nRepresent the given image with the following question: What is {i}?\n",
                         "qry_img_path": f"images/OK-VQA/Test/q{i}.jpg",
                         "tgt_text": [f"answer {i}", "other", "third"], "tgt_img_path": ["", "", ""]})
    write_parquet(tmp_path / "data" / "OK-VQA" / "test-00000-of-00001.parquet", rows)
    return tmp_path
