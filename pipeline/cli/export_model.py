"""`vlmembed export-model RUN --out DIR`: a run's model as a PEFT / safetensors folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import Command, UserError
from pipeline.cli._common import add_store_argument, store_path


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a stored run's id, or a checkpoint directory holding encoder.json")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created if absent)")
    add_store_argument(parser)


def _run(args: argparse.Namespace) -> int:
    from pipeline.interop.model_export import export_run_model

    try:
        out = export_run_model(store_path(args), args.run, args.out)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0


COMMAND = Command("export-model", "write a run's model as a Hugging Face-shaped folder (PEFT adapter or safetensors)",
                  _add, _run,
                  description="Write a stored run's trained model as a folder PEFT and safetensors tools open: "
                  "adapter_config.json + adapter_model.safetensors for LoRA runs, model.safetensors for full "
                  "fine-tunes, vlmembed.json (what vlmembed.load reads) and a README.md model card with the "
                  "training configuration and the run's scores.")
