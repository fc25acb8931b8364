"""The NODE checks: what a node must enforce on its own face, where the proxy's hop replaces the lock.

A node trusts a request because the proxy signed its ``plaintext_body_hash`` with the key of the Sui
address that owns the stack (``X-Signature``, spec §7.3), not because of a bearer token. Each probe
below breaks one part of that hop, with everything else valid, so a refusal can only be for that
part. They run only when the suite stands in for the proxy (``run --face node``); every check of the
other categories that does not need a lock runs unchanged on the node face.
"""

from __future__ import annotations

from ..client import DROP
from ..evidence import ExchangeRecord
from ..protocol.b64 import b64decode
from ..protocol.primitives import blake2b_256
from ..protocol.sui import Scheme, SuiSigner
from .base import Precondition, Verdict, check
from .judging import refusal_problem
from .run import Run, scenario
from .scenarios import ERR_MUTATIONS, success


def _node_signer(run: Run) -> SuiSigner:
    face = run.client.node_face
    if face is None:
        raise Precondition("the client is not standing in for the proxy (no --signer-key)")
    return face.signer


def _signed_by(run: Run, signer: SuiSigner, *, message: bytes | None = None) -> ExchangeRecord:
    """A valid chat request whose X-Signature is made by ``signer`` (over ``message``, else the hash)."""
    prepared = run.client.prepare(
        "chat",
        run.plaintext("chat"),
        run.lock(),
        model_name=run.target.chat_model,
        stream=False,
        num_compute_units=None,
        mutate=None,
        headers=None,
    )
    digest = message if message is not None else b64decode(prepared.sealed.request.plaintext_body_hash)
    prepared.headers["x-signature"] = signer.sign(digest).to_b64()
    return run.post(prepared, mutated=False)


@scenario("node_no_signature", face="node")
def _no_signature(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"x-signature": DROP})


@scenario("node_malformed_signature", face="node")
def _malformed_signature(run: Run) -> ExchangeRecord:
    return run.send("chat", headers={"x-signature": "bm90IGEgU3VpIHNpZ25hdHVyZQ=="})  # b64("not a Sui signature")


@scenario("node_foreign_signer", face="node")
def _foreign_signer(run: Run) -> ExchangeRecord:
    _node_signer(run)
    return _signed_by(run, SuiSigner(Scheme.ED25519, run.client.rng.token_bytes(32)))


@scenario("node_other_hash", face="node")
def _other_hash(run: Run) -> ExchangeRecord:
    return _signed_by(run, _node_signer(run), message=blake2b_256(b"atoma-conformance: some other request"))


@scenario("node_long_hash", face="node")
def _long_hash(run: Run) -> ExchangeRecord:
    """33 bytes, signed as they stand (as the upstream proxy signs them, W8): only the length is wrong."""
    return run.send("chat", mutate=ERR_MUTATIONS["err_long_hash"](run))


@scenario("node_stream_no_request_id", face="node")
def _stream_no_request_id(run: Run) -> ExchangeRecord:
    return run.send("chat", stream=True, headers={"x-request-id": DROP})


def _unheld_stack(run: Run) -> int:
    """A stack the signer almost certainly does not own: 60 random bits (a neighbour might be owned)."""
    return int.from_bytes(run.client.rng.token_bytes(8), "big") >> 4


@scenario("node_stack_header", face="node")
def _stack_header(run: Run) -> ExchangeRecord:
    """Owned stack in the envelope, a foreign one in the header: served only if the header is ignored."""
    return run.send("chat", headers={"x-stack-small-id": str(_unheld_stack(run))})


@scenario("node_stack_header_reverse", face="node")
def _stack_header_reverse(run: Run) -> ExchangeRecord:
    """The reverse: a foreign stack in the envelope, the owned one in the header; it must be refused."""
    lock = run.lock()
    assert lock.lock is not None
    owned = lock.lock.stack_small_id
    return run.send("chat", lock=lock, stack_small_id=_unheld_stack(run), headers={"x-stack-small-id": str(owned)})


def _refused(run: Run, name: str, statuses: tuple[int, ...], codes: tuple[str, ...]) -> Verdict:
    """Refused cleanly, with one of ``statuses`` and one of ``codes``; only meaningful if a valid request
    is served, or a refusal could be the setup's fault (a signer that owns nothing, a wrong node key)."""
    success(run, "chat")
    record: ExchangeRecord = run.scenario(name)
    problem = refusal_problem(record)
    status = record.http.status
    body = record.http.error_body()
    code = body[0] if body is not None else None
    evidence = {"status": status, "code": code}
    if problem is not None:
        return Verdict("fail", problem, evidence)
    if status not in statuses:
        return Verdict("fail", f"refused with {status}, expected {' or '.join(map(str, statuses))}", evidence)
    if code not in codes:
        return Verdict("fail", f"refused {status} with code {code}, expected {' or '.join(codes)}", evidence)
    return Verdict("pass", f"refused {status} {code}", evidence)


_HEADER_REFUSAL = ((400, 401), ("INVALID_HEADER", "AUTH_ERROR"))


@check(
    "NODE-001",
    "MUST",
    "A request without X-Signature is refused with 400 MISSING_HEADER",
    spec="R7.11",
    evidence="status and error code",
    scenarios=("chat", "node_no_signature"),
)
def node_001(run: Run) -> Verdict:
    return _refused(run, "node_no_signature", (400,), ("MISSING_HEADER",))


@check(
    "NODE-002",
    "MUST",
    "An X-Signature that is not a Sui signature is refused",
    spec="R7.11",
    evidence="status and error code",
    scenarios=("chat", "node_malformed_signature"),
)
def node_002(run: Run) -> Verdict:
    return _refused(run, "node_malformed_signature", *_HEADER_REFUSAL)


@check(
    "NODE-003",
    "MUST",
    "A valid signature by an address that does not own the stack is refused",
    spec="R7.12",
    evidence="status and error code",
    scenarios=("chat", "node_foreign_signer"),
)
def node_003(run: Run) -> Verdict:
    return _refused(run, "node_foreign_signer", *_HEADER_REFUSAL)


@check(
    "NODE-004",
    "MUST",
    "The stack owner's signature over a different hash is refused",
    spec="R7.11",
    evidence="status and error code",
    scenarios=("chat", "node_other_hash"),
)
def node_004(run: Run) -> Verdict:
    return _refused(run, "node_other_hash", *_HEADER_REFUSAL)


@check(
    "NODE-005",
    "MUST",
    "A signed 33-byte plaintext_body_hash is refused with 400",
    spec=("R3.9", "R10.3"),
    evidence="status and error code",
    scenarios=("chat", "node_long_hash"),
)
def node_005(run: Run) -> Verdict:
    return _refused(run, "node_long_hash", (400,), ("INVALID_BODY", "INVALID_HEADER"))


@check(
    "NODE-006",
    "MUST",
    "A stream request without X-Request-Id is refused with 400 MISSING_HEADER before any event",
    spec="R1.7",
    evidence="status, error code, whether a stream started",
    scenarios=("chat", "node_stream_no_request_id"),
)
def node_006(run: Run) -> Verdict:
    return _refused(run, "node_stream_no_request_id", (400,), ("MISSING_HEADER",))


@check(
    "NODE-007",
    "MUST",
    "The caller's X-Stack-Small-Id is ignored: the envelope's stack decides",
    spec="R1.8",
    evidence="statuses with a foreign stack in the header, and with the foreign stack in the envelope instead",
    scenarios=("node_stack_header", "node_stack_header_reverse"),
)
def node_007(run: Run) -> Verdict:
    header = run.scenario("node_stack_header").http.status
    body = run.scenario("node_stack_header_reverse").http.status
    evidence = {"foreign_stack_in_header": header, "foreign_stack_in_envelope": body}
    if header != 200:
        return Verdict("fail", f"refused with {header}: the caller's X-Stack-Small-Id decided the stack", evidence)
    if body == 200:
        return Verdict("fail", "served a stack the signer does not own, named in the envelope", evidence)
    return Verdict("pass", f"the envelope decides (served 200; a foreign envelope stack refused {body})", evidence)
