"""What an encoder embeds: one :class:`Example`, an instruction plus text and/or an image.

It lives in the data layer because the readers make examples and the models consume them;
both import it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from storage.vocabulary import modality_of


class EmptyExampleError(ValueError):
    """An example with neither text nor image cannot be embedded."""


@dataclass(frozen=True)
class Example:
    """One thing to embed: an instruction plus optional text plus an optional image."""

    instruction: str = ""
    text: str | None = None
    image: Image.Image | None = None

    def __post_init__(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None:
            raise EmptyExampleError(
                "an example needs text, an image or both; got neither "
                f"(instruction={self.instruction!r}). Drop the row or give it content."
            )

    @property
    def modality(self) -> str:
        return modality_of(self.image is not None, bool(self.text and self.text.strip()))
