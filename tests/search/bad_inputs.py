"""Every kind of awkward upload the live search must survive, written to files.

`UNUSABLE` must be refused with a clear message; `AWKWARD` must be searched as an upright
RGB image (the expected (width, height) after EXIF rotation is given).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# name -> a fragment of the message the user sees
UNUSABLE = {
    "corrupt.png": "not an image",
    "truncated.png": "corrupt or truncated",
    "empty.png": "empty",
    "bomb.png": "MP",
    "text-renamed.png": "not an image",
}
# name -> (width, height) of the upright RGB image the encoder gets
AWKWARD = {
    "cmyk.jpg": (40, 30),
    "sixteen-bit.png": (40, 30),
    "palette.png": (40, 30),
    "rgba.png": (40, 30),
    "animated.gif": (40, 30),
    "exif-rotated.jpg": (30, 40),  # stored 40x30 with orientation 6: shown rotated a quarter turn
}


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), "RGB")
    files: dict[str, bytes] = {
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 255, 400, dtype=np.uint8)),
        "truncated.png": _png(rgb)[:300],
        "empty.png": b"",
        "text-renamed.png": b"this is a shopping list, not a picture\n" * 20,
    }
    # 10000 x 9500 = 95 MP of 1-bit pixels: a few KB on disk, far over the 90 MP limit
    buf = io.BytesIO()
    Image.new("1", (10_000, 9_500)).save(buf, format="PNG")
    files["bomb.png"] = buf.getvalue()
    buf = io.BytesIO()
    rgb.convert("CMYK").save(buf, format="JPEG")
    files["cmyk.jpg"] = buf.getvalue()
    sixteen = Image.fromarray((rng.integers(0, 65535, (30, 40))).astype(np.uint16))
    files["sixteen-bit.png"] = _png(sixteen)
    files["palette.png"] = _png(rgb.convert("P", palette=Image.Palette.ADAPTIVE))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    files["rgba.png"] = _png(rgba)
    buf = io.BytesIO()
    frames = [rgb, Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 255))]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["animated.gif"] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", exif=exif.tobytes())
    files["exif-rotated.jpg"] = buf.getvalue()
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths
