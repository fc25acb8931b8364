"""docs/spec.md §2, the lock endpoint: the reply, its key, and what one lock may pay for."""

from __future__ import annotations

from ...records import LockRecord
from ..base import Group, Level, Precondition, Verdict, passed, verdict
from ..evidence import Fact, LockReply, Pairs, Refusal
from ..judging import LOCK_RULES
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
from ._helpers import judge_expected_refusal, judge_second, refusal, refused_by_node

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


@check(
    "LOCK-007",
    "MUST",
    "A lock without a bearer token is refused with 401",
    spec="R2.2",
    reads=(LOCK_NO_AUTH,),
    evidence=Refusal,
)
def lock_007(reads: Reads) -> Verdict:
    http = reads.get(LOCK_NO_AUTH)
    return verdict(http.status == 401, "401", f"status {http.status}", refusal(http))


@check(
    "LOCK-008",
    "SHOULD",
    "A lock for a model nobody serves is refused with a JSON error",
    spec="R2.10",
    reads=(LOCK_UNKNOWN_MODEL,),
    evidence=Refusal,
    weaker_because="the exact status (503, or 402 when the caller cannot pay for a stack) depends on account "
    "state the suite cannot see, so this checks only for a clean JSON refusal",
)
def lock_008(reads: Reads) -> Verdict:
    http = reads.get(LOCK_UNKNOWN_MODEL).http
    status = http.status or 0
    ok = 400 <= status < 600 and status != 500 and http.error_body() is not None
    return verdict(
        ok,
        f"refused with {status} and a JSON error",
        f"status {status}, error body {'present' if http.error_body() else 'absent'}",
        refusal(http),
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
