"""Dual encoders (CLIP, SigLIP) as embedding models beside the VLMs: MMEB's standard baselines.

A dual encoder has no language model reading the image: a vision tower embeds the image, a
text tower embeds the text, and each tower's projection head (CLIP's `visual_projection` /
`text_projection`, SigLIP's attention-pooling and text heads) gives `image_embeds` and
`text_embeds` in one shared space. An example with both an image and text (the instruction
counts as text, as it does for the VLMs) gets the two embeddings *added*, then normalised:
UniIR's score-level fusion (TIGER-AI-Lab/UniIR, `src/models/uniir_clip/clip_scorefusion/
clip_sf.py`, `fuse_embeddings`: `img_emb + txt_emb`), the rule MMEB-style CLIP baselines use for
interleaved inputs. Deviation, labelled: the VLM2Vec repository holds no CLIP baseline code to
check MMEB's own choice against; UniIR is the published source of the rule.

The towers are transformers' own `CLIPModel` / `SiglipModel`, so published checkpoints load
with their own key names and `save_original` writes them back the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.base import (
    KIND_INSTRUCTION,
    KIND_TEXT,
    Attention,
    Batch,
    EncoderOptions,
    Example,
    ImageError,
    VLMEncoder,
    checked_image,
    move_to,
    prompt_segments,
)
from pipeline.models.checkpoint import resolve_local, write_state_dict
from pipeline.models.families._transformers_vlm import load_vlm
from pipeline.models.lora import VLM2VEC_LORA_TARGETS
from pipeline.models.prompting import pad_sequences, tokenize_segments

log = logging.getLogger(__name__)

# LoRA targets in both towers: VLM2Vec's default `lora_target_modules` (pipeline.models.lora) cut to the
# layers a CLIP / SigLIP encoder block has, its attention projections (the MLP's fc1/fc2 are not in that list).
TOWER_PROJECTIONS = tuple(t for t in VLM2VEC_LORA_TARGETS if t in ("q_proj", "k_proj", "v_proj", "out_proj"))


class DualEncoder(VLMEncoder):
    """A transformers dual encoder (`towers`) behind the VLMEncoder interface.

    Subclasses give the model class, the configs and how the text tower wants its padding.
    """

    model_class: ClassVar[Any]
    # SigLIP was trained on text padded to a fixed length and reads the last position, so
    # its text is padded to `max_length` (as its model card asks); CLIP pools at EOS.
    pad_text_to_max_length: ClassVar[bool] = False

    def __init__(self, towers: nn.Module, tokenizer: Any, image_processor: Any, options: EncoderOptions | None = None):
        super().__init__(options)
        if self.options.pooling != self.spec.pooling or self.options.attention != self.spec.attention:
            raise ValueError(f"{self.spec.name} pools with its projection heads and keeps its {self.spec.attention} "
                             "text attention; leave pooling and attention unset for it")
        self.towers = towers
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        # Positions are absolute (a learned table), so text is always right-padded; the attribute
        # is kept because callers of every family may set it, and it changes nothing here.
        self.padding_side = "right"

    # -- inputs ---------------------------------------------------------------------------
    def _text_ids(self, example: Example) -> tuple[list[int], list[int]]:
        segments = [s for s in prompt_segments(example, self.spec.prompt_template) if s.kind != "image"]
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        return tokenize_segments(self.tokenizer, segments, lambda _: [], self.options.max_length,
                                 self.options.on_overflow, prefix_ids=[bos] if bos is not None else [],
                                 suffix_ids=[eos] if eos is not None else [])

    def collate(self, examples: Sequence[Example]) -> Batch:
        """Text ids for the text tower, pixels for the vision tower, and which rows have which."""
        rows, kinds = zip(*(self._text_ids(ex) for ex in examples), strict=True)
        batch: Batch = pad_sequences(rows, kinds, self.tokenizer.pad_token_id, "right")
        if self.pad_text_to_max_length:
            extra = self.options.max_length - batch["input_ids"].shape[1]
            batch["input_ids"] = F.pad(batch["input_ids"], (0, extra), value=self.tokenizer.pad_token_id)
            batch["attention_mask"] = F.pad(batch["attention_mask"], (0, extra))
            batch["token_kinds"] = F.pad(batch["token_kinds"], (0, extra))  # KIND_PAD is 0
        kind = batch["token_kinds"]
        batch["has_text"] = ((kind == KIND_TEXT) | (kind == KIND_INSTRUCTION)).any(dim=1)
        batch["has_image"] = torch.tensor([ex.image is not None for ex in examples])
        images = [checked_image(ex.image) for ex in examples if ex.image is not None]
        if images:
            try:
                batch["pixel_values"] = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
            except ValueError as exc:
                raise ImageError(f"{self.spec.name} cannot preprocess an image of the batch: {exc}") from exc
        return batch

    # -- the two towers ---------------------------------------------------------------------
    def _text_inputs(self, batch: Batch, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": batch["input_ids"][rows]}
        if not self.pad_text_to_max_length:
            inputs["attention_mask"] = batch["attention_mask"][rows]
        return inputs

    def text_embeds(self, batch: Batch, rows: torch.Tensor) -> torch.Tensor:
        """The text head's output for `rows` of the batch, (n, D), not normalised."""
        out = self.towers.get_text_features(**self._text_inputs(batch, rows))
        return getattr(out, "pooler_output", out)

    def image_embeds(self, batch: Batch) -> torch.Tensor:
        """The vision head's output for the batch's images, (n_images, D), not normalised."""
        out = self.towers.get_image_features(pixel_values=batch["pixel_values"].to(self.dtype))
        return getattr(out, "pooler_output", out)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Image, text or fused (image + text) embeddings, L2-normalised, (B, D) float32."""
        batch = move_to(batch, self.device)
        has_text, has_image = batch["has_text"], batch["has_image"]
        if not (has_text | has_image).all():
            raise ValueError("an example has neither text nor an image; give it one of them")
        fused: torch.Tensor | None = None
        for rows, embeds in ((has_text, lambda: self.text_embeds(batch, has_text)), (has_image, lambda: self.image_embeds(batch))):
            if rows.any():
                part = embeds().float()  # (rows, D)
                if fused is None:
                    fused = part.new_zeros(len(rows), part.shape[-1])
                fused = fused.index_put((rows.nonzero()[:, 0],), part, accumulate=True)  # image + text: their sum
        return F.normalize(fused, dim=-1)

    def image_text_loss(self, batch: Batch) -> torch.Tensor:
        """The family's own pretraining objective on image-caption rows (CLIP's softmax
        contrastive loss, SigLIP's sigmoid loss), as transformers computes it."""
        batch = move_to(batch, self.device)
        if not (batch["has_text"].all() and batch["has_image"].all()):
            raise ValueError("image-text pretraining needs an image and a caption in every row")
        inputs = self._text_inputs(batch, batch["has_text"])
        return self.towers(**inputs, pixel_values=batch["pixel_values"].to(self.dtype), return_loss=True).loss

    def lora_target_modules(self, train_vision: bool = False) -> list[str]:
        """The base rule, minus `out_proj` of torch MultiheadAttention (SigLIP's pooling head): torch
        reads that layer's weight directly, so an adapter there would never train."""
        inside_mha = {f"{name}.out_proj" for name, m in self.named_modules() if isinstance(m, nn.MultiheadAttention)}
        return [name for name in super().lora_target_modules(train_vision) if name not in inside_mha]

    # -- what a VLM has and a dual encoder has not ------------------------------------------
    def hidden_states(self, batch: Batch) -> torch.Tensor:
        """The text tower's last hidden states (after its final norm)."""
        batch = move_to(batch, self.device)
        rows = torch.ones(batch["input_ids"].shape[0], dtype=torch.bool, device=self.device)
        return self.towers.text_model(**self._text_inputs(batch, rows)).last_hidden_state

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{self.spec.name} is a dual encoder with no language-model head; "
                                  "pretrain it with its image-text objective (image_text_loss)")

    def input_embeddings(self) -> nn.Embedding:
        return self.towers.text_model.embeddings.token_embedding

    def apply_attention(self, attention: Attention) -> None:
        if attention != self.spec.attention:
            raise ValueError(f"{self.spec.name}'s text tower runs with {self.spec.attention} attention only, "
                             f"got {attention!r}")

    # -- checkpoints ------------------------------------------------------------------------
    def save_original(self, directory: str) -> None:
        """The published layout: transformers' key names, config, tokenizer and image processor."""
        if any("lora_" in name for name, _ in self.named_parameters()):
            raise ValueError(f"{self.spec.name} carries LoRA adapters; merge them before save_original")
        out = Path(directory)
        write_state_dict(self.towers.state_dict(), out)  # the names save_pretrained writes, without its progress bar
        self.towers.config.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        self.image_processor.save_pretrained(out)
        log.info("saved %s in the published layout to %s", self.spec.name, out)

    @classmethod
    def from_pretrained(cls, path_or_id: str, dtype: torch.dtype = torch.bfloat16,
                        device: str | torch.device | None = None, options: EncoderOptions | None = None) -> DualEncoder:
        from transformers import AutoImageProcessor, AutoTokenizer

        local = resolve_local(path_or_id)
        towers = load_vlm(cls.model_class, local, dtype, device, where=f"{cls.spec.name} checkpoint {local}")
        tokenizer = AutoTokenizer.from_pretrained(str(local))
        image_processor = AutoImageProcessor.from_pretrained(str(local))
        return cls(towers, tokenizer, image_processor, options)


def build_towers(model_class: Any, config: Any, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return model_class._from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()
