"""The demo build's status file: what the dashboard says while the demo builds."""

from __future__ import annotations

import time

from pipeline.demo.status import BENCHMARK_SHARE, DemoStatus, building_status, read_status, status_path

FAMILIES = ["LLaVA-NeXT-like", "Qwen2.5-VL-like", "LaViDa-like", "MMaDA-like"]
COSTS = {"LLaVA-NeXT-like": 1.6, "Qwen2.5-VL-like": 1.0, "LaViDa-like": 1.1, "MMaDA-like": 2.3}


def _status(elapsed: float, **kw) -> DemoStatus:
    return DemoStatus(families=FAMILIES, costs=COSTS, expected_s=600, started_at=time.time() - elapsed, **kw)


def test_the_line_names_families_done_of_total_the_stage_and_an_estimate():
    status = _status(100, first_stage=["Qwen2.5-VL-like", "LaViDa-like"], done=["Qwen2.5-VL-like"],
                     running=["MMaDA-like: pretraining and zero-shot", "LaViDa-like: fine-tuning"])
    line = status.line()
    assert "1/4 families done" in line and "2/4 with zero-shot results" in line
    assert "MMaDA-like: pretraining and zero-shot; LaViDa-like: fine-tuning" in line
    assert "left (estimate)" in line


def test_the_estimate_follows_the_builds_own_pace_once_work_has_landed():
    fresh = _status(10)
    assert 585 <= fresh.seconds_left() <= 590  # on the benchmark, on time: the preset's measured wall time
    slow_benchmark = _status(84, benchmark_s=84)  # twice the benchmark's expected 42 s: twice as slow overall
    assert abs(slow_benchmark.pace() - 84 / (BENCHMARK_SHARE * 600)) < 0.01
    assert abs(slow_benchmark.seconds_left() - (slow_benchmark.pace() * 600 - 84)) < 1
    half = _status(300, benchmark_s=40, done=["LLaVA-NeXT-like", "MMaDA-like"])  # 3.9 of 6.0 cost units
    work = BENCHMARK_SHARE + (1 - BENCHMARK_SHARE) * 3.9 / 6.0
    assert abs(half.seconds_left() - 300 * (1 - work) / work) < 2
    late = _status(900)  # past the preset's time, still on the benchmark: never a negative or zero estimate
    assert late.seconds_left() >= 30 and late.seconds_to_first_stage() >= 15
    assert _status(5, done=FAMILIES).seconds_left() == 0


def test_coming_says_what_appears_and_when_and_sooner_for_zero_shot_than_trained_runs():
    status = _status(5, running=["Qwen2.5-VL-like: pretraining and zero-shot"])
    early, late = status.seconds_to_first_stage(), status.seconds_to_first_family()
    assert 15 <= early < late
    text = status.coming("the maps")
    assert text.startswith("The maps will appear here in about")
    assert "Demo building in the background" in text
    assert "0/4 families done" in text
    landed = _status(60, first_stage=["Qwen2.5-VL-like"])
    assert "any moment now" in landed.coming("the maps")  # the first stage is in: only a refresh away


def test_the_file_round_trips_and_a_finished_failed_or_stale_build_is_not_building(tmp_path):
    store = tmp_path / "store.duckdb"
    assert read_status(store) is None and building_status(store) is None
    status = _status(5, running=["x"])
    status.write(store)
    assert status_path(store).name == "store.duckdb.demo-status.json"
    assert read_status(store) == status and building_status(store) is not None
    status.finished = True
    status.write(store)
    assert building_status(store) is None and "Demo built: 0/4" in read_status(store).line()
    status.finished, status.error = False, "1 of 4 families failed (MMaDA-like)"
    status.write(store)
    assert building_status(store) is None and "vlmembed demo` resumes" in read_status(store).line()
    status_path(store).write_text("{not json")
    assert read_status(store) is None  # a torn or foreign file: no status rather than an error
    old = _status(5)
    old.write(store)
    raw = status_path(store).read_text().replace(str(old.updated_at), str(old.updated_at - 3600))
    status_path(store).write_text(raw)
    assert building_status(store) is None  # a build that died without a word an hour ago
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = _status(5, running=["x"], pid=int(gone.stdout))
    killed.write(store)
    assert building_status(store) is None  # its process is gone (stopped with the app, or killed)
