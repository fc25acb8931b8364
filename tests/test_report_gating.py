"""Regression gating (baseline), run diffs and signed certification bundles, all from results.json.

The results documents are built with the real model (conformance/results.py) over the real catalogue:
a strict-profile run where everything passes, and a compat-profile run failing the same checks as the
embedded mock's atoma-node-compat profile.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conformance.checks import CATALOGUE
from conformance.exits import UserError
from conformance.report.baseline import (
    Baseline,
    BaselineEntry,
    BaselineError,
    ResultsError,
    create_baseline,
    format_gate,
    gate,
    load_baseline,
    parse_baseline,
    write_baseline,
)
from conformance.report.certify import (
    MANIFEST,
    RESULTS,
    SIGNATURE,
    BundleError,
    CertifyError,
    SigningKeyError,
    canonical_json,
    certify,
    format_verify,
    generate_key,
    load_signing_key,
    public_key_b64,
    verify_bundle,
)
from conformance.report.diff import diff, format_diff
from conformance.results import CheckResult, Results

TODAY = datetime.date(2025, 6, 15)

TARGET = {
    "url": "http://127.0.0.1:39281",
    "embedded": True,
    "profile": "strict",
    "model": "meta-llama/Llama-3.3-70B-Instruct",
    "node_address": "0x30e6ee4a6670abb2e68219c4f82b21692d38b3c4cccf6372ed6fba92f4e14b33",
    "node_public_key": "cVI+4eP5fwTRGvs3Ozlp1Qmj8saSXcSToixsxS/zBC4=",
    "signer_address": "0x30e6ee4a6670abb2e68219c4f82b21692d38b3c4cccf6372ed6fba92f4e14b33",
    "signature_scheme": "ed25519",
    "detected_profile": "strict",
}

# What the compat profile fails (as in a real `run --profile atoma-node-compat`): id -> reason.
COMPAT_MUST = {
    "LOCK-011": "another API key spent this key's lock",
    "NONCE-003": "AES-GCM nonce reuse under one key within a stream: chat_stream: 11",
    "NONCE-005": "27 (key, nonce) reuse(s): chat stream chunk[0] and chat stream chunk[1]",
    "ERR-008": "accepted with 200",
    "ERR-019": "leaked: err_wrong_hash: computed plaintext hash (byte list)",
    "ERR-017": "10 of 18 client-caused refusals are 5xx",
    "ERR-018": "1 refusal(s) without the JSON error shape: err_oversize",
}
COMPAT_SHOULD = {
    "ERR-023": "served anyway: accepted with 200",
    "REPLAY-001": "the node served the same request twice (replay accepted)",
}
LEVELS = {check.id: check.level for check in CATALOGUE}


@functools.cache
def _strict_json() -> str:
    checks = [CheckResult(c.id, c.level, c.category, c.title, list(c.spec), "pass", "ok", {}) for c in CATALOGUE]
    results = Results(dict(TARGET), checks, {"observations": 63, "reuses": 0}, 1795670098.8, 0.45, 72)
    return json.dumps(results.to_json())


def strict() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_strict_json())
    return doc


def with_outcomes(results: dict[str, Any], outcomes: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A copy of ``results`` with some checks' (outcome, reason) replaced, counts and verdicts redone."""
    doc = copy.deepcopy(results)
    missing = set(outcomes) - {c["id"] for c in doc["checks"]}
    assert not missing, missing
    for check in doc["checks"]:
        if check["id"] in outcomes:
            check["outcome"], check["reason"] = outcomes[check["id"]]
    rebuilt = Results(doc["target"], [CheckResult(**c) for c in doc["checks"]])
    doc["counts"], doc["certification"] = rebuilt.counts(), rebuilt.certification()
    return doc


def compat() -> dict[str, Any]:
    doc = with_outcomes(strict(), {i: ("fail", r) for i, r in {**COMPAT_MUST, **COMPAT_SHOULD}.items()})
    doc["target"].update(profile="atoma-node-compat", detected_profile="atoma-node-compat")
    return doc


def entry(check_id: str, expires: datetime.date, reason: str = "known", level: str | None = None) -> BaselineEntry:
    return BaselineEntry(check_id, reason, expires, level)


def known_compat(expires: datetime.date = TODAY) -> Baseline:
    return parse_baseline(create_baseline(compat(), expires=expires))


def test_the_fixtures_match_the_catalogue() -> None:
    assert all(LEVELS[i] == "MUST" for i in COMPAT_MUST)
    assert all(LEVELS[i] == "SHOULD" for i in COMPAT_SHOULD)
    doc = compat()
    assert doc["certification"] == {"MUST": "fail", "SHOULD": "fail", "INFO": "pass"}
    assert doc["counts"]["MUST"]["fail"] == 7 and doc["counts"]["SHOULD"]["fail"] == 2
    assert strict()["certification"]["MUST"] == "pass"


# --- gate: the four cases -----------------------------------------------------------------------


def test_new_must_failure_exits_1() -> None:
    baseline = Baseline(tuple(entry(i, TODAY) for i in COMPAT_MUST if i != "ERR-019"))
    outcome = gate(compat(), baseline, today=TODAY)
    assert outcome.exit_code == 1
    assert [i.check_id for i in outcome.new_failures] == ["ERR-019"]
    assert {i.check_id for i in outcome.known} == set(COMPAT_MUST) - {"ERR-019"}
    text = format_gate(outcome)
    assert text.startswith("baseline gate: FAIL (exit 1)")
    assert "ERR-019" in text.split("NEW MUST failures")[1].split("EXPIRED")[0]


def test_no_baseline_every_must_failure_is_new() -> None:
    outcome = gate(compat(), Baseline(), today=TODAY)
    assert outcome.exit_code == 1
    assert {i.check_id for i in outcome.new_failures} == set(COMPAT_MUST)
    assert {i.check_id for i in outcome.should_failures} == set(COMPAT_SHOULD)


def test_expired_entry_still_failing_exits_1() -> None:
    yesterday = TODAY - datetime.timedelta(days=1)
    baseline = Baseline(
        (entry("LOCK-011", yesterday, "tracked in OPS-1"), *(entry(i, TODAY) for i in list(COMPAT_MUST)[1:]))
    )
    outcome = gate(compat(), baseline, today=TODAY)
    assert outcome.exit_code == 1
    assert outcome.new_failures == []
    assert [i.check_id for i in outcome.expired] == ["LOCK-011"]
    # An entry is honoured through its expiry day.
    assert "LOCK-011" not in {i.check_id for i in outcome.known} and len(outcome.known) == len(COMPAT_MUST) - 1
    text = format_gate(outcome)
    assert "expires 2025-06-14 (expired 1 day(s) ago); reason: tracked in OPS-1" in text


def test_fixed_baselined_check_now_passing_is_flagged_exit_0() -> None:
    results = with_outcomes(compat(), {"LOCK-011": ("pass", "refused (425)")})
    outcome = gate(results, known_compat(), today=TODAY)
    assert outcome.exit_code == 0
    assert [i.check_id for i in outcome.fixed] == ["LOCK-011"]
    assert "LOCK-011" not in {i.check_id for i in outcome.known}
    text = format_gate(outcome)
    fixed_section = text.split("FIXED")[1]
    assert "LOCK-011" in fixed_section and "remove it from the baseline" in fixed_section


def test_all_known_exits_0_and_nothing_is_hidden() -> None:
    expires = TODAY + datetime.timedelta(days=30)
    outcome = gate(compat(), known_compat(expires), today=TODAY)
    assert outcome.exit_code == 0
    assert outcome.new_failures == outcome.expired == outcome.fixed == outcome.should_failures == []
    assert {i.check_id for i in outcome.known} == set(COMPAT_MUST) | set(COMPAT_SHOULD)
    text = format_gate(outcome)
    assert text.startswith("baseline gate: PASS (exit 0)")
    known_section = text.split("KNOWN failures")[1].split("FIXED")[0]
    for check_id in [*COMPAT_MUST, *COMPAT_SHOULD]:
        assert check_id in known_section
    assert known_section.count("expires 2025-07-15") == 9
    assert "LOCK-011     MUST   FAIL   another API key spent this key's lock" in known_section
    assert known_section.count("reason: as above") == 9  # create_baseline took the checks' own reasons
    accepted = Baseline((entry("LOCK-011", TODAY, "waiting for the second key"),))
    assert "reason: waiting for the second key" in format_gate(gate(compat(), accepted, today=TODAY))
    for title in ("NEW MUST failures", "EXPIRED", "KNOWN", "FIXED"):
        assert title in text


def test_should_failures_are_reported_but_never_change_the_exit_code() -> None:
    results = with_outcomes(strict(), {"ERR-023": ("fail", "served anyway"), "REPLAY-001": ("error", "no lock")})
    outcome = gate(results, Baseline(), today=TODAY)
    assert outcome.exit_code == 0
    assert {i.check_id for i in outcome.should_failures} == {"ERR-023", "REPLAY-001"}
    assert "ERR-023" in format_gate(outcome)
    expired = Baseline((entry("ERR-023", TODAY - datetime.timedelta(days=9)),))
    outcome = gate(results, expired, today=TODAY)
    assert outcome.exit_code == 0 and [i.check_id for i in outcome.expired] == ["ERR-023"]


def test_error_counts_as_failure_and_skip_as_neither() -> None:
    results = with_outcomes(strict(), {"LOCK-011": ("error", "no second key"), "LOCK-009": ("skip", "n/a")})
    outcome = gate(results, Baseline(), today=TODAY)
    assert outcome.exit_code == 1 and [i.check_id for i in outcome.new_failures] == ["LOCK-011"]
    baseline = Baseline((entry("LOCK-011", TODAY), entry("LOCK-009", TODAY), entry("LOCK-999", TODAY)))
    outcome = gate(results, baseline, today=TODAY)
    assert outcome.exit_code == 0
    assert [i.check_id for i in outcome.known] == ["LOCK-011"]
    assert {i.check_id: i.note for i in outcome.not_evaluated} == {
        "LOCK-009": "skipped in this run",
        "LOCK-999": "not in these results",
    }
    assert "NOT EVALUATED" in format_gate(outcome)


def test_an_entry_for_another_level_does_not_cover_a_promoted_check() -> None:
    outcome = gate(compat(), Baseline((entry("LOCK-011", TODAY, level="SHOULD"),)), today=TODAY)
    assert outcome.exit_code == 1
    item = next(i for i in outcome.new_failures if i.check_id == "LOCK-011")
    assert "baselined as SHOULD but the check is now MUST" in item.note
    covered = gate(compat(), Baseline((entry("LOCK-011", TODAY, level="MUST"),)), today=TODAY)
    assert "LOCK-011" in {i.check_id for i in covered.known}


def test_gate_refuses_something_that_is_not_results() -> None:
    with pytest.raises(ResultsError, match="no 'checks' list"):
        gate({"target": {}}, Baseline(), today=TODAY)
    bad = strict()
    bad["checks"][3]["outcome"] = "passed"
    with pytest.raises(ResultsError, match=r"checks\[3\]\.outcome"):
        gate(bad, Baseline(), today=TODAY)


def test_gate_outcome_serialises() -> None:
    outcome = gate(compat(), known_compat(), today=TODAY)
    doc = json.loads(json.dumps(outcome.to_json()))
    assert doc["exit_code"] == 0 and len(doc["known"]) == 9
    assert doc["known"][0]["baseline"]["expires"] == "2025-06-15"


# --- baseline files -----------------------------------------------------------------------------


def _good_entry(**changes: Any) -> dict[str, Any]:
    return {"check_id": "LOCK-011", "reason": "tracked", "expires": "2025-09-30", "level": "MUST", **changes}


def _doc(*entries: Any, **top: Any) -> dict[str, Any]:
    return {"baseline_version": 1, "entries": list(entries), **top}


BAD_BASELINES: list[tuple[Any, str]] = [
    (
        _doc(_good_entry(), _good_entry(check_id="ERR-017"), _good_entry(check_id="ERR-018", expires="2025-13-01")),
        "entries[2].expires: not a date (YYYY-MM-DD): '2025-13-01'",
    ),
    (_doc(_good_entry(expires="2025-9-30")), "entries[0].expires: not a date (YYYY-MM-DD)"),
    (_doc(_good_entry(expires="20250930")), "entries[0].expires: not a date (YYYY-MM-DD)"),
    (_doc(_good_entry(expires=20250930)), "entries[0].expires: not a date (YYYY-MM-DD): a number"),
    (_doc(_good_entry(), {"check_id": "ERR-017", "expires": "2025-09-30"}), "entries[1].reason: missing"),
    (_doc(_good_entry(reason="  ")), "entries[0].reason: must not be empty"),
    (_doc(_good_entry(reason=["x"])), "entries[0].reason: must be a string, not list"),
    (_doc(_good_entry(check_id=11)), "entries[0].check_id: must be a string, not number"),
    (_doc(_good_entry(check_id="lock 11")), "entries[0].check_id: not a check id"),
    (_doc({"reason": "r", "expires": "2025-09-30"}), "entries[0].check_id: missing"),
    (_doc(_good_entry(), _good_entry(reason="again")), "entries[1].check_id: duplicate of entries[0] (LOCK-011)"),
    (_doc(_good_entry(level="MAY")), "entries[0].level: must be one of MUST, SHOULD"),
    (_doc(_good_entry(level="INFO")), "entries[0].level: must be one of MUST, SHOULD"),
    (_doc(_good_entry(owner="me")), "entries[0].owner: unknown field"),
    (_doc("LOCK-011"), "entries[0]: must be an object, not string"),
    (_doc(_good_entry(), comment=3), "comment: must be a string"),
    (_doc(_good_entry(), extra=True), "extra: unknown field"),
    ({"entries": []}, "baseline_version: missing"),
    (_doc(baseline_version=2), "baseline_version: unsupported version 2"),
    (_doc(baseline_version="1"), "baseline_version: must be an integer, not string"),
    (_doc(baseline_version=True), "baseline_version: must be an integer, not boolean"),
    ({"baseline_version": 1}, "entries: missing"),
    ({"baseline_version": 1, "entries": {}}, "entries: must be a list, not object"),
    ([], "must be a JSON object, not list"),
]


@pytest.mark.parametrize(("doc", "message"), BAD_BASELINES, ids=[m.split(":")[0] or m for _, m in BAD_BASELINES])
def test_bad_baseline_is_refused_naming_the_field(tmp_path: Path, doc: Any, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_baseline(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"--baseline: {path}: ")
    with pytest.raises(BaselineError) as parsed:
        parse_baseline(doc, source=str(path))
    assert parsed.value.location == message.split(":")[0] or not parsed.value.location


def test_unreadable_baseline_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^--baseline: .*no such file"):
        load_baseline(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"baseline_version": 1,\n "entries": [}', encoding="utf-8")
    with pytest.raises(UserError, match=r"not JSON \(.* at line 2 column"):
        load_baseline(broken)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(UserError, match="not UTF-8"):
        load_baseline(binary)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"^--baseline: .*not a regular file"):
        load_baseline(fifo)  # refused, not read: reading a FIFO with no writer would block forever


def test_a_good_baseline_loads(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    doc = _doc(_good_entry(), {"check_id": "ERR-017", "reason": "r", "expires": "2024-02-29"}, comment="c")
    path.write_text(json.dumps(doc), encoding="utf-8")
    baseline = load_baseline(path)
    assert baseline.comment == "c"
    assert baseline.entries[1] == BaselineEntry("ERR-017", "r", datetime.date(2024, 2, 29), None)
    assert baseline.get("LOCK-011") == BaselineEntry("LOCK-011", "tracked", datetime.date(2025, 9, 30), "MUST")
    assert baseline.get("LOCK-001") is None
    assert baseline.to_json() == doc


def test_create_baseline_round_trip(tmp_path: Path) -> None:
    results = with_outcomes(compat(), {"LOCK-012": ("fail", "key changed"), "LOCK-001": ("error", "")})
    expires = datetime.date(2025, 12, 31)
    doc = create_baseline(results, expires=expires)
    assert doc["baseline_version"] == 1
    # MUST and SHOULD failures and errors, in run order; INFO (LOCK-012) never.
    ids = [e["check_id"] for e in doc["entries"]]
    assert set(ids) == {"LOCK-001", *COMPAT_MUST, *COMPAT_SHOULD}
    assert ids == [c["id"] for c in results["checks"] if c["id"] in set(ids)]
    by_id = {e["check_id"]: e for e in doc["entries"]}
    assert by_id["LOCK-011"] == {
        "check_id": "LOCK-011",
        "level": "MUST",
        "expires": "2025-12-31",
        "reason": COMPAT_MUST["LOCK-011"],
    }
    assert by_id["ERR-017"]["level"] == "MUST"
    assert by_id["LOCK-001"]["reason"] == "error when the baseline was created"

    path = tmp_path / "baseline.json"
    write_baseline(path, doc)
    loaded = load_baseline(path)
    assert loaded.to_json() == doc
    assert gate(results, loaded, today=expires).exit_code == 0
    assert gate(results, loaded, today=expires + datetime.timedelta(days=1)).exit_code == 1

    given = create_baseline(results, reason="accepted until the node upgrade", expires=expires)
    assert {e["reason"] for e in given["entries"]} == {"accepted until the node upgrade"}
    assert create_baseline(strict(), expires=expires)["entries"] == []

    with pytest.raises(BaselineError, match=r"entries\[0\]\.reason: missing"):
        write_baseline(tmp_path / "bad.json", _doc({"check_id": "LOCK-011", "expires": "2025-01-01"}))
    assert not (tmp_path / "bad.json").exists()


# --- diff ---------------------------------------------------------------------------------------


def test_diff_regressions_and_fixes() -> None:
    forward = diff(strict(), compat())
    assert {c.check_id for c in forward.regressed} == set(COMPAT_MUST) | set(COMPAT_SHOULD)
    assert {c.check_id for c in forward.must_regressions} == set(COMPAT_MUST)
    assert forward.fixed == forward.changed == forward.added == forward.removed == []
    assert not forward.key_or_signer_changed
    assert [c.name for c in forward.fingerprint] == ["detected_profile"]
    text = format_diff(forward)
    assert "!!" not in text
    assert "9 regressed (7 MUST)" in text and "REGRESSED" in text
    assert "LOCK-011" in text and "pass -> fail" in text

    backward = diff(compat(), strict())
    assert {c.check_id for c in backward.fixed} == set(COMPAT_MUST) | set(COMPAT_SHOULD)
    assert backward.regressed == []
    assert "fail -> pass" in format_diff(backward)


def test_diff_other_changes_added_removed_and_levels() -> None:
    old = with_outcomes(compat(), {"LOCK-009": ("skip", "n/a")})
    new = with_outcomes(
        compat(), {"LOCK-009": ("pass", "ok"), "LOCK-011": ("error", "no key"), "LOCK-003": ("skip", "")}
    )
    new["checks"] = [c for c in new["checks"] if c["id"] != "ERR-008"]
    new["checks"].append({**new["checks"][0], "id": "LOCK-099", "outcome": "fail", "reason": "new check"})
    new["checks"][0]["level"] = "SHOULD"
    d = diff(old, new)
    assert {(c.check_id, c.old_outcome, c.new_outcome) for c in d.changed} == {
        ("LOCK-009", "skip", "pass"),
        ("LOCK-011", "fail", "error"),
        ("LOCK-003", "pass", "skip"),
    }
    assert d.regressed == d.fixed == []
    assert [(c.check_id, c.new_outcome) for c in d.added] == [("LOCK-099", "fail")]
    assert [(c.check_id, c.old_outcome) for c in d.removed] == [("ERR-008", "fail")]
    assert [(c.check_id, c.old_level, c.level) for c in d.level_changed] == [("LOCK-001", "MUST", "SHOULD")]
    text = format_diff(d)
    for title in ("CHANGED", "NEW checks", "REMOVED checks", "LEVEL CHANGED"):
        assert title in text
    assert json.loads(json.dumps(d.to_json()))["added"][0]["check_id"] == "LOCK-099"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node_public_key", base64.b64encode(bytes(32)).decode()),
        ("signer_address", "0x" + "ab" * 32),
        ("signature_scheme", "secp256k1"),
    ],
)
def test_diff_flags_a_key_or_signer_change_first(field: str, value: str) -> None:
    new = strict()
    new["target"][field] = value
    new["target"]["url"] = "https://node.example"
    d = diff(strict(), new)
    assert d.key_or_signer_changed
    assert {c.name for c in d.fingerprint} == {field, "url"}
    lines = format_diff(d).splitlines()
    assert lines[0].startswith("!! NODE IDENTITY CHANGED")
    assert lines[1] == f"!!   {field}: {TARGET[field]} -> {value}"
    assert "  url: http://127.0.0.1:39281 -> https://node.example" in lines
    assert not any(line.startswith("!!") for line in lines[2:])


def test_diff_of_identical_runs_and_suite_changes() -> None:
    same = diff(strict(), strict())
    assert same.empty and format_diff(same) == "no differences"
    newer = strict()
    newer["suite_version"] = "0.2.0"
    del newer["target"]["detected_profile"]
    d = diff(strict(), newer)
    assert [c.name for c in d.suite] == ["suite_version"] and not d.key_or_signer_changed
    assert "detected_profile: strict -> (none)" in format_diff(d)
    assert "suite changed" in format_diff(d)


# --- certification bundles ----------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "certifier.pem"
    path.parent.mkdir()
    generate_key(path)
    return path


@pytest.fixture
def bundle(tmp_path: Path, key_file: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(compat(), indent=2) + "\n", encoding="utf-8")
    (run / "report.html").write_text("<html><body>report</body></html>\n", encoding="utf-8")
    (run / "junit.xml").write_text('<?xml version="1.0"?><testsuite tests="96"/>\n', encoding="utf-8")
    return certify(
        run / "results.json", tmp_path / "bundle", key_file, artefacts=[run / "report.html", run / "junit.xml"]
    )


def _public(key_file: Path) -> str:
    return public_key_b64(load_signing_key(key_file))


def test_generate_key_writes_a_private_pem(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    public = generate_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(base64.b64decode(public)) == 32 and _public(path) == public
    with pytest.raises(SigningKeyError, match=f"{path}: already exists"):
        generate_key(path)
    assert _public(path) == public


def test_a_bundle_verifies(bundle: Path, key_file: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == [
        "junit.xml",
        MANIFEST,
        SIGNATURE,
        "report.html",
        RESULTS,
    ]
    raw = (bundle / MANIFEST).read_bytes()
    manifest = json.loads(raw)
    assert canonical_json(manifest) == raw and b"\n" not in raw
    assert manifest["bundle_version"] == 1
    results = json.loads((bundle / RESULTS).read_bytes())
    assert manifest["suite_version"] == results["suite_version"]
    assert manifest["vector_set_digest"] == results["vector_set_digest"] is not None
    assert manifest["certification"] == {"MUST": "fail", "SHOULD": "fail", "INFO": "pass"}
    assert manifest["certifier_public_key"] == _public(key_file)
    assert manifest["created"].endswith("Z")
    datetime.datetime.fromisoformat(manifest["created"])
    assert manifest["files"] == {
        name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in (RESULTS, "report.html", "junit.xml")
    }
    assert len(base64.b64decode((bundle / SIGNATURE).read_bytes(), validate=True)) == 64

    outcome = verify_bundle(bundle, expected_public_key=_public(key_file))
    assert outcome.ok and outcome.certified and outcome.problems == [] and outcome.warnings == []
    assert outcome.public_key == _public(key_file)
    assert format_verify(outcome).startswith("bundle OK: 3 file(s) signed by the pinned key")
    unpinned = verify_bundle(bundle)
    assert unpinned.ok and not unpinned.certified and "signer not pinned" in unpinned.warnings[0]
    assert format_verify(unpinned).startswith("bundle NOT VERIFIED (integrity only, signer not pinned)")
    assert "certification" not in format_verify(unpinned).split("\n")[0].replace("certification is not shown", "")
    trusted = verify_bundle(
        bundle, trusted_public_keys=[public_key_b64(Ed25519PrivateKey.generate()), _public(key_file)]
    )
    assert trusted.certified


def test_changing_any_byte_of_any_file_is_detected(bundle: Path, key_file: Path) -> None:
    expected = _public(key_file)
    files = sorted(p for p in bundle.iterdir())
    assert len(files) == 5
    tried = 0
    for path in files:
        original = path.read_bytes()
        size = len(original)
        positions = sorted({0, 1, 2, size // 3, size // 2, 2 * size // 3, size - 3, size - 2, size - 1})
        for position in positions:
            for mask in (0x01, 0x20, 0x80):
                tampered = bytearray(original)
                tampered[position] ^= mask
                path.write_bytes(bytes(tampered))
                for pinned in (expected, None):
                    outcome = verify_bundle(bundle, expected_public_key=pinned)
                    assert not outcome.ok, (path.name, position, mask, pinned)
                    assert outcome.problems
                tried += 1
        path.write_bytes(original)
        assert verify_bundle(bundle, expected_public_key=expected).ok
    assert tried >= 5 * 9 * 3 - 10


def test_every_byte_of_the_manifest_and_signature_is_covered(bundle: Path, key_file: Path) -> None:
    # The signed files are where encoding slack (whitespace, non-canonical base64) could hide a change.
    expected = _public(key_file)
    for name in (SIGNATURE, MANIFEST):
        path = bundle / name
        original = path.read_bytes()
        for position in range(len(original)):
            tampered = bytearray(original)
            tampered[position] ^= 0x01
            path.write_bytes(bytes(tampered))
            assert not verify_bundle(bundle, expected_public_key=expected).ok, (name, position)
        path.write_bytes(original)
    assert verify_bundle(bundle, expected_public_key=expected).ok


def test_appended_or_truncated_bytes_are_detected(bundle: Path) -> None:
    for path in sorted(bundle.iterdir()):
        original = path.read_bytes()
        for changed in (original + b"\n", original + b" ", original[:-1], b"", original[1:]):
            path.write_bytes(changed)
            assert not verify_bundle(bundle).ok, (path.name, changed[-3:])
        path.write_bytes(original)
    assert verify_bundle(bundle).ok


def test_an_extra_or_missing_file_is_detected(bundle: Path) -> None:
    (bundle / "notes.txt").write_text("added later\n", encoding="utf-8")
    outcome = verify_bundle(bundle)
    assert not outcome.ok
    assert outcome.problems == ["notes.txt: present in the bundle but not listed in the manifest"]
    (bundle / "notes.txt").unlink()
    (bundle / ".hidden").mkdir()
    assert verify_bundle(bundle).problems == [".hidden: present in the bundle but not listed in the manifest"]
    (bundle / ".hidden").rmdir()

    (bundle / "junit.xml").unlink()
    assert verify_bundle(bundle).problems == ["junit.xml: missing from the bundle"]
    (bundle / SIGNATURE).unlink()
    assert f"{SIGNATURE}: missing from the bundle" in verify_bundle(bundle).problems
    (bundle / MANIFEST).unlink()
    outcome = verify_bundle(bundle)
    assert not outcome.ok and f"{MANIFEST}: missing from the bundle" in outcome.problems
    assert format_verify(outcome).startswith("bundle NOT OK")


def test_a_replaced_file_is_detected(bundle: Path) -> None:
    (bundle / "report.html").unlink()
    (bundle / "report.html").symlink_to(bundle / RESULTS)
    assert "report.html: not a regular file" in verify_bundle(bundle).problems
    (bundle / "report.html").unlink()
    (bundle / "report.html").mkdir()
    assert "report.html: not a regular file" in verify_bundle(bundle).problems


def test_a_wrong_expected_key_is_detected(bundle: Path, tmp_path: Path) -> None:
    other = generate_key(tmp_path / "other.pem")
    outcome = verify_bundle(bundle, expected_public_key=other)
    assert not outcome.ok
    assert any("not by the expected key" in p for p in outcome.problems)
    assert f"{SIGNATURE}: the signature over {MANIFEST} does not verify" in outcome.problems
    with pytest.raises(ValueError, match="expected_public_key"):
        verify_bundle(bundle, expected_public_key="not a key")
    with pytest.raises(ValueError, match="expected_public_key"):
        verify_bundle(bundle, expected_public_key=base64.b64encode(bytes(31)).decode())


def test_a_bundle_re_signed_by_someone_else_fails_only_when_the_key_is_pinned(
    bundle: Path, key_file: Path, tmp_path: Path
) -> None:
    forger = Ed25519PrivateKey.generate()
    manifest = json.loads((bundle / MANIFEST).read_bytes())
    manifest["certification"]["MUST"] = "pass"
    manifest["certifier_public_key"] = public_key_b64(forger)
    data = canonical_json(manifest)
    (bundle / MANIFEST).write_bytes(data)
    (bundle / SIGNATURE).write_bytes(base64.b64encode(forger.sign(data)))
    # Intact and self-consistent as a manifest, but it no longer matches the results it carries...
    unpinned = verify_bundle(bundle)
    assert unpinned.problems == [f"{RESULTS}: certification differs from the manifest's"]
    # ...and with the certifier's key pinned the forgery itself is found.
    pinned = verify_bundle(bundle, expected_public_key=_public(key_file))
    assert any("not by the expected key" in p for p in pinned.problems)


def test_a_non_canonical_manifest_is_reported(bundle: Path, key_file: Path) -> None:
    key = load_signing_key(key_file)
    pretty = json.dumps(json.loads((bundle / MANIFEST).read_bytes()), indent=1).encode()
    (bundle / MANIFEST).write_bytes(pretty)
    (bundle / SIGNATURE).write_bytes(base64.b64encode(key.sign(pretty)))
    outcome = verify_bundle(bundle, expected_public_key=_public(key_file))
    assert outcome.problems == [f"{MANIFEST}: not in canonical form (sorted keys, compact, ASCII)"]


def test_verify_raises_only_on_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle directory"):
        verify_bundle(tmp_path / "nope")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(BundleError, match="not a directory"):
        verify_bundle(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = verify_bundle(empty)
    assert not outcome.ok and f"{MANIFEST}: missing from the bundle" in outcome.problems


def test_key_inputs_all_give_the_same_key(tmp_path: Path) -> None:
    seed = bytes(range(1, 33))
    expected = public_key_b64(Ed25519PrivateKey.from_private_bytes(seed))
    raw = tmp_path / "seed.bin"
    raw.write_bytes(seed)
    b64 = tmp_path / "seed.b64"
    b64.write_text(base64.b64encode(seed).decode() + "\n", encoding="ascii")
    pem = tmp_path / "seed.pem"
    pem.write_bytes(
        Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for source in (raw, str(raw), b64, pem, seed, pem.read_bytes(), base64.b64encode(seed)):
        assert public_key_b64(load_signing_key(source)) == expected, source


def test_key_loading_errors_name_the_file(tmp_path: Path) -> None:
    def refused(name: str, data: bytes, message: str) -> None:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(SigningKeyError) as caught:
            load_signing_key(path)
        text = str(caught.value)
        assert text.startswith(f"{path}: ") and message in text, text

    refused("short.bin", bytes(range(31)), "not an Ed25519 private key (31 bytes)")
    refused("long.b64", base64.b64encode(bytes(range(48))), "base64 of 48 bytes, not of a 32-byte Ed25519 seed")
    refused("text.key", b"correct horse battery staple!!!!", "32 bytes of printable text")
    refused("hello.txt", b"hello world\n", "not an Ed25519 private key")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = serialization.PrivateFormat.PKCS8
    refused(
        "p256.pem", ec_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()), "not Ed25519"
    )
    ed = Ed25519PrivateKey.generate()
    encrypted = ed.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.BestAvailableEncryption(b"pw"))
    refused("enc.pem", encrypted, "an encrypted PEM key")
    public_pem = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refused("pub.pem", public_pem, "a PEM 'PUBLIC KEY', not a PKCS8 private key")
    refused("openssh.key", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "OPENSSH")
    refused("broken.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "malformed PKCS8 PEM")
    with pytest.raises(SigningKeyError, match=f"{tmp_path / 'missing.pem'}: no such key file"):
        load_signing_key(tmp_path / "missing.pem")
    with pytest.raises(SigningKeyError, match="is a directory"):
        load_signing_key(tmp_path)
    with pytest.raises(SigningKeyError, match="<key bytes>: not an Ed25519 private key"):
        load_signing_key(b"\x00" * 5)


def test_certify_refuses_bad_inputs(tmp_path: Path, key_file: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(strict()), encoding="utf-8")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x", encoding="utf-8")
    with pytest.raises(CertifyError, match=f"{occupied}: not empty"):
        certify(results, occupied, key_file)
    with pytest.raises(CertifyError, match="reserved"):
        certify(results, tmp_path / "b1", key_file, artefacts=[tmp_path / "sub" / MANIFEST])
    with pytest.raises(CertifyError, match="no such artefact file"):
        certify(results, tmp_path / "b2", key_file, artefacts=[tmp_path / "report.html"])
    not_results = tmp_path / "other.json"
    not_results.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(CertifyError, match=f"{not_results}: results: no 'checks' list"):
        certify(not_results, tmp_path / "b3", key_file)
    not_json = tmp_path / "broken.json"
    not_json.write_text("{", encoding="utf-8")
    with pytest.raises(CertifyError, match=f"{not_json}: not a JSON results file"):
        certify(not_json, tmp_path / "b4", key_file)
    with pytest.raises(SigningKeyError, match="no such key file"):
        certify(results, tmp_path / "b5", tmp_path / "nokey.pem")
    assert not any((tmp_path / f"b{i}").exists() for i in range(1, 6))

    # A raw seed works as well as a PEM, and an empty existing directory is fine.
    (tmp_path / "b6").mkdir()
    seed = Ed25519PrivateKey.generate()
    created = datetime.datetime(2025, 6, 15, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    out = certify(results, tmp_path / "b6", seed, created=created)
    outcome = verify_bundle(out, expected_public_key=public_key_b64(seed))
    assert outcome.ok and outcome.manifest is not None
    assert outcome.manifest["created"] == "2025-06-15T12:00:00Z"
    assert outcome.manifest["certification"]["MUST"] == "pass"
