"""The encoder contract, checked on every family that wraps a transformers VLM (tiny, CPU).

Family-specific facts and prompt layouts live in tests/models/test_<family>.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.models.families._transformers_vlm import TransformersVLM
from pipeline.models.registry import family_names, get_family
from tests.models.family_checks import (
    check_attention_directions,
    check_bad_inputs,
    check_encode,
    check_final_normed_states,
    check_lora,
    check_padding_and_batch_independence,
    check_published_keys,
    check_save_original_round_trip,
    sample_examples,
)

# Every registered family built on a transformers VLM class, found by the registry; the contract
# every family shares (sizes, key list present, encode) is in test_registry.py.
FAMILIES = tuple(n for n in family_names() if issubclass(get_family(n), TransformersVLM))


@pytest.fixture(scope="module", params=FAMILIES)
def encoder(request: pytest.FixtureRequest) -> Any:
    return get_family(request.param).build("tiny", seed=0)


def test_the_transformers_families_are_found() -> None:
    assert set(FAMILIES) == {"llava_next", "qwen2_5_vl", "diffusionvl"}


@pytest.mark.parametrize("family", FAMILIES)
def test_published_key_list_maps_one_to_one(family: str) -> None:
    check_published_keys(get_family(family))


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_hits_only_language_model_projections(family: str) -> None:
    check_lora(get_family(family))


def test_save_original_round_trip(encoder: Any, tmp_path) -> None:
    check_save_original_round_trip(encoder, tmp_path)


def test_hidden_states_are_after_the_final_norm(encoder: Any) -> None:
    check_final_normed_states(encoder, sample_examples()[:3])


def test_attention_switch(encoder: Any) -> None:
    check_attention_directions(encoder)


def test_padding_and_batch_composition_do_not_change_embeddings(encoder: Any) -> None:
    check_padding_and_batch_independence(encoder)


def test_bad_inputs_are_refused_clearly(encoder: Any, caplog: pytest.LogCaptureFixture) -> None:
    check_bad_inputs(encoder, caplog)


def test_encode_returns_unit_vectors_in_order(encoder: Any) -> None:
    check_encode(encoder)
