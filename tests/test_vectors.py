"""The vector files: every vector passes through the core, the files are exactly what the generator
writes, the schema holds, ids are stable and unique, and every spec reference exists."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from conformance import spec
from conformance.cli import main
from conformance.vectors import Vector, check, default_dir, iter_vectors, load
from conformance.vectors.generate import BUILDERS, build_all
from conformance.vectors.refs import REFS
from conformance.vectors.verify import VectorFailure, verify_test

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "vectors"
ALL = list(iter_vectors(VECTORS))
SPEC_IDS = set(spec.load().requirements)


def test_default_dir_is_the_repository_vectors() -> None:
    assert default_dir() == VECTORS


@pytest.mark.parametrize("vector", ALL, ids=[v.id for v in ALL])
def test_core_agrees_with_vector(vector: Vector) -> None:
    verify_test(vector.test, vector.group)


def test_files_are_exactly_what_the_generator_writes() -> None:
    generated = build_all()
    assert sorted(generated) == sorted(BUILDERS)
    for name, data in generated.items():
        assert (VECTORS / name).read_bytes() == data, f"{name} is stale: run 'atoma-conformance vectors generate'"


def test_generation_is_deterministic() -> None:
    assert build_all() == build_all()


def test_every_file_validates_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(load(VECTORS / "schema.json"))
    jsonschema.Draft202012Validator.check_schema(load(VECTORS / "schema.json"))
    for name in BUILDERS:
        doc = load(VECTORS / name)
        errors = list(validator.iter_errors(doc))
        assert not errors, f"{name}: {errors[0].message}"
        assert doc["numberOfTests"] == sum(len(g["tests"]) for g in doc["testGroups"])


def test_ids_are_unique_across_all_files() -> None:
    counts = Counter(v.id for v in ALL)
    assert [i for i, n in counts.items() if n > 1] == []


def test_every_flag_is_explained_in_its_files_notes() -> None:
    for name in BUILDERS:
        doc = load(VECTORS / name)
        used = {f for g in doc["testGroups"] for t in g["tests"] for f in t["flags"]}
        assert used <= set(doc["notes"]), f"{name}: flags without notes: {used - set(doc['notes'])}"


def test_every_spec_ref_names_a_requirement_in_docs_spec() -> None:
    assert len(SPEC_IDS) > 100
    named = {r for refs in REFS.values() for r in refs}
    assert named <= SPEC_IDS, f"unknown requirement ids: {sorted(named - SPEC_IDS)}"
    for vector in ALL:
        assert vector.test["spec_refs"], vector.id
        assert set(vector.test["spec_refs"]) <= SPEC_IDS, vector.id


def test_vector_counts_per_file() -> None:
    """Pinned so that a vector silently disappearing is a visible change (ids are never reused)."""
    counts = {name: load(VECTORS / name)["numberOfTests"] for name in BUILDERS}
    assert counts == {
        "x25519.json": 21,
        "hkdf_sha256.json": 9,
        "aes_256_gcm.json": 12,
        "blake2b_256.json": 13,
        "base64.json": 41,
        "sui_signatures.json": 32,
        "envelopes.json": 30,
        "json_hashing.json": 15,
    }


def test_every_result_kind_and_both_verdicts_occur() -> None:
    results = Counter(v.test["result"] for v in ALL)
    assert results["valid"] > 50 and results["invalid"] > 50


def test_protocol_research_values_are_pinned() -> None:
    """protocol.md section 14 A2-A4 and B1-B11 appear verbatim in the vectors."""
    text = "".join((VECTORS / n).read_text(encoding="utf-8") for n in BUILDERS)
    for value in (
        "0xe9068128f7b0955412f8b825cd3bab6e1a5dd49cde8c51a72091481df9bca609",  # A2
        "C5e8reYTSRI+hjwcD4ZNS3q2tyE9rtrhRyHq5aj9820=",  # A3
        "APgRgid4ldc9KBrvQ3xJOl9FJbGtB51p5digQX1BsvYYU0ONEUwPlIobL",  # A4 (prefix)
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",  # B1
        "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=",  # B2
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",  # B3
        "193a1658e238ccf07108d772c923f3336a66f156195421b9b3f7cef441f13af7",  # B5
        "oIk9aF2tAkHAOlG40fE66aDuP7q36EyAgc2AUr8fv1w=",  # B8
        "ALb6z1QZcSNIKmQCbPHDQJqkXAFhRCMMYaU9roKpcdMBuTfGu8hcJSxHsstqJmgt",  # B9 (prefix)
        "9M0OL2zEvdfv2VdQuxmlfAbGKIlFYH7wvO+RwvEVb4c=",  # B10
        "7UuinuqbRwTPDXeSRd03XdS4ADjJAvIjQwApOX1+/CY=",  # B11 chunk 0
        "zLf7dc7Aj6poT5H/4xtOi74REehLlaVxLh4+V0gl93M=",  # B11 chunk 1
    ):
        assert value in text, value


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "vectors"
    shutil.copytree(VECTORS, target)
    return target


def test_cli_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", "check", "--dir", str(VECTORS)]) == 0
    out = capsys.readouterr().out
    assert f"verified {len(ALL)} vectors in {len(BUILDERS)} files" in out and out.rstrip().endswith("OK")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_cli_check_fails_when_a_single_byte_changes(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _copy(tmp_path)
    path = directory / name
    data = bytearray(path.read_bytes())
    # Change the first character of the last string value: still valid JSON, exactly one byte apart.
    index = data.rindex(b'": "') + 4
    data[index] = ord("A") if data[index] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    assert main(["vectors", "check", "--dir", str(directory)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {name}: differs from the generator's output (first at byte {index}" in out


def test_cli_check_reports_a_vector_the_core_disagrees_with_even_if_regenerated_differently(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    doc = json.loads((directory / "blake2b_256.json").read_text())
    doc["testGroups"][0]["tests"][0]["digest"] = "00" * 32
    (directory / "blake2b_256.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    report = check(directory)
    assert not report.ok
    assert any("blake2b-256-empty: VectorFailure" in p for p in report.problems)


def test_cli_check_flags_missing_and_extra_files(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "x25519.json").unlink()
    (directory / "handmade.json").write_text("{}")
    report = check(directory)
    assert "x25519.json: missing (run 'atoma-conformance vectors generate')" in report.problems
    assert any(p.startswith("handmade.json: not produced by the generator") for p in report.problems)


def test_cli_check_flags_schema_violations(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    doc = json.loads((directory / "hkdf_sha256.json").read_text())
    doc["testGroups"][0]["tests"][0]["result"] = "maybe"
    (directory / "hkdf_sha256.json").write_text(json.dumps(doc))
    report = check(directory)
    assert any(p.startswith("hkdf_sha256.json: schema:") for p in report.problems)


def test_cli_check_reports_invalid_json_without_crashing(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "base64.json").write_text("{not json")
    report = check(directory)
    assert any(p.startswith("base64.json: not JSON") for p in report.problems)


def test_cli_check_without_schema_reports_it(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "schema.json").unlink()
    report = check(directory)
    assert report.problems == [f"{directory / 'schema.json'}: missing"]


def test_cli_generate_writes_identical_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out"
    assert main(["vectors", "generate", "--dir", str(target)]) == 0
    assert f"generated {len(ALL)} vectors in {len(BUILDERS)} files" in capsys.readouterr().out
    for name in BUILDERS:
        assert (target / name).read_bytes() == (VECTORS / name).read_bytes()


def test_verifier_refuses_a_wrong_valid_vector() -> None:
    vector = next(v for v in ALL if v.id == "x25519-rfc7748-6.1-alice")
    wrong = dict(vector.test, shared="00" * 32)
    with pytest.raises(VectorFailure, match="shared secret differs"):
        verify_test(wrong, vector.group)


def test_verifier_refuses_an_invalid_vector_the_core_would_accept() -> None:
    vector = next(v for v in ALL if v.id == "b64-invalid-urlsafe")
    accepted = dict(vector.test, encoded="AAAA")
    with pytest.raises(VectorFailure, match="accepted an invalid vector"):
        verify_test(accepted, vector.group)
