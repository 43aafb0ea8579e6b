"""Checks every Dream-backed VLM family must pass (LaViDa, Dream-VL), on tiny CPU models.

A test module subclasses :class:`DreamVLMCases`, names the family class and the published
key list, and adds its family's own tests.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from pipeline.models.base import (
    KIND_IMAGE,
    EmptyExampleError,
    EncoderOptions,
    Example,
    ImageError,
    InputTooLongError,
)
from pipeline.models.checkpoint import CheckpointMismatchError
from pipeline.models.lora import LoraSettings, apply_lora
from pipeline.models.registry import get_family

KEYS_DIR = Path(__file__).resolve().parents[1] / "data" / "keys"


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"))


def read_key_list(name: str) -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in (KEYS_DIR / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            keys[key] = tuple(int(x) for x in shape.split(","))
    return keys


def mixed_examples() -> list[Example]:
    """Mixed lengths and modalities; images of several aspect ratios give several view grids."""
    return [
        Example("Find the caption", text="a small red square to the left of a large blue circle on grey"),
        Example("Represent the image", image=noise_image(90, 40, 1)),
        Example("Answer", text="how many?", image=noise_image(60, 100, 2)),
        Example("", text="short"),
        Example("Represent the image", image=noise_image(120, 120, 3)),
        Example("Describe", text="a very wide picture", image=noise_image(200, 50, 4)),
    ]


def architecture(config) -> dict:
    """A transformers config's fields, minus run-time switches (attention kind and kernel)."""
    return {k: v for k, v in config.to_dict().items() if k != "is_causal" and not k.startswith("_")}


def shard_path(directory: Path) -> Path:
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    return directory / sorted(set(index["weight_map"].values()))[0]


class DreamVLMCases:
    family: type
    key_list: str

    @pytest.fixture(scope="class")
    def pristine(self):
        return self.family.build("tiny", seed=0).float()

    @pytest.fixture()
    def encoder(self, pristine):
        """A fresh copy per test: tests switch attention, padding side or add LoRA."""
        return copy.deepcopy(pristine)

    @pytest.fixture(scope="class")
    def real_meta(self):
        with torch.device("meta"):
            return self.family.build("real")

    # -- spec and sizes ----------------------------------------------------------------
    def test_spec_is_registered_diffusion_mean_bidirectional(self):
        spec = self.family.spec
        assert get_family(spec.name) is self.family
        assert (spec.paradigm, spec.attention, spec.pooling) == ("diffusion", "bidirectional", "mean")
        assert set(spec.lora_targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
        assert "lm_head" not in spec.lora_targets and spec.params_source

    def test_real_size_on_meta_is_within_one_percent_of_published(self, real_meta):
        total = real_meta.count_parameters().total
        published = self.family.spec.published_params
        assert abs(total - published) / published < 0.01, (total, published)
        # and exactly the size of the published key list, derived independently of our modules
        assert total == sum(math.prod(s) for s in read_key_list(self.key_list).values())

    def test_published_keys_map_one_to_one_with_shapes(self, real_meta):
        ours = {k: tuple(v.shape) for k, v in real_meta.state_dict().items()}
        published = read_key_list(self.key_list)
        mapped = {}
        for key, shape in published.items():
            target = self.family.key_map.to_ours(key)
            assert target is not None, f"no key-map row for published {key}"
            assert ours.get(target) == shape, f"{key} -> {target}: {ours.get(target)} vs published {shape}"
            assert self.family.key_map.to_original(target) == key
            mapped[target] = key
        assert len(mapped) == len(published) and set(mapped) == set(ours)

    def reload_config(self, published: dict):
        """Our config from a published config.json dict (family-specific)."""
        raise NotImplementedError

    def test_real_config_survives_its_published_form(self, real_meta):
        config = self.reload_config(real_meta.published_config())
        assert architecture(config.text) == architecture(real_meta.config.text)
        assert architecture(config.vision) == architecture(real_meta.config.vision)

    # -- checkpoint round trip ---------------------------------------------------------
    def test_save_original_loads_back_with_identical_embeddings(self, encoder, tmp_path):
        examples = mixed_examples()
        expected = encoder.encode(examples)
        encoder.save_original(str(tmp_path))
        loaded = self.family.from_pretrained(str(tmp_path), dtype=torch.float32, device="cpu")
        assert not any(p.is_meta for p in loaded.parameters())
        assert loaded.device.type == "cpu" and loaded.dtype == torch.float32
        assert loaded.mask_token_id == encoder.mask_token_id
        torch.testing.assert_close(loaded.encode(examples), expected, atol=1e-6, rtol=0)

    def test_bf16_load_runs(self, encoder, tmp_path):
        encoder.save_original(str(tmp_path))
        loaded = self.family.from_pretrained(str(tmp_path), dtype=torch.bfloat16)
        assert loaded.dtype == torch.bfloat16
        vectors = loaded.encode(mixed_examples()[:3])
        assert torch.isfinite(vectors).all()
        with pytest.raises(ValueError, match="unsupported dtype"):
            self.family.from_pretrained(str(tmp_path), dtype=torch.int8)

    def test_missing_key_fails_listing_it(self, encoder, tmp_path):
        encoder.save_original(str(tmp_path))
        shard = shard_path(tmp_path)
        state = load_file(str(shard))
        victim = next(k for k in state if k.endswith("norm.weight") and "layers" not in k)
        del state[victim]
        save_file(state, str(shard))
        with pytest.raises(CheckpointMismatchError, match="missing") as info:
            self.family.from_pretrained(str(tmp_path), dtype=torch.float32)
        assert self.family.key_map.to_ours(victim) in str(info.value)

    def test_extra_key_fails_listing_it(self, encoder, tmp_path):
        encoder.save_original(str(tmp_path))
        shard = shard_path(tmp_path)
        state = load_file(str(shard))
        state["model.some_unknown_adapter.weight"] = torch.zeros(2)
        save_file(state, str(shard))
        with pytest.raises(CheckpointMismatchError, match="model.some_unknown_adapter.weight"):
            self.family.from_pretrained(str(tmp_path), dtype=torch.float32)

    def test_wrong_model_type_is_refused(self, encoder, tmp_path):
        encoder.save_original(str(tmp_path))
        config = json.loads((tmp_path / "config.json").read_text())
        config["model_type"] = "qwen2"
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(ValueError, match="model_type"):
            self.family.from_pretrained(str(tmp_path), dtype=torch.float32)

    # -- attention ---------------------------------------------------------------------
    def _first_state_after_changing_last_token(self, encoder) -> tuple[torch.Tensor, torch.Tensor]:
        batch = encoder.collate([Example("Find", text="one two three four five six")])
        changed = {**batch, "input_ids": batch["input_ids"].clone()}
        changed["input_ids"][0, -1] = encoder.mask_token_id
        with torch.no_grad():
            return encoder.hidden_states(batch)[0, 0], encoder.hidden_states(changed)[0, 0]

    def test_bidirectional_later_token_changes_earlier_state(self, encoder):
        before, after = self._first_state_after_changing_last_token(encoder)
        assert (before - after).abs().max() > 1e-4

    def test_causal_later_token_leaves_earlier_state(self, encoder):
        encoder.set_options(EncoderOptions(attention="causal"))
        before, after = self._first_state_after_changing_last_token(encoder)
        torch.testing.assert_close(before, after, atol=1e-6, rtol=0)

    def test_block_attention_is_causal_across_blocks(self, encoder):
        encoder.set_options(EncoderOptions(attention="block", block_size=2))
        before, after = self._first_state_after_changing_last_token(encoder)
        torch.testing.assert_close(before, after, atol=1e-6, rtol=0)
        encoder.implementation = "flash_attention_2"
        with pytest.raises(ValueError, match="block attention"):
            encoder.apply_attention("block")

    # -- padding and batching ----------------------------------------------------------
    @pytest.mark.parametrize("side", ["left", "right"])
    def test_padding_side_and_batch_composition_do_not_change_embeddings(self, encoder, side):
        examples = mixed_examples()
        alone = torch.cat([encoder.encode([ex]) for ex in examples])
        encoder.padding_side = side
        together = encoder.encode(examples, batch_size=len(examples))
        pairs = encoder.encode(examples, batch_size=2)
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
        torch.testing.assert_close(pairs, alone, atol=1e-5, rtol=0)

    def test_collate_marks_image_positions(self, encoder):
        batch = encoder.collate(mixed_examples())
        is_image = batch["token_kinds"] == KIND_IMAGE
        assert (batch["input_ids"][is_image] == encoder.config.image_placeholder_id).all()
        assert not (batch["input_ids"][~is_image] == encoder.config.image_placeholder_id).any()
        with torch.no_grad():
            assert encoder.image_features(batch).shape[0] == int(is_image.sum())
        assert batch["attention_mask"].dtype == torch.long and batch["token_kinds"].dtype == torch.int8

    # -- LoRA --------------------------------------------------------------------------
    def _lora_modules(self, encoder, train_vision: bool) -> list[str]:
        apply_lora(encoder, LoraSettings(train_vision=train_vision))
        return [name for name, module in encoder.named_modules() if hasattr(module, "lora_A")]

    def test_lora_hits_only_language_model_projections_by_default(self, encoder):
        names = self._lora_modules(encoder, train_vision=False)
        layers = encoder.config.text.num_hidden_layers
        assert len(names) == 7 * layers
        assert all(n.startswith("language_model.layers.") and n.split(".")[-1] in encoder.spec.lora_targets for n in names)

    def test_lora_reaches_the_vision_tower_when_asked(self, encoder):
        names = self._lora_modules(encoder, train_vision=True)
        vision = [n for n in names if n.startswith(encoder.spec.vision_modules)]
        assert vision and not any("lm_head" in n for n in names)
        trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n for n in trainable)

    def test_save_original_refuses_lora_weights(self, encoder, tmp_path):
        apply_lora(encoder, LoraSettings())
        with pytest.raises(ValueError, match="LoRA"):
            encoder.save_original(str(tmp_path))

    # -- bad input ---------------------------------------------------------------------
    def test_unsupported_image_is_a_clear_error(self, encoder):
        with pytest.raises(ImageError):
            encoder.collate([Example("x", image=Image.new("RGB", (1, 1)))])

    def test_empty_example_and_empty_batch(self, encoder):
        with pytest.raises(EmptyExampleError):
            Example("instruction only")
        with pytest.raises(ValueError, match="at least one"):
            encoder.collate([])

    def test_text_over_limit_is_truncated_with_a_warning(self, encoder, caplog):
        encoder.set_options(EncoderOptions(max_length=16))
        long = Example("Find", text=" ".join(["word"] * 200))
        with caplog.at_level(logging.WARNING):
            batch = encoder.collate([long])
        assert batch["input_ids"].shape[1] == 16 and "truncating" in caplog.text

    def test_text_over_limit_errors_when_asked(self, encoder):
        encoder.set_options(EncoderOptions(max_length=16, on_overflow="error"))
        with pytest.raises(InputTooLongError):
            encoder.collate([Example("Find", text=" ".join(["word"] * 200))])

    def test_image_over_limit_errors(self, encoder):
        encoder.set_options(EncoderOptions(max_length=8))
        with pytest.raises(InputTooLongError):
            encoder.collate([Example("x", image=noise_image(120, 120))])

    # -- outputs -----------------------------------------------------------------------
    def test_encode_gives_unit_vectors_in_input_order(self, encoder):
        examples = mixed_examples()
        vectors = encoder.encode(examples, batch_size=4)
        assert vectors.shape == (len(examples), encoder.config.text.hidden_size)
        torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(len(examples)))
        reversed_vectors = encoder.encode(examples[::-1], batch_size=4)
        torch.testing.assert_close(reversed_vectors.flip(0), vectors, atol=1e-5, rtol=0)

    def test_output_logits_undo_dreams_shift(self, encoder):
        hidden = torch.randn(2, 5, encoder.config.text.hidden_size)
        logits = encoder.output_logits(hidden)
        raw = encoder.lm_head(hidden)
        assert logits.shape == (2, 5, encoder.config.text.vocab_size)
        torch.testing.assert_close(logits[:, 1:], raw[:, :-1])
        torch.testing.assert_close(logits[:, 0], raw[:, 0])

    def test_docs_carry_the_current_key_map(self):
        doc = (Path(__file__).resolve().parents[2] / "docs" / "models-diffusion.md").read_text()
        assert self.family.key_map.markdown() in doc, "regenerate the key-map table in docs/models-diffusion.md"
