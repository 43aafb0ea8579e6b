"""Reading and writing checkpoints in their published layout through a :class:`KeyMap`.

Families whose modules differ from the published checkpoint's (LaViDa, Dream-VL) build the
model with empty (meta) parameters, convert the published state dict with their key map,
check it covers every parameter with the right shape, and assign it. Saving runs the same
table backwards, so a saved directory is read by the same code as a downloaded one.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.models.checkpoint import KeyMap, check_state_dict, read_state_dict, write_state_dict

log = logging.getLogger(__name__)

SUPPORTED_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def check_dtype(dtype: torch.dtype) -> None:
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"unsupported dtype {dtype}; use bf16 (GPU) or fp32 (CPU, tests)")


@contextmanager
def empty_parameters() -> Iterator[None]:
    """Create parameters on the meta device (no memory, no init) but real buffers such as
    rotary frequency tables, which checkpoints do not hold."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        yield


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no config.json; is it a checkpoint directory?")
    return json.loads(path.read_text())


def write_config(directory: Path, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def load_weights(model: nn.Module, directory: Path, key_map: KeyMap, dtype: torch.dtype) -> None:
    """Fill `model` from a published checkpoint; any missing, extra or misshapen key fails
    with the full list (CheckpointMismatchError)."""
    published = read_state_dict(directory)
    ours = key_map.convert(published)
    expected = model.state_dict()
    buffers = {name for name, _ in model.named_buffers()}
    check_state_dict(expected, ours, optional=buffers)
    ours = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in ours.items()}
    model.load_state_dict(ours, strict=False, assign=True)
    still_empty = [name for name, p in model.named_parameters() if p.is_meta]
    if still_empty:  # cannot happen after check_state_dict, unless parameters are shared oddly
        raise RuntimeError(f"parameters left unloaded: {still_empty[:10]}")
    log.info("loaded %d tensors from %s", len(ours), directory)


def save_weights(model: nn.Module, directory: Path, key_map: KeyMap) -> None:
    """Write the model's parameters under their published names (sharded safetensors)."""
    params = dict(model.named_parameters())
    if any("lora_" in name or ".base_layer." in name for name in params):
        raise ValueError(
            "the model carries LoRA adapters; save them with lora_state_dict() instead, "
            "or save the base model before apply_lora"
        )
    write_state_dict(key_map.revert(params), directory)


def load_tokenizer(directory: Path):
    """The checkpoint's tokenizer without running remote code.

    Dream checkpoints name a custom `DreamTokenizer` class (a Qwen2 BPE tokenizer with
    `<|mask|>` added); when the automatic class cannot be used we read the same files with
    transformers' own Qwen2 tokenizer.
    """
    from transformers import AutoTokenizer, Qwen2Tokenizer

    has_files = (directory / "tokenizer.json").is_file() or (
        (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file()
    )
    if not has_files:
        raise FileNotFoundError(
            f"no tokenizer in {directory} (tokenizer.json, or vocab.json + merges.txt); "
            "copy the tokenizer files of the published checkpoint next to the weights"
        )
    try:
        with warnings.catch_warnings():
            # AutoTokenizer peeks at config.json, whose published layout still has `rope_scaling`.
            warnings.filterwarnings("ignore", message=".*rope_scaling.*", category=FutureWarning)
            return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        log.info("AutoTokenizer could not read %s (%s); trying Qwen2Tokenizer", directory, exc)
    return Qwen2Tokenizer.from_pretrained(str(directory))


def token_id(tokenizer, token: str) -> int | None:
    """The id of a special token in this tokenizer, or None when it does not know it."""
    ids = tokenizer.convert_tokens_to_ids([token])
    unk = getattr(tokenizer, "unk_token_id", None)
    return ids[0] if ids and ids[0] is not None and ids[0] != unk else None


def checked_special_id(tokenizer, token: str, configured: int, what: str) -> int:
    """Trust the checkpoint config, but say so when its tokenizer disagrees."""
    found = token_id(tokenizer, token)
    if found is not None and found != configured:
        log.warning("%s: tokenizer maps %s to %d but the config says %d; using the config", what, token, found, configured)
    return configured
