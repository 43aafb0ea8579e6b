"""DiffusionVL-Qwen2.5VL-7B: facts, checkpoint layout, prompt layout and block attention.

The shared encoder contract (round trip, attention, padding, LoRA, bad input, encode) is
checked for this family in tests/models/test_transformers_families.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.models.base import KIND_IMAGE, EncoderOptions, Example
from pipeline.models.families import _qwen_vl as qwen
from pipeline.models.families.diffusionvl import (
    MASK_TOKEN_ID,
    DiffusionVLEncoder,
    qwen_config,
)
from pipeline.models.registry import get_family
from tests.models.family_checks import check_save_original_round_trip, sample_examples, sample_images

# DiffusionVL adds no weights to Qwen2.5-VL-7B-Instruct (hustvl/DiffusionVL
# scripts/diffusionvl_prepare/convert_qwen2.5vl_to_diffusionvl.py), so its count is that model's.
PUBLISHED_PARAMS = 8_292_166_656


@pytest.fixture(scope="module")
def encoder() -> DiffusionVLEncoder:
    return DiffusionVLEncoder.build("tiny", seed=0)


def test_registered_with_its_facts() -> None:
    spec = get_family("diffusionvl").spec
    assert spec.hub_id == "hustvl/DiffusionVL-Qwen2.5VL-7B" and spec.paper_name is None
    assert (spec.paradigm, spec.attention, spec.pooling) == ("diffusion", "block", "mean")
    assert spec.published_params == PUBLISHED_PARAMS


def test_real_config_is_qwen25_vl_7b_with_the_mask_row() -> None:
    with torch.device("meta"):
        encoder = DiffusionVLEncoder.build("real")
    assert sum(p.numel() for p in encoder.parameters()) == PUBLISHED_PARAMS
    ours, qwens = encoder.vlm.config.text_config.to_dict(), qwen.real_config().text_config.to_dict()
    assert {k: v for k, v in ours.items() if k != "dtype"} == {k: v for k, v in qwens.items() if k != "dtype"}
    assert encoder.mask_token_id == MASK_TOKEN_ID == 151671
    assert encoder.mask_token_id < encoder.vlm.config.text_config.vocab_size
    assert qwen.pixel_budget(encoder.image_processor) == (384 * 384, 512 * 512)



def test_save_original_writes_the_release_layout_and_loads_back(encoder: DiffusionVLEncoder, tmp_path) -> None:
    loaded = check_save_original_round_trip(encoder, tmp_path)
    raw = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert raw["model_type"] == "diffusionvl_qwenvl" and raw["bd3lm_block_size"] == encoder.options.block_size
    assert raw["hidden_size"] == raw["text_config"]["hidden_size"] == 64  # flat and nested, like the release
    assert loaded.mask_token_id == encoder.mask_token_id
    assert qwen.pixel_budget(loaded.image_processor) == qwen.pixel_budget(encoder.image_processor)


def test_a_qwen_checkpoint_is_not_taken_for_diffusionvl() -> None:
    with pytest.raises(ValueError, match="qwen2_5_vl family"):
        qwen_config(dict(qwen.QWEN25_VL_7B_CONFIG))


def test_release_config_with_flat_text_fields_reads_as_qwen() -> None:
    raw = {k: v for k, v in qwen.QWEN25_VL_7B_CONFIG.items() if k != "model_type"}
    raw.update(model_type="diffusionvl_qwenvl", video_token_id=None, enable_bd3lm=True, bd3lm_block_size=8)
    config = qwen_config(raw)
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers, config.vision_config.depth) == (3584, 28, 32)
    assert config.video_token_id == qwen.VIDEO_PAD_ID and config.image_token_id == qwen.IMAGE_PAD_ID


def test_image_is_squared_and_spliced_without_vision_tokens(encoder: DiffusionVLEncoder) -> None:
    wide = sample_images()[0]  # 64 x 40
    batch = encoder.collate([Example("Describe", "it", wide)])
    _, h, w = batch["image_grid_thw"][0].tolist()
    assert h == w, "DiffusionVL pads images to a square before resizing"
    ids, kinds = batch["input_ids"][0], batch["token_kinds"][0]
    config = encoder.vlm.config
    assert int((kinds == KIND_IMAGE).sum()) == int((ids == config.image_token_id).sum()) == h * w // 4
    assert config.vision_start_token_id not in ids and config.vision_end_token_id not in ids
    assert ids[-1] != encoder.tokenizer.eos_token_id, "mean pooling appends no EOS"


def test_positions_are_plain_1d(encoder: DiffusionVLEncoder) -> None:
    """Positions 0..L-1 on all three M-RoPE axes, image tokens included (DiffusionVL's
    training code), not Qwen's (t, h, w) grid positions."""
    seen = {}

    def grab(_module, inputs, _output) -> None:
        seen["pos"] = inputs[1]

    handle = encoder.vlm.model.language_model.rotary_emb.register_forward_hook(grab)
    try:
        with torch.no_grad():
            encoder.hidden_states(encoder.collate([Example("Describe", "it", sample_images()[1])]))
    finally:
        handle.remove()
    pos = seen["pos"]  # (3, B, L): same row on all three axes, 0..L-1
    assert pos.shape[0] == 3 and torch.equal(pos[0], pos[1]) and torch.equal(pos[1], pos[2])
    assert torch.equal(pos[0, 0], torch.arange(pos.shape[-1]))




def test_block_size_changes_the_embedding() -> None:
    examples = sample_examples()[:2]
    small = DiffusionVLEncoder.build("tiny", EncoderOptions(block_size=2)).encode(examples)
    trained = DiffusionVLEncoder.build("tiny", EncoderOptions(block_size=8)).encode(examples)
    full = DiffusionVLEncoder.build("tiny", EncoderOptions(attention="bidirectional")).encode(examples)
    assert not torch.allclose(small, trained, atol=1e-4) and not torch.allclose(trained, full, atol=1e-4)


