"""Splitting MMEB text into the image placeholder, the instruction and the content.

MMEB rows write one string per side, e.g. ``"<|image_1|>\\nRepresent the given image with the
following question: What is shown?\\n"``. The encoders want the instruction and the content
apart (pooling may leave the instruction out), and each family places its own image token,
so the placeholder is dropped here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

IMAGE_PLACEHOLDER = "<|image_1|>"

# Target-side instructions MMEB writes before image candidates (e.g. "<|image_1|>\nRepresent the given image.").
REPRESENT_IMAGE = "Represent the given image."
REPRESENT_WIKI = "Represent the given Wikipedia image with related text information:"
REPRESENT_NEWS = "Represent the given image with related text information:"
REPRESENT_CROP = "Represent the given cropped image of the object"
# Instructions other than a dataset's own first one that MMEB text is known to start with.
KNOWN_TARGET_INSTRUCTIONS: tuple[str, ...] = (REPRESENT_IMAGE, REPRESENT_WIKI, REPRESENT_NEWS, REPRESENT_CROP)
_PLACEHOLDER = re.compile(r"<\|image_\d+\|>")
_TRAILING = " \t\n.:"


def strip_placeholder(text: str) -> tuple[str, bool]:
    """Text without image placeholders, and whether it had one."""
    cleaned, n = _PLACEHOLDER.subn(" ", text)
    return cleaned.strip(), n > 0


@lru_cache(maxsize=512)
def _pattern(instruction: str) -> re.Pattern[str] | None:
    core = instruction.strip().rstrip(_TRAILING)
    if not core:
        return None
    words = r"\s+".join(re.escape(w) for w in core.split())
    # The instruction must end at a word boundary: "... in the image" must not match "... in the images".
    return re.compile(rf"^\s*{words}(?=$|[\s.:,;?!])[\s.:]*", re.IGNORECASE)


def split_instruction(text: str, instructions: Iterable[str]) -> tuple[str, str]:
    """(instruction, content) for text that starts with one of `instructions`.

    Matching ignores case, runs of whitespace and a trailing '.' or ':' (MMEB writes
    "for classification" in eval rows and "for classification." in train rows). The
    longest matching instruction wins and is returned in its canonical form; text that
    starts with none of them is all content.
    """
    for instruction in sorted({i for i in instructions if i and i.strip()}, key=len, reverse=True):
        pattern = _pattern(instruction)
        if pattern is None:
            continue
        match = pattern.match(text)
        if match:
            return instruction.strip(), text[match.end():].strip()
    return "", text.strip()


def join_instruction(instruction: str, text: str = "", image: bool = False) -> str:
    """The MMEB string for an instruction, content and optional image (what a builder writes)."""
    body = " ".join(part for part in (instruction.strip(), text.strip()) if part)
    return f"{IMAGE_PLACEHOLDER}\n{body}\n" if image else body
