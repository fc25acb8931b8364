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


def test_diff_json_is_one_object_with_the_verdict_and_the_exit_code(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(compat_results.read_text())
    fixed = json.loads(compat_results.read_text())
    for check in fixed["checks"]:
        check["outcome"] = "pass" if check["outcome"] in ("fail", "error") else check["outcome"]
    before = tmp_path / "before.json"
    before.write_text(json.dumps(fixed))
    assert main(["diff", str(before), str(compat_results), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "REGRESSED" and out["exit_code"] == 1 and out["must_regressions"] >= 1
    assert "NONCE-003" in {c["check_id"] for c in out["regressed"]}
    assert main(["diff", str(compat_results), str(compat_results), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["verdict"] == "OK" and same["exit_code"] == 0 and same["regressed"] == []
    doc["target"] = {**doc.get("target", {}), "node_public_key": "another key"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    assert main(["diff", str(compat_results), str(other), "--json"]) == 1
    changed = json.loads(capsys.readouterr().out)
    assert changed["verdict"] == "IDENTITY_CHANGED" and changed["key_or_signer_changed"] is True


def test_verify_report_json_and_a_bad_public_key(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "certifier.pem"
    assert main(["certify", "--generate-key", str(key)]) == 0
    public = capsys.readouterr().out.rsplit(" ", 1)[1].strip()
    bundle = tmp_path / "bundle"
    assert main(["certify", "--results", str(compat_results), "--out", str(bundle), "--key", str(key)]) == 0
    capsys.readouterr()
    assert main(["verify-report", str(bundle), "--public-key", public, "--json"]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok["verdict"] == "OK" and ok["ok"] is True and ok["exit_code"] == 0 and ok["public_key"] == public
    assert ok["public_key_pinned"] is True and ok["problems"] == [] and "results.json" in ok["files"]
    (bundle / "extra.txt").write_text("added later")
    assert main(["verify-report", str(bundle), "--json"]) == 1
    bad = json.loads(capsys.readouterr().out)
    assert bad["verdict"] == "NOT_OK" and bad["exit_code"] == 1 and bad["public_key_pinned"] is False
    assert any("extra.txt" in p for p in bad["problems"]) and bad["warnings"]
    assert main(["verify-report", str(bundle), "--public-key", "garbage", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("atoma-conformance: error: --public-key: not base64")


def test_verify_report_on_a_directory_that_is_no_bundle_is_not_run(
    compat_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-report", str(compat_results.parent)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atoma-conformance: error: BUNDLE_DIR: ") and "not a certification bundle" in err


def test_baseline_create_into_a_directory_names_out(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "create", str(compat_results), "--out", str(tmp_path), "--expires", "2999-01-01"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"atoma-conformance: error: --out: {tmp_path} is a directory; name a file to write"
    )


def test_a_run_that_trusted_the_test_ca_is_never_certified(
    compat_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trust-test-ca is for a mock: its KEY verdicts say nothing about a GPU, so certify refuses it."""
    import json

    key = tmp_path / "certifier.pem"
    assert main(["certify", "--generate-key", str(key)]) == 0
    data = json.loads(compat_results.read_text())
    assert data["options"]["trust_test_ca"] is False  # recorded on every run
    data["options"]["trust_test_ca"] = True
    tainted = tmp_path / "results.json"
    tainted.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["certify", "--results", str(tainted), "--out", str(tmp_path / "b"), "--key", str(key)]) == 2
    err = capsys.readouterr().err
    assert "--results" in err and "--trust-test-ca" in err and not (tmp_path / "b").exists()
