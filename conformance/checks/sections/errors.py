"""docs/spec.md §10, errors: what every refusal shares (a 4xx, the JSON error shape, no echoed
secret), and that refusing leaves the target serving."""

from __future__ import annotations

from ...records import ExchangeRecord, HttpRecord
from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Exchanges, Refusal, Refusals, RoundTrip
from ..judging import (
    leaks,
    mispaired_code,
    refusal_problem,
    refused_with,
    response_of,
    round_trip_problem,
    server_error,
    table_pair,
    unshaped_error,
)
from ..probe import Reads
from ..probes import CHAT, ERR_NO_AUTH, SERVED
from ..probes_http import ERR_BAD_TOKENS, HTTP_UNKNOWN_PATH, HTTP_WRONG_METHOD, LOCK_WRONG_METHOD
from ..refusals import HEALTH_AFTER, REFUSALS
from ._helpers import (
    all_served,
    applicable,
    each_refused,
    judge_refused_with,
    over_refusals,
    refusals,
    refusals_verdict,
    refused_by_node,
    round_trip,
    served,
)

GROUP = Group((10,), "Errors")
check = GROUP.check


@check(
    "ERR-017",
    "MUST",
    "Client-caused refusals are 4xx, never 5xx",
    spec="R10.2",
    reads=REFUSALS,
    evidence=Refusals,
)
def err_017(reads: Reads) -> Verdict:
    rows = refusals(reads, REFUSALS)
    bad = [name for name, result in rows if server_error(result)]
    return over_refusals(rows, bad, f"{len(rows)} refusals, all 4xx", "are 5xx")


@check(
    "ERR-018",
    "MUST",
    'Refusals are application/json {"error":{"code","message"}}',
    spec="R10.1",
    reads=REFUSALS,
    evidence=Refusals,
)
def err_018(reads: Reads) -> Verdict:
    rows = refusals(reads, REFUSALS)
    bad = [name for name, result in rows if unshaped_error(result)]
    return over_refusals(rows, bad, f"{len(rows)} refusals, all JSON error bodies", "lack the JSON error shape")


@check(
    "ERR-019",
    "MUST",
    "No refusal echoes the API key, the plaintext, the ciphertext or either hash",
    spec=("R10.9", "R5.5"),
    reads=REFUSALS,
    evidence=Refusals,
)
def err_019(reads: Reads) -> Verdict:
    """R5.5 as well: the tampered-ciphertext probe flips one byte of the ciphertext, so whatever a node
    that decrypted without checking the tag produced still holds the prompt's sentinel; the search of
    every refusal's body and headers for it finds any part of that output a node gives back."""
    rows = refusals(reads, REFUSALS)
    found = [(name, kinds) for name, result in rows if (kinds := leaks(result, reads.target.api_key))]
    bad = [name for name, _ in found]
    shown = "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in found[:5])
    return over_refusals(rows, bad, f"{len(rows)} refusals, nothing echoed", f"echo a secret ({shown})")


@check(
    "ERR-020",
    "MUST",
    "The target still serves a valid request after every refusal",
    spec="R10.10",
    reads=(CHAT, HEALTH_AFTER),
    evidence=RoundTrip,
)
def err_020(reads: Reads) -> Verdict:
    """Judged against the same request before the refusals: a node whose every answer fails to round
    trip fails ENDPOINT-001, and that is not a sign that a refusal harmed it."""
    before = reads.get(CHAT)
    if round_trip_problem(before) is not None:
        raise Precondition(
            "not evaluated: a valid request did not round-trip before the refusals either (ENDPOINT-001)"
        )
    record = reads.get(HEALTH_AFTER)
    return round_trip(record, "a valid round trip still succeeds", "unhealthy after the refusals: ")


refused_by_node(
    GROUP,
    "ERR-021",
    ERR_NO_AUTH,
    "A confidential request without a bearer token is refused",
    ("R10.7",),
    statuses=(401,),
)


@check(
    "ERR-025",
    "MUST",
    "No served answer echoes a request secret in a header, a clear member or an SSE comment",
    spec="R10.9",
    reads=SERVED,
    evidence=Exchanges,
)
def err_025(reads: Reads) -> Verdict:
    """R10.9 forbids secrets in any response header, not only a refusal's; and an answer's clear parts
    (the envelope members around the ciphertext, the stream's comments) are as public as a header. Each
    prompt carries a fresh sentinel, so any clear copy of it, of either hash or of the key is found."""
    rows = all_served(reads, SERVED)
    found = [(name, kinds) for name, record in rows if (kinds := leaks(record, reads.target.api_key))]
    return verdict(
        not found,
        f"{len(rows)} served answers, nothing of the request in clear",
        "; ".join(f"{name} echoes the {', '.join(kinds)}" for name, kinds in found[:4]),
        Exchanges(len(rows), tuple(name for name, _ in found)),
    )


@check(
    "ERR-026",
    "MUST",
    "Every refusal's error code carries the status Table 10.1 pairs it with",
    spec=("R10.12", "R10.11"),
    reads=REFUSALS,
    evidence=Refusals,
)
def err_026(reads: Reads) -> Verdict:
    """A client branches on the status first; a code that contradicts it (400 with AUTH_ERROR) sends
    the client down the wrong branch. Judged on the face the run tests (R10.11 node, R10.12 proxy)."""
    rows = refusals(reads, REFUSALS)
    found = [(name, why) for name, result in rows if (why := mispaired_code(result, reads.target.face))]
    bad = [name for name, _ in found]
    shown = "; ".join(f"{name}: {why}" for name, why in found[:3])
    return over_refusals(rows, bad, f"{len(rows)} refusals, every code with its status", f"mispair a code ({shown})")


# --- routes and bearer tokens (R10.1, R10.7) ---------------------------------------------------------

ROUTING = (HTTP_UNKNOWN_PATH, HTTP_WRONG_METHOD, LOCK_WRONG_METHOD)


@check(
    "ERR-027",
    "MUST",
    "A request to an unknown path or with the wrong method is refused with the JSON error body",
    spec=("R10.1", "R10.8"),
    reads=ROUTING,
    evidence=Refusals,
)
def err_027(reads: Reads) -> Verdict:
    """A router's own refusal (no route, a route without this method) is a refusal like any other: the
    spec names no status for it, so the check asks for what R10.1 and R10.8 ask of every refusal. Its
    5xx and its code's pairing are the shared rules' (ERR-017, ERR-026), which read it as a refusal."""
    rows: list[tuple[str, ExchangeRecord | HttpRecord]] = [
        (f"{response_of(r).method} {response_of(r).path}", r) for _, r in applicable(reads, ROUTING)
    ]

    def rule(result: ExchangeRecord | HttpRecord) -> str | None:
        return refusal_problem(result) or unshaped_error(result)

    failures, unjudged = each_refused(rows, (401, 402, 425), rule, "a request no endpoint serves was accepted")
    return refusals_verdict(len(rows), failures, unjudged, f"{len(rows)} unrouted requests refused with JSON")


AUTH_REFUSED = (table_pair("AUTH_ERROR"),)  # R10.7: 401 AUTH_ERROR for a request without a valid token


@check(
    "ERR-028",
    "MUST",
    "A confidential request with a malformed Authorization is refused 401 AUTH_ERROR, before it spends a lock",
    spec="R10.7",
    reads=(ERR_BAD_TOKENS,),
    evidence=Refusals,
)
def err_028(reads: Reads) -> Verdict:
    """The malformed ones share a lock that only they and the valid request after them can spend (the
    unknown token's request too, when that token got no lock of its own): the valid request served, or
    the unknown-token one served on that lock, shows that no refusal before it spent the lock; a 425 for
    the valid request after every other one on the lock was refused shows that one did."""
    probe = reads.get(ERR_BAD_TOKENS)
    rows = list(probe.malformed.items())
    failures, unjudged = each_refused(
        rows, (401,), lambda r: refused_with(r, AUTH_REFUSED), "a request with a malformed Authorization was served"
    )
    spent_by_unknown = not probe.unknown_own_lock and response_of(probe.unknown).status == 200
    if not failures and not spent_by_unknown:
        status = probe.valid.http.status
        if status == 425:
            failures.append(("valid request", "425 on the same lock: a request refused for its token spent the lock"))
        elif status != 200:
            unjudged.append(("valid request", f"not served on the same lock (status {status})"))
    return refusals_verdict(
        len(rows), failures, unjudged, f"{len(rows)} malformed Authorization headers refused 401; the lock survived"
    )


@check(
    "ERR-029",
    "MUST",
    "A confidential request with a bearer token nobody issued is refused with 401 AUTH_ERROR",
    spec="R10.7",
    reads=(ERR_BAD_TOKENS, CHAT),
    evidence=Refusal,
)
def err_029(reads: Reads) -> Verdict:
    """A fresh random token is none the target issued; one served fails the check once a valid request
    with the run's own key is known to be served (a target that serves every caller would otherwise
    turn a broken setup into a finding). On the run's own lock (the token got none), a target that binds
    locks to keys may answer 425 for the lock instead: that is "not evaluated", not a pass."""
    unknown = reads.get(ERR_BAD_TOKENS).unknown
    if response_of(unknown).status == 200:
        served(reads, CHAT)
    return judge_refused_with(unknown, AUTH_REFUSED, "a request with a token nobody issued was served")
