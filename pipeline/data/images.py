"""Opening and normalising images from files, uploads and datasets, safely.

Every image that enters a model passes through here: the result is an RGB image of a
sane size, or an :class:`ImageError` that says what was wrong and what to do. Nothing
outside this module calls `Image.open`.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Anything bigger is refused from its header, before decoding (a decompression bomb costs
# memory, not just time): 40 MP covers a 7700x5200 photo, and decoded as RGBA it is 160 MB.
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MIN_SIDE = 2
# With `max_side` (live uploads), a larger image is shrunk to this longest side before any copy is
# made: every encoder resizes to well under it (Qwen2.5-VL: about 1000x1000 at most), and one 2048 px
# RGB copy is 12 MB where a 40 MP one is 120 MB. A JPEG is decoded at the smaller scale directly.
WORK_SIDE = 2048


class ImageError(ValueError):
    """An image that cannot be embedded; the message says why and what to do."""


def open_image(source: str | os.PathLike | bytes | io.IOBase, max_pixels: int = MAX_PIXELS,
               max_side: int | None = None) -> Image.Image:
    """Open a file path, raw bytes or a binary stream as an RGB image (first frame); with `max_side`,
    no longer than that on its longest side (shrunk right after decoding, or while decoding a JPEG)."""
    name = "upload"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = path.name
        if not path.is_file():
            raise ImageError(f"{path}: no such image file")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes); re-export or re-download it")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{name}: {size / 2**20:.0f} MiB is over the {MAX_FILE_BYTES // 2**20} MiB limit; resize it first")
        data = path.read_bytes()
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
    if not data:
        raise ImageError(f"{name}: the image is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: {len(data) / 2**20:.0f} MiB is over the {MAX_FILE_BYTES // 2**20} MiB limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image, name, max_pixels)
            if max_side and max(image.size) > max_side and image.format == "JPEG":
                image.draft(image.mode, _fit(image.size, max_side))  # DCT scaling: decodes 1/2 .. 1/8 the size
            image.load()
            if max_side:
                image = _shrink(image, max_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc}); resize it below {max_pixels / 1e6:.0f} MP") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image PIL can read (PNG, JPEG, GIF, WebP, BMP, TIFF ...)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc}); re-export it") from exc
    return prepare_image(image, max_pixels=max_pixels, name=name)


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """The image fitted into `max_side` a side (`thumbnail` reduces by a whole factor first, then
    resamples, so no big intermediate copy); modes resampling does not handle (1, P, I;16 ...) are
    first converted to one it does."""
    if max(image.size) <= max_side:
        return image
    if getattr(image, "is_animated", False):
        image.seek(0)
    exif = image.getexif()
    if image.mode not in ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F"):
        image = image.convert("RGBA" if image.mode in ("P", "PA") else "F" if image.mode.startswith("I;16") else "L")
    image.thumbnail((max_side, max_side), reducing_gap=2.0)  # in place: the image is open_image's own
    image.info["exif"] = exif.tobytes()  # keep the orientation for prepare_image's exif_transpose
    return image


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    w, h = image.size
    if w * h > max_pixels:
        raise ImageError(f"{name}: {w}x{h} = {w * h / 1e6:.0f} MP is over the {max_pixels / 1e6:.0f} MP limit; resize it first")


def prepare_image(image: Image.Image, max_pixels: int | None = None, name: str = "image") -> Image.Image:
    """An upright RGB copy: EXIF rotation applied, first frame of animations, alpha on white,
    16-bit and float scaled to 8 bits, CMYK/palette/greyscale converted."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"{name}: expected a PIL image, got {type(image).__name__}")
    _check_pixels(image, name, max_pixels or MAX_PIXELS)
    if min(image.size) < MIN_SIDE:
        raise ImageError(f"{name}: {image.size[0]}x{image.size[1]} is too small to embed (min {MIN_SIDE}px a side)")
    if getattr(image, "is_animated", False):
        image.seek(0)
    # Broken EXIF: keep the pixels as stored rather than refuse the image.
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError, SyntaxError):
        image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8bit(image)
    elif mode == "P":
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "LA", "L", "1", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "PA"):
        raise ImageError(f"{name}: image mode {mode!r} is not supported; convert it to RGB")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale the finite values to 0..255; NaN and +-inf pixels become black (the lowest value), without
    the RuntimeWarnings numpy would print for them (all-NaN min/max, inf - inf)."""
    import numpy as np

    arr = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return Image.new("L", image.size, 0)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    scaled = np.where(finite, arr - lo, 0.0)
    if hi > lo:
        scaled *= 255.0 / (hi - lo)
    else:
        scaled[:] = 0.0
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")


def thumbnail_png(image: Image.Image, side: int = 96) -> bytes:
    """A small PNG for the store and the dashboard's hover cards."""
    thumb = prepare_image(image).copy()
    thumb.thumbnail((side, side))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
