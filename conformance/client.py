"""The reference confidential client, on httpx, sync and async, recording what the checks need.

I/O is a thin shell: building a request and turning bytes into records are shared pure functions
(``_prepare``, ``_StreamCollector``, ``analyse_*``), so the sync and async clients cannot drift apart.
A hostile target cannot hang or exhaust it: every read has a timeout, a whole exchange has a
deadline, and bodies and chunk counts are capped. Redirects are never followed. The API key is sent
as a bearer token and never appears in a repr, a record, a log or an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from .budget import RequestBudget

if TYPE_CHECKING:
    from .guard import RunGuard
from .evidence import (
    ExchangeRecord,
    HttpRecord,
    LockRecord,
    analyse_lock,
    analyse_message,
    shed,
)
from .protocol import jsonwire
from .protocol.b64 import b64encode
from .protocol.envelope import SealedRequest, seal_request
from .protocol.errors import ProtocolError
from .protocol.models import LockResponse
from .protocol.randomness import SYSTEM_RANDOM, RandomSource
from .protocol.sse import SseParser
from .protocol.sui import SuiSigner
from .transport_errors import describe_transport_error

ENDPOINT_PATHS = {
    "chat": "/v1/confidential/chat/completions",
    "completions": "/v1/confidential/completions",
    "embeddings": "/v1/confidential/embeddings",
    "images": "/v1/confidential/images/generations",
}
API_KEY_ENV = ("ATOMA_API_KEY", "ATOMASDK_BEARER_AUTH")
LOCK_PATH = "/v1/nodes/lock"


def resolve_api_key(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``--api-key``, else ``ATOMA_API_KEY``, else ``ATOMASDK_BEARER_AUTH`` (the official SDKs' variable)."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    for name in API_KEY_ENV:
        if env.get(name):
            return env[name]
    return None


def _tls_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx takes an SSLContext for a CA bundle (a bare path is deprecated there)."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class BudgetExceeded(Exception):
    """The run's request budget is spent; no request was sent."""


@dataclass
class ClientOptions:
    timeout_s: float = 30.0  # per network read, and connect
    deadline_s: float = 120.0  # a whole exchange, including a stream
    max_response_bytes: int = 32 * 1024 * 1024
    max_chunks: int = 10_000
    lock_retries: int = 3  # on 429 and 503 only: the lock is the one call that is safe to repeat
    backoff_s: float = 0.5
    max_requests: int | None = None  # a hard cap on HTTP requests, for paid endpoints
    # One budget for every client of a run (second keys, fuzz sessions, xdist workers): when set, it is
    # the cap, and max_requests is only what it was built from (conformance.budget).
    budget: RequestBudget | None = None
    # The run's deadline and its too-slow judgement, shared by every client of a run (budget.RunGuard).
    guard: RunGuard | None = None
    # TLS: True (the system's CAs), a CA bundle path, or False (--insecure, warned about loudly).
    verify: bool | str = True
    # --header NAME: VALUE, sent with every request (a gateway's own auth, a routing header).
    extra_headers: tuple[tuple[str, str], ...] = ()


DROP = "\x00drop"  # a header value meaning "do not send this header" (probes of a missing header)


@dataclass(frozen=True)
class NodeFace:
    """The suite standing in for the proxy, on a node's own face (spec §1.3, §7.3).

    A node has no lock endpoint: the proxy already knows the node's X25519 key (from chain state) and
    the stack it holds, and proves that it holds the stack by signing every request's
    ``plaintext_body_hash`` with the stack owner's Sui key (``X-Signature``). Streams also carry an
    ``X-Request-Id``. The signer is a secret: it never appears in a repr, a record or a report.
    """

    signer: SuiSigner
    stack_small_id: int
    node_public_key: bytes

    def __repr__(self) -> str:
        return f"NodeFace(signer={self.signer.address}, stack_small_id={self.stack_small_id})"

    def hop_headers(self, body: bytes, *, stream: bool) -> dict[str, str]:
        """``X-Signature`` over the hash the body claims (whatever its length, as upstream signs it)."""
        headers = {}
        claimed = _claimed_hash(body)
        if claimed is not None:
            headers["x-signature"] = self.signer.sign(claimed, any_length=True).to_b64()
        if stream:
            headers["x-request-id"] = str(uuid.uuid4())
        return headers

    def lock_record(self, model: str) -> LockRecord:
        """What a lock would have told a client; the node face has none, so nothing is sent."""
        reply = LockResponse(b64encode(self.node_public_key), 0, None, self.stack_small_id)
        http = HttpRecord("POST", "(node face: no lock endpoint)", 200, {"content-type": "application/json"})
        http.body = reply.serialize()
        return analyse_lock(http)


def _claimed_hash(body: bytes) -> bytes | None:
    """The bytes of ``plaintext_body_hash`` in a (possibly deliberately broken) envelope, if any."""
    try:
        text = json.loads(body)["plaintext_body_hash"]
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


@dataclass
class Prepared:
    path: str
    body: bytes
    headers: dict[str, str]
    sealed: SealedRequest
    plaintext: bytes
    endpoint: str
    stream: bool
    lock: LockRecord | None


def _json_headers(
    api_key: str | None, extra: Mapping[str, str] | None = None, *, stream: bool = False
) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


@dataclass
class _StreamCollector:
    """Feed the bytes of an event stream; build the chunk records as events complete."""

    record: ExchangeRecord
    max_chunks: int
    parser: SseParser = field(default_factory=SseParser)

    def feed(self, data: bytes) -> bool:
        """Returns False when the stream must stop (a cap was hit or the SSE framing broke)."""
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self.record.stream_error = exc.code
            return False
        for event in events:
            try:
                envelope = jsonwire.loads(event.data)
            except ProtocolError:
                if len(self.record.non_envelope_events) >= 100:  # evidence, not an unbounded log
                    self.record.stream_error = "TOO_MANY_NON_ENVELOPE_EVENTS"
                    return False
                self.record.events.append(event.data)
                self.record.non_envelope_events.append(event.data[:64])
                continue
            if len(self.record.chunks) >= self.max_chunks:
                self.record.stream_error = "TOO_MANY_CHUNKS"
                return False
            self.record.events.append(event.data)
            where = f"chunk[{len(self.record.chunks)}]"
            self.record.chunks.append(analyse_message(where, envelope, self.record.exchange))
        return True

    def finish(self) -> None:
        self.record.truncated_bytes = self.parser.pending_bytes
        self.parser.close()
        self.record.sse = self.parser.stats


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        options: ClientOptions | None = None,
        rng: RandomSource = SYSTEM_RANDOM,
        node_face: NodeFace | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.options = options or ClientOptions()
        self.rng = rng
        self.node_face = node_face
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, api_key={'<set>' if self._api_key else None})"

    def headers(
        self, extra: Mapping[str, str] | None = None, *, stream: bool = False, body: bytes | None = None
    ) -> dict[str, str]:
        """The headers of a confidential request: JSON, the accept type, and the bearer token if any; on
        the node face, the proxy's hop headers for ``body`` instead of a token."""
        hop = self.node_face.hop_headers(body or b"", stream=stream) if self.node_face is not None else {}
        headers = _json_headers(self._api_key, {**hop, **(extra or {})}, stream=stream)
        return {name: value for name, value in headers.items() if value != DROP}

    def _raise_if_spent(self) -> None:
        budget = self.options.budget
        if budget is not None:
            if budget.spent() >= budget.cap:
                raise BudgetExceeded(f"the request budget of {budget.cap} is spent")
            return
        cap = self.options.max_requests
        if cap is not None and self.requests_sent >= cap:
            raise BudgetExceeded(f"the request budget of {cap} is spent")

    def _deadline_s(self) -> float:
        """This exchange's deadline: the option, or what is left of the run's time, whichever is sooner."""
        guard = self.options.guard
        remaining = guard.remaining() if guard is not None else None
        return self.options.deadline_s if remaining is None else max(0.01, min(self.options.deadline_s, remaining))

    def _finished(self, record: HttpRecord) -> HttpRecord:
        if self.options.guard is not None:
            self.options.guard.observe(record)
        return record

    def _spend(self) -> None:
        if self.options.guard is not None:
            self.options.guard.check()  # raises RunStopped: nothing more is sent
        budget = self.options.budget
        if budget is not None:
            if not budget.take():
                raise BudgetExceeded(f"the request budget of {budget.cap} is spent")
        else:
            self._raise_if_spent()
        self.requests_sent += 1

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.options.timeout_s)

    def prepare(
        self,
        endpoint: str,
        plaintext: bytes,
        lock: LockRecord | None,
        *,
        model_name: str,
        stream: bool,
        num_compute_units: int | None,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None,
        headers: Mapping[str, str] | None,
        stack_small_id: int | None = None,
    ) -> Prepared:
        """Seal a request without sending it (probes and replays need the exact bytes first)."""
        if lock is None or lock.lock is None or lock.public_key is None:
            raise ValueError("a usable lock (with a 32-byte public key) is required to seal a request")
        sealed = seal_request(
            plaintext,
            node_public_key=lock.public_key,
            model_name=model_name,
            stack_small_id=lock.lock.stack_small_id if stack_small_id is None else stack_small_id,
            stream=stream,
            num_compute_units=num_compute_units,
            rng=self.rng,
        )
        envelope = sealed.request.to_json()
        if mutate is not None:
            envelope = mutate(envelope)
        body = jsonwire.dumps(envelope)
        return Prepared(
            ENDPOINT_PATHS[endpoint],
            body,
            self.headers(headers, stream=stream, body=body),
            sealed,
            plaintext,
            endpoint,
            stream,
            lock,
        )

    @staticmethod
    def _record(prepared: Prepared, http: HttpRecord) -> ExchangeRecord:
        return ExchangeRecord(
            endpoint=prepared.endpoint,
            streaming=prepared.stream,
            request=prepared.sealed.request,
            request_body=prepared.body,
            exchange=prepared.sealed.exchange,
            plaintext=prepared.plaintext,
            http=http,
            lock=prepared.lock,
        )

    def _begin_stream(self, prepared: Prepared) -> tuple[ExchangeRecord, _StreamCollector]:
        record = self._record(prepared, HttpRecord("POST", prepared.path, None))
        return record, _StreamCollector(record, self.options.max_chunks)

    @staticmethod
    def _end_stream(record: ExchangeRecord, collector: _StreamCollector, http: HttpRecord) -> ExchangeRecord:
        """The request only feeds the collector for 200 text/event-stream; anything else has no chunks."""
        record.http = http
        if http.status == 200 and http.media_type == "text/event-stream":
            collector.finish()
            http.body = b""  # the events are recorded; do not keep the body twice
        return record

    @staticmethod
    def _finish_json(record: ExchangeRecord) -> ExchangeRecord:
        if record.http.status == 200 and record.http.media_type == "application/json":
            value = record.http.json()
            record.response = analyse_message("response", value, record.exchange)
            shed(record, value)
        return record

    def _lock_body(self, model: str, max_num_tokens: int | None, timeout: int | None) -> bytes:
        body: dict[str, Any] = {"model": model}
        if max_num_tokens is not None:
            body["max_num_tokens"] = max_num_tokens
        if timeout is not None:
            body["timeout"] = timeout
        return jsonwire.dumps(body)


EVIDENCE_PREFIX = 64 * 1024


def _http_record(
    method: str, path: str, response: httpx.Response, body: bytes, started: float, error: str | None = None
) -> HttpRecord:
    if error in ("too-large", "deadline"):
        body = body[:EVIDENCE_PREFIX]  # a truncated body is evidence, not content: keep a bounded prefix
    return HttpRecord(
        method,
        path,
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        body,
        elapsed_s=time.monotonic() - started,
    )


def _late_head(method: str, path: str, limit: float, started: float) -> HttpRecord:
    """No status line and headers within one read timeout, though bytes kept coming: a stall."""
    detail = f"the response head did not arrive within the {limit:g} s read timeout"
    return HttpRecord(method, path, None, error="drip", detail=detail, elapsed_s=time.monotonic() - started)


def _no_answer(method: str, path: str, exc: BaseException, started: float) -> HttpRecord:
    """An exchange that got no response: the exception's class as the error code, and why in words."""
    return HttpRecord(
        method,
        path,
        None,
        error=type(exc).__name__,
        detail=describe_transport_error(exc),
        elapsed_s=time.monotonic() - started,
    )


class ConfidentialClient(_Base):
    """Synchronous client. ``transport`` lets tests mount respx or an in-process app."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        options: ClientOptions | None = None,
        rng: RandomSource = SYSTEM_RANDOM,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        node_face: NodeFace | None = None,
    ) -> None:
        super().__init__(base_url, api_key, options=options, rng=rng, node_face=node_face)
        self._transport = transport
        self._http = self._new_http()
        self._sleep = sleep

    def _new_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=self._timeout(),
            transport=self._transport,
            follow_redirects=False,
            verify=_tls_verify(self.options.verify),
            headers={"accept-encoding": "identity", **dict(self.options.extra_headers)},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConfidentialClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        on_chunk: Callable[[bytes], bool] | None = None,
    ) -> HttpRecord:
        """One HTTP exchange with every cap applied. Transport failures become ``HttpRecord.error``."""
        self._spend()
        return self._finished(self._exchange(method, path, content, headers, on_chunk))

    def _exchange(
        self,
        method: str,
        path: str,
        content: bytes,
        headers: Mapping[str, str] | None,
        on_chunk: Callable[[bytes], bool] | None,
    ) -> HttpRecord:
        started = time.monotonic()
        limit = self._deadline_s()
        deadline = started + limit
        # The per-read timeout restarts with every byte, so a server that drips its status line and
        # headers never trips it; a watchdog closes the connection when the exchange's deadline passes.
        http = self._http
        watchdog = threading.Timer(limit + 0.5, http.close)
        watchdog.daemon = True
        watchdog.start()
        # The head (status line and headers, after any 100 Continue) must come within one read timeout:
        # a head dripped byte by byte, or endless 100 Continue, keeps every read alive until the deadline.
        head_limit = min(self.options.timeout_s, limit)
        head_arrived, head_late = threading.Event(), threading.Event()

        def late_head() -> None:
            if not head_arrived.is_set():
                head_late.set()
                http.close()

        head_timer = threading.Timer(head_limit + 0.5, late_head)
        head_timer.daemon = True
        head_timer.start()
        try:
            timeout = httpx.Timeout(min(self.options.timeout_s, limit))
            with http.stream(method, path, content=content, headers=dict(headers or {}), timeout=timeout) as response:
                head_arrived.set()
                head_timer.cancel()
                feeder = on_chunk if _is_event_stream(response) else None
                pace = _Pace(started, min(self.options.timeout_s, limit))
                body, error = _read_capped(_raw(response), self.options.max_response_bytes, deadline, feeder, pace)
                error = error or _encoded(response)
                record = _http_record(method, path, response, body, started, error)
                record.error = error
                return record
        except httpx.TimeoutException:
            return HttpRecord(method, path, None, error="timeout", elapsed_s=time.monotonic() - started)
        except (httpx.HTTPError, RuntimeError, OSError) as exc:
            if head_late.is_set():
                return _late_head(method, path, head_limit, started)
            if time.monotonic() >= deadline:
                return HttpRecord(method, path, None, error="deadline", elapsed_s=time.monotonic() - started)
            return _no_answer(method, path, exc, started)
        finally:
            head_timer.cancel()
            watchdog.cancel()
            if http.is_closed:  # the watchdog fired: start a fresh connection pool for the next exchange
                self._http = self._new_http()

    def lock(
        self, model: str, *, max_num_tokens: int | None = None, timeout: int | None = None, retries: int | None = None
    ) -> LockRecord:
        """Take a lock, retrying 429 and 503 with exponential backoff (``retries`` overrides the option)."""
        if self.node_face is not None:
            return self.node_face.lock_record(model)
        body = self._lock_body(model, max_num_tokens, timeout)
        retries = self.options.lock_retries if retries is None else retries
        for attempt in range(retries + 1):
            http = self.request("POST", LOCK_PATH, content=body, headers=_json_headers(self._api_key))
            if http.status not in (429, 503) or attempt == retries:
                break
            self._raise_if_spent()  # no point sleeping before a retry the budget forbids
            self._sleep(self.options.backoff_s * 2**attempt)
        return analyse_lock(http)

    def send(
        self,
        endpoint: str,
        plaintext: bytes,
        *,
        lock: LockRecord,
        model_name: str,
        stream: bool = False,
        num_compute_units: int | None = None,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        stack_small_id: int | None = None,
    ) -> ExchangeRecord:
        prepared = self.prepare(
            endpoint,
            plaintext,
            lock,
            model_name=model_name,
            stream=stream,
            num_compute_units=num_compute_units,
            mutate=mutate,
            headers=headers,
            stack_small_id=stack_small_id,
        )
        return self.post_prepared(prepared)

    def post_prepared(self, prepared: Prepared) -> ExchangeRecord:
        if prepared.stream:
            record, collector = self._begin_stream(prepared)
            http = self.request(
                "POST", prepared.path, content=prepared.body, headers=prepared.headers, on_chunk=collector.feed
            )
            return self._end_stream(record, collector, http)
        http = self.request("POST", prepared.path, content=prepared.body, headers=prepared.headers)
        return self._finish_json(self._record(prepared, http))


class AsyncConfidentialClient(_Base):
    """Asynchronous client with the same behaviour and records as :class:`ConfidentialClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        options: ClientOptions | None = None,
        rng: RandomSource = SYSTEM_RANDOM,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] | None = None,
        node_face: NodeFace | None = None,
    ) -> None:
        super().__init__(base_url, api_key, options=options, rng=rng, node_face=node_face)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self._timeout(),
            transport=transport,
            follow_redirects=False,
            verify=_tls_verify(self.options.verify),
            headers={"accept-encoding": "identity", **dict(self.options.extra_headers)},
        )
        self._sleep = sleep or asyncio.sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncConfidentialClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        on_chunk: Callable[[bytes], bool] | None = None,
    ) -> HttpRecord:
        self._spend()
        started = time.monotonic()
        limit = self._deadline_s()
        try:
            record = await asyncio.wait_for(
                self._request(method, path, content, headers, on_chunk, started, limit), limit + 0.5
            )
        except TimeoutError:  # headers dripped byte by byte: the per-read timeout never fires
            record = HttpRecord(method, path, None, error="deadline", elapsed_s=time.monotonic() - started)
        return self._finished(record)

    async def _request(
        self,
        method: str,
        path: str,
        content: bytes,
        headers: Mapping[str, str] | None,
        on_chunk: Callable[[bytes], bool] | None,
        started: float,
        limit: float,
    ) -> HttpRecord:
        deadline = started + limit
        head_limit = min(self.options.timeout_s, limit)
        try:
            timeout = httpx.Timeout(head_limit)
            stream = self._http.stream(method, path, content=content, headers=dict(headers or {}), timeout=timeout)
            try:  # the head within one read timeout, as in the sync client (a dripped head, 100 Continue)
                response = await asyncio.wait_for(stream.__aenter__(), head_limit + 0.5)
            except TimeoutError:
                return _late_head(method, path, head_limit, started)
            try:
                feeder = on_chunk if _is_event_stream(response) else None
                pace = _Pace(started, head_limit)
                body, error = await _aread_capped(
                    _araw(response), self.options.max_response_bytes, deadline, feeder, pace
                )
                error = error or _encoded(response)
                record = _http_record(method, path, response, body, started, error)
                record.error = error
                return record
            finally:
                await stream.__aexit__(None, None, None)
        except httpx.TimeoutException:
            return HttpRecord(method, path, None, error="timeout", elapsed_s=time.monotonic() - started)
        except httpx.HTTPError as exc:
            return _no_answer(method, path, exc, started)

    async def lock(
        self, model: str, *, max_num_tokens: int | None = None, timeout: int | None = None, retries: int | None = None
    ) -> LockRecord:
        if self.node_face is not None:
            return self.node_face.lock_record(model)
        body = self._lock_body(model, max_num_tokens, timeout)
        retries = self.options.lock_retries if retries is None else retries
        for attempt in range(retries + 1):
            http = await self.request("POST", LOCK_PATH, content=body, headers=_json_headers(self._api_key))
            if http.status not in (429, 503) or attempt == retries:
                break
            self._raise_if_spent()
            await self._sleep(self.options.backoff_s * 2**attempt)
        return analyse_lock(http)

    async def send(
        self,
        endpoint: str,
        plaintext: bytes,
        *,
        lock: LockRecord,
        model_name: str,
        stream: bool = False,
        num_compute_units: int | None = None,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        stack_small_id: int | None = None,
    ) -> ExchangeRecord:
        prepared = self.prepare(
            endpoint,
            plaintext,
            lock,
            model_name=model_name,
            stream=stream,
            num_compute_units=num_compute_units,
            mutate=mutate,
            headers=headers,
            stack_small_id=stack_small_id,
        )
        if prepared.stream:
            record, collector = self._begin_stream(prepared)
            http = await self.request(
                "POST", prepared.path, content=prepared.body, headers=prepared.headers, on_chunk=collector.feed
            )
            return self._end_stream(record, collector, http)
        http = await self.request("POST", prepared.path, content=prepared.body, headers=prepared.headers)
        return self._finish_json(self._record(prepared, http))


def _raw(response: httpx.Response) -> Iterator[bytes]:
    """The body as sent (no content decoding), chunk by chunk."""
    try:
        yield from response.iter_raw()
    except httpx.StreamConsumed:  # a response built in memory (respx, tests): already whole
        yield response.content


async def _araw(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.StreamConsumed:
        yield response.content


def _encoded(response: httpx.Response) -> str | None:
    """The protocol needs no content coding, and decoding one would let a few kilobytes of gzip grow
    past every cap before a byte is counted: the client asks for ``identity``, reads the bytes as sent
    (the cap counts them), and an answer that is encoded anyway is not a served answer."""
    coding = response.headers.get("content-encoding", "").strip().lower()
    return None if coding in ("", "identity") else "content-encoding"


def _is_event_stream(response: httpx.Response) -> bool:
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return response.status_code == 200 and media == "text/event-stream"


def _transport_error(exc: httpx.HTTPError) -> str:
    return "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__


DRIP_MIN_BYTES = 1024  # less than this after a whole read timeout is a drip
MAX_PIECES = 200_000  # more pieces than this in one body is a flood of tiny chunks


@dataclass
class _Pace:
    """Two ways a body can stall without tripping a per-read timeout, each cut like a timeout.

    A drip (a byte now and then) resets the read timeout with every byte: fewer than ``min_bytes``
    after a whole read timeout is a stall, whatever the deadline still allows. A flood of one-byte
    chunks keeps a core busy at ~100 KB/s, so neither the size cap nor the timeout comes: more than
    ``max_pieces`` pieces is not a body anyone sends. A real answer, even a slow stream of a token a
    second, passes both by orders of magnitude.
    """

    started: float
    stall_after_s: float
    min_bytes: int = DRIP_MIN_BYTES
    max_pieces: int = MAX_PIECES
    pieces: int = 0

    def problem(self, received: int) -> str | None:
        self.pieces += 1
        if self.pieces > self.max_pieces:
            return "too-fragmented"
        if received < self.min_bytes and time.monotonic() - self.started >= self.stall_after_s:
            return "drip"
        return None


def _read_capped(
    chunks: Iterator[bytes],
    cap: int,
    deadline: float,
    on_chunk: Callable[[bytes], bool] | None,
    pace: _Pace | None = None,
) -> tuple[bytes, str | None]:
    """Read until the end, a cap, the deadline, a stall, or a transport error; keep what arrived."""
    buf = bytearray()
    try:
        for chunk in chunks:
            if time.monotonic() > deadline:
                return bytes(buf), "deadline"
            buf += chunk
            if len(buf) > cap:
                return bytes(buf[:cap]), "too-large"
            stalled = pace.problem(len(buf)) if pace is not None else None
            if stalled is not None:
                return bytes(buf), stalled
            if on_chunk is not None and not on_chunk(chunk):
                return bytes(buf), "stopped"
    except httpx.HTTPError as exc:  # a stream that breaks part-way keeps its status and partial evidence
        return bytes(buf), _transport_error(exc)
    return bytes(buf), None


async def _aread_capped(
    chunks: AsyncIterator[bytes],
    cap: int,
    deadline: float,
    on_chunk: Callable[[bytes], bool] | None,
    pace: _Pace | None = None,
) -> tuple[bytes, str | None]:
    buf = bytearray()
    try:
        async for chunk in chunks:
            if time.monotonic() > deadline:
                return bytes(buf), "deadline"
            buf += chunk
            if len(buf) > cap:
                return bytes(buf[:cap]), "too-large"
            stalled = pace.problem(len(buf)) if pace is not None else None
            if stalled is not None:
                return bytes(buf), stalled
            if on_chunk is not None and not on_chunk(chunk):
                return bytes(buf), "stopped"
    except httpx.HTTPError as exc:
        return bytes(buf), _transport_error(exc)
    return bytes(buf), None
