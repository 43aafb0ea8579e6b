"""DiffusionVL-Qwen2.5VL-7B as an embedding model (beyond the paper: a diffusion VLM
translated from an autoregressive one).

DiffusionVL (repo hustvl/DiffusionVL) fine-tunes Qwen2.5-VL-7B-Instruct into a block
diffusion model: attention is bidirectional within a block of 8 tokens and causal across
blocks, masked tokens use embedding row 151671. It adds no weights, so it runs here as
transformers' `Qwen2_5_VLForConditionalGeneration` with the checkpoint's LLaVA-style key
names mapped through :data:`DIFFUSIONVL_KEYS`. What its training code does differently
from Qwen2.5-VL, and we follow:

* an image is padded to a square with the mean colour, resized to 384^2..512^2 pixels and
  spliced in where `<image>` stands, with no vision start/end tokens;
* positions are plain 1D (0, 1, 2, ... over the whole sequence, image included), the same
  value on all three M-RoPE axes; we count them over real tokens so padding cannot move them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)

from pipeline.models.base import Batch, EncoderOptions, FamilySpec, Size, position_ids_from_mask
from pipeline.models.checkpoint import KeyMap, KeyRule, resolve_local
from pipeline.models.families import _qwen_vl as qwen
from pipeline.models.families._transformers_vlm import (
    TransformersVLM,
    expand_to_square,
    keymap_as_renames,
    load_vlm,
)
from pipeline.models.lora import LM_PROJECTIONS
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

log = logging.getLogger(__name__)

MODEL_TYPES = ("diffusionvl_qwenvl", "llada_qwen")  # what its loader accepts (train/llava/model/builder.py)
MASK_TOKEN_ID = 151671  # hard-coded in llava_diffusionvl_qwenvl.py (noise and generation)
TRAINED_BLOCK_SIZE = 8  # train/scripts/diffusionvl_qwenvl_finetune.sh, BD3LM_BLOCK_SIZE
# qwen_vision_tower.py DEFAULT_MIN_PIXELS / DEFAULT_MAX_PIXELS, also train.py's defaults.
TRAINED_MIN_PIXELS, TRAINED_MAX_PIXELS = 384 * 384, 512 * 512

# The training class DiffusionVLQwenVLForCausalLM keeps the LM at `model.*`, the ViT (merger
# removed) at `model.vision_tower.vision_tower.*` and the merger as `model.mm_projector.merger.*`.
DIFFUSIONVL_KEYS = KeyMap([
    KeyRule("model.mm_projector.merger.{rest}", "model.visual.merger.{rest}", "Qwen2.5-VL patch merger as LLaVA's projector"),
    KeyRule("model.vision_tower.vision_tower.{rest}", "model.visual.{rest}", "Qwen2.5-VL ViT without its merger"),
    KeyRule("model.embed_tokens.weight", "model.language_model.embed_tokens.weight", "token embeddings (mask row 151671)"),
    KeyRule("model.layers.{rest}", "model.language_model.layers.{rest}", "Qwen2.5 decoder layers"),
    KeyRule("model.norm.weight", "model.language_model.norm.weight", "final RMSNorm"),
    KeyRule("lm_head.weight", "lm_head.weight", "output head (absent when tie_word_embeddings)"),
])

# Fields of the release config.json that are not part of a Qwen2.5-VL config.
_OWN_FIELDS = ("model_type", "architectures", "auto_map", "text_config", "vision_config", "enable_bd3lm",
               "bd3lm_block_size", "mask_token_id", "min_pixels", "max_pixels", "_name_or_path", "transformers_version")


def qwen_config(raw: dict[str, Any]) -> Qwen2_5_VLConfig:
    """A transformers Qwen2.5-VL config from DiffusionVL's config.json (nested or flat text fields)."""
    if raw.get("model_type") not in MODEL_TYPES:
        raise ValueError(
            f"config.json has model_type {raw.get('model_type')!r}, not a DiffusionVL-QwenVL checkpoint "
            f"({' / '.join(MODEL_TYPES)}); load Qwen2.5-VL checkpoints with the qwen2_5_vl family."
        )
    text = dict(raw.get("text_config") or {k: v for k, v in raw.items() if k not in _OWN_FIELDS})
    vision = dict(raw["vision_config"])
    for part in (text, vision):
        part.pop("model_type", None)
        part.pop("architectures", None)
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=raw.get("image_token_id") or qwen.IMAGE_PAD_ID,
        video_token_id=raw.get("video_token_id") or qwen.VIDEO_PAD_ID,
        vision_start_token_id=raw.get("vision_start_token_id") or qwen.VISION_START_ID,
        vision_end_token_id=raw.get("vision_end_token_id") or qwen.VISION_END_ID,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
    )


@register
class DiffusionVLEncoder(TransformersVLM):
    spec = FamilySpec(
        name="diffusionvl",
        display_name="DiffusionVL-Qwen2.5VL-7B",
        paradigm="diffusion",
        attention="block",
        pooling="mean",
        hub_id="hustvl/DiffusionVL-Qwen2.5VL-7B",
        vision_encoder="Qwen2.5-VL ViT (32 blocks, width 1280, 14 px patches, 2x2 merge), images 384^2..512^2 px",
        backbone="Qwen2.5-VL-7B's Qwen2.5-7B decoder fine-tuned for block diffusion (block 8, mask id 151671)",
        image_placeholder="<image>",
        padding_side="right",
        lora_targets=LM_PROJECTIONS,
        vision_modules=("vlm.model.visual",),
        published_params=8_292_166_656,
        params_source=(
            "same tensors as Qwen/Qwen2.5-VL-7B-Instruct: hustvl/DiffusionVL "
            "scripts/diffusionvl_prepare/convert_qwen2.5vl_to_diffusionvl.py copies every weight and adds none; "
            "meta-device count of Qwen/Qwen2.5-VL-7B-Instruct config.json as transformers 5.23, ~16 GB of BF16 shards"
        ),
        max_length=8192,
        prompt_template="{image}\n{instruction} {text}",
        notes=(
            "Mean pooling over all tokens; block attention (EncoderOptions.block_size, trained with 8) "
            "by default, 'bidirectional' and 'causal' as ablations. Not in the paper's tables."
        ),
    )
    keymap = DIFFUSIONVL_KEYS
    load_key_mapping = keymap_as_renames(DIFFUSIONVL_KEYS)

    def __init__(self, vlm: torch.nn.Module, tokenizer: Any, image_processor: Any,
                 options: EncoderOptions | None = None, mask_token_id: int = MASK_TOKEN_ID) -> None:
        self.mask_token_id = mask_token_id
        super().__init__(vlm, tokenizer, image_processor, options)

    @property
    def image_token_id(self) -> int:
        return int(self.vlm.config.image_token_id)

    def prepare_image(self, image: Image.Image) -> Image.Image:
        # The training code's fill: int(mean * 255) per channel (train.py, image_aspect_ratio "pad").
        mean = self.image_processor.image_mean
        return expand_to_square(image, tuple(int(m * 255) for m in mean))

    def encode_images(self, images: list[Image.Image]) -> tuple[dict[str, torch.Tensor], list[int]]:
        return qwen.encode_images(self, images)

    def run_language_model(self, batch: Batch, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.vlm.model(
            input_ids=batch["input_ids"], attention_mask=attention_mask, use_cache=False,
            position_ids=position_ids_from_mask(batch["attention_mask"]),  # (B, L): same on all 3 axes
            **qwen.vision_inputs(self, batch),
        )
        return out.last_hidden_state  # Qwen2_5_VLTextModel applies its final RMSNorm

    def save_config(self, directory: Path) -> None:
        """config.json in the DiffusionVL release layout (text fields flat and nested)."""
        config = self.vlm.config
        text = config.text_config.to_dict()
        low, high = qwen.pixel_budget(self.image_processor)
        raw = {k: v for k, v in text.items() if k not in _OWN_FIELDS}
        raw.update({
            "architectures": ["DiffusionVL_Qwen2_5_VL_ForConditionalGeneration"],
            "model_type": MODEL_TYPES[0],
            "text_config": text,
            "vision_config": config.vision_config.to_dict(),
            "image_token_id": config.image_token_id,
            "video_token_id": config.video_token_id,
            "vision_start_token_id": config.vision_start_token_id,
            "vision_end_token_id": config.vision_end_token_id,
            "tie_word_embeddings": config.tie_word_embeddings,
            "enable_bd3lm": True,
            "bd3lm_block_size": self.options.block_size,
            "mask_token_id": self.mask_token_id,
            "min_pixels": low,
            "max_pixels": high,
        })
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(raw, indent=2, default=str))

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> DiffusionVLEncoder:
        if size == "tiny":
            tokenizer, image_processor = qwen.tiny_preprocessing()
            config = qwen.tiny_config(tokenizer)
            # Like 151671 in Qwen's 152,064-row table, the mask is a row no token maps to.
            mask_id = config.text_config.vocab_size - 1
        else:
            # No hub here: random real-size weights get the offline tokenizer.
            tokenizer = tiny_tokenizer(qwen.TINY_SPECIAL_TOKENS)
            image_processor = qwen.real_image_processor(TRAINED_MIN_PIXELS, TRAINED_MAX_PIXELS)
            config, mask_id = qwen.real_config(), MASK_TOKEN_ID
        tokenizer.padding_side = cls.spec.padding_side
        return cls(qwen.new_model(config, seed), tokenizer, image_processor, options, mask_token_id=mask_id)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        options: EncoderOptions | None = None,
    ) -> DiffusionVLEncoder:
        local = resolve_local(path_or_id)
        raw = json.loads((local / "config.json").read_text())
        vlm = load_vlm(
            Qwen2_5_VLForConditionalGeneration, local, dtype, device, where=f"{cls.spec.name} checkpoint {local}",
            config=qwen_config(raw), key_mapping=cls.load_key_mapping,
        )
        trained_block = raw.get("bd3lm_block_size", TRAINED_BLOCK_SIZE)
        if options is not None and options.block_size != trained_block:
            log.info("diffusionvl: block size %d differs from the %d it was trained with", options.block_size, trained_block)
        tokenizer = AutoTokenizer.from_pretrained(str(local))
        image_processor = qwen.set_pixel_budget(
            _image_processor(local), raw.get("min_pixels") or TRAINED_MIN_PIXELS, raw.get("max_pixels") or TRAINED_MAX_PIXELS,
        )
        return cls(vlm, tokenizer, image_processor, options, mask_token_id=int(raw.get("mask_token_id", MASK_TOKEN_ID)))


def _image_processor(local: Path) -> Any:
    """The checkpoint's image processor; DiffusionVL trains with Qwen2-VL's, which stands in
    when the release's processor files name only its remote-code processor."""
    try:
        return AutoImageProcessor.from_pretrained(str(local))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("diffusionvl: no loadable image processor in %s (%s); using Qwen2-VL's", local, exc)
        return qwen.real_image_processor(TRAINED_MIN_PIXELS, TRAINED_MAX_PIXELS)
