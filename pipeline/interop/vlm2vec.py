"""VLM2Vec's result files: one `<Dataset>_score.json` per dataset, and its leaderboard report.

Read from TIGER-AI-Lab/VLM2Vec: `eval.py` writes `{dataset}_score.json`; version 1 holds `acc`
(and `num_correct`, `num_pred`), version 2 the ranking metrics of
`src/utils/eval_utils/metrics.py` (`hit@k`, `precision@k`, `recall@k`, `ndcg_linear@k`,
`ndcg_exponential@k`, `map@k`, `mrr@k`) plus `num_pred` and `num_data`, all on a 0-1 scale.
`experiments/report_score_v2.py` gathers them as `{"metadata": {...}, "metrics": {modality:
{dataset: score_dict}}}` with `hit@1` the image tasks' main score. An MMEB row has one gold
candidate, so `hit@1` = `precision@1` = our Precision@1, and `hit@5` = our Recall@5.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.interop.results import DatasetScores, MetricName, RunScores, map_in, map_out

SUFFIX = "_score.json"
NAMES = (
    MetricName("precision@1", "hit@1", "v2 image main score; one gold candidate: hit@1 = precision@1"),
    MetricName("precision@1", "precision@1", "v2"),
    MetricName("precision@1", "acc", "v1"),
    MetricName("recall@5", "hit@5", "one gold candidate: hit@5 = recall@5"),
    MetricName("ndcg@5", "ndcg_linear@5", "binary relevance: linear = exponential gain"),
    MetricName("mrr", "mrr", "over the whole candidate set (VLM2Vec's own are mrr@k)"),
)
COUNTS = ("num_pred", "num_data")


def score_file(scores: DatasetScores) -> dict:
    """A version 2 score dict (plus `mrr` over all candidates, which VLM2Vec cuts at k); an
    imported file's fields as they came."""
    out = map_out(scores, NAMES, scores.extra)
    if scores.spelled:  # imported: nothing added
        return out
    if "precision@1" in scores.metrics and "hit@1" in out:
        out.setdefault("precision@1", out["hit@1"])
    if scores.n_queries is not None:
        for key in COUNTS:
            out.setdefault(key, scores.n_queries)
    return out


def write_run(run: RunScores, out: Path) -> list[Path]:
    """`<out>/<Dataset>_score.json` per dataset, and the leaderboard report `<out>/report.json`."""
    out.mkdir(parents=True, exist_ok=True)
    written, report = [], {}
    for scores in run.datasets:
        path = out / f"{scores.dataset}{SUFFIX}"
        record = score_file(scores)
        path.write_text(json.dumps(record, indent=4))
        report[scores.dataset] = record
        written.append(path)
    meta = {**run.meta, "model_name": run.model, "run_id": run.run_id}
    (out / "report.json").write_text(json.dumps({"metadata": meta, "metrics": {"image": report}}, indent=4))
    return written


def _dataset_scores(dataset: str, record: dict) -> DatasetScores:
    scores = map_in(record, NAMES)
    scores.dataset = dataset
    n = record.get("num_pred")
    scores.n_queries = int(n) if isinstance(n, int | float) else None
    return scores


def read(path: Path) -> RunScores:
    """A score file, a folder of them, or a leaderboard report."""
    if path.is_dir():
        files = sorted(path.glob(f"*{SUFFIX}"))
        if not files:
            raise ValueError(f"{path}: no *{SUFFIX} files; point at VLM2Vec's encode_output_path folder")
        return RunScores(path.name, path.name,
                         [_dataset_scores(f.name[: -len(SUFFIX)], json.loads(f.read_text())) for f in files])
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "metrics" in data and "metadata" in data:
        meta = data["metadata"]
        datasets = [_dataset_scores(name, record) for by_modality in data["metrics"].values()
                    for name, record in by_modality.items() if isinstance(record, dict)]
        name = meta.get("model_name", path.stem)
        return RunScores(meta.get("run_id", name), name, datasets,
                         {k: v for k, v in meta.items() if k not in ("model_name", "run_id")})
    if not path.name.endswith(SUFFIX):
        raise ValueError(f"{path}: not a VLM2Vec score file (<Dataset>{SUFFIX}) nor a leaderboard report")
    dataset = path.name[: -len(SUFFIX)]
    return RunScores(dataset, dataset, [_dataset_scores(dataset, data)])
