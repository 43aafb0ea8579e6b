"""`vlmembed compare RUN_A RUN_B`: is A's difference from B real? Per dataset and per meta-task average."""

from __future__ import annotations

import argparse
import json

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path

_DATASET_COLUMNS = ["dataset", "split", "n", "a", "b", "diff", "lower", "upper", "a_only", "b_only", "p", "p_holm",
                    "significant"]
_AVERAGE_COLUMNS = ["meta_task", "split", "n_datasets", "a", "b", "diff", "lower", "upper", "significant"]


def _add(parser: argparse.ArgumentParser) -> None:
    from pipeline.stats import RESAMPLES, SEED

    add_store_argument(parser)
    parser.add_argument("run_a", metavar="RUN_A", help="run id (see `vlmembed sql \"SELECT run_id FROM runs\"`)")
    parser.add_argument("run_b", metavar="RUN_B", help="the run it is compared with (A - B)")
    parser.add_argument("--metric", default="precision@1", help="precision@1, recall@5, mrr or ndcg@5")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples per dataset")
    parser.add_argument("--seed", type=int, default=SEED, help="seeds every dataset's resampling")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _print(frame, columns: list[str]) -> None:
    from pipeline.cli.sql import _print_table

    columns = [c for c in columns if c in frame.columns]  # an unpaired comparison has no discordant counts
    shown = frame[columns]
    rows = [tuple(round(v, 2) if isinstance(v, float) else v for v in row) for row in shown.itertuples(index=False)]
    _print_table(columns, rows)


def _run(args: argparse.Namespace) -> int:
    from pipeline.stats.landing import compare_runs
    from storage import StoreReader

    reader = StoreReader(store_path(args))
    known = set(reader.runs()["run_id"])
    for run in (args.run_a, args.run_b):
        if run not in known:
            raise UserError(f"no complete run {run!r} in the store; list them with "
                            "`vlmembed sql \"SELECT run_id, model, label FROM runs\"`")
    try:
        comparison, how = compare_runs(reader, args.run_a, args.run_b, args.metric, args.resamples, args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    datasets = comparison.datasets.rename(columns={"p_mcnemar": "p", "p_normal": "p"})
    if args.json:
        print(json.dumps({"run_a": args.run_a, "run_b": args.run_b, "metric": comparison.metric, "method": how,
                          "datasets": json.loads(datasets.to_json(orient="records")),
                          "averages": json.loads(comparison.averages.to_json(orient="records"))}, indent=1))
        return 0
    print(f"A = {args.run_a}\nB = {args.run_b}\n{comparison.metric}, A - B with 95% intervals; {how}.\n")
    _print(datasets, _DATASET_COLUMNS)
    print()
    _print(comparison.averages, _AVERAGE_COLUMNS)
    significant = datasets[datasets["significant"]]
    print(f"\n{len(significant)} of {len(datasets)} dataset differences survive Holm at 0.05"
          + (f": {', '.join(significant['dataset'])}" if len(significant) else ""))
    return 0


COMMAND = Command("compare", "is the difference between two runs real? (paired bootstrap, McNemar, Holm)", _add,
                  _run, description="Compare RUN_A with RUN_B on the queries both ranked: per dataset a paired "
                  "bootstrap interval of A - B and McNemar's exact test on Precision@1 (Holm-corrected across "
                  "the datasets), per meta-task average a bootstrap interval. Runs without per-query ranks (the "
                  "paper's) are compared unpaired, from each dataset's eval size n; the output says which.")
