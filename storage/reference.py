"""Published full-scale results used as reference levels (storage/data/vlm2vec_mmeb.json).

VLM2Vec's MMEB numbers per meta-task: the paper's Figure 3 draws them as the level that full
MMEB training reaches. They never become runs in the store: a reference line, labelled as a
deviation from the runs it is drawn beside (other model size, data and recipe).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd

from storage.vocabulary import META_TASKS

REFERENCE_LABEL = "VLM2Vec (published, full MMEB training)"


@lru_cache(maxsize=1)
def vlm2vec_data() -> dict:
    text = resources.files("storage").joinpath("data/vlm2vec_mmeb.json").read_text(encoding="utf-8")
    return json.loads(text)


def vlm2vec_reference(backbone: str | None = None) -> pd.DataFrame:
    """One row per meta-task this project evaluates: meta_task, value, backbone, label, source.

    `backbone` picks a row of the file (default: the one it names as the reference)."""
    data = vlm2vec_data()
    backbone = backbone or data["reference"]
    rows = {r["backbone"]: r for r in data["rows"]}
    if backbone not in rows:
        raise ValueError(f"no VLM2Vec row for backbone {backbone!r}; the file has {', '.join(rows)}")
    row = rows[backbone]
    return pd.DataFrame([{"meta_task": task, "value": float(row[task]), "backbone": backbone,
                          "label": f"{REFERENCE_LABEL}, {backbone}", "source": data["source"]}
                         for task in META_TASKS if task in row])
