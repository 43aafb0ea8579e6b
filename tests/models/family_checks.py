"""Checks every transformers-backed VLM family must pass; tests/models/test_<family>.py call them.

Each check asserts something a wrong implementation fails: a pre-norm hidden state, a
padding-dependent position, a vision module under LoRA, a saved key in the wrong layout.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from transformers.conversion_mapping import get_model_conversion_mapping
from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

from pipeline.models.base import (
    KIND_PAD,
    EmptyExampleError,
    Example,
    ImageError,
    InputTooLongError,
)
from pipeline.models.checkpoint import read_state_dict
from pipeline.models.lora import LoraSettings, apply_lora

KEYS_DIR = Path(__file__).resolve().parents[1] / "data" / "keys"
LM_PREFIX = "vlm.model.language_model."
LONG_TEXT = "the quick brown fox jumps over the lazy dog near a quiet river bank at dawn"


def sample_images() -> list[Image.Image]:
    wide = Image.new("RGB", (64, 40), (220, 30, 30))
    tall = Image.linear_gradient("L").resize((30, 90)).convert("RGB")
    square = Image.effect_noise((80, 80), 40).convert("RGB")
    return [wide, tall, square]


def sample_examples() -> list[Example]:
    """Mixed lengths and modalities: text-only, image-only and image+text."""
    wide, tall, square = sample_images()
    return [
        Example("Find an image that matches the caption.", "a red square"),
        Example("Represent the given image.", None, wide),
        Example("Represent the image with the question:", "what colour is the sky on a sunny day?", tall),
        Example("", LONG_TEXT),
        Example("Classify", "noise", square),
    ]


def published_tensors(family: str) -> dict[str, tuple[int, ...]]:
    data = json.loads((KEYS_DIR / f"{family}.json").read_text())
    assert data["count"] == len(data["tensors"]) and data["source"], "key data must say where it came from"
    return {k: tuple(v) for k, v in data["tensors"].items()}


def layout(keys: Any) -> set[str]:
    """Key names with every number replaced, so a 2-layer save compares with a 32-layer list."""
    return {re.sub(r"\.\d+(?=\.|$)", ".N", k) for k in keys}


# -- sizes and checkpoint layout -------------------------------------------------------------
def check_meta_parameter_count(cls: Any) -> int:
    with torch.device("meta"):
        encoder = cls.build("real")
    assert all(p.is_meta for p in encoder.parameters())
    count = sum(p.numel() for name, p in encoder.named_parameters() if not name.startswith(cls.spec.params_exclude))
    published = cls.spec.published_params
    assert abs(count - published) / published < 0.01, f"{count:,} params vs published {published:,}"
    return count


def transformers_names(model: torch.nn.Module, keys: list[str], key_mapping: dict[str, str] | None) -> dict[str, str]:
    """What transformers' own loading machinery renames each published key to."""
    conversions = get_model_conversion_mapping(model, key_mapping=key_mapping)
    renames = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if isinstance(c, WeightConverter)]
    state = model.state_dict()
    return {k: rename_source_key(k, renames, converters, model.base_model_prefix, state)[0] for k in keys}


def check_published_keys(cls: Any) -> None:
    """The published tensor list sums to the published size, maps one-to-one with shapes onto
    our real-size model, and transformers' own conversion of its names agrees with our key map."""
    published = published_tensors(cls.spec.name)
    assert sum(math.prod(shape) for shape in published.values()) == cls.spec.published_params
    with torch.device("meta"):
        encoder = cls.build("real")
    ours = {k: tuple(v.shape) for k, v in encoder.vlm.state_dict().items()}
    mapped: dict[str, tuple[int, ...]] = {}
    for key, shape in published.items():
        target = cls.keymap.to_ours(key)
        assert target is not None, f"no key-map row reads published key {key}"
        assert target not in mapped, f"two published keys map to {target}"
        mapped[target] = shape
    assert set(mapped) == set(ours), (sorted(set(mapped) - set(ours))[:5], sorted(set(ours) - set(mapped))[:5])
    wrong = {k: (mapped[k], ours[k]) for k in ours if mapped[k] != ours[k]}
    assert not wrong, f"shape mismatches: {list(wrong.items())[:5]}"
    assert set(cls.keymap.revert(dict.fromkeys(ours, 0))) == set(published)
    via_transformers = transformers_names(encoder.vlm, list(published), cls.load_key_mapping)
    assert via_transformers == {k: cls.keymap.to_ours(k) for k in published}


def check_save_original_round_trip(encoder: Any, tmp_path: Path) -> Any:
    """save_original writes the published layout and from_pretrained reads it back exactly."""
    examples = sample_examples()
    before = encoder.encode(examples, batch_size=8)
    directory = tmp_path / "checkpoint"
    encoder.save_original(str(directory))
    saved = read_state_dict(directory)
    assert layout(saved) == layout(published_tensors(encoder.spec.name))
    for key, value in encoder.published_state_dict().items():
        assert torch.equal(saved[key], value), key
    loaded = type(encoder).from_pretrained(str(directory), dtype=torch.float32, device="cpu",
                                          options=replace(encoder.options))
    after = loaded.encode(examples, batch_size=8)
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)
    return loaded


# -- forward semantics -------------------------------------------------------------------------
def check_final_normed_states(encoder: Any, examples: list[Example]) -> None:
    """hidden_states is the output of the LM's final norm, not the residual stream before it."""
    seen: dict[str, torch.Tensor] = {}
    norm = encoder.vlm.model.language_model.norm

    def grab(_module: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen["in"], seen["out"] = inputs[0].detach(), output.detach()

    handle = norm.register_forward_hook(grab)
    try:
        with torch.no_grad():
            hidden = encoder.hidden_states(encoder.collate(examples))
    finally:
        handle.remove()
    assert torch.equal(hidden, seen["out"])
    assert not torch.allclose(hidden, seen["in"], atol=1e-3)


def _states_after_edit(encoder: Any, attention: str, position: int, block_size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    encoder.set_options(replace(encoder.options, attention=attention, block_size=block_size))
    batch = encoder.collate([Example("", LONG_TEXT)])
    edited = {k: v.clone() for k, v in batch.items()}
    token = int(edited["input_ids"][0, position])
    edited["input_ids"][0, position] = 100 + (token + 7) % 900  # an ordinary text token
    with torch.no_grad():
        return encoder.hidden_states(batch)[0], encoder.hidden_states(edited)[0]


def check_attention_directions(encoder: Any) -> None:
    """causal: later tokens never reach earlier ones; bidirectional: they do; block: only
    within the block (here 4 tokens), never into an earlier block."""
    original = encoder.options
    try:
        length = int(encoder.collate([Example("", LONG_TEXT)])["attention_mask"].sum())
        position = length - 3  # a text token near the end, not the first of its 4-token block
        while position % 4 < 2:
            position -= 1
        changed = lambda a, b: (a - b).abs().amax(dim=-1) > 1e-5  # noqa: E731 - per position

        before, after = _states_after_edit(encoder, "causal", position)
        diff = changed(before, after)
        assert not diff[:position].any() and diff[position]

        before, after = _states_after_edit(encoder, "bidirectional", position)
        assert changed(before, after)[:position].all()

        before, after = _states_after_edit(encoder, "block", position, block_size=4)
        diff = changed(before, after)
        block_start = position - position % 4
        assert not diff[:block_start].any(), "a later block leaked into an earlier one"
        assert diff[block_start:position].all(), "tokens of the same block must see each other"
    finally:
        encoder.set_options(original)


def check_padding_and_batch_independence(encoder: Any, attentions: tuple[str, ...] = ("causal", "bidirectional", "block")) -> None:
    """An example's embedding is the same alone, in a mixed batch, left- or right-padded,
    under every attention mode (the non-causal ones run on a 4D mask that must hide padding)."""
    examples = sample_examples()
    side, original = encoder.padding_side, encoder.options
    try:
        for attention in attentions:
            encoder.set_options(replace(original, attention=attention))
            with torch.no_grad():
                alone = torch.cat([encoder(encoder.collate([ex])) for ex in examples])
                for padding_side in ("left", "right"):
                    encoder.padding_side = padding_side
                    batch = encoder.collate(examples)
                    first_pad = batch["token_kinds"][:, 0 if padding_side == "left" else -1]
                    assert (first_pad == KIND_PAD).any(), "the batch must actually be padded"
                    together = encoder(batch)
                    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0, msg=f"{attention}, {padding_side} padding")
    finally:
        encoder.padding_side = side
        encoder.set_options(original)


def check_lora(cls: Any) -> None:
    """Default LoRA hits the LM's seven projections only; train_vision adds the vision tower."""
    encoder = cls.build("tiny")
    targets = encoder.lora_target_modules()
    layers = encoder.vlm.config.text_config.num_hidden_layers
    assert len(targets) == 7 * layers
    assert all(t.startswith(LM_PREFIX) for t in targets)
    assert not any("lm_head" in t for t in targets)
    vision = encoder.spec.vision_modules
    with_vision = encoder.lora_target_modules(train_vision=True)
    assert set(targets) < set(with_vision)
    assert any(t.startswith(vision) for t in with_vision)
    apply_lora(encoder, LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(targets)
    batch = encoder.collate(sample_examples()[:3])
    loss = encoder(batch).sum()
    loss.backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="LoRA"):
        encoder.published_state_dict()


def check_bad_inputs(encoder: Any, caplog: Any) -> None:
    with pytest.raises(ImageError, match="too small"):
        encoder.collate([Example("x", None, Image.new("RGB", (1, 1)))])
    with pytest.raises(ImageError, match="expected a PIL image"):
        encoder.collate([Example("x", "y", image="photo.jpg")])  # type: ignore[arg-type]
    with pytest.raises(EmptyExampleError):
        Example("only an instruction")
    placeholder = encoder.tokenizer.convert_ids_to_tokens(encoder.image_token_id)  # e.g. "<image>"
    with pytest.raises(ValueError, match="placeholder"):
        encoder.collate([Example("x", f"look {placeholder} here")])
    original = encoder.options
    long_text = " ".join([LONG_TEXT] * 20)
    try:
        encoder.set_options(replace(original, max_length=24))
        with caplog.at_level(logging.WARNING, logger="pipeline.models.base"):
            batch = encoder.collate([Example("Represent", long_text)])
        assert batch["input_ids"].shape[1] == 24
        assert any("truncating" in r.getMessage() for r in caplog.records)
        encoder.set_options(replace(original, max_length=24, on_overflow="error"))
        with pytest.raises(InputTooLongError):
            encoder.collate([Example("Represent", long_text)])
    finally:
        encoder.set_options(original)


def check_encode(encoder: Any) -> None:
    examples = sample_examples()
    vectors = encoder.encode(examples, batch_size=2)
    assert vectors.shape == (len(examples), encoder.vlm.config.text_config.hidden_size)
    assert vectors.dtype == torch.float32 and vectors.device.type == "cpu"
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(len(examples)))
    one_by_one = torch.cat([encoder.encode([ex]) for ex in examples])
    torch.testing.assert_close(vectors, one_by_one, atol=1e-5, rtol=0)
    assert not torch.allclose(vectors[0], vectors[1], atol=1e-3)
    with torch.no_grad():
        hidden = encoder.hidden_states(encoder.collate(examples[:2]))
        logits = encoder.output_logits(hidden)
    assert logits.shape == (*hidden.shape[:2], encoder.vlm.config.text_config.vocab_size)
