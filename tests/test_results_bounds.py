"""What a target says is stored bounded: results.json keeps a head, the full length and a hash."""

from __future__ import annotations

import hashlib

from conformance.checks import CATALOGUE, Verdict
from conformance.results import MAX_EVIDENCE_CHARS, MAX_EVIDENCE_ITEMS, MAX_REASON_CHARS, CheckResult, bounded

CHECK = CATALOGUE[0]


def test_a_long_reason_keeps_its_head_its_length_and_a_hash() -> None:
    reason = "x" * 5_000_000
    stored = CheckResult.of(CHECK, Verdict("fail", reason)).reason
    digest = hashlib.sha256(reason.encode()).hexdigest()[:16]
    assert stored == f"{'x' * MAX_REASON_CHARS}… [5,000,000 characters, sha256 {digest}]"
    assert bounded("short", 10) == "short"


def test_evidence_strings_lists_and_maps_are_capped() -> None:
    evidence = {
        "key": "k" * 200_000,
        "members": [f"m{i}" for i in range(100_000)],
        "raw": b"\x00" * 10_000,
        "wide": {f"h{i}": i for i in range(1000)},
    }
    stored = CheckResult.of(CHECK, Verdict("fail", "r", evidence)).evidence
    assert len(stored["key"]) < MAX_EVIDENCE_CHARS + 60 and "200,000 characters" in stored["key"]
    assert len(stored["members"]) == MAX_EVIDENCE_ITEMS + 1
    assert stored["members"][-1] == f"… {100_000 - MAX_EVIDENCE_ITEMS} more of 100000 items"
    assert "20,000 characters" in stored["raw"]
    assert len(stored["wide"]) == MAX_EVIDENCE_ITEMS + 1 and stored["wide"]["…"].endswith("of 1000 entries")


def test_stored_strings_carry_no_raw_control_characters() -> None:
    spoof = "\x1b[2J\x1b[HPASS: every MUST check passed\x1b[8m"
    result = CheckResult.of(CHECK, Verdict("fail", spoof, {"code": spoof}))
    assert "\x1b" not in result.reason and result.reason.startswith("\\e[2J")
    assert result.evidence["code"] == result.reason
