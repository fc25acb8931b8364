"""The checks of the HTTP layer and the lock's input (LOCK-007, LOCK-008, LOCK-013 to LOCK-019, ERR-027 to
ERR-029), judged against the embedded mock: they pass on the strict node, each of their faults fails
exactly the checks it names among them, and the answers a fault cannot produce (a 402, a 429, a
target that does not serve the request a precondition needs) are made by rewriting single answers on
the way back, so each verdict is shown to be "not evaluated" where the run proves nothing, never a pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from conformance.checks import Run
from conformance.checks.base import REGISTRY, Precondition, Verdict
from conformance.checks.judging import PROXY_FACE_CODE_STATUS, refused_with, table_pair
from conformance.checks.probes_http import AUTH_UNITS, HTTP_REFUSALS, SMALL_UNITS, UNKNOWN_PATH
from conformance.checks.run import UNKNOWN_MODEL
from conformance.checks.sections._helpers import each_refused, refusals_verdict
from conformance.client import ConfidentialClient
from conformance.embedded import EMBEDDED_KEYS, embedded_target
from conformance.records import HttpRecord
from mock_node.faults import FAULTS

CHECKS = (
    *("LOCK-007", "LOCK-008", "LOCK-013", "LOCK-014", "LOCK-015", "LOCK-016", "LOCK-017", "LOCK-018"),
    *("LOCK-019", "ERR-027", "ERR-028", "ERR-029"),
)
Rule = Callable[[httpx.Request], "httpx.Response | None"]


class Rewrite(httpx.BaseTransport):
    """The real transport, except for the requests a rule answers itself (the first rule that does)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self._inner = httpx.HTTPTransport()
        self._rules = rules

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for rule in self._rules:
            answer = rule(request)
            if answer is not None:
                return answer
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _error(status: int, code: str) -> httpx.Response:
    body = json.dumps({"error": {"code": code, "message": "rewritten by the test"}}).encode()
    return httpx.Response(status, headers={"content-type": "application/json"}, content=body)


def _envelope(request: httpx.Request) -> dict[str, object]:
    """The JSON object a confidential request carries, or {} (a GET, a body that is not one)."""
    if not request.url.path.startswith("/v1/confidential") or request.method != "POST":
        return {}
    try:
        value = json.loads(request.content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _bearer(request: httpx.Request) -> str:
    return str(request.headers.get("authorization", "")).removeprefix("Bearer ")


def _is_lock(request: httpx.Request, token: str | None = None) -> bool:
    if request.url.path != "/v1/nodes/lock" or request.method != "POST":
        return False
    return token is None or request.headers.get("authorization") == f"Bearer {token}"


@dataclass
class Outcome:
    verdicts: dict[str, Verdict]

    def __getitem__(self, check_id: str) -> str:
        return self.verdicts[check_id].outcome

    def failing(self) -> set[str]:
        return {i for i, v in self.verdicts.items() if v.outcome == "fail"}


def judge(*, faults: tuple[str, ...] = (), rules: tuple[Rule, ...] = (), ids: tuple[str, ...] = CHECKS) -> Outcome:
    """The listed checks against the strict embedded mock with ``faults``, through ``rules``."""
    with embedded_target("strict", faults, known_keys=True) as embedded:
        clients: list[ConfidentialClient] = []

        def make(key: str | None) -> ConfidentialClient:
            client = ConfidentialClient(embedded.target.base_url, key, transport=Rewrite(rules))
            clients.append(client)
            return client

        run = Run(embedded.target, make(embedded.target.api_key), client_factory=make, sleep=embedded.sleep)
        try:
            return Outcome({check_id: REGISTRY[check_id].run(run) for check_id in ids})
        finally:
            for client in clients:
                client.close()


@pytest.fixture(scope="module")
def clean() -> Outcome:
    return judge()


def test_the_strict_mock_passes_every_check_of_the_http_layer(clean: Outcome) -> None:
    assert {i: v.reason for i, v in clean.verdicts.items() if v.outcome != "pass"} == {}
    assert clean.verdicts["LOCK-019"].reason == "both refused 425; the lock then served 16 units"


def test_on_the_node_face_only_the_routing_check_applies() -> None:
    with embedded_target("strict", face="node", known_keys=True) as embedded:
        client = ConfidentialClient(embedded.target.base_url, None, node_face=embedded.node_face)
        try:
            run = Run(embedded.target, client, sleep=embedded.sleep)
            outcomes = {i: REGISTRY[i].run(run).outcome for i in CHECKS}
        finally:
            client.close()
    assert outcomes == {i: "pass" if i == "ERR-027" else "skip" for i in CHECKS}


# Every fault that names a check of this file, and exactly the checks of this file it makes fail.
EXPECTED = {
    "any-bearer-token": {"LOCK-014", "ERR-029"},
    "token-after-lock": {"ERR-028"},
    "null-units-free": {"LOCK-019"},
    "lock-capacity-ignored": {"LOCK-019"},
    "routing-errors-text-plain": {"ERR-027"},
    "lock-body-before-token": {"LOCK-017"},
    "lock-rejections-text-plain": {"LOCK-015", "LOCK-016"},
    "lock-ignore-content-type": {"LOCK-016"},
    "lock-deny-unknown-members": {"LOCK-018"},
    "lock-null-tokens-zero": {"LOCK-018"},
    "lock-without-bearer": {"LOCK-007", "LOCK-013", "LOCK-017"},
    "confidential-without-bearer": {"ERR-028"},
    "lock-unknown-model-500": {"LOCK-008"},
    "mispaired-error-codes": {"LOCK-007", "LOCK-013", "LOCK-014", "LOCK-016", "LOCK-019", "ERR-028", "ERR-029"},
    "500-on-client-error": {"LOCK-015", "LOCK-016", "LOCK-019"},
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_fault_fails_exactly_its_checks_of_the_http_layer(fault: str) -> None:
    assert judge(faults=(fault,)).failing() == EXPECTED[fault]
    named = FAULTS[fault].caught_by
    assert set(named) & set(CHECKS) == EXPECTED[fault], "the fault table names the same checks"


def test_every_check_of_the_http_layer_has_a_fault() -> None:
    caught = {check_id for fault in FAULTS.values() for check_id in fault.caught_by}
    assert set(CHECKS) <= caught


# --- what a fault cannot show: rewritten answers -------------------------------------------------------


def test_lock_008_takes_either_answer_r2_10_names_and_nothing_else() -> None:
    def answering(status: int, code: str) -> Rule:
        def rule(request: httpx.Request) -> httpx.Response | None:
            return _error(status, code) if _is_lock(request) and UNKNOWN_MODEL.encode() in request.content else None

        return rule

    assert judge(rules=(answering(402, "BALANCE_ERROR"),), ids=("LOCK-008",))["LOCK-008"] == "pass"
    assert judge(rules=(answering(503, "NO_NODE"),), ids=("LOCK-008",))["LOCK-008"] == "fail"
    assert judge(rules=(answering(404, "NOT_FOUND"),), ids=("LOCK-008",))["LOCK-008"] == "fail"
    assert judge(rules=(answering(429, "TOO_MANY_REQUESTS"),), ids=("LOCK-008",))["LOCK-008"] == "error"


def test_an_unknown_token_served_is_no_finding_while_the_runs_own_key_gets_no_lock() -> None:
    """A target that serves any token, but refuses the run's own key its plain lock (the LOCK and CHAT
    probes), is a broken setup, not evidence: both checks are not evaluated."""

    def refuse_own_plain_lock(request: httpx.Request) -> httpx.Response | None:
        plain = _is_lock(request) and b"max_num_tokens" not in request.content
        return _error(401, "AUTH_ERROR") if plain and _bearer(request) == EMBEDDED_KEYS[0] else None

    outcome = judge(faults=("any-bearer-token",), rules=(refuse_own_plain_lock,), ids=("LOCK-014", "ERR-029"))
    assert outcome["LOCK-014"] == outcome["ERR-029"] == "error"
    assert "could not take a usable lock" in outcome.verdicts["ERR-029"].reason


def test_an_unknown_token_served_on_the_shared_lock_proves_the_lock_survived_the_malformed_ones() -> None:
    """No lock for the unknown token, yet its request served on the run's lock: the lock outlived the
    malformed requests before it, so ERR-028 passes, and ERR-029 fails."""

    def no_lock_for_unknown(request: httpx.Request) -> httpx.Response | None:
        unknown = _bearer(request).startswith("atoma-conformance-unknown-key-")
        return _error(401, "AUTH_ERROR") if _is_lock(request) and unknown else None

    outcome = judge(faults=("any-bearer-token", "accept-foreign-lock"), rules=(no_lock_for_unknown,))
    assert (outcome["ERR-028"], outcome["ERR-029"]) == ("pass", "fail")


def test_err_028_is_not_evaluated_when_the_valid_request_fails_for_another_reason() -> None:
    """The valid request after the refusals answered 400: nothing shows whether the lock survived."""

    def refuse_valid(request: httpx.Request) -> httpx.Response | None:
        valid = _bearer(request) == EMBEDDED_KEYS[0] and _envelope(request).get("num_compute_units") == AUTH_UNITS
        return _error(400, "REQUEST_ERROR") if valid else None

    verdict = judge(rules=(refuse_valid,), ids=("ERR-028",)).verdicts["ERR-028"]
    assert verdict.outcome == "error" and "not served on the same lock (status 400)" in verdict.reason


def test_lock_019_is_not_evaluated_unless_the_request_within_capacity_is_served() -> None:
    def refuse_fitting(request: httpx.Request) -> httpx.Response | None:
        fits = _envelope(request).get("num_compute_units") == SMALL_UNITS
        return _error(400, "REQUEST_ERROR") if fits else None

    verdict = judge(rules=(refuse_fitting,), ids=("LOCK-019",)).verdicts["LOCK-019"]
    assert verdict.outcome == "error" and "within the lock's 16 units was not served" in verdict.reason


def test_lock_019_fails_when_a_refused_request_spent_the_lock() -> None:
    """The request within the lock's capacity answered 425 after the two refusals: one of them spent it."""

    def spent(request: httpx.Request) -> httpx.Response | None:
        fits = _envelope(request).get("num_compute_units") == SMALL_UNITS
        return _error(425, "UNAVAILABLE_STACK") if fits else None

    verdict = judge(rules=(spent,), ids=("LOCK-019",)).verdicts["LOCK-019"]
    assert verdict.outcome == "fail" and "a refused request spent it" in verdict.reason


def test_lock_018_fails_only_for_the_lock_it_was_given() -> None:
    """The request on the defaults lock refused 400 says nothing about the lock: not evaluated."""
    nulls = []

    def second_null(request: httpx.Request) -> httpx.Response | None:
        envelope = _envelope(request)
        if "num_compute_units" in envelope and envelope["num_compute_units"] is None:
            nulls.append(request)
            if len(nulls) == 2:  # the first is the one on the small lock
                return _error(400, "REQUEST_ERROR")
        return None

    verdict = judge(rules=(second_null,), ids=("LOCK-018",)).verdicts["LOCK-018"]
    assert verdict.outcome == "error" and "refused with 400, not for its lock" in verdict.reason


def test_a_malformed_lock_body_granted_fails_lock_015() -> None:
    def grant_negative_timeout(request: httpx.Request) -> httpx.Response | None:
        if not (_is_lock(request) and b'"timeout":-1' in request.content):
            return None
        return httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"public_key":"x"}')

    verdict = judge(rules=(grant_negative_timeout,), ids=("LOCK-015",)).verdicts["LOCK-015"]
    assert verdict.outcome == "fail" and verdict.reason.startswith("negative timeout: a lock was granted")


def test_a_rate_limited_route_probe_is_not_evaluated() -> None:
    def limited(request: httpx.Request) -> httpx.Response | None:
        return _error(429, "TOO_MANY_REQUESTS") if request.url.path == UNKNOWN_PATH else None

    assert judge(rules=(limited,), ids=("ERR-027",))["ERR-027"] == "error"


# --- the embedded mock knows its keys; the helpers ------------------------------------------------------


@pytest.mark.parametrize("known_keys", [True, False])
def test_the_embedded_mock_of_a_run_refuses_a_token_it_did_not_issue(known_keys: bool) -> None:
    """A run's mock knows its two keys; the fuzz campaign's lets any token in (each session its own)."""
    with embedded_target(known_keys=known_keys) as embedded:
        body = json.dumps({"model": embedded.target.chat_model}).encode()
        for key, status in (
            (EMBEDDED_KEYS[0], 200),
            (EMBEDDED_KEYS[1], 200),
            ("not-issued", 401 if known_keys else 200),
        ):
            headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            url = f"{embedded.target.base_url}/v1/nodes/lock"
            assert httpx.post(url, content=body, headers=headers).status_code == status


def test_table_pair_reads_the_status_from_table_10_1() -> None:
    assert table_pair("AUTH_ERROR") == (401, "AUTH_ERROR")
    assert table_pair("UNAVAILABLE_STACK_ERROR", "node") == (425, "UNAVAILABLE_STACK_ERROR")
    assert all(table_pair(code) == (status, code) for code, status in PROXY_FACE_CODE_STATUS.items())
    with pytest.raises(KeyError):
        table_pair("METHOD_NOT_ALLOWED")  # no code the spec does not name


def _http(status: int | None, body: bytes = b"", media: str = "application/json") -> HttpRecord:
    return HttpRecord("POST", "/x", status, {"content-type": media}, body)


def test_each_refused_sorts_requests_into_failures_and_the_not_evaluated() -> None:
    auth = (table_pair("AUTH_ERROR"),)
    rows = [
        ("right", _http(401, b'{"error":{"code":"AUTH_ERROR","message":"m"}}')),
        ("served", _http(200, b"{}")),
        ("wrong code", _http(401, b'{"error":{"code":"REQUEST_ERROR","message":"m"}}')),
        ("limited", _http(429, b'{"error":{"code":"TOO_MANY_REQUESTS","message":"m"}}')),
        ("text", _http(401, b"Unauthorized", "text/plain")),
    ]
    failures, unjudged = each_refused(rows, (401,), lambda r: refused_with(r, auth), "served")
    assert [label for label, _ in failures] == ["served", "wrong code", "text"]
    assert unjudged == [("limited", "refused 429 (rate limiting) before reaching the rule")]
    assert refusals_verdict(5, failures, unjudged, "ok").outcome == "fail"
    with pytest.raises(Precondition, match="not evaluated: limited"):
        refusals_verdict(5, [], unjudged, "ok")
    assert refusals_verdict(1, [], [], "ok").outcome == "pass"


def test_the_http_layer_refusal_probes_are_listed_for_the_shared_refusal_rules() -> None:
    assert [p.name for p in HTTP_REFUSALS] == [
        "http_unknown_path",
        "http_wrong_method",
        "lock_wrong_method",
        "lock_bad_tokens",
        "lock_no_token_bad_body",
        "err_bad_tokens",
        "lock_malformed",
        "lock_content_type",
        "lock_capacity",
    ]
