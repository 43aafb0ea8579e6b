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
    "over-40mp.png": "over the 40 MP limit",  # 7000 x 6000 = 42 MP: refused from its header, never decoded
    "over-40mp.jpg": "over the 40 MP limit",
}
# name -> (width, height) of the upright RGB image the encoder gets
AWKWARD = {
    "cmyk.jpg": (40, 30),
    "sixteen-bit.png": (40, 30),
    "palette.png": (40, 30),
    "rgba.png": (40, 30),
    "animated.gif": (40, 30),
    "exif-rotated.jpg": (30, 40),  # stored 40x30 with orientation 6: shown rotated a quarter turn
    "nan.tiff": (40, 30),  # float pixels, some NaN: cleaned (black), with no warning in the log
    "inf.tiff": (40, 30),  # float pixels, some +-inf
    "all-nan.tiff": (40, 30),
    # bigger than the 2048 px a live search works with: fitted into it while (JPEG) or right after decoding
    "large.jpg": (2048, 1463),  # 4200 x 3000, decoded at 1/2 scale (2100 x 1500), then resampled
    "large-rotated.jpg": (1463, 2048),  # the same with EXIF orientation 6: still upright after shrinking
    "large-palette.png": (2048, 1463),
}
# AWKWARD images whose pixels are NaN or inf somewhere (and must come out finite, silently)
NON_FINITE = ("nan.tiff", "inf.tiff", "all-nan.tiff")


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
    files.update(_non_finite(rng))
    files.update(_large(rgb))
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths


def _tiff(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.float32), mode="F").save(buf, format="TIFF")
    return buf.getvalue()


def _non_finite(rng: np.random.Generator) -> dict[str, bytes]:
    base = rng.random((30, 40)) * 100
    with_nan, with_inf = base.copy(), base.copy()
    with_nan[::3, ::2] = np.nan
    with_inf[0, :5], with_inf[1, :5] = np.inf, -np.inf
    return {"nan.tiff": _tiff(with_nan), "inf.tiff": _tiff(with_inf), "all-nan.tiff": _tiff(np.full((30, 40), np.nan))}


def _large(rgb: Image.Image) -> dict[str, bytes]:
    """Large but small on disk: flat colour with one pattern, over the 40 MP limit or over 2048 px."""
    out = {}
    buf = io.BytesIO()
    Image.new("1", (7_000, 6_000)).save(buf, format="PNG")
    out["over-40mp.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.new("L", (7_000, 6_000), 128).save(buf, format="JPEG", quality=20)
    out["over-40mp.jpg"] = buf.getvalue()
    big = Image.new("RGB", (4_200, 3_000), (200, 220, 240))
    big.paste(rgb.resize((400, 300)), (100, 100))
    for name, exif_orientation in (("large.jpg", None), ("large-rotated.jpg", 6)):
        buf = io.BytesIO()
        exif = Image.Exif()
        if exif_orientation:
            exif[0x0112] = exif_orientation
        big.save(buf, format="JPEG", quality=80, exif=exif.tobytes())
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    big.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buf, format="PNG")
    out["large-palette.png"] = buf.getvalue()
    return out
