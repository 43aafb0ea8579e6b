"""Qwen2.5-VL-7B-Instruct as an embedding model (the paper's second autoregressive VLM).

Runs as transformers' `Qwen2_5_VLForConditionalGeneration`. An image enters the prompt as
`<|vision_start|>` + one `<|image_pad|>` (151655) per merged 28x28 patch + `<|vision_end|>`,
exactly as Qwen's processor lays it out; the language model places those tokens with
M-RoPE (temporal, height, width) positions from the model's own `get_rope_index`, which
reads the 2D padding mask, so positions never depend on the padding side.
"""

from __future__ import annotations

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

from pipeline.models.base import Batch, EncoderOptions, FamilySpec, Size
from pipeline.models.checkpoint import resolve_local
from pipeline.models.families import _qwen_vl as qwen
from pipeline.models.families._transformers_vlm import TransformersVLM, load_vlm
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer


@register
class Qwen25VLEncoder(TransformersVLM):
    spec = FamilySpec(
        name="qwen2_5_vl",
        display_name="Qwen2.5-VL-7B",
        paper_name="Qwen2.5-VL",
        paradigm="autoregressive",
        attention="causal",
        pooling="eos",
        hub_id="Qwen/Qwen2.5-VL-7B-Instruct",
        vision_encoder="Qwen2.5-VL ViT (32 blocks, width 1280, 14 px patches, 2x2 merge, window attention)",
        backbone="Qwen2.5-7B (28 layers, hidden 3584, 28 / 4 heads, MLP 18944, M-RoPE [16, 24, 24])",
        image_placeholder=f"{qwen.VISION_START}{qwen.IMAGE_PAD}{qwen.VISION_END}",
        padding_side="left",
        lora_targets=LM_PROJECTIONS,
        vision_modules=("vlm.model.visual",),
        trains_vision=True,  # VLM2Vec's default LoRA targets reach the tower (Sec. 6 RQ3)
        vision_lora_targets=("down_proj",),  # the ViT MLP's; its attention is `qkv` / `proj`
        published_params=8_292_166_656,
        params_source=(
            "Qwen/Qwen2.5-VL-7B-Instruct config.json built as transformers 5.23 Qwen2_5_VLForConditionalGeneration "
            "on the meta device; the published model.safetensors.index.json tensor shapes sum to the same"
        ),
        max_length=8192,
        prompt_template="{image}\n{instruction} {text}",
        notes=(
            "EOS (the tokenizer's eos, <|im_end|> for the Instruct tokenizer) is appended and pooled. "
            "Images are capped at 1,280 visual tokens (VLM2Vec's Qwen setting). The loaded tokenizer's "
            "padding side is used; embeddings do not depend on it."
        ),
    )
    keymap = qwen.QWEN_HUB_KEYS

    @property
    def image_token_id(self) -> int:
        return int(self.vlm.config.image_token_id)

    def image_ids(self, count: int) -> list[int]:
        config = self.vlm.config
        return [config.vision_start_token_id, *([self.image_token_id] * count), config.vision_end_token_id]

    def encode_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        return qwen.encode_images(self, images)

    def run_language_model(self, batch: Batch, attention_mask: torch.Tensor) -> torch.Tensor:
        input_ids, padding = batch["input_ids"], batch["attention_mask"]
        grid = batch.get("image_grid_thw")
        # (3, B, L) temporal/height/width positions; text tokens advance all three together.
        positions, _ = self.vlm.model.get_rope_index(
            input_ids, mm_token_type_ids=(input_ids == self.image_token_id).int(),
            image_grid_thw=grid, attention_mask=padding,
        )
        out = self.vlm.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False,
            **qwen.vision_inputs(self, batch),
        )
        return out.last_hidden_state  # Qwen2_5_VLTextModel applies its final RMSNorm

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> Qwen25VLEncoder:
        if size == "tiny":
            tokenizer, image_processor = qwen.tiny_preprocessing()
            config = qwen.tiny_config(tokenizer)
        else:
            # No hub here: random real-size weights get the offline tokenizer; the image ids
            # come from the published config, so the prompt layout is the real one.
            tokenizer = tiny_tokenizer(qwen.TINY_SPECIAL_TOKENS)
            image_processor = qwen.real_image_processor()
            config = qwen.real_config()
        tokenizer.padding_side = cls.spec.padding_side
        return cls(qwen.new_model(config, seed), tokenizer, image_processor, options)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        options: EncoderOptions | None = None,
    ) -> Qwen25VLEncoder:
        local = resolve_local(path_or_id)
        tokenizer = AutoTokenizer.from_pretrained(str(local))
        image_processor = qwen.cap_pixels(AutoImageProcessor.from_pretrained(str(local)))
        vlm = load_vlm(Qwen2_5_VLForConditionalGeneration, local, dtype, device, where=f"{cls.spec.name} checkpoint {local}")
        return cls(vlm, tokenizer, image_processor, options)
