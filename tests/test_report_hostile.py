"""Hostile files and hostile targets against the report commands (issue 14).

A key file with a typo'd header, a bundle forged by flipping every outcome and re-signing it, a manifest
carrying escape sequences, a results file whose stored verdict lies, a symbolic link planted where a
report is written, and a target whose lock reply is megabytes of text: each must end in a one-line error
or a bounded, sanitised report, never in a leaked key, a false PASS or an overwritten file.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance.checks import CATALOGUE
from conformance.cli import main
from conformance.exits import UserError
from conformance.paths import write_atomic
from conformance.report import render
from conformance.report.baseline import Baseline, BaselineEntry, format_gate, gate, write_baseline
from conformance.report.certify import MANIFEST, RESULTS, SIGNATURE, canonical_json, load_signing_key, public_key_b64
from conformance.report.diff import diff, format_diff
from conformance.results import CheckResult, Results

ESC = "\x1b"
ANSI = "\x1b[2J\x1b[HPASS: every MUST check passed\x1b[8m"
KEY = "cVI+4eP5fwTRGvs3Ozlp1Qmj8saSXcSToixsxS/zBC4="
MUST_IDS = [c.id for c in CATALOGUE if c.level == "MUST"]


def results_doc(failing: dict[str, str] | None = None, **target: Any) -> dict[str, Any]:
    """A results.json over the real catalogue; ``failing`` maps check ids to their (failing) reason."""
    failing = failing or {}
    checks = [
        CheckResult(
            c.id,
            c.level,
            c.category,
            c.title,
            list(c.spec),
            "fail" if c.id in failing else "pass",
            failing.get(c.id, "ok"),
        )
        for c in CATALOGUE
    ]
    base = {"url": "http://127.0.0.1:1", "node_public_key": KEY, "signer_address": "0x" + "a" * 64}
    return Results({**base, **target}, checks, {"observations": 3, "reuses": 0}, 1795670098.8, 0.5, 9).to_json()


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def certifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    key = tmp_path / "certifier.pem"
    assert main(["certify", "--generate-key", str(key)]) == 0
    public = capsys.readouterr().out.rsplit(" ", 1)[1].strip()
    return key, public


def make_bundle(tmp_path: Path, key: Path, doc: dict[str, Any], name: str = "bundle") -> Path:
    results = write_json(tmp_path / f"{name}-results.json", doc)
    assert main(["certify", "--results", str(results), "--out", str(tmp_path / name), "--key", str(key)]) == 0
    return tmp_path / name


def resign(bundle: Path, key: Ed25519PrivateKey, change: Any = None) -> None:
    """Rewrite the manifest (files' digests, signer, anything ``change`` does to it) and sign it with ``key``."""
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    manifest["files"] = {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in manifest["files"]}
    manifest["certifier_public_key"] = public_key_b64(key)
    if change is not None:
        change(manifest)
    data = canonical_json(manifest)
    (bundle / MANIFEST).write_bytes(data)
    (bundle / SIGNATURE).write_bytes(base64.b64encode(key.sign(data)))


# --- keys ---------------------------------------------------------------------------------------------


def _pem(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "typo",
    [
        pytest.param(
            lambda pem: pem.replace(b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN PRIVATE KEY----", 1), id="dash-short"
        ),
        pytest.param(lambda pem: pem.replace(b"-----\n", b"----- ", 1), id="no-line-break"),
        pytest.param(lambda pem: pem.replace(b"PRIVATE KEY-----\n", b"PRIVATE KEY\n", 1), id="no-closing-dashes"),
        pytest.param(lambda pem: pem[1:], id="begin-dash-short"),
        pytest.param(
            lambda pem: pem.replace(b"-----BEGIN PRIVATE KEY-----\n", b"BEGIN PRIVATE KEY ", 1), id="no-dashes"
        ),
    ],
)
def test_a_typo_in_the_pem_header_never_prints_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typo: Any
) -> None:
    seed = bytes(range(0x41, 0x61))  # printable on purpose: a leak of the raw seed would be readable
    pem = _pem(seed)
    body = b"".join(pem.splitlines()[1:-1]).decode()
    key = tmp_path / "typo.pem"
    key.write_bytes(typo(pem))
    results = write_json(tmp_path / "results.json", results_doc())
    code = main(["certify", "--results", str(results), "--out", str(tmp_path / "b"), "--key", str(key)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("atoma-conformance: error: --key: ") and err.count("\n") == 1, err
    assert "PEM header" in err or "not an Ed25519 private key" in err, err
    shown = out + err
    for secret in (body, body[:16], body[-16:], seed.decode(), seed.hex(), base64.b64encode(seed).decode()[:12]):
        assert secret not in shown, secret
    assert not (tmp_path / "b").exists()


def test_a_pem_label_is_quoted_only_when_it_is_short_uppercase_words(tmp_path: Path) -> None:
    from conformance.report.certify import SigningKeyError, load_signing_key

    key = tmp_path / "k.pem"
    key.write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError, match="a PEM 'RSA PRIVATE KEY', not a PKCS8 private key"):
        load_signing_key(key)
    secretish = "MC4CAQAwBQYDK2VwBCIEI" + "Q" * 40
    key.write_bytes(f"-----BEGIN {secretish}-----\n".encode())
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key(key)
    assert "a malformed PEM header" in str(caught.value) and "MC4C" not in str(caught.value)


# --- verify-report: a forged bundle ---------------------------------------------------------------------


def forge(bundle: Path) -> Ed25519PrivateKey:
    """Flip every outcome to pass (counts and certification redone, as a careful forger would) and
    re-sign the bundle with a key of the forger's own."""
    doc = json.loads((bundle / RESULTS).read_bytes())
    for check in doc["checks"]:
        check["outcome"], check["reason"] = "pass", "ok"
    rebuilt = Results(doc["target"], [CheckResult(**c) for c in doc["checks"]])
    doc["counts"], doc["certification"] = rebuilt.counts(), rebuilt.certification()
    (bundle / RESULTS).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    forger = Ed25519PrivateKey.generate()
    resign(bundle, forger, lambda m: m.update(certification=doc["certification"]))
    return forger


def test_a_forged_bundle_is_not_verified_without_a_pinned_key(
    tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key, public = certifier
    bundle = make_bundle(tmp_path, key, results_doc(dict.fromkeys(MUST_IDS[:8], "refused")))
    forger = forge(bundle)
    capsys.readouterr()

    assert main(["verify-report", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("bundle NOT VERIFIED (integrity only, signer not pinned)")
    assert "MUST pass" not in out and "bundle OK" not in out

    assert main(["verify-report", str(bundle), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "INTEGRITY_ONLY" and doc["ok"] is False and doc["intact"] is True
    assert doc["exit_code"] == 1 and doc["certification"] is None and doc["public_key_pinned"] is False

    assert main(["verify-report", str(bundle), "--public-key", public]) == 1
    assert "not by the expected key" in capsys.readouterr().out

    trust = tmp_path / "trusted.keys"
    trust.write_text(f"# our certifiers\n\n{public}  # ops\n", encoding="utf-8")
    assert main(["verify-report", str(bundle), "--trust", str(trust)]) == 1
    assert "which is not a pinned or trusted key" in capsys.readouterr().out
    # The same trust file accepts a bundle its key signed; the forger's key, once trusted, is accepted.
    genuine = make_bundle(tmp_path, key, results_doc(), name="genuine")
    capsys.readouterr()
    assert main(["verify-report", str(genuine), "--trust", str(trust)]) == 0
    assert capsys.readouterr().out.startswith("bundle OK: ")
    trust.write_text(public_key_b64(forger) + "\n", encoding="utf-8")
    assert main(["verify-report", str(bundle), "--trust", str(trust)]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "lists no key"),
        ("# only a comment\n", "lists no key"),
        (f"{KEY}\nnot-a-key-but-a-secret-token\n", "line 2: not the base64 of a 32-byte Ed25519 public key"),
        (base64.b64encode(b"x" * 31).decode() + "\n", "line 1: not the base64"),
    ],
)
def test_a_bad_trust_file_is_one_line_naming_trust(
    tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bundle = make_bundle(tmp_path, certifier[0], results_doc())
    trust = tmp_path / "trust"
    trust.write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert main(["verify-report", str(bundle), "--trust", str(trust)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("atoma-conformance: error: --trust: ") and message in err
    assert "secret-token" not in err


# --- verify-report: what a manifest may print ----------------------------------------------------------


def test_a_manifest_with_escape_sequences_is_refused_and_printed_escaped(
    tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key, public = certifier
    bundle = make_bundle(tmp_path, key, results_doc())
    pem = load_signing_key(key)

    def poison(manifest: dict[str, Any]) -> None:
        manifest["created"] = ANSI
        manifest["bundle_version"] = ANSI * 1000

    resign(bundle, pem, poison)  # signed by the pinned certifier: only the field checks can refuse it
    for extra in ([], ["--json"]):
        assert main(["verify-report", str(bundle), "--public-key", public, *extra]) == 1
        out = capsys.readouterr().out
        assert ESC not in out and "\x9b" not in out
        assert "created is not an ISO 8601 UTC time" in out
        assert len(out) < 5000, len(out)


def test_created_must_be_an_iso_utc_timestamp() -> None:
    from conformance.report.certify import valid_created

    assert valid_created("2025-06-15T12:00:00Z")
    for bad in ("2025-06-15T12:00:00+00:00", "2025-02-30T12:00:00Z", "2025-06-15 12:00:00Z", ANSI, 1750000000, None):
        assert not valid_created(bad), bad


# --- certify: the stored verdict must be the checks' ----------------------------------------------------


def test_certify_refuses_results_whose_certification_disagrees_with_the_checks(
    tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = results_doc(dict.fromkeys(MUST_IDS[:8], "refused"))
    assert doc["certification"]["MUST"] == "fail"
    doc["certification"]["MUST"] = "pass"
    results = write_json(tmp_path / "lying.json", doc)
    out_dir = tmp_path / "bundle"
    assert main(["certify", "--results", str(results), "--out", str(out_dir), "--key", str(certifier[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atoma-conformance: error: --results: ") and err.count("\n") == 1
    assert "'certification' says MUST pass but its checks give MUST fail (8 MUST check(s) failed or errored)" in err
    assert not out_dir.exists()

    honest = copy.deepcopy(doc)
    honest["certification"]["MUST"] = "fail"
    assert main(["certify", "--results", str(write_json(tmp_path / "h.json", honest)), "--out", str(out_dir),
                 "--key", str(certifier[0])]) == 0  # fmt: skip


def test_verify_finds_a_results_file_whose_certification_disagrees(
    tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key, public = certifier
    bundle = make_bundle(tmp_path, key, results_doc(dict.fromkeys(MUST_IDS[:2], "refused")))
    doc = json.loads((bundle / RESULTS).read_bytes())
    doc["certification"]["MUST"] = "pass"
    (bundle / RESULTS).write_text(json.dumps(doc), encoding="utf-8")
    signer = load_signing_key(key)
    resign(bundle, signer, lambda m: m.update(certification=doc["certification"]))
    assert main(["verify-report", str(bundle), "--public-key", public]) == 1
    assert "'certification' says MUST pass but its checks give MUST fail" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("member", "message"),
    [("incomplete", "an interrupted run"), ("stopped_early", "the run guard stopped before it was done")],
)
def test_certify_refuses_a_run_that_did_not_finish(
    member: str, message: str, tmp_path: Path, certifier: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    value: object = True if member == "incomplete" else "target too slow: 3 exchanges in a row hit the read timeout"
    results = write_json(tmp_path / "partial.json", {**results_doc(), member: value})
    assert main(["certify", "--results", str(results), "--out", str(tmp_path / "b"), "--key", str(certifier[0])]) == 2
    assert message in capsys.readouterr().err


# --- writing reports: atomic, never through a link ------------------------------------------------------


def test_write_atomic_replaces_a_file_and_refuses_a_link(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_bytes(b"old")
    write_atomic(target, b"new", "--out")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "junit.xml"
    link.symlink_to(victim)
    with pytest.raises(UserError, match=r"^--out: .*junit\.xml is a symbolic link; not writing through it"):
        write_atomic(link, b"<xml/>", "--out")
    assert victim.read_bytes() == b"precious" and link.is_symlink()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="symbolic link"):
        write_atomic(dangling, b"x", "--out")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(UserError, match="exists; not overwriting it"):
        write_atomic(target, b"newer", "--out", exclusive=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(UserError, match="is a directory"):
        write_atomic(tmp_path, b"x", "--out")
    with pytest.raises(UserError, match="does not exist"):
        write_atomic(tmp_path / "no" / "such", b"x", "--out")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_secret_is_written_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "key", b"secret", "--out", mode=0o600)
        write_atomic(tmp_path / "report", b"public", "--out")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o666


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_text("precious\n", encoding="utf-8")
    return victim


def test_no_report_writer_follows_a_planted_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = _victim(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "junit.xml").symlink_to(victim)
    with pytest.raises(UserError, match=r"junit\.xml is a symbolic link"):
        render.write_all(results_doc(), reports)
    (reports / "results.json").symlink_to(victim)
    with pytest.raises(UserError, match=r"results\.json is a symbolic link"):
        Results({}, []).write(reports / "results.json")
    (reports / "baseline.json").symlink_to(victim)
    with pytest.raises(UserError, match=r"^--out: .*baseline\.json is a symbolic link"):
        write_baseline(reports / "baseline.json", Baseline())
    from conformance.clients import report as matrix_report
    from conformance.clients.runner import Matrix

    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "matrix.md").symlink_to(victim)
    with pytest.raises(UserError, match=r"^--report-dir: .*matrix\.md is a symbolic link"):
        matrix_report.write(Matrix(clients=[], started=0.0, duration_s=0.0, node_address="0x" + "0" * 64), clients)
    (tmp_path / "owner.key").symlink_to(victim)
    assert main(["keygen", "--out", str(tmp_path / "owner.key"), "--force"]) == 2
    assert "owner.key is a symbolic link" in capsys.readouterr().err
    assert victim.read_text(encoding="utf-8") == "precious\n"


def test_keygen_writes_an_owner_only_key_and_never_replaces_one_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "owner.key"
    assert main(["keygen", "--out", str(key)]) == 0
    first = key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(first) > 40
    assert main(["keygen", "--out", str(key)]) == 2
    assert key.read_bytes() == first
    key.chmod(0o644)
    assert main(["keygen", "--out", str(key), "--force"]) == 0
    assert key.read_bytes() != first and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["owner.key"]


def test_a_run_whose_junit_xml_is_a_link_ends_with_one_line_and_spares_the_victim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = _victim(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "junit.xml").symlink_to(victim)
    assert main(["run", "--report-dir", str(reports), "-m", "LOCK-001", "--progress", "never"]) == 2
    err = capsys.readouterr().err
    assert "atoma-conformance: error: " in err and "junit.xml is a symbolic link" in err and "Traceback" not in err
    assert victim.read_text(encoding="utf-8") == "precious\n"


# --- report sizes --------------------------------------------------------------------------------------


def huge_results(reason_chars: int = 1_000_000, key_chars: int = 200_000) -> dict[str, Any]:
    """Eight MUST failures whose reasons and evidence are a megabyte each, and a 200 KB key in the lock."""
    doc = results_doc(
        {i: ANSI + "\x9b31m" + "A" * reason_chars for i in MUST_IDS[:8]},
        url="http://x/" + "u" * key_chars,
        node_public_key="K" * key_chars,
        signer_address=ANSI + "S" * key_chars,
    )
    for check in doc["checks"]:
        if check["outcome"] == "fail":
            check["evidence"] = {
                "lock_reply": "B" * reason_chars,
                "items": list(range(10_000)),
                "deep": [[[[[[[[1]]]]]]]],
            }
    return doc


def test_huge_strings_make_bounded_reports(tmp_path: Path) -> None:
    doc = huge_results()
    paths = render.write_all(doc, tmp_path)
    summary = paths["summary"].read_bytes()
    assert len(summary) < render.SUMMARY_MAX_BYTES
    assert len(paths["html"].read_bytes()) < render.HTML_MAX_BYTES
    assert len(paths["junit"].read_bytes()) < render.JUNIT_MAX_BYTES
    text = summary.decode("utf-8")
    assert ESC not in text and "\x9b" not in text
    reason = next(c["reason"] for c in doc["checks"] if c["outcome"] == "fail")
    assert f"({len(reason)} characters in results.json)" in text  # the full length is stated
    assert "(200000 characters in results.json)" in text  # the node key, cut
    assert all(len(line) < 20_000 for line in text.splitlines())
    for check in doc["checks"]:
        if check["outcome"] == "fail":
            assert f"| {check['id']} |" in text  # every failure is still listed


def test_a_summary_of_thousands_of_failures_stays_under_a_mebibyte(tmp_path: Path) -> None:
    doc = results_doc()
    template = doc["checks"][0]
    doc["checks"] = [
        {**template, "id": f"X-{n}", "level": "MUST", "outcome": "fail", "reason": f"{n} " + "<&|>" * 300}
        for n in range(6000)
    ]
    doc.pop("counts")
    text = render.markdown_summary(doc)
    assert len(text.encode("utf-8")) < render.SUMMARY_MAX_BYTES
    assert "### Failing checks (6000)" in text
    shown = text.count("| X-")
    assert 100 < shown < 6000
    assert f"… {6000 - shown} more failures in report.html" in text
    page = render.html_report(doc)
    assert len(page.encode("utf-8")) < render.HTML_MAX_BYTES
    assert "more failing checks not shown" in page and "X-0" in page


def test_the_html_and_junit_caps_hold_even_when_rows_alone_exceed_them(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = huge_results(reason_chars=50_000, key_chars=100)
    monkeypatch.setattr(render, "HTML_MAX_BYTES", 60_000)
    monkeypatch.setattr(render, "JUNIT_MAX_BYTES", 20_000)
    page = render.html_report(doc)
    assert len(page.encode("utf-8")) <= 60_000 and "over the 60000-byte cap" in page and "FAIL" in page
    junit = render.junit_xml(doc)
    assert len(junit) <= 20_000 and b"over the 20000 cap" in junit and b"<failure" in junit


# --- terminal output -----------------------------------------------------------------------------------


def test_gate_diff_and_their_commands_print_no_escape_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime

    doc = results_doc({MUST_IDS[0]: ANSI, MUST_IDS[1]: "plain"}, node_public_key=ANSI)
    baseline = Baseline((BaselineEntry(MUST_IDS[1], ANSI + "\x9b2J", datetime.date(2999, 1, 1), "MUST"),))
    outcome = gate(doc, baseline, today=datetime.date(2026, 1, 1))
    printed = format_gate(outcome)
    assert MUST_IDS[0] in printed and "\\e[2J" in printed
    assert ESC not in printed and "\x9b" not in printed

    old = results_doc()
    changes = format_diff(diff(old, doc))
    assert "NODE IDENTITY CHANGED" in changes and MUST_IDS[0] in changes
    assert ESC not in changes

    old_path, new_path = write_json(tmp_path / "old.json", old), write_json(tmp_path / "new.json", doc)
    for extra in ([], ["--json"]):
        assert main(["diff", str(old_path), str(new_path), *extra]) == 1
        out = capsys.readouterr().out
        assert ESC not in out and "\x9b" not in out and MUST_IDS[0] in out
    base_path = tmp_path / "baseline.json"
    write_baseline(base_path, baseline)
    from conformance.report.command import gate_results

    assert gate_results(new_path, str(base_path)) == 1
    out = capsys.readouterr().out
    assert ESC not in out and "\x9b" not in out and "NEW MUST failures" in out
