"""The command line's manners: one-line errors with exit 2, help without repeats, `sql --file`
and stdin, `\\n` CSV, readable search hits, quiet libraries."""

from __future__ import annotations

import argparse
import io
import logging

import pytest

from pipeline.cli import HelpFormatter, build_parser, main
from pipeline.cli.search import hit_label
from pipeline.search.engine import Hit


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_names_its_default_once() -> None:
    for name, parser in _subparsers().items():
        formatter = HelpFormatter(prog=name)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"vlmembed {name} {action.option_strings or action.dest}: no help text"
            rendered = formatter._get_help_string(action)
            assert rendered.count("(default:") <= 1
            if "default" in action.help.lower():  # the text names it: argparse must not add it again
                assert rendered == action.help, f"vlmembed {name} {action.option_strings}: default twice: {rendered!r}"
    run_help = _subparsers()["train"].format_help()
    assert "(default: None)" not in run_help and "(default: False)" not in run_help


@pytest.mark.parametrize("argv, needle", [
    (["run", "/no/such/experiment.toml"], "No such file"),
    (["eval", "--family", "lavida", "--data", "/no/such/folder"], "no such data folder"),
])
def test_a_missing_file_or_folder_is_one_line_and_exit_2(argv, needle, capsys, tmp_path) -> None:
    assert main([*argv, "--store", str(tmp_path / "s.duckdb")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_invalid_toml_is_one_line_and_exit_2(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[models]\n')
    assert main(["run", str(bad), "--store", str(tmp_path / "s.duckdb")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not valid TOML" in err and len(err.splitlines()) == 1


def test_sql_reads_a_file_or_stdin_and_writes_plain_newlines(paper_store, tmp_path, capsys, monkeypatch) -> None:
    query = tmp_path / "q.sql"
    query.write_text("SELECT model, count(*) AS n FROM runs GROUP BY model ORDER BY model")
    assert main(["sql", "--store", str(paper_store), "--csv", "--file", str(query)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model,n\n") and "\r" not in out and len(out.splitlines()) == 5  # header + 4 models
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 42 AS answer"))
    assert main(["sql", "--store", str(paper_store), "--csv", "-"]) == 0
    assert capsys.readouterr().out == "answer\n42\n"
    assert main(["sql", "--store", str(paper_store), "--file", str(tmp_path / "missing.sql")]) == 2
    assert main(["sql", "--store", str(paper_store)]) == 2  # no query at all
    assert "either on the command line or with --file" in capsys.readouterr().err


def test_search_hits_show_text_or_image_file() -> None:
    assert hit_label(Hit(1, "i1", 0.5, "text", "a red square")) == "a red square"
    assert hit_label(Hit(1, "i2", 0.5, "image", None, image_path="images/eval3.png")) == "[image] images/eval3.png"
    assert hit_label(Hit(1, "i3", 0.5, "image", None)) == "[image]"


def test_library_chatter_is_silenced_unless_verbose(paper_store, capsys) -> None:
    assert main(["sql", "--store", str(paper_store), "SELECT 1"]) == 0
    assert logging.getLogger("transformers").getEffectiveLevel() == logging.ERROR
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers.configuration_utils").warning("You are using a model of type x")
    assert "You are using a model of type" not in capsys.readouterr().err
    assert main(["--verbose", "sql", "--store", str(paper_store), "SELECT 1"]) == 0
    assert logging.getLogger("transformers").getEffectiveLevel() == logging.DEBUG
    logging.getLogger("transformers").setLevel(logging.WARNING)  # leave the process as other tests expect


def test_a_query_longer_than_a_shell_argument_runs_from_a_file(paper_store, tmp_path, capsys) -> None:
    big = tmp_path / "big.sql"
    values = ", ".join(f"({i})" for i in range(30_000))  # about 250 KiB: over Linux's 128 KiB per argument
    big.write_text(f"SELECT count(*) AS n FROM (VALUES {values}) t(x)")
    assert big.stat().st_size > 128 * 1024
    assert main(["sql", "--store", str(paper_store), "--csv", "--file", str(big)]) == 0
    assert capsys.readouterr().out == "n\n30000\n"
