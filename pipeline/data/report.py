"""Counting what the reader skipped and why, per dataset, with a few examples of each."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_EXAMPLES = 3


def image_problem(message: str) -> str:
    """The skip reason for an ImageError message: missing, empty or corrupt."""
    text = message.lower()
    if "no such image" in text:
        return "missing image"
    if "is empty" in text:  # open_image: "the file is empty (0 bytes)" / "the image is empty"
        return "empty image"
    return "corrupt image"


@dataclass
class DatasetReport:
    dataset: str
    split: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES and example not in shown:
            shown.append(example)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        head = f"{self.dataset} ({self.split}): kept {self.rows_kept} of {self.rows_read} rows read"
        if not self.skipped:
            return head
        lines = [head + f", skipped {self.n_skipped}:"]
        for reason, count in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:>6}  {reason}  e.g. {'; '.join(self.examples.get(reason, []))}")
        return "\n".join(lines)


@dataclass
class ReadReport:
    """Everything skipped while reading, across datasets and splits."""

    datasets: dict[tuple[str, str], DatasetReport] = field(default_factory=dict)

    def for_dataset(self, dataset: str, split: str) -> DatasetReport:
        key = (dataset, split)
        if key not in self.datasets:
            self.datasets[key] = DatasetReport(dataset, split)
        return self.datasets[key]

    @property
    def n_skipped(self) -> int:
        return sum(r.n_skipped for r in self.datasets.values())

    def skipped_by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.datasets.values():
            total.update(r.skipped)
        return total

    def summary(self, only_problems: bool = False) -> str:
        reports = [r for r in self.datasets.values() if r.skipped or not only_problems]
        if not reports:
            return "nothing skipped"
        return "\n".join(r.summary() for r in reports)
