"""The shared machinery of transformers-backed families (pipeline/models/families/_transformers_vlm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from pipeline.models.checkpoint import CheckpointMismatchError, KeyMap, KeyRule
from pipeline.models.families._transformers_vlm import (
    attn_implementation,
    check_loading_info,
    expand_to_square,
    keymap_as_renames,
)
from pipeline.models.families.llava_next import LlavaNextEncoder
from pipeline.models.registry import get_family

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_keymap_becomes_transformers_renames() -> None:
    keymap = KeyMap([KeyRule("a.{rest}", "model.a.{rest}"), KeyRule("head.weight", "head.weight"), KeyRule("x.w", "y.w")])
    assert keymap_as_renames(keymap) == {r"^a\.(.+)$": r"model.a.\1", r"^x\.w$": "y.w"}
    with pytest.raises(ValueError, match="single"):
        keymap_as_renames(KeyMap([KeyRule("layers.{n}.{rest}", "m.layers.{n}.{rest}")]))


def test_expand_to_square_centres_the_image_on_the_fill_colour() -> None:
    image = Image.new("RGB", (6, 2), (255, 0, 0))
    square = expand_to_square(image, (1, 2, 3))
    assert square.size == (6, 6)
    assert square.getpixel((0, 0)) == (1, 2, 3) and square.getpixel((3, 3)) == (255, 0, 0)
    assert expand_to_square(square, (0, 0, 0)) is square


def test_cpu_runs_on_sdpa() -> None:
    assert attn_implementation("cpu") == "sdpa"


def test_non_causal_attention_leaves_flash_attention_for_sdpa() -> None:
    encoder = LlavaNextEncoder.build("tiny")
    switched: list[str] = []
    encoder.vlm.config._attn_implementation = "flash_attention_2"
    encoder.vlm.set_attn_implementation = switched.append  # flash_attn is not installed here
    encoder.apply_attention("causal")
    assert switched == []
    encoder.apply_attention("block")
    assert switched == ["sdpa"] and encoder.options.attention == "block"
    with pytest.raises(ValueError, match="attention must be one of"):
        encoder.apply_attention("sideways")  # type: ignore[arg-type]


def test_loading_report_becomes_a_listing_error() -> None:
    check_loading_info({"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set()}, "ok")
    with pytest.raises(CheckpointMismatchError, match=r"1 missing:\n    a\.weight") as err:
        check_loading_info({"missing_keys": {"a.weight"}, "unexpected_keys": {"b"},
                            "mismatched_keys": {("c", (1, 2), (2, 1))}}, "test checkpoint")
    assert err.value.unexpected == ["b"] and "c: checkpoint (1, 2) vs model (2, 1)" in err.value.shapes


def test_a_checkpoint_missing_a_tensor_is_refused(tmp_path: Path) -> None:
    LlavaNextEncoder.build("tiny").save_original(str(tmp_path))
    shard = next(tmp_path.glob("model-*.safetensors"))
    state = load_file(str(shard))
    del state["image_newline"]
    save_file(state, str(shard), metadata={"format": "pt"})
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    del index["weight_map"]["image_newline"]
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointMismatchError, match="model.image_newline"):
        LlavaNextEncoder.from_pretrained(str(tmp_path), dtype=torch.float32, device="cpu")


@pytest.mark.parametrize("family", ["llava_next", "qwen2_5_vl", "diffusionvl"])
def test_docs_show_the_current_key_map(family: str) -> None:
    assert get_family(family).keymap.markdown() in DOCS.read_text()
