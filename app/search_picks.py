"""Live retrieval's model picks: one tick per model and a stage per model, resolved to run ids.

A store holds many runs per model (every meta-task it was trained on, at every stage); the
tab shows one checkbox per model with a stage dropdown whose default, FINAL, means "the
model's final run trained on the chosen meta-task" (`pipeline.search.engine.choose_runs`),
and whose other choices name one run each (any stored checkpoint or zero-shot run).
In the URL the picks are one list: a model's name, or `name@run id` when its stage is not FINAL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.search.engine import RunInfo, choose_runs

FINAL = "final"
FINAL_LABEL = "final (trained on the chosen meta-task)"
STAGE_ORDER = {"zero-shot": 0, "checkpoint": 1, "final": 2}


def models_of(runs: Iterable[RunInfo]) -> list[str]:
    """Model names in the store's first-seen order."""
    return list(dict.fromkeys(r.model for r in runs))


def stage_choices(runs: Iterable[RunInfo], model: str) -> list[tuple[str, str]]:
    """(label, value) of a model's stages: FINAL first (when it has a final run), then each of its runs
    from zero-shot to final. The first choice is the default."""
    mine = sorted((r for r in runs if r.model == model),
                  key=lambda r: (STAGE_ORDER.get(r.stage, 1), r.train_samples or 0, r.label))
    final = [(FINAL_LABEL, FINAL)] if any(r.stage == "final" for r in mine) else []
    return final + [(r.label, r.run_id) for r in mine]


@dataclass(frozen=True)
class Resolved:
    run_ids: list[str]
    missing: list[str]  # ticked models with no final run trained on the chosen task

    def note(self, task: str | None) -> str:
        if not self.missing:
            return ""
        return (f" Left out (no final run trained on {task or 'this meta-task'}; pick one of their stages): "
                f"{', '.join(self.missing)}.")


def resolve(runs: Sequence[RunInfo], ticked: Sequence[str], stages: Mapping[str, str | None],
            task: str | None) -> Resolved:
    """The run ids to search: per ticked model, its chosen run, or with FINAL (or a stale value) its final
    run trained on `task` (`choose_runs`; with no task, its default final run)."""
    by_id = {r.run_id: r for r in runs}
    out, missing = [], []
    for model in ticked:
        stage = stages.get(model) or FINAL
        if stage in by_id and by_id[stage].model == model:
            out.append(stage)
            continue
        final = choose_runs([r for r in runs if r.model == model], task)
        (out.extend(final) if final else missing.append(model))
    return Resolved(out, missing)


def default_ticks(runs: Sequence[RunInfo], default_run_ids: Sequence[str]) -> list[str]:
    """The models ticked before the user picks: those with a default run (a final run on the chosen task)."""
    chosen = {r.model for r in runs if r.run_id in set(default_run_ids)}
    return [m for m in models_of(runs) if m in chosen]


def encode(ticked: Sequence[str], stages: Mapping[str, str | None]) -> list[str]:
    """The URL's list: `model`, or `model@run id` for a stage other than FINAL."""
    return [m if (stages.get(m) or FINAL) == FINAL else f"{m}@{stages[m]}" for m in ticked]


def decode(items: Sequence[str], models: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(ticked models, stage per model) from the URL's list; unknown models are dropped."""
    ticked, stages = [], {}
    longest_first = sorted(models, key=len, reverse=True)  # a model name may itself hold "@"
    for item in items:
        model = next((m for m in longest_first if item == m or item.startswith(m + "@")), None)
        if model is not None and model not in ticked:
            ticked.append(model)
            stages[model] = item[len(model) + 1:] or FINAL
    return ticked, stages
