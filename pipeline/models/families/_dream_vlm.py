"""What LaViDa and Dream-VL share: a vision encoder feeding Dream-7B, run bidirectionally.

Dream-7B has the Qwen2.5-7B shape, so both families run it as a transformers Qwen2-style
decoder and hand it prepared attention masks (see lm_attention.py). This base class owns the
language-model side of the forward pass (embed, splice image features in at the image
positions, attend, final norm), the Dream logit shift, the attention switch and the
checkpoint round trip; a family adds its vision encoder, image preprocessing, config and
key map.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.models.base import (
    KIND_IMAGE,
    Batch,
    EncoderOptions,
    Example,
    VLMEncoder,
    position_ids_from_mask,
    prompt_segments,
)
from pipeline.models.checkpoint import KeyMap
from pipeline.models.families._published_decoder import PublishedDecoderLM, unshift_dream_logits
from pipeline.models.families._vision_parts import MLPProjector
from pipeline.models.lm_attention import decoder_masks
from pipeline.models.prompting import pad_sequences, tokenize_segments

log = logging.getLogger(__name__)

# Dream's decoder projections: what LoRA adapts (never lm_head, never the vision side by default).
DREAM_LOGIT_NOTE = "Dream logits are shifted by one (position i-1 scores token i); output_logits undoes it."


class DreamVLMEncoder(PublishedDecoderLM, VLMEncoder):
    """Base of the Dream-backed families. It builds the projector and `lm_head`; subclasses
    build their vision tower and `language_model` (a transformers decoder with
    `embed_tokens`, `layers`, `norm`) in `__init__`, then call `apply_attention`."""

    key_map: ClassVar[KeyMap]
    language_model: nn.Module
    lm_head: nn.Linear

    def __init__(self, config: Any, tokenizer: Any, options: EncoderOptions | None, implementation: str) -> None:
        super().__init__(options)
        self.config = config
        self.tokenizer = tokenizer
        self.implementation = implementation
        self.padding_side = self.spec.padding_side
        self.mask_token_id = config.mask_token_id
        self.pad_token_id = config.pad_token_id
        # transformers modules read the attention kernel from their config when they are built.
        config.text._attn_implementation = implementation
        config.vision._attn_implementation = implementation
        # Both families connect vision to Dream with a 2-layer GELU MLP and keep Dream's untied head.
        self.projector = MLPProjector(config.vision.hidden_size, config.text.hidden_size)
        self.lm_head = nn.Linear(config.text.hidden_size, config.text.vocab_size, bias=False)

    # -- what a family adds (besides preset, config_from_published, published_config) ---
    @abstractmethod
    def image_features(self, batch: Batch) -> torch.Tensor:
        """Projected features of every image token in the batch, in reading order, (N, D)."""

    def decoder_stack(self) -> nn.Module:
        return self.language_model

    # -- text side of collate ----------------------------------------------------------
    def text_batch(self, examples: Sequence[Example], image_tokens: Sequence[int]) -> Batch:
        """Token ids, mask and kinds; each image becomes `image_tokens[i]` placeholder ids."""
        if not examples:
            raise ValueError("collate needs at least one example")
        rows, kinds = [], []
        for example, count in zip(examples, image_tokens, strict=True):
            segments = prompt_segments(example, self.spec.prompt_template)
            ids, kind = tokenize_segments(
                self.tokenizer,
                segments,
                image_ids=lambda _i, n=count: [self.config.image_placeholder_id] * n,
                max_length=self.options.max_length,
                on_overflow=self.options.on_overflow,
            )
            rows.append(ids)
            kinds.append(kind)
        return pad_sequences(rows, kinds, pad_id=self.pad_token_id, side=self.padding_side)

    # -- forward -----------------------------------------------------------------------
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        mask = batch["attention_mask"]
        is_image = batch["token_kinds"] == KIND_IMAGE  # (B, L)
        # Image positions hold a placeholder (LaViDa's is -200, not a vocabulary id).
        ids = torch.where(is_image, torch.full_like(batch["input_ids"], self.pad_token_id), batch["input_ids"])
        embeds = self.language_model.embed_tokens(ids)  # (B, L, D)
        if bool(is_image.any()):
            features = self.image_features(batch)  # (N, D)
            wanted = int(is_image.sum())
            if features.shape[0] != wanted:
                raise ValueError(f"{features.shape[0]} image features for {wanted} image positions; "
                                 "the batch was not made by this encoder's collate")
            embeds = embeds.masked_scatter(is_image.unsqueeze(-1), features.to(embeds.dtype))
        masks = decoder_masks(mask, self.options.attention, self.implementation, embeds.dtype,
                              self.language_model.config.layer_types, self.options.block_size)
        out = self.language_model(inputs_embeds=embeds, attention_mask=masks,
                                  position_ids=position_ids_from_mask(mask), use_cache=False)
        return out.last_hidden_state  # (B, L, D), after the final norm

    def input_embeddings(self) -> nn.Embedding:
        return self.language_model.embed_tokens

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, V), row i scoring token i (or only the rows at `positions`): Dream's
        shift undone (`unshift_dream_logits`)."""
        shifted = unshift_dream_logits(hidden)
        return self.lm_head(shifted if positions is None else shifted[positions])
