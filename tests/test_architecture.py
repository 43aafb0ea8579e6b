"""The package layout holds: no import cycle (deferred imports included) and every module
imports on its own, in a fresh process, in dependency order."""

from __future__ import annotations

import ast
import importlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "pipeline", "app", "vlmembed")


def module_files() -> dict[str, Path]:
    """Every project module by dotted name (a package by its own name, for its __init__)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports anywhere in its file: at the top, in a function or
    under TYPE_CHECKING alike, so a deferred import cannot hide a cycle."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from a.b import c` imports the module a.b.c when there is one, else names of a.b
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found.update(submodules or {target})
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def dependency_order(graph: dict[str, set[str]]) -> list[str]:
    """Modules with every module they import before them."""
    order: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        done.add(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        order.append(node)

    for node in sorted(graph):
        visit(node)
    return order


def test_the_cycle_finder_finds_a_cycle_through_a_deferred_import(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    pkg = tmp_path / "x.py"
    pkg.write_text("def f():\n    from storage import writer\n")
    assert imported_modules("x", pkg, {"storage", "storage.writer"}) == {"storage.writer"}


def test_no_import_cycle_between_project_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (break each by moving the shared part down a layer):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_storage_imports_nothing_of_pipeline_or_app():
    graph = import_graph()
    leaks = {m: sorted(d for d in deps if d.split(".")[0] != "storage")
             for m, deps in graph.items() if m.split(".")[0] == "storage"}
    assert not {m: d for m, d in leaks.items() if d}


def test_pipeline_data_sits_below_pipeline_models():
    graph = import_graph()
    upward = {m: sorted(d for d in deps if d.startswith("pipeline.models"))
              for m, deps in graph.items() if m.startswith("pipeline.data")}
    assert not {m: d for m, d in upward.items() if d}


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_process_in_dependency_order():
    """Each project module is imported by a forked child of a process that holds only the
    third-party libraries, so no module works merely because another was imported first."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    graph = import_graph()
    for name in ("torch", "transformers", "gradio", "duckdb", "pandas", "PIL", "numpy", "plotly"):
        importlib.import_module(name)  # loaded once in the parent: children start with them
    failures = {}
    for name in dependency_order(graph):
        if name.endswith("__main__"):  # runs the CLI on import; `pipeline.cli` covers its code
            continue
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: forget every project module, then import just this one
            os.close(read)
            for loaded in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
                os._exit(0)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                os.write(write, f"{type(exc).__name__}: {exc}".encode()[:2000])
                os._exit(1)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failures[name] = message or f"exit status {status}"
    assert not failures, failures
