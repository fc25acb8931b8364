"""The report commands end to end: run --baseline, baseline create, diff, certify and verify-report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main


@pytest.fixture(scope="module")
def compat_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compat")
    assert main(["run", "--profile", "atoma-node-compat", "--report-dir", str(directory)]) == 1
    return directory / "results.json"


def test_all_known_failures_pass_the_gate_and_a_new_one_does_not(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    assert (
        main(
            [
                "baseline",
                "create",
                str(compat_results),
                "--out",
                str(baseline),
                "--expires",
                "2999-12-31",
                "--reason",
                "upstream quirks",
            ]
        )
        == 0
    )
    assert (
        main(
            ["run", "--profile", "atoma-node-compat", "--report-dir", str(tmp_path / "r1"), "--baseline", str(baseline)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "NONCE-003" in out and "upstream quirks" in out, "known failures are listed, never hidden"
    doc = json.loads(baseline.read_text())
    doc["entries"] = [e for e in doc["entries"] if e["check_id"] != "NONCE-003"]
    baseline.write_text(json.dumps(doc))
    assert (
        main(
            ["run", "--profile", "atoma-node-compat", "--report-dir", str(tmp_path / "r2"), "--baseline", str(baseline)]
        )
        == 1
    )


def test_an_expired_entry_fails_the_gate(compat_results: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "create", str(compat_results), "--out", str(baseline), "--expires", "2000-01-01"]) == 0
    assert (
        main(
            ["run", "--profile", "atoma-node-compat", "--report-dir", str(tmp_path / "r"), "--baseline", str(baseline)]
        )
        == 1
    )


def test_a_fixed_check_is_flagged_so_the_baseline_shrinks(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    main(["baseline", "create", str(compat_results), "--out", str(baseline), "--expires", "2999-12-31"])
    assert main(["run", "--report-dir", str(tmp_path / "strict"), "--baseline", str(baseline)]) == 0
    assert "NONCE-003" in capsys.readouterr().out.split("FIXED")[1]


def test_a_malformed_baseline_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"baseline_version": 1, "entries": [{"check_id": "X-1", "reason": "r", "expires": "soon"}]}')
    assert main(["run", "-m", "lock", "--report-dir", str(tmp_path / "r"), "--baseline", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atoma-conformance: error: --baseline:") and "entries[0].expires" in err


def test_diff_flags_regressions(compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strict = tmp_path / "strict"
    main(["run", "--report-dir", str(strict)])
    capsys.readouterr()
    assert main(["diff", str(strict / "results.json"), str(compat_results)]) == 1
    assert "NONCE-003" in capsys.readouterr().out
    assert main(["diff", str(compat_results), str(strict / "results.json")]) == 0


def test_certify_then_verify_and_detect_a_changed_byte(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "certifier.pem"
    assert main(["certify", "--generate-key", str(key)]) == 0
    public = capsys.readouterr().out.rsplit(" ", 1)[1].strip()
    bundle = tmp_path / "bundle"
    assert main(["certify", "--results", str(compat_results), "--out", str(bundle), "--key", str(key)]) == 0
    assert main(["verify-report", str(bundle), "--public-key", public]) == 0
    results = bundle / "results.json"
    data = bytearray(results.read_bytes())
    data[len(data) // 2] ^= 0x01
    results.write_bytes(bytes(data))
    assert main(["verify-report", str(bundle), "--public-key", public]) == 1


def test_certify_without_inputs_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify"]) == 2
    assert capsys.readouterr().err.startswith("atoma-conformance: error: --results: required")
