"""Fixtures for the dashboard's tests: mixed-source stores and the app served in-process."""

from __future__ import annotations

import pytest

from app.store import StoreCache


@pytest.fixture(scope="session")
def snapshot(mixed_store_file):
    return StoreCache(mixed_store_file).snapshot()
