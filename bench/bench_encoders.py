"""Forward throughput and peak memory of every family's encoder, side by side.

On a GPU: the real-size architectures with random weights in bf16, batch 8 of typical
MMEB inputs (an instruction, a short text, one 640x480 photo for most examples).
On the CPU (no GPU here): the tiny presets, as a smoke run of the same code path.

    python bench/bench_encoders.py --size real --device cuda --dtype bf16
    python bench/bench_encoders.py --size tiny --device cpu --dtype fp32
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models import Example, family_names  # noqa: E402
from pipeline.models.registry import get_family, parse_dtype  # noqa: E402

INSTRUCTIONS = ["Represent the given image for classification.",
                "Represent the given image with the following question:",
                "Find an image caption describing the given everyday image."]
TEXT = "What is the man holding in his left hand while standing next to the red bus on the street?"


def photo(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def typical_batch(batch: int, image_size: tuple[int, int]) -> list[Example]:
    """A mix like an MMEB batch: image+question, image only, text only."""
    out = []
    for i in range(batch):
        kind = i % 4
        image = photo(i, image_size) if kind != 3 else None
        text = TEXT if kind in (0, 3) else (None if kind == 1 else "a photo of a dog")
        out.append(Example(INSTRUCTIONS[i % len(INSTRUCTIONS)], text, image))
    return out


def measure(family: str, size: str, device: str, dtype: torch.dtype, batch: int, repeats: int,
            image_size: tuple[int, int], peak_tflops: float | None = None) -> dict:
    cls = get_family(family)
    cuda = device.startswith("cuda")
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    started = time.perf_counter()
    try:
        with torch.device(device):
            encoder = cls.build(size=size, seed=0)  # type: ignore[arg-type]
    finally:
        torch.set_default_dtype(default)
    encoder = encoder.to(device).eval()
    build_s = time.perf_counter() - started
    examples = typical_batch(batch, image_size)
    inputs = encoder.collate(examples)
    tokens = int(inputs["attention_mask"].sum())
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        encoder(inputs)  # warm-up (kernels, caches)
        if cuda:
            torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            out = encoder(inputs)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - tick)
    median = float(np.median(times))
    result = {
        "family": family, "size": size, "device": device, "dtype": str(dtype).replace("torch.", ""),
        "batch": batch, "tokens": tokens, "max_length": int(inputs["attention_mask"].shape[1]),
        "params": sum(p.numel() for p in encoder.parameters()),
        "forward_s_median": median, "tokens_per_s": tokens / median, "examples_per_s": batch / median,
        "build_s": build_s, "embedding_dim": int(out.shape[1]),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "finite": bool(torch.isfinite(out).all()),
    }
    if peak_tflops:  # model FLOPs utilisation: a forward is ~2 FLOPs per parameter per token
        result["mfu"] = 2 * result["params"] * result["tokens_per_s"] / (peak_tflops * 1e12)
    del encoder, inputs, out
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["real", "tiny"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="bf16 or fp32 (default: bf16 on cuda, fp32 on cpu)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image-size", default="640x480")
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encoders.json")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak, to report MFU (H200: 989)")
    args = parser.parse_args()
    dtype = parse_dtype(args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32"))
    image_size = tuple(int(v) for v in args.image_size.split("x"))
    results = []
    for family in args.families or family_names():
        r = measure(family, args.size, args.device, dtype, args.batch, args.repeats, image_size,  # type: ignore[arg-type]
                    args.peak_tflops)
        results.append(r)
        mem = f"{r['peak_memory_gib']:.1f} GiB" if r["peak_memory_gib"] is not None else "n/a"
        print(f"{family:12s} params {r['params'] / 1e9:6.2f}B  tokens {r['tokens']:6d}  "
              f"{r['tokens_per_s']:10.0f} tok/s  {r['examples_per_s']:7.1f} ex/s  peak {mem}  finite={r['finite']}"
              + (f"  MFU {r['mfu']:.1%}" if "mfu" in r else ""),
              flush=True)
    best = max(r["tokens_per_s"] for r in results)
    for r in results:
        print(f"  {r['family']:12s} throughput ratio to fastest: {r['tokens_per_s'] / best:.2f}")
    meta = {"machine": platform.node(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
