"""Fixtures for the dashboard's tests: mixed-source stores and the app served in-process."""

from __future__ import annotations

import pytest

from app.store import StoreCache
from tests.app.helpers import build_mixed_store


@pytest.fixture(scope="session")
def mixed_store_file(tmp_path_factory):
    """A store with paper, demo and pipeline runs (shared; tests must not write to it)."""
    return build_mixed_store(tmp_path_factory.mktemp("mixed") / "store.duckdb")


@pytest.fixture(scope="session")
def snapshot(mixed_store_file):
    return StoreCache(mixed_store_file).snapshot()
