"""The sync and async reference clients cannot drift apart: same methods, same signatures, same outcomes.

Two halves. The first compares the two classes with :mod:`inspect`: the same public names (``close``,
``with`` are ``aclose``, ``async with`` in the async client), and for each pair the same parameters
(names, kinds, defaults, annotations as strings) and return annotation, the async one a coroutine
function where the sync one is a plain method, and every method that does no I/O the very same
function object (it lives in the shared core, so it cannot differ). The comparer is shown to catch
synthetic drift, including the one this file was written after (``post_prepared`` on one client only).

The second drives both clients against the same local servers (the embedded mock node, the hostile
node of tests/hostile_server.py, and an in-memory transport that raises) and asserts that the same
failure is the same exception class, or the same record fields, in each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from conformance.budget import RunStopped
from conformance.client import (
    CLIENT_EXCEPTIONS,
    EVIDENCE_PREFIX,
    AsyncConfidentialClient,
    BudgetExceeded,
    ClientOptions,
    ConfidentialClient,
)
from conformance.guard import RunGuard
from conformance.protocol import SeededRandom, jsonwire
from conformance.records import ExchangeRecord, HttpRecord, LockRecord
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.testing import running_node
from tests.hostile_server import drip_headers_server, hostile_node, raw_target

# --- the signatures ----------------------------------------------------------------------------------

# The only names that differ, after httpx's own convention (Client.close, AsyncClient.aclose).
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
# The only annotations that differ: what does the I/O (a transport, a sleep) is sync or async by nature.
IO_ANNOTATIONS = {
    ("__init__", "transport"): ("httpx.BaseTransport | None", "httpx.AsyncBaseTransport | None"),
    ("__init__", "sleep"): ("Callable[[float], None] | None", "Callable[[float], Awaitable[None]] | None"),
}

Shape = tuple[str, str, str, str]  # a parameter: name, kind, default (repr), annotation (string)


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _shape(parameter: inspect.Parameter) -> Shape:
    default = "<none>" if parameter.default is inspect.Parameter.empty else repr(parameter.default)
    annotation = "<none>" if parameter.annotation is inspect.Parameter.empty else str(parameter.annotation)
    return parameter.name, parameter.kind.name, default, annotation


def _pairs(sync_cls: type, async_cls: type, renamed: dict[str, str]) -> list[tuple[str, str]]:
    names = sorted(public_names(sync_cls) | public_names(async_cls))
    return [("__init__", "__init__"), *((n, n) for n in names), *renamed.items()]


def parity_problems(
    sync_cls: type,
    async_cls: type,
    *,
    renamed: dict[str, str] = RENAMED,
    io_annotations: dict[tuple[str, str], tuple[str, str]] = IO_ANNOTATIONS,
) -> list[str]:
    """Every way ``async_cls`` is not the async twin of ``sync_cls``; empty when it is."""
    problems: list[str] = []
    inverse = {async_name: sync_name for sync_name, async_name in renamed.items()}
    sync_side = public_names(sync_cls)
    async_side = {inverse.get(name, name) for name in public_names(async_cls)}
    for name in sorted(sync_side - async_side):
        problems.append(f"{name}: only on {sync_cls.__name__}")
    for name in sorted(async_side - sync_side):
        problems.append(f"{renamed.get(name, name)}: only on {async_cls.__name__}")
    for sync_name, async_name in _pairs(sync_cls, async_cls, renamed):
        sync_fn, async_fn = getattr(sync_cls, sync_name, None), getattr(async_cls, async_name, None)
        where = sync_name if sync_name == async_name else f"{sync_name}/{async_name}"
        if sync_fn is None or async_fn is None:
            if sync_fn is not async_fn and sync_name.startswith("__"):  # a public one is reported above
                problems.append(f"{where}: only on {(sync_cls if async_fn is None else async_cls).__name__}")
            continue
        if inspect.iscoroutinefunction(sync_fn):
            problems.append(f"{where}: a coroutine function on {sync_cls.__name__}")
        shared = sync_fn is async_fn
        if not shared and sync_name != "__init__" and not inspect.iscoroutinefunction(async_fn):
            problems.append(
                f"{where}: a plain method of its own on {async_cls.__name__} (async def for I/O; "
                "anything else belongs in the shared core)"
            )
        if shared:
            continue
        sync_sig, async_sig = inspect.signature(sync_fn), inspect.signature(async_fn)
        sync_params = [_shape(p) for p in sync_sig.parameters.values()]
        async_params = [_shape(p) for p in async_sig.parameters.values()]
        for i, (name, _kind, _default, annotation) in enumerate(sync_params):
            pair = io_annotations.get((sync_name, name))
            if pair is not None and i < len(async_params) and async_params[i][0] == name:
                if (annotation, async_params[i][3]) != pair:
                    problems.append(f"{where}({name}): annotations {annotation!r} and {async_params[i][3]!r}")
                sync_params[i] = (*sync_params[i][:3], "<io>")
                async_params[i] = (*async_params[i][:3], "<io>")
        if sync_params != async_params:
            problems.append(f"{where}: parameters differ: {sync_params} != {async_params}")
        if str(sync_sig.return_annotation) != str(async_sig.return_annotation):
            problems.append(f"{where}: returns {sync_sig.return_annotation!r} != {async_sig.return_annotation!r}")
    return problems


def test_the_two_clients_have_the_same_methods_and_signatures() -> None:
    assert parity_problems(ConfidentialClient, AsyncConfidentialClient) == []


def test_the_public_surface_is_what_the_checks_use() -> None:
    # Named, so that a method added to one client alone, or a rename, shows here as well as above.
    assert public_names(ConfidentialClient) == {
        "close",
        "headers",
        "lock",
        "post_prepared",
        "prepare",
        "request",
        "send",
    }
    assert public_names(AsyncConfidentialClient) == {
        "aclose",
        "headers",
        "lock",
        "post_prepared",
        "prepare",
        "request",
        "send",
    }
    for name in ("lock", "send", "post_prepared", "request", "aclose", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(AsyncConfidentialClient, name)), name
    for name in ("lock", "send", "post_prepared", "request", "close", "__enter__", "__exit__"):
        assert not inspect.iscoroutinefunction(getattr(ConfidentialClient, name)), name
    assert ConfidentialClient.prepare is AsyncConfidentialClient.prepare, "sealing lives once, in the core"


# Synthetic pairs: the comparer must see each kind of drift.


class _Sync:
    def __init__(self, url: str, *, sleep: Callable[[float], None] | None = None) -> None:
        self.url = url

    def close(self) -> None: ...

    def send(self, endpoint: str, *, stream: bool = False) -> int:
        return 0

    def post_prepared(self, prepared: object) -> int:
        return 0

    def shared(self) -> int:
        return 1


class _Async:
    def __init__(self, url: str, *, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.url = url

    async def aclose(self) -> None: ...

    async def send(self, endpoint: str, *, stream: bool = False) -> int:
        return 0

    async def post_prepared(self, prepared: object) -> int:
        return 0

    shared = _Sync.shared


_SYNTHETIC_IO = {("__init__", "sleep"): ("Callable[[float], None] | None", "Callable[[float], Awaitable[None]] | None")}


def _members(cls: type) -> dict[str, Any]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("__") or k == "__init__"}


def _variant(**members: Any) -> type:
    """``_Async`` with some members replaced (None deletes one)."""
    namespace = {**_members(_Async), **members}
    return type("_Drifted", (), {k: v for k, v in namespace.items() if v is not None})


async def _send_default(self: object, endpoint: str, *, stream: bool = True) -> int:
    return 0


async def _send_renamed(self: object, endpoint: str, *, streaming: bool = False) -> int:
    return 0


async def _send_positional(self: object, endpoint: str, stream: bool = False) -> int:
    return 0


async def _send_annotation(self: object, endpoint: bytes, *, stream: bool = False) -> int:
    return 0


async def _send_returns(self: object, endpoint: str, *, stream: bool = False) -> str:
    return ""


def _send_plain(self: object, endpoint: str, *, stream: bool = False) -> int:
    return 0


def _shared_copy(self: object) -> int:
    return 1


def _init_default(
    self: object, url: str = "http://node", *, sleep: Callable[[float], Awaitable[None]] | None = None
) -> None:
    pass


@pytest.mark.parametrize(
    ("drifted", "expected"),
    [
        (_variant(post_prepared=None), "post_prepared: only on _Sync"),  # the drift this file was written after
        (_variant(extra=_send_default), "extra: only on _Drifted"),
        (_variant(send=_send_default), "send: parameters differ"),
        (_variant(send=_send_renamed), "send: parameters differ"),
        (_variant(send=_send_positional), "send: parameters differ"),
        (_variant(send=_send_annotation), "send: parameters differ"),
        (_variant(send=_send_returns), "send: returns"),
        (_variant(send=_send_plain), "send: a plain method of its own"),
        (_variant(shared=_shared_copy), "shared: a plain method of its own"),
        (_variant(aclose=None), "close: only on _Sync"),
        (_variant(__init__=_init_default), "__init__: parameters differ"),
    ],
)
def test_the_comparer_sees_drift(drifted: type, expected: str) -> None:
    assert parity_problems(_Sync, _Async, io_annotations=_SYNTHETIC_IO) == [], "the control pair is twins"
    problems = parity_problems(_Sync, drifted, io_annotations=_SYNTHETIC_IO)
    assert any(p.startswith(expected) for p in problems), problems


def test_the_comparer_sees_an_async_method_on_the_sync_side_and_a_wrong_io_annotation() -> None:
    sync_async = type("_SyncAsync", (), {**_members(_Sync), "send": _send_default})
    assert any("a coroutine function on _SyncAsync" in p for p in parity_problems(sync_async, _Async))
    wrong_io = {("__init__", "sleep"): ("Callable[[float], None] | None", "Callable[[float], None] | None")}
    assert any(
        p.startswith("__init__(sleep): annotations") for p in parity_problems(_Sync, _Async, io_annotations=wrong_io)
    )


# --- the same failure, the same outcome ----------------------------------------------------------------

MODEL = DEFAULT_MODELS[0]
KEY = "parity-test-key"
PLAINTEXT = jsonwire.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
STREAM_PLAINTEXT = jsonwire.dumps({**jsonwire.loads(PLAINTEXT), "stream": True})
MiB = 1024 * 1024
TIGHT = ClientOptions(timeout_s=0.5, deadline_s=1.0, max_response_bytes=1 * MiB, max_chunks=50, lock_retries=0)

_RUNS = itertools.count()
Outcome = tuple[str, Any]  # ("raised", exception class name and message) or ("returned", record fields)
Scenario = Callable[[Any], Any]  # given a client wrapped to look synchronous, returns a record


class _SyncFace:
    """Either client behind one synchronous face, so one scenario drives both."""

    def __init__(self, client: ConfidentialClient | AsyncConfidentialClient, runner: asyncio.Runner | None) -> None:
        self.client, self._runner = client, runner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self._runner is None or not inspect.iscoroutinefunction(method):
            return method
        runner = self._runner
        return lambda *args, **kwargs: runner.run(method(*args, **kwargs))


def _http_fields(http: HttpRecord, *, body: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "method": http.method,
        "path": http.path,
        "status": http.status,
        "error": http.error,
        "detail": http.detail,
        "content-type": http.headers.get("content-type"),
        "content-length": http.headers.get("content-length"),
    }
    if body:
        fields["body"] = http.body
    return fields


def fields(record: Any, *, body: bool = True) -> dict[str, Any]:
    """The fields of a record that must not depend on which client took it (not timings, not dates)."""
    if isinstance(record, LockRecord):
        return {
            "http": _http_fields(record.http, body=body),
            "ok": record.ok,
            "parse_error": record.parse_error,
            "public_key": record.public_key,
        }
    if isinstance(record, ExchangeRecord):
        return {
            "http": _http_fields(record.http, body=body),
            "stream_error": record.stream_error,
            "chunks": len(record.chunks),
            "response": record.response is not None,
        }
    assert isinstance(record, HttpRecord), type(record)
    return _http_fields(record, body=body)


def outcome(scenario: Scenario, client: ConfidentialClient | AsyncConfidentialClient, *, body: bool) -> Outcome:
    runner = asyncio.Runner() if isinstance(client, AsyncConfidentialClient) else None
    face = _SyncFace(client, runner)
    try:
        return "returned", fields(scenario(face), body=body)
    except CLIENT_EXCEPTIONS as exc:  # anything else fails the test: neither client may raise it
        return "raised", (type(exc).__name__, str(exc))
    finally:
        if runner is None:
            assert isinstance(client, ConfidentialClient)
            client.close()
        else:
            assert isinstance(client, AsyncConfidentialClient)
            runner.run(client.aclose())
            runner.close()


def both(
    url: str,
    scenario: Scenario,
    *,
    options: ClientOptions = TIGHT,
    api_key: str | None = KEY,
    body: bool = True,
    transports: tuple[httpx.BaseTransport, httpx.AsyncBaseTransport] | None = None,
) -> Outcome:
    """Run ``scenario`` with each client (the same options and sleeps); assert the same outcome. The
    seeds differ, from each other and from every earlier run: the mock node refuses a request nonce it
    has seen (409), and rightly so."""
    run = next(_RUNS)
    sleeps: dict[str, list[float]] = {"sync": [], "async": []}

    async def async_sleep(delay: float) -> None:
        sleeps["async"].append(delay)

    sync = ConfidentialClient(
        url,
        api_key,
        options=dataclasses.replace(options),
        rng=SeededRandom(f"parity sync {run}"),
        transport=None if transports is None else transports[0],
        sleep=sleeps["sync"].append,
    )
    sync_outcome = outcome(scenario, sync, body=body)
    aclient = AsyncConfidentialClient(
        url,
        api_key,
        options=dataclasses.replace(options),
        rng=SeededRandom(f"parity async {run}"),
        transport=None if transports is None else transports[1],
        sleep=async_sleep,
    )
    async_outcome = outcome(scenario, aclient, body=body)
    assert sync_outcome == async_outcome
    assert sleeps["sync"] == sleeps["async"], "the same retries, with the same backoff"
    assert sync.requests_sent == aclient.requests_sent
    return sync_outcome


def lock(client: Any) -> LockRecord:
    record: LockRecord = client.lock(MODEL)
    return record


def send(*, stream: bool = False) -> Scenario:
    def scenario(client: Any) -> ExchangeRecord:
        taken = client.lock(MODEL)
        assert taken.ok, (taken.http.status, taken.http.error, taken.parse_error)
        plaintext = STREAM_PLAINTEXT if stream else PLAINTEXT
        record: ExchangeRecord = client.send("chat", plaintext, lock=taken, model_name=MODEL, stream=stream)
        return record

    return scenario


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with running_node(MockConfig(api_keys=(KEY,))) as url:
        yield url


def test_a_served_exchange_is_the_same_record(mock_url: str) -> None:
    kind, record = both(mock_url, send(), options=ClientOptions(), body=False)  # sealed with fresh nonces
    assert kind == "returned" and record["http"]["status"] == 200 and record["response"]
    kind, record = both(mock_url, send(stream=True), options=ClientOptions(), body=False)
    assert kind == "returned" and record["chunks"] > 0 and record["stream_error"] is None


def test_a_refused_lock_is_the_same_record(mock_url: str) -> None:
    kind, record = both(mock_url, lock, api_key="not-the-key")
    assert kind == "returned" and record["http"]["status"] == 401 and not record["ok"]


def test_a_refused_lock_is_retried_the_same_way(mock_url: str) -> None:
    options = ClientOptions(lock_retries=2, backoff_s=0.25)
    kind, record = both(mock_url, lambda client: client.lock("no/such-model"), options=options)
    assert kind == "returned" and record["http"]["status"] == 503  # and both slept 0.25 then 0.5 (``both``)


def test_a_budget_spent_on_lock_retries_is_the_same_exception(mock_url: str) -> None:
    options = ClientOptions(lock_retries=5, max_requests=2)
    kind, (name, _message) = both(mock_url, lambda client: client.lock("no/such-model"), options=options)
    assert (kind, name) == ("raised", BudgetExceeded.__name__)


def test_sending_on_a_refused_lock_is_the_same_exception(mock_url: str) -> None:
    def scenario(client: Any) -> ExchangeRecord:
        refused = client.lock(MODEL)
        record: ExchangeRecord = client.send("chat", PLAINTEXT, lock=refused, model_name=MODEL)
        return record

    kind, (name, _message) = both(mock_url, scenario, api_key="not-the-key")
    assert (kind, name) == ("raised", "ValueError")


def test_an_unknown_endpoint_is_the_same_exception(mock_url: str) -> None:
    def scenario(client: Any) -> ExchangeRecord:
        record: ExchangeRecord = client.send("audio", PLAINTEXT, lock=client.lock(MODEL), model_name=MODEL)
        return record

    kind, (name, message) = both(mock_url, scenario)
    assert (kind, name) == ("raised", "ValueError") and "unknown endpoint 'audio'" in message


def test_a_stopped_run_is_the_same_exception(mock_url: str) -> None:
    guard = RunGuard(0.0, timeout_s=1, deadline_s=1)
    kind, (name, _message) = both(mock_url, lock, options=ClientOptions(guard=guard))
    assert (kind, name) == ("raised", RunStopped.__name__)


@pytest.mark.parametrize("stream", [False, True])
def test_an_over_size_body_is_the_same_record(stream: bool) -> None:
    with hostile_node("huge-body") as node:
        kind, record = both(node.url, send(stream=stream))
    assert kind == "returned" and record["http"]["status"] == 200
    assert record["http"]["error"] == "too-large" and len(record["http"]["body"]) <= EVIDENCE_PREFIX


def test_an_over_size_lock_is_the_same_record() -> None:
    options = dataclasses.replace(TIGHT, max_response_bytes=64 * 1024)
    with hostile_node("lock-long-key") as node:
        kind, record = both(node.url, lock, options=options)
    assert kind == "returned" and record["http"]["error"] == "too-large" and not record["ok"]


def test_a_body_cut_off_half_way_is_the_same_record() -> None:
    with raw_target("mid-body-close") as server:
        kind, record = both(server.url, send())
    assert kind == "returned" and record["http"]["status"] == 200 and record["http"]["content-length"] == "4096"
    assert record["http"]["error"] is not None and 0 < len(record["http"]["body"]) < 4096


def test_a_lock_cut_off_half_way_is_the_same_record() -> None:
    with raw_target("lock-mid-body-close") as server:
        kind, record = both(server.url, lock)
    assert kind == "returned" and record["http"]["error"] is not None and not record["ok"]


def test_a_stalled_head_is_the_same_timeout() -> None:
    with hostile_node("stall") as node:
        kind, record = both(node.url, send())
    assert kind == "returned" and (record["http"]["status"], record["http"]["error"]) == (None, "timeout")


@pytest.mark.parametrize("timeout_s", [0.25, 0.5], ids=["read-timeout-first", "read-timeout-is-the-deadline"])
def test_a_dripped_head_is_the_same_stall(timeout_s: float) -> None:
    # When the read timeout is the whole deadline (as near the end of a --run-deadline), the head's timer
    # and the exchange's fire together: still a late head in both clients, never "deadline" in one.
    options = dataclasses.replace(TIGHT, timeout_s=timeout_s, deadline_s=0.5)
    with drip_headers_server() as server:
        kind, record = both(server.url, lock, options=options)
    assert kind == "returned" and (record["http"]["status"], record["http"]["error"]) == (None, "drip")
    assert record["http"]["detail"] == f"the response head did not arrive within the {timeout_s:g} s read timeout"


def test_a_slow_drip_is_cut_at_the_same_deadline() -> None:
    options = dataclasses.replace(TIGHT, deadline_s=0.5)  # a byte every 50 ms: the read timeout never fires
    with hostile_node("slow-drip") as node:
        kind, record = both(node.url, send(), options=options, body=False)  # how many bytes came is timing
    assert kind == "returned" and (record["http"]["status"], record["http"]["error"]) == (200, "deadline")


def test_a_refused_connection_is_the_same_record() -> None:
    kind, record = both("http://127.0.0.1:9", lock)  # the discard port: nothing listens on loopback
    assert kind == "returned" and record["http"]["status"] is None and record["http"]["error"] == "ConnectError"


# Failures no real server produces on demand: a transport that raises. The sync client turned an OSError
# or a RuntimeError into a record while the async one let it escape; both now record it.


class _Failing(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Raises ``exc`` for every request, or (``after_head``) answers 200 with a body that breaks part-way."""

    def __init__(self, exc: Exception, *, after_head: bool = False) -> None:
        self.exc, self.after_head = exc, after_head

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer()

    def _answer(self) -> httpx.Response:
        if not self.after_head:
            raise self.exc
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=_Breaking(self.exc))


class _Breaking(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"public_key":'
        raise self.exc

    async def __aiter__(self) -> Any:
        yield b'{"public_key":'
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [OSError("no route"), RuntimeError("the client was closed"), httpx.ConnectError("refused"), httpx.ReadTimeout("t")],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("after_head", [False, True], ids=["before-head", "mid-body"])
def test_a_transport_failure_is_the_same_record(exc: Exception, after_head: bool) -> None:
    transport = _Failing(exc, after_head=after_head)
    kind, record = both("http://node.test", lock, transports=(transport, transport))
    assert kind == "returned" and not record["ok"]
    expected = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    assert record["http"]["error"] == expected
    assert record["http"]["status"] == (200 if after_head else None)
    assert record["http"]["body"] == (b'{"public_key":' if after_head else b"")
