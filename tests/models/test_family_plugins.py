"""Third-party families register through the `vlmembed.families` entry-point group."""

from __future__ import annotations

import shutil
import sys

import pytest

from pipeline.models import family_names, get_family
from pipeline.models import registry as registry_module
from tests.models.test_registry import DUMMY_DIR, check_family_contract

MODULE = "vlmembed_dummy_plugin"


def _install(root, entry: str) -> None:
    """A distribution as pip would leave it: a module plus a dist-info naming the entry point."""
    shutil.copy(DUMMY_DIR / "dummy.py", root / f"{MODULE}.py")
    info = root / "vlmembed_dummy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vlmembed-dummy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry_module.ENTRY_POINT_GROUP}]\ndummy = {entry}\n")


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry_module, "_FAMILIES", dict(registry_module._FAMILIES))
    monkeypatch.setattr(registry_module, "_DISCOVERED", False)
    yield
    sys.modules.pop(MODULE, None)


def test_an_installed_distribution_adds_its_family(fresh_registry, tmp_path, monkeypatch) -> None:
    _install(tmp_path, MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "dummy" in family_names()
    cls = get_family("dummy")
    assert cls.__module__ == MODULE
    check_family_contract(cls, keys_dir=DUMMY_DIR)


def test_a_broken_plugin_is_logged_and_the_rest_still_load(fresh_registry, tmp_path, monkeypatch, caplog) -> None:
    _install(tmp_path, "no_such_module_anywhere")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = family_names()
    assert "dummy" not in names and "llava_next" in names
    assert "no_such_module_anywhere" in caplog.text and "failed to load" in caplog.text
