"""Shared machinery for families that wrap a transformers `*ForConditionalGeneration` model.

LLaVA-1.6, Qwen2.5-VL and DiffusionVL all run as a transformers vision-language model:
an image processor turns images into pixel tensors, the prompt carries one placeholder
token per image feature, and the language model's final (normed) hidden states are the
sequence representation. What differs per family (configs, placeholder layout, position
ids, checkpoint layout) comes in through the hooks of :class:`TransformersVLM`; nothing
here looks at a family's name.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from pipeline.models.base import (
    KIND_IMAGE,
    Attention,
    Batch,
    EncoderOptions,
    Example,
    ImageError,
    VLMEncoder,
    attention_mask_4d,
    checked_image,
    prompt_segments,
)
from pipeline.models.checkpoint import CheckpointMismatchError, KeyMap, write_state_dict
from pipeline.models.prompting import pad_sequences, tokenize_segments

log = logging.getLogger(__name__)

_ATTENTIONS = ("causal", "bidirectional", "block")


def attn_implementation(device: str | torch.device | None) -> str:
    """flash_attention_2 where the package and a GPU are there, else PyTorch's sdpa."""
    on_gpu = device is not None and str(device) != "cpu" and torch.cuda.is_available()
    if on_gpu and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def resolve_device(device: str | torch.device | None) -> str:
    """`None` means the GPU when there is one; "auto" spreads a model over all GPUs."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def check_loading_info(info: dict[str, Any], where: str) -> None:
    """Turn transformers' loading report into an error listing every difference."""
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    shapes = sorted(f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in info.get("mismatched_keys") or ())
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(missing, unexpected, shapes, where=where)


def keymap_as_renames(keymap: KeyMap) -> dict[str, str]:
    """The key map as transformers' `key_mapping` (regex -> replacement), for loading.

    Rows may use `{rest}` once; identity rows are left out (nothing to rename).
    """
    renames = {}
    for rule in keymap.rules:
        if "{n}" in rule.original or rule.original.count("{rest}") > 1:
            raise ValueError(f"key map row {rule.original!r} needs a single {{rest}} to become a rename")
        if rule.original == rule.ours:
            continue
        pattern = "^" + re.escape(rule.original).replace(re.escape("{rest}"), "(.+)") + "$"
        renames[pattern] = rule.ours.replace("{rest}", r"\1")
    return renames


def expand_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Pad the short side so the image is square and centred (LLaVA's `image_aspect_ratio=pad`)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


class TransformersVLM(VLMEncoder):
    """A VLMEncoder around a transformers vision-language model (`self.vlm`).

    Subclasses give the configs (`build`), the checkpoint layout (`keymap`), how images
    become tensors and placeholder ids, and the language-model call.
    """

    keymap: ClassVar[KeyMap]  # published checkpoint key names <-> our module names
    # Renames (regex -> replacement) transformers applies when loading, on top of its own
    # conversions; None where transformers already knows the published layout.
    load_key_mapping: ClassVar[dict[str, str] | None] = None

    def __init__(self, vlm: torch.nn.Module, tokenizer: Any, image_processor: Any,
                 options: EncoderOptions | None = None) -> None:
        super().__init__(options)
        self.vlm = vlm
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.padding_side = getattr(tokenizer, "padding_side", None) or self.spec.padding_side
        self.apply_attention(self.options.attention)  # type: ignore[arg-type]

    # -- what a family provides ---------------------------------------------------------
    @property
    @abstractmethod
    def image_token_id(self) -> int:
        """The id that stands for one image feature in `input_ids`."""

    @abstractmethod
    def encode_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        """Pixel tensors for the batch's images and the number of features each one yields."""

    @abstractmethod
    def run_language_model(self, batch: Batch, attention_mask: torch.Tensor) -> torch.Tensor:
        """The LM's last hidden state after its final norm, (B, L, D)."""

    def image_ids(self, count: int) -> list[int]:
        """Placeholder ids for one image of `count` features."""
        return [self.image_token_id] * count

    def prefix_ids(self) -> list[int]:
        return []

    def suffix_ids(self) -> list[int]:
        # The paper pools AR models on the EOS state: the EOS is appended so it is the last token.
        eos = self.tokenizer.eos_token_id
        return [eos] if self.options.pooling == "eos" and eos is not None else []

    def prepare_image(self, image: Image.Image) -> Image.Image:
        return image

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None or pad == self.image_token_id:
            # A pad id equal to the image id would be counted as an image feature slot.
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        return int(pad)

    # -- the encoder interface ----------------------------------------------------------
    def collate(self, examples: Sequence[Example]) -> Batch:
        prepared = [self.prepare_image(checked_image(ex.image)) for ex in examples if ex.image is not None]
        vision, counts = self.encode_images(prepared) if prepared else ({}, [])
        counts_left = iter(counts)
        sequences, kinds = [], []
        for ex in examples:
            count = next(counts_left) if ex.image is not None else 0
            ids, kind = tokenize_segments(
                self.tokenizer, prompt_segments(ex, self.spec.prompt_template), lambda _i, n=count: self.image_ids(n),
                self.options.max_length, self.options.on_overflow,  # type: ignore[arg-type]
                prefix_ids=self.prefix_ids(), suffix_ids=self.suffix_ids(),
            )
            self._refuse_placeholder_in_text(ids, kind)
            sequences.append(ids)
            kinds.append(kind)
        batch: Batch = pad_sequences(sequences, kinds, self.pad_token_id, side=self.padding_side)
        batch.update(vision)
        return batch

    def _refuse_placeholder_in_text(self, ids: list[int], kinds: list[int]) -> None:
        for token, kind in zip(ids, kinds, strict=True):
            if token == self.image_token_id and kind != KIND_IMAGE:
                raise ValueError(
                    f"the text contains the image placeholder token (id {token}) outside an image; "
                    "remove it from the text (images go in Example.image)."
                )

    def hidden_states(self, batch: Batch) -> torch.Tensor:
        return self.run_language_model(batch, self.language_model_mask(batch["attention_mask"]))

    def language_model_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """The 2D padding mask for causal attention (transformers adds causality and works
        with every kernel), a ready additive 4D mask for bidirectional and block attention."""
        attention = self.options.attention
        if attention == "causal":
            return attention_mask
        return attention_mask_4d(attention_mask, attention, self.dtype, self.options.block_size)  # type: ignore[arg-type]

    def input_embeddings(self) -> torch.nn.Embedding:
        return self.vlm.get_input_embeddings()

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        return self.vlm.lm_head(hidden if positions is None else hidden[positions])

    def apply_attention(self, attention: Attention) -> None:
        if attention not in _ATTENTIONS:
            raise ValueError(f"attention must be one of {_ATTENTIONS}, got {attention!r}")
        if attention != "causal" and str(self.vlm.config._attn_implementation).startswith("flash"):
            # Flash attention takes no arbitrary mask: non-causal modes run on sdpa.
            log.info("%s: %s attention needs a 4D mask; switching flash_attention_2 -> sdpa", self.spec.name, attention)
            self.vlm.set_attn_implementation("sdpa")
        self.options = replace(self.options, attention=attention)

    # -- checkpoints --------------------------------------------------------------------
    def published_state_dict(self) -> dict[str, torch.Tensor]:
        """Our weights under the published checkpoint's key names."""
        state = self.vlm.state_dict()
        adapters = [k for k in state if "lora_" in k]
        if adapters:
            raise ValueError(
                f"{self.spec.name}: the model carries {len(adapters)} LoRA tensors; save them with "
                "pipeline.models.lora.lora_state_dict, or merge the adapters before save_original."
            )
        return self.keymap.revert(state)

    def save_original(self, directory: str) -> None:
        out = Path(directory)
        write_state_dict(self.published_state_dict(), out)
        self.save_config(out)
        self.save_preprocessing(out)
        log.info("saved %s in the published layout to %s", self.spec.name, out)

    def save_config(self, directory: Path) -> None:
        self.vlm.config.save_pretrained(directory)

    def save_preprocessing(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)

    def run_image_processor(self, images: list[Image.Image], **kwargs: Any) -> dict[str, Any]:
        """The image processor, with its refusals turned into ImageError."""
        try:
            return self.image_processor(images=images, return_tensors="pt", **kwargs)
        except ValueError as exc:
            raise ImageError(f"{self.spec.name} cannot preprocess an image of the batch: {exc}") from exc


def load_vlm(model_class: Any, local: Path, dtype: torch.dtype, device: str | torch.device | None,
             where: str, **kwargs: Any) -> torch.nn.Module:
    """`model_class.from_pretrained` with our device/attention choices and a strict key check."""
    device = resolve_device(device)
    vlm, info = model_class.from_pretrained(
        str(local), dtype=dtype, attn_implementation=attn_implementation(device),
        device_map=device, output_loading_info=True, **kwargs,
    )
    check_loading_info(info, where)
    return vlm.eval()
