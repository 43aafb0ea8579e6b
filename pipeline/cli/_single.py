"""Options shared by `vlmembed train` and `vlmembed eval`: one model on one benchmark."""

from __future__ import annotations

import argparse
import json

from pipeline.cli import UserError


def add_model_and_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", required=True, help="model family (see `vlmembed models`)")
    parser.add_argument("--base", default="random:tiny:0",
                        help="checkpoint directory or hub id, or random:<real|tiny>:<seed> for an untrained preset")
    parser.add_argument("--name", default=None, help="model name in the store (default: derived from family and base)")
    parser.add_argument("--variant", default="default", help="ablation label, e.g. bidirectional")
    parser.add_argument("--pooling", choices=["last", "eos", "mean"], default=None, help="override the family's pooling")
    parser.add_argument("--attention", choices=["causal", "bidirectional", "block"], default=None,
                        help="override the family's attention")
    parser.add_argument("--dtype", default="fp32", help="bf16 or fp32")
    parser.add_argument("--data", default="builtin:small",
                        help="MMEB-format folder, or builtin:small / builtin:full (built on first use)")
    parser.add_argument("--image-root", default=None, help="folder or zip of images when not under --data")
    parser.add_argument("--selection", default="builtin", help="builtin, paper32 or mmeb36")
    parser.add_argument("--meta-tasks", nargs="+", default=["classification", "vqa", "retrieval"],
                        help="meta-tasks to run, each its own run; also text (text-to-text retrieval, evaluated only)")
    parser.add_argument("--eval-limit", type=int, default=None, help="queries per eval dataset (default: all)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ...; auto picks cuda when available")
    parser.add_argument("--experiment-name", default="cli", help="experiment name recorded with the runs")


def experiment_from_args(args: argparse.Namespace, train_overrides: dict | None = None):
    from pipeline.experiment import DataEntry, Experiment, ModelEntry
    from pipeline.train.config import TrainConfig

    options = {k: v for k, v in (("pooling", args.pooling), ("attention", args.attention)) if v}
    try:
        entry = ModelEntry(name=args.name or f"{args.family} ({args.base})", family=args.family, base=args.base,
                           dtype=args.dtype, variant=args.variant, options=options)
        train = TrainConfig.from_dict(train_overrides or {})
        return Experiment(name=args.experiment_name, models=(entry,), train=train, meta_tasks=tuple(args.meta_tasks),
                          data=DataEntry(root=args.data, image_root=args.image_root, selection=args.selection,
                                         eval_limit=args.eval_limit),
                          device=args.device)
    except (ValueError, KeyError) as exc:
        raise UserError(str(exc)) from exc


def parse_overrides(pairs: list[str]) -> dict:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, booleans, lists)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--set takes KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
