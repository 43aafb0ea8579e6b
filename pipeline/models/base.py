"""The one interface every VLM family implements to become an embedding model.

A family module subclasses :class:`VLMEncoder`, fills in its :class:`FamilySpec` and
decorates the class with :func:`pipeline.models.registry.register`. Everything else in the
project (trainer, evaluator, search, CLI) talks to encoders only through this interface and
never branches on a family's name.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Protocol, get_args

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pipeline.data.example import EmptyExampleError, Example
from pipeline.data.images import ImageError, prepare_image
from pipeline.models.pooling import Pooling, pool
from storage.vocabulary import Paradigm

log = logging.getLogger(__name__)

Attention = Literal["causal", "bidirectional", "block"]
Overflow = Literal["truncate", "error"]
Size = Literal["real", "tiny"]
Batch = dict[str, Any]

# What each position of a collated batch holds (`batch["token_kinds"]`, int8). Pooling reads
# it to leave the instruction out of a mean; the demo's pretraining reads it to choose which
# positions to predict or mask.
KIND_PAD, KIND_TEMPLATE, KIND_INSTRUCTION, KIND_TEXT, KIND_IMAGE, KIND_SPECIAL = range(6)


class InputTooLongError(ValueError):
    """Text over the model's limit while truncation is switched off."""


def _check_choice(value: str, allowed: Any, what: str) -> None:
    choices = get_args(allowed)
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")


class TrainableImageTokenizer(Protocol):
    """A frozen image tokenizer that can train itself from images (the demo's miniatures)."""

    def fit(self, images: Sequence[Image.Image], steps: int, batch_size: int, seed: int,
            progress: bool = True) -> list[float]:
        """Train on `images` for `steps`, freeze again, and return the losses."""


@dataclass(frozen=True)
class FamilySpec:
    """The facts of one VLM family, validated once, read by everything else."""

    name: str  # registry key, e.g. "llava_next"
    display_name: str  # e.g. "LLaVA-1.6"
    paradigm: Paradigm
    attention: Attention  # the attention the family was pretrained with
    pooling: Pooling  # the paper's pooling for this paradigm
    hub_id: str
    vision_encoder: str
    backbone: str
    image_placeholder: str  # the string a prompt uses where the image goes
    padding_side: Literal["left", "right"]
    lora_targets: tuple[str, ...]  # module-name suffixes inside the language model
    vision_modules: tuple[str, ...]  # module-name prefixes of the vision tower / tokenizer
    published_params: int  # parameter count of the published checkpoint
    params_source: str  # where that number comes from
    max_length: int  # token limit of the language model as we run it
    prompt_template: str = "{image}{instruction} {text}"
    paper_name: str | None = None  # the name in the paper's tables, when the paper has it
    params_exclude: tuple[str, ...] = ()  # module prefixes that published_params does not count
    # Whether contrastive fine-tuning trains the vision tower by default, and which of its linear
    # layers LoRA reaches then (name suffixes; empty: all of them). The paper trains in VLM2Vec,
    # whose default LoRA target list also names vision-tower layers, and keeps only MMaDA's tower
    # frozen ("Different from other models, the vision encoder parameters in MMaDA are frozen under
    # the default training strategy", Sec. 6 RQ3).
    trains_vision: bool = False
    vision_lora_targets: tuple[str, ...] = ()
    # A language model without a vision side (DiffEmbed's text-only embedders): collate refuses images.
    text_only: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        _check_choice(self.paradigm, Paradigm, "paradigm")
        _check_choice(self.attention, Attention, "attention")
        _check_choice(self.pooling, Pooling, "pooling")
        if not self.name.isidentifier():
            raise ValueError(f"family name must be an identifier, got {self.name!r}")
        if not self.lora_targets:
            raise ValueError(f"{self.name}: lora_targets must name at least one module")
        if self.published_params <= 0 or self.max_length <= 0:
            raise ValueError(f"{self.name}: published_params and max_length must be positive")
        for key in ("{instruction}", "{text}"):
            if key not in self.prompt_template:
                raise ValueError(f"{self.name}: prompt_template lacks {key}")


@dataclass(frozen=True)
class EncoderOptions:
    """Per-run switches; None means 'the family's own default'."""

    pooling: Pooling | None = None
    attention: Attention | None = None
    max_length: int | None = None
    on_overflow: Overflow = "truncate"
    mean_excludes_instruction: bool = False
    block_size: int = 8  # only for attention="block"

    def __post_init__(self) -> None:
        if self.pooling is not None:
            _check_choice(self.pooling, Pooling, "pooling")
        if self.attention is not None:
            _check_choice(self.attention, Attention, "attention")
        _check_choice(self.on_overflow, Overflow, "on_overflow")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be positive, got {self.block_size}")

    def resolved(self, spec: FamilySpec) -> EncoderOptions:
        return replace(
            self,
            pooling=self.pooling or spec.pooling,
            attention=self.attention or spec.attention,
            max_length=self.max_length or spec.max_length,
        )


SegmentKind = Literal["literal", "instruction", "text", "image"]
_PLACEHOLDER = re.compile(r"\{(image|instruction|text)\}")


@dataclass(frozen=True)
class Segment:
    """A piece of a prompt: template literal, the instruction, the example's text, or the image."""

    kind: SegmentKind
    text: str = ""


def prompt_segments(example: Example, template: str) -> list[Segment]:
    """Fill a family's prompt template as segments, so families can splice image tokens
    where the image goes and know which tokens belong to the instruction."""
    values = {"instruction": example.instruction.strip(), "text": (example.text or "").strip()}
    segments: list[Segment] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        segments.append(Segment("literal", template[cursor : match.start()]))
        key = match.group(1)
        if key == "image":
            if example.image is not None:
                segments.append(Segment("image"))
        else:
            segments.append(Segment("instruction" if key == "instruction" else "text", values[key]))
        cursor = match.end()
    segments.append(Segment("literal", template[cursor:]))
    segments = [s for s in segments if s.kind == "image" or s.text]
    # Separators survive only between two pieces of content: a text-only example of an
    # "{image}\n{instruction} {text}" template must not start with "\n".
    kept: list[Segment] = []
    for i, seg in enumerate(segments):
        if seg.kind == "literal" and not seg.text.strip() and (i == 0 or i == len(segments) - 1 or not kept):
            continue
        kept.append(seg)
    while kept and kept[-1].kind == "literal" and not kept[-1].text.strip():
        kept.pop()
    return kept


def fit_text_ids(ids: list[int], budget: int, on_overflow: Overflow, what: str = "text") -> list[int]:
    """Cut text token ids to a budget, warning (or failing) instead of silently truncating."""
    if len(ids) <= budget:
        return ids
    if on_overflow == "error" or budget <= 0:
        raise InputTooLongError(
            f"{what} needs {len(ids)} tokens but only {max(budget, 0)} fit the model's limit; "
            "shorten the text, raise max_length, or allow truncation (on_overflow='truncate')."
        )
    log.warning("truncating %s from %d to %d tokens (max_length)", what, len(ids), budget)
    return ids[:budget]


@dataclass
class ParamCount:
    total: int
    by_part: dict[str, int] = field(default_factory=dict)


class VLMEncoder(nn.Module, ABC):
    """A vision-language model used as an embedding model: examples in, unit vectors out.

    Subclasses implement :meth:`collate` (tokenise and preprocess on the CPU) and
    :meth:`hidden_states` (the final *normed* hidden states). Pooling, normalisation,
    length-sorted batching and the attention switch live here, once.
    """

    spec: ClassVar[FamilySpec]

    def __init__(self, options: EncoderOptions | None = None) -> None:
        super().__init__()
        self.options = (options or EncoderOptions()).resolved(self.spec)

    # -- what a family provides -------------------------------------------------------
    tokenizer: Any  # a transformers tokenizer (or processor's tokenizer)
    mask_token_id: int | None = None  # diffusion families: the [MASK] id their LM was trained with

    @abstractmethod
    def collate(self, examples: Sequence[Example]) -> Batch:
        """Turn examples into model inputs (on the CPU).

        The batch always holds `input_ids` (B, L), `attention_mask` (B, L) of 0/1 and
        `token_kinds` (B, L) int8 (KIND_* constants), plus whatever the family's forward
        needs (pixel values, image sizes, grid sizes ...). Image positions in `input_ids`
        hold the family's image token ids (or image code ids, for MMaDA).
        """

    @abstractmethod
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        """The language model's last hidden states after its final norm, (B, L, D).

        Reads token ids from `batch["input_ids"]`, so callers may mask ids first (the
        demo's diffusion pretraining does).
        """

    @abstractmethod
    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """The LM head: (B, L, D) -> (B, L, V) with row i scoring token i; with a (B, L) bool
        `positions`, only those rows, (N, V) (a full vocabulary at every position is costly).
        Used only for pretraining."""

    @abstractmethod
    def input_embeddings(self) -> nn.Embedding:
        """The language model's token-embedding table (the demo seeds it with pretrained rows)."""

    # Whether image positions of `input_ids` hold discrete image-code ids a language model can
    # predict (MMaDA's MAGVIT-v2 codes) rather than placeholders replaced by features.
    image_tokens_are_codes: ClassVar[bool] = False

    def image_tokenizer(self) -> TrainableImageTokenizer | None:
        """The discrete image tokenizer of families that have one (MMaDA's MAGVIT-v2). The demo
        fits it from scratch before pretraining; it stays frozen afterwards."""
        return None

    @abstractmethod
    def save_original(self, directory: str) -> None:
        """Write weights, config and tokenizer in the published checkpoint's layout, so that
        `from_pretrained(directory)` reads it back through the real loading code."""

    @abstractmethod
    def apply_attention(self, attention: Attention) -> None:
        """Switch the language model between causal, bidirectional and block attention."""

    @classmethod
    @abstractmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> VLMEncoder:
        """A randomly initialised model of the real or tiny configuration (tiny: same classes)."""

    @classmethod
    @abstractmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        options: EncoderOptions | None = None,
    ) -> VLMEncoder:
        """Load a published checkpoint (local directory or hub id)."""

    def lora_target_modules(self, train_vision: bool = False) -> list[str]:
        """Full module names for LoRA: the LM's targets, never the output head."""
        names = []
        for name, module in self.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            in_vision = any(name.startswith(p) or f".{p}" in name for p in self.spec.vision_modules)
            if in_vision and not train_vision:
                continue
            suffix = name.split(".")[-1]
            vision_target = in_vision and train_vision and (
                not self.spec.vision_lora_targets or suffix in self.spec.vision_lora_targets)
            if vision_target or (not in_vision and suffix in self.spec.lora_targets):
                names.append(name)
        return names

    # -- shared machinery -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def set_options(self, options: EncoderOptions) -> None:
        self.options = options.resolved(self.spec)
        self.apply_attention(self.options.attention)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Pooled, L2-normalised embeddings (B, D) in float32."""
        batch = move_to(batch, self.device)
        hidden = self.hidden_states(batch)  # (B, L, D)
        mask = batch["attention_mask"]
        pooled = pool(hidden, mask, self.pool_mask(batch), self.options.pooling)  # (B, D)
        return F.normalize(pooled.float(), dim=-1)

    def pool_mask(self, batch: Batch) -> torch.Tensor:
        """Positions a mean pool averages: all real tokens, minus the instruction if asked."""
        mask = batch["attention_mask"].bool()
        if self.options.mean_excludes_instruction:
            mask = mask & (batch["token_kinds"] != KIND_INSTRUCTION)
        return mask

    @torch.no_grad()
    def encode(self, examples: Sequence[Example], batch_size: int = 16, progress: bool = False) -> torch.Tensor:
        """Embed examples, (N, D) float32 on the CPU, in input order.

        Batches are formed from examples of similar size so little compute goes to padding;
        padding never changes an example's embedding, so the order is free.
        """
        if not examples:
            return torch.empty(0, 0)
        was_training = self.training
        self.eval()
        order = sorted(range(len(examples)), key=lambda i: _size_key(examples[i]))
        out: list[torch.Tensor | None] = [None] * len(examples)
        chunks = list(_chunks(order, batch_size))
        iterator: Any = chunks
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(chunks, desc=f"encode {self.spec.name}", unit="batch")
        for idx in iterator:
            vecs = self(self.collate([examples[i] for i in idx])).cpu()
            for j, i in enumerate(idx):
                out[i] = vecs[j]
        self.train(was_training)
        return torch.stack(out)  # type: ignore[arg-type]

    def count_parameters(self) -> ParamCount:
        parts: dict[str, int] = {}
        for name, p in self.named_parameters():
            top = name.split(".")[0]
            parts[top] = parts.get(top, 0) + p.numel()
        return ParamCount(total=sum(parts.values()), by_part=parts)


def _size_key(example: Example) -> tuple[int, int]:
    return (example.image is not None, len(example.instruction) + len(example.text or ""))


def _chunks(seq: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])


def move_to(batch: Mapping[str, Any], device: torch.device) -> Batch:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def checked_image(image: Image.Image, max_pixels: int | None = None) -> Image.Image:
    """An RGB copy of an example's image, or a clear ImageError for what cannot be embedded."""
    return prepare_image(image, max_pixels=max_pixels)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only real tokens, so left padding does not shift them."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def block_ids(attention_mask: torch.Tensor, block_size: int) -> torch.Tensor:
    """Block index of each real token (padding gets -1): bidirectional within, causal across."""
    pos = position_ids_from_mask(attention_mask)
    ids = torch.div(pos, block_size, rounding_mode="floor")
    return torch.where(attention_mask.bool(), ids, torch.full_like(ids, -1))


def attention_mask_4d(
    attention_mask: torch.Tensor, attention: Attention, dtype: torch.dtype, block_size: int = 8
) -> torch.Tensor:
    """An additive (B, 1, L, L) mask for families whose modules take a ready 4D mask.

    Padded keys are always masked. Rows of padded queries keep their own position so
    no row is all -inf (which would make NaNs).
    """
    keep = attention_mask.bool()  # (B, L)
    length = keep.shape[1]
    allowed = keep[:, None, :].expand(-1, length, -1)  # (B, Lq, Lk)
    if attention != "bidirectional":
        pos = position_ids_from_mask(attention_mask)
        if attention == "causal":
            order_ok = pos[:, None, :] <= pos[:, :, None]
        else:
            blocks = torch.div(pos, block_size, rounding_mode="floor")
            order_ok = blocks[:, None, :] <= blocks[:, :, None]
        allowed = allowed & order_ok
    eye = torch.eye(length, dtype=torch.bool, device=keep.device)[None]
    allowed = allowed | eye
    mask = torch.zeros(allowed.shape, dtype=dtype, device=keep.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


__all__ = [
    "KIND_IMAGE",
    "KIND_INSTRUCTION",
    "KIND_PAD",
    "KIND_SPECIAL",
    "KIND_TEMPLATE",
    "KIND_TEXT",
    "Attention",
    "Batch",
    "EmptyExampleError",
    "EncoderOptions",
    "Example",
    "FamilySpec",
    "ImageError",
    "InputTooLongError",
    "Paradigm",
    "Segment",
    "VLMEncoder",
    "attention_mask_4d",
    "block_ids",
    "prompt_segments",
    "checked_image",
    "fit_text_ids",
    "move_to",
    "position_ids_from_mask",
]
