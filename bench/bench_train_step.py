"""Memory and speed of a GradCache training step at global batch 256 vs a step of one chunk.

Each measurement runs in a fresh process so peak memory is its own: on the GPU
`torch.cuda.max_memory_allocated`, on the CPU the process's peak resident set size.
The target is GradCache peak <= 1.3x the peak of a plain step over one chunk. A process's
peak also holds Python, torch and the model (~470 MB on the CPU for the tiny presets), which
makes any ratio of peaks look close to 1; so each is also reported above a batch-1 step's peak
(`ratio_above_batch1` = (GradCache - batch 1) / (one chunk - batch 1)): what the step itself adds.

    python bench/bench_train_step.py                                  # tiny presets on the CPU
    python bench/bench_train_step.py --size real --device cuda --families llava_next lavida
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.3


def _pairs(n: int, image_side: int):
    from bench.bench_encoders import photo
    from pipeline.models import Example
    from pipeline.train.trainer import ContrastivePair

    return [ContrastivePair(
        Example("Represent the given image with the following question:", f"What is in picture number {i}?",
                photo(i, (image_side, image_side))),
        Example("", f"answer {i}: a red bus on a street"),
    ) for i in range(n)]


def one_step(family: str, size: str, device: str, batch: int, chunk: int, image_side: int,
             checkpointing: bool) -> dict:
    """Build, wrap with LoRA r=8, run one optimizer step; report time and peak memory."""
    from pipeline.models.lora import LoraSettings, apply_lora
    from pipeline.models.registry import get_family
    from pipeline.train.gradcache import full_batch_step, gradcache_step
    from pipeline.train.loss import InfoNCELoss
    from pipeline.train.trainer import enable_gradient_checkpointing

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.set_default_dtype(dtype)
    with torch.device(device):
        encoder = get_family(family).build(size=size, seed=0)  # type: ignore[arg-type]
    torch.set_default_dtype(torch.float32)
    encoder.to(device)
    apply_lora(encoder, LoraSettings(r=8))
    if checkpointing:
        enable_gradient_checkpointing(encoder)
    encoder.train()
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=1e-4)
    pairs = _pairs(batch, image_side)
    loss_fn = InfoNCELoss(0.02, gather=False)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tick = time.perf_counter()
    if chunk < batch:
        split = [pairs[i : i + chunk] for i in range(0, batch, chunk)]
        terms = gradcache_step(encoder, [encoder.collate([p.query for p in c]) for c in split],
                               [encoder.collate([p.positive for p in c]) for c in split], [], loss_fn)
    else:
        terms = full_batch_step(encoder, encoder.collate([p.query for p in pairs]),
                                encoder.collate([p.positive for p in pairs]), None, loss_fn)
    optimizer.step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - tick
    peak = (torch.cuda.max_memory_allocated() if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"family": family, "size": size, "device": device, "batch": batch, "chunk": min(chunk, batch),
            "seconds": seconds, "samples_per_s": batch / seconds, "peak_bytes": int(peak),
            "loss": float(terms["loss"]), "gradient_checkpointing": checkpointing}


def run_isolated(**kwargs) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.bench_train_step import one_step; "
            f"print('RESULT ' + json.dumps(one_step(**{kwargs!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed ({kwargs}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["real", "tiny"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--families", nargs="*", default=["llava_next", "lavida"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--image-side", type=int, default=64)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--with-full-batch", action="store_true", help="also measure batch 256 without GradCache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_step.json")
    args = parser.parse_args()
    rows = []
    for family in args.families:
        common = dict(family=family, size=args.size, device=args.device, image_side=args.image_side,
                      checkpointing=args.gradient_checkpointing)
        baseline = run_isolated(batch=1, chunk=1, **common)
        chunk_only = run_isolated(batch=args.chunk, chunk=args.chunk, **common)
        cached = run_isolated(batch=args.batch, chunk=args.chunk, **common)
        ratio = cached["peak_bytes"] / chunk_only["peak_bytes"]
        above = ((cached["peak_bytes"] - baseline["peak_bytes"])
                 / max(chunk_only["peak_bytes"] - baseline["peak_bytes"], 1))
        row = {"family": family, "batch1": baseline, "one_chunk": chunk_only, "gradcache": cached,
               "peak_ratio": ratio, "ratio_above_batch1": above}
        if args.with_full_batch:  # what GradCache saves: the same batch in one graph
            row["full_batch"] = run_isolated(batch=args.batch, chunk=args.batch, **common)
            row["full_batch_ratio"] = row["full_batch"]["peak_bytes"] / chunk_only["peak_bytes"]
        rows.append(row)
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"{family:12s} chunk {args.chunk}: {chunk_only['peak_bytes'] / 2**30:7.2f} GiB  "
              f"GradCache batch {args.batch}: {cached['peak_bytes'] / 2**30:7.2f} GiB  "
              f"ratio {ratio:.2f} ({verdict} target <= {TARGET_RATIO}), {above:.2f} above batch 1  "
              f"{cached['samples_per_s']:.1f} samples/s at batch {args.batch}"
              + (f"; without GradCache {row['full_batch_ratio']:.2f}x" if "full_batch" in row else ""), flush=True)
    meta = {"machine": platform.node(), "torch": torch.__version__, "size": args.size, "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
            "memory": "cuda max_memory_allocated" if args.device.startswith("cuda") else "peak RSS of a fresh process"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
