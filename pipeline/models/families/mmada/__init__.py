"""MMaDA: LLaDA-8B (a Llama-shaped diffusion LM) reading MAGVIT-v2 image codes.

`model` is the encoder (registered as ``mmada``), `magvit2` the frozen image tokenizer and
`checkpoint` the published layout's key map and config.
"""

from pipeline.models.families.mmada.model import MMaDAEncoder

__all__ = ["MMaDAEncoder"]
