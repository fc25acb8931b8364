"""docs/spec.md §10, errors: what every refusal shares (a 4xx, the JSON error shape, no echoed
secret), and that refusing leaves the target serving."""

from __future__ import annotations

from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Exchanges, Refusals, RoundTrip
from ..judging import leaks, mispaired_code, round_trip_problem, server_error, unshaped_error
from ..probe import Reads
from ..probes import CHAT, ERR_NO_AUTH, HEALTH_AFTER, REFUSALS, SERVED
from ._helpers import all_served, over_refusals, refusals, refused_by_node, round_trip

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
    spec="R10.9",
    reads=REFUSALS,
    evidence=Refusals,
)
def err_019(reads: Reads) -> Verdict:
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
