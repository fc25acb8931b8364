"""What the suite observed, as plain records, and the pure analysis that fills them.

Words: *records* are what was seen on the wire (this module); *evidence* is what a check keeps of
them to explain its verdict (``conformance.checks.evidence``); *probes* are what a run sends.

The client records every exchange; checks are predicates over these records. Analysis never
raises: a field that cannot be decoded, a tag that does not verify or a signature by the wrong key is
written down as an error code on the record, because a conformance suite must describe a broken
target, not crash on it.

Records hold plaintext in memory so that shape checks can read it, but :meth:`summary` (what reports
and logs see) holds only hashes, lengths, codes and counts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from .protocol import jsonwire
from .protocol.b64 import b64decode
from .protocol.envelope import Exchange
from .protocol.errors import ProtocolError
from .protocol.models import ConfidentialComputeRequest, LockResponse
from .protocol.primitives import HASH_LEN, NONCE_LEN, TAG_LEN, blake2b_256, is_low_order
from .protocol.sse import SseStats
from .protocol.sui import SuiSignature, parse_signature, verify

MISSING: Any = object()  # a member that is absent (distinct from JSON null)


def digest(data: bytes) -> str:
    """A short public fingerprint for evidence: first 16 hex digits of SHA-256 (never the data)."""
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class HttpRecord:
    """One HTTP request/response pair, as far as the checks need it."""

    method: str
    path: str
    status: int | None  # None: no response (timeout, connection error)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # transport-level failure, e.g. "timeout", "too-large"
    detail: str | None = None  # that failure in words (conformance.transport_errors), sanitised
    # A served body over RETAINED_BODY_BYTES is analysed, then kept only as a prefix: these say what the
    # whole body was, for the checks that judge its bytes (ENC-010) and for the summary.
    full_bytes: int | None = None
    full_sha256: str | None = None
    compact: bool | None = None
    elapsed_s: float = 0.0
    # Set by shed_body: the error body, judged on the whole body before it was cut to a prefix.
    shed_error: tuple[str, str] | None = None
    shed: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def media_type(self) -> str:
        return self.content_type.split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as strict JSON, or MISSING when it is not JSON."""
        try:
            return jsonwire.loads(self.body)
        except ProtocolError:
            return MISSING

    def error_body(self) -> tuple[str, str] | None:
        """(code, message) when the body is exactly {"error":{"code":str,"message":str}}."""
        if self.shed:
            return self.shed_error
        value = self.json()
        if not isinstance(value, dict) or set(value) != {"error"} or not isinstance(value["error"], dict):
            return None
        inner = value["error"]
        if set(inner) != {"code", "message"} or not all(isinstance(inner[k], str) for k in inner):
            return None
        return inner["code"], inner["message"]

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "content_type": self.content_type,
            "body_bytes": self.full_bytes if self.full_bytes is not None else len(self.body),
            "body_sha256": self.full_sha256 or digest(self.body),
            "error": self.error,
        }


@dataclass
class LockRecord:
    http: HttpRecord
    members: list[str] = field(default_factory=list)
    lock: LockResponse | None = None
    parse_error: str | None = None
    public_key: bytes | None = None
    public_key_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.lock is not None and self.public_key is not None and not is_low_order(self.public_key)


def analyse_lock(http: HttpRecord) -> LockRecord:
    record = LockRecord(http)
    value = http.json()
    if isinstance(value, dict):
        record.members = list(value)
    if value is MISSING:
        record.parse_error = "INVALID_JSON"
        _shed_lock(record)
        return record
    try:
        record.lock = LockResponse.from_json(value)
    except ProtocolError as exc:
        record.parse_error = exc.code
        _shed_lock(record)
        return record
    try:
        record.public_key = record.lock.node_public_key()
    except ProtocolError as exc:
        record.public_key_error = exc.code
    _shed_lock(record)
    return record


def _shed_lock(record: LockRecord) -> None:
    """A lock reply over RETAINED_BODY_BYTES (a 32 MB "public key") is kept as a prefix, and the key
    string, already judged (public_key_error), as a note of its length: every lock record lives until
    the run ends."""
    shed_body(record.http)
    if record.lock is not None and len(record.lock.public_key) > _PREFIX_BYTES:
        record.lock = replace(record.lock, public_key=_kept(record.lock.public_key))


def shed_body(http: HttpRecord) -> HttpRecord:
    """Keep a body over RETAINED_BODY_BYTES as a prefix, once its error body is judged: a probe's
    record lives until the run ends, and a hostile target answers every request with 32 MB."""
    if len(http.body) > RETAINED_BODY_BYTES and not http.shed:
        judged = http.error_body()  # its text is the target's: a prefix of each, like the body
        http.shed_error = None if judged is None else (judged[0][:_PREFIX_BYTES], judged[1][:_PREFIX_BYTES])
        http.full_bytes, http.full_sha256 = len(http.body), digest(http.body)
        http.body = http.body[:_PREFIX_BYTES]
        http.shed = True
    return http


@dataclass
class MessageRecord:
    """One encrypted response or stream chunk, analysed field by field."""

    where: str
    members: list[str]
    envelope: dict[str, Any]
    nonce: bytes | None = None
    nonce_error: str | None = None
    ciphertext: bytes | None = None
    ciphertext_error: str | None = None
    response_hash: bytes | None = None
    response_hash_error: str | None = None
    signature: SuiSignature | None = None
    signature_error: str | None = None
    signature_verify_error: str | None = None
    plaintext: bytes | None = field(default=None, repr=False)
    aead_error: str | None = None
    computed_hash: bytes | None = None
    ciphertext_bytes: int | None = None  # set when a large ciphertext was let go after analysis (shed)
    inner: Any = field(default=MISSING, repr=False)  # the decrypted plaintext parsed as JSON
    inner_error: str | None = None

    @property
    def clear_usage(self) -> Any:
        return self.envelope.get("usage", MISSING)

    @property
    def hash_matches(self) -> bool:
        return self.response_hash is not None and self.computed_hash == self.response_hash

    @property
    def signer(self) -> str | None:
        return self.signature.address if self.signature is not None else None

    def summary(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "members": self.members,
            "nonce": self.nonce.hex() if self.nonce is not None else self.nonce_error,
            "ciphertext_bytes": len(self.ciphertext)
            if self.ciphertext is not None
            else self.ciphertext_bytes or self.ciphertext_error,
            "response_hash_ok": self.hash_matches,
            "signature": self.signature.scheme.label if self.signature else self.signature_error,
            "signature_verify_error": self.signature_verify_error,
            "aead_error": self.aead_error,
            "plaintext_bytes": len(self.plaintext) if self.plaintext is not None else None,
        }


def _field(
    envelope: dict[str, Any], name: str, length: int | None, minimum: int = 0
) -> tuple[bytes | None, str | None]:
    if name not in envelope:
        return None, "MISSING_FIELD"
    value = envelope[name]
    if value is None:
        return None, "NULL"
    try:
        raw = b64decode(value, field=name)
    except ProtocolError as exc:
        return None, exc.code
    if (length is not None and len(raw) != length) or len(raw) < minimum:
        return raw, "WRONG_LENGTH"
    return raw, None


def analyse_message(where: str, envelope: Any, exchange: Exchange) -> MessageRecord:
    """Decode, decrypt, hash and verify one envelope without ever raising."""
    if not isinstance(envelope, dict):
        return MessageRecord(where, [], {}, nonce_error="NOT_AN_OBJECT", aead_error="NOT_AN_OBJECT")
    record = MessageRecord(where, list(envelope), envelope)
    record.nonce, record.nonce_error = _field(envelope, "nonce", NONCE_LEN)
    record.ciphertext, record.ciphertext_error = _field(envelope, "ciphertext", None, TAG_LEN)
    record.response_hash, record.response_hash_error = _field(envelope, "response_hash", HASH_LEN)
    if record.response_hash_error == "WRONG_LENGTH":
        record.response_hash = None
    if record.nonce is not None and record.nonce_error is None and record.ciphertext is not None:
        if record.ciphertext_error is None:
            try:
                record.plaintext = exchange.aead.open(record.nonce, record.ciphertext)
            except ProtocolError as exc:
                record.aead_error = exc.code
        else:
            record.aead_error = record.ciphertext_error
    else:
        record.aead_error = record.nonce_error or record.ciphertext_error
    if record.plaintext is not None:
        record.computed_hash = blake2b_256(record.plaintext)
        try:
            record.inner = jsonwire.loads(record.plaintext)
        except ProtocolError as exc:
            record.inner_error = exc.code
    signature = envelope.get("signature", MISSING)
    if signature is MISSING:
        record.signature_error = "MISSING_FIELD"
    elif signature is None:
        record.signature_error = "NULL"
    else:
        try:
            record.signature = parse_signature(signature)
        except ProtocolError as exc:
            record.signature_error = exc.code
    if record.signature is not None:
        if record.response_hash is None:
            record.signature_verify_error = "NO_HASH_TO_VERIFY"
        else:
            try:
                verify(record.signature, record.response_hash)
            except ProtocolError as exc:
                record.signature_verify_error = exc.code
    return record


@dataclass
class ExchangeRecord:
    """A confidential request and everything that came back."""

    endpoint: str
    streaming: bool
    request: ConfidentialComputeRequest
    request_body: bytes
    exchange: Exchange
    plaintext: bytes = field(repr=False)  # the request plaintext; memory only, never in a repr
    http: HttpRecord
    lock: LockRecord | None = None
    response: MessageRecord | None = None  # non-streaming
    chunks: list[MessageRecord] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # raw event data strings (ciphertexts, no plaintext)
    non_envelope_events: list[str] = field(default_factory=list)
    sse: SseStats | None = None
    stream_error: str | None = None
    truncated_bytes: int = 0

    @property
    def messages(self) -> list[MessageRecord]:
        return [self.response] if self.response is not None else list(self.chunks)

    @property
    def succeeded(self) -> bool:
        return self.http.status == 200

    def summary(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "stream": self.streaming,
            "key_id": self.exchange.key_id,
            "request_nonce": self.exchange.request_nonce.hex(),
            "plaintext_bytes": len(self.plaintext),
            "plaintext_sha256": digest(self.plaintext),
            "http": self.http.summary(),
            "messages": [m.summary() for m in self.messages],
            "sse": None if self.sse is None else vars(self.sse),
            "stream_error": self.stream_error,
        }


Answer = HttpRecord | ExchangeRecord | LockRecord


def cut_off(answer: Answer) -> str | None:
    """Why this answer is not a whole answer (None when it is one): no answer at all, or one a read
    timeout, the exchange deadline, the size or chunk cap or a transport error cut short. A stream the
    client stopped reading because its framing broke is not a cut: that is STREAM-003's evidence."""
    http = answer if isinstance(answer, HttpRecord) else answer.http
    if isinstance(answer, ExchangeRecord) and answer.stream_error == "TOO_MANY_CHUNKS":
        return "too-many-chunks"
    if http.status is None:
        return http.error or "no answer"
    if http.error is not None and http.error != "stopped":
        return http.error
    return None


RETAINED_BODY_BYTES = 1024 * 1024
_PREFIX_BYTES = 64 * 1024


def shed(record: ExchangeRecord, value: Any) -> None:
    """Let go of a large served body once it is analysed.

    A run keeps every record until it ends, and a hostile target can answer each of ~70 probes with a
    body just under the 32 MiB cap: kept whole, with its parsed envelope beside it, that is gigabytes.
    What the checks read after analysis is kept: the message record (members, hashes, signature, the
    plaintext), whether the body was compact JSON (ENC-010), and the body's length and hash; the body
    itself shrinks to a prefix, and any envelope string over the prefix size to a note of its length.
    """
    http = record.http
    if len(http.body) <= RETAINED_BODY_BYTES:
        return
    from .protocol import jsonwire

    http.compact = None if value is MISSING else jsonwire.dumps(value) == http.body  # None: not JSON
    http.full_bytes, http.full_sha256 = len(http.body), digest(http.body)
    http.body = http.body[:_PREFIX_BYTES]
    message = record.response
    if message is not None:
        message.envelope = {key: _kept(item) for key, item in message.envelope.items()}
        if message.ciphertext is not None and len(message.ciphertext) > _PREFIX_BYTES:
            message.ciphertext_bytes, message.ciphertext = len(message.ciphertext), None


def _kept(item: Any) -> Any:
    return f"<{len(item):,} characters, not kept>" if isinstance(item, str) and len(item) > _PREFIX_BYTES else item
