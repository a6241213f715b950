"""The shape of the code: imports point down the layers, no cycles, a light start-up path,
and family knowledge in the family table only."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core import catalog, families
from tests.e2e_support import REPO

PACKAGE = REPO / "reconciler"

# Which layers each layer may import (its own included). Peers do not import each other:
# configuration and ThingSpace access are independent; the simulator is an oracle and
# shares nothing with the product.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "config": {"core", "config"},
    "thingspace": {"core", "thingspace"},
    # The listener check: configuration values and positions, never ThingSpace.
    "listeners": {"core", "config", "listeners"},
    "engine": {"core", "thingspace", "engine"},
    "render": {"core", "engine", "listeners", "render"},
    "cli": {"core", "config", "thingspace", "engine", "listeners", "render", "cli", "simulator"},
    "simulator": {"simulator"},
}
TOP = {"reconciler", "reconciler.__main__"}  # __version__ and the entry point


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every reconciler module ``name`` imports, wherever the import statement is (inside
    functions and under ``if TYPE_CHECKING:`` too)."""
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from reconciler.core import catalog" imports the module reconciler.core.catalog
            targets = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t.split(".")[0] == "reconciler")


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and module not in TOP else None


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        assert module in TOP or _layer(module) in ALLOWED, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    layer = _layer(module)
    for target in GRAPH[module]:
        assert target in MODULES, f"{module} imports {target}, which does not exist"
        if target in TOP:
            assert layer != "simulator", f"{module} imports {target}"
            continue
        assert _layer(target) in ALLOWED.get(layer or "cli", set()), f"{module} -> {target}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, set())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target, [*path, target])
                if found:
                    return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    assert _find_cycle(GRAPH) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_the_graph_check_can_fail() -> None:
    """The walker sees imports inside functions and under TYPE_CHECKING (a cycle hidden in
    either would otherwise pass)."""
    assert "reconciler.cli.simulated" in GRAPH["reconciler.cli.connection"]  # in a function
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import reconciler.cli\n"
    probe = REPO / "reconciler" / "core" / "_probe_for_test.py"
    probe.write_text(source, "utf-8")
    try:
        assert set(_imports("reconciler.core._probe_for_test", probe)) == {"reconciler.cli"}
    finally:
        probe.unlink()


_STARTUP_PROBE = """
import io, json, sys
from reconciler.cli import main
out = io.StringIO()
code = main(sys.argv[1:], env={}, stdout=out, stderr=out)
heavy = ["requests", "deepdiff", "urllib3", "reconciler.simulator", "reconciler.thingspace.client",
         "jsonschema",
         "reconciler.engine.planner"]
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["validate", "-c", str(REPO / "examples" / "callbacks.yaml")], ["schema"]],
)
def test_light_commands_import_no_http_stack_diff_engine_or_simulator(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _STARTUP_PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}, result.stderr


def _family_words() -> set[str]:
    names = {spec.name for spec in families.all_families()}
    return names | set(catalog.services())


def _family_references(path: Path) -> list[str]:
    """Literals equal to a family or service name, and uses of a named table entry."""
    words = _family_words()
    entries = {"M2M", "FOTA"}
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in entries:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in entries:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and any(a.name in entries for a in node.names):
            found.append(f"line {node.lineno}: imports a family entry")
    return found


@pytest.mark.parametrize(
    "module",
    sorted(
        m
        for m in MODULES
        if m != "reconciler.core.families" and not m.startswith("reconciler.simulator")
    ),
)
def test_only_the_family_table_names_a_family(module: str) -> None:
    assert _family_references(MODULES[module]) == []


def test_family_reference_check_can_fail(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from reconciler.core.families import M2M\n"
        "def f(family, service):\n"
        "    return family.name == 'fota' or service == 'Fota' or family is M2M\n",
        "utf-8",
    )
    assert len(_family_references(probe)) == 4
