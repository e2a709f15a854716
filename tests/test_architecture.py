"""The floors hold (docs/architecture.md): the import contracts pass, no module imports itself
back through others (lazy imports counted), the bottom floor imports nothing of the project,
and the names it keeps match what they name."""

import subprocess
import sys

import grimp
from conftest import ROOT

from pipeline import executors, names

PACKAGES = ("pipeline", "analysis", "services")


def _cycles(graph) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan), i.e. import circles."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in graph.modules:
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            ring = []
            while True:
                top = stack.pop()
                on.discard(top)
                ring.append(top)
                if top == module:
                    break
            if len(ring) > 1:
                found.append(sorted(ring))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []


def test_the_bottom_floor_imports_nothing_of_the_project():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert graph.find_modules_directly_imported_by("pipeline.names") == set()


def test_the_import_contracts_hold():
    """The same check `make lint` runs; an upward import fails it (docs/architecture.md)."""
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lint-imports"), "--no-cache"]
        if (ROOT / ".venv" / "bin" / "lint-imports").exists()
        else [sys.executable, "-m", "importlinter.cli", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_engine_names_are_the_executor_modules():
    assert names.ENGINES == executors.names()


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A copy of the tree with one upward import (config reaching into the sweep) fails."""
    import shutil

    copy = tmp_path / "tree"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "docs", "*.db",
                                                              "mlruns", "reports"))  # fmt: skip
    config = copy / "pipeline" / "config.py"
    config.write_text(config.read_text() + "\n\ndef _upward():\n    from pipeline import sweep\n")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=copy, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "pipeline.config -> pipeline.sweep" in done.stdout
