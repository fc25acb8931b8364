"""Replaying a saved case against a target: FIXED when the finding no longer appears, STILL FAILING
when it does.

The exact request bytes are re-sent, with only ``stack_small_id`` rewritten to the fresh lock's
(stacks are per deployment and per API key, and the field is outside the cryptography). The node must
still hold the X25519 key the request was sealed to; replay against a fresh instance, because a
conformant node refuses the second arrival of identical bytes as a replay.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..checks import Target
from ..client import ENDPOINT_PATHS, ConfidentialClient, Prepared
from ..evidence import ExchangeRecord
from ..protocol import jsonwire
from ..protocol.b64 import b64decode
from ..protocol.envelope import SealedRequest, client_exchange
from ..protocol.errors import ProtocolError
from ..protocol.models import ConfidentialComputeRequest
from ..protocol.primitives import blake2b_256
from .cases import ReplayCase
from .oracle import Finding, OracleState, judge, judge_lock


@dataclass(frozen=True)
class ReplayedMutation:
    """What the oracle needs of the original mutation: its family, check and expected outcome."""

    name: str
    check_id: str
    expect: str


@dataclass
class ReplayOutcome:
    still_failing: bool
    findings: list[Finding]
    status: int | None

    @property
    def verdict(self) -> str:
        return "STILL FAILING" if self.still_failing else "FIXED"


def replay(
    case: ReplayCase,
    client: ConfidentialClient,
    target: Target,
    *,
    client_factory: Callable[[str | None], ConfidentialClient] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayOutcome:
    if "steps" in case.extra:
        return _replay_session(case, client, target, client_factory, sleep, clock)
    state = OracleState(expected_signer=target.node_address, api_key=target.api_key)
    for nonce in case.extra.get("prior_nonces", []):
        state.node_nonces.observe("any", bytes.fromhex(nonce), "an earlier request of the campaign")
    lock = client.lock(case.model, max_num_tokens=max(8192, 1_048_576 if case.endpoint == "images" else 0))
    lock_findings = judge_lock(lock)
    if case.check_id.startswith("LOCK-") or lock_findings:
        hit = [f for f in lock_findings if f.check_id == case.check_id]
        return ReplayOutcome(bool(hit), lock_findings, lock.http.status)
    body = case.request_body
    try:
        envelope = jsonwire.loads_object(body)
        if "stack_small_id" in envelope and lock.lock is not None:
            envelope["stack_small_id"] = lock.lock.stack_small_id
            body = jsonwire.dumps(envelope)
    except ProtocolError:
        envelope = {}
    secret = bytes.fromhex(case.exchange_secret_hex)
    node_key = lock.public_key or b""
    with contextlib.suppress(ProtocolError):
        node_key = b64decode(envelope.get("node_dh_public_key"))
    exchange = client_exchange(
        secret[:32], node_key if len(node_key) == 32 else lock.public_key or b"", secret[32:48], secret[48:60]
    )
    try:
        request = ConfidentialComputeRequest.from_json(envelope)
    except ProtocolError:
        request = ConfidentialComputeRequest("", "", case.model, "", "", "", "", 0)
    from .campaign import leak_marker

    marker = leak_marker(secret) if secret else None
    if case.plaintext is not None:
        plaintext = case.plaintext.encode()
    else:  # only the campaign's random marker: enough to find an echo of the plaintext in a refusal
        plaintext = jsonwire.dumps({"user": marker}) if marker else b""
    prepared = Prepared(
        ENDPOINT_PATHS[case.endpoint],
        body,
        client.headers(stream=case.stream),
        SealedRequest(request, exchange, blake2b_256(plaintext)),
        plaintext,
        case.endpoint,
        case.stream,
        lock,
    )
    record: ExchangeRecord = client.post_prepared(prepared)
    mutation = None
    if case.mutation is not None:
        check = str(case.extra.get("mutation_check") or case.check_id)
        mutation = ReplayedMutation(
            case.mutation.split(" ")[1] if " " in case.mutation else case.mutation, check, case.expect
        )
    findings = judge(record, mutation, state)
    return ReplayOutcome(any(f.check_id == case.check_id for f in findings), findings, record.http.status)


def _replay_session(
    case: ReplayCase,
    client: ConfidentialClient,
    target: Target,
    client_factory: Callable[[str | None], ConfidentialClient] | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> ReplayOutcome:
    """Re-execute a logged session step by step."""
    from .campaign import session_keys
    from .stateful import Session, SessionFailure, run_steps

    api = session_keys(target, f"replay-{time.monotonic_ns()}")
    clients = {"a": client_factory(api["a"]) if client_factory is not None and target.embedded else client}
    if "b" in case.extra.get("keys", []):
        if client_factory is None or api["b"] is None:
            raise ValueError("this case needs a second API key (--second-api-key)")
        clients["b"] = client_factory(api["b"])
    session = Session(
        target, clients, sleep, clock, OracleState(expected_signer=target.node_address, api_key=target.api_key)
    )
    try:
        run_steps(session, case.extra["steps"])
    except SessionFailure as failure:
        return ReplayOutcome(failure.finding.check_id == case.check_id, [failure.finding], None)
    finally:
        for name, opened in clients.items():
            if opened is not client:
                opened.close()
                del name
    return ReplayOutcome(False, [], None)
