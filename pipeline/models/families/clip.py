"""CLIP ViT-L/14-336 (OpenAI) as a dual-encoder embedding model, through transformers' `CLIPModel`.

Image embeddings are `visual_projection` of the vision tower's pooled [CLS] state, text
embeddings `text_projection` of the text tower's EOS state; image + text inputs are fused by
`_dual_encoder` (UniIR's sum). The text tower is causal, as CLIP was trained; prompts are
`<|startoftext|> instruction text <|endoftext|>`, at most 77 tokens.
"""

from __future__ import annotations

from typing import Any

from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

from pipeline.models.base import EncoderOptions, FamilySpec, Size
from pipeline.models.families._dual_encoder import TOWER_PROJECTIONS, DualEncoder, build_towers
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

# openai/clip-vit-large-patch14-336 config.json, the fields that set the architecture (the rest are
# CLIPConfig's defaults, which that file repeats: quick_gelu, layer_norm_eps 1e-5, logit scale 2.6592).
CLIP_VIT_L14_336_CONFIG: dict[str, Any] = {
    "projection_dim": 768,
    "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
                    "max_position_embeddings": 77, "vocab_size": 49408, "projection_dim": 768,
                    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                      "num_hidden_layers": 24, "image_size": 336, "patch_size": 14, "projection_dim": 768},
}
TINY_VIEW = 56  # 4 x 4 patches of 14 px, as the VLM miniatures' CLIP towers see
# CLIP's own special tokens on the offline tokenizer. The EOS id must not be 2: transformers reads a
# config EOS of 2 as the pre-2023 layout and pools at the largest token id instead of the first EOS.
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def clip_tokenizer() -> Any:
    tokenizer = tiny_tokenizer([BOS, EOS])
    tokenizer.bos_token, tokenizer.eos_token = BOS, EOS
    return tokenizer


def tiny_config(tokenizer: Any) -> CLIPConfig:
    return CLIPConfig(
        projection_dim=64,
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
                     "max_position_embeddings": 77, "vocab_size": len(tokenizer), "projection_dim": 64,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
                       "image_size": TINY_VIEW, "patch_size": 14, "projection_dim": 64},
    )


@register
class ClipEncoder(DualEncoder):
    spec = FamilySpec(
        name="clip",
        display_name="CLIP ViT-L/14-336",
        paper_name="CLIP",
        paradigm="dual-encoder",
        attention="causal",
        pooling="eos",
        hub_id="openai/clip-vit-large-patch14-336",
        vision_encoder="CLIP ViT-L/14 at 336 px (24 layers, width 1024), [CLS] -> visual_projection (768)",
        backbone="CLIP text transformer (12 layers, width 768, 12 heads, vocab 49408), EOS -> text_projection (768)",
        image_placeholder="",
        padding_side="right",
        lora_targets=TOWER_PROJECTIONS,
        vision_modules=("towers.vision_model", "towers.visual_projection"),
        vision_lora_targets=TOWER_PROJECTIONS,
        trains_vision=True,  # a dual encoder's image side is half the model: fine-tuning trains both towers
        published_params=427_944_193,
        params_source=(
            "openai/clip-vit-large-patch14-336 config.json built as transformers 5.24 CLIPModel on the meta device "
            "(427,944,193); the Hugging Face model page lists the checkpoint as 428M params"
        ),
        max_length=77,
        prompt_template="{instruction} {text}",
        notes=("Image + text inputs: the sum of image_embeds and text_embeds, normalised (UniIR's score fusion). "
               "Text over 77 tokens is truncated with a warning."),
    )
    model_class = CLIPModel

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> ClipEncoder:
        tokenizer = clip_tokenizer()
        view = TINY_VIEW if size == "tiny" else CLIP_VIT_L14_336_CONFIG["vision_config"]["image_size"]
        config = tiny_config(tokenizer) if size == "tiny" else CLIPConfig(**CLIP_VIT_L14_336_CONFIG)
        processor = CLIPImageProcessorPil(size={"shortest_edge": view}, crop_size={"height": view, "width": view})
        return cls(build_towers(CLIPModel, config, seed), tokenizer, processor, options)
