"""The fuzz oracle: what must hold for one exchange, given what was sent.

A request the strategies left valid (or changed in a way the spec allows) must be served, and every
message of the answer must decode, decrypt, hash, verify and keep nonce discipline. A request a
mutation broke must be refused cleanly and leak nothing. Each violation is a finding named by the
catalogue check it fails, so a fuzz failure reads "ERR-002 tampered tag accepted", not as a diff.

An answer that was cut off (no answer, a read timeout, the exchange deadline, the size cap, a transport
error: :func:`~conformance.fuzz.guard.cut_off`) is not judged at all: its status line may say 200, but
nothing after it can be trusted to be what the target meant to send, so calling it "served" (or
"accepted") would be a verdict about the client's limits. The campaign counts such answers instead,
and a target that mostly gives them is unusable (exit 2), never "no finding".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..checks import CATALOGUE
from ..checks.judging import refusal_problem, secrets_of
from ..evidence import MISSING, ExchangeRecord, LockRecord, MessageRecord
from ..protocol.jsonwire import strict_equal
from ..protocol.nonces import NonceLedger
from ..protocol.primitives import is_low_order
from ..textsafe import one_line
from .guard import cut_off


class Mutation(Protocol):
    """What the oracle needs of a mutation: its family, the check it violates, and the expected outcome."""

    @property
    def name(self) -> str: ...
    @property
    def check_id(self) -> str: ...
    @property
    def expect(self) -> str: ...


# The catalogue is the one source of levels: a finding is as serious as the check it is named after.
LEVELS: dict[str, str] = {check.id: check.level for check in CATALOGUE}
ENDPOINT_CHECK = {
    "chat": "ENDPOINT-001",
    "completions": "ENDPOINT-002",
    "embeddings": "ENDPOINT-003",
    "images": "ENDPOINT-004",
}
STREAM_CHECK = {"chat": "ENDPOINT-005", "completions": "ENDPOINT-006"}


def level_of(check_id: str) -> str:
    """The catalogue level of ``check_id``. An id the catalogue lacks is a bug in the fuzz layer, not a
    target's fault, so it fails loudly rather than defaulting to a level."""
    try:
        return LEVELS[check_id]
    except KeyError:
        raise LookupError(f"{check_id!r} is not a check of the catalogue") from None


@dataclass(frozen=True)
class Finding:
    check_id: str
    reason: str

    def __post_init__(self) -> None:
        level_of(self.check_id)

    @property
    def level(self) -> str:
        return level_of(self.check_id)

    def label(self) -> str:
        return f"{self.check_id} {self.reason}"


@dataclass
class OracleState:
    """What the oracle remembers across a campaign: the nonce ledgers and the signer."""

    expected_signer: str | None = None
    api_key: str | None = None
    signer: str | None = None
    ledger: NonceLedger = field(default_factory=NonceLedger)
    node_nonces: NonceLedger = field(default_factory=NonceLedger)


def judge_lock(lock: LockRecord) -> list[Finding]:
    """Findings for a lock; none for a cut-off answer, which the caller must not use (check
    :func:`cut_off` first)."""
    if cut_off(lock) is not None:
        return []
    if lock.http.status is None:
        return [Finding("LOCK-001", f"the lock call got no answer ({lock.http.error})")]
    if lock.http.status != 200:
        return [Finding("LOCK-001", f"the lock call was answered {lock.http.status}")]
    if lock.lock is None:
        return [Finding("LOCK-001", f"the lock reply does not parse ({lock.parse_error})")]
    if lock.public_key is None:
        return [Finding("LOCK-003", f"the lock's public_key is refused ({lock.public_key_error})")]
    if is_low_order(lock.public_key):
        return [Finding("LOCK-004", "the lock hands out a low-order X25519 key")]
    return []


def judge(record: ExchangeRecord, mutation: Mutation | None, state: OracleState) -> list[Finding]:
    """Every finding for one exchange. Updates the ledgers (so call it once per exchange). A cut-off
    answer gets none: it is no evidence either way (the caller counts it)."""
    if cut_off(record) is not None:
        return []
    if mutation is not None and mutation.expect == "refuse":
        return _judge_refusal(record, mutation, state)
    return _judge_success(record, state, mutated=mutation is not None)


def _judge_refusal(record: ExchangeRecord, mutation: Mutation, state: OracleState) -> list[Finding]:
    problem = refusal_problem(record)
    if problem is not None:
        return [Finding(mutation.check_id, f"{mutation.name} {problem}")]
    findings = []
    status = record.http.status or 0
    if status >= 500:
        findings.append(Finding("ERR-017", f"{mutation.name} refused with {status}, a server error"))
    if record.http.media_type != "application/json" or record.http.error_body() is None:
        findings.append(Finding("ERR-018", f"{mutation.name} refused without the JSON error shape"))
    haystack = record.http.body.decode("utf-8", "replace") + "\n".join(record.http.headers.values())
    for label, secret in secrets_of(state.api_key, record).items():
        if secret and secret in haystack:
            findings.append(Finding("ERR-019", f"{mutation.name} refusal echoes the {label}"))
    return findings


def _judge_success(record: ExchangeRecord, state: OracleState, *, mutated: bool) -> list[Finding]:
    endpoint_check = (STREAM_CHECK if record.streaming else ENDPOINT_CHECK)[record.endpoint]
    if record.http.status != 200:
        why = one_line((record.http.error_body() or ("", f"status {record.http.status}"))[0], 60)
        return [Finding(endpoint_check, f"a valid request was not served ({record.http.status}, {why})")]
    if not mutated:
        state.ledger.observe(record.exchange.key_id, record.exchange.request_nonce, "request")
    findings: list[Finding] = []
    if record.streaming:
        findings += _judge_stream(record)
    elif not record.messages:  # a 200 that carried no response envelope served nothing
        media = one_line(record.http.media_type, 60) or "no content type"
        return [Finding("ENC-005", f"a valid request was answered 200 {media}, with no response message")]
    for message in record.messages:
        findings += _judge_message(message, record, state)
    return findings


def _judge_stream(record: ExchangeRecord) -> list[Finding]:
    if record.http.media_type != "text/event-stream":
        return [Finding("STREAM-001", f"a stream was answered as {one_line(record.http.media_type, 60)}")]
    findings = []
    if any(e.strip() == "[DONE]" for e in record.non_envelope_events):
        findings.append(Finding("STREAM-004", "the stream sends a [DONE] sentinel"))
    if record.stream_error:
        findings.append(Finding("STREAM-003", f"the stream broke ({record.stream_error})"))
    if not record.chunks:
        return [*findings, Finding("STREAM-003", "the stream carried no chunk")]
    last = record.chunks[-1].inner
    if isinstance(last, dict) and not (last.get("choices") == [] and isinstance(last.get("usage"), dict)):
        findings.append(Finding("STREAM-005", "the stream does not end with a usage chunk"))
    nonces = [c.nonce for c in record.chunks]
    if len(set(nonces)) != len(nonces):
        findings.append(Finding("NONCE-003", f"{len(nonces)} chunks share {len(set(nonces))} nonce(s)"))
    elif len(set(record.events)) != len(record.events):
        findings.append(Finding("STREAM-006", "an event is repeated verbatim"))
    comments = record.sse.comments if record.sse else 0
    if comments > len(record.chunks) + 4:
        findings.append(Finding("STREAM-007", f"{comments} keep-alive comments for {len(record.chunks)} events"))
    return findings


def _judge_message(message: MessageRecord, record: ExchangeRecord, state: OracleState) -> list[Finding]:
    where = f"{record.endpoint} {message.where}"
    streaming = record.streaming
    for code, check_id in (
        (message.nonce_error, "ENC-001"),
        (message.ciphertext_error, "ENC-002"),
        (message.response_hash_error, "ENC-003"),
    ):
        if code:
            return [Finding(check_id, f"{where}: {code}")]
    findings = []
    if message.signature_error in ("MISSING_FIELD", "NULL"):
        findings.append(Finding("SIG-002" if streaming else "SIG-001", f"{where}: no signature"))
    elif message.signature_error:
        findings.append(Finding("SIG-003", f"{where}: signature refused ({message.signature_error})"))
    if message.aead_error:
        findings.append(Finding("AEAD-002" if streaming else "AEAD-001", f"{where}: {message.aead_error}"))
        return findings
    if not message.hash_matches:
        findings.append(Finding("HASH-002" if streaming else "HASH-001", f"{where}: response_hash != H(plaintext)"))
    if message.signature is not None:
        if message.signature_verify_error == "SIGNATURE_HIGH_S":
            findings.append(Finding("SIG-005", f"{where}: high-s ECDSA signature"))
        elif message.signature_verify_error:
            findings.append(Finding("SIG-004", f"{where}: {message.signature_verify_error}"))
        else:
            findings += _judge_signer(message, where, state)
    if message.nonce is not None:
        if message.nonce == record.exchange.request_nonce:
            findings.append(Finding("NONCE-002" if streaming else "NONCE-001", f"{where}: echoes the request nonce"))
        first_key = state.node_nonces.observe("any", message.nonce, record.exchange.key_id)
        if first_key is not None and first_key.first.where != first_key.second.where:
            findings.append(Finding("NONCE-004", f"{where}: a nonce seen under another key"))
        reuse = state.ledger.observe(record.exchange.key_id, message.nonce, where)
        if reuse is not None and not streaming:
            findings.append(Finding("NONCE-005", f"{where}: (key, nonce) already used at {reuse.first.where}"))
    findings += _judge_usage(message, where, streaming)
    return findings


def _judge_signer(message: MessageRecord, where: str, state: OracleState) -> list[Finding]:
    signer = message.signer
    if state.expected_signer is not None and signer != state.expected_signer.lower():
        return [Finding("SIG-007", f"{where}: signed by another address than the node's")]
    if state.signer is None:
        state.signer = signer
    elif signer != state.signer:
        return [Finding("SIG-006", f"{where}: a second signer appeared")]
    return []


def _judge_usage(message: MessageRecord, where: str, streaming: bool) -> list[Finding]:
    inner: Any = message.inner.get("usage") if isinstance(message.inner, dict) else None
    clear = message.clear_usage
    has_clear = clear is not MISSING and clear is not None
    if isinstance(inner, dict) and not has_clear:
        return [Finding("USAGE-005", f"{where}: usage is encrypted but absent in clear")]
    if has_clear and not strict_equal(clear, inner):
        return [Finding("USAGE-004" if streaming else "USAGE-003", f"{where}: clear usage differs from encrypted")]
    return []
