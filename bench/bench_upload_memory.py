"""Peak memory of one live-search upload: an 88-megapixel PNG of a few hundred KB.

    python bench/bench_upload_memory.py [--concurrent 3] [--megapixels 88] [--label after]

Each case runs in a fresh child process, which imports the search code, notes its RSS,
then does what the engine does with an upload before any encoder sees it (check and open
the file, `Query.build`; the stored-query key, `Query.content_key`), one upload or
`--concurrent` at once in threads. The child reports its peak RSS (VmHWM). Beside the
big PNG, the same is measured for a 64x64 PNG (`control`: what the imports alone peak at)
and for a 39 MP PNG (`largest_accepted`, just under the 40 MP limit). Results go to
bench/results/upload_memory.json under `--label`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.labelled import save_labelled  # noqa: E402 - after the path that finds it

RESULTS = ROOT / "bench" / "results" / "upload_memory.json"

CHILD = """
import json, sys, threading
from pipeline.search.query import Query, QueryError
def status_mb(key):
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's RSS at fork time
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024
base = status_mb("VmRSS")
outcomes = []
def one():
    try:
        Query.build(text="a photo", image=sys.argv[1]).content_key()
        outcomes.append("searched")
    except QueryError as exc:
        outcomes.append("refused: " + str(exc))
threads = [threading.Thread(target=one) for _ in range(int(sys.argv[2]))]
for t in threads: t.start()
for t in threads: t.join()
peak = status_mb("VmHWM")
print(json.dumps({"rss_after_imports_mb": round(base), "peak_rss_mb": round(peak),
                  "growth_mb": round(peak - base), "outcomes": sorted(set(outcomes))}))
"""


def write_big_png(path: Path, megapixels: float) -> Path:
    """A mostly flat RGB PNG (compresses to a few hundred KB) of about `megapixels` MP."""
    from PIL import Image, ImageDraw

    width = min(11_000, int((megapixels * 1e6) ** 0.5))
    height = int(megapixels * 1e6 / width)
    image = Image.new("RGB", (width, height), (200, 220, 240))
    ImageDraw.Draw(image).rectangle([1000, 1000, 4000, 3000], fill=(200, 40, 40))
    image.save(path, format="PNG")
    return path


def measure(image: Path, concurrent: int, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(image), str(concurrent)], env=env, check=True, cwd=root,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrent", type=int, default=3)
    parser.add_argument("--megapixels", type=float, default=88.0)
    parser.add_argument("--label", default="current", help="key of this measurement in the results file")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose code is measured (e.g. `git archive` of an older commit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {}
        for case, megapixels in (("control", 64 * 64 / 1e6), ("big", args.megapixels), ("largest_accepted", 39.0)):
            image = write_big_png(Path(tmp) / f"{case}.png", megapixels)
            result[case] = {"megapixels": round(megapixels, 3), "file_kb": round(image.stat().st_size / 1024),
                            "one": measure(image, 1, args.root),
                            f"concurrent_{args.concurrent}": measure(image, args.concurrent, args.root)}
    result.update(cpu_count=os.cpu_count(), machine=platform.machine(),
                  at=datetime.now(UTC).isoformat(timespec="seconds"))
    save_labelled(RESULTS, args.label, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
