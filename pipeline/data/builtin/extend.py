"""Add datasets registered after a benchmark folder was built, in place.

A built-in benchmark built before the text task existed lacks SceneParaphrase; rebuilding the
whole folder would redraw every image for one parquet file. A dataset that needs no source
package and writes no images (the text task) is built straight into the folder and appended to
its manifest with the folder's own seed and sizes, so it comes out as a fresh build would make it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.data.builtin import sources as src
from pipeline.data.builtin.build import SIZES, SizePlan, _record, _write
from pipeline.data.builtin.context import BuildContext, Resources
from pipeline.data.builtin.specs import BUILTIN_SPECS
from pipeline.data.dataset_info import MANIFEST
from storage.vocabulary import TEXT_META_TASK

log = logging.getLogger(__name__)


def text_datasets() -> list[str]:
    """The built-in text-only datasets: no source package, no images, evaluation only."""
    return [name for name, spec in BUILTIN_SPECS.items() if spec.info.meta_task == TEXT_META_TASK]


def add_missing_datasets(root: Path, names: Sequence[str]) -> list[str]:
    """Build those of `names` that `root`'s manifest lacks; returns the names added."""
    manifest_path = Path(root) / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{root} has no {MANIFEST}; build the benchmark first (vlmembed build-bench)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not {"datasets", "files", "seed"} <= set(manifest):
        log.warning("%s is not a built-in benchmark's manifest; no dataset added to %s", manifest_path, root)
        return []
    held = {d["name"] for d in manifest["datasets"]}
    todo = [n for n in names if n not in held]
    if not todo:
        return []
    plan = SizePlan(**manifest["plan"]) if "plan" in manifest else SIZES["small"]
    resources = Resources(src.with_paths(None), manifest["seed"], manifest.get("image_size", 64))
    for name in todo:
        spec = BUILTIN_SPECS[name]
        if spec.sources or spec.info.in_domain:
            raise ValueError(f"{name} needs sources or a training split; rebuild the benchmark instead "
                             f"(delete {root} and run `vlmembed build-bench`)")
        ctx = BuildContext(Path(root), name, manifest["seed"], 0, plan.n_eval, resources.side, resources, spec.info)
        built = spec.build(ctx)
        manifest["files"][name] = _write(Path(root), name, built)
        manifest["datasets"].append(_record(spec, built).to_dict())
        log.info("added %s (%d queries) to the benchmark at %s", name, len(built.eval), root)
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)  # readers see the old manifest or the new one, never half of it
    return todo
