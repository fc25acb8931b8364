"""The check catalogue. Each entry is data (id, level, title, spec, evidence, scenarios) plus a small
predicate. Ids are permanent: a retired check keeps its id forever and a new check takes a new one.

Levels follow docs/spec.md (MUST/SHOULD) except where the suite's policy differs, and then the
docstring says why. INFO checks record facts about the target and fail only if the fact cannot be
established.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable
from typing import Any

from ..evidence import MISSING, ExchangeRecord, HttpRecord, LockRecord, MessageRecord
from ..protocol.nonces import RANDOM_NONCE_BUDGET
from ..protocol.primitives import blake2b_256, is_low_order
from ..protocol.sui import Scheme
from ..textsafe import one_line
from .base import Precondition, Skip, Verdict, check, failed, passed, verdict
from .judging import refusal_problem, response_of, secrets_of
from .run import Run
from .scenarios import ERR_SCENARIOS, SUCCESS_SCENARIOS, Pair, success, successes

JSON_ENDPOINTS = ("chat", "completions", "embeddings", "images")
STREAMS = ("chat_stream", "completions_stream")
LOCK_MEMBERS = ["public_key", "node_small_id", "stack_entry_digest", "stack_small_id"]
RESPONSE_MEMBERS = ["nonce", "ciphertext", "response_hash", "signature", "usage"]
CHUNK_MEMBERS = ["ciphertext", "nonce", "usage", "signature", "response_hash"]


def _messages(run: Run, names: Iterable[str]) -> list[tuple[str, MessageRecord]]:
    """(scenario, message) for every message of every successful listed exchange."""
    out: list[tuple[str, MessageRecord]] = []
    examined = 0
    for name in names:
        try:
            record: ExchangeRecord = run.scenario(name)
        except Skip:
            continue
        examined += 1
        if record.http.status != 200:
            raise Precondition(f"the {name} exchange did not succeed (status {record.http.status})")
        out.extend((name, m) for m in record.messages)
    if not examined:
        raise Skip("none of the endpoints this check needs applies to the target")
    if not out:
        raise Precondition("the exchanges returned no messages to examine")
    return out


def _names(members: list[str], shown: int = 8) -> str:
    """Member names as a reason shows them: the first few, each escaped and capped, and how many."""
    head = ", ".join(repr(one_line(name, 40)) for name in members[:shown])
    return f"[{head}{f', … {len(members)} in all' if len(members) > shown else ''}]"


def _all_ok(pairs: list[tuple[str, MessageRecord]], bad: Any, what: str, **evidence: Any) -> Verdict:
    """Pass when ``bad(message)`` is falsy for all; otherwise fail naming the first offenders."""
    offenders = [(name, m.where, bad(m)) for name, m in pairs if bad(m)]
    if not offenders:
        return passed(f"{what}: all {len(pairs)} message(s)", messages=len(pairs), **evidence)
    first = "; ".join(f"{n} {w}: {why}" for n, w, why in offenders[:3])
    return failed(
        f"{len(offenders)} of {len(pairs)} message(s) fail: {first}",
        messages=len(pairs),
        offenders=len(offenders),
        **evidence,
    )


# === LOCK ============================================================================================


def _lock(run: Run, name: str = "lock") -> LockRecord:
    record: LockRecord = run.scenario(name)
    if record.http.status != 200:
        raise Precondition(
            f"the lock call failed (status {record.http.status}, {record.http.error or 'no error body'})"
        )
    return record


@check(
    "LOCK-001",
    "MUST",
    "The lock answers 200 application/json with the four reply members",
    spec="R2.5",
    evidence="status, content type, member names",
    scenarios=("lock",),
)
def lock_001(run: Run) -> Verdict:
    record: LockRecord = run.scenario("lock")
    ok = (
        record.http.status == 200
        and record.http.media_type == "application/json"
        and sorted(record.members) == sorted(LOCK_MEMBERS)
    )
    return verdict(
        ok,
        "200 JSON with public_key, node_small_id, stack_entry_digest, stack_small_id",
        f"status {record.http.status}, {one_line(record.http.media_type, 80) or 'no content type'}, "
        f"members {_names(record.members)}",
        status=record.http.status,
        members=record.members,
    )


@check(
    "LOCK-002",
    "SHOULD",
    "Lock reply members are in the upstream order",
    spec="R2.5",
    evidence="member order",
    scenarios=("lock",),
)
def lock_002(run: Run) -> Verdict:
    """Level SHOULD although R2.5 is a MUST: member order changes no parsed value and matters only
    to byte-for-byte reproduction, so the suite reports a reordering rather than failing certification on it."""
    members = _lock(run).members
    return verdict(members == LOCK_MEMBERS, "members in upstream order", f"members in order {members}", members=members)


@check(
    "LOCK-003",
    "MUST",
    "public_key is canonical base64 of exactly 32 bytes",
    spec="R2.6",
    evidence="decode error code or length",
    scenarios=("lock",),
)
def lock_003(run: Run) -> Verdict:
    record = _lock(run)
    if record.lock is None:
        return failed(f"the reply does not parse ({record.parse_error})")
    return verdict(
        record.public_key_error is None,
        "32-byte canonical base64 key",
        f"public_key refused: {record.public_key_error}",
        error=record.public_key_error,
    )


@check(
    "LOCK-004",
    "MUST",
    "public_key is not a low-order X25519 point",
    spec="R2.7",
    evidence="low-order flag",
    scenarios=("lock",),
)
def lock_004(run: Run) -> Verdict:
    record = _lock(run)
    if record.public_key is None:
        raise Precondition("no 32-byte public key to examine")
    low = is_low_order(record.public_key)
    return verdict(
        not low, "not a low-order point", "the node key is a low-order point: anyone can derive K", low_order=low
    )


@check(
    "LOCK-005",
    "MUST",
    "node_small_id and stack_small_id are non-negative JSON integers",
    spec="R2.8",
    evidence="JSON types",
    scenarios=("lock",),
)
def lock_005(run: Run) -> Verdict:
    value = _lock(run).http.json()
    if not isinstance(value, dict):
        return failed("the reply is not a JSON object")
    bad = [
        k
        for k in ("node_small_id", "stack_small_id")
        if isinstance(value.get(k), bool) or not isinstance(value.get(k), int) or value[k] < 0
    ]
    return verdict(
        not bad,
        "both are non-negative integers",
        f"not a non-negative integer: {', '.join(bad)}",
        types={k: type(value.get(k)).__name__ for k in ("node_small_id", "stack_small_id")},
    )


@check(
    "LOCK-006",
    "MUST",
    "stack_entry_digest is present, as null or a string",
    spec="R2.9",
    evidence="presence and JSON type",
    scenarios=("lock",),
)
def lock_006(run: Run) -> Verdict:
    value = _lock(run).http.json()
    present = isinstance(value, dict) and "stack_entry_digest" in value
    ok = present and (value["stack_entry_digest"] is None or isinstance(value["stack_entry_digest"], str))
    return verdict(ok, "present", "stack_entry_digest is absent or not a string/null", present=present)


@check(
    "LOCK-007",
    "MUST",
    "A lock without a bearer token is refused with 401",
    spec=("R2.2",),
    evidence="status and error code",
    scenarios=("lock_no_auth",),
)
def lock_007(run: Run) -> Verdict:
    http: HttpRecord = run.scenario("lock_no_auth")
    return verdict(http.status == 401, "401", f"status {http.status}", status=http.status)


@check(
    "LOCK-008",
    "SHOULD",
    "A lock for a model nobody serves is refused with a JSON error",
    spec="R2.10",
    evidence="status, error code",
    scenarios=("lock_unknown_model",),
)
def lock_008(run: Run) -> Verdict:
    """Level SHOULD although R2.10 is a MUST: the exact status (503, or 402 when the caller cannot pay
    for a stack) depends on account state the suite cannot see, so this checks only for a clean JSON refusal."""
    record: LockRecord = run.scenario("lock_unknown_model")
    status = record.http.status or 0
    ok = 400 <= status < 600 and status != 500 and record.http.error_body() is not None
    return verdict(
        ok,
        f"refused with {status} and a JSON error",
        f"status {status}, error body {'present' if record.http.error_body() else 'absent'}",
        status=status,
    )


@check(
    "LOCK-009",
    "MUST",
    "A lock serves one request: a second request on it is refused",
    spec=("R2.11", "R2.13"),
    evidence="statuses of both requests",
    scenarios=("lock_reuse",),
)
def lock_009(run: Run) -> Verdict:
    pair: Pair = run.scenario("lock_reuse")
    if pair.first.http.status != 200:
        raise Precondition(f"the first request on the lock failed (status {pair.first.http.status})")
    second = pair.second.http if isinstance(pair.second, ExchangeRecord) else pair.second
    return verdict(
        second.status != 200,
        f"second request refused ({second.status})",
        "the same lock served a second request",
        statuses=[200, second.status],
    )


@check(
    "LOCK-010",
    "MUST",
    "An expired lock is refused",
    spec=("R2.11", "R2.13"),
    evidence="status after the lock's timeout",
    scenarios=("lock_expired",),
)
def lock_010(run: Run) -> Verdict:
    record: ExchangeRecord = run.scenario("lock_expired")
    return verdict(
        record.http.status != 200,
        f"refused ({record.http.status})",
        "a request on an expired lock was served",
        status=record.http.status,
    )


@check(
    "LOCK-011",
    "MUST",
    "A lock taken with one API key does not serve another key's request",
    spec=("R2.14", "R2.15"),
    evidence="status of the foreign request",
    scenarios=("lock_foreign",),
)
def lock_011(run: Run) -> Verdict:
    record: ExchangeRecord = run.scenario("lock_foreign")
    return verdict(
        record.http.status != 200,
        f"refused ({record.http.status})",
        "another API key spent this key's lock",
        status=record.http.status,
    )


@check(
    "LOCK-012",
    "INFO",
    "The node key is the same across locks in one run",
    spec="R2.6",
    evidence="whether two locks returned the same key",
    scenarios=("lock", "lock_again"),
)
def lock_012(run: Run) -> Verdict:
    a, b = _lock(run), _lock(run, "lock_again")
    same = a.public_key == b.public_key
    return passed("stable node key" if same else "the node key changed between two locks (rotation?)", stable=same)


# === ENC =============================================================================================


@check(
    "ENC-001",
    "MUST",
    "Every response and chunk nonce is canonical base64 of exactly 12 bytes",
    spec=("R8.4", "R9.4"),
    evidence="decode error codes",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def enc_001(run: Run) -> Verdict:
    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), lambda m: m.nonce_error, "12-byte canonical nonce")


@check(
    "ENC-002",
    "MUST",
    "Every ciphertext is canonical base64 of at least 16 bytes (ciphertext || tag)",
    spec=("R5.2", "R8.4"),
    evidence="decode error codes, lengths",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def enc_002(run: Run) -> Verdict:
    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), lambda m: m.ciphertext_error, "canonical ciphertext")


@check(
    "ENC-003",
    "MUST",
    "Every response_hash is canonical base64 of exactly 32 bytes",
    spec="R6.3",
    evidence="decode error codes",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def enc_003(run: Run) -> Verdict:
    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), lambda m: m.response_hash_error, "32-byte hash")


@check(
    "ENC-004",
    "MUST",
    "Every signature is canonical base64 of a Sui serialized signature",
    spec=("R7.1", "R7.2"),
    evidence="decode/parse error codes",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def enc_004(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        return None if m.signature_error in (None, "MISSING_FIELD", "NULL") else m.signature_error

    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), bad, "parsable signature")


@check(
    "ENC-005",
    "MUST",
    "Non-streaming success is 200 with Content-Type application/json",
    spec="R8.1",
    evidence="status and media type",
    scenarios=JSON_ENDPOINTS,
)
def enc_005(run: Run) -> Verdict:
    rows = [
        (n, r.http.status, r.http.media_type)
        for n, r in ((n, run.scenario(n)) for n in _applicable(run, JSON_ENDPOINTS))
    ]
    bad = [f"{n}: {s} {t}" for n, s, t in rows if s != 200 or t != "application/json"]
    return verdict(not bad, f"{len(rows)} endpoint(s) answered 200 JSON", "; ".join(bad), endpoints=len(rows))


def _applicable(run: Run, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        try:
            run.scenario(name)
        except Skip:
            continue
        out.append(name)
    if not out:
        raise Skip("no applicable endpoint")
    return out


@check(
    "ENC-006",
    "MUST",
    "A non-streaming body has exactly nonce, ciphertext, response_hash, signature (and usage)",
    spec=("R8.2", "R8.3"),
    evidence="member names",
    scenarios=JSON_ENDPOINTS,
)
def enc_006(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        extra = set(m.members) - set(RESPONSE_MEMBERS)
        missing = {"nonce", "ciphertext", "response_hash", "signature"} - set(m.members)
        return f"missing {sorted(missing)}" if missing else (f"unexpected {sorted(extra)}" if extra else None)

    return _all_ok(_messages(run, JSON_ENDPOINTS), bad, "the four members, plus usage where due")


@check(
    "ENC-007",
    "SHOULD",
    "Non-streaming members are in the upstream order",
    spec="R8.2",
    evidence="member order",
    scenarios=JSON_ENDPOINTS,
)
def enc_007(run: Run) -> Verdict:
    """Level SHOULD although R8.2 is a MUST: as for LOCK-002, member order changes no parsed value."""

    def bad(m: MessageRecord) -> str | None:
        expected = [k for k in RESPONSE_MEMBERS if k in m.members]
        return None if m.members == expected else f"order {m.members}"

    return _all_ok(_messages(run, JSON_ENDPOINTS), bad, "upstream member order")


@check(
    "ENC-008",
    "MUST",
    "A chunk has exactly ciphertext, nonce, signature, response_hash (and usage), in that order",
    spec="R9.4",
    evidence="member names and order",
    scenarios=STREAMS,
)
def enc_008(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        expected = [k for k in CHUNK_MEMBERS if k in m.members]
        if set(m.members) - set(CHUNK_MEMBERS) or {"ciphertext", "nonce", "signature", "response_hash"} - set(
            m.members
        ):
            return f"members {m.members}"
        return None if m.members == expected else f"order {m.members}"

    return _all_ok(_messages(run, STREAMS), bad, "chunk members")


@check(
    "ENC-009",
    "MUST",
    "An image response carries no usage member",
    spec="R8.3",
    evidence="member names",
    scenarios=("images",),
)
def enc_009(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, ("images",)), lambda m: "usage present" if "usage" in m.members else None, "no usage member"
    )


@check(
    "ENC-010",
    "SHOULD",
    "Bodies are compact JSON (no insignificant whitespace)",
    spec=("R8.2", "R9.3"),
    evidence="whether re-serializing compactly changes the length",
    scenarios=JSON_ENDPOINTS,
)
def enc_010(run: Run) -> Verdict:
    """Level SHOULD although R8.2 and R9.3 are MUSTs: whitespace changes no parsed value, and the
    hashes and signatures cover the plaintext, not the envelope."""
    from ..protocol import jsonwire

    bad = []
    for name in _applicable(run, JSON_ENDPOINTS):
        record = success(run, name)
        compact = record.http.compact  # computed before a large body was let go (evidence.shed)
        if compact is None:
            value = record.http.json()
            compact = value is not MISSING and jsonwire.dumps(value) == record.http.body
        if not compact:
            bad.append(name)
    return verdict(not bad, "compact JSON", f"not compact: {', '.join(bad)}", endpoints_not_compact=bad)


# === AEAD ============================================================================================


@check(
    "AEAD-001",
    "MUST",
    "Every non-streaming response decrypts under the request's key with its nonce",
    spec=("R4.5", "R5.1"),
    evidence="AEAD error codes",
    scenarios=JSON_ENDPOINTS,
)
def aead_001(run: Run) -> Verdict:
    return _all_ok(_messages(run, JSON_ENDPOINTS), lambda m: m.aead_error, "decrypts under K")


@check(
    "AEAD-002",
    "MUST",
    "Every stream chunk decrypts under the request's key with its own nonce",
    spec=("R4.5", "R9.5"),
    evidence="AEAD error codes",
    scenarios=STREAMS,
)
def aead_002(run: Run) -> Verdict:
    return _all_ok(_messages(run, STREAMS), lambda m: m.aead_error, "decrypts under K")


@check(
    "AEAD-003",
    "MUST",
    "Every decrypted plaintext is one UTF-8 JSON object",
    spec=("R8.5", "R9.5"),
    evidence="parse error codes",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def aead_003(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        if m.plaintext is None:
            return None  # AEAD-001/002 report it
        return m.inner_error or (None if isinstance(m.inner, dict) else "not an object")

    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), bad, "a JSON object")


def _first_message(run: Run, name: str) -> MessageRecord:
    record = success(run, name)
    if not record.messages:
        raise Precondition(
            f"the {name} exchange returned no encrypted message (a {record.http.media_type or 'bodiless'} answer)"
        )
    return record.messages[0]


def _inner(run: Run, name: str) -> dict[str, Any]:
    record = success(run, name)
    message = record.messages[0] if record.messages else None
    if message is None or not isinstance(message.inner, dict):
        raise Precondition(f"the {name} plaintext could not be decrypted and parsed")
    return message.inner


def _shape(value: Any, spec: dict[str, Any]) -> list[str]:
    """Problems of ``value`` against {key: type-or-constant}; types are checked with JSON semantics."""
    problems = []
    for key, want in spec.items():
        if key not in value:
            problems.append(f"{key} missing")
            continue
        got = value[key]
        if isinstance(want, type):
            ok = isinstance(got, want) and not (want is int and isinstance(got, bool))
            if not ok:
                problems.append(f"{key} is not {want.__name__}")
        elif got != want:
            problems.append(f"{key} is not {want!r}")
    return problems


@check(
    "AEAD-004",
    "MUST",
    "The chat plaintext is an OpenAI chat.completion",
    spec="R8.6",
    evidence="missing or mistyped members",
    scenarios=("chat",),
)
def aead_004(run: Run) -> Verdict:
    inner = _inner(run, "chat")
    problems = _shape(inner, {"id": str, "object": "chat.completion", "created": int, "model": str, "choices": list})
    for i, choice in enumerate(inner.get("choices") or []):
        problems += [f"choices[{i}].{p}" for p in _shape(choice, {"index": int, "message": dict})]
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            problems += [f"choices[{i}].message.{p}" for p in _shape(message, {"role": "assistant"})]
    if not inner.get("choices"):
        problems.append("choices is empty")
    return verdict(not problems, "chat.completion shape", "; ".join(problems[:5]), problems=len(problems))


@check(
    "AEAD-005",
    "MUST",
    "The completions plaintext is an OpenAI text_completion",
    spec="R8.8",
    evidence="missing or mistyped members",
    scenarios=("completions",),
)
def aead_005(run: Run) -> Verdict:
    inner = _inner(run, "completions")
    problems = _shape(inner, {"id": str, "object": "text_completion", "created": int, "model": str, "choices": list})
    for i, choice in enumerate(inner.get("choices") or []):
        problems += [f"choices[{i}].{p}" for p in _shape(choice, {"index": int, "text": str})]
    return verdict(not problems, "text_completion shape", "; ".join(problems[:5]), problems=len(problems))


@check(
    "AEAD-006",
    "MUST",
    "The embeddings plaintext is an OpenAI embeddings list",
    spec="R8.9",
    evidence="missing or mistyped members",
    scenarios=("embeddings",),
)
def aead_006(run: Run) -> Verdict:
    inner = _inner(run, "embeddings")
    problems = _shape(inner, {"object": "list", "data": list})
    for i, item in enumerate(inner.get("data") or []):
        problems += [f"data[{i}].{p}" for p in _shape(item, {"object": "embedding", "index": int, "embedding": list})]
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list) and not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector
        ):
            problems.append(f"data[{i}].embedding has non-numbers")
    if not inner.get("data"):
        problems.append("data is empty")
    return verdict(not problems, "embeddings list shape", "; ".join(problems[:5]), problems=len(problems))


@check(
    "AEAD-007",
    "MUST",
    "The images plaintext carries data[].b64_json holding a decodable image",
    spec="R8.10",
    evidence="missing members, decode errors, image signature",
    scenarios=("images",),
)
def aead_007(run: Run) -> Verdict:
    inner = _inner(run, "images")
    problems = _shape(inner, {"created": int, "data": list})
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
        if not raw.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8")):
            problems.append(f"data[{i}] is not a PNG/JPEG/WebP/GIF image")
        elif raw.startswith(b"\x89PNG") and len(raw) >= 24:
            width, height = struct.unpack(">II", raw[16:24])
            if not width or not height:
                problems.append(f"data[{i}] has an empty PNG")
    if not inner.get("data"):
        problems.append("data is empty")
    return verdict(not problems, "image data present", "; ".join(problems[:5]), problems=len(problems))


@check(
    "AEAD-008",
    "MUST",
    "Chat stream chunks are chat.completion.chunk objects",
    spec="R9.12",
    evidence="object member per chunk",
    scenarios=("chat_stream",),
)
def aead_008(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, ("chat_stream",)),
        lambda m: (
            None
            if isinstance(m.inner, dict) and m.inner.get("object") == "chat.completion.chunk"
            else "not a chat.completion.chunk"
        ),
        "chat.completion.chunk",
    )


@check(
    "AEAD-009",
    "MUST",
    "Completions stream chunks are text_completion objects",
    spec="R9.12",
    evidence="object member per chunk",
    scenarios=("completions_stream",),
)
def aead_009(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, ("completions_stream",)),
        lambda m: (
            None
            if isinstance(m.inner, dict) and m.inner.get("object") == "text_completion"
            else "not a text_completion"
        ),
        "text_completion",
    )


@check(
    "AEAD-010",
    "SHOULD",
    "Chat message content is a string, not null",
    spec="R8.7",
    evidence="content JSON type",
    scenarios=("chat",),
)
def aead_010(run: Run) -> Verdict:
    inner = _inner(run, "chat")
    contents = [c.get("message", {}).get("content") for c in inner.get("choices", []) if isinstance(c, dict)]
    ok = bool(contents) and all(isinstance(c, str) for c in contents)
    return verdict(ok, "string content", "a message content is not a string", choices=len(contents))


# === HASH ============================================================================================


@check(
    "HASH-001",
    "MUST",
    "response_hash equals BLAKE2b-256 of the decrypted bytes (non-streaming)",
    spec="R6.3",
    evidence="match per response",
    scenarios=JSON_ENDPOINTS,
)
def hash_001(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, JSON_ENDPOINTS),
        lambda m: None if m.hash_matches or m.plaintext is None else "hash does not cover the plaintext",
        "response_hash = H(plaintext)",
    )


@check(
    "HASH-002",
    "MUST",
    "response_hash equals BLAKE2b-256 of the decrypted bytes on every chunk",
    spec="R6.3",
    evidence="match per chunk",
    scenarios=STREAMS,
)
def hash_002(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, STREAMS),
        lambda m: None if m.hash_matches or m.plaintext is None else "hash does not cover the plaintext",
        "response_hash = H(chunk)",
    )


@check(
    "HASH-003",
    "INFO",
    "Which hash function the target's response_hash uses",
    spec=("R6.1", "R6.4"),
    evidence="the detected hash profile",
    scenarios=("chat",),
)
def hash_003(run: Run) -> Verdict:
    import hashlib
    import json

    message = _first_message(run, "chat")
    if message.plaintext is None or message.response_hash is None:
        raise Precondition("no decrypted response with a response_hash to compare")
    pt = message.plaintext
    candidates = {
        "blake2b-256": blake2b_256(pt),
        "sha-256": hashlib.sha256(pt).digest(),
        "blake2b-512/32": hashlib.blake2b(pt).digest()[:32],
        "blake2b-256 of re-serialized JSON": blake2b_256(json.dumps(json.loads(pt)).encode())
        if message.inner_error is None
        else b"",
    }
    found = [name for name, value in candidates.items() if value == message.response_hash]
    profile = found[0] if found else "unknown"
    if profile == "blake2b-256":
        return passed("BLAKE2b-256 over the exact plaintext bytes", hash_profile=profile)
    return failed(f"response_hash is {profile}, not BLAKE2b-256 of the plaintext", hash_profile=profile)


# === SIG =============================================================================================


@check(
    "SIG-001",
    "MUST",
    "Every non-streaming response carries a signature",
    spec="R7.7",
    evidence="presence",
    scenarios=JSON_ENDPOINTS,
)
def sig_001(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, JSON_ENDPOINTS),
        lambda m: m.signature_error if m.signature_error in ("MISSING_FIELD", "NULL") else None,
        "signed",
    )


@check(
    "SIG-002",
    "MUST",
    "Every stream chunk carries a signature",
    spec="R7.7",
    evidence="presence per chunk",
    scenarios=STREAMS,
)
def sig_002(run: Run) -> Verdict:
    return _all_ok(
        _messages(run, STREAMS),
        lambda m: m.signature_error if m.signature_error in ("MISSING_FIELD", "NULL") else None,
        "signed",
    )


@check(
    "SIG-003",
    "MUST",
    "Every signature uses a supported scheme (Ed25519, Secp256k1, Secp256r1) and length",
    spec="R7.2",
    evidence="scheme flags",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def sig_003(run: Run) -> Verdict:
    bad_codes = ("SIGNATURE_UNKNOWN_SCHEME", "SIGNATURE_WRONG_LENGTH")
    return _all_ok(
        _messages(run, (*JSON_ENDPOINTS, *STREAMS)),
        lambda m: m.signature_error if m.signature_error in bad_codes else None,
        "supported scheme",
    )


@check(
    "SIG-004",
    "MUST",
    "Every signature verifies over the 32 bytes of its response_hash",
    spec=("R7.3", "R7.4", "R7.5"),
    evidence="verification error codes",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def sig_004(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        if m.signature is None:
            return None  # SIG-001..003 report absent or unparsable signatures
        return None if m.signature_verify_error in (None, "SIGNATURE_HIGH_S") else m.signature_verify_error

    return _all_ok(_messages(run, (*JSON_ENDPOINTS, *STREAMS)), bad, "verifies")


@check(
    "SIG-005",
    "MUST",
    "ECDSA signatures are low-s",
    spec="R7.5",
    evidence="high-s count",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def sig_005(run: Run) -> Verdict:
    pairs = _messages(run, (*JSON_ENDPOINTS, *STREAMS))
    ecdsa = [(n, m) for n, m in pairs if m.signature is not None and m.signature.scheme is not Scheme.ED25519]
    malleable = [
        (n, m)
        for n, m in pairs
        if m.signature is not None
        and m.signature.scheme is Scheme.ED25519
        and m.signature_verify_error is not None
        and int.from_bytes(m.signature.signature[32:], "little") >= 2**252 + 27742317777372353535851937790883648493
    ]
    if malleable:
        return failed(f"{len(malleable)} Ed25519 signature(s) have S >= L (malleated)", malleated=len(malleable))
    if not ecdsa:
        return passed("no ECDSA signatures in this run (Ed25519 S < L everywhere)", ecdsa=0)
    return _all_ok(ecdsa, lambda m: "high-s" if m.signature_verify_error == "SIGNATURE_HIGH_S" else None, "low-s")


@check(
    "SIG-006",
    "MUST",
    "One signer signs every message of the run",
    spec="R7.8",
    evidence="distinct signer addresses",
    scenarios=(*JSON_ENDPOINTS, *STREAMS, "chat_again"),
)
def sig_006(run: Run) -> Verdict:
    signers = sorted({m.signer for _, m in _messages(run, (*JSON_ENDPOINTS, *STREAMS, "chat_again")) if m.signer})
    if not signers:
        raise Precondition("no parsable signature in the run")
    return verdict(
        len(signers) == 1, f"one signer {signers[0]}", f"{len(signers)} different signers", signers=signers[:5]
    )


@check(
    "SIG-007",
    "MUST",
    "The signer is the node's registered address (--node-address)",
    spec=("R7.8", "R13.12"),
    evidence="signer address vs expected",
    scenarios=(*JSON_ENDPOINTS, *STREAMS),
)
def sig_007(run: Run) -> Verdict:
    expected = run.target.node_address
    if expected is None:
        raise Skip("no --node-address given: the suite cannot know the node's registered Sui address")
    signers = {m.signer for _, m in _messages(run, (*JSON_ENDPOINTS, *STREAMS)) if m.signer}
    if not signers:
        raise Precondition("no parsable signature in the run")
    ok = signers == {expected.lower()}
    return verdict(
        ok,
        "every message signed by the node address",
        f"signed by {sorted(signers)[:3]}",
        expected=expected,
        signers=sorted(signers)[:5],
    )


@check(
    "SIG-008", "INFO", "The signature scheme the node uses", spec="R7.1", evidence="scheme label", scenarios=("chat",)
)
def sig_008(run: Run) -> Verdict:
    message = _first_message(run, "chat")
    if message.signature is None:
        raise Precondition("the chat response has no parsable signature")
    return passed(f"{message.signature.scheme.label}", scheme=message.signature.scheme.label, signer=message.signer)


# === NONCE ===========================================================================================

ALL_SUCCESS = (*SUCCESS_SCENARIOS,)


@check(
    "NONCE-001",
    "MUST",
    "No response nonce equals its request's nonce",
    spec=("R12.1", "R12.4"),
    evidence="count of echoed nonces",
    scenarios=JSON_ENDPOINTS,
)
def nonce_001(run: Run) -> Verdict:
    bad = []
    for name in _applicable(run, JSON_ENDPOINTS):
        record = success(run, name)
        if record.response and record.response.nonce == record.exchange.request_nonce:
            bad.append(name)
    return verdict(
        not bad,
        "response nonces differ from request nonces",
        f"the response reuses the request nonce under the same key: {', '.join(bad)}",
        echoed=len(bad),
    )


@check(
    "NONCE-002",
    "MUST",
    "No stream chunk carries its request's nonce",
    spec=("R12.1", "R12.3"),
    evidence="count of chunks echoing the request nonce",
    scenarios=STREAMS,
)
def nonce_002(run: Run) -> Verdict:
    bad = 0
    chunks = 0
    for name in _applicable(run, STREAMS):
        record = success(run, name)
        chunks += len(record.chunks)
        bad += sum(1 for c in record.chunks if c.nonce == record.exchange.request_nonce)
    return verdict(
        bad == 0,
        f"no chunk echoes the request nonce ({chunks} chunks)",
        f"{bad} chunk(s) reuse the request nonce under the same key",
        echoed=bad,
        chunks=chunks,
    )


@check(
    "NONCE-003",
    "MUST",
    "No nonce repeats within a stream",
    spec=("R12.2", "R12.3"),
    evidence="distinct nonces per stream",
    scenarios=STREAMS,
)
def nonce_003(run: Run) -> Verdict:
    findings = []
    for name in _applicable(run, STREAMS):
        record = success(run, name)
        nonces = [c.nonce for c in record.chunks if c.nonce is not None]
        if len(set(nonces)) != len(nonces):
            findings.append(f"{name}: {len(nonces)} chunks share {len(set(nonces))} nonce(s)")
    return verdict(
        not findings,
        "every chunk has its own nonce",
        "AES-GCM nonce reuse under one key within a stream (keystream and GHASH key exposed): " + "; ".join(findings),
        streams_with_reuse=len(findings),
    )


@check(
    "NONCE-004",
    "MUST",
    "No node nonce repeats anywhere in the run, even under different keys",
    spec="R12.5",
    evidence="repeated node nonces across keys",
    scenarios=ALL_SUCCESS,
)
def nonce_004(run: Run) -> Verdict:
    successes(run)
    findings = [f for f in run.node_nonces.findings if f.first.where.split(" ")[0] != f.second.where.split(" ")[0]]
    return verdict(
        not findings,
        f"{run.node_nonces.observations} node nonces, no repeats across keys",
        f"{len(findings)} nonce(s) repeat across different keys: the node's nonces are not random "
        f"(first: {findings[0].first.where} and {findings[0].second.where})"
        if findings
        else "",
        repeats=len(findings),
        observed=run.node_nonces.observations,
    )


@check(
    "NONCE-005",
    "MUST",
    "Session-wide audit: no (key, nonce) pair is used twice by anyone",
    spec=("R12.1", "R12.2"),
    evidence="nonce-reuse findings per key",
    scenarios=ALL_SUCCESS,
)
def nonce_005(run: Run) -> Verdict:
    successes(run)
    findings = run.ledger.findings
    detail = "; ".join(f"{f.first.where} and {f.second.where}" for f in findings[:3])
    return verdict(
        not findings,
        f"{run.ledger.observations} nonce uses under {run.ledger.keys} keys, all distinct",
        f"{len(findings)} (key, nonce) reuse(s): {detail}",
        reuses=len(findings),
        observations=run.ledger.observations,
        keys=run.ledger.keys,
    )


@check(
    "NONCE-006",
    "INFO",
    "How much of the random-nonce budget (2^32 per key) the run used",
    spec="R12.6",
    evidence="maximum nonces under one key, budget fraction",
    scenarios=ALL_SUCCESS,
)
def nonce_006(run: Run) -> Verdict:
    successes(run)
    busiest = run.ledger.max_uses_per_key()
    return passed(
        f"busiest key used {busiest} nonce(s), {run.ledger.budget_fraction():.3g} of the budget",
        max_per_key=busiest,
        budget=RANDOM_NONCE_BUDGET,
        fraction=run.ledger.budget_fraction(),
    )


# === STREAM ==========================================================================================


@check(
    "STREAM-001",
    "MUST",
    "A stream is answered 200 with Content-Type text/event-stream",
    spec="R9.2",
    evidence="status and media type",
    scenarios=STREAMS,
)
def stream_001(run: Run) -> Verdict:
    rows = [(n, run.scenario(n).http) for n in _applicable(run, STREAMS)]
    bad = [f"{n}: {h.status} {h.media_type}" for n, h in rows if h.status != 200 or h.media_type != "text/event-stream"]
    return verdict(not bad, "200 text/event-stream", "; ".join(bad), streams=len(rows))


@check(
    "STREAM-002",
    "SHOULD",
    "A stream is sent with Cache-Control: no-cache",
    spec="R9.2",
    evidence="cache-control header",
    scenarios=STREAMS,
)
def stream_002(run: Run) -> Verdict:
    """Level SHOULD although R9.2 is a MUST: status and media type (the parts a client needs) are
    MUST checks of their own; a missing no-cache only exposes the stream to caching intermediaries."""
    rows = [(n, success(run, n).http.headers.get("cache-control", "")) for n in _applicable(run, STREAMS)]
    bad = [f"{n}: {v or 'absent'}" for n, v in rows if "no-cache" not in v.lower()]
    return verdict(not bad, "no-cache", "; ".join(bad))


@check(
    "STREAM-003",
    "MUST",
    "Every event is data: <chunk envelope JSON>",
    spec="R9.3",
    evidence="events that are not chunk envelopes",
    scenarios=STREAMS,
)
def stream_003(run: Run) -> Verdict:
    bad = []
    for name in _applicable(run, STREAMS):
        record = success(run, name)
        others = [e for e in record.non_envelope_events if e.strip() != "[DONE]"]
        bad += [f"{name}: {len(others)} non-JSON event(s)"] if others else []
        bad += [f"{name}: {record.stream_error}"] if record.stream_error else []
        bad += [f"{name}: no events"] if not record.chunks else []
    return verdict(not bad, "every event is a chunk envelope", "; ".join(bad))


@check(
    "STREAM-004",
    "MUST",
    "No [DONE] sentinel: the stream ends with the body",
    spec=("R9.8", "R9.9"),
    evidence="sentinels seen",
    scenarios=STREAMS,
)
def stream_004(run: Run) -> Verdict:
    done = [
        n for n in _applicable(run, STREAMS) if any(e.strip() == "[DONE]" for e in success(run, n).non_envelope_events)
    ]
    return verdict(
        not done,
        "no [DONE] (the TypeScript SDK fails on it)",
        f"[DONE] sent on {', '.join(done)}",
        streams_with_done=len(done),
    )


def _stream_inner(run: Run, name: str) -> list[dict[str, Any]]:
    record = success(run, name)
    inner = [c.inner for c in record.chunks]
    if not inner or not all(isinstance(c, dict) for c in inner):
        raise Precondition(f"the {name} chunks could not all be decrypted and parsed")
    return inner


@check(
    "STREAM-005",
    "MUST",
    "A stream ends with a usage chunk (choices [] and a usage object)",
    spec="R9.11",
    evidence="shape of the last chunk",
    scenarios=STREAMS,
)
def stream_005(run: Run) -> Verdict:
    bad = []
    for name in _applicable(run, STREAMS):
        last = _stream_inner(run, name)[-1]
        if last.get("choices") != [] or not isinstance(last.get("usage"), dict):
            bad.append(name)
    return verdict(not bad, "final usage chunk present", f"no final usage chunk on {', '.join(bad)}")


@check(
    "STREAM-006",
    "MUST",
    "The chunks form one coherent completion (same id and model, nothing after usage)",
    spec="R9.12",
    evidence="distinct ids/models, chunks after the usage chunk, duplicates",
    scenarios=STREAMS,
)
def stream_006(run: Run) -> Verdict:
    problems = []
    for name in _applicable(run, STREAMS):
        chunks = _stream_inner(run, name)
        ids = {c.get("id") for c in chunks}
        models = {c.get("model") for c in chunks}
        usage_at = [i for i, c in enumerate(chunks) if c.get("choices") == [] and c.get("usage")]
        raw = [e for e in success(run, name).events]
        if len(ids) != 1 or len(models) != 1:
            problems.append(f"{name}: {len(ids)} ids, {len(models)} models")
        if usage_at and usage_at[0] != len(chunks) - 1:
            problems.append(f"{name}: {len(chunks) - 1 - usage_at[0]} chunk(s) after the usage chunk")
        nonces = {c.nonce for c in success(run, name).chunks}
        # With one nonce for the whole stream (NONCE-003), equal plaintexts give equal events, so a
        # verbatim repeat only proves duplication when the nonces are otherwise fresh.
        if len(set(raw)) != len(raw) and len(nonces) > 1:
            problems.append(f"{name}: an event is repeated verbatim")
        finishes = [i for i, c in enumerate(chunks) for ch in c.get("choices") or [] if ch.get("finish_reason")]
        if not finishes:
            problems.append(f"{name}: no choice ever finishes")
        elif any(i < max(finishes) and not c.get("choices") for i, c in enumerate(chunks)):
            problems.append(f"{name}: empty chunk before the last finish")
        if _content_after_finish(chunks):
            problems.append(f"{name}: content after the choice finished (reordered?)")
    return verdict(not problems, "coherent", "; ".join(problems[:4]), problems=len(problems))


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


@check(
    "STREAM-007",
    "SHOULD",
    "Keep-alive comments are not a flood (at most one per event, plus four)",
    spec="R9.7",
    evidence="comment and event counts",
    scenarios=STREAMS,
)
def stream_007(run: Run) -> Verdict:
    bad = []
    counts = {}
    for name in _applicable(run, STREAMS):
        record = success(run, name)
        comments = record.sse.comments if record.sse else 0
        counts[name] = comments
        if comments > len(record.chunks) + 4:
            bad.append(f"{name}: {comments} comments for {len(record.chunks)} events")
    return verdict(not bad, "keep-alives within bounds", "; ".join(bad), comments=counts)


@check(
    "STREAM-008",
    "MUST",
    "Embeddings never answer with an event stream",
    spec="R9.1",
    evidence="status and media type of a stream request to embeddings",
    scenarios=("stream_for_embeddings",),
)
def stream_008(run: Run) -> Verdict:
    record: ExchangeRecord = run.scenario("stream_for_embeddings")
    ok = record.http.media_type != "text/event-stream"
    return verdict(
        ok,
        f"no event stream (status {record.http.status})",
        "embeddings answered with an event stream",
        status=record.http.status,
    )


@check(
    "STREAM-009",
    "MUST",
    "The stream is complete: no partial event is left when the body ends",
    spec="R9.9",
    evidence="bytes of an unterminated final event",
    scenarios=STREAMS,
)
def stream_009(run: Run) -> Verdict:
    bad = [
        f"{n}: {success(run, n).truncated_bytes} bytes"
        for n in _applicable(run, STREAMS)
        if success(run, n).truncated_bytes
    ]
    return verdict(not bad, "every event terminated", "unterminated final event: " + "; ".join(bad))


# === USAGE ===========================================================================================


def _usage_objects(run: Run) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in _applicable(run, ("chat", "completions", "embeddings")):
        inner = _inner(run, name)
        usage = inner.get("usage")
        if not isinstance(usage, dict):
            raise Precondition(f"the {name} plaintext has no usage object")
        out.append((name, usage))
    return out


@check(
    "USAGE-001",
    "MUST",
    "usage has non-negative integer prompt_tokens, completion_tokens (text) and total_tokens",
    spec="R11.1",
    evidence="member types",
    scenarios=("chat", "completions", "embeddings"),
)
def usage_001(run: Run) -> Verdict:
    def is_count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    bad = []
    for name, usage in _usage_objects(run):
        needed = ("prompt_tokens", "total_tokens") + (("completion_tokens",) if name != "embeddings" else ())
        bad += [f"{name}.{k}" for k in needed if not is_count(usage.get(k))]
    return verdict(not bad, "counts are integers", f"not a non-negative integer: {', '.join(bad)}")


@check(
    "USAGE-002",
    "MUST",
    "total_tokens = prompt_tokens + completion_tokens",
    spec="R11.2",
    evidence="the three counts",
    scenarios=("chat", "completions", "embeddings"),
)
def usage_002(run: Run) -> Verdict:
    bad = []
    for name, u in _usage_objects(run):
        try:
            if u["total_tokens"] != u["prompt_tokens"] + (u.get("completion_tokens") or 0):
                bad.append(name)
        except (KeyError, TypeError):
            bad.append(name)
    return verdict(not bad, "totals add up", f"total differs from prompt + completion on {', '.join(bad)}")


@check(
    "USAGE-003",
    "MUST",
    "The clear usage equals the encrypted usage exactly (non-streaming)",
    spec="R11.4",
    evidence="equality per response",
    scenarios=("chat", "completions", "embeddings"),
)
def usage_003(run: Run) -> Verdict:
    from ..protocol.jsonwire import strict_equal

    bad = []
    for name in _applicable(run, ("chat", "completions", "embeddings")):
        message = _first_message(run, name)
        clear = message.clear_usage
        inner = message.inner.get("usage") if isinstance(message.inner, dict) else None
        if clear is not MISSING and not strict_equal(clear, inner):
            bad.append(name)
    return verdict(
        not bad,
        "clear usage = encrypted usage",
        f"the clear usage differs from the signed, encrypted one on {', '.join(bad)} (billing tamper)",
    )


@check(
    "USAGE-004",
    "MUST",
    "The clear usage on the stream's usage chunk equals its encrypted usage",
    spec="R11.4",
    evidence="equality on each chunk with clear usage",
    scenarios=STREAMS,
)
def usage_004(run: Run) -> Verdict:
    from ..protocol.jsonwire import strict_equal

    bad = 0
    seen = 0
    for name in _applicable(run, STREAMS):
        for chunk in success(run, name).chunks:
            if chunk.clear_usage is MISSING:
                continue
            seen += 1
            inner = chunk.inner.get("usage") if isinstance(chunk.inner, dict) else None
            bad += 0 if strict_equal(chunk.clear_usage, inner) else 1
    return verdict(
        bad == 0, f"{seen} chunk(s) with clear usage, all equal", f"{bad} chunk(s) with a different clear usage"
    )


@check(
    "USAGE-005",
    "MUST",
    "A clear usage member is present exactly when the plaintext carries usage",
    spec="R11.5",
    evidence="presence vs plaintext",
    scenarios=("chat", "completions", "embeddings", *STREAMS),
)
def usage_005(run: Run) -> Verdict:
    def bad(m: MessageRecord) -> str | None:
        if not isinstance(m.inner, dict):
            return None
        has_inner = isinstance(m.inner.get("usage"), dict)
        has_clear = m.clear_usage is not MISSING and m.clear_usage is not None
        return (
            None if has_inner == has_clear else ("usage missing in clear" if has_inner else "clear usage without inner")
        )

    return _all_ok(_messages(run, ("chat", "completions", "embeddings", *STREAMS)), bad, "usage presence")


@check(
    "USAGE-006",
    "MUST",
    "Usage details, when present, are objects of non-negative integers",
    spec="R11.3",
    evidence="detail member types",
    scenarios=("chat", "completions", "embeddings"),  # _usage_objects reads all three
)
def usage_006(run: Run) -> Verdict:
    bad = []
    for name, usage in _usage_objects(run):
        for key in ("completion_tokens_details", "prompt_tokens_details"):
            value = usage.get(key)
            if value is None:
                continue
            if not isinstance(value, dict) or not all(
                v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in value.values()
            ):
                bad.append(f"{name}.{key}")
    return verdict(not bad, "details well formed (or absent)", f"malformed: {', '.join(bad)}")


@check(
    "USAGE-007",
    "SHOULD",
    "The usage counts are plausible for the answer (completion tokens > 0 for text)",
    spec="R11.1",
    evidence="counts",
    scenarios=("chat", "completions", "embeddings"),  # _usage_objects reads all three
)
def usage_007(run: Run) -> Verdict:
    """Level SHOULD: a heuristic stricter than R11.1 (which allows zero), for a text answer that has
    text but reports no completion tokens."""
    bad = [n for n, u in _usage_objects(run) if n != "embeddings" and not u.get("completion_tokens")]
    return verdict(not bad, "non-zero completion tokens", f"zero completion tokens on {', '.join(bad)}")


# === ERR =============================================================================================


def _err_check(id: str, name: str, title: str, spec: str | tuple[str, ...]) -> None:
    @check(
        id,
        "MUST",
        title,
        spec=spec,
        evidence="status, media type, whether plaintext or ciphertext came back",
        scenarios=("chat", name),  # chat: the node face's precondition (a valid request is served)
    )
    def predicate(run: Run) -> Verdict:
        if run.target.face == "node":  # no bearer token or lock stands between a bad setup and a 4xx
            success(run, "chat")
        result = run.scenario(name)
        why = refusal_problem(result)
        status = response_of(result).status
        return verdict(why is None, f"refused with {status}", why or "", status=status)


for _id, _name, _title, _spec in (
    ("ERR-001", "err_tampered_ciphertext", "A tampered ciphertext is refused", ("R5.4", "R10.5", "R10.8")),
    ("ERR-002", "err_tampered_tag", "A tampered GCM tag is refused", ("R5.4", "R10.5", "R10.8")),
    ("ERR-003", "err_tampered_nonce", "A tampered nonce is refused", ("R5.4", "R10.8")),
    ("ERR-004", "err_tampered_salt", "A tampered salt is refused", ("R5.4", "R10.8")),
    ("ERR-005", "err_wrong_client_key", "A client_dh_public_key that did not seal the body is refused", ("R5.4",)),
    ("ERR-006", "err_wrong_node_key", "A node_dh_public_key that is not the node's key is refused", ("R3.13",)),
    ("ERR-007", "err_wrong_hash", "A wrong plaintext_body_hash is refused", ("R6.2", "R10.6")),
    ("ERR-008", "err_low_order_key", "A low-order client_dh_public_key is refused", ("R4.2",)),
    ("ERR-009", "err_missing_field", "An envelope missing a required member is refused", ("R3.1",)),
    ("ERR-010", "err_mistyped_field", "A mistyped member (stack_small_id as a string) is refused", ("R3.1", "R3.11")),
    ("ERR-011", "err_unknown_model", "A plaintext naming a model nobody serves is refused", ("R3.14",)),
    ("ERR-012", "err_no_lock", "A request on a stack with no lock is refused", ("R2.13", "R2.15")),
    ("ERR-013", "err_oversize", "A body over the size limit is refused", ("R3.18",)),
    ("ERR-014", "err_urlsafe_base64", "URL-safe base64 in a binary member is refused", ("R3.4",)),
    ("ERR-015", "err_unpadded_base64", "Unpadded base64 in a binary member is refused", ("R3.4",)),
    ("ERR-021", "err_no_auth", "A confidential request without a bearer token is refused", ("R10.7",)),
    ("ERR-022", "err_content_type", "A confidential request that is not application/json is refused", ("R3.3",)),
    (
        "ERR-024",
        "err_wrong_length",
        "A binary member of the wrong decoded length (an 11-byte nonce) is refused",
        ("R3.5", "R10.3"),
    ),
):
    _err_check(_id, _name, _title, _spec)

REFUSAL_SCENARIOS = tuple(n for n in ERR_SCENARIOS if n != "err_model_name_mismatch")


@check(
    "ERR-016",
    "MUST",
    "A 33-byte plaintext_body_hash is refused with 400, not signed and forwarded",
    spec=("R3.9", "R7.13"),
    evidence="status, media type, whether plaintext or ciphertext came back",
    scenarios=("err_long_hash",),
)
def err_016(run: Run) -> Verdict:
    """R7.13 asks the proxy for 400 before signing. A 5xx, or a node's own error code, shows that the
    hash was signed and forwarded and a node refused it (W8). The node face has NODE-005 instead."""
    if run.target.face == "node":
        raise Skip("a proxy requirement: on the node face NODE-005 checks the 33-byte hash")
    result = run.scenario("err_long_hash")
    why = refusal_problem(result)
    http = response_of(result)
    error = http.error_body()
    code = error[0] if error else None
    if why is None and code in NODE_FACE_ONLY_CODES:
        why = f"refused with the node's {code}: the hash was signed and forwarded to a node (W8)"
    elif why is None and http.status != 400:
        why = f"refused with {http.status}, not 400: the hash was signed and forwarded, and the node refused it (W8)"
    return verdict(why is None, f"refused with {http.status}", why or "", status=http.status, code=code)


NODE_FACE_ONLY_CODES = frozenset({"INVALID_HEADER", "INVALID_BODY", "MISSING_HEADER"})


def _refusals(run: Run) -> list[tuple[str, Any]]:
    out = []
    for name in _applicable(run, REFUSAL_SCENARIOS):
        result = run.scenario(name)
        if refusal_problem(result) is None:
            out.append((name, result))
    return out


@check(
    "ERR-017",
    "MUST",
    "Client-caused refusals are 4xx, never 5xx",
    spec="R10.2",
    evidence="status per refusal",
    scenarios=REFUSAL_SCENARIOS,
)
def err_017(run: Run) -> Verdict:
    refusals = _refusals(run)
    bad = [f"{n}: {response_of(r).status}" for n, r in refusals if (response_of(r).status or 0) >= 500]
    return verdict(
        not bad,
        f"{len(refusals)} refusals, all 4xx",
        f"{len(bad)} of {len(refusals)} client-caused refusals are 5xx: {', '.join(bad[:6])}",
        refusals=len(refusals),
        server_errors=len(bad),
    )


@check(
    "ERR-018",
    "MUST",
    'Refusals are application/json {"error":{"code","message"}}',
    spec="R10.1",
    evidence="content type and body shape per refusal",
    scenarios=REFUSAL_SCENARIOS,
)
def err_018(run: Run) -> Verdict:
    refusals = _refusals(run)
    bad = [
        n for n, r in refusals if response_of(r).media_type != "application/json" or response_of(r).error_body() is None
    ]
    return verdict(
        not bad,
        f"{len(refusals)} refusals, all JSON error bodies",
        f"{len(bad)} refusal(s) without the JSON error shape: {', '.join(bad[:6])}",
        malformed=len(bad),
    )


@check(
    "ERR-019",
    "MUST",
    "No refusal echoes the API key, the plaintext, the ciphertext or either hash",
    spec="R10.9",
    evidence="which secret kind leaked, per refusal",
    scenarios=REFUSAL_SCENARIOS,
)
def err_019(run: Run) -> Verdict:
    leaks = []
    refusals = [(n, run.scenario(n)) for n in _applicable(run, REFUSAL_SCENARIOS)]
    for name, result in refusals:
        http = response_of(result)
        haystack = http.body.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in http.headers.items())
        for label, secret in secrets_of(run.target.api_key, result).items():
            if secret and secret in haystack:
                leaks.append(f"{name}: {label}")
    return verdict(
        not leaks, f"{len(refusals)} refusals, nothing echoed", f"leaked: {'; '.join(leaks[:5])}", leaks=len(leaks)
    )


@check(
    "ERR-020",
    "MUST",
    "The target still serves a valid request after every refusal",
    spec="R10.10",
    evidence="status and verification of a round trip after the refusal probes",
    scenarios=("health_after",),
)
def err_020(run: Run) -> Verdict:
    record: ExchangeRecord = run.scenario("health_after")
    message = record.response
    ok = record.http.status == 200 and message is not None and message.aead_error is None and message.hash_matches
    return verdict(
        ok,
        "a valid round trip still succeeds",
        f"the target is unhealthy after refusals (status {record.http.status})",
        status=record.http.status,
    )


@check(
    "ERR-023",
    "SHOULD",
    "An envelope whose model_name differs from the plaintext's model is refused",
    spec=("R3.16", "R13.5"),
    evidence="status",
    scenarios=("err_model_name_mismatch",),
)
def err_023(run: Run) -> Verdict:
    """Level SHOULD, as R3.16 (the node's duty); R13.5, the client's MUST, is cited for context."""
    result = run.scenario("err_model_name_mismatch")
    why = refusal_problem(result)
    return verdict(
        why is None, f"refused with {result.http.status}", f"served anyway: {why}", status=result.http.status
    )


# === ENDPOINT ========================================================================================


def _endpoint_check(id: str, name: str, title: str, spec: tuple[str, ...]) -> None:
    @check(
        id,
        "MUST",
        title,
        spec=spec,
        evidence="status, and decrypt/hash/signature results per message",
        scenarios=(name,),
    )
    def predicate(run: Run) -> Verdict:
        record: ExchangeRecord = run.scenario(name)
        if record.http.status != 200:
            return failed(
                f"status {record.http.status}{', ' + record.http.error if record.http.error else ''}",
                status=record.http.status,
            )
        messages = record.messages
        bad = [
            m.where
            for m in messages
            if m.aead_error or not m.hash_matches or m.signature_verify_error or m.signature is None
        ]
        if not messages:
            return failed("no encrypted message came back")
        return verdict(
            not bad,
            f"{len(messages)} message(s) decrypted, hashed and verified",
            f"{len(bad)} message(s) fail to decrypt, hash or verify (first {bad[0] if bad else ''})",
            messages=len(messages),
        )


for _id, _name, _title, _spec in (
    ("ENDPOINT-001", "chat", "Confidential chat completions round-trips", ("R1.1", "R8.1")),
    ("ENDPOINT-002", "completions", "Confidential completions round-trips", ("R1.1", "R8.1")),
    ("ENDPOINT-003", "embeddings", "Confidential embeddings round-trips", ("R1.1", "R8.1")),
    ("ENDPOINT-004", "images", "Confidential image generation round-trips", ("R1.1", "R8.1")),
    ("ENDPOINT-005", "chat_stream", "Streaming confidential chat completions round-trips", ("R1.1", "R9.2")),
    ("ENDPOINT-006", "completions_stream", "Streaming confidential completions round-trips", ("R1.1", "R9.2")),
):
    _endpoint_check(_id, _name, _title, _spec)


# === REPLAY ==========================================================================================


@check(
    "REPLAY-001",
    "SHOULD",
    "An identical replayed request is refused",
    spec="R12.7",
    evidence="status of the replay",
    scenarios=("replay",),
)
def replay_001(run: Run) -> Verdict:
    pair: Pair = run.scenario("replay")
    if pair.first.http.status != 200:
        raise Precondition(f"the original request failed (status {pair.first.http.status})")
    second = response_of(pair.second)
    return verdict(
        second.status != 200,
        f"replay refused ({second.status})",
        "the node served the same request twice (replay accepted)",
        status=second.status,
    )
