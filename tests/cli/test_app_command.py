"""`vlmembed app`: builds a missing store from the paper's numbers, then serves; bad input is a message."""

from __future__ import annotations

import pytest

import app
from pipeline.cli import main
from storage import StoreReader


@pytest.fixture
def launched(monkeypatch):
    calls = []
    monkeypatch.setattr(app, "launch", lambda path, host, port, **settings: calls.append((path, host, port)))
    return calls


class FakeProcess:
    """Stands in for the background `vlmembed demo` process."""

    started: list[FakeProcess] = []

    def __init__(self, command, **kwargs):
        import threading

        # a pid no process can have (above any pid_max), so no real process group is ever signalled
        self.command, self.terminated, self.pid = command, False, 2**31 - 1
        self._stopped = threading.Event()
        FakeProcess.started.append(self)

    def poll(self):
        return None if not self.terminated else -15

    def terminate(self):
        self.terminated = True
        self._stopped.set()

    kill = terminate

    def wait(self):
        self._stopped.wait()
        return -15


def test_missing_store_is_built_from_the_paper_then_served(tmp_path, launched, capsys):
    path = tmp_path / "sub" / "store.duckdb"
    assert main(["app", "--store", str(path), "--port", "7999", "--host", "0.0.0.0", "--no-demo"]) == 0
    assert launched == [(path, "0.0.0.0", 7999)]
    assert StoreReader(path).runs()["source"].eq("paper").sum() == 13
    assert "created it with the paper's numbers" in capsys.readouterr().out


def test_existing_store_is_served_as_it_is(mixed_store_file, launched, capsys):
    before = mixed_store_file.stat().st_mtime_ns
    assert main(["app", "--store", str(mixed_store_file), "--no-demo"]) == 0
    assert launched == [(mixed_store_file, "127.0.0.1", 7860)]
    assert mixed_store_file.stat().st_mtime_ns == before and "created" not in capsys.readouterr().out


def test_default_store_path_comes_from_the_environment(tmp_path, monkeypatch, launched):
    monkeypatch.setenv("VLMEMBED_STORE", str(tmp_path / "env.duckdb"))
    assert main(["app", "--no-demo"]) == 0
    assert launched[0][0] == tmp_path / "env.duckdb" and (tmp_path / "env.duckdb").exists()


def test_demo_is_built_in_a_background_process_stopped_with_the_app(tmp_path, monkeypatch, launched, capsys):
    import pipeline.cli.app as app_command

    FakeProcess.started = []
    monkeypatch.setattr(app_command.subprocess, "Popen", FakeProcess)
    path = tmp_path / "store.duckdb"
    assert main(["app", "--store", str(path)]) == 0
    [process] = FakeProcess.started
    assert process.command[1:] == ["-m", "pipeline.cli", "demo", "--store", str(path), "--no-progress"]
    assert process.terminated, "the demo process must not outlive the dashboard"
    assert "demo runs in the background" in capsys.readouterr().out
    assert main(["app", "--store", str(path), "--no-demo"]) == 0
    assert len(FakeProcess.started) == 1


@pytest.mark.parametrize("port", ["0", "70000"])
def test_bad_port_is_a_message(tmp_path, launched, capsys, port):
    assert main(["app", "--store", str(tmp_path / "s.duckdb"), "--port", port, "--no-demo"]) == 2
    assert "--port must be between" in capsys.readouterr().err and not launched


def test_port_in_use_is_a_message(tmp_path, monkeypatch, capsys):
    def busy(path, host, port, **settings):
        raise OSError(f"Cannot find empty port in range: {port}-{port}")

    monkeypatch.setattr(app, "launch", busy)
    assert main(["app", "--store", str(tmp_path / "s.duckdb"), "--port", "7861", "--no-demo"]) == 2
    assert "pick another with --port" in capsys.readouterr().err


def test_sigterm_stops_the_background_demo_too(tmp_path, monkeypatch):
    import os
    import signal

    import pipeline.cli.app as app_command

    FakeProcess.started = []
    monkeypatch.setattr(app_command.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(app, "launch", lambda path, host, port, **settings: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        main(["app", "--store", str(tmp_path / "store.duckdb")])
    assert stopped.value.code == 128 + signal.SIGTERM
    assert FakeProcess.started[0].terminated
    assert signal.getsignal(signal.SIGTERM) is before, "the handler is only installed while serving"
