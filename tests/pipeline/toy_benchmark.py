"""A tiny MMEB-format benchmark that a tiny model can learn in seconds: coloured squares.

Written with the built-in benchmark's own writer, read back through the one MMEB reader.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

from pipeline.data.builtin.context import eval_row, make_side, train_row
from pipeline.data.builtin.writer import EVAL_SCHEMA, TRAIN_SCHEMA, write_rows
from pipeline.data.dataset_info import DatasetInfo

COLOURS = {"red": (230, 25, 25), "green": (30, 200, 40), "blue": (30, 60, 230), "yellow": (240, 230, 30),
           "black": (10, 10, 10), "white": (250, 250, 250), "purple": (140, 30, 160), "orange": (250, 140, 20)}
INSTRUCTION = "Identify the colour of the square"


def _square(root: Path, name: str, rgb: tuple[int, int, int], jitter: int, rng: random.Random) -> str:
    colour = tuple(max(0, min(255, c + rng.randint(-jitter, jitter))) for c in rgb)
    image = Image.new("RGB", (32, 32), colour)
    rel = f"images/{name}.png"
    (root / "images").mkdir(parents=True, exist_ok=True)
    image.save(root / rel)
    return rel


def write_toy_benchmark(root: Path, n_train: int = 64, n_eval: int = 16, seed: int = 0) -> Path:
    """Colours (classification, ID, with training pairs) and ColoursOOD (held out, darker)."""
    rng = random.Random(seed)
    names = list(COLOURS)
    train, evals, ood = [], [], []
    for i in range(n_train):
        c = names[i % len(names)]
        neg = names[(i + 3) % len(names)]
        image = _square(root, f"train{i}", COLOURS[c], 20, rng)
        train.append(train_row(make_side(INSTRUCTION, "", image), make_side("", c), make_side("", neg)))
    for i in range(n_eval):
        c = names[i % len(names)]
        cands = [c] + [n for n in names if n != c]
        evals.append(eval_row(make_side(INSTRUCTION, "", _square(root, f"eval{i}", COLOURS[c], 20, rng)),
                              [make_side("", n) for n in cands]))
        dark = tuple(int(v * 0.7) for v in COLOURS[c])
        ood.append(eval_row(make_side(INSTRUCTION, "", _square(root, f"ood{i}", dark, 10, rng)),
                            [make_side("", n) for n in cands]))
    write_rows(train, root / "train" / "Colours.parquet", TRAIN_SCHEMA)
    write_rows(evals, root / "eval" / "Colours.parquet", EVAL_SCHEMA)
    write_rows(ood, root / "eval" / "ColoursOOD.parquet", EVAL_SCHEMA)
    infos = [
        DatasetInfo("Colours", "builtin", "classification", "I", "T", True, n_train, n_eval, len(names), INSTRUCTION),
        DatasetInfo("ColoursOOD", "builtin", "classification", "I", "T", False, 0, n_eval, len(names), INSTRUCTION),
    ]
    manifest = {"format": "MMEB", "datasets": [i.to_dict() for i in infos],
                "files": {"Colours": {"train": ["train/Colours.parquet"], "eval": ["eval/Colours.parquet"]},
                          "ColoursOOD": {"eval": ["eval/ColoursOOD.parquet"]}}}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root
