"""LaViDa-Dream: shared Dream-VLM checks plus its SigLIP / anyres specifics."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.base import Example
from pipeline.models.families._vision_parts import anyres_token_count, tile_image
from pipeline.models.families.lavida import GRID_UNITS, LaViDaConfig, LaViDaEncoder
from tests.models.dream_vlm_cases import DreamVLMCases, noise_image

REAL_PINPOINTS = [(384, 768), (768, 384), (768, 768), (1152, 384), (384, 1152)]  # llada-hd-dream-s2.sh


class TestLaViDa(DreamVLMCases):
    family = LaViDaEncoder
    key_list = "lavida.txt"

    def reload_config(self, published):
        return LaViDaConfig.from_published(published)

    def test_published_config_carries_the_training_script_values(self, real_meta):
        cfg = real_meta.published_config()
        assert cfg["model_type"] == "llava_dream" and cfg["mm_projector_type"] == "mlp2x_gelu"
        assert [tuple(p) for p in cfg["image_grid_pinpoints"]] == REAL_PINPOINTS
        assert (cfg["mm_patch_merge_type"], cfg["image_aspect_ratio"]) == ("spatial_unpad", "anyres")
        assert cfg["mm_vision_tower"] == "google/siglip-so400m-patch14-384" and "vision_config" not in cfg
        assert (cfg["mask_token_id"], cfg["pad_token_id"]) == (151666, 151643)
        assert cfg["mm_spatial_pool_mode"] == "bilinear" and cfg["mm_hidden_size"] == 1152

    def test_string_pinpoints_as_llava_writes_them(self, real_meta):
        cfg = real_meta.published_config()
        cfg["image_grid_pinpoints"] = str(REAL_PINPOINTS)
        assert LaViDaConfig.from_published(cfg).grid_pinpoints == tuple(REAL_PINPOINTS)

    def test_a_local_siglip_path_is_the_so400m_tower(self, real_meta):
        cfg = {**real_meta.published_config(), "mm_vision_tower": "/path/to/google/siglip-so400m-patch14-384"}
        assert LaViDaConfig.from_published(cfg).vision.num_hidden_layers == 26

    def test_other_projectors_and_towers_are_refused(self, real_meta):
        cfg = real_meta.published_config()
        with pytest.raises(NotImplementedError, match="mm_projector_type"):
            LaViDaConfig.from_published({**cfg, "mm_projector_type": "linear"})
        with pytest.raises(NotImplementedError, match="vision tower"):
            LaViDaConfig.from_published({**cfg, "mm_vision_tower": "openai/clip-vit-large-patch14-336"})

    def test_real_vision_geometry(self, real_meta):
        config = real_meta.config
        assert config.vision.num_hidden_layers == 26  # 27 SigLIP layers, the last one removed
        assert (config.vision.image_size // config.vision.patch_size) ** 2 == 729
        assert config.pooled_side ** 2 == 196
        assert config.grid_pinpoints == tuple(REAL_PINPOINTS)

    @pytest.mark.parametrize(
        ("size", "grid", "tokens"),
        [((800, 800), (2, 2), 196 + 28 * 29), ((1000, 500), (1, 2), 196 + 14 * 29),
         ((500, 1000), (2, 1), 196 + 28 * 15), ((1500, 400), (1, 3), None)],
    )
    def test_anyres_grid_and_token_count_at_real_size(self, size, grid, tokens):
        tiled = tile_image(noise_image(*size), 384, REAL_PINPOINTS)
        assert (tiled.rows, tiled.cols) == grid
        assert len(tiled.views) == 1 + grid[0] * grid[1] <= 5
        assert all(v.size == (384, 384) for v in tiled.views)
        if tokens is not None:
            assert anyres_token_count(14, tiled.rows, tiled.cols, tiled.size) == tokens

    def test_tiny_grid_units_match_real(self):
        assert tuple((c * 384, r * 384) for c, r in GRID_UNITS) == tuple(REAL_PINPOINTS)

    def test_each_grid_row_ends_with_the_newline_vector(self, encoder):
        batch = encoder.collate([Example("x", image=noise_image(112, 112))])  # square: 2x2 grid, nothing unpadded
        with torch.no_grad():
            tokens = encoder.image_features(batch)
        side = encoder.config.pooled_side
        grid = tokens[side * side:].view(2 * side, 2 * side + 1, -1)
        torch.testing.assert_close(grid[:, -1], encoder.image_newline.detach().expand(2 * side, -1))

    def test_features_come_before_post_layernorm(self, encoder):
        batch = encoder.collate([Example("x", image=noise_image(90, 40))])
        with torch.no_grad():
            before = encoder.image_features(batch)
            encoder.vision_tower.post_layernorm.weight.mul_(3.0)
            torch.testing.assert_close(encoder.image_features(batch), before)
            encoder.vision_tower.encoder.layers[-1].mlp.fc2.bias.add_(1.0)
            assert (encoder.image_features(batch) - before).abs().max() > 1e-4
