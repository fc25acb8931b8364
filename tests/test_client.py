"""The reference client against a node mocked with respx, for the sync and the async client alike.

respx stands in for the target. Every confidential answer is built by the protocol core acting as the
node: it parses the body the client really sent, opens it with the node's X25519 private key and
seals its answer (or each stream chunk) under the derived key, signed by a Sui key. So a passing test
proves the client's crypto end to end, and each defect test changes exactly one thing on the wire and
checks that the client *records* it under the right code instead of raising.

Every test runs twice through the ``driver`` fixture: once with :class:`ConfidentialClient` and once
with :class:`AsyncConfidentialClient` (driven on one event loop by :class:`asyncio.Runner`).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from conformance.client import (
    ENDPOINT_PATHS,
    AsyncConfidentialClient,
    BudgetExceeded,
    ClientOptions,
    ConfidentialClient,
    resolve_api_key,
)
from conformance.protocol import (
    ConfidentialComputeRequest,
    ErrorBody,
    LockResponse,
    OpenedRequest,
    Scheme,
    SeededRandom,
    SuiSigner,
    Usage,
    b64encode,
    blake2b_256,
    jsonwire,
    open_request,
    seal_chunk,
    seal_response,
    x25519_public_key,
)
from conformance.records import MISSING, ExchangeRecord, HttpRecord, LockRecord, analyse_lock

BASE = "http://node.test"
LOCK_PATH = "/v1/nodes/lock"
CHAT_PATH = ENDPOINT_PATHS["chat"]
MODEL = "meta-llama/Llama-3.3-70B-Instruct"
API_KEY = "sk-atoma-TEST-KEY-7f3c9e01"
REQUEST_SENTINEL = "REQUEST-SENTINEL-31337"
RESPONSE_SENTINEL = "RESPONSE-SENTINEL-42424"
STACK_SMALL_ID = 4242
NODE_SMALL_ID = 7

NODE_SK = SeededRandom("test_client node x25519").token_bytes(32)
NODE_PK = x25519_public_key(NODE_SK)
SIGNER = SuiSigner(Scheme.ED25519, SeededRandom("test_client node sui").token_bytes(32))
OTHER_SIGNER = SuiSigner(Scheme.ED25519, SeededRandom("test_client someone else").token_bytes(32))

PLAINTEXT = jsonwire.dumps({"model": MODEL, "messages": [{"role": "user", "content": REQUEST_SENTINEL}]})
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": MODEL,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": f"{RESPONSE_SENTINEL} ü"}, "finish_reason": "stop"}
    ],
    "usage": USAGE,
}


def stream_chunk(content: str | None, *, usage: bool = False) -> dict[str, Any]:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    chunk: dict[str, Any] = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None if content is not None else "stop"}],
    }
    if usage:
        chunk["usage"] = USAGE
    return chunk


STREAM_CHUNKS = [
    stream_chunk("Hello"),
    stream_chunk(RESPONSE_SENTINEL),
    stream_chunk(None, usage=True),
]


# --- the node side ----------------------------------------------------------------------------------


class DripStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given pieces, for either client; counts the pieces pulled.

    ``delay`` sleeps before each piece (a slow drip); ``fail`` is raised once the pieces run out.
    """

    def __init__(self, pieces: list[bytes], *, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.pieces = pieces
        self.delay = delay
        self.fail = fail
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if self.delay:
                time.sleep(self.delay)
            self.pulled += 1
            yield piece
        if self.fail is not None:
            raise self.fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.pulled += 1
            yield piece
        if self.fail is not None:
            raise self.fail


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sse_body(
    events: list[bytes], *, crlf: bool = False, keepalive: bool = False, done: bool = False, tail: bytes = b""
) -> bytes:
    eol = b"\r\n" if crlf else b"\n"
    out = bytearray()
    for event in events:
        if keepalive:
            out += b": keep-alive" + eol + eol
        out += b"data: " + event + eol + eol
    if done:
        out += b"data: [DONE]" + eol + eol
    return bytes(out + tail)


def json_response(status: int, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": content_type})


def error_response(status: int, code: str, message: str) -> httpx.Response:
    return json_response(status, ErrorBody(code, message).serialize())


Edit = Callable[[dict[str, Any]], dict[str, Any]]


class FakeNode:
    """Routes on a respx router; answers built by the protocol core as a conformant node would."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.rng = SeededRandom("test_client node responses")
        self.signer = SIGNER
        self.opened: list[OpenedRequest] = []
        self.streams: list[DripStream] = []
        self.lock_route = router.post(LOCK_PATH)
        self.lock_route.side_effect = lambda request: self.lock_reply()
        self.confidential = router.post(path__startswith="/v1/confidential/")
        self.confidential.side_effect = self.answer

    def lock_reply(self, public_key: bytes = NODE_PK) -> httpx.Response:
        reply = LockResponse(b64encode(public_key), NODE_SMALL_ID, None, STACK_SMALL_ID)
        return json_response(200, reply.serialize())

    def open(self, request: httpx.Request) -> OpenedRequest:
        """The node's view: parse what the client sent and open it with the node's private key."""
        opened = open_request(ConfidentialComputeRequest.parse(request.content), NODE_SK)
        self.opened.append(opened)
        return opened

    def envelope(self, request: httpx.Request, *, nonce: bytes | None = None) -> dict[str, Any]:
        opened = self.open(request)
        sealed = seal_response(
            jsonwire.dumps(ANSWER),
            opened.exchange,
            self.signer,
            usage=Usage.from_json(USAGE),
            nonce=nonce,
            rng=self.rng,
        )
        return sealed.to_json()

    def answer(self, request: httpx.Request, *, edit: Edit | None = None, nonce: bytes | None = None) -> httpx.Response:
        envelope = self.envelope(request, nonce=nonce)
        if edit is not None:
            envelope = edit(envelope)
        return json_response(200, jsonwire.dumps(envelope))

    def seal_stream(self, request: httpx.Request, chunks: list[dict[str, Any]] = STREAM_CHUNKS) -> list[bytes]:
        """The data of each event: one sealed, signed chunk envelope per plaintext chunk."""
        opened = self.open(request)
        return [
            seal_chunk(
                jsonwire.dumps(chunk),
                opened.exchange,
                self.signer,
                usage=Usage.from_json(chunk["usage"]) if "usage" in chunk else None,
                rng=self.rng,
            ).serialize()
            for chunk in chunks
        ]

    def drip(
        self,
        pieces: list[bytes],
        *,
        status: int = 200,
        content_type: str = "text/event-stream",
        delay: float = 0.0,
        fail: Exception | None = None,
    ) -> httpx.Response:
        stream = DripStream(pieces, delay=delay, fail=fail)
        self.streams.append(stream)
        return httpx.Response(status, headers={"content-type": content_type}, stream=stream)

    def last_request(self, route: respx.Route) -> httpx.Request:
        request: httpx.Request = route.calls.last.request
        return request


# --- the two clients behind one synchronous face ------------------------------------------------------


class Driver(abc.ABC):
    """Calls one client, sync or async, and returns its records."""

    kind: str
    client: ConfidentialClient | AsyncConfidentialClient

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    @abc.abstractmethod
    def lock(self, model: str = MODEL, *, max_num_tokens: int | None = None, timeout: int | None = None) -> LockRecord:
        """``client.lock``."""

    @abc.abstractmethod
    def send(self, lock: LockRecord, plaintext: bytes = PLAINTEXT, **kwargs: Any) -> ExchangeRecord:
        """``client.send`` (``endpoint`` defaults to chat, ``model_name`` to MODEL)."""

    @abc.abstractmethod
    def request(self, method: str, path: str, **kwargs: Any) -> HttpRecord:
        """``client.request``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the client."""

    @property
    def requests_sent(self) -> int:
        return self.client.requests_sent

    @staticmethod
    def send_args(kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        endpoint = kwargs.pop("endpoint", "chat")
        kwargs.setdefault("model_name", MODEL)
        return endpoint, kwargs


class SyncDriver(Driver):
    kind = "sync"
    client: ConfidentialClient

    def __init__(self, options: ClientOptions | None, api_key: str | None, router: respx.MockRouter | None) -> None:
        super().__init__()
        self.client = ConfidentialClient(
            BASE,
            api_key,
            options=options,
            rng=SeededRandom("test_client client"),
            transport=None if router is None else httpx.MockTransport(router.handler),
            sleep=self.sleeps.append,
        )

    def lock(self, model: str = MODEL, *, max_num_tokens: int | None = None, timeout: int | None = None) -> LockRecord:
        return self.client.lock(model, max_num_tokens=max_num_tokens, timeout=timeout)

    def send(self, lock: LockRecord, plaintext: bytes = PLAINTEXT, **kwargs: Any) -> ExchangeRecord:
        endpoint, kwargs = self.send_args(kwargs)
        return self.client.send(endpoint, plaintext, lock=lock, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> HttpRecord:
        return self.client.request(method, path, **kwargs)

    def close(self) -> None:
        self.client.close()


class AsyncDriver(Driver):
    kind = "async"
    client: AsyncConfidentialClient

    def __init__(self, options: ClientOptions | None, api_key: str | None, router: respx.MockRouter | None) -> None:
        super().__init__()

        async def sleep(delay: float) -> None:
            self.sleeps.append(delay)

        self.runner = asyncio.Runner()
        self.client = AsyncConfidentialClient(
            BASE,
            api_key,
            options=options,
            rng=SeededRandom("test_client client"),
            transport=None if router is None else httpx.MockTransport(router.async_handler),
            sleep=sleep,
        )

    def lock(self, model: str = MODEL, *, max_num_tokens: int | None = None, timeout: int | None = None) -> LockRecord:
        return self.runner.run(self.client.lock(model, max_num_tokens=max_num_tokens, timeout=timeout))

    def send(self, lock: LockRecord, plaintext: bytes = PLAINTEXT, **kwargs: Any) -> ExchangeRecord:
        endpoint, kwargs = self.send_args(kwargs)
        return self.runner.run(self.client.send(endpoint, plaintext, lock=lock, **kwargs))

    def request(self, method: str, path: str, **kwargs: Any) -> HttpRecord:
        return self.runner.run(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


MakeDriver = Callable[..., Driver]


@pytest.fixture
def node() -> Iterator[FakeNode]:
    """The respx router for the test. ``assert_all_mocked`` (the default) fails any request it has no route for."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield FakeNode(router)


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest, node: FakeNode) -> Iterator[MakeDriver]:
    """``make(options=..., api_key=..., default_transport=False)``: a driver around a fresh client.

    The client's transport is respx's router (``httpx.MockTransport(router.handler)``), which skips
    the per-client TLS setup and keeps the file fast; with ``default_transport=True`` the client builds
    its own ``httpx`` transport exactly as in production and respx intercepts it by patching.
    """
    drivers: list[Driver] = []

    def factory(
        options: ClientOptions | None = None, api_key: str | None = API_KEY, *, default_transport: bool = False
    ) -> Driver:
        router = None if default_transport else node.router
        driver: Driver = (
            SyncDriver(options, api_key, router) if request.param == "sync" else AsyncDriver(options, api_key, router)
        )
        drivers.append(driver)
        return driver

    yield factory
    for driver in drivers:
        driver.close()


@pytest.fixture
def driver(make: MakeDriver) -> Driver:
    return make()


def locked(driver: Driver) -> LockRecord:
    record = driver.lock()
    assert record.ok, record
    return record


# --- lock ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({}, b'{"model":"' + MODEL.encode() + b'"}'),
        (
            {"max_num_tokens": 512, "timeout": 60},
            b'{"model":"' + MODEL.encode() + b'","max_num_tokens":512,"timeout":60}',
        ),
    ],
)
def test_lock_request_and_record(driver: Driver, node: FakeNode, kwargs: dict[str, Any], body: bytes) -> None:
    record = driver.lock(**kwargs)

    sent = node.last_request(node.lock_route)
    assert sent.method == "POST"
    assert sent.url == httpx.URL(BASE + LOCK_PATH)
    assert sent.content == body
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert record.http.status == 200
    assert record.http.method == "POST" and record.http.path == LOCK_PATH
    assert record.members == ["public_key", "node_small_id", "stack_entry_digest", "stack_small_id"]
    assert record.lock == LockResponse(b64encode(NODE_PK), NODE_SMALL_ID, None, STACK_SMALL_ID)
    assert record.public_key == NODE_PK
    assert record.parse_error is None and record.public_key_error is None
    assert record.ok
    assert driver.requests_sent == 1
    assert driver.sleeps == []


def test_lock_without_api_key_sends_no_authorization(make: MakeDriver, node: FakeNode) -> None:
    driver = make(api_key=None)
    assert driver.lock().ok
    assert "authorization" not in node.last_request(node.lock_route).headers


def test_lock_members_keep_the_node_order(driver: Driver, node: FakeNode) -> None:
    body = (
        b'{"stack_small_id":9,"extra":true,"public_key":"' + b64encode(NODE_PK).encode() + b'",'
        b'"stack_entry_digest":"abc","node_small_id":3}'
    )
    node.lock_route.side_effect = None
    node.lock_route.return_value = json_response(200, body)

    record = driver.lock()

    assert record.members == ["stack_small_id", "extra", "public_key", "stack_entry_digest", "node_small_id"]
    assert record.lock is not None
    assert (record.lock.stack_small_id, record.lock.node_small_id, record.lock.stack_entry_digest) == (9, 3, "abc")
    assert record.ok


@pytest.mark.parametrize(
    ("body", "members", "parse_error"),
    [
        (
            b'{"node_small_id":1,"stack_entry_digest":null,"stack_small_id":2}',
            ["node_small_id", "stack_entry_digest", "stack_small_id"],
            "MISSING_FIELD",
        ),
        (
            b'{"public_key":5,"node_small_id":1,"stack_small_id":2}',
            ["public_key", "node_small_id", "stack_small_id"],
            "WRONG_TYPE",
        ),
        (
            b'{"public_key":"AAAA","node_small_id":-1,"stack_small_id":2}',
            ["public_key", "node_small_id", "stack_small_id"],
            "OUT_OF_RANGE",
        ),
        (b"[1,2]", [], "WRONG_TYPE"),
        (b"", [], None),
        (b"<html>502 Bad Gateway</html>", [], None),
    ],
    ids=["missing-public-key", "public-key-number", "negative-node-id", "array", "empty", "html"],
)
def test_lock_parse_errors_are_recorded_not_raised(
    driver: Driver, node: FakeNode, body: bytes, members: list[str], parse_error: str | None
) -> None:
    node.lock_route.side_effect = None
    node.lock_route.return_value = json_response(200, body)

    record = driver.lock()

    assert record.lock is None and record.public_key is None
    assert not record.ok
    assert record.members == members
    assert record.http.status == 200
    if parse_error is None:  # not JSON at all: either code describes it (see the report on INVALID_JSON)
        assert record.parse_error in ("INVALID_JSON", "WRONG_TYPE")
    else:
        assert record.parse_error == parse_error


@pytest.mark.parametrize(
    ("public_key", "error"),
    [
        (b64encode(NODE_PK[:31]), "WRONG_LENGTH"),
        (b64encode(NODE_PK + b"\x00"), "WRONG_LENGTH"),
        (b64encode(NODE_PK).replace("=", ""), "BASE64_MISSING_PADDING"),
    ],
)
def test_lock_bad_public_key_is_recorded(driver: Driver, node: FakeNode, public_key: str, error: str) -> None:
    node.lock_route.side_effect = None
    node.lock_route.return_value = json_response(200, LockResponse(public_key, 1, None, 2).serialize())

    record = driver.lock()

    assert record.parse_error is None
    assert record.lock is not None and record.lock.public_key == public_key
    assert record.public_key is None
    assert record.public_key_error == error
    assert not record.ok


def test_lock_low_order_key_is_not_ok(driver: Driver, node: FakeNode) -> None:
    node.lock_route.side_effect = lambda request: node.lock_reply(bytes(32))

    record = driver.lock()

    assert record.public_key == bytes(32)
    assert record.parse_error is None and record.public_key_error is None
    assert not record.ok


@pytest.mark.parametrize(
    ("statuses", "retries", "backoff", "calls", "sleeps", "final"),
    [
        ([429, 503, 503, 200], 3, 0.5, 4, [0.5, 1.0, 2.0], 200),
        ([503, 200], 3, 0.5, 2, [0.5], 200),
        ([429, 429, 200], 3, 0.25, 3, [0.25, 0.5], 200),
        ([503, 503, 503, 503, 200], 2, 0.5, 3, [0.5, 1.0], 503),
        ([429, 200], 0, 0.5, 1, [], 429),
    ],
)
def test_lock_retries_429_and_503_with_exponential_backoff(
    make: MakeDriver,
    node: FakeNode,
    statuses: list[int],
    retries: int,
    backoff: float,
    calls: int,
    sleeps: list[float],
    final: int,
) -> None:
    driver = make(ClientOptions(lock_retries=retries, backoff_s=backoff))
    replies = iter(
        [
            node.lock_reply() if status == 200 else error_response(status, "BUSY", "try again later")
            for status in statuses
        ]
    )
    node.lock_route.side_effect = lambda request: next(replies)

    record = driver.lock()

    assert node.lock_route.call_count == calls
    assert driver.requests_sent == calls
    assert driver.sleeps == sleeps
    assert record.http.status == final
    assert record.ok is (final == 200)
    bodies = {call.request.content for call in node.lock_route.calls}
    assert len(bodies) == 1  # every retry is the same request


@pytest.mark.parametrize("status", [400, 401, 404, 425, 500, 502])
def test_lock_does_not_retry_other_errors(driver: Driver, node: FakeNode, status: int) -> None:
    node.lock_route.side_effect = lambda request: error_response(status, "NOPE", "refused")

    record = driver.lock()

    assert node.lock_route.call_count == 1
    assert driver.sleeps == []
    assert record.http.status == status
    assert record.http.error_body() == ("NOPE", "refused")
    assert record.members == ["error"]
    assert record.parse_error == "MISSING_FIELD"
    assert not record.ok


@pytest.mark.parametrize(
    ("effect", "error"),
    [(httpx.ConnectError, "ConnectError"), (httpx.ReadTimeout, "timeout"), (httpx.ConnectTimeout, "timeout")],
)
def test_lock_transport_error_is_recorded_and_not_retried(
    driver: Driver, node: FakeNode, effect: type[Exception], error: str
) -> None:
    node.lock_route.side_effect = effect

    record = driver.lock()

    assert node.lock_route.call_count == 1
    assert driver.sleeps == []
    assert record.http.status is None
    assert record.http.error == error
    assert record.http.body == b""
    assert record.parse_error is not None
    assert not record.ok


# --- send, non-streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", [Scheme.ED25519, Scheme.SECP256K1, Scheme.SECP256R1], ids=lambda scheme: scheme.label
)
def test_send_to_a_correct_node(driver: Driver, node: FakeNode, scheme: Scheme) -> None:
    node.signer = SuiSigner(scheme, SeededRandom(f"signer {scheme.label}").token_bytes(32))
    lock = locked(driver)

    record = driver.send(lock, num_compute_units=256)

    # What the node received: a request only this node can open, carrying the exact plaintext.
    sent = node.last_request(node.confidential)
    assert sent.url == httpx.URL(BASE + CHAT_PATH)
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert sent.content == record.request_body
    envelope = ConfidentialComputeRequest.parse(sent.content)
    assert envelope.model_name == MODEL
    assert envelope.stack_small_id == STACK_SMALL_ID
    assert envelope.num_compute_units == 256
    assert envelope.stream is False
    assert envelope.node_dh_public_key == b64encode(NODE_PK)
    [opened] = node.opened
    assert opened.plaintext == PLAINTEXT
    assert opened.exchange.key_id == record.exchange.key_id

    # What the client recorded: the node's answer, decrypted and verified.
    assert record.endpoint == "chat" and not record.streaming
    assert record.lock is lock
    assert record.plaintext == PLAINTEXT
    assert record.http.status == 200 and record.http.error is None
    assert record.succeeded
    response = record.response
    assert response is not None
    assert record.messages == [response]
    assert response.where == "response"
    assert response.members == ["nonce", "ciphertext", "response_hash", "signature", "usage"]
    assert response.nonce_error is None and response.ciphertext_error is None and response.response_hash_error is None
    assert response.nonce is not None and response.nonce != record.exchange.request_nonce
    assert response.aead_error is None
    assert response.plaintext == jsonwire.dumps(ANSWER)
    assert response.inner == ANSWER
    assert response.inner_error is None
    assert response.hash_matches
    assert response.computed_hash == blake2b_256(jsonwire.dumps(ANSWER))
    assert response.signature_error is None
    assert response.signature_verify_error is None
    assert response.signature is not None and response.signature.scheme is scheme
    assert response.signer == node.signer.address
    assert response.clear_usage == USAGE
    assert record.chunks == [] and record.sse is None


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_PATHS))
def test_send_posts_each_endpoint_to_its_path(driver: Driver, node: FakeNode, endpoint: str) -> None:
    record = driver.send(locked(driver), endpoint=endpoint)

    assert node.last_request(node.confidential).url.path == ENDPOINT_PATHS[endpoint]
    assert record.endpoint == endpoint
    assert record.http.path == ENDPOINT_PATHS[endpoint]
    assert record.response is not None and record.response.hash_matches


def resign(envelope: dict[str, Any], digest: bytes) -> dict[str, Any]:
    return {**envelope, "response_hash": b64encode(digest), "signature": SIGNER.sign(digest).to_b64()}


def test_send_records_a_wrong_hash(driver: Driver, node: FakeNode) -> None:
    wrong = blake2b_256(jsonwire.dumps(ANSWER) + b" ")
    node.confidential.side_effect = lambda request: node.answer(request, edit=lambda e: resign(e, wrong))

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.response_hash == wrong
    assert response.response_hash_error is None
    assert response.computed_hash == blake2b_256(jsonwire.dumps(ANSWER))
    assert not response.hash_matches
    assert response.aead_error is None and response.inner == ANSWER
    assert response.signature_verify_error is None  # the signature is valid, over the wrong hash
    assert response.signer == SIGNER.address


def test_send_records_a_signature_over_another_hash(driver: Driver, node: FakeNode) -> None:
    other = SIGNER.sign(blake2b_256(b"something else")).to_b64()
    node.confidential.side_effect = lambda request: node.answer(request, edit=lambda e: {**e, "signature": other})

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.hash_matches
    assert response.signature_error is None
    assert response.signature_verify_error == "SIGNATURE_VERIFICATION_FAILED"


def test_send_records_a_foreign_signer(driver: Driver, node: FakeNode) -> None:
    node.signer = OTHER_SIGNER

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.signature_verify_error is None
    assert response.signer == OTHER_SIGNER.address != SIGNER.address


def flip_ciphertext(envelope: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))
    raw[0] ^= 0x01
    return {**envelope, "ciphertext": b64encode(bytes(raw))}


def test_send_records_a_tampered_ciphertext(driver: Driver, node: FakeNode) -> None:
    node.confidential.side_effect = lambda request: node.answer(request, edit=flip_ciphertext)

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.ciphertext_error is None
    assert response.aead_error == "AEAD_AUTHENTICATION_FAILED"
    assert response.plaintext is None and response.inner is MISSING and response.computed_hash is None
    assert not response.hash_matches
    assert response.signature_verify_error is None


def test_send_records_a_urlsafe_nonce(driver: Driver, node: FakeNode) -> None:
    nonce = b"\xff" * 12  # standard base64 "////////////////"

    def urlsafe(envelope: dict[str, Any]) -> dict[str, Any]:
        assert envelope["nonce"] == "/" * 16
        return {**envelope, "nonce": "_" * 16}

    node.confidential.side_effect = lambda request: node.answer(request, edit=urlsafe, nonce=nonce)

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.nonce is None
    assert response.nonce_error == "BASE64_URLSAFE_ALPHABET"
    assert response.aead_error == "BASE64_URLSAFE_ALPHABET"
    assert response.plaintext is None
    assert response.signature_verify_error is None


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda e: {k: v for k, v in e.items() if k != "signature"}, "MISSING_FIELD"),
        (lambda e: {**e, "signature": None}, "NULL"),
        (lambda e: {**e, "signature": "AAA*"}, "BASE64_INVALID_CHARACTER"),
        (lambda e: {**e, "signature": "AAAA"}, "SIGNATURE_WRONG_LENGTH"),
        (lambda e: {**e, "signature": b64encode(b"\x05" + bytes(96))}, "SIGNATURE_UNKNOWN_SCHEME"),
        (lambda e: {**e, "signature": 12}, "BASE64_NOT_STRING"),
    ],
    ids=["missing", "null", "not-base64", "too-short", "unknown-scheme", "number"],
)
def test_send_records_a_bad_signature(driver: Driver, node: FakeNode, edit: Edit, error: str) -> None:
    node.confidential.side_effect = lambda request: node.answer(request, edit=edit)

    response = driver.send(locked(driver)).response

    assert response is not None
    assert response.signature is None and response.signer is None
    assert response.signature_error == error
    assert response.signature_verify_error is None
    assert response.hash_matches and response.inner == ANSWER  # the rest is still analysed


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", b"[1,2,3]", b'"text"', b"null"])
def test_send_records_a_non_object_body(driver: Driver, node: FakeNode, body: bytes) -> None:
    node.confidential.side_effect = lambda request: (node.open(request), json_response(200, body))[1]

    record = driver.send(locked(driver))

    assert record.http.status == 200
    assert record.response is not None
    assert record.response.members == []
    assert record.response.nonce_error == "NOT_AN_OBJECT"
    assert record.response.aead_error == "NOT_AN_OBJECT"
    assert not record.response.hash_matches


def test_send_analyses_json_with_a_charset(driver: Driver, node: FakeNode) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        envelope = node.envelope(request)
        return json_response(200, jsonwire.dumps(envelope), "Application/JSON; charset=utf-8")

    node.confidential.side_effect = answer

    record = driver.send(locked(driver))

    assert record.http.media_type == "application/json"
    assert record.response is not None and record.response.hash_matches and record.response.inner == ANSWER


def test_send_does_not_analyse_a_body_that_is_not_json(driver: Driver, node: FakeNode) -> None:
    node.confidential.side_effect = lambda request: json_response(200, b"hello", "text/plain")

    record = driver.send(locked(driver))

    assert record.http.status == 200 and record.http.body == b"hello"
    assert record.response is None and record.messages == []


@pytest.mark.parametrize("status", [400, 401, 409, 425])
def test_send_records_a_json_error(driver: Driver, node: FakeNode, status: int) -> None:
    node.confidential.side_effect = lambda request: error_response(status, "REQUEST_ERROR", "nonce: is wrong")

    record = driver.send(locked(driver))

    assert record.http.status == status
    assert not record.succeeded
    assert record.response is None and record.messages == []
    assert record.http.error_body() == ("REQUEST_ERROR", "nonce: is wrong")


def test_error_body_requires_the_exact_shape() -> None:
    def http(body: bytes) -> HttpRecord:
        return HttpRecord("POST", CHAT_PATH, 400, {"content-type": "application/json"}, body)

    assert http(b'{"error":{"code":"C","message":"M"}}').error_body() == ("C", "M")
    assert http(b'{"error":{"code":"C","message":"M","extra":1}}').error_body() is None
    assert http(b'{"error":{"code":"C","message":1}}').error_body() is None
    assert http(b'{"error":"C"}').error_body() is None
    assert http(b'{"error":{"code":"C","message":"M"},"x":1}').error_body() is None
    assert http(b"Bad request").error_body() is None


# --- send, streaming ----------------------------------------------------------------------------------


FRAMINGS = {  # crlf, keepalive, done
    "lf": (False, False, False),
    "crlf": (True, False, False),
    "lf-done": (False, False, True),
    "lf-keepalive-done": (False, True, True),
    "crlf-keepalive-done": (True, True, True),
}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("size", [1, 7, 100_000])
def test_stream_reassembles_events_split_anywhere(driver: Driver, node: FakeNode, framing: str, size: int) -> None:
    crlf, keepalive, done = FRAMINGS[framing]
    bodies: list[bytes] = []
    sent_events: list[bytes] = []

    def stream(request: httpx.Request) -> httpx.Response:
        sent_events.extend(node.seal_stream(request))
        bodies.append(sse_body(sent_events, crlf=crlf, keepalive=keepalive, done=done))
        return node.drip(split(bodies[-1], size))

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    sent = node.last_request(node.confidential)
    assert sent.headers["accept"] == "text/event-stream"
    assert ConfidentialComputeRequest.parse(sent.content).stream is True
    assert record.streaming and record.http.status == 200
    assert record.http.error is None and record.stream_error is None
    assert record.http.body == b""  # the events are recorded instead
    [body] = bodies
    assert node.streams[0].pulled == len(split(body, size))

    n = len(STREAM_CHUNKS)
    assert len(record.chunks) == n
    assert record.messages == record.chunks
    for index, (chunk, plain) in enumerate(zip(record.chunks, STREAM_CHUNKS, strict=True)):
        assert chunk.where == f"chunk[{index}]"
        assert chunk.inner == plain
        assert chunk.aead_error is None and chunk.nonce_error is None
        assert chunk.hash_matches
        assert chunk.signature_error is None and chunk.signature_verify_error is None
        assert chunk.signer == SIGNER.address
        assert chunk.members == (
            ["ciphertext", "nonce", "usage", "signature", "response_hash"]
            if "usage" in plain
            else ["ciphertext", "nonce", "signature", "response_hash"]
        )
    assert record.chunks[-1].clear_usage == USAGE
    assert len({chunk.nonce for chunk in record.chunks}) == n
    assert record.events[:n] == [event.decode() for event in sent_events]
    assert record.non_envelope_events == (["[DONE]"] if done else [])
    assert record.events[n:] == (["[DONE]"] if done else [])
    assert record.truncated_bytes == 0
    assert record.sse is not None
    lines = 2 * (n + n * keepalive + done)
    assert record.sse.events == n + done
    assert record.sse.comments == (n if keepalive else 0)
    assert record.sse.crlf_lines == (lines if crlf else 0)
    assert record.sse.cr_lines == 0
    assert record.sse.bytes == len(body)


@pytest.mark.parametrize(
    "tail",
    [b'data: {"ciphertext":"AAAA', b'data: {"ciphertext":"AAAA"}\n', b": keep-alive\ndata: x"],
    ids=["mid-line", "no-blank-line", "comment-then-data"],
)
def test_stream_records_a_truncated_final_event(driver: Driver, node: FakeNode, tail: bytes) -> None:
    node.confidential.side_effect = lambda request: node.drip(split(sse_body(node.seal_stream(request), tail=tail), 9))

    record = driver.send(locked(driver), stream=True)

    assert len(record.chunks) == len(STREAM_CHUNKS)
    assert all(chunk.hash_matches for chunk in record.chunks)
    assert record.truncated_bytes == len(tail)
    assert record.non_envelope_events == []
    assert record.stream_error is None and record.http.error is None
    assert record.sse is not None and record.sse.events == len(STREAM_CHUNKS)


def test_stream_records_events_that_are_not_envelopes(driver: Driver, node: FakeNode) -> None:
    def stream(request: httpx.Request) -> httpx.Response:
        events = node.seal_stream(request)
        return node.drip([sse_body([b"hello", events[0], b"42"])])

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    assert record.non_envelope_events == ["hello"]
    assert [chunk.where for chunk in record.chunks] == ["chunk[0]", "chunk[1]"]
    assert record.chunks[0].hash_matches
    assert record.chunks[1].nonce_error == "NOT_AN_OBJECT"  # JSON, but not an envelope object
    assert record.events[0] == "hello" and record.events[2] == "42"


MANY_CHUNKS = [stream_chunk(f"token {i}") for i in range(10)]


def test_stream_max_chunks_stops_reading(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(max_chunks=3))

    def stream(request: httpx.Request) -> httpx.Response:
        return node.drip([sse_body([event]) for event in node.seal_stream(request, MANY_CHUNKS)])

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    assert record.stream_error == "TOO_MANY_CHUNKS"
    assert len(record.chunks) == 3
    assert [chunk.inner for chunk in record.chunks] == MANY_CHUNKS[:3]
    assert record.http.error == "stopped"
    assert node.streams[0].pulled <= 4 < len(MANY_CHUNKS)  # the client stopped reading


def test_stream_with_exactly_max_chunks_is_not_an_error(make: MakeDriver, node: FakeNode) -> None:
    """A cap of N allows N chunks: only an (N+1)-th chunk is TOO_MANY_CHUNKS."""
    driver = make(ClientOptions(max_chunks=len(STREAM_CHUNKS)))
    node.confidential.side_effect = lambda request: node.drip([sse_body(node.seal_stream(request), done=True)])

    record = driver.send(locked(driver), stream=True)

    assert len(record.chunks) == len(STREAM_CHUNKS)
    assert record.stream_error is None
    assert record.http.error is None
    assert record.non_envelope_events == ["[DONE]"]


def test_stream_answered_as_json_records_no_chunks(driver: Driver, node: FakeNode) -> None:
    bodies: list[bytes] = []

    def stream(request: httpx.Request) -> httpx.Response:
        bodies.append(sse_body(node.seal_stream(request), done=True))
        return node.drip(split(bodies[-1], 50), content_type="application/json")

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    assert record.http.status == 200 and record.http.media_type == "application/json"
    assert record.http.body == bodies[0]  # kept whole, for the checks to look at
    assert record.http.error is None
    assert record.chunks == [] and record.events == []
    assert record.non_envelope_events == []
    assert record.stream_error is None
    assert record.sse is None and record.truncated_bytes == 0


def test_stream_answered_as_json_is_read_in_full(make: MakeDriver, node: FakeNode) -> None:
    """The chunk cap is about an event stream; a JSON body is read in full whatever it contains."""
    driver = make(ClientOptions(max_chunks=1))
    pieces: list[bytes] = []

    def stream(request: httpx.Request) -> httpx.Response:
        pieces.extend(sse_body([event]) for event in node.seal_stream(request))
        return node.drip(pieces, content_type="application/json")

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    assert node.streams[0].pulled == len(STREAM_CHUNKS)
    assert record.http.error is None
    assert record.http.body == b"".join(pieces)
    assert record.stream_error is None
    assert record.chunks == []


def test_stream_refused_with_a_json_error(driver: Driver, node: FakeNode) -> None:
    node.confidential.side_effect = lambda request: error_response(425, "UNAVAILABLE_STACK", "Stack unavailable")

    record = driver.send(locked(driver), stream=True)

    assert record.http.status == 425
    assert record.http.error_body() == ("UNAVAILABLE_STACK", "Stack unavailable")
    assert record.chunks == [] and record.events == [] and record.sse is None
    assert record.stream_error is None


def test_the_production_transport_end_to_end(make: MakeDriver, node: FakeNode) -> None:
    """The client's own httpx transport (no ``transport=``), intercepted by respx's patch: same records."""
    driver = make(default_transport=True)
    lock = locked(driver)
    plain = driver.send(lock)
    node.confidential.side_effect = lambda request: node.drip(split(sse_body(node.seal_stream(request), done=True), 5))
    streamed = driver.send(lock, stream=True)

    assert plain.response is not None and plain.response.hash_matches and plain.response.inner == ANSWER
    assert plain.response.signature_verify_error is None and plain.response.signer == SIGNER.address
    assert [chunk.inner for chunk in streamed.chunks] == STREAM_CHUNKS
    assert all(chunk.hash_matches and chunk.signature_verify_error is None for chunk in streamed.chunks)
    assert streamed.non_envelope_events == ["[DONE]"] and streamed.stream_error is None
    assert [opened.plaintext for opened in node.opened] == [PLAINTEXT, PLAINTEXT]
    assert driver.requests_sent == 3


# --- caps, deadlines, transport errors, redirects ---------------------------------------------------


@pytest.mark.parametrize(
    ("size", "cap", "error"), [(1000, 100, "too-large"), (100, 100, None), (101, 100, "too-large")]
)
def test_max_response_bytes(make: MakeDriver, node: FakeNode, size: int, cap: int, error: str | None) -> None:
    driver = make(ClientOptions(max_response_bytes=cap))
    body = bytes(range(256)) * 4
    node.router.get("/big").side_effect = lambda request: node.drip(split(body[:size], 64), content_type="text/plain")

    record = driver.request("GET", "/big")

    assert record.status == 200
    assert record.error == error
    assert record.body == body[: min(size, cap)]


def test_max_response_bytes_on_send(make: MakeDriver, node: FakeNode) -> None:
    cap = len(node.lock_reply().content) + 10  # the lock fits, the sealed answer does not
    driver = make(ClientOptions(max_response_bytes=cap))
    lock = locked(driver)

    record = driver.send(lock)

    assert record.http.status == 200
    assert record.http.error == "too-large"
    assert len(record.http.body) == cap


def test_deadline_ends_a_slow_drip(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(deadline_s=0.05))
    node.router.get("/slow").side_effect = lambda request: node.drip(
        [b"x"] * 40, delay=0.004, content_type="text/plain"
    )

    record = driver.request("GET", "/slow")

    assert record.status == 200
    assert record.error == "deadline"
    assert 0 < node.streams[0].pulled < 40
    assert record.body == b"x" * (node.streams[0].pulled - 1)  # the chunk that came too late is not kept


def test_deadline_ends_a_slow_stream(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(deadline_s=0.05))

    def stream(request: httpx.Request) -> httpx.Response:
        events = node.seal_stream(request, MANY_CHUNKS)
        return node.drip([sse_body([event]) for event in events] * 4, delay=0.004)

    node.confidential.side_effect = stream

    record = driver.send(locked(driver), stream=True)

    assert record.http.error == "deadline"
    assert 0 < len(record.chunks) < 40
    assert all(chunk.hash_matches for chunk in record.chunks)


@pytest.mark.parametrize(
    ("effect", "error"),
    [
        (httpx.ConnectError, "ConnectError"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.ConnectTimeout, "timeout"),
        (httpx.PoolTimeout, "timeout"),
        (httpx.RemoteProtocolError, "RemoteProtocolError"),
        (httpx.ReadError, "ReadError"),
    ],
)
@pytest.mark.parametrize("default_transport", [False, True], ids=["respx-transport", "respx-patch"])
def test_transport_errors_are_recorded(
    make: MakeDriver, node: FakeNode, effect: type[Exception], error: str, default_transport: bool
) -> None:
    driver = make(default_transport=default_transport)
    lock = locked(driver)
    node.confidential.side_effect = effect

    record = driver.send(lock)

    assert record.http.status is None
    assert record.http.error == error
    assert record.http.body == b""
    assert record.response is None and not record.succeeded
    assert record.http.elapsed_s >= 0


def test_read_timeout_mid_stream_is_recorded(driver: Driver, node: FakeNode) -> None:
    node.router.get("/stall").side_effect = lambda request: node.drip(
        [b"part"], content_type="text/plain", fail=httpx.ReadTimeout("stalled")
    )

    record = driver.request("GET", "/stall")

    assert record.error == "timeout"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("default_transport", [False, True], ids=["respx-transport", "respx-patch"])
def test_redirects_are_not_followed(make: MakeDriver, node: FakeNode, status: int, default_transport: bool) -> None:
    driver = make(default_transport=default_transport)
    elsewhere = node.router.post("http://other.test/v1/nodes/lock")
    elsewhere.side_effect = lambda request: node.lock_reply()
    node.lock_route.side_effect = lambda request: httpx.Response(
        status, headers={"location": "http://other.test/v1/nodes/lock"}
    )

    record = driver.lock()

    assert record.http.status == status
    assert record.http.headers["location"] == "http://other.test/v1/nodes/lock"
    assert elsewhere.call_count == 0
    assert node.lock_route.call_count == 1
    assert driver.requests_sent == 1
    assert not record.ok


# --- request budget -------------------------------------------------------------------------------------


def test_budget_refuses_the_request_after_the_cap(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(max_requests=2))
    assert driver.lock().ok
    assert driver.lock().ok

    with pytest.raises(BudgetExceeded):
        driver.lock()

    assert node.lock_route.call_count == 2
    assert driver.requests_sent == 2


def test_budget_counts_lock_retries(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(lock_retries=5))
    replies = iter([error_response(503, "BUSY", "busy"), error_response(429, "BUSY", "busy"), node.lock_reply()])
    node.lock_route.side_effect = lambda request: next(replies)

    lock = driver.lock()
    driver.send(lock)

    assert driver.requests_sent == 4
    assert node.lock_route.call_count == 3 and node.confidential.call_count == 1


def test_budget_stops_lock_retries(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(max_requests=2, lock_retries=5))
    node.lock_route.side_effect = lambda request: error_response(503, "BUSY", "busy")

    with pytest.raises(BudgetExceeded):
        driver.lock()

    assert node.lock_route.call_count == 2
    assert driver.requests_sent == 2


def test_budget_refuses_a_send(make: MakeDriver, node: FakeNode) -> None:
    driver = make(ClientOptions(max_requests=1))
    lock = locked(driver)

    with pytest.raises(BudgetExceeded):
        driver.send(lock, stream=True)

    assert node.confidential.call_count == 0
    assert driver.requests_sent == 1


# --- privacy ----------------------------------------------------------------------------------------------


def test_repr_hides_the_api_key(make: MakeDriver) -> None:
    with_key, without_key = make(), make(api_key=None)

    assert API_KEY not in repr(with_key.client)
    assert "api_key=<set>" in repr(with_key.client)
    assert BASE in repr(with_key.client)
    assert "api_key=None" in repr(without_key.client)


def leaks(value: Any) -> list[str]:
    text = json.dumps(value)
    return [secret for secret in (API_KEY, REQUEST_SENTINEL, RESPONSE_SENTINEL) if secret in text]


@pytest.mark.parametrize("stream", [False, True])
def test_summaries_hold_no_key_and_no_plaintext(driver: Driver, node: FakeNode, stream: bool) -> None:
    lock = locked(driver)

    if stream:
        node.confidential.side_effect = lambda request: node.drip([sse_body(node.seal_stream(request), done=True)])
    record = driver.send(lock, stream=stream)

    # The sentinels are in memory (so the search below would find a leak) ...
    assert REQUEST_SENTINEL.encode() in record.plaintext
    assert any(RESPONSE_SENTINEL.encode() in (m.plaintext or b"") for m in record.messages)
    # ... but never in what reports and logs see.
    assert leaks(record.summary()) == []
    assert leaks(record.http.summary()) == []
    assert leaks(lock.http.summary()) == []
    assert leaks([m.summary() for m in record.messages]) == []
    assert len(record.summary()["messages"]) == (len(STREAM_CHUNKS) if stream else 1)
    # The key is in no record at all: the request headers are not kept.
    assert API_KEY not in repr(record) and API_KEY not in repr(lock)
    assert API_KEY.encode() not in record.request_body


def test_error_summary_does_not_echo_a_leaky_body(driver: Driver, node: FakeNode) -> None:
    """A node that quotes the plaintext (or the key) in its error: the summary keeps only a digest."""
    node.confidential.side_effect = lambda request: error_response(
        400, "REQUEST_ERROR", f"bad request {REQUEST_SENTINEL} from {API_KEY}"
    )

    record = driver.send(locked(driver))

    assert REQUEST_SENTINEL.encode() in record.http.body
    assert leaks(record.summary()) == []


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        ("explicit", {"ATOMA_API_KEY": "a", "ATOMASDK_BEARER_AUTH": "b"}, "explicit"),
        (None, {"ATOMA_API_KEY": "a", "ATOMASDK_BEARER_AUTH": "b"}, "a"),
        (None, {"ATOMASDK_BEARER_AUTH": "b"}, "b"),
        (None, {"ATOMA_API_KEY": "", "ATOMASDK_BEARER_AUTH": "b"}, "b"),
        ("", {"ATOMA_API_KEY": "a"}, "a"),
        (None, {"OTHER": "x"}, None),
        (None, {}, None),
    ],
)
def test_resolve_api_key_precedence(explicit: str | None, environ: dict[str, str], expected: str | None) -> None:
    assert resolve_api_key(explicit, environ) == expected


def test_resolve_api_key_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOMA_API_KEY", raising=False)
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", "from-env")
    assert resolve_api_key(None) == "from-env"
    monkeypatch.setenv("ATOMA_API_KEY", "preferred")
    assert resolve_api_key(None) == "preferred"
    assert resolve_api_key(None, {}) is None  # an explicit mapping replaces os.environ


# --- mutate hook and prepare -------------------------------------------------------------------------------


def test_mutate_changes_the_envelope_before_it_is_sent(driver: Driver, node: FakeNode) -> None:
    seen: list[list[str]] = []

    def mutate(envelope: dict[str, Any]) -> dict[str, Any]:
        seen.append(list(envelope))
        out = {k: v for k, v in envelope.items() if k != "salt"}
        out["model_name"] = "someone/else"
        out["smuggled"] = [1, 2]
        return out

    node.confidential.side_effect = lambda request: error_response(400, "REQUEST_ERROR", "salt: is required")

    record = driver.send(locked(driver), mutate=mutate, stack_small_id=99, num_compute_units=7)

    assert seen == [
        [
            "ciphertext",
            "client_dh_public_key",
            "model_name",
            "node_dh_public_key",
            "nonce",
            "num_compute_units",
            "plaintext_body_hash",
            "salt",
            "stack_small_id",
            "stream",
        ]
    ]
    sent = node.last_request(node.confidential).content
    assert sent == record.request_body
    wire = jsonwire.loads(sent)
    assert "salt" not in wire
    assert wire["model_name"] == "someone/else"
    assert wire["smuggled"] == [1, 2]
    assert wire["stack_small_id"] == 99 and wire["num_compute_units"] == 7
    assert list(wire)[-1] == "smuggled"
    # The record keeps the envelope as sealed, so the exchange can still be checked against it.
    assert record.request.salt == b64encode(record.exchange.salt)
    assert record.request.stack_small_id == 99


def test_send_without_a_usable_lock_is_refused_before_sending(driver: Driver, node: FakeNode) -> None:
    no_lock = analyse_lock(HttpRecord("POST", LOCK_PATH, 503, {"content-type": "application/json"}, b"{}"))
    short_key = analyse_lock(
        HttpRecord("POST", LOCK_PATH, 200, {}, LockResponse(b64encode(NODE_PK[:31]), 1, None, 2).serialize())
    )
    low_order = analyse_lock(
        HttpRecord("POST", LOCK_PATH, 200, {}, LockResponse(b64encode(bytes(32)), 1, None, 2).serialize())
    )
    assert no_lock.lock is None and short_key.public_key is None and low_order.public_key == bytes(32)

    for lock in (no_lock, short_key, low_order):
        with pytest.raises(ValueError, match=r"public_key|usable lock"):
            driver.send(lock)

    assert node.confidential.call_count == 0
    assert driver.requests_sent == 0


def test_prepare_refuses_a_lock_without_a_public_key(driver: Driver) -> None:
    short_key = analyse_lock(
        HttpRecord("POST", LOCK_PATH, 200, {}, LockResponse(b64encode(NODE_PK[:31]), 1, None, 2).serialize())
    )
    with pytest.raises(ValueError, match="usable lock"):
        driver.client.prepare(
            "chat",
            PLAINTEXT,
            short_key,
            model_name=MODEL,
            stream=False,
            num_compute_units=None,
            mutate=None,
            headers=None,
        )
    with pytest.raises(ValueError, match="usable lock"):
        driver.client.prepare(
            "chat", PLAINTEXT, None, model_name=MODEL, stream=False, num_compute_units=None, mutate=None, headers=None
        )


def test_extra_headers_are_sent(driver: Driver, node: FakeNode) -> None:
    driver.send(locked(driver), headers={"x-request-id": "abc"})

    sent = node.last_request(node.confidential)
    assert sent.headers["x-request-id"] == "abc"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
