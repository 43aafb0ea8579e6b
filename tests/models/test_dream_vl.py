"""Dream-VL: shared Dream-VLM checks plus its Qwen2-VL ViT specifics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.models.base import KIND_IMAGE, Example, ImageError
from pipeline.models.families.dream_vl import DreamVLConfig, DreamVLEncoder
from tests.models.dream_vlm_cases import DreamVLMCases, architecture, noise_image

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def published_files() -> tuple[dict, dict]:
    return (json.loads((CONFIGS / "dream_vl_7b_config.json").read_text()),
            json.loads((CONFIGS / "dream_vl_7b_preprocessor_config.json").read_text()))


class TestDreamVL(DreamVLMCases):
    family = DreamVLEncoder
    key_list = "dream_vl.txt"

    def reload_config(self, published):
        return DreamVLConfig.from_published(published, DreamVLConfig.real().to_preprocessor())

    def test_repository_config_gives_the_real_preset(self, real_meta):
        cfg, pre = published_files()
        config = DreamVLConfig.from_published(cfg, pre)
        assert architecture(config.text) == architecture(real_meta.config.text)
        assert architecture(config.vision) == architecture(real_meta.config.vision)
        assert (config.min_pixels, config.max_pixels) == (3136, 3211264)
        ours = real_meta.published_config()
        shared = set(cfg) & set(ours) - {"vision_config", "torch_dtype", "transformers_version", "architectures"}
        assert {k: ours[k] for k in shared} == {k: cfg[k] for k in shared}
        assert {k: ours["vision_config"][k] for k in cfg["vision_config"]} == cfg["vision_config"]

    def test_real_ids_and_rope(self, real_meta):
        config = real_meta.config
        assert (config.image_token_id, config.vision_start_token_id, config.vision_end_token_id) == (151655, 151652, 151653)
        assert (config.mask_token_id, config.pad_token_id) == (151666, 151643)
        assert config.text.rope_parameters["mrope_section"] == [16, 24, 24]
        assert config.text.rope_parameters["rope_theta"] == 1e6

    def test_projector_size_matches_the_paper(self, real_meta):
        assert sum(p.numel() for p in real_meta.projector.parameters()) == 25_697_280  # "Projector: 25.7M"

    def test_image_tokens_are_the_merged_patch_grid_without_vision_markers(self, encoder):
        batch = encoder.collate([Example("x", text="y", image=noise_image(90, 40))])
        t, h, w = batch["image_grid_thw"][0].tolist()
        assert int((batch["token_kinds"] == KIND_IMAGE).sum()) == t * h * w // 4
        ids = batch["input_ids"][0].tolist()
        assert encoder.config.vision_start_token_id not in ids and encoder.config.vision_end_token_id not in ids

    def test_preprocessor_config_round_trip(self, encoder, tmp_path):
        encoder.save_original(str(tmp_path))
        pre = json.loads((tmp_path / "preprocessor_config.json").read_text())
        assert (pre["min_pixels"], pre["max_pixels"], pre["merge_size"]) == (56 * 56, 112 * 112, 2)

    def test_extreme_aspect_ratio_is_an_image_error(self, encoder):
        with pytest.raises(ImageError, match="Dream-VL"):
            encoder.collate([Example("x", image=noise_image(900, 3))])

    def test_positions_are_one_dimensional_in_all_rope_sections(self, encoder):
        batch = encoder.collate([Example("x", text="a b c", image=noise_image(60, 60))])
        with torch.no_grad():
            base = encoder.hidden_states(batch)
            mask = batch["attention_mask"]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[None].expand(3, -1, -1)
            embeds = encoder.language_model.embed_tokens(
                torch.where(batch["token_kinds"] == KIND_IMAGE, encoder.pad_token_id, batch["input_ids"]))
            is_image = (batch["token_kinds"] == KIND_IMAGE).unsqueeze(-1)
            embeds = embeds.masked_scatter(is_image, encoder.image_features(batch))
            out = encoder.language_model(inputs_embeds=embeds, position_ids=positions, use_cache=False)
        assert encoder.language_model.config.is_causal is False
        torch.testing.assert_close(out.last_hidden_state, base, atol=1e-5, rtol=0)
