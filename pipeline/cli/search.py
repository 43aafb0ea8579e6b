"""`vlmembed search`: live retrieval from the shell, every model's top-k side by side."""

from __future__ import annotations

import argparse
import json

from pipeline.cli import Command
from pipeline.cli._common import add_store_argument, store_path
from storage.vocabulary import META_TASKS


def _add(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--image", metavar="FILE", default=None, help="query image")
    parser.add_argument("--text", metavar="T", default=None, help="query text")
    parser.add_argument("--instruction", default=None,
                        help="instruction for the query (default: the pool dataset's own instruction, if any)")
    parser.add_argument("--dataset", metavar="NAME", default=None,
                        help="candidate pool: one dataset's candidates (default: every stored candidate)")
    runs = parser.add_mutually_exclusive_group()  # --task chooses the runs; --run names them
    runs.add_argument("--task", choices=META_TASKS, default=None,
                      help="search with each model's final run trained on this meta-task (or on all of them); "
                           "default: the --dataset pool's meta-task, or with no pool each model's run trained on "
                           "all tasks, else retrieval, else the first alphabetically")
    runs.add_argument("--run", nargs="+", metavar="ID", default=None,
                      help="runs to search with, instead of the ones --task chooses")
    parser.add_argument("--k", type=int, default=10, help="results per model")
    parser.add_argument("--device", default=None, help="encoder device (default $VLMEMBED_DEVICE or cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _print_result(result) -> None:
    print(f"query: {result.query}  pool: {result.pool}")
    for g in result.gold:
        print(f"  stored query of {g['dataset']} row {g['row_idx']}; gold item {g['gold_item']}")
    for answer in result.answers:
        print(f"\n== {answer.run.title}  ({answer.run.run_id}, {answer.seconds * 1000:.0f} ms)")
        if not answer.ok:
            print(f"   {answer.error}")
            continue
        if answer.gold_rank is not None:
            print(f"   gold item at rank {answer.gold_rank}")
        for hit in answer.hits:
            shown = hit_label(hit)
            print(f"   {hit.rank:>3}  {hit.score:+.4f}  {'*' if hit.gold else ' '} {hit.item_id}  {shown[:70]}")


def hit_label(hit) -> str:
    """What a hit is, readably: its text, else its image file, else its modality."""
    if hit.text:
        return hit.text
    return f"[{hit.modality}] {hit.image_path}" if hit.image_path else f"[{hit.modality}]"


def _run(args: argparse.Namespace) -> int:
    from pipeline.search import Query, SearchEngine
    from storage import StoreReader

    engine = SearchEngine(StoreReader(store_path(args)), device=args.device)
    instruction = args.instruction if args.instruction is not None else engine.instruction_of(args.dataset)
    query = Query.build(text=args.text, instruction=instruction, image=args.image)
    result = engine.search(query, run_ids=args.run, dataset=args.dataset, k=args.k, task=args.task)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        _print_result(result)
    return 0 if any(a.ok for a in result.answers) else 1


COMMAND = Command("search", "search stored candidates with a live image and/or text query", _add, _run,
                  description="Encode an image and/or text with each model's own encoder (rebuilt from its run's "
                  "checkpoint, once per process) and print every model's top-k among the stored candidates of "
                  "a dataset or of the whole store, with scores and the gold item when the query is a stored one.")
