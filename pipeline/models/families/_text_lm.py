"""A decoder language model as a text-only embedder (DiffEmbed, issue 15 part 5).

DiffEmbed (seed paper, `diffembed-abstract.txt`) compares diffusion LMs, run bidirectionally and
mean-pooled, with an autoregressive LM of the same size, run causally and pooled at its last
token. This base class holds what the three text families share: a transformers decoder stack
as `lm` (Qwen2Model for Qwen2.5 and Dream, LlamaModel for LLaDA), an untied `lm_head`, and
text-only collation. The attention switch, building, loading and saving in the published layout
are the Dream-backed VLMs' own (`_published_decoder.PublishedDecoderLM`). A family adds its
config, tokenizer ids and key map; attention and pooling stay per-run options.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.models.base import (
    Batch,
    EncoderOptions,
    Example,
    ImageError,
    VLMEncoder,
    position_ids_from_mask,
    prompt_segments,
)
from pipeline.models.families._published_decoder import PublishedDecoderLM, unshift_dream_logits
from pipeline.models.lm_attention import decoder_masks
from pipeline.models.prompting import pad_sequences, tokenize_segments
from pipeline.models.published import load_tokenizer

TEXT_PROMPT = "{instruction} {text}"


class TextOnlyError(ImageError):
    """An image was given to a text-only family."""


class TextLMEncoder(PublishedDecoderLM, VLMEncoder):
    """Base of the text-only families: `lm` (a transformers decoder with `embed_tokens`,
    `layers`, `norm`) and `lm_head`, built from a transformers config that also carries the
    diffusion LMs' `mask_token_id` (None for the AR one)."""

    decoder_class: ClassVar[type[nn.Module]]  # Qwen2Model or LlamaModel
    # Dream kept its AR parent's shift: the state at i-1 scores token i (see _published_decoder.py).
    shifted_logits: ClassVar[bool] = False

    def __init__(self, config: Any, tokenizer: Any, options: EncoderOptions | None, implementation: str) -> None:
        super().__init__(options)
        config._attn_implementation = implementation
        self.lm_config = config  # not `config`: peft reads `model.config` as a transformers config
        self.tokenizer = tokenizer
        self.implementation = implementation
        self.padding_side = self.spec.padding_side
        self.mask_token_id = getattr(config, "mask_token_id", None)
        self.pad_token_id = int(config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id)
        self.lm = self.decoder_class._from_config(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.apply_attention(self.options.attention)

    def decoder_stack(self) -> nn.Module:
        return self.lm

    @classmethod
    def published_tokenizer(cls, directory: Path) -> Any:
        """The checkpoint's tokenizer.json exactly as serialised, else the shared loader. AutoTokenizer
        would pick a class from config.json's model_type (Qwen2Tokenizer for "qwen2") and rebuild the
        pre-tokenizer, which changes the ids of any tokenizer that is not Qwen's own (a tiny save)."""
        if (directory / "tokenizer.json").is_file():
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast.from_pretrained(str(directory))
        return load_tokenizer(directory)

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
        if self.shifted_logits:  # Dream: row i scores token i once the shift is undone
            hidden = unshift_dream_logits(hidden)
        return self.lm_head(hidden if positions is None else hidden[positions])


def _no_images(_: int) -> list[int]:
    raise AssertionError("text-only families refuse images in collate")
