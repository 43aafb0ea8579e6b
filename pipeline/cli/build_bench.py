"""`vlmembed build-bench`: write the built-in offline benchmark in MMEB format."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command, UserError

DEFAULT_IMAGE_SIZE = 64  # BuildConfig's default: what builtin:<size> data roots are built with



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None,
                   help="folder to write, replaced atomically if it holds a previous build; unset: "
                        "$VLMEMBED_HOME/bench/<size>-seed<seed>, the folder the data root builtin:<size> reads")
    p.add_argument("--size", choices=("small", "full"), default="small",
                   help="small: ~300 train pairs and ~100 eval queries per dataset (seconds); full: ~3000 and ~500")
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical benchmark")
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="side of every image in pixels")
    p.add_argument("--only", nargs="+", metavar="DATASET", help="build just these datasets")
    p.add_argument("--list", action="store_true", help="list the datasets and their sources, build nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _list() -> int:
    from pipeline.data.builtin.sources import DATA_SOURCES, problem
    from pipeline.data.builtin.specs import BUILTIN_SPECS

    for name, spec in BUILTIN_SPECS.items():
        i = spec.info
        split = "ID " if i.in_domain else "OOD"
        print(f"{name:20s} {i.meta_task:14s} {i.query_modality:>3s} -> {i.target_modality:3s} {split}  "
              f"sources: {', '.join(spec.sources) or '(rendered)'}")
    print()
    for key, s in DATA_SOURCES.items():
        why = problem(s)
        print(f"{key:15s} {'ok' if why is None else 'MISSING'}  {s.description}" + (f"  ({s.install_hint()})" if why else ""))
    return 0


def default_out(args: argparse.Namespace) -> Path:
    """The folder `builtin:<size>` reads; only a whole, standard build may go there."""
    from storage.paths import builtin_bench_dir

    if args.only or args.image_size != DEFAULT_IMAGE_SIZE:
        raise UserError("--only and --image-size build a partial or non-standard benchmark; give --out, "
                        "so that the data root builtin:<size> keeps the standard one")
    return builtin_bench_dir(args.size, args.seed)


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    from pipeline.data.builtin import BuildConfig, build_benchmark
    from pipeline.data.builtin.build import DatasetBuildError, MissingSourceError

    out = args.out if args.out is not None else default_out(args)
    try:
        config = BuildConfig(out=out, size=args.size, seed=args.seed, image_size=args.image_size,
                             only=tuple(args.only) if args.only else None, progress=not args.no_progress)
        result = build_benchmark(config)
    except (ValueError, KeyError, FileExistsError, MissingSourceError, DatasetBuildError) as exc:
        raise UserError(str(exc).strip("'\"")) from exc
    n_train = sum(d.n_train or 0 for d in result.datasets)
    n_eval = sum(d.n_eval or 0 for d in result.datasets)
    print(f"built {len(result.datasets)} datasets ({n_train} train pairs, {n_eval} eval queries) "
          f"in {result.seconds:.1f}s -> {result.out}")
    return 0


COMMAND = Command(
    name="build-bench",
    help="build the offline benchmark (MMEB format) from data that packages ship",
    description="Write the built-in benchmark: classification, VQA and retrieval datasets in MMEB's layout "
                "(train/eval parquet, PNG images, manifest.json) from OpenMoji glyphs, Unicode emoji names, DejaVu "
                "fonts, scikit-learn digits, scikit-image photos, and scenes and garments vlmembed draws, all from "
                "pip packages. Read it back with the MMEB reader.",
    add_arguments=add_arguments,
    run=run,
)
