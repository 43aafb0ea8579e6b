"""`vlmembed project`: 2-D maps and alignment metrics of stored runs, for the Alignment tab."""

from __future__ import annotations

import argparse

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path

METHOD_CHOICES = ("umap", "tsne", "pca")


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--run", nargs="+", metavar="ID", default=None,
                        help="run ids to project (default: every run with stored embeddings)")
    parser.add_argument("--method", nargs="+", choices=METHOD_CHOICES, default=["umap"],
                        help="projection methods; queries and targets share one map per method")
    parser.add_argument("--dataset", nargs="+", metavar="NAME", default=None,
                        help="only these datasets (default: every dataset each run was evaluated on)")
    parser.add_argument("--max-pairs", type=int, default=1000,
                        help="query-target pairs per dataset (a seeded sample, the same for every run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sample and of UMAP / t-SNE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run(args: argparse.Namespace) -> int:
    from pipeline.analysis.store_projections import project_store

    n = project_store(store_path(args), run_ids=args.run, methods=args.method, datasets=args.dataset,
                      max_pairs=args.max_pairs, seed=args.seed, progress=not args.no_progress)
    print(f"{n} projections and their alignment metrics stored in {store_path(args)}")
    return 0


COMMAND = Command("project", "project stored embeddings to 2-D and measure image-text alignment", _add, _run,
                  description="For each run with stored embeddings and each dataset it was evaluated on, project "
                  "a seeded sample of query / gold-target pairs (the same pairs for every run) with UMAP, t-SNE or "
                  "PCA, and store the maps and the alignment metrics (paired cosine distance, modality gap, "
                  "alignment, uniformity, i2t / t2i Recall@1) for the dashboard's Alignment tab.")
