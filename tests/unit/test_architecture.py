"""The package's shape, as issue 12 set it: small modules, small functions, layers without cycles.

Read from the source with :mod:`ast`, so an import inside a function or under ``TYPE_CHECKING``
counts like any other: a cycle that only type checkers see is still a cycle for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jupyterhub_moss

pytestmark = pytest.mark.unit

PACKAGE = Path(jupyterhub_moss.__file__).parent
ROOT = "jupyterhub_moss"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: The modules that know JupyterHub (its classes, handlers, traits or the running hub).
#: Modules any layer may import: they import nothing of the package themselves.
LEAF_UTILITIES = {f"{ROOT}.log_safe", f"{ROOT}.waiting"}
HUB_FACING = ("spawner", "spawn_page_hooks", "slurm_access", "lifecycle", "handlers", "hub_config")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imported_modules(name: str) -> set[str]:
    """The package's modules that module ``name`` imports, wherever the import statement is."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(ROOT)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if not base.startswith(ROOT):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imported_modules(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    """One import cycle of the package (as a path that ends where it starts), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if target == ROOT:
                continue  # the top package imports its public names; nothing imports it back
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[name] = "done"
        return None

    for name in sorted(GRAPH):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_the_import_graph_reads_relative_imports():
    # a check of the checker: edges it must see, including a function-level import
    assert "jupyterhub_moss.form" in GRAPH["jupyterhub_moss.handlers.fragments"]
    assert "jupyterhub_moss.slurm.commands" in GRAPH["jupyterhub_moss.slurm.view"]
    assert "jupyterhub_moss.spawner" in GRAPH["jupyterhub_moss.hub_config"]


def test_no_import_cycle_in_the_package():
    assert find_cycle() is None, " → ".join(find_cycle() or [])


def test_the_leaf_utilities_import_nothing_of_the_package():
    for name in LEAF_UTILITIES:
        assert not GRAPH[name], f"{name} imports {sorted(GRAPH[name])}"


def test_the_slurm_layer_imports_only_itself_and_the_leaf_utilities():
    for name, targets in GRAPH.items():
        if name.startswith(f"{ROOT}.slurm."):
            outside = {
                t for t in targets if not t.startswith(f"{ROOT}.slurm") and t not in LEAF_UTILITIES
            }
            assert not outside, f"{name} imports {sorted(outside)}"


def asyncio_wait_for_calls(source: str) -> list[int]:
    """The lines of ``source`` that call ``asyncio.wait_for``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "wait_for"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "asyncio"
    ]


def test_the_checker_of_wait_for_calls_finds_them():
    # a check of the checker: a call is found, a mention in text or another wait_for is not
    source = (
        'import asyncio\n"asyncio.wait_for"\nasync def f(x):\n    await asyncio.wait_for(x, 1)\n'
    )
    assert asyncio_wait_for_calls(source) == [4]
    assert asyncio_wait_for_calls("async def f(o):\n    await o.wait_for(1)\n") == []


def test_no_module_waits_with_asyncio_wait_for():
    """Before Python 3.12 it can drop a cancellation, and a spawn that drops JupyterHub's
    cancel makes the user's stop a 500 (see :mod:`jupyterhub_moss.waiting`)."""
    found = {
        name: lines
        for name in MODULES
        if (lines := asyncio_wait_for_calls(MODULES[name].read_text()))
    }
    assert not found, f"use waiting.wait_at_most instead: {found}"


def test_the_form_and_the_plain_modules_do_not_import_the_hub_facing_ones():
    plain = [n for n in MODULES if n != ROOT and n.split(".")[1] not in HUB_FACING]
    assert f"{ROOT}.form.build" in plain  # the form is plain functions
    for name in plain:
        facing = {t for t in GRAPH[name] - {ROOT} if t.split(".")[1] in HUB_FACING}
        assert not facing, f"{name} imports {sorted(facing)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[name]}: {lines} lines"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_functions_stay_small(name):
    tree = ast.parse(MODULES[name].read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{MODULES[name]}: {long}"
