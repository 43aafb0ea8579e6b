"""A decoder language model as a text-only embedder (DiffEmbed, issue 15 part 5).

DiffEmbed (seed paper, `diffembed-abstract.txt`) compares diffusion LMs, run bidirectionally and
mean-pooled, with an autoregressive LM of the same size, run causally and pooled at its last
token. This base class holds what the three text families share: a transformers decoder stack
as `lm` (Qwen2Model for Qwen2.5 and Dream, LlamaModel for LLaDA), an untied `lm_head`, the
attention switch through the same prepared masks the Dream-backed VLMs use (lm_attention.py),
text-only collation, and the published-layout checkpoint round trip through a KeyMap. A family
adds its config, tokenizer ids and key map; attention and pooling stay per-run options.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, get_args

import torch
from torch import nn

from pipeline.models.base import (
    Attention,
    Batch,
    EncoderOptions,
    Example,
    ImageError,
    Size,
    VLMEncoder,
    position_ids_from_mask,
    prompt_segments,
)
from pipeline.models.checkpoint import KeyMap, resolve_local
from pipeline.models.lm_attention import check_supported, decoder_masks, pick_implementation, set_causal
from pipeline.models.prompting import pad_sequences, tokenize_segments
from pipeline.models.published import (
    check_dtype,
    empty_parameters,
    load_tokenizer,
    load_weights,
    save_weights,
    write_config,
)

log = logging.getLogger(__name__)

TEXT_PROMPT = "{instruction} {text}"


class TextOnlyError(ImageError):
    """An image was given to a text-only family."""


class TextLMEncoder(VLMEncoder):
    """Base of the text-only families: `lm` (a transformers decoder with `embed_tokens`,
    `layers`, `norm`) and `lm_head`, built from a transformers config."""

    key_map: ClassVar[KeyMap]
    decoder_class: ClassVar[type[nn.Module]]  # Qwen2Model or LlamaModel
    # Dream kept its AR parent's shift: the state at i-1 scores token i (see _dream_vlm.py).
    shifted_logits: ClassVar[bool] = False

    def __init__(self, config: Any, tokenizer: Any, options: EncoderOptions | None, implementation: str,
                 mask_token_id: int | None) -> None:
        super().__init__(options)
        config._attn_implementation = implementation
        self.lm_config = config  # not `config`: peft reads `model.config` as a transformers config
        self.tokenizer = tokenizer
        self.implementation = implementation
        self.padding_side = self.spec.padding_side
        self.mask_token_id = mask_token_id
        self.pad_token_id = int(config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id)
        self.lm = self.decoder_class._from_config(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.apply_attention(self.options.attention)

    # -- what a family adds ------------------------------------------------------------
    @classmethod
    @abstractmethod
    def preset(cls, size: Size) -> tuple[Any, Any, int | None]:
        """(transformers config, tokenizer, mask id) of the real or tiny configuration."""

    @classmethod
    @abstractmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> tuple[Any, int | None]:
        """(transformers config, mask id) from a checkpoint directory's config.json."""

    @abstractmethod
    def published_config(self) -> dict[str, Any]:
        """config.json in the published layout."""

    # -- inputs ------------------------------------------------------------------------
    def collate(self, examples: Sequence[Example]) -> Batch:
        if not examples:
            raise ValueError("collate needs at least one example")
        if any(ex.image is not None for ex in examples):
            raise TextOnlyError(f"{self.spec.name} is a text-only embedder; drop the image, or use a VLM family "
                                "(see `vlmembed models`)")
        eos = self.tokenizer.eos_token_id
        suffix = [eos] if self.options.pooling == "eos" and eos is not None else []
        rows, kinds = [], []
        for example in examples:
            ids, kind = tokenize_segments(self.tokenizer, prompt_segments(example, self.spec.prompt_template),
                                          _no_images, self.options.max_length, self.options.on_overflow,
                                          suffix_ids=suffix)
            rows.append(ids)
            kinds.append(kind)
        return pad_sequences(rows, kinds, pad_id=self.pad_token_id, side=self.padding_side)

    # -- forward -----------------------------------------------------------------------
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        mask = batch["attention_mask"]
        embeds = self.lm.embed_tokens(batch["input_ids"])  # (B, L, D)
        # One layer type: a ready 4D mask (sdpa), or the 2D padding mask plus is_causal (flash).
        prepared = decoder_masks(mask, self.options.attention, self.implementation, embeds.dtype,
                                 ["full_attention"], self.options.block_size)["full_attention"]
        out = self.lm(inputs_embeds=embeds, attention_mask=prepared, position_ids=position_ids_from_mask(mask),
                      use_cache=False)
        return out.last_hidden_state  # (B, L, D), after the final norm

    def input_embeddings(self) -> nn.Embedding:
        return self.lm.embed_tokens

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if self.shifted_logits:  # undo Dream's shift so row i scores token i, as for the other diffusion LMs
            hidden = torch.cat([hidden[:, :1], hidden[:, :-1]], dim=1)
        return self.lm_head(hidden if positions is None else hidden[positions])

    def apply_attention(self, attention: Attention) -> None:
        if attention not in get_args(Attention):
            raise ValueError(f"attention must be one of {get_args(Attention)}, got {attention!r}")
        check_supported(attention, self.implementation)
        set_causal(self.lm, attention == "causal")
        self.options = replace(self.options, attention=attention)

    # -- construction and checkpoints --------------------------------------------------
    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> VLMEncoder:
        if size not in get_args(Size):
            raise ValueError(f"size must be one of {get_args(Size)}, got {size!r}")
        torch.manual_seed(seed)
        config, tokenizer, mask_id = cls.preset(size)
        return cls(config, tokenizer, options, "sdpa", mask_id).eval()

    @classmethod
    def from_pretrained(cls, path_or_id: str, dtype: torch.dtype = torch.bfloat16,
                        device: str | torch.device | None = None, options: EncoderOptions | None = None) -> VLMEncoder:
        check_dtype(dtype)
        directory = resolve_local(path_or_id)
        tokenizer = text_tokenizer(directory)
        config, mask_id = cls.config_from_published(directory, tokenizer)
        implementation = pick_implementation(device, dtype)
        with empty_parameters():
            model = cls(config, tokenizer, options, implementation, mask_id)
        load_weights(model, directory, cls.key_map, dtype)
        log.info("%s loaded from %s (%s, %s)", cls.spec.name, directory, dtype, implementation)
        return model.to(device or "cpu").eval()

    def save_original(self, directory: str) -> None:
        target = Path(directory)
        save_weights(self, target, self.key_map)
        write_config(target, self.published_config())
        self.tokenizer.save_pretrained(str(target))


def text_tokenizer(directory: Path) -> Any:
    """The checkpoint's tokenizer.json exactly as serialised, else the shared loader. AutoTokenizer
    would pick a class from config.json's model_type (Qwen2Tokenizer for "qwen2") and rebuild the
    pre-tokenizer, which changes the ids of any tokenizer that is not Qwen's own (a tiny save)."""
    if (directory / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(directory))
    return load_tokenizer(directory)


def _no_images(_: int) -> list[int]:
    raise AssertionError("text-only families refuse images in collate")
