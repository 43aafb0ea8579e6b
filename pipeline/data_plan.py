"""Which selected datasets a run can use, and what it skips.

A dataset the selection names but the download lacks is skipped, not fatal: the run goes on
with the rest and says what it left out (in its stored notes, and in the log with the reason).
Only when no meta-task keeps an evaluation set (and, to train, training pairs) does the run
stop, before it opens the store, with one line saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.data.catalog import select
from pipeline.data.dataset_info import DatasetInfo
from pipeline.data.mmeb import MMEBReader
from pipeline.experiment import DataEntry

log = logging.getLogger(__name__)

ABSENT = "absent here"
NO_ROWS = "no usable rows"


class NoUsableDataError(ValueError):
    """Nothing selected is here to train and evaluate on; the run stores nothing."""

    user_facing = True  # the CLI prints it as one line


@dataclass(frozen=True)
class Skipped:
    """One split of one selected dataset that a run leaves out."""

    dataset: str
    split: str  # "train" or "eval"
    why: str  # ABSENT or NO_ROWS
    detail: str = ""  # the reader's one-line reason (for the log)

    def line(self) -> str:
        return f"{self.dataset} ({self.split}): {self.detail or self.why}"


def selected(reader: MMEBReader, data: DataEntry, meta_task: str) -> list[DatasetInfo]:
    """The datasets of the selection for one meta-task, declared ones included."""
    builtin = data.selection.split(":")[0] == "builtin"
    infos = select(f"{data.selection}:{meta_task}", reader.datasets() if builtin else None, declared=data.datasets)
    if builtin:  # a built-in folder lists its datasets: one it does not hold was never built, not lost
        held = {d.name for d in reader.datasets()}
        infos = [d for d in infos if d.name in held or d.benchmark == "custom"]
    return infos


def absent(reader: MMEBReader, infos: Sequence[DatasetInfo], train: bool = True) -> list[Skipped]:
    """The splits of `infos` whose files are not here (nothing is read)."""
    out = []
    for info in infos:
        kinds = ("eval", "train") if train and info.has_train else ("eval",)
        for kind in kinds:
            reason = reader.missing(info.name, kind)
            if reason is not None:
                out.append(Skipped(info.name, kind, ABSENT, reason))
    return out


def usable(infos: Sequence[DatasetInfo], skipped: Sequence[Skipped], train: bool) -> bool:
    """Whether a meta-task keeps an eval dataset and, when it trains, an in-domain train split."""
    gone = {(s.dataset, s.split) for s in skipped}
    evals = [d for d in infos if (d.name, "eval") not in gone]
    trains = [d for d in infos if d.has_train and (d.name, "train") not in gone]
    return bool(evals) and (bool(trains) or not train)


def plan(reader: MMEBReader, data: DataEntry, meta_tasks: Sequence[str], train: bool = True,
         where: str = "") -> dict[str, list[Skipped]]:
    """Per usable meta-task, the selected splits absent here (logged); raises NoUsableDataError
    when no meta-task is usable."""
    out: dict[str, list[Skipped]] = {}
    examples: list[Skipped] = []
    for task in meta_tasks:
        infos = selected(reader, data, task)
        gone = absent(reader, infos, train)  # each is logged when the task's data is read
        if usable(infos, gone, train):
            out[task] = gone
        else:
            examples += gone
            log.warning("skipping meta-task %s: nothing of selection %r to %s here%s", task, data.selection,
                        "train and evaluate on" if train else "evaluate on",
                        f" (e.g. {gone[0].line()})" if gone else "")
    if not out:
        first = f" (e.g. {examples[0].line()})" if examples else ""
        raise NoUsableDataError(
            f"no usable data under {where or data.root}: none of the datasets selected ({data.selection!r}, "
            f"{', '.join(meta_tasks)}) is there{first}; point [data] root at an MMEB download or change [data] selection")
    return out


def notes(skipped: Sequence[Skipped]) -> str | None:
    """The line a stored run carries about what it left out, grouped by why."""
    if not skipped:
        return None
    parts = []
    for why in (ABSENT, NO_ROWS):
        names = [f"{s.dataset} {s.split}" for s in skipped if s.why == why]
        if names:
            parts.append(f"skipped ({why}): {', '.join(names)}")
    return "; ".join(parts)
