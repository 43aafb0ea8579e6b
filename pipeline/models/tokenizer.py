"""A real tokenizer that works offline, for the tiny presets.

No hub is reachable here, so the tiny presets use the Llama-2 style SentencePiece-BPE
tokenizer (32,000 tokens) that the `wordllama` wheel ships as a `tokenizers` JSON file,
plus each family's own special tokens. The same wheel ships a pretrained 32,000 x 256
token-embedding table, which the demo uses to give tiny language models a lexical start.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

_TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
_EMBEDDING_FILE = "weights/l2_supercat_256.safetensors"
PAD = "<pad>"
BOS = "<s>"
EOS = "</s>"


def _wordllama_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the tiny presets need the `wordllama` package for their tokenizer: pip install wordllama")
    return Path(spec.origin).parent


@lru_cache(maxsize=1)
def _base_tokenizer_json() -> str:
    data = json.loads((_wordllama_dir() / _TOKENIZER_FILE).read_text())
    data["truncation"] = None  # families truncate text themselves, with a warning
    data["padding"] = None
    return json.dumps(data)


def tiny_tokenizer(special_tokens: Sequence[str] = (), padding_side: str = "right") -> PreTrainedTokenizerFast:
    """The offline tokenizer with `<pad>` and the family's special tokens appended.

    Added tokens get ids 32000, 32001, ... in the order given, so a family's special ids are
    stable across runs.
    """
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_base_tokenizer_json()),
        bos_token=BOS,
        eos_token=EOS,
        unk_token="<unk>",
        padding_side=padding_side,
    )
    tok.add_special_tokens({"pad_token": PAD})
    extra = [t for t in special_tokens if t not in tok.get_vocab()]
    if extra:
        tok.add_special_tokens({"additional_special_tokens": list(extra)})
    return tok


@lru_cache(maxsize=1)
def pretrained_token_embeddings() -> torch.Tensor:
    """(32000, 256) float32 token embeddings distilled from Llama-2 by wordllama."""
    from safetensors.torch import load_file

    table = load_file(str(_wordllama_dir() / _EMBEDDING_FILE))["embedding.weight"]
    return table.to(torch.float32)
