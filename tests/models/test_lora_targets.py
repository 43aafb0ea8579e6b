"""What contrastive fine-tuning trains in each family by default: the LM's projections, and the
vision tower's layers that VLM2Vec's LoRA targets name (all but MMaDA's, Sec. 6 RQ3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from pipeline.experiment import Experiment
from pipeline.models import family_names, get_family
from pipeline.models.lora import LM_PROJECTIONS, VLM2VEC_LORA_TARGETS, LoraSettings, apply_lora

PAPER_TOML = Path(__file__).resolve().parents[2] / "experiments" / "paper.toml"


def _in_vision(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(p) or f".{p}" in name for p in prefixes)


def _tower_linear_suffixes(encoder) -> set[str]:
    return {n.split(".")[-1] for n, m in encoder.named_modules()
            if isinstance(m, nn.Linear) and _in_vision(n, encoder.spec.vision_modules)}


@pytest.mark.parametrize("family", family_names())
def test_vision_targets_are_vlm2vecs_list_cut_to_the_towers_layers(family):
    spec = get_family(family).spec
    if not spec.trains_vision:
        return
    encoder = get_family(family).build("tiny")
    expected = set(VLM2VEC_LORA_TARGETS) & _tower_linear_suffixes(encoder)
    assert expected and set(spec.vision_lora_targets) == expected


@pytest.mark.parametrize("family", ["llava_next", "qwen2_5_vl", "lavida", "mmada"])
def test_default_fine_tuning_trains_exactly_the_lm_projections_and_the_named_vision_layers(family):
    encoder = get_family(family).build("tiny")
    spec = encoder.spec
    apply_lora(encoder, LoraSettings(r=2, alpha=4, dropout=0.0, train_vision=spec.trains_vision))
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    adapted = {n.split(".lora_")[0] for n in trainable}  # the linear layers that got adapters
    vision = {n for n in adapted if _in_vision(n, spec.vision_modules)}
    language = adapted - vision
    assert {n.split(".")[-1] for n in language} == set(LM_PROJECTIONS)
    assert not any("lm_head" in n or n.split(".")[-1] == "head" for n in adapted)
    if family == "mmada":  # its MAGVIT-v2 stays frozen, as in the paper's default
        assert not spec.trains_vision and not vision
        assert not any(p.requires_grad for n, p in encoder.named_parameters() if n.startswith("vq_model"))
    else:
        assert spec.trains_vision and vision
        assert {n.split(".")[-1] for n in vision} == set(spec.vision_lora_targets)


def test_the_paper_grid_trains_every_vision_tower_but_mmadas_and_table4_unfreezes_it():
    paper = Experiment.from_toml(PAPER_TOML)
    trained = {(m.name, m.variant): m.vision_trained for m in paper.models}
    assert trained == {("LLaVA-1.6", "default"): True, ("Qwen2.5-VL", "default"): True,
                       ("LaViDa", "default"): True, ("MMaDA", "default"): False,
                       ("MMaDA", "vision-unfrozen"): True}
