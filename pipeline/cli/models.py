"""`vlmembed models`: the registered families and the size of their real configurations."""

from __future__ import annotations

import argparse
import json

from pipeline.cli import Command


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")


def real_parameter_count(family: str) -> int:
    """Parameters of the real-size architecture, counted on the meta device (no memory used)."""
    import torch

    from pipeline.models.registry import get_family

    with torch.device("meta"):
        encoder = get_family(family).build(size="real")
    return sum(p.numel() for p in encoder.parameters())


def _run(args: argparse.Namespace) -> int:
    from pipeline.models import all_specs

    rows = [{"name": s.name, "display_name": s.display_name, "paradigm": s.paradigm, "attention": s.attention,
             "pooling": s.pooling, "params": real_parameter_count(s.name), "published_params": s.published_params,
             "hub_id": s.hub_id, "vision_encoder": s.vision_encoder, "backbone": s.backbone}
            for s in all_specs()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':12s} {'paradigm':15s} {'attention':14s} {'pooling':7s} {'params':>8s}  model (hub id)")
    for r in rows:
        print(f"{r['name']:12s} {r['paradigm']:15s} {r['attention']:14s} {r['pooling']:7s} "
              f"{r['params'] / 1e9:7.2f}B  {r['display_name']} ({r['hub_id']})")
    return 0


COMMAND = Command("models", "list the model families with paradigm, attention, pooling and real-size parameters",
                  _add, _run)
