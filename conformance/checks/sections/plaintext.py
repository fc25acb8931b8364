"""docs/spec.md §3, the plaintext and the body: a plaintext the node cannot act on is refused with the
status and code Table 10.1 names (its hash correct, so that only its shape can be the reason), a body
over the limit is refused 413 however it is framed, and a valid request in any form §3 allows (another
member order, another JSON layout, a charset, a chunked body, a body of exactly the limit, an absent or
null stream) is served and round-trips."""

from __future__ import annotations

from ...records import ExchangeRecord, HttpRecord
from ...textsafe import one_line
from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Exchanges, Refusal, Refusals, RoundTrip
from ..judging import earlier_cause, refused_with, response_of, round_trip_problem, table_pairs, unverified
from ..probe import Reads
from ..probes import CHAT, ERR_OVERSIZE
from ..probes_body import (
    ACCEPTED_VARIATIONS,
    BODY_AT_LIMIT,
    BODY_LIMIT,
    ERR_MODEL_NOT_SERVED,
    ERR_OVERSIZE_CHUNKED,
    ERR_UNSERVABLE_PLAINTEXT,
    FORM_VARIATIONS,
    PLAINTEXT_SHAPES,
)
from ._helpers import accepted_problem, judge_expected_refusal, refusal, served

GROUP = Group((3,), "The plaintext and the body: what is refused, what is accepted")
check = GROUP.check


def _node_face_baseline(reads: Reads) -> None:
    """On the node face no bearer token or lock stands between a bad setup and a 4xx, so a refusal
    counts only once a valid request is known to be served (as ``refused_by_node`` does)."""
    if reads.target.face == "node":
        served(reads, CHAT)


def _judge_cases(
    cases: list[tuple[str, ExchangeRecord | HttpRecord]], allowed: tuple[tuple[int, str], ...], what: str
) -> Verdict:
    """Each case refused with one of ``allowed``: any case that is not fails the check; a case refused
    for an earlier cause (no lock, no token, 429/503) leaves the check not evaluated, never passed."""
    statuses = tuple(status for status, _ in allowed)
    judged = [(name, result, earlier_cause(result, statuses)) for name, result in cases]
    bad = [
        (name, why) for name, result, earlier in judged if earlier is None and (why := refused_with(result, allowed))
    ]
    evidence = Refusals(len(cases), tuple(name for name, _ in bad))
    if bad:
        shown = "; ".join(f"{name}: {why}" for name, why in bad[:3])
        return verdict(
            False, "", f"{len(bad)} of {len(cases)} {what} not refused as Table 10.1 says: {shown}", evidence
        )
    for name, _, earlier in judged:
        if earlier is not None:
            raise Precondition(f"not evaluated: {name}: {earlier}")
    return verdict(True, f"{len(cases)} {what}, each refused with {_pairs(allowed)}", "", evidence)


def _pairs(allowed: tuple[tuple[int, str], ...]) -> str:
    return " or ".join(f"{status} {code}" for status, code in allowed)


@check(
    "ERR-030",
    "MUST",
    "A plaintext that is not a JSON object with a string model is refused 400 with Table 10.1's code",
    spec=("R3.14",),
    reads=(CHAT, PLAINTEXT_SHAPES),
    evidence=Refusals,
)
def err_030(reads: Reads) -> Verdict:
    """Five plaintexts, each sealed with its own correct hash: an array, a JSON string, text that is not
    JSON, an object without ``model``, and one whose ``model`` is a number. A node that takes the model
    from ``model_name`` instead, or parses the plaintext loosely, serves some of them."""
    _node_face_baseline(reads)
    allowed = table_pairs("plaintext", reads.target.face)
    return _judge_cases(list(reads.get(PLAINTEXT_SHAPES).cases), allowed, "malformed plaintexts")


@check(
    "ERR-031",
    "MUST",
    "A plaintext the model cannot serve (chat messages as a string) is refused 400, not served or 5xx",
    spec=("R3.14", "R10.2"),
    reads=(CHAT, ERR_UNSERVABLE_PLAINTEXT),
    evidence=Refusal,
)
def err_031(reads: Reads) -> Verdict:
    """The object has a string ``model`` the node serves, but no chat model can answer it. The node is
    the one that reads the plaintext (R3.14), and the fault is the client's, so 4xx (R10.2); every
    plaintext refusal of Table 10.1 is 400. Table 10.1 names no code for this class, so none is asked
    (ERR-026 still holds a code to its status)."""
    _node_face_baseline(reads)
    return judge_expected_refusal(
        reads.get(ERR_UNSERVABLE_PLAINTEXT), (400,), "served a chat request whose messages is not an array"
    )


@check(
    "ERR-032",
    "MUST",
    "A model the node does not serve, in plaintext and model_name alike, is refused (400; 404 on the proxy face)",
    spec=("R3.14",),
    reads=(CHAT, ERR_MODEL_NOT_SERVED),
    evidence=Refusal,
)
def err_032(reads: Reads) -> Verdict:
    """``model_name`` names the same unknown model, so R3.16's comparison cannot be what refuses it.
    On the node face 404 is not allowed: only a proxy face may answer an unknown model 404 NOT_FOUND."""
    _node_face_baseline(reads)
    result = reads.get(ERR_MODEL_NOT_SERVED)
    allowed = table_pairs("model", reads.target.face)
    status = response_of(result).status
    if status is not None and 200 <= status < 300:
        return verdict(False, "", f"served with {status}: the model was not checked", refusal(result))
    earlier = earlier_cause(result, tuple(s for s, _ in allowed))
    if earlier is not None:
        raise Precondition(f"not evaluated: {earlier}")
    why = refused_with(result, allowed)
    return verdict(why is None, f"refused with {_shown(result)}", why or "", refusal(result))


def _shown(result: ExchangeRecord | HttpRecord) -> str:
    http = response_of(result)
    error = http.error_body()
    return f"{http.status} {one_line(error[0], 64)}" if error else f"{http.status}"


@check(
    "ERR-033",
    "MUST",
    "A body over the limit is refused 413 PAYLOAD_TOO_LARGE, with a Content-Length and chunked alike",
    spec=("R3.18",),
    reads=(CHAT, ERR_OVERSIZE, ERR_OVERSIZE_CHUNKED),
    evidence=Refusals,
)
def err_033(reads: Reads) -> Verdict:
    """A chunked body announces no size, so a node that judges the declared Content-Length alone reads
    it whole and refuses it for its content, or not at all; R3.18 asks for 413 and its code either way."""
    _node_face_baseline(reads)
    cases: list[tuple[str, ExchangeRecord | HttpRecord]] = [
        ("with Content-Length", reads.get(ERR_OVERSIZE)),
        ("chunked", reads.get(ERR_OVERSIZE_CHUNKED)),
    ]
    return _judge_cases(cases, table_pairs("size", reads.target.face), "oversized bodies")


# --- what a target accepts ------------------------------------------------------------------------------


def _accepted(reads: Reads, names: tuple[str, ...], what: str) -> Verdict:
    """The variations ``names`` (probes_body.VARIATIONS) each served and round-tripped."""
    varied = reads.get(ACCEPTED_VARIATIONS)
    rows = [(name, varied.record(name)) for name in names]
    bad = [(name, why) for name, record in rows if (why := accepted_problem(reads, record, name))]
    return verdict(
        not bad,
        f"{what}: served and round-tripped",
        "; ".join(f"{name}: {why}" for name, why in bad),
        Exchanges(len(rows), tuple(name for name, _ in bad)),
    )


def _accepted_one(reads: Reads, name: str, what: str) -> Verdict:
    record = reads.get(ACCEPTED_VARIATIONS).record(name)
    why = accepted_problem(reads, record, name)
    evidence = RoundTrip(record.http.status, len(record.messages), len(unverified(record)))
    return verdict(why is None, f"{what}: served and round-tripped", f"{what}: {why}", evidence)


@check(
    "ENDPOINT-010",
    "MUST",
    "An envelope whose stream or num_compute_units is absent or null is served, as JSON",
    spec=("R3.12", "R1.5"),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=Exchanges,
)
def endpoint_010(reads: Reads) -> Verdict:
    """An absent or null ``stream`` means false (R3.12), so the answer is one JSON envelope (R1.5); an
    event stream, or a refusal of the null, fails."""
    return _accepted(
        reads, ("stream absent", "stream null", "num_compute_units null"), "stream absent, stream null, units null"
    )


@check(
    "ENDPOINT-011",
    "MUST",
    "An envelope with its members in another order and an unknown member is served",
    spec=("R3.2",),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_011(reads: Reads) -> Verdict:
    return _accepted_one(reads, "members reordered, an unknown member", "members reversed, an unknown one first")


@check(
    "ENDPOINT-012",
    "MUST",
    "A plaintext in another JSON layout (spaces, member order, escapes), hashed as sent, is served",
    spec=("R3.15", "R6.2"),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_012(reads: Reads) -> Verdict:
    """The official SDKs serialize the same request differently; a node that hashes or parses anything
    but the exact bytes it decrypted (a re-serialization, W11) refuses all but its own layout."""
    return _accepted_one(reads, "plaintext in another JSON layout", "indented, reversed, '\\/' escapes")


@check(
    "ENDPOINT-014",
    "MUST",
    "A request with Content-Type application/json; charset=utf-8 is served",
    spec=("R3.3",),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_014(reads: Reads) -> Verdict:
    return _accepted_one(reads, "charset=utf-8", "application/json; charset=utf-8")


@check(
    "ENDPOINT-015",
    "MUST",
    "A request sent with Transfer-Encoding: chunked (no Content-Length) is served",
    spec=("R3.17",),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_015(reads: Reads) -> Verdict:
    """A body well under 2 MiB is accepted however HTTP frames it (R3.17); a node that needs a
    Content-Length to apply its limit refuses it (411) or fails with 5xx."""
    return _accepted_one(reads, "chunked body", "a chunked body")


@check(
    "ENDPOINT-016",
    "MUST",
    "A body of exactly 2 MiB (2,097,152 bytes) is served, not refused for its size",
    spec=("R3.17", "R3.18"),
    reads=(CHAT, BODY_AT_LIMIT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_016(reads: Reads) -> Verdict:
    """The limit is inclusive (R3.17). The body is filled with JSON whitespace in the plaintext (R3.15)
    and, to hit the exact byte, an envelope form R3.12 allows; when the target refuses one of those at
    any size (ENDPOINT-010, ENDPOINT-012), the 2 MiB body proves nothing about the limit."""
    at_limit = reads.get(BODY_AT_LIMIT)
    varied = reads.get(ACCEPTED_VARIATIONS)
    record = at_limit.record
    why = accepted_problem(reads, record, f"a {BODY_LIMIT}-byte body")
    if why is not None:
        relied = ("plaintext in another JSON layout", *FORM_VARIATIONS[at_limit.form])
        refused = [name for name in relied if round_trip_problem(varied.record(name)) is not None]
        if refused:
            raise Precondition(f"not evaluated: the body relies on {', '.join(refused)}, which is not served either")
    evidence = RoundTrip(record.http.status, len(record.messages), len(unverified(record)))
    shown = f"a body of {BODY_LIMIT} bytes ({at_limit.form})"
    return verdict(why is None, f"{shown}: served and round-tripped", f"{shown}: {why}", evidence)
