"""Writing rows in MMEB's parquet layout, byte for byte the same for the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TRAIN_SCHEMA = pa.schema([(name, pa.string()) for name in
                          ("qry", "qry_image_path", "pos_text", "pos_image_path", "neg_text", "neg_image_path")])
EVAL_SCHEMA = pa.schema([("qry_text", pa.string()), ("qry_img_path", pa.string()),
                         ("tgt_text", pa.list_(pa.string())), ("tgt_img_path", pa.list_(pa.string()))])


def write_rows(rows: list[dict[str, Any]], path: Path, schema: pa.Schema) -> None:
    """One parquet file; no pandas index, no timestamps, fixed row groups: deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [row[name] for row in rows] for name in schema.names}
    table = pa.table(columns, schema=schema)
    pq.write_table(table, path, compression="zstd", row_group_size=10_000, write_statistics=False)
