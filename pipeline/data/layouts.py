"""Where a dataset's rows and images lie in an MMEB download, in each layout it comes in.

Data files of one split of one subset, first match wins:

* ``ROOT/<kind>/<Name>.{parquet,jsonl,json}`` (the built-in benchmark, hand-made folders);
* a subset folder ``ROOT/<Name>/`` or ``ROOT/<kind>/<Name>/`` (``eval/OK-VQA/``, ``train/OK-VQA/``), holding
  - ``<split>/*.parquet``: the Hub's ``refs/convert/parquet`` branch (``OK-VQA/test/0000.parquet``);
  - ``<split>-*.parquet``: the Hub's main branch. MMEB-train keeps ``original-*``,
    ``diverse_instruction-*`` and an older ``train-*`` side by side in one folder, so only the
    named split is read; a folder whose files name no known split is read whole;
* ``ROOT/<Name>.*``.

Images: MMEB-train's rows name ``images/<Subset>/...`` below the download's root, which
``images_zip/<Subset>.zip`` unpacks into ``images/``; MMEB-eval's rows name paths below
``eval_images/``, where ``images.zip`` unpacks. :func:`image_roots` lists the folders and zips
to search, so either the zips or their unpacked folders serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

Kind = Literal["train", "eval"]
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")
DEFAULT_SPLITS: dict[str, str] = {"train": "original", "eval": "test"}
# Folder names that hold one kind's files flat (`ROOT/train/<Name>.parquet`).
KIND_DIRS: dict[str, tuple[str, ...]] = {"train": ("train", "original"), "eval": ("eval", "test")}
# Split names the Hub uses for MMEB's files; a subset folder with any of them is split-aware.
KNOWN_SPLITS = ("original", "diverse_instruction", "train", "test", "eval", "validation")
# Where images unpack below a root: MMEB-train's `images/` (its unzip_file.py), MMEB-eval's
# `eval_images/` (VLM2Vec's README); VLM2Vec's current train config names `MMEB-train/image`.
IMAGE_FOLDERS = ("", "images", "eval_images", "image")
ZIP_FOLDERS = ("", "images_zip", "images")


def _data_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES)


def _split_of(path: Path) -> str | None:
    """The split a Hub file name carries (`original-00000-of-00001.parquet` -> original)."""
    for split in sorted(KNOWN_SPLITS, key=len, reverse=True):
        if path.stem == split or path.stem.startswith(f"{split}-"):
            return split
    return None


def files_in_subset(folder: Path, split: str) -> list[Path]:
    """One split's files in a subset folder (see the module docstring); [] when it has none."""
    converted = _data_files(folder / split)
    if converted:
        return converted
    files = _data_files(folder)
    named = [p for p in files if _split_of(p) == split]
    if named:
        return named
    split_aware = any(_split_of(p) for p in files) or any((folder / s).is_dir() for s in KNOWN_SPLITS)
    return [] if split_aware else files


def splits_in_subset(folder: Path) -> list[str]:
    """The splits a subset folder holds, for an error message that names them."""
    found = {_split_of(p) for p in _data_files(folder)} | {s for s in KNOWN_SPLITS if _data_files(folder / s)}
    return sorted(s for s in found if s)


def subset_folders(root: Path, names: Sequence[str], kind: Kind) -> list[Path]:
    """Existing subset folders for any of `names`: ``ROOT/<Name>/`` then ``ROOT/<kind>/<Name>/``."""
    out = []
    for name in names:
        for folder in (root / name, *(root / d / name for d in KIND_DIRS[kind])):
            if folder.is_dir() and folder not in out:
                out.append(folder)
    return out


def find_data_files(root: Path, names: Sequence[str], kind: Kind, split: str | None = None) -> list[Path]:
    """The files that hold `split` rows of `kind` of a dataset stored under any of `names`."""
    split = split or DEFAULT_SPLITS[kind]
    for name in names:
        for folder in KIND_DIRS[kind]:
            flat = [root / folder / f"{name}{s}" for s in DATA_SUFFIXES if (root / folder / f"{name}{s}").is_file()]
            if flat:
                return flat[:1]
        for sub in subset_folders(root, [name], kind):
            files = files_in_subset(sub, split)
            if files:
                return files
        for s in DATA_SUFFIXES:
            if (root / f"{name}{s}").is_file():
                return [root / f"{name}{s}"]
    return []


def missing_hint(root: Path, names: Sequence[str], kind: Kind, split: str | None = None) -> str:
    """Why `find_data_files` found nothing, in a phrase: the other splits there, or where it looked."""
    split = split or DEFAULT_SPLITS[kind]
    for sub in subset_folders(root, names, kind):
        others = [s for s in splits_in_subset(sub) if s != split]
        if others:
            setting = "train_split" if kind == "train" else "eval_split"
            return (f"{sub} holds split(s) {', '.join(others)} but not {split!r}; "
                    f"set [data] {setting} to one of them")
    name = names[0]
    return (f"looked for {kind}/{name}.parquet|jsonl|json, {name}/{split}-*.parquet, {name}/{split}/*.parquet, "
            f"{kind}/{name}/..., {name}.* under {root}")


def _halves(root: Path) -> list[Path]:
    """The root and its ``train/`` and ``eval/`` halves (MMEB-train and MMEB-eval side by side)."""
    return [root] + [root / d for d in ("train", "eval") if (root / d).is_dir()]


def image_roots(root: Path) -> list[Path]:
    """Folders to search for images named by rows under `root`: the root, its ``train/`` and
    ``eval/`` halves, and each one's unpacked image folders (``images/``, ``eval_images/``)."""
    return [b / f if f else b for b in _halves(root) for f in IMAGE_FOLDERS if (b / f).is_dir()]


def zip_files(roots: Sequence[Path]) -> list[Path]:
    """Zips given as roots or beside them: ``images.zip`` (MMEB-eval), ``images_zip/<Subset>.zip``
    (MMEB-train), also in a root's ``train/`` and ``eval/`` halves."""
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
            continue
        for base in _halves(root):
            for folder in ZIP_FOLDERS:
                if (base / folder).is_dir():
                    found += [z for z in sorted((base / folder).glob("*.zip")) if z not in found]
    return found
