"""The reference confidential client, on httpx, sync and async, recording what the checks need.

I/O is a thin shell: everything that is not I/O lives once, in a core both clients inherit
(``_ClientCore``: budget, headers, sealing, records, the lock's retry policy) and in the per-exchange
``_Attempt`` and ``_BodyReader`` (caps, stalls, and how every failure becomes a record). The two
clients have the same public methods with the same signatures (``close``/``with`` are
``aclose``/``async with`` in the async one), raise the same exceptions (:data:`CLIENT_EXCEPTIONS`)
and turn the same transport failures (:data:`TRANSPORT_FAILURES`) into the same records;
tests/test_client_parity.py keeps it so.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import httpx

from .budget import RequestBudget, RunStopped

if TYPE_CHECKING:
    from .guard import RunGuard
    from .keybinding import KeySource
from .protocol import jsonwire
from .protocol.b64 import b64encode
from .protocol.envelope import SealedRequest, seal_request
from .protocol.errors import ProtocolError
from .protocol.models import LockResponse
from .protocol.randomness import SYSTEM_RANDOM, RandomSource
from .protocol.sse import SseParser
from .protocol.sui import SuiSigner
from .records import (
    ExchangeRecord,
    HttpRecord,
    LockRecord,
    analyse_lock,
    analyse_message,
    shed,
)
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


class UnverifiedLockKey(ValueError):
    """R15.14: the key a lock handed out is not shown, by chain state, to be the node's attested key.

    Raised before anything is sealed to the key, so nothing was sent to it. ``rule`` is the requirement
    that failed or could not be judged (``R15.11`` a key the chain does not commit, ``R15.2`` an
    ambiguous commitment, ``R15.12`` a node behind the network's rotation, ``R15.4`` to ``R15.8`` the
    evidence, ``R15.14`` a chain that could not be read); ``reason`` is one line that names it.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


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
    # R15.14, opt-in: read the chain and verify a lock's key before sealing anything to it, and refuse
    # (UnverifiedLockKey) a key that fails or cannot be judged. None, the default, trusts the lock's key
    # as the official SDKs do (W32), which is what the node checks need: they judge the node, not this.
    key_source: KeySource | None = None


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
    chunked: bool = False  # sent with Transfer-Encoding: chunked and no Content-Length (R3.17)


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


# --- what the two clients share: everything that is not I/O -----------------------------------------

# What a transport may raise while an exchange is under way. Both clients turn each of these into
# ``HttpRecord.error`` (with the status and a bounded prefix of the body when a response had begun),
# never into an exception: a hostile target must not be able to end a check by breaking a connection.
# (asyncio's and socket's TimeoutError are OSErrors, so a timer that cuts an exchange is one too.)
TRANSPORT_FAILURES: tuple[type[Exception], ...] = (httpx.HTTPError, RuntimeError, OSError)

# What either client raises, and nothing else (every other failure is a record; a caller's own
# ``mutate`` may of course raise): the budget is spent, the run was stopped (its deadline, or an
# unusable target), or the caller asked for something impossible (``prepare`` without a usable lock, or
# for an unknown endpoint, or with ``key_source`` a lock whose key fails verification: UnverifiedLockKey,
# a ValueError). Both clients raise them from the shared core, so the same situation is the same
# exception class in each.
CLIENT_EXCEPTIONS: tuple[type[Exception], ...] = (BudgetExceeded, RunStopped, ValueError)

EVIDENCE_PREFIX = 64 * 1024
DRIP_MIN_BYTES = 1024  # less than this after a whole read timeout is a drip
MAX_PIECES = 200_000  # more pieces than this in one body is a flood of tiny chunks
TIMER_GRACE_S = 0.5  # how long past its limit a head, a body or a whole exchange runs before our own timer cuts it
KEY_CHECK_TTL_S = 60.0  # how long a verified (node, key) stays verified for this client (ClientOptions.key_source)


class _ClientCore:
    """The sync and the async client alike: options, budget, headers, sealing, records, retry policy.

    The two client classes add only I/O (``request``, sleeping, closing) and the public methods that
    call it, each a few lines that hand straight back to this core, so their behaviour cannot drift.
    """

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
        self._verified_keys: dict[tuple[int, bytes], float] = {}  # (node_small_id, key) -> when verified

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

    def _begin_exchange(self, method: str, path: str) -> _Attempt:
        """Spend one request of the budget and start the clock of one exchange."""
        self._spend()
        return _Attempt(method, path, self.options, self._deadline_s())

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.options.timeout_s)

    def _client_kwargs(self) -> dict[str, Any]:
        """What both httpx clients are built with: no redirects, identity coding, the extra headers."""
        return {
            "base_url": self.base_url,
            "timeout": self._timeout(),
            "follow_redirects": False,
            "verify": _tls_verify(self.options.verify),
            "headers": {"accept-encoding": "identity", **dict(self.options.extra_headers)},
        }

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
        if endpoint not in ENDPOINT_PATHS:
            raise ValueError(f"unknown endpoint {endpoint!r} (one of {', '.join(ENDPOINT_PATHS)})")
        if lock is None or lock.lock is None or lock.public_key is None:
            raise ValueError("a usable lock (with a 32-byte public key) is required to seal a request")
        self._verify_lock_key(lock)
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

    def _verify_lock_key(self, lock: LockRecord | None) -> None:
        """With ``key_source``: raise :class:`UnverifiedLockKey` unless the chain shows ``lock``'s key to
        be the node's attested key (conformance.keycheck). Blocking: it reads the chain (bounded by the
        read timeout and this exchange's deadline). A key verified in the last ``KEY_CHECK_TTL_S`` is
        not read again. Nothing here is a request to the target, so the budget is not spent."""
        source = self.options.key_source
        if source is None or lock is None or lock.lock is None or lock.public_key is None:
            return
        node = source.node_small_id if self.node_face is not None else lock.lock.node_small_id
        if node is None:
            raise UnverifiedLockKey("R15.14", "the node face has no lock to name the node: key_source.node_small_id")
        key = lock.public_key
        when = self._verified_keys.get((node, key))
        if when is not None and time.monotonic() - when < KEY_CHECK_TTL_S:
            return
        from .keycheck import verify_lock_key  # the rulebook imports the catalogue, which imports this module

        verify_lock_key(
            source,
            node,
            key,
            timeout_s=self.options.timeout_s,
            deadline_s=self._deadline_s(),
            verify=self.options.verify,
        )
        self._verified_keys[(node, key)] = time.monotonic()

    def _begin_post(self, prepared: Prepared) -> tuple[ExchangeRecord, _StreamCollector | None, dict[str, Any]]:
        """The record of a prepared request, its stream collector (streams only), and ``request``'s
        keyword arguments."""
        record = ExchangeRecord(
            endpoint=prepared.endpoint,
            streaming=prepared.stream,
            request=prepared.sealed.request,
            request_body=prepared.body,
            exchange=prepared.sealed.exchange,
            plaintext=prepared.plaintext,
            http=HttpRecord("POST", prepared.path, None),
            lock=prepared.lock,
        )
        collector = _StreamCollector(record, self.options.max_chunks) if prepared.stream else None
        arguments: dict[str, Any] = {"content": prepared.body, "headers": prepared.headers}
        if prepared.chunked:
            arguments["chunked"] = True
        if collector is not None:
            arguments["on_chunk"] = collector.feed
        return record, collector, arguments

    def _end_post(self, record: ExchangeRecord, collector: _StreamCollector | None, http: HttpRecord) -> ExchangeRecord:
        """A stream's chunks were recorded as they came (only for 200 text/event-stream: anything else has
        none); a JSON answer is analysed whole."""
        record.http = http
        if collector is not None:
            if http.status == 200 and http.media_type == "text/event-stream":
                collector.finish()
                http.body = b""  # the events are recorded; do not keep the body twice
            return record
        if http.status == 200 and http.media_type == "application/json":
            value = http.json()
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

    def _lock_headers(self) -> dict[str, str]:
        return _json_headers(self._api_key)

    def _lock_retry_delay(self, http: HttpRecord, attempt: int, retries: int | None) -> float | None:
        """How long to wait before lock attempt ``attempt + 1``, or None when ``http`` is the answer.

        Only 429 and 503 are retried (the lock is the one call that is safe to repeat), with exponential
        backoff, at most ``retries`` times (default: the option). Raises :class:`BudgetExceeded` rather
        than sleep before a retry the budget forbids."""
        limit = self.options.lock_retries if retries is None else retries
        if http.status not in (429, 503) or attempt >= limit:
            return None
        self._raise_if_spent()
        return self.options.backoff_s * 2.0**attempt


@dataclass
class _Attempt:
    """One HTTP exchange in progress: its clock, its caps, and every way it can end as a record.

    Both clients read a response through this, so a cap, a stall, a cut-off body or a broken
    connection is the same record in each; only the waiting (threads or the event loop) differs.
    """

    method: str
    path: str
    options: ClientOptions
    limit: float  # this exchange's deadline, in seconds from ``started``
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.limit

    @property
    def head_limit(self) -> float:
        """The response head must arrive within one read timeout (a dripped head, endless 100 Continue)."""
        return min(self.options.timeout_s, self.limit)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.head_limit)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def reader(self, response: httpx.Response, on_chunk: Callable[[bytes], bool] | None) -> _BodyReader:
        """Only an event stream feeds ``on_chunk``."""
        feeder = on_chunk if _is_event_stream(response) else None
        pace = _Pace(self.started, self.head_limit)
        return _BodyReader(self.options.max_response_bytes, self.deadline, feeder, pace)

    def answered(self, response: httpx.Response, reader: _BodyReader) -> HttpRecord:
        error = reader.error or _encoded(response)
        body = reader.body
        if error in ("too-large", "deadline"):
            body = body[:EVIDENCE_PREFIX]  # a truncated body is evidence, not content: keep a bounded prefix
        return HttpRecord(
            self.method,
            self.path,
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            body,
            error=error,
            elapsed_s=self.elapsed(),
        )

    def late_head(self) -> HttpRecord:
        """No status line and headers within one read timeout, though bytes kept coming: a stall."""
        detail = f"the response head did not arrive within the {self.head_limit:g} s read timeout"
        return HttpRecord(self.method, self.path, None, error="drip", detail=detail, elapsed_s=self.elapsed())

    def failed(self, exc: BaseException, *, head_late: bool = False) -> HttpRecord:
        """An exchange that got no response: a timeout, a head too late, the deadline, or the exception's
        class as the error code (and why, in words)."""
        if isinstance(exc, httpx.TimeoutException):
            return HttpRecord(self.method, self.path, None, error="timeout", elapsed_s=self.elapsed())
        if head_late:
            return self.late_head()
        if time.monotonic() >= self.deadline:
            return HttpRecord(self.method, self.path, None, error="deadline", elapsed_s=self.elapsed())
        return HttpRecord(
            self.method,
            self.path,
            None,
            error=type(exc).__name__,
            detail=describe_transport_error(exc),
            elapsed_s=self.elapsed(),
        )


@dataclass
class _BodyReader:
    """Reads a body until its end, a cap, the deadline, a stall, or a transport error; keeps what arrived.

    ``take`` each chunk until it returns True; a transport failure part-way goes to ``broke``, and the
    response keeps its status and partial evidence either way.
    """

    cap: int
    deadline: float
    on_chunk: Callable[[bytes], bool] | None
    pace: _Pace
    buf: bytearray = field(default_factory=bytearray)
    error: str | None = None

    def take(self, chunk: bytes) -> bool:
        """Add one chunk; True when reading must stop (``error`` says why)."""
        if time.monotonic() > self.deadline:
            self.error = "deadline"
            return True
        self.buf += chunk
        if len(self.buf) > self.cap:
            del self.buf[self.cap :]
            self.error = "too-large"
            return True
        stalled = self.pace.problem(len(self.buf))
        if stalled is not None:
            self.error = stalled
            return True
        if self.on_chunk is not None and not self.on_chunk(chunk):
            self.error = "stopped"
            return True
        return False

    def broke(self, exc: BaseException) -> None:
        if isinstance(exc, httpx.TimeoutException):
            self.error = "timeout"
        elif time.monotonic() >= self.deadline:
            self.error = "deadline"  # the client's own timer (watchdog, event loop) cut the read
        else:
            self.error = type(exc).__name__

    @property
    def body(self) -> bytes:
        return bytes(self.buf)


# --- the two clients: I/O only -------------------------------------------------------------------------


class ConfidentialClient(_ClientCore):
    """Synchronous client. ``transport`` lets tests mount respx or an in-process app."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        options: ClientOptions | None = None,
        rng: RandomSource = SYSTEM_RANDOM,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        node_face: NodeFace | None = None,
    ) -> None:
        super().__init__(base_url, api_key, options=options, rng=rng, node_face=node_face)
        self._transport = transport
        self._http = self._new_http()
        self._sleep = time.sleep if sleep is None else sleep

    def _new_http(self) -> httpx.Client:
        return httpx.Client(transport=self._transport, **self._client_kwargs())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
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
        chunked: bool = False,
    ) -> HttpRecord:
        """One HTTP exchange with every cap applied. Transport failures become ``HttpRecord.error``.
        ``chunked`` sends the body with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""
        attempt = self._begin_exchange(method, path)
        body: bytes | Iterator[bytes] = _pieces(content) if chunked else content
        return self._finished(self._exchange(attempt, body, _closing(headers) if chunked else headers, on_chunk))

    def _exchange(
        self,
        attempt: _Attempt,
        content: bytes | Iterator[bytes],
        headers: Mapping[str, str] | None,
        on_chunk: Callable[[bytes], bool] | None,
    ) -> HttpRecord:
        # The per-read timeout restarts with every byte, so a server that drips its status line and
        # headers never trips it; a watchdog closes the connection when the exchange's deadline passes.
        http = self._http
        watchdog = threading.Timer(attempt.limit + TIMER_GRACE_S, http.close)
        watchdog.daemon = True
        watchdog.start()
        # The head (status line and headers, after any 100 Continue) must come within one read timeout:
        # a head dripped byte by byte, or endless 100 Continue, keeps every read alive until the deadline.
        head_arrived = threading.Event()

        def late_head() -> None:
            if not head_arrived.is_set():
                http.close()

        head_timer = threading.Timer(attempt.head_limit + TIMER_GRACE_S, late_head)
        head_timer.daemon = True
        head_timer.start()
        try:
            with http.stream(
                attempt.method, attempt.path, content=content, headers=dict(headers or {}), timeout=attempt.timeout()
            ) as response:
                head_arrived.set()
                head_timer.cancel()
                reader = attempt.reader(response, on_chunk)
                try:
                    for chunk in _raw(response):
                        if reader.take(chunk):
                            break
                except TRANSPORT_FAILURES as exc:
                    reader.broke(exc)
                return attempt.answered(response, reader)
        except TRANSPORT_FAILURES as exc:
            # Either timer closed the client before the head came: the head was late, whichever fired
            # (the head's never fires after the watchdog), as in the async client.
            return attempt.failed(exc, head_late=http.is_closed and not head_arrived.is_set())
        finally:
            head_timer.cancel()
            watchdog.cancel()
            if http.is_closed:  # a timer fired: start a fresh connection pool for the next exchange
                self._http = self._new_http()

    def lock(
        self, model: str, *, max_num_tokens: int | None = None, timeout: int | None = None, retries: int | None = None
    ) -> LockRecord:
        """Take a lock, retrying 429 and 503 with exponential backoff (``retries`` overrides the option)."""
        if self.node_face is not None:
            return self.node_face.lock_record(model)
        body = self._lock_body(model, max_num_tokens, timeout)
        attempt = 0
        while True:
            http = self.request("POST", LOCK_PATH, content=body, headers=self._lock_headers())
            delay = self._lock_retry_delay(http, attempt, retries)
            if delay is None:
                return analyse_lock(http)
            self._sleep(delay)
            attempt += 1

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
        """Seal ``plaintext`` under ``lock`` and send it (``post_prepared``)."""
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
        """Send a request ``prepare`` sealed, exactly as prepared; record the answer."""
        record, collector, arguments = self._begin_post(prepared)
        return self._end_post(record, collector, self.request("POST", prepared.path, **arguments))


class AsyncConfidentialClient(_ClientCore):
    """Asynchronous client with the same methods, behaviour, records and exceptions as
    :class:`ConfidentialClient` (``aclose`` and ``async with`` for ``close`` and ``with``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        options: ClientOptions | None = None,
        rng: RandomSource = SYSTEM_RANDOM,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        node_face: NodeFace | None = None,
    ) -> None:
        super().__init__(base_url, api_key, options=options, rng=rng, node_face=node_face)
        self._http = httpx.AsyncClient(transport=transport, **self._client_kwargs())
        self._sleep = asyncio.sleep if sleep is None else sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
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
        chunked: bool = False,
    ) -> HttpRecord:
        """One HTTP exchange with every cap applied. Transport failures become ``HttpRecord.error``.
        ``chunked`` sends the body with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""
        attempt = self._begin_exchange(method, path)
        body: bytes | AsyncIterator[bytes] = _apieces(content) if chunked else content
        sent = _closing(headers) if chunked else headers
        try:  # a last resort: every step below has a timer of its own that ends it sooner
            record = await asyncio.wait_for(
                self._exchange(attempt, body, sent, on_chunk), attempt.limit + 2 * TIMER_GRACE_S
            )
        except TimeoutError as exc:
            record = attempt.failed(exc)
        return self._finished(record)

    async def _exchange(
        self,
        attempt: _Attempt,
        content: bytes | AsyncIterator[bytes],
        headers: Mapping[str, str] | None,
        on_chunk: Callable[[bytes], bool] | None,
    ) -> HttpRecord:
        try:
            stream = self._http.stream(
                attempt.method, attempt.path, content=content, headers=dict(headers or {}), timeout=attempt.timeout()
            )
            try:  # the head within one read timeout, as in the sync client (a dripped head, 100 Continue)
                async with asyncio.timeout(attempt.head_limit + TIMER_GRACE_S):
                    response = await stream.__aenter__()
            except TimeoutError as exc:
                return attempt.failed(exc, head_late=True)
            try:
                reader = attempt.reader(response, on_chunk)
                try:  # the body within the deadline, as the sync client's watchdog ensures
                    async with asyncio.timeout(attempt.deadline + TIMER_GRACE_S - time.monotonic()):
                        async for chunk in _araw(response):
                            if reader.take(chunk):
                                break
                except TRANSPORT_FAILURES as exc:
                    reader.broke(exc)
                return attempt.answered(response, reader)
            finally:
                await stream.__aexit__(None, None, None)
        except TRANSPORT_FAILURES as exc:
            return attempt.failed(exc)

    async def lock(
        self, model: str, *, max_num_tokens: int | None = None, timeout: int | None = None, retries: int | None = None
    ) -> LockRecord:
        """Take a lock, retrying 429 and 503 with exponential backoff (``retries`` overrides the option)."""
        if self.node_face is not None:
            return self.node_face.lock_record(model)
        body = self._lock_body(model, max_num_tokens, timeout)
        attempt = 0
        while True:
            http = await self.request("POST", LOCK_PATH, content=body, headers=self._lock_headers())
            delay = self._lock_retry_delay(http, attempt, retries)
            if delay is None:
                return analyse_lock(http)
            await self._sleep(delay)
            attempt += 1

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
        """Seal ``plaintext`` under ``lock`` and send it (``post_prepared``)."""
        if self.options.key_source is not None:  # the chain is read off the event loop; prepare finds it verified
            await asyncio.to_thread(self._verify_lock_key, lock)
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
        return await self.post_prepared(prepared)

    async def post_prepared(self, prepared: Prepared) -> ExchangeRecord:
        """Send a request ``prepare`` sealed, exactly as prepared; record the answer."""
        record, collector, arguments = self._begin_post(prepared)
        return self._end_post(record, collector, await self.request("POST", prepared.path, **arguments))


CHUNKED_PIECE = 64 * 1024


def _pieces(content: bytes) -> Iterator[bytes]:
    """``content`` as an iterator: httpx frames an iterator with ``Transfer-Encoding: chunked``, so a
    node sees a body whose size no header announces and must count it as it reads (R3.18)."""
    for start in range(0, len(content), CHUNKED_PIECE):
        yield content[start : start + CHUNKED_PIECE]


async def _apieces(content: bytes) -> AsyncIterator[bytes]:
    for piece in _pieces(content):
        yield piece


def _closing(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` with ``Connection: close``: a node may answer a chunked body before it has read it all
    (413 at its limit), and a connection with a request body half sent cannot carry the next request."""
    return {**(headers or {}), "connection": "close"}


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
