"""No runtime import cycle in ``runq``: every module imports on its own, and the imports that
run at import time form no loop.

Two checks, because neither alone is enough:

- Each module is imported alone, in a fresh interpreter (``python -c "import runq.x"``, a few
  at a time). A cycle can raise an ImportError ("partially initialized module") only when the
  import starts at the wrong module, and a test process that has already imported the package
  never starts there. (Importing ``runq.x`` runs ``runq/__init__.py`` first, as a user's
  import does.) ``runq.__main__`` runs the CLI when imported: it is run as ``python -m runq
  --version``. All run in one empty directory that must stay empty: an import writes nothing.
- Many cycles never raise: ``from runq import cli_ops`` at the bottom of ``runq/cli.py``, with
  ``cli_ops`` importing ``runq.cli``, imported fine whichever module came first. So the
  module-level imports (not those inside functions or under ``if TYPE_CHECKING:``) are read
  from the source, and the graph they draw between runq's modules must have no cycle.

The modules are found from the files of the package, so a new module is covered the day it
is added.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import runq

PACKAGE_DIR = Path(runq.__file__).parent
_PARALLEL = 4  # interpreters at a time: each mostly waits on its own imports
_TIMEOUT_S = 120  # per interpreter, generous for a loaded 2-core machine


def _module_files() -> dict[str, Path]:
    """Every module and package of runq, by dotted name, with its ``.py`` file."""
    files = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


MODULE_FILES = _module_files()
MODULES = list(MODULE_FILES)


def _command(module: str) -> list[str]:
    if module == "runq.__main__":  # importing it runs the CLI
        return [sys.executable, "-m", "runq", "--version"]
    return [sys.executable, "-c", f"import {module}"]


def _run(module: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNQ_")}
    env.pop("PYTHONSTARTUP", None)
    return subprocess.run(
        _command(module),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def import_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="runq-imports-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def imported(import_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each module imported alone, in its own interpreter, a few at a time."""
    with ThreadPoolExecutor(_PARALLEL) as pool:
        outcomes = pool.map(lambda module: _run(module, import_dir), MODULES)
        return dict(zip(MODULES, outcomes, strict=True))


def test_modules_are_found() -> None:
    assert "runq" in MODULES
    assert "runq.cli" in MODULES
    assert "runq.controller" in MODULES
    assert any(name.startswith("runq.backends.") for name in MODULES)
    assert any(name.startswith("runq.worker.") for name in MODULES)


# The first of these sets up ``imported`` (every module, a few interpreters at a time): that
# grows with the package and with the machine's load (170 s seen at load 25 on 2 cores), so
# it gets more than the suite's 180 s; each interpreter keeps its own _TIMEOUT_S.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(
    module: str, imported: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    out = imported[module]
    assert out.returncode == 0, f"importing {module} alone failed:\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr


def test_imports_write_nothing(
    import_dir: Path, imported: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    assert len(imported) == len(MODULES)
    assert sorted(p.name for p in import_dir.iterdir()) == []


# ---------------------------------------------------------------------- the static graph
def _is_type_checking(test: ast.expr) -> bool:
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def _import_time_statements(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: not function bodies, not the
    ``if TYPE_CHECKING:`` branch; class bodies, ``try``, ``with`` and other ``if`` do run."""
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                yield from _import_time_statements(stmt.body)
            yield from _import_time_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _import_time_statements(block)
            for handler in stmt.handlers:
                yield from _import_time_statements(handler.body)
        elif isinstance(stmt, ast.With | ast.ClassDef):
            yield from _import_time_statements(stmt.body)
        else:
            yield stmt


def _imported_modules(module: str) -> set[str]:
    """The runq modules that ``module`` imports at import time (``from pkg import name``
    counts as ``pkg.name`` when that is a module, else as ``pkg``)."""
    path = MODULE_FILES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for stmt in _import_time_statements(ast.parse(path.read_text()).body):
        if isinstance(stmt, ast.Import):
            found.update(alias.name for alias in stmt.names if alias.name in MODULE_FILES)
        elif isinstance(stmt, ast.ImportFrom):
            source = stmt.module or ""
            if stmt.level:  # relative: from the package, up level - 1
                base = package.split(".")[: len(package.split(".")) - stmt.level + 1]
                source = ".".join([*base, *([stmt.module] if stmt.module else [])])
            for alias in stmt.names:
                target = f"{source}.{alias.name}"
                if target in MODULE_FILES:
                    found.add(target)
                elif source in MODULE_FILES:
                    found.add(source)
    found.discard(module)
    return found


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph[node]):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_find_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_at_import_time() -> None:
    graph = {module: _imported_modules(module) for module in MODULES}
    assert "runq.controller" in graph["runq"]  # the reader sees imports at all
    cycle = _find_cycle(graph)
    assert cycle is None, "modules that import each other at import time: " + " -> ".join(cycle)
