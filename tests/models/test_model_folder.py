"""Hugging Face-shaped model folders: PEFT opens the adapter, full fine-tunes are safetensors,
old checkpoints still load."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipeline.models.base import Example
from pipeline.models.lora import LoraSettings, apply_lora, lora_state_dict
from pipeline.models.model_folder import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    FULL_WEIGHTS,
    META_FILE,
    load_model,
    our_key,
    peft_key,
    save_model_folder,
)
from pipeline.models.recipe import WEIGHTS_FILE, EncoderRecipe
from pipeline.models.registry import build

FAMILY = "llava_next"
EXAMPLES = [Example("Find the image.", "a red square"), Example("", "three blue circles"),
            Example("Represent the text.", "a green triangle at the top")]


def _lora_checkpoint(directory: Path) -> Path:
    """An old-style checkpoint (encoder.json + weights.pt) whose adapters are not zero."""
    encoder = build(FAMILY, "tiny", seed=0)
    settings = LoraSettings(r=4, alpha=8, dropout=0.0)
    apply_lora(encoder, settings)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: the adapter would change nothing
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    directory.mkdir(parents=True)
    torch.save(lora_state_dict(encoder), directory / WEIGHTS_FILE)
    EncoderRecipe(FAMILY, "random:tiny:0", lora=asdict(settings), weights=WEIGHTS_FILE).save(directory)
    return directory


@pytest.fixture(scope="module")
def lora_checkpoint(tmp_path_factory) -> Path:
    return _lora_checkpoint(tmp_path_factory.mktemp("ckpt") / "step")


def test_peft_key_names_round_trip() -> None:
    ours = "vlm.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight"
    assert peft_key(ours) == "base_model.model.vlm.model.language_model.layers.0.self_attn.q_proj.lora_A.weight"
    assert our_key(peft_key(ours)) == ours


def test_peft_opens_the_adapter_and_gives_the_same_embeddings(lora_checkpoint, tmp_path) -> None:
    from peft import PeftModel

    folder = save_model_folder(lora_checkpoint, tmp_path / "hf", card="# card\n")
    assert {ADAPTER_CONFIG, ADAPTER_WEIGHTS, META_FILE, "README.md"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    assert all(k.startswith("base_model.model.") for k in load_file(folder / ADAPTER_WEIGHTS))

    ours = load_model(lora_checkpoint).encode(EXAMPLES)
    base = build(FAMILY, "tiny", seed=0)
    untrained = base.encode(EXAMPLES)
    peft_model = PeftModel.from_pretrained(base, str(folder))
    theirs = peft_model.base_model.model.encode(EXAMPLES)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
    assert not torch.allclose(untrained, ours, atol=1e-3)  # the adapter matters: this is not vacuous
    torch.testing.assert_close(load_model(folder).encode(EXAMPLES), ours, atol=1e-5, rtol=0)


def test_a_full_fine_tune_is_saved_as_safetensors(tmp_path) -> None:
    encoder = build(FAMILY, "tiny", seed=0)
    with torch.no_grad():
        encoder.input_embeddings().weight.mul_(-1.5)
    checkpoint = tmp_path / "full"
    checkpoint.mkdir()
    torch.save({k: v.clone() for k, v in encoder.state_dict().items()}, checkpoint / WEIGHTS_FILE)
    EncoderRecipe(FAMILY, "random:tiny:0", weights=WEIGHTS_FILE).save(checkpoint)
    folder = save_model_folder(checkpoint, tmp_path / "hf")
    assert (folder / FULL_WEIGHTS).is_file() and not (folder / ADAPTER_CONFIG).exists()
    expected = encoder.encode(EXAMPLES)
    torch.testing.assert_close(load_model(folder).encode(EXAMPLES), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(load_model(checkpoint).encode(EXAMPLES), expected, atol=1e-5, rtol=0)


def test_a_folder_that_is_no_model_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="export-model"):
        load_model(tmp_path)
