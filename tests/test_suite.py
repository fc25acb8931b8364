"""The conformance suite end to end: the CLI's exit-code contract, the pytest plugin, the catalogue's
invariants, and the generated docs/checks.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import CATALOGUE, CATEGORIES
from conformance.checks.docs import render
from conformance.checks.evidence import Evidence
from conformance.checks.probe import PROBES
from conformance.cli import main
from conformance.spec import load as load_spec
from mock_node.config import MockConfig
from mock_node.testing import running_node

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec()
CHAT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def _results(report_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    return data


def _by_id(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in results["checks"]}


# --- the catalogue -----------------------------------------------------------------------------------


def test_the_catalogue_has_at_least_60_checks_in_every_category() -> None:
    assert len(CATALOGUE) >= 60
    assert set(Counter(c.category for c in CATALOGUE)) == set(CATEGORIES)


def test_check_ids_are_unique_well_formed_and_in_order() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Z]+-\d{3}", i) for i in ids)


def test_every_check_cites_existing_requirements_and_known_probes() -> None:
    for check in CATALOGUE:
        assert check.spec and set(check.spec) <= set(SPEC.requirements), check.id
        assert check.reads and all(PROBES[p.name] is p for p in check.reads), check.id
        assert check.title and issubclass(check.evidence, Evidence) and check.level in ("MUST", "SHOULD", "INFO")


def test_docs_checks_md_is_generated_from_the_catalogue() -> None:
    assert (ROOT / "docs" / "checks.md").read_text(encoding="utf-8") == render("markdown"), (
        "docs/checks.md is stale: atoma-conformance checks --format markdown > docs/checks.md"
    )


def test_checks_command_lists_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert all(c.id in out for c in CATALOGUE)


# --- the run command against the embedded mock -------------------------------------------------------


def test_default_run_passes_against_the_embedded_strict_mock_and_executes_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS: every MUST check passed" in out
    results = _results(tmp_path)
    outcomes = Counter(c["outcome"] for c in results["checks"])
    node_only = [c.id for c in CATALOGUE if c.category == "NODE"] + ["KEY-011"]  # KEY-011: the node's own key
    assert outcomes == {"pass": len(CATALOGUE) - len(node_only), "skip": len(node_only)}, (
        "every proxy-face check executes and passes against the strict mock"
    )
    assert {c["id"] for c in results["checks"] if c["outcome"] == "skip"} == set(node_only)
    assert results["target"]["embedded"] is True and results["target"]["profile"] == "strict"
    assert results["requests"] > 0 and results["nonce_audit"]["reuses"] == 0


def test_run_against_the_compat_profile_names_stream_nonce_reuse_as_a_must_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--profile", "atoma-node-compat", "--report-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"NONCE-003 +MUST +FAIL", out)
    checks = _by_id(_results(tmp_path))
    failed = {i for i, c in checks.items() if c["outcome"] == "fail"}
    # The upstream quirks, each at its level (docs/mock-node.md, Profiles).
    assert {"NONCE-003", "NONCE-005", "LOCK-011", "ERR-008", "ERR-017", "ERR-018", "ERR-019"} <= failed  # MUST
    assert {"ERR-023", "REPLAY-001"} <= failed  # SHOULD
    assert {checks[i]["level"] for i in ("ERR-017", "ERR-018")} == {"MUST"}
    assert {checks[i]["level"] for i in ("ERR-023", "REPLAY-001")} == {"SHOULD"}
    assert _results(tmp_path)["nonce_audit"]["reuses"] > 0


def test_run_against_a_separately_started_compat_mock_over_http(tmp_path: Path) -> None:
    with running_node(MockConfig(profile="atoma-node-compat")) as url:
        code = main(
            [
                "run",
                "--target",
                url,
                "--model",
                CHAT_MODEL,
                "--api-key",
                "a-long-enough-key-123",
                "--report-dir",
                str(tmp_path),
            ]
        )
    assert code == 1
    checks = _by_id(_results(tmp_path))
    assert checks["NONCE-003"]["outcome"] == "fail"
    assert checks["AEAD-006"]["outcome"] == "skip", "no --embedding-model: the embeddings checks skip, honestly"
    assert _results(tmp_path)["target"]["url"] == url


def test_selection_by_marker_runs_only_those_checks(tmp_path: Path) -> None:
    assert main(["run", "-m", "nonce", "--report-dir", str(tmp_path)]) == 0
    assert {c["id"].split("-")[0] for c in _results(tmp_path)["checks"]} == {"NONCE"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "http://127.0.0.1:1", "--model", "m"], "--target: http://127.0.0.1:1 is unreachable"),
        (["--target", "ftp://x", "--model", "m"], "--target: must be an http:// or https:// URL"),
        (["--target", "http://127.0.0.1:1"], "--model: required with --target"),
        (["--max-requests", "0"], "argument --max-requests: must be a positive integer"),
    ],
)
def test_run_that_cannot_be_carried_out_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", *argv, "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"atoma-conformance: error: {message}") and err.count("\n") == 1


def test_refused_api_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig(api_keys=("right-key-0123",))) as url:
        code = main(
            [
                "run",
                "--target",
                url,
                "--model",
                CHAT_MODEL,
                "--api-key",
                "wrong-key-0123",
                "--report-dir",
                str(tmp_path),
            ]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert "--api-key: the target refused the API key" in err and "wrong-key-0123" not in err


def test_the_api_key_never_reaches_the_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = "secret-sentinel-api-key-77f1"
    with running_node(MockConfig(profile="atoma-node-compat")) as url:
        main(["run", "--target", url, "--model", CHAT_MODEL, "--api-key", key, "--report-dir", str(tmp_path)])
    out = capsys.readouterr()
    assert key not in (tmp_path / "results.json").read_text() and key not in out.out + out.err


def test_pytest_plugin_runs_the_suite_under_xdist_and_merges_results(tmp_path: Path) -> None:
    (tmp_path / "none.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance.suite",
            "-p",
            "no:cacheprovider",
            "-q",
            "-n",
            "2",
            "--atoma-report-dir",
            str(tmp_path),
            "-c",
            str(tmp_path / "none.ini"),
            "--rootdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    results = _results(tmp_path)
    assert len(results["checks"]) == len(CATALOGUE)
    node_only = {c.id for c in CATALOGUE if c.category == "NODE"} | {"KEY-011"}
    assert all(c["outcome"] == ("skip" if c["id"] in node_only else "pass") for c in results["checks"])


def test_run_ignores_the_pytest_setup_of_the_directory_it_is_started_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's own project (its pytest.ini, its tests/conftest.py) must not leak into the run."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text("raise ImportError('not the suite's business')\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --this-option-does-not-exist\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-m", "lock", "--report-dir", "out"]) == 0
    assert (tmp_path / "out" / "results.json").exists()


def test_check_levels_follow_the_spec_or_say_why() -> None:
    """The catalogue's rule: a check is as strong as the strongest requirement it cites, unless it
    declares why it is weaker (``weaker_because=``), which docs/checks.md prints."""
    as_check = {"MUST": "MUST", "MUST NOT": "MUST", "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "MAY": "INFO"}
    rank = {"INFO": 0, "SHOULD": 1, "MUST": 2}
    unexplained = []
    for check in CATALOGUE:
        strongest = max((as_check[SPEC.requirements[ref].level] for ref in check.spec), key=rank.__getitem__)
        weaker = check.level != "INFO" and rank[check.level] < rank[strongest]
        if weaker != bool(check.weaker_because):
            unexplained.append(f"{check.id} is {check.level}, cites a {strongest}, says {check.weaker_because!r}")
    assert unexplained == []
