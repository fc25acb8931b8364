"""docs/spec.md §7.3, the proxy's hop, as a node enforces it on its own face; with the node-face rules
of §1 (X-Request-Id, X-Stack-Small-Id) and §3 (the 32-byte hash) that only this face can test.

A node trusts a request because the proxy signed its ``plaintext_body_hash`` with the key of the Sui
address that owns the stack (``X-Signature``), not because of a bearer token. Each probe here breaks
one part of that hop, everything else valid, so a refusal can only be for that part. They run only
when the suite stands in for the proxy (``run --face node``).
"""

from __future__ import annotations

from ...client import DROP
from ...protocol.b64 import b64decode
from ...protocol.primitives import blake2b_256
from ...protocol.sui import Scheme, SuiSigner
from ...records import ExchangeRecord
from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Pairs, Refusal
from ..judging import refused_with
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


def _signed_by(run: Run, signer: SuiSigner, *, message: bytes | None = None) -> ExchangeRecord:
    """A valid chat request whose X-Signature is made by ``signer`` (over ``message``, else the hash)."""
    prepared = run.prepare(run.lock())
    digest = message if message is not None else b64decode(prepared.sealed.request.plaintext_body_hash)
    prepared.headers["x-signature"] = signer.sign(digest).to_b64()
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


# --- checks ------------------------------------------------------------------------------------------


def _refused_with(
    check_id: str,
    probe: Probe[ExchangeRecord],
    title: str,
    spec: tuple[str, ...],
    want: tuple[tuple[int, str], ...],
) -> None:
    """Register a check that ``probe`` is refused cleanly with one of the statuses and codes of
    ``want`` (Table 10.1). Judged only once a valid request is served, or a refusal could be the
    setup's fault (a signer that owns nothing, a wrong node key)."""

    def predicate(reads: Reads) -> Verdict:
        served(reads, CHAT)
        record = reads.get(probe)
        why = refused_with(record, want)
        return verdict(why is None, f"refused {record.http.status}", why or "", refusal(record))

    check(check_id, "MUST", title, spec=spec, reads=(CHAT, probe), evidence=Refusal)(predicate)


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
):
    _refused_with(_id, _probe, _title, _spec, _want)


@check(
    "NODE-007",
    "MUST",
    "The caller's X-Stack-Small-Id is ignored: the envelope's stack decides",
    spec="R1.8",
    reads=(NODE_STACK_HEADER, NODE_STACK_HEADER_REVERSE),
    evidence=Pairs,
)
def node_007(reads: Reads) -> Verdict:
    """Pairs: first the foreign stack in the header (must be served), then in the envelope (must be
    refused); the two statuses together show which of the two the node authorized by."""
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
