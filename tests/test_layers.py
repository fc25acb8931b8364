"""The import arrows point inward: the command line on top, the protocol core at the bottom.

    conformance.cli                      (and the command modules it drives: runner, plugin, fuzz, …)
        │
        ├── mock_node   conformance.checks   conformance.report
        │        │               │                    │
        └────────┴───────────────┴────────────────────┴──▶ conformance.protocol   (stdlib and crypto only)

Every module under conformance/ and mock_node/ is parsed (not imported, so nothing runs and no import
is hidden by a cache), and every import is counted: at module level, inside a function, under
``if TYPE_CHECKING``, relative or absolute. Importing ``a.b.c`` also runs ``a`` and ``a.b``, so a
package's ``__init__`` is an edge too. A unit reaches another when one of its modules imports a module
of the other, directly or through modules that belong to no unit (``conformance.client``,
``conformance.records`` …): a cycle through a helper module is still a cycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conformance", "mock_node")

CLI, MOCK, CHECKS, REPORT, PROTOCOL = (
    "conformance.cli",
    "mock_node",
    "conformance.checks",
    "conformance.report",
    "conformance.protocol",
)
UNITS = (CLI, MOCK, CHECKS, REPORT, PROTOCOL)
TOP = ("conformance.cli", "conformance.runner", "conformance.plugin")  # what drives the run: nothing below imports it

# What conformance.protocol may import besides the standard library and itself: the crypto backend and
# the base64 codec. Not httpx, not pytest, not another part of the suite.
PROTOCOL_THIRD_PARTY = frozenset({"cryptography", "pybase64"})

# Edges that break a rule below but live in files this change could not touch. Each is exact (module,
# imported module), stays failing-safe (an entry that no longer exists fails the test, so the list only
# shrinks), and is excused from the rules and from the cycle check.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}  # (module, import) -> why it is allowed for now

Graph = dict[str, set[str]]


# --- the graph ----------------------------------------------------------------------------------------


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(module: str, source: str, *, is_package: bool) -> set[str]:
    """Every module name ``source`` imports anywhere, relative imports resolved, parents included;
    ``from x import y`` counts as ``x.y`` too (``y`` may be a module: resolved against the graph later)."""
    names: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    with_parents = set(names)
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    with_parents.discard("")
    return with_parents


def build_graph(files: Mapping[str, Path]) -> tuple[Graph, dict[str, set[str]]]:
    """(first-party edges between modules, third-party top-level names) of every module in ``files``."""
    graph: Graph = {}
    external: dict[str, set[str]] = {}
    for module, path in files.items():
        names = imported_names(module, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py")
        graph[module] = {n for n in names if n in files and n != module}
        external[module] = {n.split(".")[0] for n in names if n.split(".")[0] not in PACKAGES}
    return graph, external


def unit_of(module: str, units: Iterable[str] = UNITS) -> str | None:
    matches = [u for u in units if module == u or module.startswith(u + ".")]
    return max(matches, key=len) if matches else None


def unit_graph(graph: Mapping[str, set[str]], units: Iterable[str] = UNITS) -> dict[str, set[str]]:
    """Unit A reaches unit B when a module of A imports a module of B, directly or through modules of no unit."""
    units = tuple(units)
    reached: dict[str, set[str]] = {u: set() for u in units}
    for start, start_unit in ((m, unit_of(m, units)) for m in graph):
        if start_unit is None:
            continue
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            target_unit = unit_of(module, units)
            if target_unit is None:
                todo.extend(graph.get(module, ()))
            elif target_unit != start_unit:
                reached[start_unit].add(target_unit)
    return reached


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found is not None:
                return found
    return None


def importers(graph: Mapping[str, set[str]], source_unit: str, targets: Iterable[str]) -> list[str]:
    """``module -> target`` for every module of ``source_unit`` that imports one of ``targets`` (or a
    module inside one), known violations left out."""
    targets = tuple(targets)
    return sorted(
        f"{module} -> {target}"
        for module, imports in graph.items()
        if unit_of(module, (source_unit,)) is not None
        for target in imports
        if unit_of(target, targets) is not None and (module, target) not in KNOWN_VIOLATIONS
    )


@pytest.fixture(scope="module")
def scanned() -> tuple[Graph, dict[str, set[str]]]:
    files = module_files()
    assert len(files) > 50 and "conformance.cli" in files and "mock_node.serve" in files, "found the sources"
    return build_graph(files)


@pytest.fixture(scope="module")
def graph(scanned: tuple[Graph, dict[str, set[str]]]) -> Graph:
    full = scanned[0]
    return {module: {t for t in imports if (module, t) not in KNOWN_VIOLATIONS} for module, imports in full.items()}


# --- the rules ------------------------------------------------------------------------------------------


def test_the_mock_node_never_imports_what_drives_the_run(graph: Graph) -> None:
    assert importers(graph, MOCK, TOP) == []


def test_the_mock_node_does_not_reach_the_command_line_through_anything_else(graph: Graph) -> None:
    seen: set[str] = set()
    todo = [m for m in graph if unit_of(m, (MOCK,))]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    assert sorted(m for m in seen if unit_of(m, TOP)) == []


def test_the_protocol_core_imports_nothing_of_the_suite(scanned: tuple[Graph, dict[str, set[str]]]) -> None:
    full, external = scanned
    outside = sorted(
        f"{module} -> {target}"
        for module, imports in full.items()
        if unit_of(module, (PROTOCOL,))
        for target in imports
        if not unit_of(target, (PROTOCOL,)) and target != "conformance"  # the bare package: an empty __init__
    )
    assert outside == []
    root = Path(ROOT / "conformance" / "__init__.py").read_text(encoding="utf-8")
    assert not any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(ast.parse(root))), (
        "importing conformance.protocol runs conformance/__init__.py: it must import nothing"
    )
    third_party = {
        f"{module} -> {name}"
        for module, names in external.items()
        if unit_of(module, (PROTOCOL,))
        for name in names
        if name not in sys.stdlib_module_names and name not in PROTOCOL_THIRD_PARTY
    }
    assert sorted(third_party) == []


@pytest.mark.parametrize("unit", [CHECKS, REPORT])
def test_checks_and_reports_do_not_import_the_command_line_or_the_runner(graph: Graph, unit: str) -> None:
    assert importers(graph, unit, ("conformance.cli", "conformance.runner")) == []


def test_the_units_form_no_cycle(graph: Graph) -> None:
    units = unit_graph(graph)
    assert units[PROTOCOL] == set(), "the protocol core is the bottom layer"
    assert find_cycle(units) is None, units
    assert {MOCK, CHECKS, REPORT, PROTOCOL} <= units[CLI] | {PROTOCOL}, "the command line reaches every unit"


def test_the_known_violations_are_still_there(scanned: tuple[Graph, dict[str, set[str]]]) -> None:
    """An excused edge that is gone must leave the list, so that it cannot come back unnoticed."""
    full = scanned[0]
    stale = [f"{module} -> {target}" for module, target in KNOWN_VIOLATIONS if target not in full.get(module, set())]
    assert stale == [], "remove these from KNOWN_VIOLATIONS: they are fixed"


# --- the checker itself can fail --------------------------------------------------------------------------


def test_a_cycle_is_found_in_a_synthetic_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is not a cycle


def test_a_cycle_through_modules_of_no_unit_is_a_cycle_between_units() -> None:
    synthetic: Graph = {
        "conformance.cli": {"mock_node.serve"},
        "mock_node.serve": {"conformance.helper"},  # no unit of its own ...
        "conformance.helper": {"conformance.cli"},  # ... and it leads back to the top
    }
    units = unit_graph(synthetic)
    assert units[MOCK] == {CLI}
    assert find_cycle(units) == [CLI, MOCK, CLI]


def test_the_scan_sees_function_level_relative_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "mock_node"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "serve.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from conformance.runner import Run\n"
        "def main() -> int:\n    from conformance.cli import main as cli_main\n    return cli_main([])\n"
    )
    (package / "app.py").write_text("from . import serve\nfrom .serve import main\n")
    (tmp_path / "conformance").mkdir()
    for name in ("__init__", "cli", "runner"):
        (tmp_path / "conformance" / f"{name}.py").write_text("")
    files = module_files(tmp_path)
    synthetic, _ = build_graph(files)
    assert synthetic["mock_node.serve"] == {"conformance", "conformance.cli", "conformance.runner"}
    assert synthetic["mock_node.app"] == {"mock_node", "mock_node.serve"}
    assert importers(synthetic, MOCK, TOP) == [
        "mock_node.serve -> conformance.cli",
        "mock_node.serve -> conformance.runner",
    ]


# --- python -m mock_node is atoma-conformance mock, without importing it ---------------------------------


def test_python_m_mock_node_has_the_same_help_as_the_mock_command() -> None:
    from conformance.cli import build_parser, subparsers
    from mock_node.serve import build_parser as build_mock_parser

    cli_help = dict(subparsers(build_parser()))["mock"].format_help()
    own_help = build_mock_parser(prog="atoma-conformance mock").format_help()
    assert own_help == cli_help


@pytest.mark.parametrize(
    "argv",
    [
        ["--list-faults"],
        ["--list-faults", "--format", "markdown"],
        ["--fault", "nope"],
        ["--port", "70000"],
        ["--profile", "lenient"],
        ["--host", "0.0.0.0"],
        ["--stack-owner", "nope"],
    ],
)
def test_python_m_mock_node_answers_as_the_mock_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main as cli_main
    from mock_node.serve import main as mock_main

    cli_code = cli_main(["mock", *argv])
    cli_out = capsys.readouterr()
    own_code = mock_main(argv)
    own_out = capsys.readouterr()
    assert (own_code, own_out.out, own_out.err) == (cli_code, cli_out.out, cli_out.err)
    assert cli_code == 0 or cli_out.err.startswith("atoma-conformance: error: ")
