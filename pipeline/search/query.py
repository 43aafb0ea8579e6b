"""A live query: an instruction plus text and/or an image, checked before any model sees it.

Uploaded images go through `pipeline.data.images.open_image` (never `PIL.Image.open`), so a
corrupt, truncated or empty file, a non-image and a decompression bomb become a one-line
`QueryError`, and CMYK, 16-bit, palette, RGBA, animated and EXIF-rotated images come out
as upright RGB.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipeline.data.example import Example
from pipeline.data.images import WORK_SIDE, ImageError, open_image, thumbnail_png
from storage.vocabulary import modality_of


class QueryError(ValueError):
    """A query that cannot be searched; the message says what to change."""

    user_facing = True  # the CLI prints it as one line


EMPTY_QUERY = ("empty query: type some text, upload an image, or both "
               "(an instruction alone says how to read a query, it is not one)")


def _clean(text: str | None) -> str:
    return (text or "").strip()


@dataclass(frozen=True)
class Query:
    """What the user asked: `image` is already an upright RGB image (or None)."""

    instruction: str = ""
    text: str | None = None
    image: Image.Image | None = None
    image_name: str | None = None

    @classmethod
    def build(cls, text: str | None = None, instruction: str | None = None,
              image: str | os.PathLike | bytes | None = None) -> Query:
        """Check and load a query; raises QueryError with a clear message for bad input."""
        text = _clean(text) or None
        loaded, name = None, None
        if image is not None and not (isinstance(image, (str, bytes)) and not image):
            name = Path(image).name if isinstance(image, (str, os.PathLike)) else "upload"
            try:
                loaded = open_image(image, max_side=WORK_SIDE)  # bounds a search's memory
            except ImageError as exc:
                raise QueryError(f"image not usable: {exc}") from exc
        if text is None and loaded is None:
            raise QueryError(EMPTY_QUERY)
        return cls(_clean(instruction), text, loaded, name)

    @property
    def modality(self) -> str:
        return modality_of(self.image is not None, bool(self.text))

    def example(self) -> Example:
        """The encoder's input."""
        return Example(instruction=self.instruction, text=self.text, image=self.image)

    def content_key(self) -> tuple[str, str | None, str | None]:
        """(instruction, text, md5 of the image's stored-style thumbnail): equal for a stored
        eval query and a re-upload of the same image with the same instruction and text."""
        thumb = None if self.image is None else hashlib.md5(thumbnail_png(self.image)).hexdigest()
        return self.instruction, self.text, thumb

    def describe(self) -> str:
        parts = [f"image {self.image_name or ''} {self.image.size[0]}x{self.image.size[1]}".replace("  ", " ")
                 if self.image is not None else "", f"text {self.text!r}" if self.text else ""]
        shown = " + ".join(p for p in parts if p)
        return shown + (f" (instruction {self.instruction!r})" if self.instruction else "")
