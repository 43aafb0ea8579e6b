"""Results files that keep several measurements side by side, one per label (e.g. before / after)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def save_labelled(path: Path, label: str, result: dict) -> None:
    """Store `result` under `label` in the JSON file at `path` (other labels kept) and print it."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[label] = result
    path.write_text(json.dumps(saved, indent=1) + "\n")
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
