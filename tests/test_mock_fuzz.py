"""Hypothesis fuzzing of the strict mock node's HTTP surface, driven in-process.

Every request, whatever the fuzzer made of it, must satisfy (docs/spec.md §10 and the issue):

- the node never answers 5xx and never raises (an exception escaping the app is a crash). The one 5xx
  the spec asks for, 503 on a lock that names an unserved model (R2.10), is allowed only when the
  protocol core confirms that the lock body is exactly that;
- every refusal has ``Content-Type: application/json`` and a body that is exactly
  ``{"error":{"code":str,"message":str}}`` with a code that belongs to its status (R10.1, R10.12);
- no response, refused or served, shows in its headers or clear body the sentinel planted in the
  plaintext, an API token, the request's hashes or ciphertext (R5.5, R10.9);
- a request is served (200) exactly when the protocol core, used as the oracle, accepts it, and the
  answer then decrypts under the request's own exchange and verifies against the node's Sui address;
  a mutation that changed a security-relevant envelope member never gets a 200;
- after every batch (one Hypothesis example) a fresh lock + chat round trip still verifies (R10.10).

Requests go through ``httpx.ASGITransport`` on one ``asyncio.Runner`` per test rather than over
sockets, so the issue's budget of at least 10,000 requests in the ``ci`` profile costs seconds; the
module counts them and its last test checks the budget.

Each test uses its own node, and API tokens are split by role so that the oracle knows which locks a
request could consume: ``TOKEN`` only ever locks the chat model, ``GARBAGE_TOKEN`` never locks
anything, lock-endpoint garbage uses ``LOCKER_TOKEN`` and the health check ``HEALTH_TOKEN``.

Known bugs are pinned by the ``test_bug_*`` tests at the end, each with one minimal input. The broad
strategies leave out exactly those triggers (a lone-surrogate escape nested a few hundred levels deep, a
non-ASCII bearer token on a node with ``api_keys``, and a replay with bit 255 of the client key set), so
that the rest of the fuzzing stays meaningful until they are fixed; once they are, those triggers can join
the strategies.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import string
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mock_node.app
from conformance.protocol import (
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    DecodedRequest,
    LockRequest,
    LockResponse,
    NonceLedger,
    ProtocolError,
    SealedRequest,
    SeededRandom,
    SseParser,
    StreamChunk,
    b64decode,
    b64encode,
    jsonwire,
    low_order_encodings,
    open_chunk,
    open_request,
    open_response,
    seal_request,
    x25519_public_key,
)
from mock_node.app import LOCK_BODY_LIMIT, REPLAY_MEMORY, create_app
from mock_node.config import IMAGE_DEFAULT_UNITS, LOCK_DEFAULT_TOKENS, MAX_BODY_BYTES, MockConfig
from tests.mockclient import CHAT_MODEL, EMBED_MODEL, IMAGE_MODEL, PATHS

T = TypeVar("T")
Header = tuple[bytes, bytes]
Job = tuple[Any, ...]
Mutation = tuple[Any, ...]

TOKEN = "fuzz-token-5c1d0a"
OTHER_TOKEN = "fuzz-other-token-93be"
GARBAGE_TOKEN = "fuzz-garbage-token-77a2"
LOCKER_TOKEN = "fuzz-locker-token-1e08"
HEALTH_TOKEN = "fuzz-health-token-2f70"
SENTINEL = "PLANTED-SENTINEL-6e1b4f"
SECRETS: tuple[bytes, ...] = tuple(
    s.encode() for s in (TOKEN, OTHER_TOKEN, GARBAGE_TOKEN, LOCKER_TOKEN, HEALTH_TOKEN, SENTINEL)
)

LOCK_PATH = "/v1/nodes/lock"
CHAT_PATH = PATHS["chat"]
CONFIDENTIAL_PATHS = tuple(PATHS.values())
POST_PATHS = (LOCK_PATH, *CONFIDENTIAL_PATHS)
ENDPOINTS = ("chat", "completions", "embeddings", "images")
ENDPOINT_MODEL = {"chat": CHAT_MODEL, "completions": CHAT_MODEL, "embeddings": EMBED_MODEL, "images": IMAGE_MODEL}
IMAGE_LOCK_TOKENS = 2 * IMAGE_DEFAULT_UNITS
OBJECT_OF = {"chat": "chat.completion", "completions": "text_completion", "embeddings": "list"}
STATUS_OF_CODE = {
    "REQUEST_ERROR": 400,
    "AUTH_ERROR": 401,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "REPLAYED_REQUEST": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNAVAILABLE_STACK": 425,
    "SERVICE_UNAVAILABLE": 503,
}
WRONG_ROUTES = (
    ("GET", CHAT_PATH, 405),
    ("PUT", LOCK_PATH, 405),
    ("DELETE", PATHS["embeddings"], 405),
    ("PATCH", PATHS["images"], 405),
    ("POST", "/v1/confidential/unknown", 404),
    ("POST", "/v1/nodes", 404),
    ("POST", "/v1/confidential/chat/completions/more", 404),
    ("POST", "/", 404),
)

# Budget: the issue asks for at least 10,000 requests under ``ci``; ``deep`` multiplies every example count.
MIN_REQUESTS = 10_000
SCALE = max(1, min(50, settings().max_examples // 60))
SENT: Counter[str] = Counter()
COMPLETED: set[str] = set()
COUNTED_TESTS = frozenset(
    {
        "test_garbage_bodies_on_every_route",
        "test_mutated_envelopes",
        "test_garbage_plaintexts",
        "test_wrong_and_missing_headers",
        "test_concurrent_mixed_batches",
        "test_concurrent_streams_have_unique_nonces",
        "test_memory_stays_bounded",
    }
)


def fuzz(examples: int) -> settings:
    """Explicit example counts (the ``ci`` default of 60 is too few for the request budget), scaled for ``deep``."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            # One node per test on purpose: state (locks, replay cache) accumulates across examples.
            HealthCheck.function_scoped_fixture,
        ],
    )


# --- the in-process node and the response invariants ---------------------------------------------------------


def auth(token: str = TOKEN) -> list[Header]:
    return [(b"authorization", b"Bearer " + token.encode()), (b"content-type", b"application/json")]


def describe(body: bytes | AsyncIterator[bytes] | None) -> str:
    if isinstance(body, bytes):
        return f"{len(body)}-byte body {body[:160]!r}"
    return "a streamed body" if body is not None else "no body"


def lock_status(body: bytes, config: MockConfig) -> int:
    """What a lock with good headers must get: the oracle is the core's LockRequest (R2.1, R2.3, R2.10)."""
    if len(body) > LOCK_BODY_LIMIT:
        return 413
    try:
        request = LockRequest.parse(body)
    except ProtocolError:
        return 400
    return 200 if request.model in config.models else 503


def check_response(response: httpx.Response, secrets: Iterable[bytes]) -> None:
    status = response.status_code
    where = f"{response.request.method} {response.request.url.path} -> {status} {response.content[:300]!r}"
    content_types = response.headers.get_list("content-type")
    if status == 200:
        assert content_types in (["application/json"], ["text/event-stream"]), where
    else:
        assert content_types == ["application/json"], f"a refusal must be JSON (R10.1): {where}"
        body = jsonwire.loads(response.content)
        assert isinstance(body, dict) and list(body) == ["error"], where
        error = body["error"]
        assert isinstance(error, dict) and sorted(error) == ["code", "message"], where
        assert isinstance(error["code"], str) and isinstance(error["message"], str), where
        assert STATUS_OF_CODE.get(error["code"]) == status, f"code and status disagree (R10.12): {where}"
    exposed = response.content + b"".join(name + b": " + value for name, value in response.headers.raw)
    for secret in (*SECRETS, *secrets):
        assert secret not in exposed, f"the response exposes {secret[:48]!r} (R10.9): {where}"


def error_code(response: httpx.Response) -> str:
    code = jsonwire.loads(response.content)["error"]["code"]
    assert isinstance(code, str)
    return code


class Node:
    """A strict mock node served in-process on its own event loop; every request is counted and checked."""

    def __init__(self, name: str, config: MockConfig | None = None) -> None:
        self.name = name
        self.config = config or MockConfig()
        self.app = create_app(self.config)
        self.state: mock_node.app.NodeState = self.app.state.node
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://mock")

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    async def send(
        self,
        path: str,
        body: bytes | AsyncIterator[bytes] | None,
        headers: Sequence[Header],
        *,
        method: str = "POST",
        secrets: Iterable[bytes] = (),
    ) -> httpx.Response:
        SENT[self.name] += 1
        try:
            response = await self._client.request(method, path, content=body, headers=headers)
        except Exception as exc:
            raise AssertionError(
                f"the node crashed on {method} {path} with {describe(body)} and headers {headers!r}: {exc!r}"
            ) from exc
        if response.status_code >= 500:
            allowed = path == LOCK_PATH and isinstance(body, bytes) and lock_status(body, self.config) == 503
            assert allowed, f"5xx (R10.2) on {method} {path} with {describe(body)}: {response.content[:300]!r}"
        check_response(response, secrets)
        return response

    async def lock(self, model: str = CHAT_MODEL, token: str = TOKEN, **fields: Any) -> LockResponse:
        response = await self.send(LOCK_PATH, jsonwire.dumps({"model": model, **fields}), auth(token))
        assert response.status_code == 200, response.text
        lock = LockResponse.parse(response.content)
        assert lock.node_public_key() == self.config.node_public_key
        return lock

    async def healthy(self) -> None:
        """R10.10: after whatever came before, a fresh lock + chat round trip still verifies."""
        lock = await self.lock(token=HEALTH_TOKEN)
        plaintext = jsonwire.dumps(chat_plaintext("are you still there?"))
        sealed = seal(lock, plaintext, CHAT_MODEL, stream=False)
        response = await self.send(CHAT_PATH, sealed.request.serialize(), auth(HEALTH_TOKEN))
        assert response.status_code == 200, response.text
        (answer,) = verify_success(response, sealed, self.config, stream=False)
        assert answer["object"] == "chat.completion"
        assert len(self.state.replays) <= REPLAY_MEMORY
        assert all(len(p) <= self.state.locks.max_locks_per_stack for p in self.state.locks._locks.values())
        assert asyncio.all_tasks() == {asyncio.current_task()}, "the app left tasks running"


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Iterator[Node]:
    instance = Node(request.node.name)
    yield instance
    instance.close()


def finish(node: Node) -> None:
    COMPLETED.add(node.name)


# --- sealing, verifying, and the protocol core as oracle -------------------------------------------------------


def chat_plaintext(content: str, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "messages": [{"role": "user", "content": content}], "stream": stream, **extra}


def seal(
    lock: LockResponse, plaintext: bytes, model_name: str, *, stream: bool, units: int | None = None
) -> SealedRequest:
    return seal_request(
        plaintext,
        node_public_key=lock.node_public_key(),
        model_name=model_name,
        stack_small_id=lock.stack_small_id,
        stream=stream,
        num_compute_units=units,
    )


def request_secrets(sealed: SealedRequest, plaintext: bytes) -> list[bytes]:
    """What a refusal must never show (R10.9): the hash in every encoding, the ciphertext, the plaintext."""
    digest = sealed.plaintext_hash
    out = [sealed.request.plaintext_body_hash.encode(), digest.hex().encode(), str(list(digest)).encode()]
    out.append(sealed.request.ciphertext[:32].encode())
    if len(plaintext) >= 16:
        out.append(plaintext[:64])
    return out


@dataclass
class Audit:
    """Nonces of every verified exchange (R12.1-R12.3) and the (K, nonce) pairs the node has opened."""

    ledger: NonceLedger = field(default_factory=NonceLedger)
    nonces: set[bytes] = field(default_factory=set)
    served: set[bytes] = field(default_factory=set)

    def observe(self, key_id: str, nonce: bytes, where: str) -> None:
        finding = self.ledger.observe(key_id, nonce, where)
        assert finding is None, f"nonce reuse under one key: {finding}"
        if where != "request":
            assert nonce not in self.nonces, f"a response nonce repeats across exchanges ({where})"
            self.nonces.add(nonce)


def verify_success(
    response: httpx.Response, sealed: SealedRequest, config: MockConfig, *, stream: bool, audit: Audit | None = None
) -> list[dict[str, Any]]:
    """Open a 200 under the request's own exchange, checking hash, signer, usage and nonces; return plaintexts."""
    audit = audit or Audit()
    exchange = sealed.exchange
    audit.observe(exchange.key_id, exchange.request_nonce, "request")
    if stream:
        assert response.headers["content-type"] == "text/event-stream"
        parser = SseParser()
        events = parser.feed(response.content)
        assert events and parser.pending_bytes == 0, "a stream must end on a complete event"
        opened = [
            open_chunk(StreamChunk.parse(e.data.encode()), exchange, expected_signer=config.signer_address)
            for e in events
        ]
    else:
        assert response.headers["content-type"] == "application/json"
        message = ConfidentialComputeResponse.parse(response.content)
        opened = [open_response(message, exchange, expected_signer=config.signer_address)]
    for index, message_opened in enumerate(opened):
        audit.observe(exchange.key_id, message_opened.nonce, f"chunk[{index}]" if stream else "response")
    documents = [jsonwire.loads_object(m.plaintext) for m in opened]
    if stream:
        assert documents[-1]["choices"] == [] and isinstance(documents[-1]["usage"], dict)
    return documents


def check_documents(endpoint: str, documents: list[dict[str, Any]], *, stream: bool) -> None:
    if stream:
        kinds = {d["object"] for d in documents}
        assert kinds == {"chat.completion.chunk" if endpoint == "chat" else "text_completion"}, kinds
    elif endpoint == "images":
        assert isinstance(documents[0]["data"], list) and documents[0]["data"]
    else:
        assert documents[0]["object"] == OBJECT_OF[endpoint]


def replay_identity(decoded: DecodedRequest) -> bytes:
    """R12.7 names a request by (K, request nonce); X25519 ignores bit 255 of the client key (R4.1)."""
    client = decoded.client_dh_public_key[:31] + bytes([decoded.client_dh_public_key[31] & 0x7F])
    return client + decoded.node_dh_public_key + decoded.salt + decoded.nonce


def security_members(body: bytes) -> tuple[bytes, ...] | None:
    """The decoded members that bind a request to its key and bytes, canonicalised as X25519 reads them."""
    try:
        decoded = ConfidentialComputeRequest.parse(body).decode()
    except ProtocolError:
        return None
    return (replay_identity(decoded), decoded.ciphertext, decoded.plaintext_body_hash)


@dataclass(frozen=True)
class Verdict:
    status: int
    why: str
    identity: bytes | None = None  # set when the node decrypts it (and so remembers its (K, nonce))


def judge_envelope(body: bytes, config: MockConfig, *, stack: int, served: set[bytes]) -> Verdict:
    """The status the node owes a chat envelope, in the spec's order, decided by the protocol core.

    Order (docs/spec.md, mock_node.app): JSON shape and types, strict base64 and lengths (400), the lock
    (425), key check, low-order key, AEAD and plaintext hash (400), replay (409), then the envelope must
    agree with the plaintext (400). The caller holds an unconsumed 8192-unit lock on ``stack``.
    """
    try:
        envelope = ConfidentialComputeRequest.parse(body)
        decoded = envelope.decode()
    except ProtocolError as exc:
        return Verdict(400, f"the core refuses the envelope: {exc}")
    units = LOCK_DEFAULT_TOKENS if envelope.num_compute_units is None else envelope.num_compute_units
    if envelope.stack_small_id != stack or units > LOCK_DEFAULT_TOKENS:
        return Verdict(425, f"no usable lock on stack {envelope.stack_small_id} for {units} units")
    try:
        opened = open_request(envelope, config.node_private_key)
    except ProtocolError as exc:
        return Verdict(400, f"the core cannot open it: {exc}")
    identity = replay_identity(decoded)
    if identity in served:
        return Verdict(409, "a replay of an opened request", identity)
    inner = jsonwire.loads_object(opened.plaintext)
    if envelope.model_name != inner.get("model") or bool(envelope.stream) != (inner.get("stream") is True):
        return Verdict(400, "model_name or stream disagrees with the plaintext (R3.16)", identity)
    return Verdict(200, "a valid request", identity)


# --- envelope mutations ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written verbatim (numbers beyond any range, escapes, lone surrogates)."""

    text: str


Members = list[tuple[str | Raw, Any]]
B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
B64_FIELDS = ("ciphertext", "client_dh_public_key", "node_dh_public_key", "nonce", "plaintext_body_hash", "salt")
STRING_FIELDS = (*B64_FIELDS, "model_name")
ENVELOPE_FIELDS = (*ConfidentialComputeRequest.REQUIRED, "num_compute_units", "stream")
LOW_ORDER = low_order_encodings()


def render(members: Members) -> bytes:
    parts = []
    for key, value in members:
        key_text = key.text if isinstance(key, Raw) else json.dumps(key, ensure_ascii=False)
        value_text = value.text if isinstance(value, Raw) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key_text}:{value_text}")
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


def escaped(text: str) -> Raw:
    """The same string with every character as a \\u escape: a different spelling, the same JSON value."""
    return Raw('"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text) + '"')


def _get(members: Members, name: str) -> Any:
    return next((value for key, value in members if key == name), None)


def _set(members: Members, name: str, value: Any) -> Members:
    for index, (key, _) in enumerate(members):
        if key == name:
            return [*members[:index], (key, value), *members[index + 1 :]]
    return [*members, (name, value)]


def b64_variant(value: str, variant: str, n: int) -> str | Raw:
    """One wrong (or differently spelled) form of a base64 member (R3.4)."""
    k = n % (len(value) + 1)
    if variant == "urlsafe":
        return value.replace("+", "-").replace("/", "_")
    if variant == "unpadded":
        return value.rstrip("=")
    if variant == "extra_pad":
        return value + "="
    if variant == "pad_inside":
        return value[:k] + "=" + value[k:]
    if variant == "wrapped":
        return "\n".join(value[i : i + 8] for i in range(0, len(value), 8))
    if variant == "space_inside":
        return value[:k] + " " + value[k:]
    if variant == "surrounding_space":
        return " " + value + "\r\n"
    if variant == "trailing_bits":
        body = value.rstrip("=")
        if body == value or not body or body[-1] not in B64_ALPHABET:
            return value
        return body[:-1] + B64_ALPHABET[B64_ALPHABET.index(body[-1]) | 1] + value[len(body) :]
    if variant == "long_valid":
        return b64encode(bytes(n % (192 * 1024)))
    if variant == "long_garbage":
        return "A" * (n % (256 * 1024))
    if variant == "empty":
        return ""
    if variant == "bad_char":
        return value[:k] + "*" + value[k + 1 :]
    if variant == "non_ascii":
        return value[:k] + "é" + value[k:]
    if variant == "nul":
        return value[:k] + "\x00" + value[k:]
    if variant == "escaped_slash":
        return Raw(json.dumps(value).replace("/", "\\/"))
    try:
        raw = b64decode(value)
    except ProtocolError:
        return value
    if variant == "shorter":
        return b64encode(raw[:-1])
    assert variant == "longer"
    return b64encode(raw + bytes([n & 0xFF]))


B64_VARIANTS = (
    "urlsafe",
    "unpadded",
    "extra_pad",
    "pad_inside",
    "wrapped",
    "space_inside",
    "surrounding_space",
    "trailing_bits",
    "long_valid",
    "long_garbage",
    "empty",
    "bad_char",
    "non_ascii",
    "nul",
    "escaped_slash",
    "shorter",
    "longer",
)


def mutate(members: Members, mutation: Mutation) -> Members:
    op, *args = mutation
    if op == "drop":
        return [(k, v) for k, v in members if k != args[0]]
    if op == "duplicate":
        name, escape_key = args
        if (value := _get(members, name)) is None:
            return members
        return [*members, (escaped(name) if escape_key else name, value)]
    if op in ("retype", "set", "number", "unknown"):
        name, value = args
        if op == "unknown":
            return [*members, (name, value)]
        return _set(members, name, Raw(value) if op == "number" else value)
    if op == "b64":
        name, variant, n = args
        value = _get(members, name)
        return _set(members, name, b64_variant(value, variant, n)) if isinstance(value, str) else members
    if op == "flip":
        name, bit = args
        try:
            raw = bytearray(b64decode(_get(members, name)))
        except ProtocolError:
            return members
        if not raw:
            return members
        bit %= len(raw) * 8
        raw[bit // 8] ^= 1 << (bit % 8)
        return _set(members, name, b64encode(bytes(raw)))
    if op == "low_order":
        return _set(members, "client_dh_public_key", b64encode(LOW_ORDER[args[0]]))
    if op == "node_key":
        return _set(members, "node_dh_public_key", b64encode(x25519_public_key(args[0])))
    if op == "unicode":
        name, escape, position = args
        value = _get(members, name)
        text = value if isinstance(value, str) else ""
        cut = position % (len(text) + 1)
        return _set(members, name, Raw(json.dumps(text[:cut])[:-1] + escape + json.dumps(text[cut:])[1:]))
    if op == "escape":
        value = _get(members, args[0])
        return _set(members, args[0], escaped(value)) if isinstance(value, str) else members
    if op == "escape_key":
        return [(escaped(k) if isinstance(k, str) and k == args[0] else k, v) for k, v in members]
    assert op == "reorder"
    shuffled = list(members)
    random.Random(args[0]).shuffle(shuffled)
    return shuffled


NUMBER_TOKENS = st.one_of(
    st.sampled_from(
        [
            "0",
            "-0",
            "1",
            "-1",
            "1.0",
            "1e0",
            "1E+2",
            "0.5",
            "8192",
            "8193",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "340282366920938463463374607431768211456",
            "1e400",
            "-1e400",
            "NaN",
            "Infinity",
            "1" + "0" * 5000,
            "true",
            "null",
            '"1"',
            "01",
            "+1",
            "0x10",
            "[1]",
        ]
    ),
    st.integers(-(2**70), 2**70).map(str),
)
UNICODE_ESCAPES = st.sampled_from(
    [
        "\\ud800",
        "\\udfff",
        "\\ud800\\u0041",
        "\\udbff\\udfff",
        "\\uD83D\\uDE00",
        "\\u0000",
        "\\u00e9",
        "é",
        "\\uffff",
        "\\/",
        "\\u0041",
        "\\\\",
        '\\"',
        SENTINEL,
    ]
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=16),
    st.just(SENTINEL),
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8) | st.just(SENTINEL), inner, max_size=4)
    ),
    max_leaves=10,
)
WRONG_TYPES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.text(max_size=24),
)
MUTATIONS: st.SearchStrategy[Mutation] = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(ENVELOPE_FIELDS)),
    st.tuples(st.just("duplicate"), st.sampled_from(ENVELOPE_FIELDS), st.booleans()),
    st.tuples(st.just("retype"), st.sampled_from(ENVELOPE_FIELDS), WRONG_TYPES),
    st.tuples(st.just("b64"), st.sampled_from(B64_FIELDS), st.sampled_from(B64_VARIANTS), st.integers(0, 2**18)),
    st.tuples(st.just("flip"), st.sampled_from(B64_FIELDS), st.integers(0, 2**16)),
    st.tuples(st.just("low_order"), st.integers(0, len(LOW_ORDER) - 1)),
    st.tuples(st.just("node_key"), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("number"), st.sampled_from(("stack_small_id", "num_compute_units")), NUMBER_TOKENS),
    st.tuples(st.just("unicode"), st.sampled_from(STRING_FIELDS), UNICODE_ESCAPES, st.integers(0, 64)),
    st.tuples(st.just("escape"), st.sampled_from(STRING_FIELDS)),
    st.tuples(st.just("escape_key"), st.sampled_from(ENVELOPE_FIELDS)),
    st.tuples(st.just("unknown"), st.text(max_size=12), JSON_VALUES),
    st.tuples(st.just("reorder"), st.integers(0, 2**32)),
    st.tuples(
        st.just("set"),
        st.sampled_from(("model_name", "stream", "num_compute_units", "stack_small_id")),
        st.one_of(
            st.sampled_from([CHAT_MODEL, EMBED_MODEL, SENTINEL, ""]), st.booleans(), st.none(), st.integers(0, 9000)
        ),
    ),
)


# --- garbage bodies -------------------------------------------------------------------------------------------

# A structurally valid envelope for this node's key on a stack nobody holds, and a valid lock body: textual
# edits of them are near-JSON garbage that still reaches the deeper checks.
ENVELOPE_TEMPLATE = seal_request(
    jsonwire.dumps(chat_plaintext(SENTINEL)),
    node_public_key=MockConfig().node_public_key,
    model_name=CHAT_MODEL,
    stack_small_id=999,
    stream=False,
    rng=SeededRandom("test_mock_fuzz template"),
).request.serialize()
LOCK_TEMPLATE = jsonwire.dumps({"model": CHAT_MODEL, "max_num_tokens": 100, "timeout": 5})
TRICKY = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b" ",
    b"\n",
    b"null",
    b"NaN",
    b"1e999",
    b"-",
    b"0",
    b"\xef\xbb\xbf",
    SENTINEL.encode(),
    b'"model"',
    b'"stack_small_id":1',
]
SPECIAL_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b"1",
    b'"x"',
    b"1e400",
    b"-0",
    b"NaN",
    b"Infinity",
    b"1" * 5000,
    b"\xef\xbb\xbf" + ENVELOPE_TEMPLATE,
    ENVELOPE_TEMPLATE.decode().encode("utf-16"),
    ENVELOPE_TEMPLATE + b"x",
    ENVELOPE_TEMPLATE + ENVELOPE_TEMPLATE,
    b" \r\n\t" + ENVELOPE_TEMPLATE + b"\n",
    ENVELOPE_TEMPLATE.replace(b"{", b'{"ciphertext":"AAAA",', 1),
    LOCK_TEMPLATE,
    LOCK_TEMPLATE.replace(CHAT_MODEL.encode(), SENTINEL.encode()),
    b'{"model":null}',
    b'{"model":"' + CHAT_MODEL.encode() + b'","timeout":-1}',
    b'{"model":"' + CHAT_MODEL.encode() + b'","max_num_tokens":18446744073709551616}',
]


def edit(template: bytes, edits: Sequence[tuple[str, int, int, bytes]]) -> bytes:
    data = template
    for op, a, b, piece in edits:
        i, j = sorted((a % (len(data) + 1), b % (len(data) + 1)))
        if op == "insert":
            data = data[:i] + piece + data[i:]
        elif op == "delete":
            data = data[:i] + data[j:]
        elif op == "replace":
            data = data[:i] + piece + data[i + 1 :]
        elif op == "truncate":
            data = data[:i]
        else:
            data = data[:j] + data[i:j] + data[j:]
    return data


def mutated_template(mutations: Sequence[Mutation]) -> bytes:
    members: Members = list(jsonwire.loads_object(ENVELOPE_TEMPLATE).items())
    for mutation in mutations:
        members = mutate(members, mutation)
    return render(members)


def deep(kind: str, depth: int) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'[{"a":' * depth + b"0" + b"}]" * depth


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.sampled_from(TRICKY),
    ),
    min_size=1,
    max_size=4,
)
GARBAGE_LEAVES = st.one_of(LEAVES, st.floats())  # NaN and infinities become non-JSON tokens
GARBAGE_BODIES: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=256),
    st.text(max_size=64).map(str.encode),
    st.recursive(GARBAGE_LEAVES, lambda inner: st.lists(inner, max_size=4), max_leaves=8).map(
        lambda v: json.dumps(v).encode()
    ),
    st.builds(edit, st.sampled_from([ENVELOPE_TEMPLATE, LOCK_TEMPLATE]), EDITS),
    st.builds(lambda seed, count: seed * count, st.binary(min_size=1, max_size=8), st.integers(0, 32 * 1024)),
    st.builds(deep, st.sampled_from(["array", "object", "mixed"]), st.integers(1, 50_000)),
    st.sampled_from(SPECIAL_BODIES),
    st.lists(MUTATIONS, max_size=2).map(mutated_template),
)


def garbage_status(path: str, body: bytes, config: MockConfig) -> int:
    """Garbage to a confidential path is sent with GARBAGE_TOKEN, which never holds a lock: at best 425."""
    if path == LOCK_PATH:
        return lock_status(body, config)
    if len(body) > config.max_body_bytes:
        return 413
    try:
        ConfidentialComputeRequest.parse(body).decode()
    except ProtocolError:
        return 400
    return 425


# --- (a) raw and near-JSON garbage on every route -------------------------------------------------------------


@fuzz(examples=150)
@given(bodies=st.lists(GARBAGE_BODIES, min_size=1, max_size=6), route=st.sampled_from(WRONG_ROUTES))
def test_garbage_bodies_on_every_route(node: Node, bodies: list[bytes], route: tuple[str, str, int]) -> None:
    async def batch() -> None:
        for body in bodies:
            for path in POST_PATHS:
                token = LOCKER_TOKEN if path == LOCK_PATH else GARBAGE_TOKEN
                response = await node.send(path, body, auth(token))
                expected = garbage_status(path, body, node.config)
                assert response.status_code == expected, f"{path} {describe(body)}: {response.text[:200]}"
            method, path, status = route
            response = await node.send(path, body, auth(GARBAGE_TOKEN), method=method)
            assert response.status_code == status
        await node.healthy()

    node.run(batch())
    finish(node)


# --- (b) sealed envelopes, then mutated -----------------------------------------------------------------------


async def envelope_case(node: Node, stream: bool, mutations: Sequence[Mutation], replay: bool, audit: Audit) -> None:
    lock = await node.lock()
    plaintext = jsonwire.dumps(chat_plaintext(f"tell me about {SENTINEL}", stream=stream))
    sealed = seal(lock, plaintext, CHAT_MODEL, stream=stream)
    members: Members = list(sealed.request.to_json().items())
    for mutation in mutations:
        members = mutate(members, mutation)
    body = render(members)
    changed = security_members(body) != security_members(sealed.request.serialize())
    mutated_b64 = [v[:64].encode() for k, v in members if k in B64_FIELDS and isinstance(v, str) and len(v) >= 16]
    secrets = [*request_secrets(sealed, plaintext), *mutated_b64]
    for attempt in range(2 if replay else 1):
        if attempt:
            await node.lock()
        verdict = judge_envelope(body, node.config, stack=lock.stack_small_id, served=audit.served)
        response = await node.send(CHAT_PATH, body, auth(), secrets=secrets)
        context = f"{verdict.why}; mutations {list(mutations)}; {describe(body)}; got {response.text[:200]}"
        assert response.status_code == verdict.status, context
        if verdict.identity is not None:
            audit.served.add(verdict.identity)
        if response.status_code == 200:
            assert not changed, f"a security-relevant member changed but the node served it: {context}"
            check_documents(
                "chat", verify_success(response, sealed, node.config, stream=stream, audit=audit), stream=stream
            )


@fuzz(examples=300)
@given(
    cases=st.lists(
        st.tuples(st.booleans(), st.lists(MUTATIONS, min_size=1, max_size=4), st.booleans()), min_size=1, max_size=4
    )
)
def test_mutated_envelopes(node: Node, cases: list[tuple[bool, list[Mutation], bool]]) -> None:
    audit = Audit()

    async def batch() -> None:
        for stream, mutations, replay in cases:
            await envelope_case(node, stream, mutations, replay, audit)
        await node.healthy()

    node.run(batch())
    finish(node)


# --- (c) valid envelopes around garbage plaintexts ------------------------------------------------------------


@dataclass(frozen=True)
class PlainCase:
    endpoint: str
    raw: bytes
    expected: frozenset[int]
    kind: str


def valid_plaintext(endpoint: str, stream: bool) -> dict[str, Any]:
    if endpoint == "chat":
        return chat_plaintext(f"hello {SENTINEL}", stream=stream, user=SENTINEL)
    if endpoint == "completions":
        return {"model": CHAT_MODEL, "prompt": f"once upon {SENTINEL}", "stream": stream, "user": SENTINEL}
    if endpoint == "embeddings":
        return {"model": EMBED_MODEL, "input": f"embed {SENTINEL}", f"x_{SENTINEL}": SENTINEL}
    return {"model": IMAGE_MODEL, "prompt": f"a lighthouse {SENTINEL}", "size": "64x64"}


ABSENT = object()


def pairs(name: str, *values: Any) -> list[tuple[str, Any]]:
    return [(name, value) for value in values]


BROKEN_FIELDS: dict[str, list[tuple[str, Any]]] = {
    "chat": pairs(
        "messages",
        ABSENT,
        None,
        5,
        "hi",
        {},
        [],
        [5],
        [{"content": "x"}],
        [{"role": 5, "content": "x"}],
        [{"role": "robot", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": [5]}],
        [{"role": "user", "content": [{"text": "x"}]}],
        [{"role": "user", "content": [{"type": "text"}]}],
        [{"role": "user", "content": [{"type": "text", "text": 5}]}],
        [{"role": "user", "content": "x", "name": 5}],
        [{"role": "user", "content": "x", "tool_calls": "x"}],
    ),
    "completions": pairs(
        "prompt", ABSENT, None, 5, "", [], [""], [-1], [[]], [1.5], [None], {"a": 1}, ["a", 5], [[1], "a"], [True]
    ),
    "embeddings": [
        *pairs("input", ABSENT, None, 5, "", [], [""], [-1], [[]], [1.5], [True], {"a": 1}),
        *pairs("dimensions", 0, 4097, "8", 1.5),
        *pairs("encoding_format", "base64", "x", 5),
    ],
    "images": [
        *pairs("prompt", ABSENT, None, 5, "", ["a"]),
        *pairs("n", 0, 5, "1", 1.0),
        *pairs("size", "0x0", "abc", "5000x10", 5, "10x10x10"),
        *pairs("response_format", "url", "x", 5),
        ("quality", 5),
        ("style", []),
    ],
}
BAD_TEXT_KNOBS: list[tuple[str, Any]] = [
    *pairs("n", 0, -1, 9, 1.5, True, "2"),
    *pairs("max_tokens", 0, -1, 1.5, "5", True),
    *pairs("max_completion_tokens", 0, "x"),
    *pairs("x_mock_natural_tokens", 0, 4097, "5", True),
    *pairs("temperature", "hot", True, [], {}),
    ("top_p", "x"),
    ("seed", 1.5),
    *pairs("stop", 5, ["a", "b", "c", "d", "e"], [1], {}),
    *pairs("tools", "x", [1]),
    ("tool_choice", 5),
    *pairs("logit_bias", {"1": "x"}, 5),
    *pairs("stream_options", {"include_usage": "yes"}, 5),
    *pairs("user", 5, []),
]
BAD_COMMON_KNOBS: list[tuple[str, Any]] = [("max_tokens", 0), ("max_tokens", "x"), ("stop", 5), ("user", 5)]
BIG_KNOBS: list[tuple[str, Any]] = [
    *pairs("max_tokens", 10**6, 2**63 - 1, 2**64, 10**40),
    *pairs("n", *range(1, 9)),
    ("max_completion_tokens", 2**64 + 1),
]
PLAINTEXT_KINDS = (
    "valid",
    "reserialized",
    "non_utf8",
    "not_json",
    "non_object",
    "missing_model",
    "model_type",
    "model_unserved",
    "broken_field",
    "bad_knob",
    "big_knob",
    "bad_inner_stream",
    "lone_surrogate",
    "surrogate_pair",
    "duplicate_key",
    "deep_unknown",
    "random_value",
    "control_characters",
)


@st.composite
def plaintext_cases(draw: st.DrawFn) -> PlainCase:
    endpoint = draw(st.sampled_from(ENDPOINTS))
    text_endpoint = endpoint in ("chat", "completions")
    base = valid_plaintext(endpoint, stream=text_endpoint and draw(st.booleans()))
    kind = draw(st.sampled_from(PLAINTEXT_KINDS))

    def case(raw: bytes | dict[str, Any], *expected: int) -> PlainCase:
        return PlainCase(endpoint, raw if isinstance(raw, bytes) else jsonwire.dumps(raw), frozenset(expected), kind)

    if kind == "valid":
        return case(base, 200)
    if kind == "reserialized":  # R3.15: any serialization of a valid request is served
        style = draw(st.sampled_from(["sorted", "pretty", "ascii", "slashes", "reversed"]))
        if style == "slashes":
            return case(jsonwire.dumps(base).replace(b"/", b"\\/"), 200)
        if style == "reversed":
            return case(dict(reversed(list(base.items()))), 200)
        options = {"sorted": {"sort_keys": True}, "pretty": {"indent": 2}, "ascii": {"ensure_ascii": True}}[style]
        return case(json.dumps(base, **options).encode(), 200)  # type: ignore[arg-type]
    if kind == "non_utf8":
        return case(draw(st.binary(max_size=48)) + b"\xff" + SENTINEL.encode(), 400)
    if kind == "not_json":
        return case((SENTINEL + draw(st.text(max_size=40))).encode(), 400)
    if kind == "non_object":
        value = draw(st.one_of(LEAVES, st.lists(JSON_VALUES, max_size=3)))
        return case(json.dumps(value, ensure_ascii=False).encode(), 400)
    if kind == "missing_model":
        del base["model"]
        return case(base, 400)
    if kind == "model_type":
        base["model"] = draw(st.one_of(st.none(), st.booleans(), st.integers(), st.lists(st.text(max_size=3))))
        return case(base, 400)
    if kind == "model_unserved":
        base["model"] = draw(st.sampled_from(["", SENTINEL, CHAT_MODEL.upper(), CHAT_MODEL + " "]))
        return case(base, 404)
    if kind == "broken_field":
        name, value = draw(st.sampled_from(BROKEN_FIELDS[endpoint]))
        if value is ABSENT:
            del base[name]
        else:
            base[name] = value
        return case(base, 400)
    if kind == "bad_knob":
        name, value = draw(st.sampled_from(BAD_TEXT_KNOBS if text_endpoint else BAD_COMMON_KNOBS))
        return case({**base, name: value}, 400)
    if kind == "big_knob":
        name, value = draw(st.sampled_from(BIG_KNOBS if text_endpoint else BIG_KNOBS[:4]))
        return case({**base, name: value}, 200)
    if kind == "bad_inner_stream":
        value = draw(st.sampled_from(["true", 1, [], {}])) if text_endpoint else True
        return case({**base, "stream": value}, 400)
    if kind in ("lone_surrogate", "surrogate_pair"):
        lone = kind == "lone_surrogate"
        escape = draw(
            st.sampled_from(["\\ud800", "\\udfff", "\\udc00\\ud800"] if lone else ["\\ud83d\\ude00", "\\uDBFF\\uDFFF"])
        )
        raw = jsonwire.dumps(base).replace(SENTINEL.encode(), SENTINEL.encode() + escape.encode(), 1)
        return case(raw, 400 if kind == "lone_surrogate" else 200)
    if kind == "duplicate_key":
        name = draw(st.sampled_from(sorted(base)))
        return case(jsonwire.dumps(base)[:-1] + b"," + json.dumps(name).encode() + b":null}", 400)
    if kind == "deep_unknown":  # nesting alone (no lone surrogate): either served or refused, never 5xx
        nested = deep(draw(st.sampled_from(["array", "object", "mixed"])), draw(st.integers(1, 5000)))
        return case(jsonwire.dumps(base)[:-1] + b',"x_deep":' + nested + b"}", 200, 400)
    if kind == "random_value":
        base[draw(st.sampled_from(sorted(base)))] = draw(JSON_VALUES)
        return case(base, 200, 400, 404)
    raw_control = draw(st.booleans())
    control = draw(st.sampled_from(["\x00", "\x01", "\x1f", "\t", "\n"]))
    if raw_control:  # unescaped control characters inside a JSON string are not JSON
        return case(jsonwire.dumps(base).replace(SENTINEL.encode(), (SENTINEL + control).encode(), 1), 400)
    return case(json.dumps(base).replace(SENTINEL, SENTINEL + json.dumps(control)[1:-1], 1).encode(), 200)


async def plaintext_case(node: Node, case: PlainCase, audit: Audit) -> None:
    fields: dict[str, Any] = {"max_num_tokens": IMAGE_LOCK_TOKENS} if case.endpoint == "images" else {}
    lock = await node.lock(ENDPOINT_MODEL[case.endpoint], **fields)
    try:
        inner = jsonwire.loads(case.raw)
    except ProtocolError:
        inner = None
    model = inner.get("model") if isinstance(inner, dict) else None
    stream = isinstance(inner, dict) and inner.get("stream") is True
    sealed = seal(lock, case.raw, model if isinstance(model, str) else ENDPOINT_MODEL[case.endpoint], stream=stream)
    response = await node.send(
        PATHS[case.endpoint], sealed.request.serialize(), auth(), secrets=request_secrets(sealed, case.raw)
    )
    assert response.status_code in case.expected, f"{case}: {response.text[:300]}"
    if response.status_code == 200:
        documents = verify_success(response, sealed, node.config, stream=stream, audit=audit)
        check_documents(case.endpoint, documents, stream=stream)


@fuzz(examples=300)
@given(cases=st.lists(plaintext_cases(), min_size=1, max_size=4))
def test_garbage_plaintexts(node: Node, cases: list[PlainCase]) -> None:
    audit = Audit()

    async def batch() -> None:
        for case in cases:
            await plaintext_case(node, case, audit)
        await node.healthy()

    node.run(batch())
    finish(node)


# --- (d) wrong and missing headers ----------------------------------------------------------------------------

# (header value or None, how the node must treat it): "same" is TOKEN, "other" another valid key, "reject" 401.
AUTH_VARIANTS: list[tuple[bytes | None, str]] = [
    (None, "reject"),
    (b"", "reject"),
    (b"Bearer " + TOKEN.encode(), "same"),
    (b"bearer " + TOKEN.encode(), "reject"),
    (b"BEARER " + TOKEN.encode(), "reject"),
    (b"Bearer ", "reject"),
    (b"Bearer", "reject"),
    (b"Bearer    ", "reject"),
    (b"Bearer \t ", "reject"),
    (b"Bearer\t" + TOKEN.encode(), "reject"),
    (b"Bearer" + TOKEN.encode(), "reject"),
    (b"Basic Zm9vOmJhcg==", "reject"),
    (b"Token " + TOKEN.encode(), "reject"),
    (b"Bearer " + OTHER_TOKEN.encode(), "other"),
    (b"Bearer " + TOKEN.encode() + b"x", "other"),
    (b"Bearer \xff\xfe", "other"),  # any non-empty token is a key when api_keys is empty
]
CONTENT_TYPES: list[tuple[bytes | None, bool]] = [
    (b"application/json", True),
    (b"application/json; charset=utf-8", True),
    (b"Application/JSON", True),
    (b"application/json;charset=UTF-8", True),
    (b"application/json ; q=1", True),
    (b" application/json", True),
    (None, False),
    (b"", False),
    (b"text/plain", False),
    (b"text/json", False),
    (b"application/jsonx", False),
    (b"application/ld+json", False),
    (b"application/x-www-form-urlencoded", False),
    (b"multipart/form-data; boundary=x", False),
    (b"*/*", False),
    (b"application/*", False),
]
# (Content-Length value, or None for httpx's own; "over" declares more than any limit). In-process, a
# declared length need not match the body, so a node that trusts a malformed one may also answer 400.
CONTENT_LENGTHS: list[tuple[bytes | None, str]] = [
    (None, "exact"),
    (b"99999999999", "over"),
    (b"00000000000000000000000000000099999999999", "over"),
    (b"0", "malformed"),
    (b"abc", "malformed"),
    (b"-1", "malformed"),
    (b"+5", "malformed"),
    (b"1e3", "malformed"),
    (b"1.5", "malformed"),
    (b"\xb2", "malformed"),  # superscript two: str.isdigit() says yes, int() says no
    (b"1\xb9", "malformed"),
]
EXTRA_HEADERS: list[list[Header]] = [
    [],
    [(b"x-mock-fault", b"accept-tampered-ciphertext")],
    [(b"x-mock-fault", b"500-on-client-error,leak-plaintext-in-error")],
    [(b"x-mock-fault", b"no-such-fault")],
    [(b"x-stack-small-id", b"2")],
    [(b"x-request-id", SENTINEL.encode())],
    [(b"content-type", b"text/plain")],  # a second Content-Type after the first
]
HEADER_CASES = st.tuples(
    st.sampled_from(["lock", "chat"]),
    st.sampled_from(AUTH_VARIANTS),
    st.sampled_from(CONTENT_TYPES),
    st.sampled_from(CONTENT_LENGTHS),
    st.sampled_from(EXTRA_HEADERS),
    st.sampled_from(["valid", "valid_stream", "tampered", "unserved", "garbage"]),
)


async def header_case(node: Node, case: tuple[Any, ...], audit: Audit) -> None:
    target, (auth_value, who), (ctype, ctype_ok), (length, length_kind), extra, body_kind = case
    sealed: SealedRequest | None = None
    plaintext = b""
    stream = body_kind == "valid_stream"
    if body_kind == "garbage":
        body = b'{"model":'
    elif target == "lock":
        body = jsonwire.dumps({"model": SENTINEL if body_kind == "unserved" else CHAT_MODEL})
    else:
        lock = await node.lock()
        plaintext = jsonwire.dumps(chat_plaintext(SENTINEL, stream=stream))
        sealed = seal(lock, plaintext, CHAT_MODEL, stream=stream)
        members: Members = list(sealed.request.to_json().items())
        if body_kind == "tampered":
            members = mutate(members, ("flip", "ciphertext", 3))
        body = render(members)
    headers: list[Header] = []
    if auth_value is not None:
        headers.append((b"authorization", auth_value))
    if ctype is not None:
        headers.append((b"content-type", ctype))
    if length is not None:
        headers.append((b"content-length", length))
    headers.extend(extra)
    if who == "reject":
        expected = 401  # R2.4, R10.7: the token before anything else
    elif not ctype_ok:
        expected = 415  # R3.3
    elif length_kind == "over":
        expected = 413  # R3.18: refused on the declared length
    elif body_kind == "garbage":
        expected = 400
    elif target == "lock":
        expected = 503 if body_kind == "unserved" else 200
    elif who == "other":
        expected = 425  # R2.14: a lock taken with another key is not usable
    else:
        expected = 400 if body_kind == "tampered" else 200
    allowed = {expected}
    if expected != 401 and (length_kind == "malformed" or any(name == b"content-type" for name, _ in extra)):
        allowed |= {400, 415}  # a malformed Content-Length or a second Content-Type may also be refused
    path = LOCK_PATH if target == "lock" else CHAT_PATH
    secrets = request_secrets(sealed, plaintext) if sealed is not None else []
    response = await node.send(path, body, headers, secrets=secrets)
    assert response.status_code in allowed, f"{case}: expected {sorted(allowed)}, got {response.text[:300]}"
    if response.status_code == 200 and sealed is not None:
        check_documents(
            "chat", verify_success(response, sealed, node.config, stream=stream, audit=audit), stream=stream
        )


@fuzz(examples=200)
@given(cases=st.lists(HEADER_CASES, min_size=1, max_size=5))
def test_wrong_and_missing_headers(node: Node, cases: list[tuple[Any, ...]]) -> None:
    audit = Audit()

    async def batch() -> None:
        for case in cases:
            await header_case(node, case, audit)
        await node.healthy()

    node.run(batch())
    finish(node)


# --- (e) concurrency -----------------------------------------------------------------------------------------


def stream_plaintext(max_tokens: int, natural: int = 61) -> bytes:
    return jsonwire.dumps(
        chat_plaintext(f"stream {SENTINEL}", stream=True, max_tokens=max_tokens, x_mock_natural_tokens=natural)
    )


async def run_job(node: Node, job: Job, audit: Audit) -> None:
    """One request of a concurrent batch. TOKEN only locks chat, so a job can only take a chat lock."""
    kind = job[0]
    if kind == "stream":
        lock = await node.lock()
        plaintext = stream_plaintext(job[1])
        sealed = seal(lock, plaintext, CHAT_MODEL, stream=True)
        response = await node.send(
            CHAT_PATH, sealed.request.serialize(), auth(), secrets=request_secrets(sealed, plaintext)
        )
        assert response.status_code == 200, response.text
        documents = verify_success(response, sealed, node.config, stream=True, audit=audit)
        assert len(documents) == min(job[1], 61) + 3  # role, one chunk per token, finish, usage
        check_documents("chat", documents, stream=True)
    elif kind == "plain":
        endpoint = job[1]
        fields: dict[str, Any] = {"max_num_tokens": IMAGE_LOCK_TOKENS} if endpoint == "images" else {}
        lock = await node.lock(ENDPOINT_MODEL[endpoint], OTHER_TOKEN, **fields)
        plaintext = jsonwire.dumps(valid_plaintext(endpoint, stream=False))
        sealed = seal(lock, plaintext, ENDPOINT_MODEL[endpoint], stream=False)
        response = await node.send(
            PATHS[endpoint], sealed.request.serialize(), auth(OTHER_TOKEN), secrets=request_secrets(sealed, plaintext)
        )
        assert response.status_code == 200, response.text
        check_documents(
            endpoint, verify_success(response, sealed, node.config, stream=False, audit=audit), stream=False
        )
    elif kind == "mutated":
        await envelope_case(node, False, job[1], False, audit)
    elif kind == "garbage":
        _, body, path = job
        response = await node.send(path, body, auth(LOCKER_TOKEN if path == LOCK_PATH else GARBAGE_TOKEN))
        assert response.status_code == garbage_status(path, body, node.config), response.text[:200]
    elif kind == "oversize":
        response = await node.send(CHAT_PATH, OVERSIZE_BODY, auth(GARBAGE_TOKEN))
        assert response.status_code == 413
    else:
        assert kind == "lock_distinct"
        await node.lock(CHAT_MODEL, f"distinct-token-{job[1]}")


JOBS: st.SearchStrategy[Job] = st.one_of(
    st.tuples(st.just("stream"), st.integers(1, 64)),
    st.tuples(st.just("plain"), st.sampled_from(ENDPOINTS)),
    st.tuples(st.just("mutated"), st.lists(MUTATIONS, min_size=1, max_size=3)),
    st.tuples(st.just("garbage"), GARBAGE_BODIES, st.sampled_from(POST_PATHS)),
)


@fuzz(examples=40)
@given(jobs=st.lists(JOBS, min_size=8, max_size=24))
def test_concurrent_mixed_batches(node: Node, jobs: list[Job]) -> None:
    audit = Audit()

    async def batch() -> None:
        await asyncio.gather(*(run_job(node, job, audit) for job in jobs))
        await node.healthy()

    node.run(batch())
    finish(node)


def test_concurrent_streams_have_unique_nonces(node: Node) -> None:
    """48 concurrent streams on one node: every chunk opens under its own exchange and no nonce repeats
    under any key (R12.1-R12.3) nor anywhere across the streams."""
    audit = Audit()
    lengths = [14 + i for i in range(48)]  # streams of 17..64 chunks (max_tokens=61 gives 64)

    async def streams() -> None:
        await asyncio.gather(*(run_job(node, ("stream", n), audit) for n in lengths))

    node.run(streams())
    assert audit.ledger.keys == len(lengths)
    assert audit.ledger.findings == []
    chunks = sum(min(n, 61) + 3 for n in lengths)
    assert audit.ledger.observations == chunks + len(lengths)
    assert len(audit.nonces) == chunks
    node.run(node.healthy())
    finish(node)


# --- memory ----------------------------------------------------------------------------------------------------

OVERSIZE_BODY = b" " * (MAX_BODY_BYTES + 1)
MEMORY_MUTATIONS: list[list[Mutation]] = [
    [("flip", "ciphertext", 77)],
    [("flip", "nonce", 5)],
    [("low_order", 3)],
    [("b64", "salt", "urlsafe", 0)],
    [("b64", "ciphertext", "long_valid", 40_000)],
    [("number", "stack_small_id", "9223372036854775808")],
    [("drop", "salt")],
    [("duplicate", "nonce", True)],
    [("set", "model_name", EMBED_MODEL)],
    [("escape", "nonce"), ("reorder", 7)],
]
MEMORY_GARBAGE = [ENVELOPE_TEMPLATE[:-3], deep("array", 3000), b"\xff" * 300, LOCK_TEMPLATE, b"{}", b"A" * 70_000]


def memory_jobs(rng: random.Random, count: int) -> list[Job]:
    jobs: list[Job] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.1:
            jobs.append(("stream", rng.randint(1, 8)))
        elif roll < 0.4:
            jobs.append(("plain", rng.choice(ENDPOINTS)))
        elif roll < 0.65:
            jobs.append(("mutated", rng.choice(MEMORY_MUTATIONS)))
        elif roll < 0.9:
            jobs.append(("garbage", rng.choice(MEMORY_GARBAGE), rng.choice(POST_PATHS)))
        elif roll < 0.95:
            jobs.append(("oversize",))
        else:
            jobs.append(("lock_distinct", rng.randrange(10**9)))
    return jobs


def test_memory_stays_bounded(node: Node, request: pytest.FixtureRequest) -> None:
    """After a warm-up, 2,000+ mixed valid and invalid requests (in concurrent groups of 8) leave less than
    8 MiB of new traced memory, and the replay cache and lock table stay within their bounds."""
    rng = random.Random(20251126)
    audit = Audit()

    async def run(jobs: list[Job]) -> None:
        for start in range(0, len(jobs), 8):
            await asyncio.gather(*(run_job(node, job, audit) for job in jobs[start : start + 8]))

    node.run(run(memory_jobs(rng, 200)))
    audit = Audit()  # the audit itself must not count as the node's memory
    gc.collect()
    tracemalloc.start()
    try:
        before = SENT[node.name]
        baseline = tracemalloc.get_traced_memory()[0]
        while SENT[node.name] - before < 2_000:
            node.run(run(memory_jobs(rng, 200)))
        audit = Audit()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth, measured = current - baseline, SENT[node.name] - before
    figures = {"requests_measured": measured, "traced_growth_bytes": growth, "traced_peak_bytes": peak - baseline}
    request.node.user_properties.extend(figures.items())  # shown in junit XML; printed for -s / -rP
    print(f"memory after warm-up: {figures}")
    assert growth < 8 * 2**20, f"{growth} bytes retained after {measured} requests"
    assert len(node.state.replays) <= REPLAY_MEMORY
    assert all(len(p) <= node.state.locks.max_locks_per_stack for p in node.state.locks._locks.values())
    node.run(node.healthy())
    finish(node)


def test_replay_cache_is_bounded_fifo(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay cache holds at most REPLAY_MEMORY pairs (read at call time) and always the last half of
    it: two generations, the older dropped whole (mock_node.replays)."""
    monkeypatch.setattr(mock_node.app, "REPLAY_MEMORY", 16)
    audit = Audit()

    async def run() -> None:
        for _ in range(40):
            await run_job(node, ("stream", 1), audit)

    node.run(run())
    assert 8 <= len(node.state.replays) <= 16


def test_replay_memory_refuses_the_last_half_and_holds_at_most_its_capacity() -> None:
    from mock_node.replays import ReplayMemory

    memory = ReplayMemory(16)
    for i in range(1000):
        assert memory.remember(i.to_bytes(4, "big")) is False
        assert len(memory) <= 16
        assert all(memory.remember(j.to_bytes(4, "big")) for j in range(max(0, i - 7), i + 1))


# --- oversize bodies (R3.17, R3.18) --------------------------------------------------------------------------


async def chunked(data: bytes, pulled: list[int], size: int = 1024) -> AsyncIterator[bytes]:
    """A request body without Content-Length (Transfer-Encoding: chunked); records how much was read."""
    for start in range(0, len(data), size):
        pulled.append(min(size, len(data) - start))
        yield data[start : start + size]


def padded_envelope(sealed: SealedRequest, size: int) -> bytes:
    """The envelope with an unknown member (R3.2) that makes it exactly ``size`` bytes."""
    members: Members = [*sealed.request.to_json().items(), ("x_pad", "")]
    pad = size - len(render(members))
    assert pad >= 0
    return render([*members[:-1], ("x_pad", "p" * pad)])


def padded_lock(size: int) -> bytes:
    base = jsonwire.dumps({"model": CHAT_MODEL, "x_pad": ""})
    return jsonwire.dumps({"model": CHAT_MODEL, "x_pad": "p" * (size - len(base))})


def oversize_round(node: Node, limit: int, *, streamed: bool) -> None:
    async def post(path: str, body: bytes, token: str = GARBAGE_TOKEN) -> httpx.Response:
        pulled: list[int] = []
        response = await node.send(path, chunked(body, pulled) if streamed else body, auth(token))
        assert ("content-length" in response.request.headers) is not streamed
        if streamed and response.status_code == 413:  # R3.18: reading stops at the limit
            assert sum(pulled) <= (LOCK_BODY_LIMIT if path == LOCK_PATH else limit) + 1024
        return response

    def assert_too_large(response: httpx.Response) -> None:
        assert response.status_code == 413, response.text[:200]
        assert error_code(response) == "PAYLOAD_TOO_LARGE"

    async def run() -> None:
        for path in CONFIDENTIAL_PATHS:
            assert_too_large(await post(path, b" " * (limit + 1)))
            assert_too_large(await post(path, b"{" * (limit + 1)))
            at_limit = await post(path, b" " * limit)  # exactly at the limit: refused as JSON, not for size
            assert at_limit.status_code == 400
        assert_too_large(await post(CHAT_PATH, b"x" * (4 * limit)))
        assert_too_large(await post(LOCK_PATH, b" " * (LOCK_BODY_LIMIT + 1), LOCKER_TOKEN))
        assert (await post(LOCK_PATH, padded_lock(LOCK_BODY_LIMIT), LOCKER_TOKEN)).status_code == 200
        lock = await node.lock()
        plaintext = jsonwire.dumps(chat_plaintext(SENTINEL))
        sealed = seal(lock, plaintext, CHAT_MODEL, stream=False)
        response = await post(CHAT_PATH, padded_envelope(sealed, limit), TOKEN)
        assert response.status_code == 200, response.text[:200]  # R3.17: up to and including the limit
        verify_success(response, sealed, node.config, stream=False)
        lock = await node.lock()
        sealed = seal(lock, plaintext, CHAT_MODEL, stream=False)
        assert_too_large(await post(CHAT_PATH, padded_envelope(sealed, limit + 1), TOKEN))
        await node.healthy()

    node.run(run())


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_a_small_limit_get_413_json(streamed: bool) -> None:
    node = Node("oversize-small", MockConfig(max_body_bytes=4096))
    try:
        oversize_round(node, 4096, streamed=streamed)
    finally:
        node.close()


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_2_mib_get_413_json(node: Node, streamed: bool) -> None:
    assert node.config.max_body_bytes == MAX_BODY_BYTES == 2 * 1024 * 1024
    oversize_round(node, MAX_BODY_BYTES, streamed=streamed)


def test_declared_length_over_the_limit_is_refused_before_reading(node: Node) -> None:
    headers = [*auth(GARBAGE_TOKEN), (b"content-length", str(MAX_BODY_BYTES + 1).encode())]
    response = node.run(node.send(CHAT_PATH, b"{}", headers))
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


def test_content_length_with_a_non_ascii_digit_is_not_a_crash(node: Node) -> None:
    """``Content-Length: ²`` (latin-1 0xB2): ``str.isdigit()`` accepts it and ``int()`` does not, which made
    read_body raise ValueError (500) until it also required ``isascii()``. Any 4xx, or ignoring it, is fine."""
    headers = [*auth(LOCKER_TOKEN), (b"content-length", b"\xb2")]
    response = node.run(node.send(LOCK_PATH, LOCK_TEMPLATE, headers))
    assert response.status_code in (200, 400, 413)


# --- known bugs: one minimal input each; these assert the correct behaviour and fail until fixed ----------------


@pytest.mark.parametrize("where", ["envelope", "plaintext"])
def test_bug_deep_json_with_a_lone_surrogate_is_refused_400(node: Node, where: str) -> None:
    """A lone-surrogate escape inside JSON nested a few hundred levels deep: the C scanner parses it, then
    conformance/protocol/jsonwire.py ``_has_lone_surrogate`` recurses (two frames per level, outside the
    try) and raises RecursionError, which nothing catches: 500 instead of 400 (R10.2, R3.1, R3.14)."""
    body = b"[" * 600 + b'"\\ud800"' + b"]" * 600

    async def run() -> httpx.Response:
        if where == "envelope":
            return await node.send(CHAT_PATH, body, auth(GARBAGE_TOKEN))
        lock = await node.lock()
        sealed = seal(lock, body, CHAT_MODEL, stream=False)
        return await node.send(CHAT_PATH, sealed.request.serialize(), auth())

    response = node.run(run())
    assert response.status_code == 400
    assert error_code(response) == "REQUEST_ERROR"


def test_bug_non_ascii_bearer_token_on_a_node_with_api_keys_is_401() -> None:
    """With ``api_keys`` configured, ``hmac.compare_digest`` raises TypeError on a non-ASCII str
    (mock_node/app.py, authenticate): ``Authorization: Bearer \\xff`` gets 500 instead of 401 (R2.2)."""
    node = Node("api-keys", MockConfig(api_keys=("the-only-key",)))
    try:
        headers = [(b"authorization", b"Bearer \xff"), (b"content-type", b"application/json")]
        response = node.run(node.send(LOCK_PATH, LOCK_TEMPLATE, headers))
        assert response.status_code == 401
        assert error_code(response) == "AUTH_ERROR"
    finally:
        node.close()


def test_bug_replay_with_bit_255_of_the_client_key_set_is_refused_409(node: Node) -> None:
    """X25519 ignores bit 255 of a public key (RFC 7748 §5, R4.1), so setting it gives another spelling of
    the same K. The replay cache is keyed by the raw key bytes (mock_node/app.py: key_id over the decoded
    client key), so a captured request is served a second time (R12.7: same K and request nonce)."""

    async def run() -> tuple[int, int]:
        lock = await node.lock()
        sealed = seal(lock, jsonwire.dumps(chat_plaintext("once")), CHAT_MODEL, stream=False)
        first = await node.send(CHAT_PATH, sealed.request.serialize(), auth())
        await node.lock()
        members = mutate(list(sealed.request.to_json().items()), ("flip", "client_dh_public_key", 255))
        replay = await node.send(CHAT_PATH, render(members), auth())
        return first.status_code, replay.status_code

    assert node.run(run()) == (200, 409)


# --- the budget -------------------------------------------------------------------------------------------------


def test_request_budget_of_the_ci_profile() -> None:
    """Runs last (pytest keeps file order): the counted tests together sent at least 10,000 requests."""
    missing = sorted(COUNTED_TESTS - COMPLETED)
    if missing:
        pytest.skip(f"{missing} did not run to completion in this process, so the module total means nothing")
    total = sum(SENT.values())
    assert total >= MIN_REQUESTS, f"only {total} requests: {dict(SENT)}"
