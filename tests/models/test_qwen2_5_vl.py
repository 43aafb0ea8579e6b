"""Qwen2.5-VL-7B-Instruct: published facts, checkpoint layout, prompt layout and M-RoPE.

The shared encoder contract (round trip, attention, padding, LoRA, bad input, encode) is
checked for this family in tests/models/test_transformers_families.py.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.models.base import KIND_IMAGE, Example, ImageError
from pipeline.models.checkpoint import read_state_dict
from pipeline.models.families import _qwen_vl as qwen
from pipeline.models.families.qwen2_5_vl import Qwen25VLEncoder
from pipeline.models.registry import get_family
from tests.models.family_checks import sample_images

# Qwen/Qwen2.5-VL-7B-Instruct config.json as transformers 5.23 Qwen2_5_VLForConditionalGeneration on the
# meta device; tests/data/keys/qwen2_5_vl.json's shapes sum to it too.
PUBLISHED_PARAMS = 8_292_166_656


@pytest.fixture(scope="module")
def encoder() -> Qwen25VLEncoder:
    return Qwen25VLEncoder.build("tiny", seed=0)


def test_registered_with_its_facts() -> None:
    spec = get_family("qwen2_5_vl").spec
    assert spec.paper_name == "Qwen2.5-VL" and spec.hub_id == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert (spec.paradigm, spec.attention, spec.pooling) == ("autoregressive", "causal", "eos")
    assert spec.published_params == PUBLISHED_PARAMS and "meta device" in spec.params_source
    assert spec.vision_modules == ("vlm.model.visual",)


def test_real_config_is_the_published_one() -> None:
    with torch.device("meta"):
        vlm = Qwen25VLEncoder.build("real").vlm
    assert sum(p.numel() for p in vlm.parameters()) == PUBLISHED_PARAMS
    config = vlm.config
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (3584, 28, 28, 4)
    assert (text.intermediate_size, text.vocab_size, text.rope_parameters["mrope_section"]) == (18944, 152064, [16, 24, 24])
    assert (vision.depth, vision.hidden_size, vision.patch_size, vision.spatial_merge_size) == (32, 1280, 14, 2)
    assert (vision.window_size, list(vision.fullatt_block_indexes)) == (112, [7, 15, 23, 31])
    assert (config.image_token_id, config.vision_start_token_id, config.vision_end_token_id) == (151655, 151652, 151653)
    assert config.tie_word_embeddings is False


def test_save_original_uses_qwen_hub_names(encoder: Qwen25VLEncoder, tmp_path) -> None:
    encoder.save_original(str(tmp_path))
    saved = read_state_dict(tmp_path)
    assert {"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight", "visual.merger.ln_q.weight"} <= set(saved)
    assert "visual.blocks.1.attn.qkv.weight" in saved and "model.layers.1.self_attn.q_proj.bias" in saved
    assert not any(k.startswith(("model.language_model.", "model.visual.")) for k in saved)


def test_image_is_wrapped_in_vision_tokens_with_one_pad_per_merged_patch(encoder: Qwen25VLEncoder) -> None:
    wide = sample_images()[0]
    batch = encoder.collate([Example("Describe", "it", wide)])
    ids, kinds = batch["input_ids"][0], batch["token_kinds"][0]
    config = encoder.vlm.config
    pads = (ids == config.image_token_id).nonzero().flatten()
    assert ids[pads[0] - 1] == config.vision_start_token_id and ids[pads[-1] + 1] == config.vision_end_token_id
    assert len(pads) == int(batch["image_grid_thw"].prod()) // 4 == int((kinds == KIND_IMAGE).sum()) - 2
    assert ids[-1] == encoder.tokenizer.eos_token_id


def test_mrope_positions_follow_the_image_grid_and_ignore_padding(encoder: Qwen25VLEncoder) -> None:
    examples = [Example("Describe", "a long caption " * 4), Example("Describe", "it", sample_images()[0])]
    positions, original_side = {}, encoder.padding_side
    for side in ("left", "right"):
        encoder.padding_side = side
        batch = encoder.collate(examples)
        encoder.padding_side = original_side
        ids, mask = batch["input_ids"], batch["attention_mask"]
        pos, _ = encoder.vlm.model.get_rope_index(
            ids, mm_token_type_ids=(ids == encoder.image_token_id).int(), image_grid_thw=batch["image_grid_thw"],
            attention_mask=mask,
        )
        positions[side] = [pos[:, row, mask[row].bool()] for row in range(2)]
        image = ids[1] == encoder.image_token_id
        h, w = (int(v) // 2 for v in batch["image_grid_thw"][0, 1:])
        assert pos[1, 1, image].unique().numel() == h and pos[2, 1, image].unique().numel() == w
        assert (pos[0, 0, mask[0].bool()] == torch.arange(int(mask[0].sum()))).all()  # text: 0, 1, 2, ...
    for left, right in zip(positions["left"], positions["right"], strict=True):
        assert torch.equal(left, right)


def test_extreme_aspect_ratio_is_an_image_error(encoder: Qwen25VLEncoder) -> None:
    with pytest.raises(ImageError, match="aspect ratio"):
        encoder.collate([Example("x", None, sample_images()[0].resize((2, 600)))])


def test_loaded_image_processor_is_capped_for_embedding() -> None:
    processor = qwen.real_image_processor(max_pixels=12_845_056)  # the checkpoint's own budget
    assert qwen.pixel_budget(qwen.cap_pixels(processor)) == (3136, qwen.EMBED_MAX_PIXELS)
    small = qwen.real_image_processor(max_pixels=16 * 784)
    assert qwen.pixel_budget(qwen.cap_pixels(small)) == (3136, 16 * 784)
