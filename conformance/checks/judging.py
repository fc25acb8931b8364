"""The rulebook: every conformance rule the suite judges, written once, as a pure function over one record.

A rule takes one observed record (a message, an exchange, a stream, a lock reply, a refusal) and says
what is wrong with it, or None. The catalogue's checks combine the rules of their id over the probes
they read; the fuzz oracle applies the same rules to every exchange it makes and names each problem
by the same check id; ``StreamVerifier`` (client side) and these rules share the stream predicates of
``conformance.protocol.streamcheck``. So "conformant" means one thing in a run, a fuzz campaign and a
client, and a rule fixed here is fixed everywhere (Schemathesis' ``checks.py`` is the model: one
function per check, called by every engine).

A rule raises :class:`~conformance.checks.base.Precondition` when the record cannot be judged for it
(a stream whose chunks do not all decrypt cannot be judged for coherence): the catalogue reports
"not evaluated", and the oracle passes over it, never calling it a pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..protocol import jsonwire
from ..protocol.b64 import b64encode
from ..protocol.nonces import NonceReuseFinding
from ..protocol.primitives import blake2b_256, is_low_order
from ..protocol.streamcheck import identity_of, is_usage_chunk
from ..protocol.sui import Scheme
from ..records import MISSING, ExchangeRecord, HttpRecord, LockRecord, MessageRecord
from ..textsafe import one_line
from .base import Precondition

LOCK_MEMBERS = ("public_key", "node_small_id", "stack_entry_digest", "stack_small_id")
RESPONSE_MEMBERS = ("nonce", "ciphertext", "response_hash", "signature", "usage")
CHUNK_MEMBERS = ("ciphertext", "nonce", "usage", "signature", "response_hash")
REQUIRED_RESPONSE = frozenset({"nonce", "ciphertext", "response_hash", "signature"})
KEEPALIVE_SLACK = 4  # R9.7: at most one comment per event, plus this many
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


@dataclass(frozen=True)
class Problem:
    """One broken rule: the check it belongs to, and why (in words safe to show)."""

    check_id: str
    reason: str


def names(members: Iterable[str], shown: int = 8) -> str:
    """Member names as a reason shows them: the first few, each escaped and capped, and how many."""
    listed = list(members)
    head = ", ".join(repr(one_line(name, 40)) for name in listed[:shown])
    return f"[{head}{f', … {len(listed)} in all' if len(listed) > shown else ''}]"


# --- one message (a response body or a stream chunk) ------------------------------------------------

MessageJudge = Callable[[MessageRecord, ExchangeRecord], "str | None"]


@dataclass(frozen=True)
class MessageRule:
    check_id: str
    streaming: bool | None  # True: chunks only; False: whole responses only; None: both
    judge: MessageJudge
    endpoint: str | None = None  # only the messages of this endpoint

    def applies(self, record: ExchangeRecord) -> bool:
        if self.streaming is not None and self.streaming != record.streaming:
            return False
        return self.endpoint is None or self.endpoint == record.endpoint


def _missing_signature(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    return m.signature_error if m.signature_error in ("MISSING_FIELD", "NULL") else None


def _unparsable_signature(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    return None if m.signature_error in (None, "MISSING_FIELD", "NULL", *_SCHEME_CODES) else m.signature_error


_SCHEME_CODES = ("SIGNATURE_UNKNOWN_SCHEME", "SIGNATURE_WRONG_LENGTH")


def _unsupported_scheme(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    return m.signature_error if m.signature_error in _SCHEME_CODES else None


def _unverified(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    if m.signature is None:
        return None  # absent or unparsable: SIG-001/002, ENC-004, SIG-003
    return None if m.signature_verify_error in (None, "SIGNATURE_HIGH_S") else m.signature_verify_error


def _malleable(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    if m.signature is None:
        return None
    if m.signature.scheme is not Scheme.ED25519:
        return "high-s ECDSA signature" if m.signature_verify_error == "SIGNATURE_HIGH_S" else None
    s = int.from_bytes(m.signature.signature[32:], "little")
    return "Ed25519 S >= L (malleated)" if m.signature_verify_error is not None and s >= ED25519_ORDER else None


def _undecryptable(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    """AEAD-001/002: a nonce or ciphertext that is not canonical base64 is the encoding rules' failure
    (ENC-*), not a decryption's: nothing was decrypted, so this rule cannot judge the message. A
    ciphertext shorter than its tag, or one that does not open, is this rule's."""
    for member, error in (("nonce", m.nonce_error), ("ciphertext", m.ciphertext_error)):
        if error is not None and error != "WRONG_LENGTH" and m.plaintext is None:
            raise Precondition(
                f"the {member} does not decode ({error}; the encoding checks judge it): nothing to decrypt"
            )
    return m.aead_error


def _not_an_object(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    if m.plaintext is None:
        return None  # AEAD-001/002 report it
    return m.inner_error or (None if isinstance(m.inner, dict) else "not an object")


def _hash_mismatch(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    return None if m.hash_matches or m.plaintext is None else "response_hash != H(plaintext)"


def _response_members(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    missing = REQUIRED_RESPONSE - set(m.members)
    extra = set(m.members) - set(RESPONSE_MEMBERS)
    return f"missing {sorted(missing)}" if missing else (f"unexpected {names(sorted(extra))}" if extra else None)


def _response_order(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    expected = [k for k in RESPONSE_MEMBERS if k in m.members]
    return None if m.members == expected else f"order {names(m.members)}"


def _chunk_members(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    if set(m.members) - set(CHUNK_MEMBERS) or REQUIRED_RESPONSE - set(m.members):
        return f"members {names(m.members)}"
    expected = [k for k in CHUNK_MEMBERS if k in m.members]
    return None if m.members == expected else f"order {names(m.members)}"


def _image_usage(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    return "usage present" if "usage" in m.members else None


def _nothing_decrypted(m: MessageRecord) -> None:
    """A rule about the decrypted object cannot judge a message that did not decrypt: AEAD-001/002 say
    why, and this rule is not evaluated on it (never failed for their reason, never passed)."""
    if m.plaintext is None:
        raise Precondition("the message did not decrypt (AEAD-001/002 judge it): nothing to read")


def _object_kind(kind: str) -> MessageJudge:
    def judge(m: MessageRecord, _r: ExchangeRecord) -> str | None:
        _nothing_decrypted(m)
        return None if isinstance(m.inner, dict) and m.inner.get("object") == kind else f"not a {kind}"

    return judge


def _echoes_request_nonce(m: MessageRecord, r: ExchangeRecord) -> str | None:
    return "echoes the request nonce" if m.nonce is not None and m.nonce == r.exchange.request_nonce else None


def _clear_usage_differs(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    clear = m.clear_usage
    if clear is MISSING:
        return None
    _nothing_decrypted(m)
    inner = m.inner.get("usage") if isinstance(m.inner, dict) else None
    return None if jsonwire.strict_equal(clear, inner) else "clear usage differs from the encrypted usage"


def _usage_presence(m: MessageRecord, _r: ExchangeRecord) -> str | None:
    if not isinstance(m.inner, dict):
        return None
    has_inner = isinstance(m.inner.get("usage"), dict)
    has_clear = m.clear_usage is not MISSING and m.clear_usage is not None
    if has_inner == has_clear:
        return None
    return "usage is encrypted but absent in clear" if has_inner else "clear usage without encrypted usage"


MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule("ENC-001", None, lambda m, _r: m.nonce_error),
    MessageRule("ENC-002", None, lambda m, _r: m.ciphertext_error),
    MessageRule("ENC-003", None, lambda m, _r: m.response_hash_error),
    MessageRule("ENC-004", None, _unparsable_signature),
    MessageRule("ENC-006", False, _response_members),
    MessageRule("ENC-007", False, _response_order),
    MessageRule("ENC-008", True, _chunk_members),
    MessageRule("ENC-009", False, _image_usage, endpoint="images"),
    MessageRule("SIG-001", False, _missing_signature),
    MessageRule("SIG-002", True, _missing_signature),
    MessageRule("SIG-003", None, _unsupported_scheme),
    MessageRule("SIG-004", None, _unverified),
    MessageRule("SIG-005", None, _malleable),
    MessageRule("AEAD-001", False, _undecryptable),
    MessageRule("AEAD-002", True, _undecryptable),
    MessageRule("AEAD-003", None, _not_an_object),
    MessageRule("AEAD-008", True, _object_kind("chat.completion.chunk"), endpoint="chat"),
    MessageRule("AEAD-009", True, _object_kind("text_completion"), endpoint="completions"),
    MessageRule("HASH-001", False, _hash_mismatch),
    MessageRule("HASH-002", True, _hash_mismatch),
    MessageRule("NONCE-001", False, _echoes_request_nonce),
    MessageRule("NONCE-002", True, _echoes_request_nonce),
    MessageRule("USAGE-003", False, _clear_usage_differs),
    MessageRule("USAGE-004", True, _clear_usage_differs),
    MessageRule("USAGE-005", None, _usage_presence),
)
MESSAGE_RULE = {rule.check_id: rule for rule in MESSAGE_RULES}


def message_problems(record: ExchangeRecord) -> list[Problem]:
    """Every message rule broken by any message of a served exchange."""
    out = []
    for rule in MESSAGE_RULES:
        if rule.applies(record):
            for message in record.messages:
                try:
                    why = rule.judge(message, record)
                except Precondition:
                    continue  # the rule cannot judge this message; another rule names what is wrong
                if why:
                    out.append(Problem(rule.check_id, f"{record.endpoint} {message.where}: {why}"))
    return out


# --- one exchange: a served answer, as a whole ------------------------------------------------------

ExchangeJudge = Callable[[ExchangeRecord], "str | None"]


@dataclass(frozen=True)
class ExchangeRule:
    check_id: str
    streaming: bool
    judge: ExchangeJudge
    endpoints: tuple[str, ...] = ("chat", "completions", "embeddings", "images")

    def applies(self, record: ExchangeRecord) -> bool:
        return record.streaming == self.streaming and record.endpoint in self.endpoints


def plaintext_of(record: ExchangeRecord) -> dict[str, Any]:
    """The decrypted JSON object of a non-streaming answer, or Precondition."""
    message = record.messages[0] if record.messages else None
    if message is None or not isinstance(message.inner, dict):
        raise Precondition(f"the {record.endpoint} plaintext could not be decrypted and parsed")
    return message.inner


def stream_plaintexts(record: ExchangeRecord) -> list[dict[str, Any]]:
    """The decrypted JSON objects of every chunk of a stream, or Precondition."""
    inner = [c.inner for c in record.chunks]
    if not inner or not all(isinstance(c, dict) for c in inner):
        raise Precondition(f"the {record.endpoint} stream's chunks could not all be decrypted and parsed")
    return inner


def usage_of(record: ExchangeRecord) -> dict[str, Any]:
    usage = plaintext_of(record).get("usage")
    if not isinstance(usage, dict):
        raise Precondition(f"the {record.endpoint} plaintext has no usage object")
    return usage


def _not_json_success(r: ExchangeRecord) -> str | None:
    ok = r.http.status == 200 and r.http.media_type == "application/json"
    return None if ok else f"{r.http.status} {one_line(r.http.media_type, 60) or 'no content type'}"


def _not_compact(r: ExchangeRecord) -> str | None:
    compact = r.http.compact  # computed before a large body was let go (records.shed)
    if compact is None:
        compact = jsonwire.is_compact(r.http.body)
    return "not compact JSON" if compact is False else None  # None: not JSON at all, ENC-005's failure


def _is(got: Any, want: type) -> bool:
    return isinstance(got, want) and not (want is int and isinstance(got, bool))


def shape(value: Any, spec: dict[str, Any]) -> list[str]:
    """Problems of ``value`` against {key: type-or-constant}; types are checked with JSON semantics."""
    if not isinstance(value, dict):
        return ["not an object"]
    problems = []
    for key, want in spec.items():
        if key not in value:
            problems.append(f"{key} missing")
        elif isinstance(want, type) and not _is(value[key], want):
            problems.append(f"{key} is not {want.__name__}")
        elif not isinstance(want, type) and value[key] != want:
            problems.append(f"{key} is not {want!r}")
    return problems


def _first(problems: list[str]) -> str | None:
    return "; ".join(problems[:5]) if problems else None


def _chat_shape(r: ExchangeRecord) -> str | None:
    inner = plaintext_of(r)
    problems = shape(inner, {"id": str, "object": "chat.completion", "created": int, "model": str, "choices": list})
    for i, choice in enumerate(inner.get("choices") or []):
        problems += [f"choices[{i}].{p}" for p in shape(choice, {"index": int, "message": dict})]
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            problems += [f"choices[{i}].message.{p}" for p in shape(message, {"role": "assistant"})]
    if not inner.get("choices"):
        problems.append("choices is empty")
    return _first(problems)


def _completion_shape(r: ExchangeRecord) -> str | None:
    inner = plaintext_of(r)
    problems = shape(inner, {"id": str, "object": "text_completion", "created": int, "model": str, "choices": list})
    for i, choice in enumerate(inner.get("choices") or []):
        problems += [f"choices[{i}].{p}" for p in shape(choice, {"index": int, "text": str})]
    return _first(problems)


def _embeddings_shape(r: ExchangeRecord) -> str | None:
    inner = plaintext_of(r)
    problems = shape(inner, {"object": "list", "data": list})
    for i, item in enumerate(inner.get("data") or []):
        problems += [f"data[{i}].{p}" for p in shape(item, {"object": "embedding", "index": int, "embedding": list})]
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list) and not all(_is(x, int) or _is(x, float) for x in vector):
            problems.append(f"data[{i}].embedding has non-numbers")
    if not inner.get("data"):
        problems.append("data is empty")
    return _first(problems)


IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8")


def _image_shape(r: ExchangeRecord) -> str | None:
    inner = plaintext_of(r)
    problems = shape(inner, {"created": int, "data": list})
    for i, item in enumerate(inner.get("data") or []):
        blob = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(blob, str):
            problems.append(f"data[{i}].b64_json missing")
            continue
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"data[{i}].b64_json is not base64")
            continue
        if not raw.startswith(IMAGE_MAGIC):
            problems.append(f"data[{i}] is not a PNG/JPEG/WebP/GIF image")
        elif raw.startswith(b"\x89PNG") and len(raw) >= 24 and 0 in struct.unpack(">II", raw[16:24]):
            problems.append(f"data[{i}] has an empty PNG")
    if not inner.get("data"):
        problems.append("data is empty")
    return _first(problems)


def _null_content(r: ExchangeRecord) -> str | None:
    choices = plaintext_of(r).get("choices")
    contents = [c.get("message", {}).get("content") for c in choices or [] if isinstance(c, dict)]
    ok = bool(contents) and all(isinstance(c, str) for c in contents)
    return None if ok else "a message content is not a string"


def _is_count(v: Any) -> bool:
    return _is(v, int) and v >= 0


def _usage_counts(r: ExchangeRecord) -> str | None:
    usage = usage_of(r)
    needed = ("prompt_tokens", "total_tokens") + (("completion_tokens",) if r.endpoint != "embeddings" else ())
    bad = [k for k in needed if not _is_count(usage.get(k))]
    return f"not a non-negative integer: {', '.join(bad)}" if bad else None


def _usage_total(r: ExchangeRecord) -> str | None:
    u = usage_of(r)
    try:
        ok = u["total_tokens"] == u["prompt_tokens"] + (u.get("completion_tokens") or 0)
    except (KeyError, TypeError):
        ok = False
    return None if ok else "total_tokens != prompt_tokens + completion_tokens"


def _usage_details(r: ExchangeRecord) -> str | None:
    usage = usage_of(r)
    bad = []
    for key in ("completion_tokens_details", "prompt_tokens_details"):
        value = usage.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(v is None or _is_count(v) for v in value.values())
        ):
            bad.append(key)
    return f"malformed {', '.join(bad)}" if bad else None


def _usage_plausible(r: ExchangeRecord) -> str | None:
    if r.endpoint == "embeddings":
        return None
    return None if usage_of(r).get("completion_tokens") else "zero completion tokens for a text answer"


TEXT = ("chat", "completions", "embeddings")
STREAMING = ("chat", "completions")


# --- one stream, as a whole --------------------------------------------------------------------------


def _not_event_stream(r: ExchangeRecord) -> str | None:
    ok = r.http.status == 200 and r.http.media_type == "text/event-stream"
    return None if ok else f"{r.http.status} {one_line(r.http.media_type, 60) or 'no content type'}"


def _cacheable(r: ExchangeRecord) -> str | None:
    value = r.http.headers.get("cache-control", "")
    directives = {d.strip().split("=")[0].lower() for d in value.split(",")}
    return None if "no-cache" in directives else f"cache-control {one_line(value, 60) or 'absent'}"


def _not_envelopes(r: ExchangeRecord) -> str | None:
    if not r.chunks and not r.non_envelope_events and r.http.media_type != "text/event-stream":
        # No events because no event stream: the content type is STREAM-001's to judge, not this rule's.
        raise Precondition(f"the answer is not an event stream ({one_line(r.http.media_type, 60) or 'no type'})")
    others = [e for e in r.non_envelope_events if e.strip() != "[DONE]"]
    problems = [f"{len(others)} non-JSON event(s)"] if others else []
    problems += [one_line(r.stream_error, 120)] if r.stream_error else []
    problems += ["no events"] if not r.chunks else []
    return _first(problems)


def _done_sentinel(r: ExchangeRecord) -> str | None:
    return "a [DONE] sentinel was sent" if any(e.strip() == "[DONE]" for e in r.non_envelope_events) else None


def _no_usage_chunk(r: ExchangeRecord) -> str | None:
    return None if is_usage_chunk(stream_plaintexts(r)[-1]) else "no final usage chunk"


def _content_after_finish(chunks: list[dict[str, Any]]) -> bool:
    finished: set[int] = set()
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            index = choice.get("index")
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            text = text if text is not None else choice.get("text")
            if index in finished and text:
                return True
            if choice.get("finish_reason"):
                finished.add(index)
    return False


def _incoherent(r: ExchangeRecord) -> str | None:
    chunks = stream_plaintexts(r)
    problems = []
    identities = {identity_of(c) for c in chunks}
    if len(identities) != 1:
        problems.append(f"{len(identities)} different (id, created, model)")
    usage_at = [i for i, c in enumerate(chunks) if is_usage_chunk(c)]
    if usage_at and usage_at[0] != len(chunks) - 1:
        problems.append(f"{len(chunks) - 1 - usage_at[0]} chunk(s) after the usage chunk")
    nonces = {c.nonce for c in r.chunks}
    # With one nonce for the whole stream (NONCE-003), equal plaintexts give equal events, so a
    # verbatim repeat only proves duplication when the nonces are otherwise fresh.
    if len(set(r.events)) != len(r.events) and len(nonces) > 1:
        problems.append("an event is repeated verbatim")
    finishes = [i for i, c in enumerate(chunks) for ch in c.get("choices") or [] if ch.get("finish_reason")]
    if not finishes:
        problems.append("no choice ever finishes")
    elif any(i < max(finishes) and not c.get("choices") for i, c in enumerate(chunks)):
        problems.append("empty chunk before the last finish")
    if _content_after_finish(chunks):
        problems.append("content after the choice finished (reordered?)")
    return _first(problems)


def keepalive_flood(comments: int, events: int) -> bool:
    """R9.7: more keep-alive comments than one per event plus a little slack is a flood (W15)."""
    return comments > events + KEEPALIVE_SLACK


def _flooded(r: ExchangeRecord) -> str | None:
    comments = r.sse.comments if r.sse else 0
    return f"{comments} comments for {len(r.chunks)} events" if keepalive_flood(comments, len(r.chunks)) else None


def _unterminated(r: ExchangeRecord) -> str | None:
    return f"unterminated final event of {r.truncated_bytes} bytes" if r.truncated_bytes else None


def _nonce_repeats(r: ExchangeRecord) -> str | None:
    nonces = [c.nonce for c in r.chunks if c.nonce is not None]
    if len(set(nonces)) == len(nonces):
        return None
    return f"{len(nonces)} chunks share {len(set(nonces))} nonce(s): AES-GCM nonce reuse under one key"


EXCHANGE_RULES: tuple[ExchangeRule, ...] = (
    ExchangeRule("ENC-005", False, _not_json_success),
    ExchangeRule("ENC-010", False, _not_compact),
    ExchangeRule("AEAD-004", False, _chat_shape, ("chat",)),
    ExchangeRule("AEAD-005", False, _completion_shape, ("completions",)),
    ExchangeRule("AEAD-006", False, _embeddings_shape, ("embeddings",)),
    ExchangeRule("AEAD-007", False, _image_shape, ("images",)),
    ExchangeRule("AEAD-010", False, _null_content, ("chat",)),
    ExchangeRule("USAGE-001", False, _usage_counts, TEXT),
    ExchangeRule("USAGE-002", False, _usage_total, TEXT),
    ExchangeRule("USAGE-006", False, _usage_details, TEXT),
    ExchangeRule("USAGE-007", False, _usage_plausible, TEXT),
    ExchangeRule("STREAM-001", True, _not_event_stream, STREAMING),
    ExchangeRule("STREAM-002", True, _cacheable, STREAMING),
    ExchangeRule("STREAM-003", True, _not_envelopes, STREAMING),
    ExchangeRule("STREAM-004", True, _done_sentinel, STREAMING),
    ExchangeRule("STREAM-005", True, _no_usage_chunk, STREAMING),
    ExchangeRule("STREAM-006", True, _incoherent, STREAMING),
    ExchangeRule("STREAM-007", True, _flooded, STREAMING),
    ExchangeRule("STREAM-009", True, _unterminated, STREAMING),
    ExchangeRule("NONCE-003", True, _nonce_repeats, STREAMING),
)
EXCHANGE_RULE = {rule.check_id: rule for rule in EXCHANGE_RULES}


def exchange_problems(record: ExchangeRecord) -> list[Problem]:
    """Every exchange rule a served exchange breaks (rules it cannot be judged for are passed over)."""
    out = []
    for rule in EXCHANGE_RULES:
        if not rule.applies(record):
            continue
        try:
            why = rule.judge(record)
        except Precondition:
            continue
        if why:
            out.append(Problem(rule.check_id, f"{record.endpoint}{' stream' if record.streaming else ''}: {why}"))
    return out


def round_trip_problem(record: ExchangeRecord) -> str | None:
    """Why a valid request did not round-trip (ENDPOINT-*): not served, nothing came back, or a message
    that does not decrypt, hash or verify."""
    if record.http.status != 200:
        return f"status {record.http.status}{', ' + record.http.error if record.http.error else ''}"
    if not record.messages:
        media = one_line(record.http.media_type, 60) or "no content type"
        return f"answered 200 {media}, with no encrypted message"
    bad = unverified(record)
    return f"{len(bad)} message(s) fail to decrypt, hash or verify (first {bad[0].where})" if bad else None


def unverified(record: ExchangeRecord) -> list[MessageRecord]:
    """The messages of an answer that do not decrypt, hash and verify: what a client must refuse."""
    return [
        m for m in record.messages if m.aead_error or not m.hash_matches or m.signature_verify_error or not m.signature
    ]


def sentinel_of(record: ExchangeRecord) -> bytes | None:
    """The fresh sentinel a probe planted in this request's prompt (conformance.checks.run.Run.sentinel)."""
    mark = re.search(rb"atoma-conformance-sentinel-[0-9a-f]{16}", record.plaintext)
    return mark.group() if mark else None


def crossed(record: ExchangeRecord, other: ExchangeRecord) -> bool:
    """AEAD-011: whether ``record``'s decrypted answer carries the sentinel of ``other``, a request that
    was in flight at the same time (a model that echoes its prompt shows a crossed buffer this way)."""
    mark = sentinel_of(other)
    return mark is not None and any(m.plaintext is not None and mark in m.plaintext for m in record.messages)


# --- the lock ----------------------------------------------------------------------------------------

LockJudge = Callable[[LockRecord], "str | None"]


def _lock_reply(r: LockRecord) -> str | None:
    ok = r.http.status == 200 and r.http.media_type == "application/json" and sorted(r.members) == sorted(LOCK_MEMBERS)
    if ok:
        return None
    return f"status {r.http.status}, {one_line(r.http.media_type, 80) or 'no content type'}, members {names(r.members)}"


def _lock_order(r: LockRecord) -> str | None:
    return None if tuple(r.members) == LOCK_MEMBERS else f"members in order {names(r.members)}"


def _lock_key(r: LockRecord) -> str | None:
    if r.lock is None:  # LOCK-001 judges the reply's shape; without a lock there is no key to judge
        raise Precondition(f"the reply does not parse as a lock ({r.parse_error}): no public_key to judge")
    return None if r.public_key_error is None else f"public_key refused: {r.public_key_error}"


def _lock_low_order(r: LockRecord) -> str | None:
    if r.public_key is None:
        raise Precondition("no 32-byte public key to examine")
    return "the node key is a low-order point: anyone can derive K" if is_low_order(r.public_key) else None


def _lock_ids(r: LockRecord) -> str | None:
    value = r.http.json()
    if not isinstance(value, dict):
        return "the reply is not a JSON object"
    bad = [k for k in ("node_small_id", "stack_small_id") if not _is_count(value.get(k))]
    return f"not a non-negative integer: {', '.join(bad)}" if bad else None


def _lock_digest(r: LockRecord) -> str | None:
    value = r.http.json()
    present = isinstance(value, dict) and "stack_entry_digest" in value
    if present and (value["stack_entry_digest"] is None or isinstance(value["stack_entry_digest"], str)):
        return None
    return "stack_entry_digest is absent or not a string/null"


LOCK_RULES: dict[str, LockJudge] = {
    "LOCK-001": _lock_reply,
    "LOCK-002": _lock_order,
    "LOCK-003": _lock_key,
    "LOCK-004": _lock_low_order,
    "LOCK-005": _lock_ids,
    "LOCK-006": _lock_digest,
}


def lock_problems(record: LockRecord) -> list[Problem]:
    """Every rule a lock reply breaks. A reply that is not a 200 breaks LOCK-001 alone: the others
    judge a lock that was granted."""
    first = _lock_reply(record)
    if record.http.status != 200:
        return [Problem("LOCK-001", first or "")]
    out = [Problem("LOCK-001", first)] if first else []
    for check_id, judge in LOCK_RULES.items():
        if check_id == "LOCK-001":
            continue
        try:
            why = judge(record)
        except Precondition:
            continue
        if why:
            out.append(Problem(check_id, why))
    return out


# --- facts and run-wide rules -------------------------------------------------------------------------


def hash_profile(message: MessageRecord) -> str:
    """HASH-003: which of the hashes a node plausibly uses by mistake matches, so a failure names the
    mistake (R6.1 asks for BLAKE2b-256 of the exact plaintext bytes)."""
    pt, claimed = message.plaintext, message.response_hash
    if pt is None or claimed is None:
        raise Precondition("no decrypted response with a response_hash to compare")
    reserialized = json.dumps(json.loads(pt)).encode() if message.inner_error is None else None
    candidates = {
        "blake2b-256": blake2b_256(pt),
        "sha-256": hashlib.sha256(pt).digest(),
        "blake2b-512/32": hashlib.blake2b(pt).digest()[:32],
        "blake2b-256 of re-serialized JSON": blake2b_256(reserialized) if reserialized is not None else b"",
    }
    return next((name for name, digest in candidates.items() if digest == claimed), "unknown")


def across_keys(findings: Iterable[NonceReuseFinding]) -> list[NonceReuseFinding]:
    """NONCE-004: the repeats of a node nonce seen under two different keys. Every user of the
    value-keyed ledger records a use's ``where`` starting with its key id (``Run._observe``, the oracle)."""
    return [f for f in findings if f.first.where.split(" ")[0] != f.second.where.split(" ")[0]]


# --- the signer --------------------------------------------------------------------------------------


def signer_problems(signers: Iterable[str], expected: str | None) -> list[Problem]:
    """SIG-006 (one signer for the run) and SIG-007 (the node's registered address) over the signers seen."""
    seen = sorted(set(signers))
    out = []
    # SIG-007 first: it needs no earlier message, so a fuzz case that shows it replays on its own.
    if expected is not None and seen and set(seen) != {expected.lower()}:
        out.append(Problem("SIG-007", f"signed by {names(seen[:3])}, not the node address"))
    if len(seen) > 1:
        out.append(Problem("SIG-006", f"{len(seen)} different signers"))
    return out


# --- refusals ----------------------------------------------------------------------------------------


def response_of(result: ExchangeRecord | HttpRecord) -> HttpRecord:
    return result.http if isinstance(result, ExchangeRecord) else result


def came_back(result: ExchangeRecord | HttpRecord) -> str:
    """What a refused request got back, in one of a few words (the Refusal evidence)."""
    http = response_of(result)
    if http.status is None:
        return "nothing"
    if http.media_type == "text/event-stream":
        return "event stream"
    value = http.json()
    if isinstance(value, dict) and "ciphertext" in value:
        return "ciphertext"
    if isinstance(result, ExchangeRecord) and result.plaintext and result.plaintext in http.body:
        return "plaintext"
    return "error body" if http.error_body() is not None else "other body"


def refusal_problem(result: ExchangeRecord | HttpRecord) -> str | None:
    """Why ``result`` is not a clean refusal (None when it is one): the rule of every probe that a
    node must refuse, named by that probe's check."""
    http = response_of(result)
    if http.status is None:
        return f"no answer ({http.error})"
    if 200 <= http.status < 300:
        return f"accepted with {http.status}"
    what = came_back(result)
    if what in ("event stream", "ciphertext", "plaintext"):
        return {"event stream": "an event stream was started"}.get(what, f"the refusal carries the {what}")
    return None


def refused_with(result: ExchangeRecord | HttpRecord, allowed: tuple[tuple[int, str], ...]) -> str | None:
    """Why ``result`` is not a clean refusal with one of the (status, error code) pairs ``allowed``
    (docs/spec.md Table 10.1 pairs each code with its status), or None when it is one."""
    why = refusal_problem(result)
    if why is not None:
        return why
    http = response_of(result)
    error = http.error_body()
    code = error[0] if error else None
    if (http.status, code) in allowed:
        return None
    shown = one_line(code, 64) if code is not None else "no code"
    wanted = " or ".join(f"{status} {name}" for status, name in allowed)
    return f"refused {http.status} {shown}; the spec asks for {wanted}"


# Table 10.1's (status, code) for refusal classes whose code it names, per face. A proxy that relays a
# node's refusal may keep the node's code (R10.4), so the proxy face admits the node face's pairs too.
_PLAINTEXT_NODE = ((400, "INVALID_BODY"),)
_MODEL_NODE = ((400, "INVALID_BODY"), (400, "MODEL_ERROR"))
_SIZE = ((413, "PAYLOAD_TOO_LARGE"),)
TABLE_10_1: dict[str, dict[str, tuple[tuple[int, str], ...]]] = {
    "plaintext": {"node": _PLAINTEXT_NODE, "proxy": ((400, "REQUEST_ERROR"), *_PLAINTEXT_NODE)},  # R3.14
    "model": {"node": _MODEL_NODE, "proxy": ((400, "REQUEST_ERROR"), (404, "NOT_FOUND"), *_MODEL_NODE)},  # R3.14
    "size": {"node": _SIZE, "proxy": _SIZE},  # R3.18
}


def table_pairs(refusal_class: str, face: str) -> tuple[tuple[int, str], ...]:
    """The (status, code) pairs Table 10.1 allows for ``refusal_class`` on ``face``."""
    return TABLE_10_1[refusal_class][face]


def streamed_answer(result: ExchangeRecord | HttpRecord) -> str | None:
    """STREAM-008 (R9.1, R10.2): an endpoint that does not stream, asked for a stream, answers JSON
    or refuses with 4xx; never with an event stream, and never 5xx (the request's own content is the
    cause)."""
    http = response_of(result)
    if http.media_type == "text/event-stream":
        return f"answered {http.status} with an event stream"
    if http.status == 200:
        media = one_line(http.media_type, 60) or "no content type"
        return None if http.media_type == "application/json" else f"answered 200 {media}, not JSON"
    return refusal_problem(result) or server_error(result)


# Refusals for a cause that comes before any rule about the request's content (Table 10.1): a probe
# refused for one of these did not reach the rule it names, so it proves nothing about that rule.
EARLIER_CAUSES = {
    401: "no valid bearer token",
    402: "the balance",
    425: "no usable lock",
    429: "rate limiting",
    503: "no node available",
}


def earlier_cause(result: ExchangeRecord | HttpRecord, expected: tuple[int, ...]) -> str | None:
    """Why a refusal may not be the one probed for: refused with a status of :data:`EARLIER_CAUSES`
    that the probe did not expect. The check is then "not evaluated", never a pass."""
    status = response_of(result).status
    if status is None or status in expected or status not in EARLIER_CAUSES:
        return None
    return f"refused {status} ({EARLIER_CAUSES[status]}) before reaching the rule"


# Table 10.1 as R10.11 (node face) and R10.12 (proxy face) state it: a code a target uses must carry
# the status listed beside it. Codes outside the table are the target's own and are not judged.
NODE_FACE_CODE_STATUS = {
    "MISSING_HEADER": 400,
    "INVALID_HEADER": 400,
    "INVALID_BODY": 400,
    "MODEL_ERROR": 400,
    "AUTH_ERROR": 401,
    "REPLAYED_REQUEST": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "LOCKED_STACK_ERROR": 423,
    "UNAVAILABLE_STACK_ERROR": 425,
    "CHAT_COMPLETIONS_SERVICE_UNAVAILABLE": 429,
    "INTERNAL_ERROR": 500,
}
PROXY_FACE_CODE_STATUS = {
    "REQUEST_ERROR": 400,
    "FIAT_PAYMENTS_ONLY": 400,
    "AUTH_ERROR": 401,
    "BALANCE_ERROR": 402,
    "NOT_FOUND": 404,
    "REPLAYED_REQUEST": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "LOCKED": 423,
    "UNAVAILABLE_STACK": 425,
    "TOO_MANY_REQUESTS": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
}


def table_pair(code: str, face: str = "proxy") -> tuple[int, str]:
    """(status, code) as Table 10.1 pairs them on ``face``: what a check that names the code asks for."""
    table = NODE_FACE_CODE_STATUS if face == "node" else PROXY_FACE_CODE_STATUS
    return table[code], code


def mispaired_code(result: ExchangeRecord | HttpRecord, face: str) -> str | None:
    """ERR-026: a Table 10.1 code carried with another status than the one the table pairs it with."""
    http = response_of(result)
    error = http.error_body()
    if error is None:
        return None  # no JSON error body: ERR-018's failure
    table = NODE_FACE_CODE_STATUS if face == "node" else PROXY_FACE_CODE_STATUS
    code = error[0]
    listed = table.get(code)
    if listed is None or listed == http.status:
        return None
    return f"code {one_line(code, 64)} with status {http.status}; Table 10.1 pairs it with {listed}"


def server_error(result: ExchangeRecord | HttpRecord) -> str | None:
    """ERR-017: a client-caused refusal is 4xx, never 5xx."""
    status = response_of(result).status or 0
    return f"refused with {status}, a server error" if status >= 500 else None


def unshaped_error(result: ExchangeRecord | HttpRecord) -> str | None:
    """ERR-018: a refusal is application/json {"error": {"code", "message"}}."""
    http = response_of(result)
    if http.media_type == "application/json" and http.error_body() is not None:
        return None
    return "refused without the JSON error shape"


def leaks(result: ExchangeRecord | HttpRecord, api_key: str | None) -> list[str]:
    """ERR-019 and ERR-025: the kinds of request secret an answer, refused or served, echoes in its
    headers or anywhere in its body outside the ciphertext (a secret inside it is encrypted, and a
    random base64 string does not spell a 16-hex-digit sentinel or a 32-byte hash)."""
    http = response_of(result)
    haystack = http.body.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in http.headers.items())
    return [label for label, secret in secrets_of(api_key, result).items() if secret and secret in haystack]


def refusal_problems(
    result: ExchangeRecord | HttpRecord, check_id: str, api_key: str | None, face: str = "proxy"
) -> list[Problem]:
    """Every rule a refusal breaks: refused at all (``check_id``, the probe's own check), then ERR-017,
    ERR-018, ERR-019 and ERR-026, which judge only what was refused."""
    problem = refusal_problem(result)
    if problem is not None:
        return [Problem(check_id, problem)]
    shared = (
        ("ERR-017", server_error(result)),
        ("ERR-018", unshaped_error(result)),
        ("ERR-026", mispaired_code(result, face)),
    )
    out = [Problem(check, why) for check, why in shared if why]
    out += [Problem("ERR-019", f"the refusal echoes the {label}") for label in leaks(result, api_key)]
    return out


def secrets_of(api_key: str | None, result: ExchangeRecord | HttpRecord) -> dict[str, str]:
    """Strings that must never appear in a refusal: the API key, the plaintext, and both hashes."""
    found: dict[str, str] = {}
    if api_key and len(api_key) >= 8:  # a shorter test token would match ordinary words
        found["api key"] = api_key
    if not isinstance(result, ExchangeRecord):
        return found
    mark = sentinel_of(result)
    if mark:
        found["plaintext"] = mark.decode()
    hashes = {"computed plaintext hash": blake2b_256(result.plaintext)}
    try:
        sent = json.loads(result.request_body)
        hashes["claimed plaintext hash"] = base64.b64decode(sent["plaintext_body_hash"])
        if len(sent.get("ciphertext", "")) > 32:
            found["ciphertext"] = sent["ciphertext"][:32]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    for label, value in hashes.items():
        if len(value) < 8:
            continue
        found[f"{label} (base64)"] = b64encode(value)
        found[f"{label} (hex)"] = value.hex()
        found[f"{label} (byte list)"] = ", ".join(str(b) for b in value[:8])
        found[f"{label} (compact byte list)"] = ",".join(str(b) for b in value[:8])
    return found


def rule_ids() -> frozenset[str]:
    """Every check id the rulebook judges (tests hold the oracle and the catalogue to it)."""
    return frozenset(
        {
            *MESSAGE_RULE,
            *EXCHANGE_RULE,
            *LOCK_RULES,
            "SIG-006",
            "SIG-007",
            "ERR-017",
            "ERR-018",
            "ERR-019",
            "ERR-025",
            "ERR-026",
        }
    )
