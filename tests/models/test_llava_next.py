"""LLaVA-1.6 Mistral-7B: published facts, checkpoint layout and prompt layout.

The shared encoder contract (round trip, attention, padding, LoRA, bad input, encode) is
checked for this family in tests/models/test_transformers_families.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.models.base import KIND_IMAGE, KIND_SPECIAL, Example
from pipeline.models.checkpoint import read_state_dict
from pipeline.models.families.llava_next import LlavaNextEncoder
from pipeline.models.registry import get_family
from tests.models.family_checks import sample_examples, sample_images

# llava-hf/llava-v1.6-mistral-7b-hf config.json as transformers 5.23 LlavaNextForConditionalGeneration
# on the meta device; tests/data/keys/llava_next.json's shapes sum to it too.
PUBLISHED_PARAMS = 7_566_747_648


@pytest.fixture(scope="module")
def encoder() -> LlavaNextEncoder:
    return LlavaNextEncoder.build("tiny", seed=0)


def test_registered_with_its_facts() -> None:
    spec = get_family("llava_next").spec
    assert spec.paper_name == "LLaVA-1.6" and spec.hub_id == "llava-hf/llava-v1.6-mistral-7b-hf"
    assert (spec.paradigm, spec.attention, spec.pooling) == ("autoregressive", "causal", "eos")
    assert spec.published_params == PUBLISHED_PARAMS and "meta device" in spec.params_source
    assert set(spec.lora_targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_real_config_is_the_published_one() -> None:
    with torch.device("meta"):
        vlm = LlavaNextEncoder.build("real").vlm
    assert sum(p.numel() for p in vlm.parameters()) == PUBLISHED_PARAMS
    config = vlm.config
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (4096, 32, 32, 8)
    assert (text.intermediate_size, text.vocab_size, text.rope_parameters["rope_theta"]) == (14336, 32064, 1e6)
    assert (vision.hidden_size, vision.num_hidden_layers, vision.image_size, vision.patch_size) == (1024, 24, 336, 14)
    assert (config.image_token_id, config.vision_feature_layer, config.vision_feature_select_strategy) == (32000, -2, "default")
    assert config.image_grid_pinpoints == [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    assert config.tie_word_embeddings is False


def test_save_original_uses_llava_hf_names(encoder: LlavaNextEncoder, tmp_path) -> None:
    encoder.save_original(str(tmp_path))
    saved = read_state_dict(tmp_path)
    assert {"language_model.lm_head.weight", "image_newline", "multi_modal_projector.linear_2.bias"} <= set(saved)
    assert "vision_tower.vision_model.encoder.layers.1.self_attn.q_proj.weight" in saved
    assert "language_model.model.layers.1.mlp.down_proj.weight" in saved
    assert not any(k.startswith("model.") for k in saved), "5.x module names must not leak into the published layout"
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llava_next" and config["text_config"]["model_type"] == "mistral"


def test_prompt_is_bos_text_eos_with_one_slot_per_image_feature(encoder: LlavaNextEncoder) -> None:
    wide = sample_images()[0]
    batch = encoder.collate([Example("Describe", "it", wide)])
    ids, kinds = batch["input_ids"][0], batch["token_kinds"][0]
    assert ids[0] == encoder.tokenizer.bos_token_id and ids[-1] == encoder.tokenizer.eos_token_id
    assert kinds[0] == KIND_SPECIAL and kinds[-1] == KIND_SPECIAL
    slots = int((ids == encoder.image_token_id).sum())
    assert slots == int((kinds == KIND_IMAGE).sum())
    with torch.no_grad():
        features = encoder.vlm.model.get_image_features(batch["pixel_values"], batch["image_sizes"]).pooler_output
    assert slots == sum(f.shape[0] for f in features)  # anyres tiles + newline rows


def test_embedding_is_the_eos_state(encoder: LlavaNextEncoder) -> None:
    batch = encoder.collate(sample_examples()[:2])
    with torch.no_grad():
        hidden = encoder.hidden_states(batch)
        pooled = encoder(batch)
    positions = torch.arange(batch["input_ids"].shape[1])
    last = (positions * batch["attention_mask"]).argmax(dim=1)  # the last real token
    assert (batch["input_ids"][torch.arange(2), last] == encoder.tokenizer.eos_token_id).all()
    torch.testing.assert_close(pooled, torch.nn.functional.normalize(hidden[torch.arange(2), last], dim=-1))
