"""The package's layers: imports run only downward, never in a circle, and the pure layers touch no I/O.

The layers, lowest first, are `LAYERS` below; docs/architecture.md draws them. A module may
import its own layer and any layer under it. Every import counts, including those inside
functions and under `TYPE_CHECKING`: a lazy import hides a circle, it does not remove it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = (
    "ledger.errors",
    "ledger.core",
    "ledger.records",
    "ledger.storage",
    "ledger.rules",
    "ledger.compliance",
    "ledger.verify",
    "ledger.query",
    "ledger.append",
    "ledger.service",
    "ledger.witness",
    "cli",
)
PURE_LAYERS = ("ledger.core", "ledger.records", "ledger.rules", "ledger.compliance", "ledger.verify")
FORBIDDEN = ("asyncio", "asyncpg", "litestar", "typer", "granian", "httpx")


def layer_of(module: str) -> int:
    """The rank of `module`'s layer in LAYERS; a module outside every layer is a test failure."""
    for rank, layer in enumerate(LAYERS):
        if module == layer or module.startswith(f"{layer}."):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS and docs/architecture.md")


def project_modules() -> dict[str, set[str]]:
    """Every module of ledger/ and cli/ with the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted([*ROOT.glob("ledger/**/*.py"), *ROOT.glob("cli/**/*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = set(_imports(ast.parse(path.read_text()), path.name == "__init__.py", name))
    return {name: {_resolve(dep, graph) for dep in deps} - {name} for name, deps in graph.items()}


def _imports(tree: ast.Module, is_package: bool, name: str) -> Iterable[str]:
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] in {"ledger", "cli"})
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] in {"ledger", "cli"}:
                yield from (f"{base}.{alias.name}" for alias in node.names)


def _resolve(dependency: str, graph: Mapping[str, object]) -> str:
    """`from a.b import c` names module a.b.c when that exists, else the module a.b."""
    while dependency not in graph and "." in dependency:
        dependency = dependency.rpartition(".")[0]
    return dependency


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import of a higher layer by a lower one, as 'importer -> imported'."""
    return sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items()
        for dep in deps
        if layer_of(dep) > layer_of(module)
    )


def circle(graph: Mapping[str, set[str]]) -> list[str]:
    """One import circle in `graph` (its modules, the first repeated at the end), or [] if none."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return []


def test_every_module_belongs_to_a_layer_and_imports_only_downward() -> None:
    graph = project_modules()
    for module in graph.keys() - {"ledger"}:  # the root package only holds the layers
        layer_of(module)
    assert upward_imports(graph) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circle(project_modules()) == []


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    # The two checks above pass only if they can fail: a planted violation of each is caught.
    planted = {
        "ledger.core.hashing": {"ledger.rules.registry"},
        "ledger.rules.registry": {"ledger.core.hashing"},
    }
    assert upward_imports(planted) == ["ledger.core.hashing -> ledger.rules.registry"]
    assert sorted(set(circle(planted))) == ["ledger.core.hashing", "ledger.rules.registry"]
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer_of("ledger.somewhere_new")


PROBE = """
import importlib, pkgutil, sys
for name in %r:
    package = importlib.import_module(name)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{name}.{module.name}")
print(",".join(sorted(name for name in %r if name in sys.modules)))
"""


def test_the_pure_layers_import_no_io_framework() -> None:
    # A fresh interpreter: pytest itself has imported asyncio and friends in this one.
    done = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", PROBE % (PURE_LAYERS, FORBIDDEN)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
