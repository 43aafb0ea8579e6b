"""LLaVA-1.6 (LLaVA-NeXT) Mistral-7B as an embedding model (the paper's first autoregressive VLM).

Runs as transformers' `LlavaNextForConditionalGeneration`, full model with its LM head, so
the llava-hf checkpoint loads with no unexpected keys. Images go through anyres tiling
(a base 336 px view plus up to four tiles of a 672/1008 px grid) and CLIP ViT-L/14-336;
every projected feature, the `image_newline` rows included, takes one `<image>` (32000)
slot in the prompt. The language model gets position ids counted over real tokens, so
left and right padding give the same states.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoProcessor,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
)

from pipeline.models.base import Batch, EncoderOptions, FamilySpec, Size, position_ids_from_mask
from pipeline.models.checkpoint import KeyMap, KeyRule, resolve_local
from pipeline.models.families._transformers_vlm import TransformersVLM, load_vlm
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

IMAGE_TOKEN = "<image>"

# llava-hf/llava-v1.6-mistral-7b-hf config.json, value for value (fields it leaves out take
# transformers' defaults: Mistral hidden 4096, 32 layers, 32 heads; CLIP quick_gelu, eps 1e-5).
LLAVA_V16_MISTRAL_7B_CONFIG: dict[str, Any] = {
    "architectures": ["LlavaNextForConditionalGeneration"],
    "ignore_index": -100,
    "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    "image_token_index": 32000,
    "model_type": "llava_next",
    "projector_hidden_act": "gelu",
    "text_config": {
        "_name_or_path": "mistralai/Mistral-7B-Instruct-v0.2",
        "architectures": ["MistralForCausalLM"],
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "torch_dtype": "bfloat16",
        "vocab_size": 32064,
    },
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_image_newline_parameter": True,
    "vision_config": {
        "hidden_size": 1024,
        "image_size": 336,
        "intermediate_size": 4096,
        "model_type": "clip_vision_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "patch_size": 14,
        "projection_dim": 768,
        "vocab_size": 32000,
    },
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "vocab_size": 32064,
}

# The tiny preset: same classes, 56 px CLIP views (4x4 patches), a 2x2 anyres grid at most.
TINY_VIEW, TINY_PINPOINTS = 56, [[56, 112], [112, 56], [112, 112]]

# llava-hf's checkpoint keeps the transformers 4.3x module names; 5.x nests the parts under
# `model.` and drops CLIP's `vision_model.` level (transformers converts the same way on load).
LLAVA_HUB_KEYS = KeyMap([
    KeyRule("language_model.lm_head.weight", "lm_head.weight", "untied output head"),
    KeyRule("language_model.model.{rest}", "model.language_model.{rest}", "Mistral decoder"),
    KeyRule("vision_tower.vision_model.{rest}", "model.vision_tower.{rest}", "CLIP ViT-L/14-336"),
    KeyRule("multi_modal_projector.{rest}", "model.multi_modal_projector.{rest}", "2-layer GELU MLP"),
    KeyRule("image_newline", "model.image_newline", "row-end vector of anyres tiles"),
])


def _processor(image_processor: LlavaNextImageProcessorPil, tokenizer: Any, config: LlavaNextConfig) -> LlavaNextProcessor:
    return LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_token=IMAGE_TOKEN,
        patch_size=config.vision_config.patch_size, num_additional_image_tokens=1,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
    )


def tiny_config(tokenizer: Any) -> LlavaNextConfig:
    return LlavaNextConfig(
        text_config={
            "model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32064, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "rope_theta": 1e6, "sliding_window": None,
        },
        vision_config={
            "model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
            "num_hidden_layers": 2, "image_size": TINY_VIEW, "patch_size": 14, "projection_dim": 32,
        },
        image_grid_pinpoints=TINY_PINPOINTS, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        projector_hidden_act="gelu", tie_word_embeddings=False, vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )


@register
class LlavaNextEncoder(TransformersVLM):
    spec = FamilySpec(
        name="llava_next",
        display_name="LLaVA-1.6 Mistral-7B",
        paper_name="LLaVA-1.6",
        paradigm="autoregressive",
        attention="causal",
        pooling="eos",
        hub_id="llava-hf/llava-v1.6-mistral-7b-hf",
        vision_encoder="CLIP ViT-L/14-336 (24 layers, width 1024), feature layer -2, anyres tiling",
        backbone="Mistral-7B-Instruct-v0.2 (32 layers, hidden 4096, 32 / 8 heads, MLP 14336, vocab 32064)",
        image_placeholder=IMAGE_TOKEN,
        padding_side="left",
        lora_targets=LM_PROJECTIONS,
        vision_modules=("vlm.model.vision_tower",),
        trains_vision=True,  # VLM2Vec's default LoRA targets reach the tower (Sec. 6 RQ3)
        vision_lora_targets=("q_proj", "k_proj", "v_proj", "out_proj"),  # CLIP-L attention
        published_params=7_566_747_648,
        params_source=(
            "llava-hf/llava-v1.6-mistral-7b-hf config.json built as transformers 5.23 "
            "LlavaNextForConditionalGeneration on the meta device; "
            "the published model.safetensors.index.json tensor shapes sum to the same"
        ),
        max_length=4096,
        prompt_template="{image}\n{instruction} {text}",
        notes=(
            "BOS + prompt + EOS (</s>); the EOS state is the embedding. An image takes 1,000-2,900 "
            "tokens (anyres). The loaded tokenizer's padding side is used; embeddings do not depend on it."
        ),
    )
    keymap = LLAVA_HUB_KEYS

    def __init__(self, vlm: torch.nn.Module, processor: LlavaNextProcessor, options: EncoderOptions | None = None):
        self.processor = processor
        super().__init__(vlm, processor.tokenizer, processor.image_processor, options)

    @property
    def image_token_id(self) -> int:
        return int(self.vlm.config.image_token_id)

    def prefix_ids(self) -> list[int]:
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None else []

    def encode_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        processed = self.run_image_processor(images)
        # The processor knows how many features anyres tiling, unpadding and newlines give.
        sizes = [[im.height, im.width] for im in images]
        counts = self.processor._get_num_multimodal_tokens(image_sizes=sizes).num_image_tokens
        return {"pixel_values": processed["pixel_values"], "image_sizes": processed["image_sizes"]}, list(counts)

    def run_language_model(self, batch: Batch, attention_mask: torch.Tensor) -> torch.Tensor:
        pixels = batch.get("pixel_values")
        out = self.vlm.model(
            input_ids=batch["input_ids"],
            pixel_values=pixels.to(self.dtype) if pixels is not None else None,
            image_sizes=batch.get("image_sizes"),
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(batch["attention_mask"]),
            use_cache=False,
        )
        return out.last_hidden_state  # MistralModel applies its final RMSNorm

    def save_preprocessing(self, directory: Any) -> None:
        self.processor.save_pretrained(directory)

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> LlavaNextEncoder:
        tokenizer = tiny_tokenizer([IMAGE_TOKEN], padding_side=cls.spec.padding_side)
        if size == "tiny":
            config = tiny_config(tokenizer)
            image_processor = LlavaNextImageProcessorPil(
                size={"shortest_edge": TINY_VIEW}, crop_size={"height": TINY_VIEW, "width": TINY_VIEW},
                image_grid_pinpoints=TINY_PINPOINTS,
            )
        else:
            # No hub here: random real-size weights get the offline tokenizer; the image id
            # comes from the published config, so the prompt layout is the real one.
            config = LlavaNextConfig(**LLAVA_V16_MISTRAL_7B_CONFIG)
            image_processor = LlavaNextImageProcessorPil(
                size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                image_grid_pinpoints=config.image_grid_pinpoints,
            )
        torch.manual_seed(seed)
        vlm = LlavaNextForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=torch.float32)
        return cls(vlm.eval(), _processor(image_processor, tokenizer, config), options)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        options: EncoderOptions | None = None,
    ) -> LlavaNextEncoder:
        local = resolve_local(path_or_id)
        vlm = load_vlm(LlavaNextForConditionalGeneration, local, dtype, device, where=f"{cls.spec.name} checkpoint {local}")
        processor = AutoProcessor.from_pretrained(str(local))
        # Older llava-hf processor configs lack the fields that size the image prompt.
        if getattr(processor, "patch_size", None) is None:
            processor = _processor(processor.image_processor, processor.tokenizer, vlm.config)
        return cls(vlm, processor, options)
