"""Dream-VL (DreamLM/Dream-VLX, `vl/`; Dream-org/Dream-VL-7B) as an embedding encoder.

Facts read from the public repository (paths relative to `vl/`):

* `DreamVLModel` (eval/lmms_eval/dreamvl/modeling_dreamvl.py): `visual` = the Qwen2-VL ViT
  *including* its PatchMerger (depth 32, width 1280, patch 14, 2x2 merge to 3584), then
  `projector` = Linear(3584, 3584), GELU, Linear(3584, 3584) (25.7M parameters, the paper's
  Table 1), then `model` = Dream-7B with M-RoPE sections [16, 24, 24] and `lm_head`.
* config.json (eval/lmms_eval/dreamvl/config.json): image token 151655 (`<|image_pad|>`),
  vision start / end 151652 / 151653, mask 151666, pad/eos 151643, rope theta 1e6, untied.
* The exported chat template (train/export.py) writes `<|image_pad|>` with no vision start /
  end tokens, so the model's `get_rope_index` finds no image and gives every token the same
  1-D position in all three M-RoPE sections; that matches training, which ran Dream's 1-D
  RoPE (train/llava/model/language_model/llava_dream.py). We give the same positions.
* Images: Qwen2-VL preprocessing (CLIP mean/std, smart resize to multiples of 28 px within
  min/max pixels 3136 / 3211264 per preprocessor_config.json); no newline tokens (the export
  drops LLaVA's `image_newline`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLTextConfig, Qwen2VLVisionConfig
from transformers.models.qwen2_vl.modeling_qwen2_vl import (
    Qwen2VisionTransformerPretrainedModel,
    Qwen2VLTextModel,
)

from pipeline.models.base import Batch, EncoderOptions, Example, FamilySpec, ImageError, Size, checked_image
from pipeline.models.checkpoint import KeyMap, KeyRule
from pipeline.models.families._dream_vlm import DREAM_LOGIT_NOTE, DreamVLMEncoder
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.published import checked_special_id, read_config
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

log = logging.getLogger(__name__)

MASK_TOKEN, PAD_TOKEN, IMAGE_TOKEN = "<|mask|>", "<|endoftext|>", "<|image_pad|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VISION_FIELDS = ("depth", "embed_dim", "hidden_size", "hidden_act", "mlp_ratio", "num_heads", "patch_size",
                 "spatial_merge_size", "temporal_patch_size")


@dataclass
class DreamVLConfig:
    text: Qwen2VLTextConfig
    vision: Qwen2VLVisionConfig
    image_token_id: int = 151655
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    mask_token_id: int = 151666
    pad_token_id: int = 151643
    min_pixels: int = 3136
    max_pixels: int = 3211264
    image_mean: tuple[float, ...] = field(default=CLIP_MEAN)
    image_std: tuple[float, ...] = field(default=CLIP_STD)

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels} / {self.max_pixels}")
        sections = self.text.rope_parameters.get("mrope_section", [])
        head_dim = self.text.hidden_size // self.text.num_attention_heads
        if sum(sections) != head_dim // 2:
            raise ValueError(f"mrope_section {sections} must sum to head_dim/2 = {head_dim // 2}")

    @property
    def image_placeholder_id(self) -> int:
        return self.image_token_id

    # -- presets -----------------------------------------------------------------------
    @classmethod
    def real(cls) -> DreamVLConfig:
        text = _text_config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                            num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=131072,
                            rope_theta=1e6, mrope_section=[16, 24, 24], pad=151643)
        vision = Qwen2VLVisionConfig(depth=32, embed_dim=1280, hidden_size=3584, hidden_act="quick_gelu", mlp_ratio=4,
                                     num_heads=16, in_channels=3, patch_size=14, spatial_merge_size=2,
                                     temporal_patch_size=2)
        return cls(text=text, vision=vision)

    @classmethod
    def tiny(cls, tokenizer: Any) -> DreamVLConfig:
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (MASK_TOKEN, PAD_TOKEN, IMAGE_TOKEN, VISION_START, VISION_END)}
        text = _text_config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1e6,
                            mrope_section=[2, 3, 3], pad=ids[PAD_TOKEN])
        vision = Qwen2VLVisionConfig(depth=2, embed_dim=32, hidden_size=48, hidden_act="quick_gelu", mlp_ratio=2,
                                     num_heads=2, in_channels=3, patch_size=14, spatial_merge_size=2,
                                     temporal_patch_size=2)
        return cls(text=text, vision=vision, image_token_id=ids[IMAGE_TOKEN], vision_start_token_id=ids[VISION_START],
                   vision_end_token_id=ids[VISION_END], mask_token_id=ids[MASK_TOKEN], pad_token_id=ids[PAD_TOKEN],
                   min_pixels=56 * 56, max_pixels=112 * 112)

    # -- published config files --------------------------------------------------------
    def to_published(self) -> dict[str, Any]:
        t, v = self.text, self.vision
        vision = {k: getattr(v, k) for k in VISION_FIELDS}
        vision.update(in_chans=v.in_channels, spatial_patch_size=v.patch_size)
        return {
            "architectures": ["DreamVLModel"], "model_type": "dream-vl", "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads, "hidden_act": t.hidden_act,
            "max_position_embeddings": t.max_position_embeddings, "rms_norm_eps": t.rms_norm_eps,
            "rope_theta": t.rope_parameters["rope_theta"], "rope_scaling": None,
            "mrope_section": list(t.rope_parameters["mrope_section"]), "tie_word_embeddings": False,
            "use_sliding_window": False, "sliding_window": None, "full_attn_mask": True,
            "image_token_id": self.image_token_id, "vision_start_token_id": self.vision_start_token_id,
            "vision_end_token_id": self.vision_end_token_id, "mask_token_id": self.mask_token_id,
            "pad_token_id": self.pad_token_id, "bos_token_id": self.pad_token_id, "eos_token_id": self.pad_token_id,
            "projector_hidden_act": "gelu", "vision_config": vision, "torch_dtype": "bfloat16",
        }

    def to_preprocessor(self) -> dict[str, Any]:
        v = self.vision
        return {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels, "patch_size": v.patch_size,
                "temporal_patch_size": v.temporal_patch_size, "merge_size": v.spatial_merge_size,
                "image_mean": list(self.image_mean), "image_std": list(self.image_std)}

    @classmethod
    def from_published(cls, cfg: dict[str, Any], preprocessor: dict[str, Any] | None = None) -> DreamVLConfig:
        if cfg.get("model_type") != "dream-vl":
            raise ValueError(f"config.json has model_type {cfg.get('model_type')!r}, expected 'dream-vl' (Dream-VL)")
        if cfg.get("projector_hidden_act", "gelu") != "gelu":
            raise NotImplementedError(f"projector activation {cfg['projector_hidden_act']!r}; only 'gelu' is implemented")
        text = _text_config(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                            intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
                            num_attention_heads=cfg["num_attention_heads"],
                            num_key_value_heads=cfg["num_key_value_heads"],
                            max_position_embeddings=cfg.get("max_position_embeddings", 131072),
                            rope_theta=cfg.get("rope_theta", 1e6), mrope_section=cfg.get("mrope_section", [16, 24, 24]),
                            pad=cfg.get("pad_token_id", 151643), rms_norm_eps=cfg.get("rms_norm_eps", 1e-6))
        v = cfg.get("vision_config", {})
        vision = Qwen2VLVisionConfig(**{k: v[k] for k in VISION_FIELDS if k in v},
                                     in_channels=v.get("in_channels", v.get("in_chans", 3)))
        pre = preprocessor or {}
        return cls(text=text, vision=vision, image_token_id=cfg.get("image_token_id", 151655),
                   vision_start_token_id=cfg.get("vision_start_token_id", 151652),
                   vision_end_token_id=cfg.get("vision_end_token_id", 151653),
                   mask_token_id=cfg.get("mask_token_id", 151666), pad_token_id=cfg.get("pad_token_id", 151643),
                   min_pixels=pre.get("min_pixels", 3136), max_pixels=pre.get("max_pixels", 3211264),
                   image_mean=tuple(pre.get("image_mean", CLIP_MEAN)), image_std=tuple(pre.get("image_std", CLIP_STD)))


def _text_config(*, vocab_size: int, hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                 num_attention_heads: int, num_key_value_heads: int, max_position_embeddings: int, rope_theta: float,
                 mrope_section: list[int], pad: int, rms_norm_eps: float = 1e-6) -> Qwen2VLTextConfig:
    """Dream's decoder as a Qwen2-VL text model: Qwen2 layers with multimodal RoPE."""
    return Qwen2VLTextConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads, max_position_embeddings=max_position_embeddings,
        rms_norm_eps=rms_norm_eps, tie_word_embeddings=False, use_sliding_window=False,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta, "mrope_section": list(mrope_section)},
        pad_token_id=pad, bos_token_id=pad, eos_token_id=pad,
    )


KEY_MAP = KeyMap(
    [
        KeyRule("model.embed_tokens.weight", "language_model.embed_tokens.weight", "Dream token embeddings"),
        KeyRule("model.layers.{n}.{rest}", "language_model.layers.{n}.{rest}", "Dream decoder layers (Qwen2 names)"),
        KeyRule("model.norm.weight", "language_model.norm.weight", "final RMSNorm"),
        KeyRule("lm_head.weight", "lm_head.weight", "untied output head"),
        KeyRule("visual.{rest}", "visual.{rest}", "Qwen2-VL ViT incl. PatchMerger (names as in transformers)"),
        KeyRule("projector.linear_1.{rest}", "projector.linear_1.{rest}", "projector, first linear"),
        KeyRule("projector.linear_2.{rest}", "projector.linear_2.{rest}", "projector, second linear"),
    ],
    drop=["model.layers.{n}.self_attn.rotary_emb.inv_freq", "model.rotary_emb.inv_freq", "visual.rotary_pos_emb.inv_freq"],
)


@register
class DreamVLEncoder(DreamVLMEncoder):
    spec = FamilySpec(
        name="dream_vl",
        display_name="Dream-VL",
        paradigm="diffusion",
        attention="bidirectional",
        pooling="mean",
        hub_id="Dream-org/Dream-VL-7B",
        vision_encoder="Qwen2-VL ViT (depth 32, width 1280, patch 14, 2x2 merger) + 2-layer GELU projector",
        backbone="Dream-v0-Instruct-7B (Qwen2.5-7B shape, M-RoPE [16,24,24]), bidirectional",
        image_placeholder="<|image_pad|>",
        padding_side="right",
        lora_targets=LM_PROJECTIONS,
        vision_modules=("visual",),
        published_params=8_300_000_000,
        params_source="Dream-VL paper (arXiv 2512.22615), Table 1: 'Full Model: 8.3B' trainable (projector 25.7M)",
        max_length=8192,
        prompt_template="{image}{instruction} {text}",
        notes=DREAM_LOGIT_NOTE,
    )
    key_map = KEY_MAP

    def __init__(self, config: DreamVLConfig, tokenizer: Any, options: EncoderOptions | None = None,
                 implementation: str = "sdpa") -> None:
        super().__init__(config, tokenizer, options, implementation)
        self.visual = Qwen2VisionTransformerPretrainedModel._from_config(config.vision)
        self.language_model = Qwen2VLTextModel._from_config(config.text)
        v = config.vision
        self.image_processor = Qwen2VLImageProcessorPil(
            min_pixels=config.min_pixels, max_pixels=config.max_pixels, patch_size=v.patch_size,
            temporal_patch_size=v.temporal_patch_size, merge_size=v.spatial_merge_size,
            image_mean=list(config.image_mean), image_std=list(config.image_std),
        )
        self.apply_attention(self.options.attention)

    @classmethod
    def preset(cls, size: Size) -> tuple[DreamVLConfig, Any]:
        tokenizer = tiny_tokenizer([PAD_TOKEN, MASK_TOKEN, IMAGE_TOKEN, VISION_START, VISION_END])
        return (DreamVLConfig.real() if size == "real" else DreamVLConfig.tiny(tokenizer)), tokenizer

    @classmethod
    def config_from_published(cls, directory: Path, tokenizer: Any) -> DreamVLConfig:
        pre_path = directory / "preprocessor_config.json"
        pre = json.loads(pre_path.read_text()) if pre_path.is_file() else None
        if pre is None:
            log.warning("%s has no preprocessor_config.json; using Dream-VL's published pixel limits", directory)
        config = DreamVLConfig.from_published(read_config(directory), pre)
        checked_special_id(tokenizer, MASK_TOKEN, config.mask_token_id, "dream_vl")
        checked_special_id(tokenizer, IMAGE_TOKEN, config.image_token_id, "dream_vl")
        return config

    def published_config(self) -> dict[str, Any]:
        return self.config.to_published()

    def save_extras(self, directory: Path) -> None:
        (directory / "preprocessor_config.json").write_text(json.dumps(self.config.to_preprocessor(), indent=2))

    # -- inputs ------------------------------------------------------------------------
    def collate(self, examples: Sequence[Example]) -> Batch:
        images = [checked_image(ex.image) for ex in examples if ex.image is not None]
        counts = iter([])
        pixels = None
        if images:
            try:
                pixels = self.image_processor(images=images, return_tensors="pt")
            except ValueError as exc:  # e.g. an aspect ratio over 200:1
                raise ImageError(f"image cannot be tiled for Dream-VL: {exc}") from exc
            merge = self.config.vision.spatial_merge_size ** 2
            counts = iter((pixels["image_grid_thw"].prod(dim=-1) // merge).tolist())
        per_example = [next(counts) if ex.image is not None else 0 for ex in examples]
        batch = self.text_batch(examples, per_example)
        if pixels is not None:
            batch["pixel_values"] = pixels["pixel_values"]  # (patches, C*T*P*P)
            batch["image_grid_thw"] = pixels["image_grid_thw"]  # (images, 3)
        return batch

    # -- vision forward ----------------------------------------------------------------
    def image_features(self, batch: Batch) -> torch.Tensor:
        pixels = batch["pixel_values"].to(self.visual.get_dtype())
        merged = self.visual(pixels, grid_thw=batch["image_grid_thw"]).pooler_output  # (N, vision hidden)
        return self.projector(merged)  # (N, D)
