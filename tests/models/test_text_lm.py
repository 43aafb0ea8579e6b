"""DiffEmbed's text-only embedders: Qwen2.5-7B (AR), Dream-7B and LLaDA-8B (diffusion).

The registry contract (test_registry.py) already checks the tiny presets and the real sizes;
here: the attention / pooling switch, the published key layouts, the checkpoint round trip.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from pipeline.models import get_family
from pipeline.models.base import EncoderOptions, Example
from pipeline.models.families._text_lm import TextOnlyError
from tests.models.family_checks import KEYS_DIR, LONG_TEXT, published_tensors

TEXT_FAMILIES = ("qwen2_5_text", "dream_text", "llada_text")
EXAMPLES = [Example("Find a paraphrase:", "a large red circle at the top left"), Example("", LONG_TEXT),
            Example("Represent the text:", "a small blue star in the center")]


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_defaults_follow_diffembed(family: str) -> None:
    spec = get_family(family).spec
    if spec.paradigm == "diffusion":
        assert (spec.attention, spec.pooling) == ("bidirectional", "mean")
    else:
        assert (spec.attention, spec.pooling) == ("causal", "eos")
    assert spec.text_only and not spec.vision_modules


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_attention_and_pooling_are_switches_that_change_the_embedding(family: str) -> None:
    encoder = get_family(family).build("tiny", seed=0)
    default = encoder.encode(EXAMPLES)
    flipped = "causal" if encoder.options.attention == "bidirectional" else "bidirectional"
    encoder.set_options(replace(encoder.options, attention=flipped))
    attention_only = encoder.encode(EXAMPLES)
    assert not torch.allclose(default, attention_only, atol=1e-3)
    other_pool = "mean" if encoder.options.pooling != "mean" else "last"
    encoder.set_options(replace(encoder.options, pooling=other_pool))
    assert not torch.allclose(attention_only, encoder.encode(EXAMPLES), atol=1e-3)


def test_causal_attention_hides_later_tokens_and_bidirectional_does_not() -> None:
    encoder = get_family("dream_text").build("tiny", seed=0)
    batch = encoder.collate([Example("", LONG_TEXT)])
    edited = {k: v.clone() for k, v in batch.items()}
    edited["input_ids"][0, -1] = (int(edited["input_ids"][0, -1]) + 7) % 900 + 100
    for attention, first_moves in (("bidirectional", True), ("causal", False)):
        encoder.set_options(replace(encoder.options, attention=attention))
        with torch.no_grad():
            moved = encoder.hidden_states(batch)[0, 0] - encoder.hidden_states(edited)[0, 0]
        assert bool(moved.abs().max() > 1e-5) == first_moves, attention


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_an_image_is_refused_with_a_way_out(family: str) -> None:
    from PIL import Image

    encoder = get_family(family).build("tiny")
    with pytest.raises(TextOnlyError, match="VLM family"):
        encoder.collate([Example("Represent the image", None, Image.new("RGB", (32, 32)))])


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_the_published_key_list_maps_one_to_one_onto_the_real_model(family: str) -> None:
    cls = get_family(family)
    published = published_tensors(family)
    with torch.device("meta"):
        encoder = cls.build("real")
    ours = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    mapped = {cls.key_map.to_ours(k): shape for k, shape in published.items()}
    assert None not in mapped and len(mapped) == len(published)
    assert mapped == ours
    assert abs(sum(math.prod(s) for s in published.values()) - cls.spec.published_params) / cls.spec.published_params < 0.01


def test_qwen_keys_are_what_transformers_qwen2_for_causal_lm_holds() -> None:
    """An independent check of the derived list: transformers' own class, built from Qwen2.5-7B's numbers."""
    config = Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False)
    with torch.device("meta"):
        reference = Qwen2ForCausalLM(config)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert published_tensors("qwen2_5_text") == expected
    assert published_tensors("dream_text") == expected  # Dream-7B keeps Qwen2.5-7B's layout


def test_llada_keys_are_mmadas_language_model_with_llada_vocabulary() -> None:
    mmada = json.loads((KEYS_DIR / "mmada.json").read_text())["keys"]
    llada = published_tensors("llada_text")
    assert set(llada) == set(mmada)
    differ = {k for k in llada if tuple(mmada[k]) != llada[k]}
    assert differ == {"model.transformer.wte.weight", "model.transformer.ff_out.weight"}
    assert llada["model.transformer.wte.weight"] == (126464, 4096)


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_save_original_reads_back_to_the_same_embeddings(family: str, tmp_path) -> None:
    cls = get_family(family)
    encoder = cls.build("tiny", seed=3)
    encoder.save_original(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"][0] in ("Qwen2ForCausalLM", "DreamModel", "LLaDAModelLM")
    loaded = cls.from_pretrained(str(tmp_path), dtype=torch.float32, options=EncoderOptions())
    torch.testing.assert_close(loaded.encode(EXAMPLES), encoder.encode(EXAMPLES), atol=1e-6, rtol=0)
    assert loaded.mask_token_id == encoder.mask_token_id
