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
- ``redirect``: 307 to ``HostileNode.redirect_to`` (another host, or an https URL);
  ``redirect-loop``: 307 to the very URL that was asked for;
- ``stall``: the response head is never sent (the server gives up after ``MAX_RESPONSE_S``);
- ``gzip-bomb``: ``Content-Encoding: gzip``, about 4 MB of compressed zeros that expand to 4 GiB;
- ``wide-json``: one JSON object of millions of short members, just under the 32 MiB default cap;
- ``big-body``: an envelope whose ciphertext makes the body just under the 32 MiB default cap;
- ``ansi``: 400 with an error code and message that carry terminal escape sequences (a fake
  ``PASS`` line, see :data:`SPOOF`), JSON-escaped as the grammar wants; ``ansi-raw``: the same with
  raw ESC bytes in the body. ``/v1/models`` then lists model names that carry it too.

``lock-<behaviour>`` applies the same behaviour to the lock instead (the confidential endpoints then
answer 400); ``lock-huge-key`` (a 32 MiB ``public_key``) and ``lock-long-key`` (200 KB) exist only
for the lock. Everything the server does is bounded by time: an endless response stops when the
client disconnects, when the server stops, or after ``MAX_RESPONSE_S`` (``max_response_s``: longer
for a benchmark with the client's default 120 s deadline); large bodies are built once
per process and kept (about 100 MB at most).

Raw TCP helpers cover what an ASGI server cannot do. :func:`raw_target` is a whole target (a correct
lock, then the lie on the confidential endpoints, or ``lock-<behaviour>`` on the lock):
``drip-headers`` (the status line and an endless header, a byte every 50 ms), ``stall-headers`` (a
status line, then nothing), ``endless-continue`` (``100 Continue`` forever), ``chunked-flood``
(one-byte chunks forever), ``chunked-unterminated`` (a whole body in chunks, then neither the last
chunk nor anything else), ``ansi-headers`` (escape sequences in the reason phrase and a header) and
``mid-body-close`` (a declared length, half of it, then the connection closes).
:func:`drip_headers_server` drips the head of every response, the lock's included, and
:func:`connection_counter` is a redirect target that counts every connection it is offered.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from conformance.protocol import b64encode, jsonwire, x25519_public_key

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
    "redirect-loop",
    "stall",
    "gzip-bomb",
    "wide-json",
    "big-body",
    "ansi",
    "ansi-raw",
)
LOCK_BEHAVIOURS = tuple(f"lock-{b}" for b in BEHAVIOURS)
LOCK_ONLY = ("lock-huge-key", "lock-long-key")
RAW_BEHAVIOURS = (
    "drip-headers",
    "stall-headers",
    "endless-continue",
    "chunked-flood",
    "chunked-unterminated",
    "ansi-headers",
    "mid-body-close",
)
RAW_LOCK_BEHAVIOURS = tuple(f"lock-{b}" for b in RAW_BEHAVIOURS)

CAP = 32 * 1024 * 1024  # the client's default --max-response-bytes
UNDER_CAP = CAP - 4096  # "just under the cap"
LONG_KEY_BYTES = 200 * 1000
GZIP_EXPANDS_TO = 4 * 1024 * 1024 * 1024  # bytes of zeros behind the bomb
# What a hostile target prints to spoof a verdict: clear the screen, home the cursor, a fake PASS,
# then "conceal" so that whatever follows on the terminal is invisible.
SPOOF = "\x1b[2J\x1b[H" + "PASS: every MUST check passed" + "\x1b[8m"

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
_SPOOF_ERROR = jsonwire.dumps({"error": {"code": SPOOF, "message": SPOOF + " (really: refused)"}})
_SPOOF_RAW = ('{"error":{"code":"' + SPOOF + '","message":"' + SPOOF + '"}}').encode()  # raw ESC: not JSON
_SPOOF_MODELS = jsonwire.dumps(
    {"object": "list", "data": [{"id": SPOOF, "object": "model"}, {"id": "m\x07\x1b]0;t\x07"}]}
)


@functools.cache
def gzip_bomb() -> bytes:
    """A gzip member of :data:`GZIP_EXPANDS_TO` zeros in about 4 MB, built once in about a second.

    A deflate block flushed with ``Z_FULL_FLUSH`` resets the compressor, so every MiB of zeros after the
    first compresses to the same bytes: one block is compressed and repeated, and only the CRC-32
    (over the zeros, in 16 MiB steps) costs time. The result is a valid gzip stream."""
    mib, step = bytes(1 << 20), bytes(1 << 24)
    blocks = GZIP_EXPANDS_TO >> 20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(GZIP_EXPANDS_TO // len(step)):
        crc = zlib.crc32(step, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name, no mtime, best, unknown OS
    trailer = crc.to_bytes(4, "little") + (GZIP_EXPANDS_TO % 2**32).to_bytes(4, "little")
    return header + first + block * (blocks - 1) + deflate.flush(zlib.Z_FINISH) + trailer


@functools.cache
def wide_json() -> bytes:
    """One JSON object of about 3.7 million distinct short members (``"abcd":0``), :data:`UNDER_CAP` bytes."""
    alphabet = [bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
    tail = b"".join(b'"\x00\x00' + a + b + b'":0,' for a, b in product(alphabet, repeat=2))
    parts, size = [b"{"], 1
    for a, b in product(alphabet, repeat=2):
        part = tail.replace(b"\x00\x00", a + b)
        if size + len(part) > UNDER_CAP - 16:
            break
        parts.append(part)
        size += len(part)
    parts.append(b'"end":0')
    body = b"".join(parts)
    return body + b" " * (UNDER_CAP - 1 - len(body)) + b"}"  # whitespace pads it to the exact size


@functools.cache
def big_body() -> bytes:
    """An envelope of :data:`UNDER_CAP` bytes, nearly all of it a base64 ciphertext (of zeros)."""
    shell = jsonwire.dumps(
        {
            "ciphertext": "",
            "nonce": b64encode(bytes(12)),
            "usage": None,
            "signature": None,
            "response_hash": b64encode(bytes(32)),
        }
    )
    fill = (UNDER_CAP - len(shell)) // 4 * 4
    body = shell.replace(b'"ciphertext":""', b'"ciphertext":"' + b"A" * fill + b'"')
    return body + b" " * (UNDER_CAP - len(body))


def _lock_with_key(key_chars: int) -> bytes:
    body = LOCK_BODY.replace(b64encode(NODE_PUBLIC_KEY).encode(), b"A" * (key_chars // 4 * 4))
    return body


@functools.cache
def huge_key_lock() -> bytes:
    """A lock whose ``public_key`` makes the body just under the cap."""
    return _lock_with_key(UNDER_CAP - len(LOCK_BODY))


@functools.cache
def long_key_lock() -> bytes:
    """A lock whose ``public_key`` is 200 KB of base64."""
    return _lock_with_key(LONG_KEY_BYTES)


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
    max_response_s: float = MAX_RESPONSE_S

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


class _Response:
    """Writes one response, stopping early when the client went away, the server stops, or time is up."""

    def __init__(self, node: HostileNode, send: Send, gone: Callable[[], bool]) -> None:
        self._node, self._send, self._gone = node, send, gone
        self._until = time.monotonic() + node.max_response_s

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


async def _behave(behaviour: str, stream: bool, out: _Response, node: HostileNode, valid: bytes, path: str) -> None:
    """Answer with ``behaviour``; ``stream`` says the client asked for an event stream; ``valid`` is a
    plausible JSON body for the endpoint (used where the lie is in the framing, not the bytes);
    ``path`` is the path that was asked for."""
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
    elif behaviour == "redirect-loop":
        await out.start(307, "text/plain", (("location", node.url + path), ("content-length", "0")))
        await out.end()
    elif behaviour == "stall":  # no response head at all; uvicorn answers 500 once the app gives up
        while not out.over:
            await asyncio.sleep(DRIP_INTERVAL_S)
    elif behaviour == "gzip-bomb":
        bomb = gzip_bomb()
        media = "text/event-stream" if stream else "application/json"
        await out.start(200, media, (("content-encoding", "gzip"), ("content-length", str(len(bomb)))))
        await out.body(bomb, more=False)
    elif behaviour == "wide-json":
        await out.whole(200, "application/json", wide_json())
    elif behaviour == "big-body":
        if stream:
            await out.whole(200, "text/event-stream", b"data: " + big_body()[: UNDER_CAP - 16] + b"\n\n")
        else:
            await out.whole(200, "application/json", big_body())
    elif behaviour == "ansi":
        await out.whole(400, "application/json", _SPOOF_ERROR)
    elif behaviour == "ansi-raw":
        await out.whole(400, "application/json", _SPOOF_RAW)
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
                if behaviour == "lock-huge-key":
                    await out.whole(200, "application/json", huge_key_lock())
                elif behaviour == "lock-long-key":
                    await out.whole(200, "application/json", long_key_lock())
                elif on_lock:
                    await _behave(behaviour.removeprefix("lock-"), False, out, node, LOCK_BODY, path)
                else:
                    await out.whole(200, "application/json", LOCK_BODY)
            elif path.startswith(CONFIDENTIAL_PREFIX) and not on_lock:
                await _behave(behaviour, "text/event-stream" in accept, out, node, _ENVELOPE_EVENT[6:], path)
            elif path == "/v1/models" and behaviour.removeprefix("lock-") in ("ansi", "ansi-raw"):
                await out.whole(200, "application/json", _SPOOF_MODELS)
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
def hostile_node(
    behaviour: str, host: str = "127.0.0.1", *, max_response_s: float = MAX_RESPONSE_S
) -> Iterator[HostileNode]:
    """Serve a hostile node on an ephemeral loopback port; yields it; stops it (and every response) on exit."""
    import uvicorn

    if behaviour not in (*BEHAVIOURS, *LOCK_BEHAVIOURS, *LOCK_ONLY):
        raise ValueError(f"unknown behaviour {behaviour!r}")
    sock = _loopback_socket(host)
    port = sock.getsockname()[1]
    node = HostileNode(f"http://{host}:{port}", behaviour, max_response_s=max_response_s)
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
    max_response_s: float = MAX_RESPONSE_S


@contextmanager
def _raw_server(
    host: str, handle: Callable[[socket.socket, RawServer], None], max_response_s: float = MAX_RESPONSE_S
) -> Iterator[RawServer]:
    listener = _loopback_socket(host)
    listener.listen(16)
    listener.settimeout(0.05)
    server = RawServer(f"http://{host}:{listener.getsockname()[1]}", max_response_s=max_response_s)
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
        until = time.monotonic() + server.max_response_s
        i = 0
        while not server.stopping.is_set() and time.monotonic() < until:
            conn.sendall(head[i : i + 1] if i < len(head) else b"a")
            i += 1
            time.sleep(DRIP_INTERVAL_S)

    with _raw_server(host, handle) as server:
        yield server


def _read_request(conn: socket.socket) -> str | None:
    """Read one request (its head, and a body of the declared length); its path, or None if there was none."""
    conn.settimeout(5.0)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 1 << 20:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    request_line = lines[0].split(b" ")
    return request_line[1].decode("latin-1") if len(request_line) > 1 else None


def _whole(conn: socket.socket, status: bytes, body: bytes, extra: bytes = b"") -> None:
    conn.sendall(
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + extra
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
    )  # fmt: skip


def _idle(conn: socket.socket, server: RawServer, until: float) -> None:
    """Say nothing until the client goes away, the server stops, or ``until``."""
    conn.settimeout(DRIP_INTERVAL_S)
    while not server.stopping.is_set() and time.monotonic() < until:
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
_ERROR_BODY = jsonwire.dumps({"error": {"code": "BAD_REQUEST", "message": "no such route here"}})


def _raw_behave(behaviour: str, conn: socket.socket, server: RawServer) -> None:
    until = time.monotonic() + server.max_response_s

    def going() -> bool:
        return not server.stopping.is_set() and time.monotonic() < until

    if behaviour == "drip-headers":
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-drip: "
        i = 0
        while going():
            conn.sendall(head[i : i + 1] if i < len(head) else b"a")
            i += 1
            time.sleep(DRIP_INTERVAL_S)
    elif behaviour == "stall-headers":
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        _idle(conn, server, until)
    elif behaviour == "endless-continue":
        burst = b"HTTP/1.1 100 Continue\r\n\r\n" * 64
        while going():
            conn.sendall(burst)
            time.sleep(0.02)
    elif behaviour == "chunked-flood":  # one-byte chunks as fast as the client reads, never the last one
        conn.sendall(_CHUNKED_HEAD + b"1\r\n{\r\n")
        burst, sent = b"1\r\n \r\n" * 10000, 0
        while going() and sent < HUGE_BYTES:
            conn.sendall(burst)
            sent += len(burst)
    elif behaviour == "chunked-unterminated":  # a whole body, then neither the last chunk nor anything else
        body = _ENVELOPE_EVENT[6:]
        conn.sendall(_CHUNKED_HEAD + b"%x\r\n" % len(body) + body + b"\r\n")
        _idle(conn, server, until)
    elif behaviour == "ansi-headers":
        spoof = SPOOF.encode("latin-1")
        _whole(conn, b"400 " + spoof, _SPOOF_ERROR, b"x-error: " + spoof + b"\r\nx-request-id: " + spoof + b"\r\n")
    elif behaviour == "mid-body-close":  # 4096 bytes declared, 100 sent, then the connection closes
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n" + LOCK_BODY[:100]
        )
        conn.shutdown(socket.SHUT_RDWR)
    else:
        raise ValueError(f"unknown raw behaviour {behaviour!r}")


@contextmanager
def raw_target(
    behaviour: str, host: str = "127.0.0.1", *, max_response_s: float = MAX_RESPONSE_S
) -> Iterator[RawServer]:
    """A whole target on raw TCP, one request per connection: a correct lock and ``behaviour`` on the
    confidential endpoints, or (``lock-<behaviour>``) the behaviour on the lock and 400 elsewhere."""
    if behaviour not in (*RAW_BEHAVIOURS, *RAW_LOCK_BEHAVIOURS):
        raise ValueError(f"unknown raw behaviour {behaviour!r}")
    on_lock = behaviour.startswith("lock-")
    lie = behaviour.removeprefix("lock-")

    def handle(conn: socket.socket, server: RawServer) -> None:
        path = _read_request(conn)
        if path is None:
            return
        if path == LOCK_PATH:
            if on_lock:
                _raw_behave(lie, conn, server)
            else:
                _whole(conn, b"200 OK", LOCK_BODY)
        elif path.startswith(CONFIDENTIAL_PREFIX):
            if on_lock:
                _whole(conn, b"400 Bad Request", _ERROR_BODY)
            else:
                _raw_behave(lie, conn, server)
        else:
            _whole(conn, b"404 Not Found", _ERROR_BODY)

    with _raw_server(host, handle, max_response_s) as server:
        yield server


# --- the corpus: every hostile target by name, and a measured run of the command line against it ---

# name -> what the target does; ``serve(name)`` starts it. ASGI behaviours and raw ones share one namespace.
CORPUS: dict[str, str] = {
    "stall": "lock answers, then every confidential endpoint stalls (no response head)",
    "lock-stall": "the lock stalls (no response head)",
    "slow-drip": "lock answers, then bodies drip a byte every 50 ms",
    "endless-stream": "lock answers, then an endless SSE stream of envelopes",
    "drip-headers": "lock answers, then the status line and headers drip a byte every 50 ms",
    "lock-drip-headers": "the lock's status line and headers drip a byte every 50 ms",
    "stall-headers": "lock answers, then a status line and nothing more",
    "endless-continue": "lock answers, then 100 Continue forever",
    "lock-endless-continue": "the lock answers 100 Continue forever",
    "chunked-flood": "lock answers, then one-byte chunks forever",
    "chunked-unterminated": "lock answers, then a whole body in chunks without the last chunk",
    "gzip-bomb": "lock answers, then 4 MB of gzip that expands to 4 GiB",
    "lock-gzip-bomb": "the lock is 4 MB of gzip that expands to 4 GiB",
    "wide-json": "lock answers, then one object of 3.7 million members, just under 32 MiB",
    "big-body": "lock answers, then an envelope just under 32 MiB",
    "lock-huge-key": "the lock's public_key is just under 32 MiB",
    "lock-long-key": "the lock's public_key is 200 KB",
    "ansi": "a spoofed PASS: escape sequences in 400 error codes, messages and model names",
    "lock-ansi": "the same spoof on the lock's refusal",
    "ansi-raw": "the spoof as raw ESC bytes in a 400 body",
    "ansi-headers": "the spoof in a 400's reason phrase and headers",
    "lock-ansi-headers": "the spoof in the lock refusal's reason phrase and headers",
    "redirect-loop": "every confidential endpoint redirects to itself",
    "lock-redirect-loop": "the lock redirects to itself",
    "mid-body-close": "lock answers, then a body is cut off half-way (connection closed)",
    "lock-mid-body-close": "the lock's body is cut off half-way (connection closed)",
}


@contextmanager
def serve(name: str, *, max_response_s: float = MAX_RESPONSE_S) -> Iterator[str]:
    """Start the corpus target ``name`` on loopback; yields its base URL; stops it on exit. No response
    lasts longer than ``max_response_s``."""
    if name not in CORPUS:
        raise ValueError(f"unknown corpus target {name!r}")
    if name in (*RAW_BEHAVIOURS, *RAW_LOCK_BEHAVIOURS):
        with raw_target(name, max_response_s=max_response_s) as raw:
            yield raw.url
    else:
        with hostile_node(name, max_response_s=max_response_s) as node:
            yield node.url


@dataclass
class Measured:
    """One ``atoma-conformance`` process: how it ended, how long it took, and its peak memory."""

    code: int | None  # None: killed (see ``killed_for``)
    wall_s: float
    peak_rss_bytes: int  # the child's VmHWM, the last value read before it exited (see run_cli)
    stdout: bytes
    stderr: bytes
    killed_for: str | None = None  # "time" or "memory"

    @property
    def killed(self) -> bool:
        return self.code is None


def _vm_hwm(pid: int) -> int:
    """The peak resident set of ``pid``'s current program (bytes), or 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_cli(
    args: list[str], cwd: str, *, kill_after: float, kill_above: int | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run ``python -m conformance.cli ARGS`` in ``cwd``; kill it (and say so) after ``kill_after`` s, or
    once its peak memory passes ``kill_above`` bytes (so that a regression cannot exhaust the machine).

    Peak memory is the child's ``VmHWM`` (``/proc/PID/status``), read every 10 ms until the child
    exits; the high-water mark only grows, so the last reading misses at most the final 10 ms. Not
    ``ru_maxrss``: Linux carries the parent's high-water mark across ``exec``, so a child of a test
    process that holds a 32 MiB hostile body would be charged for the test process's memory. Output
    goes to files in ``cwd``, so a child that floods its output never blocks on a pipe."""
    import os
    import subprocess
    import sys

    out_path, err_path = os.path.join(cwd, "cli.stdout"), os.path.join(cwd, "cli.stderr")
    peak = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "conformance.cli", *args], cwd=cwd, stdout=out, stderr=err, env=env
        )
        killed_for: str | None = None
        while True:
            peak = max(peak, _vm_hwm(child.pid))  # before reaping: a reaped child has no /proc entry
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            if killed_for is None and time.monotonic() - started > kill_after:
                killed_for = "time"
            elif killed_for is None and kill_above is not None and peak > kill_above:
                killed_for = "memory"
            if killed_for is not None:
                child.kill()
            time.sleep(0.01)
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    with open(out_path, "rb") as out, open(err_path, "rb") as err:
        stdout, stderr = out.read(), err.read()
    code = None if killed_for is not None else child.returncode
    return Measured(code, wall, peak, stdout, stderr, killed_for)
