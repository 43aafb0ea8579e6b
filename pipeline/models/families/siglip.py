"""SigLIP so400m/14 at 384 px (Google) as a dual-encoder embedding model, through `SiglipModel`.

Image embeddings come from the vision tower's attention-pooling head, text embeddings from the
text head over the last position of text padded to 64 tokens (SigLIP was trained that way and its
model card asks for `padding="max_length"`); image + text inputs are fused by `_dual_encoder`.
The text tower attends bidirectionally.
"""

from __future__ import annotations

from typing import Any

from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel

from pipeline.models.base import EncoderOptions, FamilySpec, Size
from pipeline.models.families._dual_encoder import TOWER_PROJECTIONS, DualEncoder, build_towers
from pipeline.models.registry import register
from pipeline.models.tokenizer import tiny_tokenizer

# google/siglip-so400m-patch14-384 config.json: both towers 1152 wide, 27 layers, 16 heads, MLP
# 4304 (the shape-optimised "so400m" ViT); text vocab 32000 and 64 positions are SiglipTextConfig's defaults.
SIGLIP_SO400M_384_CONFIG: dict[str, Any] = {
    "text_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 27},
    "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16,
                      "num_hidden_layers": 27, "image_size": 384, "patch_size": 14},
}
TINY_VIEW = 56
TEXT_LENGTH = 64  # SigLIP's text positions; every text is padded to this length


def tiny_config(tokenizer: Any) -> SiglipConfig:
    return SiglipConfig(
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
                     "max_position_embeddings": TEXT_LENGTH, "vocab_size": len(tokenizer),
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
                       "image_size": TINY_VIEW, "patch_size": 14},
    )


@register
class SiglipEncoder(DualEncoder):
    spec = FamilySpec(
        name="siglip",
        display_name="SigLIP so400m/14-384",
        paper_name="SigLIP",
        paradigm="dual-encoder",
        attention="bidirectional",
        pooling="last",
        hub_id="google/siglip-so400m-patch14-384",
        vision_encoder="SigLIP so400m ViT/14 at 384 px (27 layers, width 1152), attention-pooling head",
        backbone="SigLIP text transformer (27 layers, width 1152, 16 heads, vocab 32000), last position -> head",
        image_placeholder="",
        padding_side="right",
        lora_targets=TOWER_PROJECTIONS,
        vision_modules=("towers.vision_model",),
        trains_vision=True,
        vision_lora_targets=TOWER_PROJECTIONS,
        published_params=877_960_498,
        params_source=(
            "google/siglip-so400m-patch14-384 config.json built as transformers 5.24 SiglipModel on the meta "
            "device (877,960,498); the Hugging Face model page lists the checkpoint as 878M params"
        ),
        max_length=TEXT_LENGTH,
        prompt_template="{instruction} {text}",
        notes=("Text is padded to 64 tokens and read at the last position, without an attention mask, as SigLIP "
               "was trained. Image + text inputs: the sum of the two embeddings, normalised (UniIR's score fusion)."),
    )
    model_class = SiglipModel
    pad_text_to_max_length = True

    @classmethod
    def build(cls, size: Size = "tiny", options: EncoderOptions | None = None, seed: int = 0) -> SiglipEncoder:
        tokenizer = tiny_tokenizer()
        view = TINY_VIEW if size == "tiny" else SIGLIP_SO400M_384_CONFIG["vision_config"]["image_size"]
        config = tiny_config(tokenizer) if size == "tiny" else SiglipConfig(**SIGLIP_SO400M_384_CONFIG)
        processor = SiglipImageProcessorPil(size={"height": view, "width": view})
        return cls(build_towers(SiglipModel, config, seed), tokenizer, processor, options)
