"""Qwen2.5-VL building blocks shared by the Qwen2.5-VL and DiffusionVL families.

DiffusionVL is Qwen2.5-VL's weights fine-tuned for block diffusion, so both run as
transformers' `Qwen2_5_VLForConditionalGeneration` with the same configs and the same
image processor; they differ in prompt layout, position ids, attention and checkpoint
layout, which stay in their own modules.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

from pipeline.models.checkpoint import KeyMap, KeyRule
from pipeline.models.tokenizer import tiny_tokenizer

# Special tokens of the Qwen2.5 tokenizer (Qwen/Qwen2.5-VL-7B-Instruct config.json).
VISION_START, VISION_END, IMAGE_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"
BOS_ID, EOS_ID = 151643, 151645
VISION_START_ID, VISION_END_ID, VISION_TOKEN_ID, IMAGE_PAD_ID, VIDEO_PAD_ID = 151652, 151653, 151654, 151655, 151656

# Qwen/Qwen2.5-VL-7B-Instruct config.json, value for value (the hub's flat layout).
QWEN25_VL_7B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "attention_dropout": 0.0,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "vision_start_token_id": VISION_START_ID,
    "vision_end_token_id": VISION_END_ID,
    "vision_token_id": VISION_TOKEN_ID,
    "image_token_id": IMAGE_PAD_ID,
    "video_token_id": VIDEO_PAD_ID,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 128000,
    "max_window_layers": 28,
    "model_type": "qwen2_5_vl",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 152064,
}

# Qwen2.5-VL-7B-Instruct preprocessor_config.json: 14 px patches merged 2x2 -> one token per 28x28 px.
PATCH_PIXELS = 28 * 28
REAL_MIN_PIXELS = 3136
# The checkpoint allows 12,845,056 px (16,384 tokens) per image; like VLM2Vec we cap an image
# at 1,280 tokens so a large photo cannot take the whole sequence budget.
EMBED_MAX_PIXELS = 1280 * PATCH_PIXELS

TINY_SPECIAL_TOKENS = (VISION_START, VISION_END, IMAGE_PAD)
TINY_MIN_PIXELS, TINY_MAX_PIXELS = 4 * PATCH_PIXELS, 16 * PATCH_PIXELS


def real_config() -> Qwen2_5_VLConfig:
    return Qwen2_5_VLConfig(**QWEN25_VL_7B_CONFIG)


def tiny_config(tokenizer: Any, vocab_size: int = 32064) -> Qwen2_5_VLConfig:
    """The same classes at toy size: 2 LM layers of width 64, a 2-block ViT of width 32."""
    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": vocab_size, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
            "fullatt_block_indexes": [1], "tokens_per_second": 2,
        },
        image_token_id=ids(IMAGE_PAD), vision_start_token_id=ids(VISION_START), vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=False,
    )


def tiny_preprocessing() -> tuple[Any, Qwen2VLImageProcessorPil]:
    tokenizer = tiny_tokenizer(TINY_SPECIAL_TOKENS)
    return tokenizer, Qwen2VLImageProcessorPil(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS)


def real_image_processor(min_pixels: int = REAL_MIN_PIXELS, max_pixels: int = EMBED_MAX_PIXELS) -> Qwen2VLImageProcessorPil:
    """Qwen2.5-VL's published preprocessing (CLIP mean/std, 14 px patches, 2x2 merge)."""
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


def pixel_budget(image_processor: Any) -> tuple[int | None, int | None]:
    """(min, max) pixels per image of a Qwen2-VL image processor (its `size` dict)."""
    size = image_processor.size
    if isinstance(size, dict):
        return size.get("shortest_edge"), size.get("longest_edge")
    return getattr(size, "shortest_edge", None), getattr(size, "longest_edge", None)


def set_pixel_budget(image_processor: Any, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """Change the (min, max) pixels per image; None keeps the current bound."""
    low, high = pixel_budget(image_processor)
    image_processor.size = {"shortest_edge": min_pixels or low, "longest_edge": max_pixels or high}
    return image_processor


def cap_pixels(image_processor: Any, max_pixels: int = EMBED_MAX_PIXELS) -> Any:
    """Lower the processor's per-image pixel budget to `max_pixels` where it is higher."""
    _, high = pixel_budget(image_processor)
    if high is None or high > max_pixels:
        set_pixel_budget(image_processor, max_pixels=max_pixels)
    return image_processor


def new_model(config: Qwen2_5_VLConfig, seed: int) -> Qwen2_5_VLForConditionalGeneration:
    """A randomly initialised model in fp32 on sdpa (works on the meta device too)."""
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()


def merged_token_counts(grid_thw: torch.Tensor, merge_size: int) -> list[int]:
    """Language-model tokens per image: the (t, h, w) patch grid after the 2x2 merge."""
    return [int(n) for n in (grid_thw.prod(dim=-1) // (merge_size**2)).tolist()]


# Qwen/Qwen2.5-VL-7B-Instruct's hub names -> transformers 5.x module names (transformers'
# own conversion for Qwen2VLForConditionalGeneration does the same when loading).
QWEN_HUB_KEYS = KeyMap([
    KeyRule("visual.{rest}", "model.visual.{rest}", "ViT, patch merger included"),
    KeyRule("model.{rest}", "model.language_model.{rest}", "Qwen2.5 decoder: embeddings, layers, final norm"),
    KeyRule("lm_head.weight", "lm_head.weight", "untied output head (7B)"),
])


def encode_images(encoder: Any, images: list[Any]) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Pixel patches and (t, h, w) grids for a batch's images, and the LM tokens each takes."""
    processed = encoder.run_image_processor(images)
    merge = encoder.vlm.config.vision_config.spatial_merge_size
    tensors = {"pixel_values": processed["pixel_values"], "image_grid_thw": processed["image_grid_thw"]}
    return tensors, merged_token_counts(processed["image_grid_thw"], merge)


def vision_inputs(encoder: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's image tensors for the model call (pixels in the model's dtype)."""
    pixels = batch.get("pixel_values")
    if pixels is None:
        return {}
    return {"pixel_values": pixels.to(encoder.dtype), "image_grid_thw": batch["image_grid_thw"]}
