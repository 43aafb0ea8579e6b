"""Every family the registry finds meets the encoder contract, without being listed anywhere.

A new module in `pipeline/models/families/` is checked here by discovery alone; the dummy
family in `dummy_family/` is added the way docs/models.md ("Adding a family") says.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pipeline.models import family_names, get_family
from pipeline.models import registry as registry_module
from pipeline.models.base import Example, FamilySpec, ImageError, VLMEncoder
from pipeline.models.registry import UnknownFamilyError, register
from tests.models.family_checks import KEYS_DIR, check_meta_parameter_count, sample_examples

DUMMY_DIR = Path(__file__).parent / "dummy_family"


def key_list(family: str, keys_dir: Path = KEYS_DIR) -> Path | None:
    found = sorted(keys_dir.glob(f"{family}.json")) + sorted(keys_dir.glob(f"{family}.txt"))
    return found[0] if found else None


def check_family_contract(cls: type[VLMEncoder], keys_dir: Path = KEYS_DIR) -> None:
    """What every family must have: cited facts, a key list, a tiny preset honouring the
    encoder contract (unit vectors in input order, padding-independent) and a real size
    within 1% of the published count."""
    spec = cls.spec
    assert spec.params_source and "/work/" not in spec.params_source and not spec.params_source.startswith("/"), \
        f"{spec.name}: cite a public source for published_params, not a local path"
    listed = key_list(spec.name, keys_dir)
    assert listed is not None and listed.stat().st_size > 0, \
        f"{spec.name}: add its published key list as {keys_dir}/{spec.name}.json (see docs/models.md)"
    encoder = cls.build("tiny", seed=0)
    examples = sample_examples()
    if spec.text_only:  # DiffEmbed's text embedders: text examples only, and an image is a clear error
        with pytest.raises(ImageError, match="text-only"):
            encoder.encode([ex for ex in examples if ex.image is not None][:1])
        examples = [ex for ex in examples if ex.image is None] + [Example("Classify", "noise")]
    vectors = encoder.encode(examples, batch_size=2)
    assert vectors.dtype == torch.float32 and vectors.shape[0] == len(examples)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(len(examples)))
    one_by_one = torch.cat([encoder.encode([ex]) for ex in examples])
    torch.testing.assert_close(vectors, one_by_one, atol=1e-5, rtol=0)
    for padding_side in ("left", "right"):
        encoder.padding_side = padding_side
        torch.testing.assert_close(encoder.encode(examples, batch_size=len(examples)), one_by_one, atol=1e-5, rtol=0)
    assert not torch.allclose(vectors[0], vectors[1], atol=1e-3)
    check_meta_parameter_count(cls)


@pytest.mark.parametrize("family", family_names())
def test_every_registered_family_meets_the_contract(family: str) -> None:
    check_family_contract(get_family(family))


def test_the_registry_holds_the_six_families_and_suggests_close_names() -> None:
    assert {"llava_next", "qwen2_5_vl", "lavida", "mmada", "diffusionvl", "dream_vl"} <= set(family_names())
    with pytest.raises(UnknownFamilyError, match="llava_next"):
        get_family("llava_nxt")


def test_a_second_family_with_a_taken_name_is_refused() -> None:
    clash = type("Clash", (get_family("lavida"),), {"spec": replace(get_family("lavida").spec)})
    with pytest.raises(ValueError, match="registered twice"):
        register(clash)


@pytest.fixture
def with_dummy_family(monkeypatch):
    """The registry as it would be with tests/models/dummy_family/dummy.py copied into
    pipeline/models/families/ (discovery reads that package's __path__)."""
    from pipeline.models import families

    monkeypatch.setattr(families, "__path__", [*families.__path__, str(DUMMY_DIR)])
    monkeypatch.setattr(registry_module, "_FAMILIES", dict(registry_module._FAMILIES))
    monkeypatch.setattr(registry_module, "_DISCOVERED", False)
    yield
    import sys

    sys.modules.pop("pipeline.models.families.dummy", None)


def test_a_family_added_by_the_guide_is_discovered_and_checked(with_dummy_family, tmp_path) -> None:
    assert "dummy" in family_names()
    cls = get_family("dummy")
    assert isinstance(cls.spec, FamilySpec) and cls.spec.paradigm == "diffusion"
    check_family_contract(cls, keys_dir=DUMMY_DIR)
    encoder = cls.build("tiny", seed=1)
    encoder.save_original(str(tmp_path))
    loaded = cls.from_pretrained(str(tmp_path), dtype=torch.float32)
    examples = sample_examples()
    torch.testing.assert_close(loaded.encode(examples), encoder.encode(examples))
    assert len(encoder.lora_target_modules()) == 4  # q, k, v, o of its one layer; never the head


def test_the_dummy_family_is_not_registered_outside_its_test() -> None:
    assert "dummy" not in family_names()
