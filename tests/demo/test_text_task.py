"""The demo's text-task settings: each miniature in its paradigm's setting (default) and the other one."""

from __future__ import annotations

import pytest

from pipeline.demo.build import SEED_FAMILIES
from pipeline.demo.text_task import BIDIRECTIONAL_MEAN, text_settings
from pipeline.experiment import Experiment, ModelEntry
from pipeline.models.base import EncoderOptions


@pytest.mark.parametrize("model", SEED_FAMILIES, ids=lambda m: m.family)
def test_each_miniature_runs_both_settings_with_its_own_as_default(model) -> None:
    settings = dict(text_settings(model.family))
    assert len(settings) == 2 and "default" in settings
    for options in settings.values():
        EncoderOptions(**options)  # valid switches
    diffusion = model.family in ("lavida", "mmada")
    assert (settings["default"] == BIDIRECTIONAL_MEAN) == diffusion
    assert {o["attention"] for o in settings.values()} == {"causal", "bidirectional"}


def test_an_experiment_may_evaluate_the_text_task_but_not_an_unknown_one() -> None:
    entry = ModelEntry(name="m", family="dream_text", base="random:tiny:0")
    assert Experiment(name="t", models=(entry,), meta_tasks=("text",)).meta_tasks == ("text",)
    with pytest.raises(ValueError, match="unknown meta-tasks"):
        Experiment(name="t", models=(entry,), meta_tasks=("grounding",))
