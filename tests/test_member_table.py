"""The member table (conformance/member_table.py): each encoding, length and type rule over every member
it covers, sent by the suite (cover by default, every case with --member-table full) and by the fuzzer's
sweep, and judged by the same checks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from conformance import member_table
from conformance.checks import CATALOGUE, Run, Target
from conformance.checks.probes import MEMBER_TABLE, MEMBER_TABLE_FULL
from conformance.client import ConfidentialClient
from conformance.embedded import embedded_target
from conformance.estimate import estimate_run
from conformance.fuzz.campaign import sweep_plan
from conformance.fuzz.sweep import TABLE_FAMILY
from conformance.member_table import BODY, COLUMNS, COVER, ROWS, TABLE, Case
from conformance.protocol import ConfidentialComputeRequest, ProtocolError, jsonwire, seal_request
from conformance.protocol.primitives import x25519_public_key
from conformance.strategies import NotProducible, mutation

TABLE_CHECKS = ("ERR-009", "ERR-010", "ERR-014", "ERR-015", "ERR-024", "ERR-035")
BY_ID = {check.id: check for check in CATALOGUE}


def test_the_table_is_every_rule_on_every_member_it_covers() -> None:
    cells = member_table.grid()
    assert len(TABLE) == 85 and len(cells) == 68  # the numbers the closing note and docs give
    assert {case.member for case in TABLE} == set(ROWS)
    assert {case.rule for case in TABLE} == set(COLUMNS)
    # Every binary member carries every encoding rule (but the two a 12-byte nonce cannot carry) ...
    for member in member_table.BINARY:
        rules = {rule for (row, rule) in cells if row == member}
        wanted = {"missing", "null", "wrong type", "URL-safe alphabet", "whitespace", "surplus padding", "too short"}
        assert wanted <= rules, member
        assert ("trailing bits" in rules) == ("no padding" in rules) == (member != "nonce")
    # ... every fixed-length member both wrong lengths, and every value R3.11 names for stack_small_id.
    for member in member_table.FIXED_LENGTH:
        assert cells[member, "too long"] == 1 and cells[member, "too short"] == 1
    stack = [case.mutation.params for case in TABLE if case.member == "stack_small_id"]
    for value in (("stack_small_id", "string"), ("stack_small_id", "boolean"), ("stack_small_id", "float")):
        assert value in stack
    for form in ("exponent", "negative", "above-u64"):
        assert ("stack_small_id", form) in stack
    assert len({case.describe() for case in TABLE}) == len(TABLE), "two cases with one description"


def test_the_cover_holds_every_row_every_column_and_every_check() -> None:
    assert {case.member for case in COVER} == set(ROWS)
    assert {case.rule for case in COVER} == set(COLUMNS)
    assert {case.check_id for case in COVER} == set(TABLE_CHECKS)
    assert set(COVER) <= set(TABLE)


def test_every_table_check_reads_both_depths_and_cites_its_family_requirements() -> None:
    for check_id in TABLE_CHECKS:
        check = BY_ID[check_id]
        assert {MEMBER_TABLE.name, MEMBER_TABLE_FULL.name} <= set(check.probes)
        for case in TABLE:
            if case.check_id == check_id:
                assert set(case.mutation.spec_refs) <= set(check.spec), (check_id, case.describe())


def _sealed() -> dict[str, Any]:
    node_key = x25519_public_key(bytes(range(1, 33)))
    sealed = seal_request(
        b'{"model":"m","messages":[]}', node_public_key=node_key, model_name="m", stack_small_id=7, stream=False
    )
    envelope: dict[str, Any] = sealed.request.to_json()
    return envelope


@pytest.mark.parametrize("case", TABLE, ids=lambda c: c.describe())
def test_every_case_is_refused_by_the_core_and_changes_only_its_member(case: Case) -> None:
    envelope = _sealed()
    for _ in range(64):
        try:
            body = case.mutation.apply(dict(envelope))
            break
        except NotProducible:
            envelope = _sealed()  # fresh keys, salt and nonce
    else:
        pytest.fail(f"{case.describe()} was never producible")
    with pytest.raises(ProtocolError):
        _strictly_decoded(body)
    if case.member != BODY:
        import json

        try:
            sent = json.loads(body)
        except ValueError:
            return  # a number form (1e0, 2^64) that only the exact text shows
        changed = {k for k in set(sent) | set(envelope) if _as_json(sent, k) != _as_json(envelope, k)}
        assert changed == {case.member}, case.describe()


def _strictly_decoded(body: bytes) -> object:
    """The core's parse, then its strict decoding (lengths and canonical base64)."""
    return ConfidentialComputeRequest.parse(body).decode()


def _as_json(envelope: dict[str, Any], key: str) -> bytes | None:
    return jsonwire.dumps(envelope[key]) if key in envelope else None  # 7.0 and 7 differ on the wire


def test_a_case_that_cannot_be_made_says_so_and_is_never_sent() -> None:
    envelope = _sealed()
    envelope["node_dh_public_key"] = "A" * 43 + "="  # no '+' or '/': its URL-safe form is itself
    urlsafe = mutation("base64-urlsafe", "node_dh_public_key", True)
    with pytest.raises(NotProducible, match="node_dh_public_key"):
        urlsafe.apply(envelope)
    with pytest.raises(NotProducible):
        mutation("base64-unpadded", "nonce").apply(envelope)
    # The fuzzer family keeps its fallback (another member with '+' or '/', else a space).
    fallback = jsonwire.loads_object(mutation("base64-urlsafe", "node_dh_public_key").apply(envelope))
    assert fallback["node_dh_public_key"] == envelope["node_dh_public_key"]
    assert any(fallback[m] != envelope[m] for m in member_table.BINARY)


def _run(fault: str | None, *, depth: str, face: str = "proxy") -> dict[str, Any]:
    with embedded_target("strict", [fault] if fault else [], face=face) as embedded:  # type: ignore[arg-type]
        target: Target = embedded.target
        target.member_table = depth
        client = ConfidentialClient(target.base_url, target.api_key, node_face=embedded.node_face)
        try:
            run = Run(target, client, sleep=embedded.sleep)
            results = {check_id: BY_ID[check_id].run(run) for check_id in TABLE_CHECKS}
            return {"results": results, "requests": client.requests_sent}
        finally:
            client.close()


@pytest.mark.parametrize("face", ["proxy", "node"])
def test_the_full_table_passes_the_strict_mock_case_by_case(face: str) -> None:
    outcome = _run(None, depth="full", face=face)
    counts = Counter(case.check_id for case in TABLE)
    for check_id, result in outcome["results"].items():
        assert result.outcome == "pass", (check_id, result.reason)
        assert result.evidence.depth == "full" and result.evidence.cases == counts[check_id]
        assert set(result.evidence.statuses) == {400}


def test_a_rule_broken_on_one_member_only_fails_in_the_cover_and_names_that_member() -> None:
    """The independent nodes' defect: strict base64 everywhere but on node_dh_public_key. The single
    URL-safe ciphertext probe the suite sent before the table passed such a node."""
    cover = _run("lenient-node-key-base64", depth="cover")["results"]
    assert cover["ERR-014"].outcome == "fail"
    assert cover["ERR-014"].evidence.failed == ("node_dh_public_key: whitespace",)
    assert cover["ERR-015"].outcome == "pass"  # its cover case (the hash's surplus '=') is not on that member
    full = _run("lenient-node-key-base64", depth="full")["results"]
    failed = full["ERR-014"].evidence.failed + full["ERR-015"].evidence.failed
    assert failed and all(label.startswith("node_dh_public_key: ") for label in failed)
    assert {label.split(": ")[1] for label in failed} == {
        "URL-safe alphabet",
        "whitespace",
        "trailing bits",
        "no padding",
        "surplus padding",
    }
    ciphertext_urlsafe = [c for c in TABLE if c.label == "ciphertext: URL-safe alphabet"]
    assert ciphertext_urlsafe and all(label != ciphertext_urlsafe[0].label for label in failed)


def test_a_refusal_for_an_earlier_cause_is_not_evaluated_never_a_pass() -> None:
    """A target that answers the cases 425 (no lock) or 429 before any member rule is reached has shown
    nothing about the rules: no table check passes. (The strict mock validates the envelope before it
    looks for a lock, so the answers are re-labelled here, after a real run.)"""
    with embedded_target("strict", []) as embedded:
        client = ConfidentialClient(embedded.target.base_url, embedded.target.api_key)
        try:
            run = Run(embedded.target, client, sleep=embedded.sleep)
            table = run.get(MEMBER_TABLE)
            for answer in table.answers:
                assert answer is not None and answer.http.status == 400
                answer.http.status = 425
            results = {check_id: BY_ID[check_id].run(run) for check_id in TABLE_CHECKS}
            for check_id, result in results.items():
                assert result.outcome == "error", (check_id, result.reason)  # the suite's "not evaluated"
                assert result.reason.startswith("not evaluated:") and "425" in result.reason
            # One case that a target serves still fails the check, whatever the others say.
            first = table.answers[0]
            assert first is not None
            first.http.status = 200
            assert BY_ID[COVER[0].check_id].run(run).outcome == "fail"
        finally:
            client.close()


def test_the_dry_run_bound_follows_the_depth() -> None:
    cover = estimate_run(select_expr="ERR-014", workers=1, face="proxy", embedded=True)
    full = estimate_run(select_expr="ERR-014", workers=1, face="proxy", embedded=True, member_table="full")
    # The table's own cost (a lock and a request per case) plus CHAT (a lock and a request).
    assert cover.without_retries == 2 * len(COVER) + 2
    assert full.without_retries == 2 * len(TABLE) + 2


@pytest.mark.parametrize(("profile", "cases"), [("deep", TABLE), ("ci", COVER), ("live", COVER)])
def test_the_fuzzer_sweeps_the_table_after_its_first_pass(profile: str, cases: tuple[Case, ...]) -> None:
    """A deep campaign sweeps every case, as run --member-table full sends them; the per-commit ci and the
    paid live profiles sweep the cover, as a default run does."""
    with embedded_target("strict", []) as embedded:
        plan = sweep_plan(embedded.target, profile)
    first = plan.first_pass
    table = [cell for cell in plan.order if cell.family == TABLE_FAMILY]
    assert [cell.case for cell in table] == [case.describe() for case in cases]
    assert plan.order[first : first + len(cases)] == table
    assert all(cell.mode.endpoint == "chat" and not cell.mode.stream for cell in table)


class _Signed(httpx.HTTPTransport):
    """Records, for every confidential request sent, whether it carried an X-Signature."""

    def __init__(self) -> None:
        super().__init__()
        self.signed: list[bool] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.signed.append("x-signature" in request.headers)
        return super().handle_request(request)


def test_on_the_node_face_every_case_is_signed_so_only_its_defect_can_be_refused() -> None:
    """A body that claims no hash (the member is gone, or the body is not an object) still carries the
    valid request's X-Signature: unsigned, a node that checks the header first would refuse it as
    MISSING_HEADER, and the check would pass on a node that never looks at the member."""
    transport = _Signed()
    with embedded_target("strict", [], face="node") as embedded:
        target: Target = embedded.target
        target.member_table = "full"
        client = ConfidentialClient(target.base_url, target.api_key, node_face=embedded.node_face, transport=transport)
        try:
            table = Run(target, client, sleep=embedded.sleep).get(MEMBER_TABLE_FULL)
        finally:
            client.close()
    assert len(transport.signed) == len(TABLE) == len(table.refused)
    assert all(transport.signed), [c.describe() for c, s in zip(TABLE, transport.signed, strict=True) if not s]
