"""docs/spec.md §2, the lock endpoint: the reply, its key, and what one lock may pay for."""

from __future__ import annotations

from ...records import ExchangeRecord, HttpRecord, LockRecord
from ..base import Group, Level, Precondition, Verdict, passed, verdict
from ..evidence import Fact, LockReply, Pairs, Refusal, Refusals
from ..judging import LOCK_RULES, earlier_cause, refusal_problem, refused_with, response_of, table_pair, unshaped_error
from ..probe import Reads
from ..probes import (
    ERR_NO_LOCK,
    LOCK,
    LOCK_AGAIN,
    LOCK_EXPIRED,
    LOCK_FOREIGN,
    LOCK_NO_AUTH,
    LOCK_REUSE,
    LOCK_UNKNOWN_MODEL,
)
from ..probes_http import (
    DEFAULT_UNITS,
    LOCK_BAD_TOKENS,
    LOCK_CAPACITY,
    LOCK_CONTENT_TYPE,
    LOCK_MALFORMED,
    LOCK_NO_TOKEN_BAD_BODY,
    SMALL_UNITS,
)
from ._helpers import (
    each_refused,
    judge_expected_refusal,
    judge_refused_with,
    judge_second,
    refusals_verdict,
    refused_by_node,
    refused_with_status,
)

GROUP = Group((2,), "The lock endpoint")
check = GROUP.check


def _granted(record: LockRecord) -> LockRecord:
    if record.http.status != 200:
        raise Precondition(
            f"the lock call failed (status {record.http.status}, {record.http.error or 'no error body'})"
        )
    return record


def _lock_rule(
    check_id: str, level: Level, title: str, spec: str, good: str, weaker_because: str | None = None
) -> None:
    """Register the check that applies the rulebook's lock rule ``check_id`` to the run's lock. All but
    LOCK-001 judge a lock that was granted: a refused lock is LOCK-001's failure, not theirs."""

    def predicate(reads: Reads) -> Verdict:
        record = reads.get(LOCK)
        if check_id != "LOCK-001":
            _granted(record)
        why = LOCK_RULES[check_id](record)
        evidence = LockReply(record.http.status, record.http.media_type, tuple(record.members), why)
        return verdict(why is None, good, why or "", evidence)

    check(check_id, level, title, spec=spec, reads=(LOCK,), evidence=LockReply, weaker_because=weaker_because)(
        predicate
    )


_REPLY = "The lock answers 200 application/json with the four reply members"
_lock_rule(
    "LOCK-001", "MUST", _REPLY, "R2.5", "200 JSON with public_key, node_small_id, stack_entry_digest, stack_small_id"
)
_lock_rule(
    "LOCK-002",
    "SHOULD",
    "Lock reply members are in the upstream order",
    "R2.5",
    "members in upstream order",
    weaker_because="member order changes no parsed value and matters only to byte-for-byte reproduction, so "
    "the suite reports a reordering rather than failing certification on it",
)
_lock_rule(
    "LOCK-003", "MUST", "public_key is canonical base64 of exactly 32 bytes", "R2.6", "32-byte canonical base64 key"
)
_lock_rule("LOCK-004", "MUST", "public_key is not a low-order X25519 point", "R2.7", "not a low-order point")
_lock_rule(
    "LOCK-005",
    "MUST",
    "node_small_id and stack_small_id are non-negative JSON integers",
    "R2.8",
    "both are non-negative integers",
)
_lock_rule("LOCK-006", "MUST", "stack_entry_digest is present, as null or a string", "R2.9", "present")


AUTH_REFUSED = (table_pair("AUTH_ERROR"),)  # R2.2: 401 AUTH_ERROR for a missing, malformed or unknown token


@check(
    "LOCK-007",
    "MUST",
    "A lock without a bearer token is refused with 401 AUTH_ERROR",
    spec="R2.2",
    reads=(LOCK_NO_AUTH,),
    evidence=Refusal,
)
def lock_007(reads: Reads) -> Verdict:
    return judge_refused_with(reads.get(LOCK_NO_AUTH), AUTH_REFUSED, "a lock was granted without a bearer token")


@check(
    "LOCK-008",
    "MUST",
    "A lock for a model nobody serves is refused with 503 SERVICE_UNAVAILABLE (or 402 BALANCE_ERROR)",
    spec="R2.10",
    reads=(LOCK_UNKNOWN_MODEL,),
    evidence=Refusal,
)
def lock_008(reads: Reads) -> Verdict:
    """R2.10 names both answers, the 402 for a caller who cannot pay for a new stack: whatever the
    account's state, one of the two pairs is the conformant answer, so the check holds the target to
    them (a 429, or a 401 for the run's own key, leaves it not evaluated)."""
    unavailable = (table_pair("SERVICE_UNAVAILABLE"), table_pair("BALANCE_ERROR"))
    return judge_refused_with(
        reads.get(LOCK_UNKNOWN_MODEL).http, unavailable, "a lock was granted for a model nobody serves"
    )


@check(
    "LOCK-009",
    "MUST",
    "A lock serves one request: a second request on it is refused",
    spec=("R2.11", "R2.13"),
    reads=(LOCK_REUSE,),
    evidence=Pairs,
)
def lock_009(reads: Reads) -> Verdict:
    return judge_second(reads.get(LOCK_REUSE), (425,), "the same lock served a second request")


@check(
    "LOCK-010",
    "MUST",
    "An expired lock is refused",
    spec=("R2.11", "R2.13"),
    reads=(LOCK_EXPIRED,),
    evidence=Refusal,
)
def lock_010(reads: Reads) -> Verdict:
    return judge_expected_refusal(reads.get(LOCK_EXPIRED), (425,), "a request on an expired lock was served")


@check(
    "LOCK-011",
    "MUST",
    "A lock taken with one API key does not serve another key's request",
    spec=("R2.14", "R2.15"),
    reads=(LOCK_FOREIGN,),
    evidence=Refusal,
)
def lock_011(reads: Reads) -> Verdict:
    # R2.14: answered as if no lock existed, which R2.13 says is 425.
    return judge_expected_refusal(reads.get(LOCK_FOREIGN), (425,), "another API key spent this key's lock")


@check(
    "LOCK-012",
    "INFO",
    "The node key is the same across locks in one run",
    spec="R2.6",
    reads=(LOCK, LOCK_AGAIN),
    evidence=Fact,
)
def lock_012(reads: Reads) -> Verdict:
    a, b = _granted(reads.get(LOCK)), _granted(reads.get(LOCK_AGAIN))
    if a.public_key == b.public_key:
        return passed("stable node key", Fact("stable node key"))
    return passed("the node key changed between two locks (rotation?)", Fact("the node key changed"))


refused_by_node(
    GROUP, "ERR-012", ERR_NO_LOCK, "A request on a stack with no lock is refused", ("R2.13", "R2.15"), statuses=(425,)
)


# --- bearer tokens and lock bodies (R2.2 to R2.4) ----------------------------------------------------


@check(
    "LOCK-013",
    "MUST",
    "A lock with a malformed Authorization header (another scheme, no token) is refused with 401 AUTH_ERROR",
    spec="R2.2",
    reads=(LOCK_BAD_TOKENS,),
    evidence=Refusals,
)
def lock_013(reads: Reads) -> Verdict:
    rows = list(reads.get(LOCK_BAD_TOKENS).malformed.items())
    failures, unjudged = each_refused(
        rows, (401,), lambda r: refused_with(r, AUTH_REFUSED), "a lock was granted for a malformed Authorization"
    )
    return refusals_verdict(len(rows), failures, unjudged, f"{len(rows)} malformed Authorization headers refused 401")


@check(
    "LOCK-014",
    "MUST",
    "A lock with a bearer token nobody issued is refused with 401 AUTH_ERROR",
    spec="R2.2",
    reads=(LOCK_BAD_TOKENS, LOCK),
    evidence=Refusal,
)
def lock_014(reads: Reads) -> Verdict:
    """The suite does not know which tokens a target issued, only that a fresh random one is none of
    them: a lock granted to it fails the check once the run's own key is known to get a lock (a target
    that grants every caller a lock would otherwise pass a broken setup as a finding)."""
    unknown = reads.get(LOCK_BAD_TOKENS).unknown
    if response_of(unknown).status == 200:
        _granted(reads.get(LOCK))
    return judge_refused_with(unknown, AUTH_REFUSED, "a lock was granted to a token nobody issued")


@check(
    "LOCK-015",
    "MUST",
    "A lock body that is not JSON, lacks model or mistypes a member is refused 400 or 422 with a JSON error",
    spec=("R2.3", "R10.1"),
    reads=(LOCK_MALFORMED,),
    evidence=Refusals,
)
def lock_015(reads: Reads) -> Verdict:
    rows = list(reads.get(LOCK_MALFORMED).by_label.items())

    def rule(result: ExchangeRecord | HttpRecord) -> str | None:
        return refusal_problem(result) or refused_with_status(result, (400, 422)) or unshaped_error(result)

    failures, unjudged = each_refused(rows, (400, 422), rule, "a lock was granted for a malformed body")
    return refusals_verdict(len(rows), failures, unjudged, f"{len(rows)} malformed lock bodies refused with JSON")


@check(
    "LOCK-016",
    "MUST",
    "A lock request that is not application/json is refused with 415 UNSUPPORTED_MEDIA_TYPE",
    spec="R2.3",
    reads=(LOCK_CONTENT_TYPE,),
    evidence=Refusal,
)
def lock_016(reads: Reads) -> Verdict:
    """The body is the valid lock body, labelled text/plain: its one fault is the refusal class of
    Table 10.1 that pairs 415 with UNSUPPORTED_MEDIA_TYPE."""
    media = (table_pair("UNSUPPORTED_MEDIA_TYPE"),)
    return judge_refused_with(reads.get(LOCK_CONTENT_TYPE), media, "a lock was granted for a text/plain body")


@check(
    "LOCK-017",
    "SHOULD",
    "The lock endpoint checks the token before the body: no token and a malformed body get 401",
    spec="R2.4",
    reads=(LOCK_NO_TOKEN_BAD_BODY,),
    evidence=Refusal,
)
def lock_017(reads: Reads) -> Verdict:
    served = "a lock was granted without a token, for a malformed body"
    return judge_expected_refusal(reads.get(LOCK_NO_TOKEN_BAD_BODY), (401,), served)


# --- what a lock admits (R2.1, R2.12) ---------------------------------------------------------------


@check(
    "LOCK-018",
    "MUST",
    "A lock body with null max_num_tokens and timeout and an unknown member gets a lock of the defaults",
    spec="R2.1",
    reads=(LOCK_CAPACITY,),
    evidence=LockReply,
)
def lock_018(reads: Reads) -> Verdict:
    """Granted, and then serving a request of the default size (num_compute_units null: 8192 units),
    which only a lock of at least the default capacity, still valid, admits: every other lock of the
    run has expired or been spent by then (probes_http.LOCK_CAPACITY)."""
    probe = reads.get(LOCK_CAPACITY)
    lock, served = probe.defaults_lock, probe.on_defaults
    http = lock.http

    def evidence(problem: str | None) -> LockReply:
        return LockReply(http.status, http.media_type, tuple(lock.members), problem)

    if http.status != 200:
        earlier = earlier_cause(http, ())
        if earlier is not None:
            raise Precondition(f"not evaluated: the lock was {earlier}")
        why = f"the lock was refused with {http.status}"
        return verdict(False, "", f"{why}: null or unknown members must be accepted", evidence(why))
    if served is None:
        raise Precondition("not evaluated: the lock reply is not a usable lock (LOCK-001, LOCK-003)")
    status = served.http.status
    if status == 200:
        return verdict(True, "granted, and it served a request of 8192 units", "", evidence(None))
    if status == 425:
        why = f"its lock did not admit a request of the default {DEFAULT_UNITS} units (425)"
        return verdict(False, "", why, evidence(why))
    raise Precondition(f"not evaluated: the request on the lock was refused with {status}, not for its lock")


@check(
    "LOCK-019",
    "MUST",
    "A lock admits no request larger than its max_num_tokens, a null num_compute_units counting 8192",
    spec=("R2.12", "R2.13"),
    reads=(LOCK_CAPACITY,),
    evidence=Refusals,
)
def lock_019(reads: Reads) -> Verdict:
    """Both requests are refused 425 UNAVAILABLE_STACK (R2.13) without spending the lock: the request
    within its capacity that follows on the same lock is served, which also shows that the target
    serves that request at all; a 425 for it shows that a refused request spent the lock."""
    probe = reads.get(LOCK_CAPACITY)
    rows: list[tuple[str, ExchangeRecord | HttpRecord]] = [
        (f"{SMALL_UNITS + 1} units", probe.larger),
        (f"null num_compute_units ({DEFAULT_UNITS} units)", probe.null_units),
    ]
    served = f"served on a lock of {SMALL_UNITS} units"
    failures, unjudged = each_refused(
        rows, (425,), lambda r: refused_with(r, (table_pair("UNAVAILABLE_STACK"),)), served
    )
    fits = probe.fits.http.status
    if not failures and fits == 425:
        failures.append((f"{SMALL_UNITS} units", "425 on the same lock: a refused request spent it"))
    elif not failures and fits != 200:
        raise Precondition(
            f"not evaluated: the request within the lock's {SMALL_UNITS} units was not served either (status {fits})"
        )
    return refusals_verdict(
        len(rows), failures, unjudged, f"both refused 425; the lock then served {SMALL_UNITS} units"
    )
