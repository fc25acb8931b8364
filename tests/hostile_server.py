"""A hostile Atoma node for tests: a server that lies, in every way the suite must survive.

    with hostile_node("huge-body") as node:
        ...  # point a ConfidentialClient at node.url

A raw ASGI app (no framework, so every byte is ours) served by uvicorn on a loopback ephemeral port in
a background thread, like ``mock_node.testing.running_node``. ``/v1/nodes/lock`` answers a correct
lock (a real X25519 key from a fixed seed) unless the behaviour's name starts with ``lock-``; the
confidential endpoints answer with the selected behaviour:

- ``huge-body``: 200 application/json streamed fast up to 100 MiB (an event stream request gets one
  event that never ends its line, the SSE parser's worst case);
- ``endless-stream``: 200 text/event-stream of valid-looking envelopes, forever;
  ``endless-comments`` (keep-alive comments only) and ``endless-junk`` (non-JSON events) likewise;
- ``slow-drip``: headers at once, then one body byte every 50 ms, never finishing;
- ``invalid-utf8``, ``invalid-json``, ``deep-json`` (200,000 nested ``[``): 200 with a broken body,
  as JSON or as an event stream, whichever the request asked for;
- ``wrong-content-type``: text/html for a JSON request, application/json (with event-stream bytes) for
  a stream request; ``text-plain``: a text/plain body for either;
- ``redirect``: 307 to ``HostileNode.redirect_to`` (another host, or an https URL).

``lock-<behaviour>`` applies the same behaviour to the lock instead (the confidential endpoints then
answer 400). Everything the server does is bounded by time: an endless response stops when the
client disconnects, when the server stops, or after ``MAX_RESPONSE_S``.

Two raw TCP helpers cover what an ASGI server cannot do: :func:`drip_headers_server` drips the
status line and headers themselves, and :func:`connection_counter` is a redirect target that counts
every connection it is offered.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol import jsonwire
from conformance.protocol.b64 import b64encode
from conformance.protocol.primitives import x25519_public_key

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOCK_PATH = "/v1/nodes/lock"
CONFIDENTIAL_PREFIX = "/v1/confidential/"
NODE_SEED = bytes(range(1, 33))  # a fixed private key: the lock is real, reproducible and not low-order
NODE_PUBLIC_KEY = x25519_public_key(NODE_SEED)
LOCK_BODY = jsonwire.dumps(
    {
        "public_key": b64encode(NODE_PUBLIC_KEY),
        "node_small_id": 1,
        "stack_entry_digest": None,
        "stack_small_id": 7,
    }
)

MAX_RESPONSE_S = 30.0  # no response of this server lasts longer, whatever the client does
HUGE_BYTES = 100 * 1024 * 1024
DRIP_INTERVAL_S = 0.05
DEEP_NESTING = 200_000

BEHAVIOURS = (
    "huge-body",
    "endless-stream",
    "endless-comments",
    "endless-junk",
    "slow-drip",
    "invalid-utf8",
    "invalid-json",
    "deep-json",
    "wrong-content-type",
    "text-plain",
    "redirect",
)
LOCK_BEHAVIOURS = tuple(f"lock-{b}" for b in BEHAVIOURS)

_CHUNK = b"A" * 65536
_ENVELOPE_EVENT = b"data: " + jsonwire.dumps(
    {
        "ciphertext": b64encode(bytes(48)),
        "nonce": b64encode(bytes(12)),
        "usage": None,
        "signature": None,
        "response_hash": b64encode(bytes(32)),
    }
)
_JUNK_EVENT = b"data: not an envelope\n\n"
_COMMENT = b": keep-alive\n\n"
_BATCH = 64  # events per write: endless streams are fast, so caps are reached before deadlines
_DEEP = b"[" * DEEP_NESTING
_INVALID_UTF8 = b'{"nonce":"\xff\xfe\xfd","ciphertext":"\xc3\x28"}'


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    accept: str
    body_bytes: int
    at: float


@dataclass
class HostileNode:
    """The running server: its URL, its behaviour (may be changed between requests), what it saw."""

    url: str
    behaviour: str
    redirect_to: str = "http://127.0.0.2:9/v1/confidential/chat/completions"
    requests: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    open_responses: int = 0  # responses still being written (an endless one that did not stop shows here)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


class _Response:
    """Writes one response, stopping early when the client went away, the server stops, or time is up."""

    def __init__(self, node: HostileNode, send: Send, gone: Callable[[], bool]) -> None:
        self._node, self._send, self._gone = node, send, gone
        self._until = time.monotonic() + MAX_RESPONSE_S

    @property
    def over(self) -> bool:
        return self._gone() or self._node.stopping.is_set() or time.monotonic() > self._until

    async def start(self, status: int, content_type: str | None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if content_type is not None:
            raw.append((b"content-type", content_type.encode("latin-1")))
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def end(self) -> None:
        await self.body(b"", more=False)

    async def whole(self, status: int, content_type: str | None, data: bytes) -> None:
        await self.start(status, content_type, (("content-length", str(len(data))),))
        await self.body(data, more=False)

    async def repeat(self, head: bytes, unit: bytes, *, limit: int = HUGE_BYTES) -> None:
        """``head`` then ``unit`` again and again, as fast as the client reads, until ``limit`` or ``over``."""
        await self.body(head)
        sent = len(head)
        while sent < limit and not self.over:
            await self.body(unit)
            sent += len(unit)
            await asyncio.sleep(0)  # let the disconnect watcher run
        await self.end()

    async def drip(self, data: bytes) -> None:
        """``data`` one byte at a time, cycling forever (until ``over``), a byte every 50 ms."""
        i = 0
        while not self.over:
            await self.body(data[i % len(data) : i % len(data) + 1])
            i += 1
            await asyncio.sleep(DRIP_INTERVAL_S)
        await self.end()


async def _behave(behaviour: str, stream: bool, out: _Response, node: HostileNode, valid: bytes) -> None:
    """Answer with ``behaviour``; ``stream`` says the client asked for an event stream; ``valid`` is a
    plausible JSON body for the endpoint (used where the lie is in the framing, not the bytes)."""
    if behaviour == "huge-body":
        if stream:  # one event whose only line never ends
            await out.start(200, "text/event-stream")
            await out.repeat(b"data: ", _CHUNK)
        else:
            await out.start(200, "application/json")
            await out.repeat(b'{"nonce":"', _CHUNK)
    elif behaviour == "endless-stream":
        await out.start(200, "text/event-stream")
        await out.repeat(b"", (_ENVELOPE_EVENT + b"\n\n") * _BATCH)
    elif behaviour == "endless-comments":
        await out.start(200, "text/event-stream")
        await out.repeat(b"", _COMMENT * _BATCH)
    elif behaviour == "endless-junk":
        await out.start(200, "text/event-stream")
        await out.repeat(b"", _JUNK_EVENT * _BATCH)
    elif behaviour == "slow-drip":
        if stream:
            await out.start(200, "text/event-stream")
            await out.drip(_ENVELOPE_EVENT)  # never reaches the blank line that would end the event
        else:
            await out.start(200, "application/json")
            await out.drip(valid)
    elif behaviour == "invalid-utf8":
        if stream:
            await out.whole(200, "text/event-stream", b"data: " + _INVALID_UTF8 + b"\n\n")
        else:
            await out.whole(200, "application/json", _INVALID_UTF8)
    elif behaviour == "invalid-json":
        if stream:
            await out.whole(200, "text/event-stream", b"data: {not json\n\n" * 3)
        else:
            await out.whole(200, "application/json", b"{not json")
    elif behaviour == "deep-json":
        if stream:
            await out.whole(200, "text/event-stream", b"data: " + _DEEP + b"\n\n")
        else:
            await out.whole(200, "application/json", _DEEP)
    elif behaviour == "wrong-content-type":
        if stream:
            await out.whole(200, "application/json", _ENVELOPE_EVENT + b"\n\n")
        else:
            await out.whole(200, "text/html; charset=utf-8", b"<html><body>" + valid + b"</body></html>")
    elif behaviour == "text-plain":
        await out.whole(200, "text/plain", _ENVELOPE_EVENT + b"\n\n" if stream else valid)
    elif behaviour == "redirect":
        await out.start(307, "text/plain", (("location", node.redirect_to), ("content-length", "0")))
        await out.end()
    else:
        raise ValueError(f"unknown behaviour {behaviour!r}")


def make_app(node: HostileNode) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        size = 0
        while True:  # read the request body to its end, counting and discarding it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        accept = headers.get("accept", "")
        node.requests.append(Seen(scope["method"], path, accept, size, time.monotonic()))
        watcher = asyncio.ensure_future(receive())  # completes with http.disconnect when the client goes
        out = _Response(node, send, watcher.done)
        node.open_responses += 1
        try:
            behaviour = node.behaviour
            on_lock = behaviour.startswith("lock-")
            if path == LOCK_PATH:
                if on_lock:
                    await _behave(behaviour.removeprefix("lock-"), False, out, node, LOCK_BODY)
                else:
                    await out.whole(200, "application/json", LOCK_BODY)
            elif path.startswith(CONFIDENTIAL_PREFIX) and not on_lock:
                await _behave(behaviour, "text/event-stream" in accept, out, node, _ENVELOPE_EVENT[6:])
            else:
                error = jsonwire.dumps({"error": {"code": "BAD_REQUEST", "message": "no such route here"}})
                await out.whole(400 if path.startswith(CONFIDENTIAL_PREFIX) else 404, "application/json", error)
        finally:
            node.open_responses -= 1
            watcher.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await watcher

    return app


def _loopback_socket(host: str) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are TCP
    # (see mock_node.testing), and without it small writes wait for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def hostile_node(behaviour: str, host: str = "127.0.0.1") -> Iterator[HostileNode]:
    """Serve a hostile node on an ephemeral loopback port; yields it; stops it (and every response) on exit."""
    import uvicorn

    if behaviour.removeprefix("lock-") not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}")
    sock = _loopback_socket(host)
    port = sock.getsockname()[1]
    node = HostileNode(f"http://{host}:{port}", behaviour)
    config = uvicorn.Config(
        make_app(node),
        http="h11",
        log_level="critical",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"hostile-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the hostile node did not start within 10 s")
        time.sleep(0.01)
    try:
        yield node
    finally:
        node.stopping.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# --- raw TCP helpers ---------------------------------------------------------------------------------


@dataclass
class RawServer:
    url: str
    connections: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)


@contextmanager
def _raw_server(host: str, handle: Callable[[socket.socket, RawServer], None]) -> Iterator[RawServer]:
    listener = _loopback_socket(host)
    listener.listen(16)
    listener.settimeout(0.05)
    server = RawServer(f"http://{host}:{listener.getsockname()[1]}")
    workers: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            handle(conn, server)

    def accept() -> None:
        while not server.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server.connections += 1
            worker = threading.Thread(target=serve, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, name=f"raw-{server.url}", daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        server.stopping.set()
        acceptor.join(timeout=5)
        listener.close()
        for worker in workers:
            worker.join(timeout=5)


@contextmanager
def connection_counter(host: str = "127.0.0.2") -> Iterator[RawServer]:
    """A listener that counts connections and closes each at once: a redirect target that must stay at 0."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        conn.close()

    with _raw_server(host, handle) as server:
        yield server


@contextmanager
def drip_headers_server(host: str = "127.0.0.1") -> Iterator[RawServer]:
    """Reads the request head, then drips a status line and an endless header, a byte every 50 ms."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        conn.settimeout(0.2)
        with suppress(TimeoutError):
            conn.recv(65536)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-drip: "
        until = time.monotonic() + MAX_RESPONSE_S
        i = 0
        while not server.stopping.is_set() and time.monotonic() < until:
            conn.sendall(head[i : i + 1] if i < len(head) else b"a")
            i += 1
            time.sleep(DRIP_INTERVAL_S)

    with _raw_server(host, handle) as server:
        yield server
