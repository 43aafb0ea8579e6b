"""Every store problem, through every command that opens a store: one line that says what to do, the
same line in the dashboard as on the command line, and the dashboard serves anyway.

`app`, `sql` and `search` read; `run` and `import-paper` write. A read-only folder needs a real
read-only mount (root ignores file modes), made in a private mount namespace with `unshare -m`;
those cases are skipped where that is not allowed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

import app
from app.store import StoreCache
from pipeline.cli import main

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "experiments" / "smoke.toml"
OK = None  # the command works
READ_ONLY = "read-only: choose --store elsewhere"

# case -> what each command says (a fragment of its one-line message), or OK
EXPECTED: dict[str, dict[str, str | None]] = {
    "truncated": dict.fromkeys(["app", "sql", "search", "run", "import-paper"], "the file is truncated"),
    "corrupt": dict.fromkeys(["app", "sql", "search", "run", "import-paper"], "not a readable vlmembed store"),
    "empty": dict.fromkeys(["app", "sql", "search", "run", "import-paper"], "the file is empty"),
    "other-format": dict.fromkeys(["app", "sql", "search", "run", "import-paper"], "not a readable vlmembed store"),
    "future-schema": dict.fromkeys(["app", "sql", "search", "run", "import-paper"], "newer than this vlmembed"),
    "old-schema": {"app": "vlmembed migrate", "sql": "vlmembed migrate", "search": "vlmembed migrate",
                   "run": "no migration from version 0", "import-paper": "no migration from version 0"},
    "path-under-file": dict.fromkeys(["app", "sql", "search", "run", "import-paper"],
                                     "is a file, not a folder: choose --store elsewhere"),
    # `app` creates a missing store (and its folder) from the paper's numbers, like the writers
    "missing-dir": {"app": OK, "sql": "no results store at", "search": "no results store at", "run": OK,
                    "import-paper": OK},
    "read-only-dir": {"app": OK, "sql": OK, "search": OK, "run": READ_ONLY, "import-paper": READ_ONLY},
    "read-only-dir-no-store": {"app": READ_ONLY, "sql": "no results store at", "search": "no results store at",
                               "run": READ_ONLY, "import-paper": READ_ONLY},
}
ARGS = {
    "app": ["app", "--no-demo"],
    "sql": ["sql", "SELECT count(*) AS n FROM runs"],
    "search": ["search", "--text", "red", "--k", "1"],
    "run": ["run", str(SMOKE)],
    "import-paper": ["import-paper"],
}


def _set_version(path: Path, version: str) -> None:
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [version])
    con.close()


def make_case(case: str, folder: Path, good: Path) -> Path:
    """The store path of `case` under `folder` (made from a copy of the good store `good`)."""
    path = folder / "store.duckdb"
    folder.mkdir(parents=True, exist_ok=True)
    if case in ("truncated", "future-schema", "old-schema", "read-only-dir"):
        shutil.copyfile(good, path)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "corrupt":
        path.write_bytes(b"DUCK" + bytes(range(256)) * 16)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "other-format":
        sqlite3.connect(path).execute("CREATE TABLE runs (x INT)").connection.commit()
    elif case == "future-schema":
        _set_version(path, "99")
    elif case == "old-schema":
        _set_version(path, "0")
    elif case == "path-under-file":
        (folder / "notes.txt").write_text("a file, not a folder\n")
        path = folder / "notes.txt" / "store.duckdb"
    elif case == "missing-dir":
        path = folder / "not" / "yet" / "store.duckdb"
    return path


@pytest.fixture
def good_store(request, paper_store) -> Path:
    """What a case is made from: `search` needs stored embeddings (a session fixture, built only when a
    search case runs, and before `in_process` stands a fake in for the runner that builds it)."""
    if request.node.callspec.params["command"] == "search":
        return request.getfixturevalue("embedded_store").path
    return paper_store


class FakeRunner:
    """`vlmembed run` past its store check: the grid itself is tested elsewhere."""

    def __init__(self, *args, **kwargs):
        pass

    def run(self, only_models=None):
        return []


@pytest.fixture
def in_process(monkeypatch):
    """Run a command in this process; `app` records its dashboard's store message instead of serving."""
    import pipeline.runner

    shown: list[str | None] = []
    monkeypatch.setattr(app, "launch", lambda path, host, port, **kw: shown.append(StoreCache(path).snapshot().error))
    monkeypatch.setattr(pipeline.runner, "ExperimentRunner", FakeRunner)
    return shown


def _check(command: str, expected: str | None, code: int, err: str, shown: list) -> None:
    problem_lines = [line for line in err.splitlines() if line.startswith("vlmembed ")]
    assert "Traceback" not in err, err
    if expected is OK:
        assert code == 0 and not problem_lines, err
        if command == "app":
            assert shown == [None], shown  # the dashboard reads the store
        return
    [line] = problem_lines  # one line, naming what to do
    assert expected in line, line
    if command == "app":
        assert code == 0, "the app serves anyway"
        assert shown and shown[0], "the dashboard shows the problem too"
    else:
        assert code == 2


@pytest.mark.parametrize("command", list(ARGS))
@pytest.mark.parametrize("case", [c for c in EXPECTED if not c.startswith("read-only")])
def test_store_problem_is_one_line_everywhere(case, command, tmp_path, good_store, in_process, capsys):
    path = make_case(case, tmp_path / "where", good_store)
    code = main([ARGS[command][0], "--store", str(path), *ARGS[command][1:]])
    err = capsys.readouterr().err
    _check(command, EXPECTED[case][command], code, err, in_process)


@pytest.mark.parametrize("case", ["truncated", "corrupt", "empty", "other-format", "future-schema", "old-schema",
                                  "path-under-file"])
def test_the_dashboard_and_the_cli_say_the_same(case, tmp_path, paper_store, in_process, capsys):
    path = make_case(case, tmp_path / "where", paper_store)
    assert main(["sql", "--store", str(path), "SELECT 1"]) == 2
    cli = capsys.readouterr().err.strip().removeprefix("vlmembed sql: ")
    assert main(["app", "--store", str(path), "--no-demo"]) == 0
    assert in_process == [cli]


# -- read-only folders: a private read-only bind mount ---------------------------------------------------
RUNNER = textwrap.dedent("""
    import sys
    import app
    import pipeline.runner
    from app.store import StoreCache
    from pipeline.cli import main

    class FakeRunner:
        def __init__(self, *a, **k): pass
        def run(self, only_models=None): return []

    def launch(path, host, port, **kw):
        print("SHOWN:", StoreCache(path).snapshot().error)

    app.launch = launch
    pipeline.runner.ExperimentRunner = FakeRunner
    sys.exit(main(sys.argv[1:]))
""")


def _read_only_run(folder: Path, argv: list[str]) -> subprocess.CompletedProcess:
    script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder} && "
              'code="$1"; shift; exec "$0" -c "$code" "$@"')
    return subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable, RUNNER, *argv], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def _can_mount_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    script = f"mount --bind {probe} {probe} && mount -o remount,ro,bind {probe} {probe} && touch {probe}/x"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    return shutil.which("unshare") is not None and "Read-only file system" in done.stderr


@pytest.mark.parametrize("command", list(ARGS))
@pytest.mark.parametrize("case", ["read-only-dir", "read-only-dir-no-store"])
def test_read_only_folder_readers_work_writers_say_so(case, command, tmp_path, good_store):
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no private read-only mount here (needs unshare -m)")
    folder = tmp_path / "shelf"
    path = make_case(case, folder, good_store)
    done = _read_only_run(folder, [ARGS[command][0], "--store", str(path), *ARGS[command][1:]])
    shown = [line.removeprefix("SHOWN: ") for line in done.stdout.splitlines() if line.startswith("SHOWN: ")]
    _check(command, EXPECTED[case][command], done.returncode, done.stderr,
           [None if s == "None" else s for s in shown])
    assert sorted(p.name for p in folder.iterdir()) == ([] if case.endswith("no-store") else ["store.duckdb"])
