"""What every family that runs a transformers decoder stack under prepared masks shares.

The Dream-backed VLMs (LaViDa, Dream-VL) and DiffEmbed's text-only LMs (Dream, LLaDA, Qwen2.5)
all: flip the stack between causal and full attention with `lm_attention`, build a random model
from a preset, load a published checkpoint by building on the meta device and assigning the
converted state dict (`KeyMap`), and save it back in the published layout. A family provides
`decoder_stack()`, `preset(size)`, `config_from_published(directory, tokenizer)`,
`published_config()` and a constructor `(config, tokenizer, options, implementation)`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, get_args

import torch
from torch import nn

from pipeline.models.base import Attention, EncoderOptions, Size
from pipeline.models.checkpoint import KeyMap, resolve_local
from pipeline.models.lm_attention import check_supported, pick_implementation, set_causal
from pipeline.models.published import (
    check_dtype,
    empty_parameters,
    load_tokenizer,
    load_weights,
    save_weights,
    write_config,
)

log = logging.getLogger(__name__)


class PublishedDecoderLM:
    """Mixin placed before `VLMEncoder`: attention switch, build, load and save."""

    key_map: ClassVar[KeyMap]
    implementation: str
    options: EncoderOptions
    tokenizer: Any

    def decoder_stack(self) -> nn.Module:
        """The transformers decoder whose attention modules the switch flips."""
        raise NotImplementedError

    @classmethod
    def preset(cls, size: Size) -> tuple[Any, Any]:
        """(config, tokenizer) of the real or tiny configuration."""
        raise NotImplementedError

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> Any:
        """Our config from a checkpoint directory's published config files."""
        raise NotImplementedError

    def published_config(self) -> dict[str, Any]:
        """config.json in the published layout."""
        raise NotImplementedError

    @classmethod
    def published_tokenizer(cls, directory: Path) -> Any:
        return load_tokenizer(directory)

    def save_extras(self, directory: Path) -> None:
        """Files besides weights, config and tokenizer (e.g. an image-processor config)."""

    # -- shared behaviour ----------------------------------------------------------------
    def apply_attention(self, attention: Attention) -> None:
        if attention not in get_args(Attention):
            raise ValueError(f"attention must be one of {get_args(Attention)}, got {attention!r}")
        check_supported(attention, self.implementation)
        set_causal(self.decoder_stack(), attention == "causal")
        self.options = replace(self.options, attention=attention)

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> Any:
        if size not in get_args(Size):
            raise ValueError(f"size must be one of {get_args(Size)}, got {size!r}")
        torch.manual_seed(seed)
        config, tokenizer = cls.preset(size)
        return cls(config, tokenizer, options, "sdpa").eval()  # type: ignore[call-arg]

    @classmethod
    def from_pretrained(cls, path_or_id: str, dtype: torch.dtype = torch.bfloat16,
                        device: str | torch.device | None = None, options: EncoderOptions | None = None) -> Any:
        check_dtype(dtype)
        directory = resolve_local(path_or_id)
        tokenizer = cls.published_tokenizer(directory)
        config = cls.config_from_published(directory, tokenizer)
        implementation = pick_implementation(device, dtype)
        with empty_parameters():
            model = cls(config, tokenizer, options, implementation)  # type: ignore[call-arg]
        load_weights(model, directory, cls.key_map, dtype)
        log.info("%s loaded from %s (%s, %s)", cls.__name__, directory, dtype, implementation)
        return model.to(device or "cpu").eval()

    def save_original(self, directory: str) -> None:
        target = Path(directory)
        save_weights(self, target, self.key_map)  # type: ignore[arg-type]
        write_config(target, self.published_config())
        self.tokenizer.save_pretrained(str(target))
        self.save_extras(target)


def unshift_dream_logits(hidden: torch.Tensor) -> torch.Tensor:
    """Dream was adapted from an autoregressive model and kept its shift: the state at position
    i-1 predicts token i (Dream's and LaViDa's samplers shift logits right by one). Shifting the
    states back lines every diffusion family's logits up with its tokens; position 0 keeps its own
    row, as in Dream's sampler."""
    return torch.cat([hidden[:, :1], hidden[:, :-1]], dim=1)
