"""`vlmembed stats` and `vlmembed compare` on a store whose answers are known by hand."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from storage import DatasetRecord, ModelRecord, RankRecord, RunRecord, ScoreRecord, StoreReader, StoreWriter
from storage.intervals import read_intervals
from storage.paper_import import import_paper

# 40 queries of one dataset: A alone right on 12, B alone right on 2, both right on 16, both wrong on 10.
# McNemar: b = 12, c = 2, p = 2 * P(X <= 2 | 14, 1/2) = 2 * (1 + 14 + 91) / 2^14.
A_RIGHT = set(range(12)) | set(range(14, 30))
B_RIGHT = set(range(12, 30))
MCNEMAR_P = 2 * (1 + 14 + 91) / 2 ** 14


def _run(run_id: str, right: set[int]) -> RunRecord:
    ranks = [RankRecord("ToyVQA", i, 1 if i in right else 3) for i in range(40)]
    return RunRecord(run_id=run_id, source="demo", model="toy", label="final", train_task="vqa",
                     scores=[ScoreRecord("ToyVQA", "precision@1", 100 * len(right) / 40, 40)], ranks=ranks)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)  # without intervals: as a store made before schema version 3
        writer.upsert_models([ModelRecord("toy", "toy", "diffusion", "tiny")])
        writer.upsert_datasets([DatasetRecord("ToyVQA", "builtin", "vqa", True, n_eval=40)])
        writer.add_run(_run("A", A_RIGHT))
        writer.add_run(_run("B", B_RIGHT))
    return path


def test_stats_fills_intervals_for_every_run(store, capsys):
    assert main(["stats", "--store", str(store), "--resamples", "200"]) == 0
    assert "stored" in capsys.readouterr().out
    view = read_intervals(StoreReader(store))
    assert set(view["run_id"]) >= {"A", "B", "paper:LaViDa:table1"}
    toy = view.query("run_id == 'A' and dataset == 'ToyVQA' and metric == 'precision@1'").iloc[0]
    assert (toy["value"], toy["method"], toy["n_resamples"]) == (70.0, "bootstrap", 200)
    assert toy["lower"] < 70 < toy["upper"]
    paper = view.query("run_id == 'paper:LaViDa:table1' and dataset == 'VOC2007'").iloc[0]
    assert paper["method"] == "wilson-n" and paper["n_queries"] == 1000
    # a second run is deterministic: same seed, same bounds
    assert main(["stats", "--store", str(store), "--resamples", "200", "--run", "A"]) == 0
    again = read_intervals(StoreReader(store), ["A"]).query("dataset == 'ToyVQA' and metric == 'precision@1'")
    assert (again.iloc[0]["lower"], again.iloc[0]["upper"]) == (toy["lower"], toy["upper"])
    assert main(["stats", "--store", str(store), "--missing"]) == 0
    assert "every run" in capsys.readouterr().out


def test_compare_prints_mcnemar_and_the_paired_interval(store, capsys):
    assert main(["compare", "--store", str(store), "A", "B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["datasets"][0]
    assert (row["a_only"], row["b_only"], row["both_right"], row["both_wrong"]) == (12, 2, 16, 10)
    assert row["p"] == pytest.approx(MCNEMAR_P) and row["p_holm"] == pytest.approx(MCNEMAR_P)
    assert row["diff"] == pytest.approx(25.0) and row["lower"] > 0 and row["significant"]
    assert out["method"].startswith("paired")
    assert main(["compare", "--store", str(store), "A", "B"]) == 0
    assert "1 of 1 dataset differences survive Holm at 0.05: ToyVQA" in capsys.readouterr().out


def test_compare_of_paper_runs_says_it_is_unpaired(store, capsys):
    assert main(["compare", "--store", str(store), "paper:LaViDa:table3", "paper:LLaVA-1.6:table3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"].startswith("unpaired") and len(out["datasets"]) == 12
    # the paper's "LaViDa markedly stronger on CIRR and NIGHTS" (README, Statistics): 53.2 vs 53.6, 67.2 vs 68.4
    for name in ("CIRR", "NIGHTS"):
        row = next(r for r in out["datasets"] if r["dataset"] == name)
        assert row["diff"] < 0 and row["lower"] < 0 < row["upper"] and not row["significant"]
        assert 3.5 < row["upper"] - row["diff"] < 4.5  # "about 4 points either way"


@pytest.mark.parametrize(("args", "message"), [
    (["A", "nope"], "no complete run 'nope'"),
    (["A", "paper:LaViDa:table1"], "share no evaluated queries"),
    (["A", "paper:LaViDa:table2", "--metric", "mrr"], "precision@1 only"),
])
def test_compare_refuses_with_what_to_do(store, capsys, args, message):
    assert main(["compare", "--store", str(store), *args]) == 2
    assert message in capsys.readouterr().err


def test_help_lists_the_new_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])  # a bare % in a command's help breaks argparse's formatting of the whole list
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and all(name in out for name in ("stats", "compare", "baselines"))
    assert "95% intervals" in out
    for name in ("stats", "compare", "baselines"):
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
