"""What `EmbeddingModel.encode` accepts, turned into the pipeline's :class:`Example`.

sentence-transformers' style: a str is text; a PIL image or a `pathlib.Path` is an image; a
str naming an existing image file is an image too; a dict holds any of "text", "image" and
"instruction".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.data.example import Example
from pipeline.data.images import open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
INPUT_KEYS = ("text", "image", "instruction")


def _image(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (str, os.PathLike)):
        return open_image(value)
    raise TypeError(f"an image must be a PIL image or a file path, got {type(value).__name__}")


def _is_image_path(value: str) -> bool:
    return value.lower().endswith(IMAGE_SUFFIXES) and Path(value).is_file()


def to_example(value: Any, instruction: str = "") -> Example:
    """One input as an Example; `instruction` is the default for inputs that name none."""
    if isinstance(value, Example):
        return value
    if isinstance(value, dict):
        unknown = set(value) - set(INPUT_KEYS)
        if unknown:
            raise ValueError(f"unknown input keys {sorted(unknown)}; use {', '.join(INPUT_KEYS)}")
        image = value.get("image")
        return Example(value.get("instruction", instruction) or "", value.get("text"),
                       None if image is None else _image(image))
    if isinstance(value, Image.Image | os.PathLike):
        return Example(instruction, None, _image(value))
    if isinstance(value, str):
        if _is_image_path(value):
            return Example(instruction, None, _image(value))
        return Example(instruction, value)
    raise TypeError(f"cannot embed a {type(value).__name__}: pass a str, a PIL image, a path or a dict with "
                    f"{', '.join(INPUT_KEYS)}")
