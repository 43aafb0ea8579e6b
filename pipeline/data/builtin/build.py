"""Building the whole built-in benchmark into one folder, atomically.

The folder holds ``train/<name>.parquet``, ``eval/<name>.parquet``,
``images/<name>/{Train,Test}/*.png`` and ``manifest.json`` (each dataset's record, the
build's seed, size and sources). It is written beside the target and renamed into place,
so a failed or interrupted build never leaves a half benchmark where a good one was.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pipeline.data.builtin import sources as src
from pipeline.data.builtin.context import BuildContext, Built, BuiltinSpec, Resources
from pipeline.data.builtin.specs import BUILTIN_SPECS
from pipeline.data.builtin.writer import EVAL_SCHEMA, TRAIN_SCHEMA, write_rows
from pipeline.data.dataset_info import MANIFEST, DatasetInfo

log = logging.getLogger(__name__)

Size = Literal["small", "full"]


@dataclass(frozen=True)
class SizePlan:
    n_train: int  # pairs per in-domain dataset
    n_eval: int  # queries per dataset (fewer where the source has fewer items)
    n_captions: int  # pretraining pairs


SIZES: dict[str, SizePlan] = {"small": SizePlan(300, 100, 1500), "full": SizePlan(3000, 500, 10_000)}
OURS = ("train", "eval", "images", MANIFEST)  # what a build writes, and so may replace


@dataclass(frozen=True)
class BuildConfig:
    out: Path
    size: Size = "small"
    seed: int = 0
    image_size: int = 64
    only: tuple[str, ...] | None = None  # build just these datasets
    source_paths: dict[str, tuple[str, ...]] | None = None  # override where sources live
    progress: bool = True
    plan: SizePlan | None = None  # explicit sizes instead of `size`'s (tests, quick experiments)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {self.size!r}")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size must be within 16..256 px, got {self.image_size}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.plan is not None and min(self.plan.n_train, self.plan.n_eval, self.plan.n_captions) < 1:
            raise ValueError(f"every size in the plan must be positive, got {self.plan}")
        object.__setattr__(self, "out", Path(self.out))


class MissingSourceError(RuntimeError):
    """A source the selected datasets need is not installed: the build stops (a smaller
    benchmark would silently change every score)."""


class DatasetBuildError(RuntimeError):
    """A dataset's builder failed: nothing is swapped in."""


@dataclass
class BuildResult:
    out: Path
    datasets: list[DatasetInfo]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def check_sources(specs: list[BuiltinSpec], sources: dict[str, src.Source]) -> None:
    """Raise MissingSourceError, in one line naming what to install, if a needed source is unusable."""
    needed = sorted({k for spec in specs for k in spec.sources})
    problems = {k: src.problem(sources[k]) for k in needed}
    missing = {k: p for k, p in problems.items() if p}
    if missing:
        hint = " ".join(sorted({sources[k].pip for k in missing}))
        what = "; ".join(f"{sources[k].description} ({p})" for k, p in missing.items())
        raise MissingSourceError(f"the built-in benchmark needs {what}: pip install {hint}")


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if p.name not in OURS]
        if foreign:  # a rebuild replaces the whole folder: never delete what it did not write
            raise FileExistsError(
                f"{out} holds files a benchmark build did not write ({', '.join(sorted(foreign)[:5])}); "
                "choose an empty or new --out folder")


def _specs(only: Sequence[str] | None) -> list[BuiltinSpec]:
    if only:
        unknown = [n for n in only if n not in BUILTIN_SPECS]
        if unknown:
            raise KeyError(f"unknown built-in dataset(s) {unknown}; known: {', '.join(BUILTIN_SPECS)}")
        return [BUILTIN_SPECS[n] for n in only]
    return list(BUILTIN_SPECS.values())


def _record(spec: BuiltinSpec, built: Built) -> DatasetInfo:
    """The spec's record with the sizes this build produced."""
    sizes = {len(r["tgt_text"]) for r in built.eval}
    if len(sizes) > 1:
        raise AssertionError(f"{spec.info.name}: eval rows have different numbers of candidates {sorted(sizes)}")
    n_cand = sizes.pop() if sizes else spec.info.n_candidates
    if spec.info.n_candidates is not None and n_cand != spec.info.n_candidates:
        raise AssertionError(f"{spec.info.name}: built {n_cand} candidates per row, declared {spec.info.n_candidates}")
    n_train = len(built.train) if spec.info.in_domain else 0
    return replace(spec.info, n_train=n_train, n_eval=len(built.eval), n_candidates=n_cand)


def build_benchmark(config: BuildConfig) -> BuildResult:
    """Build every selected dataset, all or nothing: a missing source stops the build before it
    starts, and a failing builder leaves the previous build in place."""
    start = time.perf_counter()
    _check_target(config.out)
    sources = src.with_paths(config.source_paths)
    specs = _specs(config.only)
    check_sources(specs, sources)
    resources = Resources(sources, config.seed, config.image_size)
    plan = config.plan or SIZES[config.size]
    staging = config.out.with_name(config.out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    built_infos, files, timings = [], {}, {}
    try:
        for spec in _progress(specs, config.progress):
            t0 = time.perf_counter()
            pretraining = spec.info.role == "pretraining"
            n_train = plan.n_captions if pretraining else (plan.n_train if spec.info.in_domain else 0)
            ctx = BuildContext(staging, spec.info.name, config.seed, n_train, 0 if pretraining else plan.n_eval,
                               config.image_size, resources, spec.info)
            try:
                built = spec.build(ctx)
                info = _record(spec, built)
            except Exception as exc:
                raise DatasetBuildError(f"building {spec.info.name} failed: {type(exc).__name__}: {exc}") from exc
            files[info.name] = _write(staging, info.name, built)
            built_infos.append(info)
            timings[info.name] = time.perf_counter() - t0
        manifest = _manifest(config, sources, built_infos, files)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _swap_in(staging, config.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(config.out, built_infos, time.perf_counter() - start, timings)


def _progress(specs: list[BuiltinSpec], enabled: bool):
    if not enabled:
        yield from specs
        return
    from tqdm.auto import tqdm

    bar = tqdm(specs, desc="build-bench", unit="dataset")
    for spec in bar:
        bar.set_postfix_str(spec.info.name)
        yield spec


def _write(root: Path, name: str, built: Built) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if built.train:
        write_rows(built.train, root / "train" / f"{name}.parquet", TRAIN_SCHEMA)
        out["train"] = [f"train/{name}.parquet"]
    if built.eval:
        write_rows(built.eval, root / "eval" / f"{name}.parquet", EVAL_SCHEMA)
        out["eval"] = [f"eval/{name}.parquet"]
    return out


def _manifest(config: BuildConfig, sources: dict[str, src.Source], infos: list[DatasetInfo],
              files: dict) -> dict[str, Any]:
    return {
        "format": "MMEB",
        "builder": "vlmembed build-bench",
        "version": 1,
        "seed": config.seed,
        "size": config.size if config.plan is None else "custom",
        "plan": asdict(config.plan or SIZES[config.size]),
        "image_size": config.image_size,
        "sources": {k: {"description": s.description, "pip": s.pip, "licence": s.licence,
                        "version": _version(s.pip)} for k, s in sources.items()},
        "datasets": [i.to_dict() for i in infos],
        "files": files,
    }


def _version(distribution: str) -> str | None:
    """The installed version of a source's package: a manifest records what it was built from."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _swap_in(staging: Path, out: Path) -> None:
    """Replace `out` by `staging` with one rename (the old build is removed after)."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)
