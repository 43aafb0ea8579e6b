"""`[data] hub = "TIGER-Lab/MMEB-eval"` offline: rows come from the Hugging Face datasets cache.

The cache is made the way `load_dataset` itself makes it after a download: the `parquet`
builder prepares the subset's file into ``<cache>/TIGER-Lab___mmeb-eval/<Subset>/0.0.0/<hash>/``
(arrow files named ``mmeb-eval-<split>.arrow``). The read then runs in a fresh process with
``HF_DATASETS_OFFLINE=1``, so `datasets` cannot reach the Hub and must resolve the repo id
from that cache alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.data.conftest import png, write_parquet

REPO = "TIGER-Lab/MMEB-eval"
ROWS = [{"qry_text": "<|image_1|>\nRepresent the given image with the following question: Why?\n",
         "qry_img_path": "OK-VQA/Val/q1.jpg", "tgt_text": ["because", "no"], "tgt_img_path": ["", ""]}]

READ = """
import json, sys
from pipeline.data.mmeb import DatasetAbsent, MMEBReader
reader = MMEBReader(None, image_root=sys.argv[1], hub="TIGER-Lab/MMEB-eval")
(row,) = reader.eval("OK-VQA")
try:
    reader.eval("GQA")
    absent = None
except DatasetAbsent as exc:
    absent = str(exc)
print(json.dumps({"query": row.query.text, "gold": row.gold.text, "size": list(row.query.example().image.size),
                  "absent": absent, "has": [reader.has("OK-VQA", "eval"), reader.has("GQA", "eval")]}))
"""


def cache_subset(cache: Path, source: Path, subset: str, split: str) -> None:
    """Prepare one subset into the datasets cache under the repo's name, as a download would."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    staging = cache / "staging"
    builder = Parquet(cache_dir=str(staging), dataset_name="mmeb-eval", config_name=subset, config_id=subset,
                      hash="0" * 16, data_files={split: [str(source)]})
    builder.download_and_prepare()
    # A download keys the folder by namespace too (TIGER-Lab___mmeb-eval); built from a local
    # file the builder has no namespace, so the prepared folder is moved into place.
    target = cache / "TIGER-Lab___mmeb-eval" / subset
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / "mmeb-eval" / subset), str(target))


@pytest.mark.slow
def test_hub_id_resolves_offline_from_the_datasets_cache(tmp_path: Path):
    source = tmp_path / "src" / "OK-VQA" / "test-00000-of-00001.parquet"
    write_parquet(source, ROWS)
    cache_subset(tmp_path / "cache", source, "OK-VQA", "test")
    images = tmp_path / "MMEB-eval"
    images.mkdir()
    with zipfile.ZipFile(images / "images.zip", "w") as zf:
        zf.writestr("OK-VQA/Val/q1.jpg", png())
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_DATASETS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", READ, str(images)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["query"] == "Why?" and result["gold"] == "because" and result["size"] == [16, 16]
    assert result["has"] == [True, False]  # a run's plan learns of the absent subset before opening its store
    absent = result["absent"]
    assert absent.startswith("no eval rows for 'GQA' from TIGER-Lab/MMEB-eval (subset GQA, split test): ")
    assert "\n" not in absent and absent.endswith("download it or drop it from the selection")
