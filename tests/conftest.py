"""Shared fixtures: every test gets its own VLMEMBED_HOME, so nothing touches ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("vlmembed_home")
    monkeypatch.setenv("VLMEMBED_HOME", str(home))
    monkeypatch.delenv("VLMEMBED_STORE", raising=False)
    return home


@pytest.fixture
def paper_store(tmp_path):
    """A store holding the paper's numbers."""
    from storage import StoreWriter
    from storage.paper_import import import_paper

    path = tmp_path / "paper.duckdb"
    with StoreWriter(path) as writer:
        import_paper(writer)
    return path


@pytest.fixture(scope="session")
def embedded_store(tmp_path_factory):
    """Two tiny trained models with stored embeddings, projections and alignment metrics (read only)."""
    from tests.search.embedded_store import build_embedded_store

    return build_embedded_store(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(scope="session")
def mixed_store_file(tmp_path_factory):
    """A store with paper, demo and pipeline runs (shared; tests must not write to it)."""
    from tests.app.helpers import build_mixed_store

    return build_mixed_store(tmp_path_factory.mktemp("mixed") / "store.duckdb")
