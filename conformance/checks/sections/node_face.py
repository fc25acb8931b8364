"""docs/spec.md §7.3, the proxy's hop, as a node enforces it on its own face; with the node-face rules
of §1 (X-Request-Id, X-Stack-Small-Id) and §3 (the 32-byte hash) that only this face can test.

A node trusts a request because the proxy signed its ``plaintext_body_hash`` with the key of the Sui
address that owns the stack (``X-Signature``), not because of a bearer token. Each probe here breaks
one part of that hop, everything else valid, so a refusal can only be for that part. They run only
when the suite stands in for the proxy (``run --face node``).

The owner's scheme decides which verifier the node runs: with a secp256k1 or secp256r1 owner the
probes also break R7.5's ECDSA rules (a high-s twin, r or s out of range) and the curve point, which
an Ed25519 owner cannot reach, so with one those checks skip rather than pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...client import DROP
from ...protocol import (
    CURVE_ORDER,
    Scheme,
    SuiSignature,
    SuiSigner,
    b64decode,
    blake2b_256,
    ecdsa_scalars,
    off_curve_key,
    to_high_s,
    with_scalars,
)
from ...records import ExchangeRecord
from ...textsafe import one_line
from ..base import Group, Precondition, Skip, Verdict, verdict
from ..evidence import Hop, Pairs, Refusal, Refusals
from ..judging import earlier_cause, refusal_problem, refused_with, response_of
from ..probe import Probe, Reads, probe
from ..probes import CHAT, ERR_MUTATIONS
from ..run import Run
from ._helpers import refusal, served

GROUP = Group((7, 1, 3), "The node face: X-Signature and the proxy's hop")
check = GROUP.check


# --- probes ------------------------------------------------------------------------------------------


def _node_signer(run: Run) -> SuiSigner:
    face = run.client.node_face
    if face is None:
        raise Precondition("the client is not standing in for the proxy (no --signer-key)")
    return face.signer


def _signed_by(
    run: Run,
    signer: SuiSigner,
    *,
    message: bytes | None = None,
    alter: Callable[[SuiSignature], SuiSignature] | None = None,
) -> ExchangeRecord:
    """A valid chat request whose X-Signature is made by ``signer`` (over ``message``, else the hash),
    then passed through ``alter``: everything but the signature is as the node must serve it."""
    prepared = run.prepare(run.lock())
    digest = message if message is not None else b64decode(prepared.sealed.request.plaintext_body_hash)
    signature = signer.sign(digest)
    prepared.headers["x-signature"] = (alter(signature) if alter is not None else signature).to_b64()
    return run.post(prepared, mutated=False)


def _no_signature(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"x-signature": DROP})


NODE_NO_SIGNATURE: Probe[ExchangeRecord] = probe("node_no_signature", face="node")(_no_signature)


def _malformed_signature(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"x-signature": "bm90IGEgU3VpIHNpZ25hdHVyZQ=="})  # b64("not a Sui signature")


NODE_MALFORMED_SIGNATURE: Probe[ExchangeRecord] = probe("node_malformed_signature", face="node")(_malformed_signature)


def _foreign_signer(run: Run) -> ExchangeRecord:
    _node_signer(run)
    return _signed_by(run, SuiSigner(Scheme.ED25519, run.client.rng.token_bytes(32)))


NODE_FOREIGN_SIGNER: Probe[ExchangeRecord] = probe("node_foreign_signer", face="node")(_foreign_signer)


def _other_hash(run: Run) -> ExchangeRecord:
    return _signed_by(run, _node_signer(run), message=blake2b_256(b"atoma-conformance: some other request"))


NODE_OTHER_HASH: Probe[ExchangeRecord] = probe("node_other_hash", face="node")(_other_hash)


def _long_hash(run: Run) -> ExchangeRecord:
    """33 bytes, signed as they stand (as the upstream proxy signs them, W8): only the length is wrong."""
    return run.send("chat", mutate=ERR_MUTATIONS["err_long_hash"](run))


NODE_LONG_HASH: Probe[ExchangeRecord] = probe("node_long_hash", face="node")(_long_hash)


def _stream_no_request_id(run: Run) -> ExchangeRecord:
    return run.send("chat", stream=True, headers={"x-request-id": DROP})


NODE_STREAM_NO_REQUEST_ID: Probe[ExchangeRecord] = probe("node_stream_no_request_id", face="node")(
    _stream_no_request_id
)


def _unheld_stack(run: Run) -> int:
    """A stack the signer almost certainly does not own: 60 random bits (a neighbour might be owned)."""
    return int.from_bytes(run.client.rng.token_bytes(8), "big") >> 4


def _stack_header(run: Run) -> ExchangeRecord:
    """Owned stack in the envelope, a foreign one in the header: served only if the header is ignored."""
    return run.send("chat", headers={"x-stack-small-id": str(_unheld_stack(run))})


NODE_STACK_HEADER: Probe[ExchangeRecord] = probe("node_stack_header", face="node")(_stack_header)


def _stack_header_reverse(run: Run) -> ExchangeRecord:
    """The reverse: a foreign stack in the envelope, the owned one in the header; it must be refused."""
    lock = run.lock()
    assert lock.lock is not None
    owned = lock.lock.stack_small_id
    return run.send("chat", lock=lock, stack_small_id=_unheld_stack(run), headers={"x-stack-small-id": str(owned)})


NODE_STACK_HEADER_REVERSE: Probe[ExchangeRecord] = probe("node_stack_header_reverse", face="node")(
    _stack_header_reverse
)


@dataclass(frozen=True)
class Owner:
    """The stack owner the suite signs as: public facts only (its key stays in the client)."""

    scheme: Scheme
    address: str


def _owner(run: Run) -> Owner:
    signer = _node_signer(run)
    return Owner(signer.scheme, signer.address)


NODE_OWNER: Probe[Owner] = probe("node_owner", face="node", sends=0, locks=0)(_owner)


def _ecdsa_owner(run: Run) -> SuiSigner:
    """The owner's signer when its scheme has R7.5's ECDSA rules; the probes of those rules do not
    apply to an Ed25519 owner, and their checks skip (a skip, never a pass)."""
    signer = _node_signer(run)
    if signer.scheme is Scheme.ED25519:
        raise Skip("not applicable: the owner key is Ed25519 (R7.5's ECDSA rules need a secp256k1 or secp256r1 owner)")
    return signer


def _ecdsa_probe(name: str, alter: Callable[[SuiSignature], SuiSignature]) -> Probe[ExchangeRecord]:
    """A probe sending a valid request whose owner's ECDSA X-Signature is passed through ``alter``."""

    def send(run: Run) -> ExchangeRecord:
        return _signed_by(run, _ecdsa_owner(run), alter=alter)

    return probe(name, face="node")(send)


def _order(sig: SuiSignature) -> int:
    return CURVE_ORDER[sig.scheme]


# R7.5: the malleated twin (s -> n - s, so s > n/2) of a signature that verifies, and r or s outside
# 1 to n - 1 (r = n and s = 0: a node that range-checks neither, and inverts s itself, crashes on them).
NODE_ECDSA_HIGH_S = _ecdsa_probe("node_ecdsa_high_s", to_high_s)
NODE_ECDSA_R_ORDER = _ecdsa_probe(
    "node_ecdsa_r_order", lambda sig: with_scalars(sig, _order(sig), ecdsa_scalars(sig)[1])
)
NODE_ECDSA_S_ZERO = _ecdsa_probe("node_ecdsa_s_zero", lambda sig: with_scalars(sig, ecdsa_scalars(sig)[0], 0))
# Table 7.1 and R7.11: the valid signature with an embedded key of the right shape that is no curve point.
NODE_ECDSA_OFF_CURVE = _ecdsa_probe(
    "node_ecdsa_off_curve", lambda sig: SuiSignature(sig.scheme, sig.signature, off_curve_key(sig.scheme))
)


def _empty_signature(run: Run) -> ExchangeRecord:
    """An X-Signature header that is present and empty: canonical base64 of zero bytes, so it is not
    missing (R7.11's MISSING_HEADER) but a signature that cannot be parsed (INVALID_HEADER)."""
    _node_signer(run)
    return run.send("chat", headers={"x-signature": ""})


NODE_EMPTY_SIGNATURE: Probe[ExchangeRecord] = probe("node_empty_signature", face="node")(_empty_signature)


# --- checks ------------------------------------------------------------------------------------------


def _refused_with(
    check_id: str,
    probes: Probe[ExchangeRecord] | tuple[Probe[ExchangeRecord], ...],
    title: str,
    spec: tuple[str, ...],
    want: tuple[tuple[int, str], ...],
) -> None:
    """Register a check that each of ``probes`` is refused cleanly with one of the (status, code)
    pairs of ``want`` (Table 10.1 pairs them: 401 INVALID_HEADER is neither). A probe that does not
    apply to the run skips the check; the refusals are judged only once a valid request is served, or
    a refusal could be the setup's fault (a signer that owns nothing, a wrong node key), and one for an
    earlier cause (rate limiting, no node) is "not evaluated"."""
    several = isinstance(probes, tuple)
    sent = probes if isinstance(probes, tuple) else (probes,)
    # The node face has no bearer token: a 401 is the hop's own answer (R7.11, R7.12), judged below,
    # never an earlier cause; rate limiting and an unusable stack still are.
    statuses = (*(status for status, _ in want), 401)

    def predicate(reads: Reads) -> Verdict:
        records = [(p.name, reads.get(p)) for p in sent]
        served(reads, CHAT)
        for name, record in records:
            earlier = earlier_cause(record, statuses)
            if earlier is not None:
                raise Precondition(f"not evaluated: {name} {earlier}")
        if several:
            bad = [(name, why) for name, record in records if (why := refused_with(record, want))]
            evidence = Refusals(len(records), tuple(name for name, _ in bad))
            good = ", ".join(f"{name} refused {response_of(record).status}" for name, record in records)
            return verdict(not bad, good, "; ".join(f"{name}: {why}" for name, why in bad), evidence)
        record = records[0][1]
        why = refused_with(record, want)
        return verdict(why is None, f"refused {response_of(record).status}", why or "", refusal(record))

    evidence = Refusals if several else Refusal
    check(check_id, "MUST", title, spec=spec, reads=(CHAT, *sent), evidence=evidence)(predicate)


_MISSING_HEADER = ((400, "MISSING_HEADER"),)
_BAD_HEADER = ((400, "INVALID_HEADER"), (401, "AUTH_ERROR"))  # R7.11, R7.12
for _id, _probe, _title, _spec, _want in (
    (
        "NODE-001",
        NODE_NO_SIGNATURE,
        "A request without X-Signature is refused with 400 MISSING_HEADER",
        ("R7.11",),
        _MISSING_HEADER,
    ),
    (
        "NODE-002",
        NODE_MALFORMED_SIGNATURE,
        "An X-Signature that is not a Sui signature is refused",
        ("R7.11",),
        _BAD_HEADER,
    ),
    (
        "NODE-003",
        NODE_FOREIGN_SIGNER,
        "A valid signature by an address that does not own the stack is refused",
        ("R7.12",),
        _BAD_HEADER,
    ),
    (
        "NODE-004",
        NODE_OTHER_HASH,
        "The stack owner's signature over a different hash is refused",
        ("R7.11",),
        _BAD_HEADER,
    ),
    (
        "NODE-005",
        NODE_LONG_HASH,
        "A signed 33-byte plaintext_body_hash is refused with 400",
        ("R3.9", "R10.3"),
        ((400, "INVALID_BODY"), (400, "INVALID_HEADER")),
    ),
    (
        "NODE-006",
        NODE_STREAM_NO_REQUEST_ID,
        "A stream request without X-Request-Id is refused with 400 MISSING_HEADER before any event",
        ("R1.7",),
        _MISSING_HEADER,
    ),
    (
        "NODE-008",
        NODE_ECDSA_HIGH_S,
        "An ECDSA X-Signature with high s (the malleated twin of a valid one) is refused",
        ("R7.5", "R7.11"),
        _BAD_HEADER,
    ),
    (
        "NODE-010",
        NODE_ECDSA_OFF_CURVE,
        "An ECDSA X-Signature whose public key is not a curve point is refused as invalid, not with 5xx",
        ("R7.11", "R10.2"),
        _BAD_HEADER,
    ),
    (
        "NODE-011",
        NODE_EMPTY_SIGNATURE,
        "An X-Signature that decodes to zero bytes is refused as invalid, not as missing or with 5xx",
        ("R7.11", "R10.2"),
        _BAD_HEADER,
    ),
):
    _refused_with(_id, _probe, _title, _spec, _want)

_refused_with(
    "NODE-009",
    (NODE_ECDSA_R_ORDER, NODE_ECDSA_S_ZERO),
    "An ECDSA X-Signature with r or s outside 1 to n - 1 (r = n, s = 0) is refused as invalid, not with 5xx",
    ("R7.5", "R7.11", "R10.2"),
    _BAD_HEADER,
)


@check(
    "NODE-007",
    "MUST",
    "The caller's X-Stack-Small-Id is ignored: the envelope's stack decides",
    spec="R1.8",
    reads=(CHAT, NODE_STACK_HEADER, NODE_STACK_HEADER_REVERSE),
    evidence=Pairs,
)
def node_007(reads: Reads) -> Verdict:
    """Pairs: first the foreign stack in the header (must be served), then in the envelope (must be
    refused); the two statuses together show which of the two the node authorized by. Judged only once
    a request without the header is served: a node that refuses every request refuses the first too."""
    served(reads, CHAT)
    header = reads.get(NODE_STACK_HEADER).http.status
    envelope = reads.get(NODE_STACK_HEADER_REVERSE).http.status
    evidence = Pairs(header, envelope)
    if header != 200:
        return verdict(False, "", f"refused with {header}: the caller's X-Stack-Small-Id decided the stack", evidence)
    return verdict(
        envelope != 200,
        f"the envelope decides (served 200; a foreign envelope stack refused {envelope})",
        "served a stack the signer does not own, named in the envelope",
        evidence,
    )


@check(
    "NODE-012",
    "MUST",
    "The stack owner's valid X-Signature is served: the node derives its address as R7.6 says, for its scheme",
    spec=("R7.6", "R7.12"),
    reads=(NODE_OWNER, CHAT),
    evidence=Hop,
)
def node_012(reads: Reads) -> Verdict:
    """The owner's address is H(flag || public key): a node that derives it any other way (the Ed25519
    flag for every scheme, say) finds that nobody owns the stack and refuses the owner as a stranger."""
    owner = reads.get(NODE_OWNER)
    record = reads.get(CHAT)
    status, error = record.http.status, record.http.error_body()
    evidence = Hop(owner.scheme.label, owner.address, status, error[0][:64] if error else None)
    if status == 200:
        return verdict(True, f"served the {owner.scheme.label} owner {owner.address}", "", evidence)
    if refusal_problem(record) is not None or refused_with(record, _BAD_HEADER) is not None:
        raise Precondition(f"not evaluated: the chat exchange was refused {status}, not as an unauthorized signer")
    refused = f"refused {status} {one_line(evidence.code, 64)}"
    return verdict(
        False,
        "",
        f"the stack owner's valid {owner.scheme.label} X-Signature was {refused}: the node did not verify it, or did "
        f"not derive its signer's address {owner.address} as H(flag || public key)",
        evidence,
    )
