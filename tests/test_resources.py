"""The data files the suite reads (spec, vectors, results schema) come from the package, in a source
checkout and in an install without one; and the repository keeps one copy of each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from conformance import resources
from conformance.exits import UserError
from conformance.results import vector_set_digest
from conformance.vectors import default_dir, default_output_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "conformance" / "_data"
CANONICAL = {
    "spec.md": ROOT / "docs" / "spec.md",
    "vectors": ROOT / "vectors",
    "results.schema.json": ROOT / "reports" / "results.schema.json",
}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_the_package_data_is_a_link_to_the_one_copy(name: str) -> None:
    """A second copy would drift from the first; a symlink cannot."""
    packaged = DATA / name
    assert packaged.is_symlink(), f"conformance/_data/{name} must be a symlink, not a copy"
    assert packaged.resolve() == CANONICAL[name].resolve()


def test_nothing_else_is_packaged_as_data() -> None:
    assert sorted(p.name for p in DATA.iterdir()) == sorted(CANONICAL)


def test_the_wheel_lists_every_data_file() -> None:
    """setuptools copies only what package-data names: every file under _data must match a pattern."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["conformance"]
    files = [
        (Path(top) / name).relative_to(ROOT / "conformance").as_posix()
        for top, _, names in os.walk(DATA, followlinks=True)  # Path.rglob does not enter linked directories
        # vectors/wycheproof/ is upstream test data for tests/test_wycheproof.py; the wheel does not ship it
        if "wycheproof" not in Path(top).relative_to(DATA).parts
        for name in names
    ]
    assert len(files) == 2 + len(list(CANONICAL["vectors"].glob("*.json")))
    assert [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)] == []


def test_in_a_checkout_the_resources_are_the_repository_files() -> None:
    assert resources.spec_text() == CANONICAL["spec.md"].read_text(encoding="utf-8")
    assert resources.results_schema() == json.loads(CANONICAL["results.schema.json"].read_text(encoding="utf-8"))
    assert resources.vectors_dir() == default_dir() == CANONICAL["vectors"]
    assert resources.source_vectors_dir() == default_output_dir() == CANONICAL["vectors"]


_PROBE = """
import json, sys
from pathlib import Path
import conformance
from conformance import resources
from conformance.cli import main
from conformance.exits import UserError
from conformance.report.render import packaged_spec
from conformance.results import vector_set_digest
from conformance.vectors import default_output_dir

try:
    default_output_dir()
    refused = ""
except UserError as exc:
    refused = str(exc)
out = {
    "package": conformance.__file__,
    "vectors": str(resources.vectors_dir()),
    "source": resources.source_vectors_dir(),
    "spec": resources.spec_text(),
    "schema": resources.results_schema(),
    "digest": vector_set_digest(),
    "sections": len(packaged_spec().sections),
    "refused": refused,
}
print(json.dumps(out, default=str))
sys.stdout.flush()
sys.exit(main(["vectors", "check"]))
"""


def test_an_install_without_a_checkout_reads_its_packaged_copies(tmp_path: Path) -> None:
    """What a wheel installs: the packages with real files under _data (the build dereferences the links),
    run from a directory that is not the repository."""
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("conformance", "mock_node"):
        shutil.copytree(ROOT / package, site / package, symlinks=False, ignore=ignore)
    assert not (site / "conformance" / "_data" / "vectors").is_symlink()
    empty = tmp_path / "cwd"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=empty,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, *rest = proc.stdout.splitlines()
    found = json.loads(first)
    assert Path(found["package"]).is_relative_to(site), "the copy, not the checkout, was imported"
    assert found["vectors"] == str(site / "conformance" / "_data" / "vectors")
    assert found["source"] is None
    assert found["spec"] == CANONICAL["spec.md"].read_text(encoding="utf-8")
    assert found["schema"] == resources.results_schema()
    assert found["digest"] == vector_set_digest() is not None
    assert found["sections"] >= 13
    assert found["refused"].startswith("--dir: required when the suite is installed from a wheel")
    assert rest[-1].startswith("verified ") and rest[-1].endswith(": OK")


def test_generate_without_dir_refuses_outside_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "source_vectors_dir", lambda: None)
    with pytest.raises(UserError) as caught:
        default_output_dir()
    assert caught.value.field == "--dir"
    assert "\n" not in str(caught.value)
