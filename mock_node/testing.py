"""Run the mock node on a loopback port inside the current process, for tests and SDK authors.

    with running_node(MockConfig(profile="atoma-node-compat")) as base_url:
        ...  # point any HTTP client at base_url

A real socket (not an in-process transport) is the point: it is what an unmodified SDK talks to.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .config import MockConfig


@contextmanager
def running_node(config: MockConfig | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the mock on an ephemeral port; yields ``http://host:port``; stops on exit."""
    import uvicorn

    from .app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"mock-node-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the mock node did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class SkewClock:
    """Monotonic time plus an offset that a test can advance: lets an embedded run "wait" for a lock to
    expire without sleeping. Pass ``clock.now`` to :class:`MockConfig` and ``clock.advance`` as the
    suite's sleep."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
