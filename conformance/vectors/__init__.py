"""Known-answer vectors: where they live, how to load them, and how to check them.

The files under ``vectors/`` are data in the Wycheproof shape (header, notes for flags, groups of
tests with ``result`` and ``flags``), plus stable string ``id``\\ s and ``spec_refs``. This package is
the small loader around them, in the style of pyca/cryptography's Wycheproof helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_FILE = "schema.json"


def default_dir() -> Path:
    """The vectors the suite ships with (the repository's ``vectors/`` in a source checkout): what
    ``vectors check`` verifies without ``--dir``, whatever the working directory."""
    from ..resources import vectors_dir

    return vectors_dir()


def default_output_dir() -> Path:
    """Where ``vectors generate`` writes without ``--dir``: the repository's ``vectors/``. Installed from
    a wheel it raises :class:`~conformance.exits.UserError` naming ``--dir``, rather than overwrite files
    of the install."""
    from ..resources import writable_vectors_dir

    return writable_vectors_dir()


@dataclass(frozen=True)
class Vector:
    """One test of one group of one file."""

    file: str
    group: dict[str, Any]
    test: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.test["id"])


def load(path: Path) -> dict[str, Any]:
    """Parse one vector file."""
    with path.open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def iter_vectors(directory: Path | None = None) -> Iterator[Vector]:
    """Every test in every vector file, in file order."""
    from .generate import BUILDERS

    directory = directory or default_dir()
    for name in BUILDERS:
        doc = load(directory / name)
        for group in doc["testGroups"]:
            for test in group["tests"]:
                yield Vector(name, group, test)


@dataclass
class CheckReport:
    """What ``vectors check`` found."""

    files: int = 0
    vectors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(directory: Path | None = None) -> CheckReport:
    """Byte-compare every file with a fresh generation, validate it against the schema, and run every
    vector through the core."""
    import jsonschema

    from .generate import build_all
    from .verify import verify_test

    directory = directory or default_dir()
    report = CheckReport()
    schema_path = directory / SCHEMA_FILE
    if not schema_path.is_file():
        report.problems.append(f"{schema_path}: missing")
        return report
    validator = jsonschema.Draft202012Validator(load(schema_path))
    expected = build_all()
    known = set(expected) | {SCHEMA_FILE}
    for extra in sorted(p.name for p in directory.glob("*.json") if p.name not in known):
        report.problems.append(f"{extra}: not produced by the generator (stale or hand-written)")
    for name, data in expected.items():
        path = directory / name
        if not path.is_file():
            report.problems.append(f"{name}: missing (run 'atoma-conformance vectors generate')")
            continue
        actual = path.read_bytes()
        if actual != data:
            report.problems.append(f"{name}: differs from the generator's output {_first_difference(actual, data)}")
        try:
            doc = json.loads(actual)
        except json.JSONDecodeError as exc:
            report.problems.append(f"{name}: not JSON ({exc.msg} at line {exc.lineno})")
            continue
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            report.problems.append(f"{name}: schema: at /{where}: {error.message[:200]}")
        report.files += 1
        for group in doc.get("testGroups", []):
            for test in group.get("tests", []):
                report.vectors += 1
                try:
                    verify_test(test, group)
                except Exception as exc:  # a vector failure is a report line, never a crash
                    report.problems.append(f"{name}: {test.get('id', '?')}: {type(exc).__name__}: {exc}")
    return report


def _first_difference(actual: bytes, expected: bytes) -> str:
    for i, (a, b) in enumerate(zip(actual, expected, strict=False)):
        if a != b:
            line = actual[:i].count(b"\n") + 1
            return f"(first at byte {i}, line {line})"
    return f"(length {len(actual)} vs {len(expected)} bytes)"
