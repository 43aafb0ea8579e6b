"""A dummy family written by following docs/models.md, "Adding a family", to the letter.

Its "VLM" is one bidirectional attention layer over token embeddings and four image tokens
(2x2 mean colours, projected). Its published layout is its own state dict in safetensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pipeline.models.base import (
    KIND_IMAGE,
    KIND_PAD,
    KIND_TEXT,
    Attention,
    Batch,
    EncoderOptions,
    Example,
    FamilySpec,
    Size,
    VLMEncoder,
    attention_mask_4d,
    checked_image,
)
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

WIDTH = {"tiny": 32, "real": 4096}
IMAGE_TOKENS = 4


class DummyLM(nn.Module):
    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, width)
        self.image_proj = nn.Linear(3, width)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(width, width) for _ in range(4))
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)


@register
class DummyEncoder(VLMEncoder):
    spec = FamilySpec(
        name="dummy", display_name="Dummy", paradigm="diffusion", attention="bidirectional", pooling="mean",
        hub_id="example/dummy", vision_encoder="2x2 mean colours", backbone="one attention layer",
        image_placeholder="<image>", padding_side="right", lora_targets=LM_PROJECTIONS,
        vision_modules=("lm.image_proj",), published_params=329_302_016,
        params_source="meta-device count of this file's real size (WIDTH 4096)", max_length=64,
    )

    def __init__(self, size: Size = "tiny", options: EncoderOptions | None = None):
        super().__init__(options)
        self.tokenizer = tiny_tokenizer()
        self.lm = DummyLM(len(self.tokenizer), WIDTH[size])
        self.padding_side = "right"
        self.attention: Attention = self.options.attention

    def collate(self, examples: Sequence[Example]) -> Batch:
        rows, kinds, images = [], [], []
        for ex in examples:
            text = f"{ex.instruction} {ex.text or ''}".strip()
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.options.max_length]
            n_image = IMAGE_TOKENS if ex.image is not None else 0
            rows.append([0] * n_image + ids)
            kinds.append([KIND_IMAGE] * n_image + [KIND_TEXT] * len(ids))
            colours = torch.zeros(IMAGE_TOKENS, 3)
            if ex.image is not None:
                small = checked_image(ex.image).resize((2, 2))
                colours = torch.tensor(list(small.getdata()), dtype=torch.float32) / 255
            images.append(colours)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        kind = torch.full((len(rows), width), KIND_PAD, dtype=torch.int8)
        for i, (r, k) in enumerate(zip(rows, kinds, strict=True)):
            at = slice(width - len(r), width) if self.padding_side == "left" else slice(0, len(r))
            ids[i, at], mask[i, at], kind[i, at] = torch.tensor(r), 1, torch.tensor(k, dtype=torch.int8)
        return {"input_ids": ids, "attention_mask": mask, "token_kinds": kind, "colours": torch.stack(images)}

    def hidden_states(self, batch: Batch) -> torch.Tensor:
        lm = self.lm
        x = lm.embed_tokens(batch["input_ids"])  # (B, L, D)
        is_image = batch["token_kinds"] == KIND_IMAGE  # (B, L): 4 positions in each row with an image
        features = lm.image_proj(batch["colours"])[is_image.any(dim=1)]  # (images, 4, D)
        x = x.masked_scatter(is_image.unsqueeze(-1), features.to(x.dtype))
        bias = attention_mask_4d(batch["attention_mask"], self.attention, x.dtype)  # (B, 1, L, L)
        scores = lm.q_proj(x) @ lm.k_proj(x).transpose(1, 2) / x.shape[-1] ** 0.5 + bias[:, 0]
        return lm.norm(x + lm.o_proj(scores.softmax(-1) @ lm.v_proj(x)))

    def output_logits(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm.lm_head(hidden)

    def input_embeddings(self) -> nn.Embedding:
        return self.lm.embed_tokens

    def apply_attention(self, attention: Attention) -> None:
        self.attention = attention

    def save_original(self, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(directory) / "model.safetensors"))

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> DummyEncoder:
        torch.manual_seed(seed)
        return cls(size, options)

    @classmethod
    def from_pretrained(cls, path_or_id: str, dtype: torch.dtype = torch.bfloat16,
                        device: str | torch.device | None = None, options: EncoderOptions | None = None) -> DummyEncoder:
        encoder = cls("tiny", options)
        encoder.load_state_dict(load_file(str(Path(path_or_id) / "model.safetensors")))
        return encoder.to(device=device, dtype=dtype)
