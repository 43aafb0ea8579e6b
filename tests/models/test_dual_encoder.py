"""CLIP and SigLIP as dual-encoder families: published layouts, sizes, and how each input is embedded."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.demo.objectives import paradigm_loss
from pipeline.models import get_family
from pipeline.models.base import EncoderOptions, Example
from pipeline.models.checkpoint import read_state_dict
from pipeline.models.lora import LoraSettings, apply_lora
from tests.models.family_checks import layout, published_tensors, sample_examples

DUAL = ("clip", "siglip")


@pytest.fixture(scope="module", params=DUAL)
def encoder(request):
    return get_family(request.param).build("tiny", seed=0)


@pytest.mark.parametrize("family", DUAL)
def test_real_size_has_the_published_keys_shapes_and_count(family: str) -> None:
    cls = get_family(family)
    published = published_tensors(family)
    with torch.device("meta"):
        real = cls.build("real")
    ours = {k: tuple(v.shape) for k, v in real.towers.state_dict().items()}
    assert ours == published
    assert sum(math.prod(s) for s in published.values()) == cls.spec.published_params
    assert cls.spec.paradigm == "dual-encoder"


def test_the_published_sizes_are_those_of_the_model_pages() -> None:
    # Hugging Face model pages: openai/clip-vit-large-patch14-336 "428M params", siglip-so400m-patch14-384 "878M".
    assert round(get_family("clip").spec.published_params / 1e6) == 428
    assert round(get_family("siglip").spec.published_params / 1e6) == 878


def test_save_original_writes_the_published_layout_and_loads_back(encoder, tmp_path) -> None:
    examples = sample_examples()
    before = encoder.encode(examples)
    encoder.save_original(str(tmp_path))
    saved = read_state_dict(tmp_path)
    assert layout(saved) == layout(published_tensors(encoder.spec.name))
    loaded = type(encoder).from_pretrained(str(tmp_path), dtype=torch.float32, device="cpu")
    torch.testing.assert_close(loaded.encode(examples), before, atol=1e-6, rtol=0)


def _features(out):
    return getattr(out, "pooler_output", out)


def test_image_text_and_fused_embeddings_come_from_the_projection_heads(encoder) -> None:
    image = Image.linear_gradient("L").resize((40, 60)).convert("RGB")
    text_only, image_only, both = Example("", "a red square"), Example("", None, image), Example("", "a red square", image)
    vectors = encoder.encode([text_only, image_only, both])
    assert vectors.shape == (3, encoder.towers.config.vision_config.hidden_size if encoder.spec.name == "siglip"
                             else encoder.towers.config.projection_dim)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(3))
    batch = encoder.collate([both])
    with torch.no_grad():
        text = _features(encoder.towers.get_text_features(**encoder._text_inputs(batch, batch["has_text"])))
        pixels = _features(encoder.towers.get_image_features(pixel_values=batch["pixel_values"]))
    torch.testing.assert_close(vectors[0], F.normalize(text[0], dim=-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(vectors[1], F.normalize(pixels[0], dim=-1), atol=1e-5, rtol=0)
    # UniIR's score fusion: the sum of the two embeddings, normalised
    torch.testing.assert_close(vectors[2], F.normalize(text[0] + pixels[0], dim=-1), atol=1e-5, rtol=0)
    assert not torch.allclose(vectors[2], vectors[0], atol=1e-3) and not torch.allclose(vectors[2], vectors[1], atol=1e-3)


def test_the_instruction_is_text_for_the_text_tower(encoder) -> None:
    image = Image.effect_noise((50, 50), 30).convert("RGB")
    plain, instructed = encoder.encode([Example("", None, image), Example("Represent the given image.", None, image)])
    assert not torch.allclose(plain, instructed, atol=1e-3)


def test_lora_reaches_the_text_tower_and_with_train_vision_the_image_tower(encoder) -> None:
    fresh = type(encoder).build("tiny")
    text_only = fresh.lora_target_modules()
    both = fresh.lora_target_modules(train_vision=True)
    assert text_only and all(t.startswith("towers.text_model.") for t in text_only)
    assert set(text_only) < set(both) and any(t.startswith("towers.vision_model.") for t in both)
    assert not any(t.endswith(("text_projection", "visual_projection", "head")) for t in both)
    apply_lora(fresh, LoraSettings(r=4, alpha=8, dropout=0.0, train_vision=True))
    loss = fresh(fresh.collate(sample_examples()[:3])).sum()
    loss.backward()
    trainable = [p for n, p in fresh.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_pretraining_uses_the_familys_own_contrastive_loss(encoder) -> None:
    images = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    batch = encoder.collate([Example("", f"colour {i}", im) for i, im in enumerate(images)])
    loss = paradigm_loss(encoder, batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = encoder.towers(**encoder._text_inputs(batch, batch["has_text"]), pixel_values=batch["pixel_values"],
                                  return_loss=True).loss
    torch.testing.assert_close(loss.detach(), expected)
    with pytest.raises(ValueError, match="image and a caption"):
        encoder.image_text_loss(encoder.collate([Example("", "no image here")]))
    with pytest.raises(NotImplementedError, match="no language-model head"):
        encoder.output_logits(torch.zeros(1, 2, 3))


def test_long_text_is_truncated_with_a_warning_or_refused(encoder, caplog) -> None:
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 20)
    with caplog.at_level(logging.WARNING, logger="pipeline.models.base"):
        batch = encoder.collate([Example("Represent", long_text)])
    assert batch["input_ids"].shape[1] == encoder.spec.max_length
    assert any("truncating" in r.getMessage() for r in caplog.records)
    strict = type(encoder)(encoder.towers, encoder.tokenizer, encoder.image_processor,
                           replace(EncoderOptions(), on_overflow="error"))
    with pytest.raises(ValueError, match="tokens"):
        strict.collate([Example("Represent", long_text)])


def test_pooling_and_attention_switches_are_refused(encoder) -> None:
    other = "mean"
    with pytest.raises(ValueError, match="projection heads"):
        type(encoder)(encoder.towers, encoder.tokenizer, encoder.image_processor, EncoderOptions(pooling=other))
    with pytest.raises(ValueError, match="attention only"):
        encoder.apply_attention("block")
