"""The real `--size small` build, end to end: what the demo trains and evaluates on."""

import time

import pytest

from pipeline.data.builtin import BuildConfig, build_benchmark
from pipeline.data.builtin.build import SIZES
from pipeline.data.builtin.specs import BUILTIN_SPECS
from pipeline.data.mmeb import MMEBReader


@pytest.mark.slow
def test_small_build_has_demo_sizes_and_reads_back(tmp_path):
    start = time.perf_counter()
    result = build_benchmark(BuildConfig(tmp_path / "builtin", size="small", progress=False))
    elapsed = time.perf_counter() - start
    assert [d.name for d in result.datasets] == list(BUILTIN_SPECS)
    assert elapsed < 60, f"a small build took {elapsed:.0f}s; it must stay well under a minute"
    plan = SIZES["small"]
    reader = MMEBReader(tmp_path / "builtin")
    for info in reader.datasets():
        assert info.n_eval == plan.n_eval, info.name
        assert len(reader.eval(info.name, check_images="exists")) == plan.n_eval
        if info.in_domain:
            assert info.n_train == plan.n_train and len(reader.train(info.name)) == plan.n_train
    assert len(reader.train("Captions")) == plan.n_captions
    assert reader.report.n_skipped == 0
