"""The one MMEB-format reader: real MMEB and the built-in benchmark come in through here.

Train rows: ``qry``, ``qry_image_path``, ``pos_text``, ``pos_image_path`` and optional
``neg_text`` / ``neg_image_path`` (a string or a list). Eval rows: ``qry_text``,
``qry_img_path``, ``tgt_text[]``, ``tgt_img_path[]`` with the gold candidate first (and
MMEB-V2's optional ``qry_inst`` / ``tgt_inst``). Files are parquet, JSONL or JSON, found in
each layout of an MMEB download (`pipeline.data.layouts`: the Hub's main branch, its
``refs/convert/parquet`` branch, ``eval/<Subset>/`` and ``train/<Subset>/`` folders), one split
only (MMEB-train: ``original`` unless told otherwise); a ``manifest.json`` (written by the
built-in builder) names files and metadata directly. With ``hub=`` the rows come through
`datasets.load_dataset`, which reads its own cache when ``HF_DATASETS_OFFLINE=1``. Images are found through an
:class:`~pipeline.data.imagestore.ImageStore` (folders and zips) and decoded only when an
example is materialised.

Bad rows never stop a read: missing, empty or corrupt images and malformed rows are
counted per dataset in :attr:`MMEBReader.report`, with a few example paths, and skipped.
"""

from __future__ import annotations

import json
import logging
import os
import random
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.data.dataset_info import MANIFEST, DatasetInfo
from pipeline.data.images import ImageError
from pipeline.data.imagestore import ImageStore
from pipeline.data.instructions import KNOWN_TARGET_INSTRUCTIONS, split_instruction, strip_placeholder
from pipeline.data.layouts import DEFAULT_SPLITS, Kind, find_data_files, missing_hint
from pipeline.data.mmeb_catalog import MMEB_DATASETS, TRAIN_CAP, mmeb_info
from pipeline.data.records import EvalRow, ItemRef, TrainPair
from pipeline.data.report import ReadReport, image_problem

log = logging.getLogger(__name__)

ImageCheck = Literal["none", "exists", "decode"]


class MMEBFormatError(ValueError):
    """A data file or folder that cannot be read as MMEB format at all."""


class DatasetAbsent(FileNotFoundError):
    """A dataset (or one split of it) that this download does not hold; a run skips it."""


class _Malformed(ValueError):
    """One row that does not fit the format; counted and skipped."""


def stable_seed(seed: int, name: str) -> int:
    """A per-dataset seed that is the same on every machine and Python run."""
    return zlib.crc32(f"{seed}:{name}".encode())


# -- files ------------------------------------------------------------------------------
def load_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(index, row) for every row of a parquet / JSONL / JSON file; a row that is not valid
    JSON comes back as a `_Malformed` instance in place of the row."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a broken file
            raise MMEBFormatError(f"{path}: not a readable parquet file ({exc}); re-download or rebuild it") from exc
        yield from enumerate(table.to_pylist())
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    yield i, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield i, _Malformed(f"invalid JSON ({exc.msg})")
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MMEBFormatError(f"{path}: invalid JSON ({exc}); fix the file or write JSONL") from exc
        if isinstance(data, dict):
            data = data.get("rows", data.get("data"))
        if not isinstance(data, list):
            raise MMEBFormatError(f"{path}: expected a JSON list of rows (or {{'rows': [...]}})")
        yield from enumerate(data)


# -- rows -------------------------------------------------------------------------------
def _field(row: dict, key: str, types: tuple[type, ...], required: bool = True) -> Any:
    if key not in row:
        if required:
            raise _Malformed(f"missing field '{key}'")
        return None
    value = row[key]
    if value is not None and not isinstance(value, types):
        names = "/".join(t.__name__ for t in types)
        raise _Malformed(f"wrong type for '{key}' ({type(value).__name__}, expected {names})")
    return value


@dataclass(frozen=True)
class _Sides:
    """How to split one dataset's texts, and where its images are."""

    query_instructions: tuple[str, ...]
    target_instructions: tuple[str, ...]
    store: ImageStore | None

    def item(self, raw: str | None, image: str | None, target: bool, what: str,
             instruction: str | None = None) -> ItemRef:
        text, _ = strip_placeholder(raw or "")
        if instruction is None:
            known = self.target_instructions if target else self.query_instructions
            instruction, text = split_instruction(text, known)
        image = image.strip() if isinstance(image, str) and image.strip() else None
        if not text and image is None:
            raise _Malformed(f"{what} has no text and no image")
        return ItemRef(instruction=instruction, text=text or None, image=image, store=self.store)


def _as_list(value: Any, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise _Malformed(f"wrong type for '{key}' ({type(value).__name__}, expected str or list)")


def parse_train_row(row: Any, sides: _Sides, dataset: str, index: int) -> TrainPair:
    if not isinstance(row, dict):
        raise _Malformed(f"row is a {type(row).__name__}, not a record")
    qry = _field(row, "qry", (str,))
    qry_img = _field(row, "qry_image_path", (str,))
    pos = _field(row, "pos_text", (str,))
    pos_img = _field(row, "pos_image_path", (str,))
    neg_texts = _as_list(row.get("neg_text"), "neg_text")
    neg_imgs = _as_list(row.get("neg_image_path"), "neg_image_path")
    if neg_texts and neg_imgs and len(neg_texts) != len(neg_imgs):
        raise _Malformed("neg_text and neg_image_path differ in length")
    if not all(isinstance(v, (str, type(None))) for v in [*neg_texts, *neg_imgs]):
        raise _Malformed("wrong type inside neg_text / neg_image_path (expected strings)")
    negatives = []
    for i in range(max(len(neg_texts), len(neg_imgs))):
        text = neg_texts[i] if neg_texts else None
        img = neg_imgs[i] if neg_imgs else None
        if not (text or "").strip() and not (img or "").strip():
            continue  # MMEB writes "" where a row has no hard negative
        negatives.append(sides.item(text, img, target=True, what="a negative"))
    return TrainPair(
        dataset=dataset, index=index,
        query=sides.item(qry, qry_img, target=False, what="the query"),
        positive=sides.item(pos, pos_img, target=True, what="the positive"),
        negatives=tuple(negatives),
    )


def parse_eval_row(row: Any, sides: _Sides, dataset: str, index: int) -> EvalRow:
    if not isinstance(row, dict):
        raise _Malformed(f"row is a {type(row).__name__}, not a record")
    qry = _field(row, "qry_text", (str,))
    qry_img = _field(row, "qry_img_path", (str,))
    texts = _field(row, "tgt_text", (list, tuple))
    imgs = _field(row, "tgt_img_path", (list, tuple))
    if not texts:
        raise _Malformed("empty candidate list")
    imgs = list(imgs) if imgs is not None else [None] * len(texts)
    if len(imgs) != len(texts):
        raise _Malformed(f"tgt_text has {len(texts)} candidates but tgt_img_path {len(imgs)}")
    if not all(isinstance(v, (str, type(None))) for v in [*texts, *imgs]):
        raise _Malformed("wrong type inside tgt_text / tgt_img_path (expected strings)")
    q_inst = _instruction_field(row, "qry_inst")
    t_inst = _instruction_field(row, "tgt_inst")
    query = sides.item(qry, qry_img, target=False, what="the query", instruction=q_inst)
    candidates = tuple(
        sides.item(t, p, target=True, what=f"candidate {i}", instruction=t_inst) for i, (t, p) in enumerate(zip(texts, imgs, strict=True))
    )
    return EvalRow(dataset=dataset, index=index, query=query, candidates=candidates)


def _instruction_field(row: dict, key: str) -> str | None:
    """MMEB-V2 stores instructions apart (`qry_inst`); None when the row does not."""
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if not isinstance(value, str):
        raise _Malformed(f"wrong type for '{key}' ({type(value).__name__}, expected str)")
    return strip_placeholder(value)[0]


# -- the reader -------------------------------------------------------------------------
class MMEBReader:
    """Reads MMEB-format datasets from a local folder (or the hub), skipping what is broken.

    ``root``: folder of data files (and ``manifest.json`` for the built-in benchmark).
    ``image_root``: folder(s) or zip(s) holding the images; defaults to ``root``.
    ``hub`` / ``train_hub``: hub dataset ids (``TIGER-Lab/MMEB-eval``, ``TIGER-Lab/MMEB-train``)
    whose eval / train rows come through `datasets.load_dataset` (its cache, offline, when
    ``HF_DATASETS_OFFLINE=1``) instead of local files; without a ``root``, ``train_hub``
    defaults to ``hub``.
    ``train_split`` / ``eval_split``: the one split read (MMEB-train: ``original``).
    ``infos``: records of datasets outside the catalogs (declared in an experiment).
    """

    def __init__(self, root: str | os.PathLike[str] | None, image_root: str | os.PathLike[str]
                 | Sequence[str | os.PathLike[str]] | None = None, hub: str | None = None,
                 train_hub: str | None = None, train_split: str = DEFAULT_SPLITS["train"],
                 eval_split: str = DEFAULT_SPLITS["eval"], infos: Sequence[DatasetInfo] = ()) -> None:
        if root is None and hub is None and train_hub is None:
            raise ValueError("give a local data folder (root) or a hub dataset id (hub)")
        self.root = Path(root) if root is not None else None
        if self.root is not None and not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such data folder; build one with `vlmembed build-bench` or download MMEB")
        # Without a local folder the eval hub id serves training rows too (one repo holding both).
        self.hubs: dict[str, str | None] = {"eval": hub, "train": train_hub or (hub if root is None else None)}
        self.splits: dict[str, str] = {"train": train_split, "eval": eval_split}
        self.extra_infos = {d.name: d for d in infos}
        roots = image_root if isinstance(image_root, (list, tuple)) else [image_root or self.root]
        roots = [r for r in roots if r is not None]
        self.store = ImageStore(roots) if roots else None
        self.manifest = self._load_manifest()
        self.report = ReadReport()
        self._image_checks: dict[tuple[str, str], str | None] = {}
        self._hub_opened: dict[tuple[str, str], Iterable[dict]] = {}

    def _load_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST if self.root is not None else None
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MMEBFormatError(f"{path}: invalid JSON ({exc}); rebuild with `vlmembed build-bench`") from exc

    # -- metadata -----------------------------------------------------------------------
    def datasets(self, include_pretraining: bool = False) -> list[DatasetInfo]:
        """The datasets this root holds: from its manifest, or the catalog (MMEB's and any
        declared ones) for the files found."""
        if self.manifest is not None:
            infos = [DatasetInfo.from_dict(d) for d in self.manifest.get("datasets", [])]
            return [d for d in infos if include_pretraining or d.role == "benchmark"]
        known = [*MMEB_DATASETS.values(), *self.extra_infos.values()]
        return [d for d in known if self.has(d.name, "eval") or (d.has_train and self.has(d.name, "train"))]

    def info(self, name: str) -> DatasetInfo | None:
        """The dataset's record, or None for a dataset neither the manifest, the declared
        datasets nor MMEB knows."""
        if name in self.extra_infos:
            return self.extra_infos[name]
        if self.manifest is not None:
            for d in self.manifest.get("datasets", []):
                if d.get("name") == name:
                    return DatasetInfo.from_dict(d)
        try:
            return mmeb_info(name)
        except KeyError:
            return None

    def missing(self, name: str, kind: Kind) -> str | None:
        """Why `kind` rows of `name` are not here (one line), or None when they are. Local files
        are only looked for; a hub subset is opened (memory-mapped, kept for the read)."""
        try:
            if self.hubs[kind] is not None:
                self._hub_rows(name, self.info(name), kind)
            else:
                self._files(name, self.info(name), kind)
        except DatasetAbsent as exc:
            return str(exc)
        return None

    def has(self, name: str, kind: Kind) -> bool:
        return self.missing(name, kind) is None

    def _sides(self, info: DatasetInfo | None) -> _Sides:
        if info is None:  # custom data: any instruction MMEB uses may lead a text
            queries = tuple(d.instruction for d in MMEB_DATASETS.values())
            return _Sides(queries + KNOWN_TARGET_INSTRUCTIONS, KNOWN_TARGET_INSTRUCTIONS, self.store)
        targets = (info.target_instruction, *KNOWN_TARGET_INSTRUCTIONS) if info.target_instruction else KNOWN_TARGET_INSTRUCTIONS
        return _Sides((info.instruction,), tuple(targets), self.store)

    # -- rows ---------------------------------------------------------------------------
    def _files(self, name: str, info: DatasetInfo | None, kind: Kind) -> list[Path]:
        if self.root is None:
            raise DatasetAbsent(f"no {kind} rows for {name!r}: no local data folder and no hub id for {kind} data")
        if self.manifest is not None:
            listed = self.manifest.get("files", {}).get(name, {}).get(kind, [])
            if listed:
                return [self.root / p for p in listed]
        names = info.subset_names if info is not None else (name,)
        files = find_data_files(self.root, names, kind, self.splits[kind])
        if not files:
            raise DatasetAbsent(f"no {kind} files for {name!r}: {missing_hint(self.root, names, kind, self.splits[kind])}")
        return files

    def _raw_rows(self, name: str, info: DatasetInfo | None, kind: Kind) -> Iterator[tuple[int, Any]]:
        if self.hubs[kind] is not None:
            yield from enumerate(self._hub_rows(name, info, kind))
            return
        offset = 0
        for path in self._files(name, info, kind):
            last = -1
            for i, row in load_rows(path):
                yield offset + i, row
                last = i
            offset += last + 1

    def _hub_rows(self, name: str, info: DatasetInfo | None, kind: Kind) -> Iterable[dict]:
        from datasets import load_dataset  # optional path: needs the hub or, offline, its cache

        hub, split = self.hubs[kind], self.splits[kind]
        subset = (info.train_subset or info.name) if (info is not None and kind == "train") else name
        if (kind, subset) in self._hub_opened:
            return self._hub_opened[(kind, subset)]
        try:
            rows = self._hub_opened[(kind, subset)] = load_dataset(hub, subset, split=split)
            return rows
        except Exception as exc:  # datasets raises many types for "not there" (offline, no config, no split)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetAbsent(f"no {kind} rows for {name!r} from {hub} (subset {subset}, split {split}): "
                                f"{first}; download it or drop it from the selection") from exc

    def _parse(self, name: str, kind: Kind) -> tuple[list, Any]:
        info = self.info(name)
        sides = self._sides(info)
        parse = parse_train_row if kind == "train" else parse_eval_row
        report = self.report.for_dataset(name, kind)
        parsed = []
        for index, row in self._raw_rows(name, info, kind):
            try:
                if isinstance(row, _Malformed):
                    raise row
                parsed.append(parse(row, sides, name, index))
            except _Malformed as exc:
                report.rows_read += 1
                report.skip(f"malformed row: {exc}", f"row {index}")
        return parsed, report

    def _image_problem(self, key: str, mode: ImageCheck) -> str | None:
        cached = self._image_checks.get((key, mode), "unchecked")
        if cached != "unchecked":
            return cached
        problem = None
        if self.store is None:
            problem = "missing image"
        elif mode == "exists":
            size = self.store.size(key)
            problem = "missing image" if size is None else ("empty image" if size == 0 else None)
        elif mode == "decode":
            try:
                self.store.open(key)
            except ImageError as exc:
                problem = image_problem(str(exc))
        self._image_checks[(key, mode)] = problem
        return problem

    def _row_ok(self, row: TrainPair | EvalRow, mode: ImageCheck, report: Any) -> bool:
        report.rows_read += 1
        if mode != "none":
            for item in row.items():
                if item.image is not None:
                    problem = self._image_problem(item.image, mode)
                    if problem:
                        report.skip(problem, item.image)
                        return False
        report.rows_kept += 1
        return True

    def train(self, name: str, cap: int | None = TRAIN_CAP, seed: int = 0, shuffle: bool = True,
              check_images: ImageCheck = "exists") -> list[TrainPair]:
        """Training pairs in a seeded order, at most `cap` of them (a seeded sample).

        `check_images="exists"` skips rows whose image files are missing or empty without
        decoding anything; "decode" also catches corrupt files (slower); "none" checks nothing.
        """
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be positive or None, got {cap}")
        parsed, report = self._parse(name, "train")
        if shuffle:
            random.Random(stable_seed(seed, name)).shuffle(parsed)
        kept: list[TrainPair] = []
        for pair in parsed:
            if cap is not None and len(kept) >= cap:
                break
            if self._row_ok(pair, check_images, report):
                kept.append(pair)
        self._log(name, "train")
        return kept

    def eval(self, name: str, limit: int | None = None, seed: int = 0,
             check_images: ImageCheck = "decode") -> list[EvalRow]:
        """Evaluation rows in file order; with `limit`, a seeded sample of that many (still in
        file order). Images are decoded once each by default, so a broken candidate drops
        its row before scoring starts rather than midway."""
        parsed, report = self._parse(name, "eval")
        kept = [row for row in parsed if self._row_ok(row, check_images, report)]
        if limit is not None and len(kept) > limit:
            chosen = sorted(random.Random(stable_seed(seed, name)).sample(range(len(kept)), limit))
            kept = [kept[i] for i in chosen]
        self._log(name, "eval")
        return kept

    def _log(self, name: str, kind: str) -> None:
        r = self.report.for_dataset(name, kind)
        if r.skipped:
            log.warning("%s", r.summary())
        else:
            log.debug("%s", r.summary())


def materialise(pairs: Iterable[TrainPair], report: ReadReport | None = None) -> Iterator[tuple[TrainPair, Any, Any, list]]:
    """(pair, query Example, positive Example, negative Examples) for each pair whose images
    decode; a pair with a bad image is counted in `report` and skipped."""
    for pair in pairs:
        try:
            q, p, negs = pair.examples()
        except ImageError as exc:
            if report is not None:
                r = report.for_dataset(pair.dataset, "train")
                r.rows_kept -= 1
                r.skip(image_problem(str(exc)) + " (at load)", str(exc).split(":")[0])
            log.warning("skipping %s row %d: %s", pair.dataset, pair.index, exc)
            continue
        yield pair, q, p, negs
