"""The one place that locates the data files the suite reads: the specification, the known-answer vectors
and the results schema.

Why one module: the same code runs from a source checkout, an editable install and an installed wheel.
Each file has a single copy in the repository (``docs/spec.md``, ``vectors/``,
``reports/results.schema.json``); ``conformance/_data/`` holds symlinks to them, and the wheel build
turns those links into real package data. Reading through :mod:`importlib.resources` therefore finds
the same bytes everywhere, and nothing else in the package needs to know where a checkout's root is.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .exits import UserError

__all__ = ["results_schema", "source_vectors_dir", "spec_text", "vectors_dir", "writable_vectors_dir"]

_DATA = "_data"
SPEC = "spec.md"
VECTORS = "vectors"
RESULTS_SCHEMA = "results.schema.json"
# Where each packaged name lives in a source checkout: the fallback when the symlinks were checked out
# as plain text files (git with core.symlinks=false, as on Windows by default).
_CHECKOUT = {SPEC: ("docs", "spec.md"), VECTORS: ("vectors",), RESULTS_SCHEMA: ("reports", "results.schema.json")}


def _checkout_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _resource(name: str) -> Traversable:
    packaged = files(__package__ or "conformance") / _DATA / name
    if packaged.is_file() or packaged.is_dir():
        return packaged
    fallback = _checkout_root().joinpath(*_CHECKOUT[name])
    if fallback.exists():
        return fallback
    raise FileNotFoundError(f"conformance/{_DATA}/{name}: not installed with the package (a broken install?)")


def spec_text() -> str:
    """The text of docs/spec.md, whose requirement ids every verdict cites."""
    return _resource(SPEC).read_text(encoding="utf-8")


def results_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of results.json."""
    schema: dict[str, Any] = json.loads(_resource(RESULTS_SCHEMA).read_text(encoding="utf-8"))
    return schema


def vectors_dir() -> Path:
    """The known-answer vector files (and ``schema.json``) as a real directory.

    A Path, not a Traversable, because the checker globs, byte-compares and reports file paths; the suite
    is only ever installed as files on disk (a zip import would fail here, loudly)."""
    directory = _resource(VECTORS)
    if not isinstance(directory, Path):
        raise FileNotFoundError(f"conformance/{_DATA}/{VECTORS}: not on the file system ({directory})")
    return directory.resolve()


def source_vectors_dir() -> Path | None:
    """The repository's ``vectors/`` when the package runs from a source checkout (editable or not),
    else None. The packaged ``vectors`` being a symlink (or the checkout fallback being used) is what
    marks a checkout: a wheel holds a plain directory of copies."""
    packaged = Path(__file__).resolve().parent / _DATA / VECTORS
    if packaged.is_symlink() and packaged.is_dir():
        return packaged.resolve()
    checkout = _checkout_root().joinpath(*_CHECKOUT[VECTORS])
    if not packaged.is_dir() and checkout.is_dir() and (_checkout_root() / "pyproject.toml").is_file():
        return checkout
    return None


def writable_vectors_dir() -> Path:
    """Where ``vectors generate`` writes without ``--dir``: the checkout's ``vectors/``.

    Installed from a wheel there is no checkout, and the packaged copies are part of the install (pip
    recorded their hashes; writing over them would make the install lie), so the user must choose."""
    directory = source_vectors_dir()
    if directory is None:
        raise UserError(
            "--dir",
            "required when the suite is installed from a wheel (the packaged vectors are read-only); "
            "pass --dir DIR to write the vector files there",
        )
    return directory
