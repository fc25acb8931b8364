"""The public surface of the sans-I/O core, held to its callers.

In the style of Hypothesis' own ``assert set(__all__) == _public``:

(a) ``conformance.protocol.__all__`` is exactly the public names the package binds that are not
    modules: nothing is exported by accident, nothing the package imports for callers is left out;
(b) every name that code outside the package imports from the package or any of its submodules (or
    reads off one of its modules, ``m.name``) is in ``__all__``, as the same object; the submodules
    stay importable, and those callers import as modules are listed in ``SUBMODULE_IMPORTS``;
(c) the core is at the bottom: it imports nothing from the rest of ``conformance``, from the mock
    node, nor from the I/O and test libraries (httpx, starlette, hypothesis).

All three read the source with ``ast``, so lazy imports inside functions count too. Each scanner is
also run on a synthetic source it must flag, so that a scanner that sees nothing cannot pass.
"""

from __future__ import annotations

import ast
import functools
import importlib
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import conformance.protocol

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "conformance.protocol"
PACKAGE_DIR = ROOT.joinpath(*PACKAGE.split("."))
CALLER_DIRS = ("conformance", "mock_node", "tests", "benchmarks")
SUBMODULES = frozenset(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")

# Submodules that callers import as modules (``from conformance.protocol import jsonwire``, then
# ``jsonwire.dumps``). Any other submodule imported as a module is a new reach to decide on.
SUBMODULE_IMPORTS = frozenset({"jsonwire"})

# Private names that code outside the package imports: white-box tests of one submodule's internals.
# A smell kept visible rather than exported; the set must shrink, never silently grow.
PRIVATE_REACHES = frozenset(
    {
        ("conformance.protocol.b64", "_canonical_tail"),  # tests/test_b64.py
        ("conformance.protocol.jsonwire", "_KEY_TEXT"),  # tests/test_jsonwire.py
        # tests/test_jsonwire.py: that the spliced reader really takes an envelope, and stands aside
        # (rather than answering) on the documents it cannot be sure of
        ("conformance.protocol.jsonwire", "_spliced"),
    }
)

# The core may import none of these (nor any part of ``conformance`` outside itself).
FORBIDDEN_IN_CORE = frozenset({"conformance", "mock_node", "httpx", "starlette", "hypothesis"})


@dataclass(frozen=True, order=True)
class Use:
    """``name`` looked up in ``module`` (a module of the package) by the code at ``where``."""

    module: str
    name: str
    where: str


def module_name(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    """The dotted name of the module in ``path``, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _above_package(module: str) -> bool:
    return PACKAGE.startswith(module + ".")


def _is_module(dotted: str, submodules: frozenset[str]) -> bool:
    return dotted == PACKAGE or (dotted.startswith(PACKAGE + ".") and dotted[len(PACKAGE) + 1 :] in submodules)


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when the chain does not start at a plain name."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(names)]


def protocol_uses(
    source: str, module: str, is_package: bool, where: str, submodules: frozenset[str] = SUBMODULES
) -> Iterator[Use]:
    """Every name ``source`` (the module ``module``) takes from the package or its submodules:
    ``from <package>[.sub] import name`` (relative ones made absolute), and ``m.name`` where ``m`` is
    bound to one of the package's modules (``import <package>.sub as m``, ``import <package>.sub``,
    ``from conformance import protocol``, ``from <package> import sub``). Dunder attributes
    (``m.__all__``) are module metadata, not names, and are skipped."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> the package, one of its modules, or a package above it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            for alias in node.names:
                dotted = f"{target}.{alias.name}"
                if _in_package(target):
                    yield Use(target, alias.name, f"{where}:{node.lineno}")
                if _is_module(dotted, submodules) or _above_package(dotted):
                    bound[alias.asname or alias.name] = dotted
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _in_package(alias.name) or _above_package(alias.name):
                    top = alias.name.split(".")[0]  # ``import a.b.c`` binds ``a``
                    bound[alias.asname or top] = alias.name if alias.asname else top
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(node.ctx, ast.Del):
            continue
        chain = _chain(node)
        if chain is None or chain[0] not in bound:
            continue
        # ``a.b.c`` is walked as the nodes ``a.b.c`` and ``a.b``: each reports only its own last lookup.
        current = bound[chain[0]]
        for attr in chain[1:-1]:
            current = f"{current}.{attr}"
            if not (_is_module(current, submodules) or _above_package(current)):
                break
        else:
            attr = chain[-1]
            dunder = attr.startswith("__") and attr.endswith("__")
            if _is_module(current, submodules) and not _is_module(f"{current}.{attr}", submodules) and not dunder:
                yield Use(current, attr, f"{where}:{node.lineno}")


def caller_files(root: Path = ROOT) -> Iterator[Path]:
    for directory in CALLER_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            if "__pycache__" not in path.parts and not path.is_relative_to(PACKAGE_DIR):
                yield path


@functools.cache
def all_caller_uses(root: Path = ROOT) -> tuple[Use, ...]:
    uses: set[Use] = set()
    for path in caller_files(root):
        module, is_package = module_name(path, root)
        where = path.relative_to(root).as_posix()
        uses.update(protocol_uses(path.read_text(encoding="utf-8"), module, is_package, where))
    return tuple(sorted(uses))


def undeclared(uses: Iterable[Use], exported: Iterable[str], submodule_imports: frozenset[str]) -> list[Use]:
    """The uses of public names that the package root does not export."""
    declared = set(exported)
    out: list[Use] = []
    for use in uses:
        if use.name.startswith("_"):
            continue
        if use.module == PACKAGE and use.name in SUBMODULES:
            if use.name not in submodule_imports:
                out.append(use)
        elif use.name not in declared:
            out.append(use)
    return out


def accidental(namespace: Mapping[str, object], exported: Iterable[str]) -> tuple[set[str], set[str]]:
    """(public non-module names bound but not in ``__all__``, names in ``__all__`` not bound)."""
    public = {n for n, v in namespace.items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    declared = set(exported)
    return public - declared, declared - set(namespace)


def outward_imports(source: str, module: str, is_package: bool, where: str) -> list[str]:
    """The imports in ``source`` (a module of the core) of anything the core must not depend on."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            # ``from .. import cli`` names a module through its parent package: judge the module.
            targets = [f"{base}.{a.name}" if _above_package(base) else base for a in node.names]
        else:
            continue
        for target in targets:
            if not _in_package(target) and target.split(".")[0] in FORBIDDEN_IN_CORE:
                found.append(f"{where}:{node.lineno}: {target}")
    return found


# (a) ---------------------------------------------------------------------------------------------


def test_all_is_exactly_the_public_names_the_package_binds() -> None:
    missing_from_all, unbound = accidental(vars(conformance.protocol), conformance.protocol.__all__)
    assert not missing_from_all, f"bound by conformance.protocol but not in __all__: {sorted(missing_from_all)}"
    assert not unbound, f"in __all__ but not bound: {sorted(unbound)}"
    assert len(conformance.protocol.__all__) == len(set(conformance.protocol.__all__)), "duplicates in __all__"


def test_the_all_check_can_fail() -> None:
    namespace = {"seal": object(), "extra": object(), "_private": object(), "jsonwire": types}
    assert accidental(namespace, ["seal", "gone"]) == ({"extra"}, {"gone"})


# (b) ---------------------------------------------------------------------------------------------


def test_every_name_callers_import_from_the_core_is_exported() -> None:
    uses = all_caller_uses()
    assert len({u.where.split(":")[0] for u in uses}) > 50, "the scan found too few callers to be looking"
    missing = undeclared(uses, conformance.protocol.__all__, SUBMODULE_IMPORTS)
    assert not missing, "imported from the core but not in conformance.protocol.__all__:\n" + "\n".join(
        f"  {u.where}: {u.module}.{u.name}" for u in missing
    )


def test_exported_names_are_the_objects_callers_get_from_the_submodules() -> None:
    for use in all_caller_uses():
        if use.name.startswith("_") or use.module == PACKAGE or use.name == "*":
            continue
        got = getattr(importlib.import_module(use.module), use.name)
        assert got is getattr(conformance.protocol, use.name), f"{use.where}: {use.module}.{use.name}"


def test_private_reaches_into_the_core_are_the_listed_ones() -> None:
    private = {(u.module, u.name) for u in all_caller_uses() if u.name.startswith("_")}
    assert private == PRIVATE_REACHES


def test_submodules_imported_as_modules_are_the_listed_ones() -> None:
    assert SUBMODULE_IMPORTS <= SUBMODULES
    imported = {u.name for u in all_caller_uses() if u.module == PACKAGE and u.name in SUBMODULES}
    assert imported == SUBMODULE_IMPORTS


def test_the_caller_scan_can_fail() -> None:
    source = """
from conformance.protocol import seal_request, jsonwire
from conformance.protocol.envelope import node_exchange as ne, not_exported
from ..protocol.sui import to_high_s
from ..protocol import envelope
import conformance.protocol.sse as sse_module
import conformance.protocol.primitives
from conformance import protocol

def lazy() -> None:
    from ..protocol.b64 import _private_helper

sse_module.SseParser
conformance.protocol.primitives.NONCE_LEN
protocol.sui.verify
envelope.open_chunk(1).attribute
jsonwire.__name__
conformance.protocol.__all__
"""
    uses = {(u.module, u.name) for u in protocol_uses(source, "conformance.fuzz.sample", False, "sample.py")}
    p = PACKAGE
    assert uses == {
        (p, "seal_request"),
        (p, "jsonwire"),
        (p, "envelope"),
        (f"{p}.envelope", "node_exchange"),
        (f"{p}.envelope", "not_exported"),
        (f"{p}.sui", "to_high_s"),
        (f"{p}.b64", "_private_helper"),
        (f"{p}.sse", "SseParser"),
        (f"{p}.primitives", "NONCE_LEN"),
        (f"{p}.sui", "verify"),
        (f"{p}.envelope", "open_chunk"),
    }
    # In a package's __init__, one dot is the package itself: conformance.clients -> conformance.protocol.
    nested = {(u.module, u.name) for u in protocol_uses(source, "conformance.clients", True, "x")}
    assert (f"{p}.sui", "to_high_s") in nested
    missing = undeclared(
        protocol_uses(source, "conformance.fuzz.sample", False, "sample.py"),
        conformance.protocol.__all__,
        SUBMODULE_IMPORTS,
    )
    assert {(u.module, u.name) for u in missing} == {(p, "envelope"), (f"{p}.envelope", "not_exported")}


# (c) ---------------------------------------------------------------------------------------------


def test_the_core_imports_nothing_from_outside_it() -> None:
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(files) > 5
    found: list[str] = []
    for path in files:
        module, is_package = module_name(path)
        found += outward_imports(path.read_text(encoding="utf-8"), module, is_package, path.name)
    assert not found, "the core imports outward:\n" + "\n".join(found)


def test_the_core_scan_can_fail() -> None:
    source = """
from . import jsonwire
from .errors import ProtocolError
from conformance.protocol.b64 import b64encode
import hashlib
from ..client import Client
from .. import cli
from conformance.results import Result
import mock_node.app

def lazy() -> None:
    import httpx
    from starlette.responses import Response
    from hypothesis import strategies
"""
    found = outward_imports(source, "conformance.protocol.sample", False, "sample.py")
    assert [line.split(": ")[1] for line in found] == [
        "conformance.client",
        "conformance.cli",
        "conformance.results",
        "mock_node.app",
        "httpx",
        "starlette.responses",
        "hypothesis",
    ]
