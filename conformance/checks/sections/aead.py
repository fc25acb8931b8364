"""docs/spec.md §4 and §5, key agreement, the KDF and AEAD: every answer decrypts under the request's
key, and a request sealed or keyed wrongly is refused."""

from __future__ import annotations

from ...records import ExchangeRecord
from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Messages, Pairs, Refusals
from ..judging import crossed, earlier_cause, refusal_problem
from ..probe import Reads
from ..probes import CHAT, JSON_ENDPOINTS, LOW_ORDER_KEYS, MUTATED, OVERLAPPING, SERVED, STREAMS
from ._helpers import judge_messages, refused_by_node, refused_with_status, served

GROUP = Group((4, 5), "Key agreement, KDF and AEAD")
check = GROUP.check


@check(
    "AEAD-001",
    "MUST",
    "Every non-streaming response decrypts under the request's key with its nonce",
    spec=("R4.5", "R5.1", "R4.4", "R5.3"),
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def aead_001(reads: Reads) -> Verdict:
    """The suite opens each answer with K from HKDF with empty info (R4.4) and with empty AAD (R5.3): a
    node that derives or seals with anything else fails here, as under the response-hkdf-info fault."""
    return judge_messages(reads, "AEAD-001", JSON_ENDPOINTS, "decrypts under K")


@check(
    "AEAD-002",
    "MUST",
    "Every stream chunk decrypts under the request's key with its own nonce",
    spec=("R4.5", "R9.5", "R4.4", "R5.3"),
    reads=STREAMS,
    evidence=Messages,
)
def aead_002(reads: Reads) -> Verdict:
    """As AEAD-001, chunk by chunk: each opens only under the R4.4 key with empty AAD (R5.3)."""
    return judge_messages(reads, "AEAD-002", STREAMS, "decrypts under K")


@check(
    "ENC-002",
    "MUST",
    "Every ciphertext is canonical base64 of at least 16 bytes (ciphertext || tag)",
    spec=("R5.2", "R8.4"),
    reads=SERVED,
    evidence=Messages,
)
def enc_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-002", SERVED, "canonical ciphertext")


refused_by_node(
    GROUP,
    "ERR-001",
    MUTATED["err_tampered_ciphertext"],
    "A tampered ciphertext is refused",
    ("R5.4", "R10.5", "R10.8"),
    statuses=(400,),
)
refused_by_node(
    GROUP,
    "ERR-002",
    MUTATED["err_tampered_tag"],
    "A tampered GCM tag is refused",
    ("R5.4", "R10.5", "R10.8"),
    statuses=(400,),
)
refused_by_node(
    GROUP, "ERR-003", MUTATED["err_tampered_nonce"], "A tampered nonce is refused", ("R5.4", "R10.8"), statuses=(400,)
)
refused_by_node(
    GROUP, "ERR-004", MUTATED["err_tampered_salt"], "A tampered salt is refused", ("R5.4", "R10.8"), statuses=(400,)
)
refused_by_node(
    GROUP,
    "ERR-005",
    MUTATED["err_wrong_client_key"],
    "A client_dh_public_key that did not seal the body is refused",
    ("R5.4",),
    statuses=(400,),
)


@check(
    "ERR-008",
    "MUST",
    "A low-order client_dh_public_key is refused",
    spec=("R4.2",),
    reads=(CHAT, LOW_ORDER_KEYS),
    evidence=Refusals,
)
def err_008(reads: Reads) -> Verdict:
    """All 14 encodings, each on a fresh lock and answered 400 as R4.2 asks. One accepted is a failure;
    one refused for an earlier cause (no lock, no token) leaves the rule not evaluated, never passed."""
    if reads.target.face == "node":
        served(reads, CHAT)
    sweep = reads.get(LOW_ORDER_KEYS)
    bad = [
        f"encoding {i} ({why})"
        for i, r in enumerate(sweep.refused)
        if (why := refusal_problem(r) or refused_with_status(r, (400,))) and earlier_cause(r, (400,)) is None
    ]
    earlier = [why for r in sweep.refused if (why := earlier_cause(r, (400,)))]
    if earlier and not bad:
        raise Precondition(f"not evaluated: {len(earlier)} of the encodings were {earlier[0]}")
    return verdict(
        not bad,
        f"all {len(sweep.refused)} low-order encodings refused with 400",
        f"{len(bad)} of {len(sweep.refused)} low-order encodings not refused with 400: {'; '.join(bad[:4])}",
        Refusals(len(sweep.refused), tuple(bad)),
    )


@check(
    "AEAD-011",
    "MUST",
    "Two overlapping requests are each answered under their own key, with their own content",
    spec=("R4.5",),
    reads=(OVERLAPPING,),
    evidence=Pairs,
)
def aead_011(reads: Reads) -> Verdict:
    """Only what overlap can break: each answer opens under its own request's key and carries none of
    the other's content. A hash or signature that fails on every answer is HASH-*'s and SIG-*'s failure."""
    pair = reads.get(OVERLAPPING)
    plain, streamed = pair.first, pair.second
    assert isinstance(streamed, ExchangeRecord)
    both = (("chat", plain, streamed), ("chat stream", streamed, plain))
    for name, record, _ in both:
        if record.http.status != 200 or not record.messages:
            raise Precondition(f"not evaluated: the overlapping {name} request was not served ({record.http.status})")
    problems = [
        f"{name}: {m.where} does not open under its own key" for name, r, _ in both for m in r.messages if m.aead_error
    ]
    problems += [f"{name} carries the other request's content" for name, r, other in both if crossed(r, other)]
    return verdict(
        not problems,
        "both overlapping answers open under their own key and carry their own content",
        "; ".join(problems[:3]),
        Pairs(plain.http.status, streamed.http.status),
    )
