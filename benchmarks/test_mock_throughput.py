"""Throughput of the mock node: one client round (lock, seal, confidential request) per call.

Three workloads, each measured twice so that the two sit side by side in one ``benchmark.group``:

- ``mock-chat-256B`` and ``mock-chat-4KiB``: non-streaming confidential chat with a prompt of that size;
- ``mock-stream-64``: a streaming chat of exactly 64 SSE events (``max_tokens=61`` with the mock-only
  ``x_mock_natural_tokens=61``: role chunk, 61 token chunks, finish chunk, usage chunk).

``in-process`` calls the ASGI app through ``httpx.ASGITransport`` on one event loop; ``loopback`` serves the
same app with uvicorn on 127.0.0.1 (``mock_node.testing.running_node``) and talks to it with one keep-alive
``httpx.Client``. Each round locks first, as a real client must for every request, so a round is two
HTTP requests (``extra_info["requests_per_round"]``). Decrypting and verifying the answer is client work
and stays outside the timed part: it is checked once per benchmark, before timing.

Run: ``python -m pytest benchmarks -p no:cacheprovider --no-cov --benchmark-only --benchmark-min-rounds=5``.
These are benchmarks, not tests: nothing asserts on timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance.protocol import (
    ConfidentialComputeResponse,
    LockResponse,
    SealedRequest,
    SseParser,
    StreamChunk,
    jsonwire,
    open_chunk,
    open_response,
    seal_request,
)
from mock_node.app import create_app
from mock_node.config import MockConfig
from mock_node.testing import running_node

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
CHAT_PATH = "/v1/confidential/chat/completions"
LOCK_BODY = jsonwire.dumps({"model": MODEL})
HEADERS = {"authorization": "Bearer benchmark-token", "content-type": "application/json"}
STREAM_EVENTS = 64


def prompt(size: int) -> str:
    """Plain words, exactly ``size`` bytes of UTF-8."""
    return ("the quick brown fox jumps over the lazy dog " * (size // 44 + 1))[:size]


@dataclass(frozen=True)
class Workload:
    group: str
    plaintext: bytes
    stream: bool


WORKLOADS = {
    "chat-256B": Workload(
        "mock-chat-256B",
        jsonwire.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt(256)}]}),
        False,
    ),
    "chat-4KiB": Workload(
        "mock-chat-4KiB",
        jsonwire.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt(4096)}]}),
        False,
    ),
    "stream-64": Workload(
        "mock-stream-64",
        jsonwire.dumps(
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt(256)}],
                "stream": True,
                "max_tokens": STREAM_EVENTS - 3,
                "x_mock_natural_tokens": STREAM_EVENTS - 3,
            }
        ),
        True,
    ),
}


def seal(lock_body: bytes, workload: Workload) -> SealedRequest:
    lock = LockResponse.parse(lock_body)
    return seal_request(
        workload.plaintext,
        node_public_key=lock.node_public_key(),
        model_name=MODEL,
        stack_small_id=lock.stack_small_id,
        stream=workload.stream,
    )


def check_answer(response: httpx.Response, sealed: SealedRequest, workload: Workload, config: MockConfig) -> None:
    """Outside the timed part: the answer is a verified 200 and a stream has exactly 64 events."""
    assert response.status_code == 200, response.text
    if workload.stream:
        parser = SseParser()
        events = parser.feed(response.content)
        assert len(events) == STREAM_EVENTS, len(events)
        for event in events:
            open_chunk(StreamChunk.parse(event.data.encode()), sealed.exchange, expected_signer=config.signer_address)
    else:
        message = ConfidentialComputeResponse.parse(response.content)
        open_response(message, sealed.exchange, expected_signer=config.signer_address)


class InProcess:
    """The app behind ``httpx.ASGITransport``, on one event loop for the whole benchmark."""

    def __init__(self, config: MockConfig) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=create_app(config))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://mock")

    async def _round(self, workload: Workload) -> tuple[httpx.Response, SealedRequest]:
        lock = await self._client.post("/v1/nodes/lock", content=LOCK_BODY, headers=HEADERS)
        sealed = seal(lock.content, workload)
        response = await self._client.post(CHAT_PATH, content=sealed.request.serialize(), headers=HEADERS)
        return response, sealed

    def round(self, workload: Workload) -> tuple[httpx.Response, SealedRequest]:
        return self._runner.run(self._round(workload))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


class Loopback:
    """The same app served by uvicorn on 127.0.0.1, reached with one keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url)

    def round(self, workload: Workload) -> tuple[httpx.Response, SealedRequest]:
        lock = self._client.post("/v1/nodes/lock", content=LOCK_BODY, headers=HEADERS)
        sealed = seal(lock.content, workload)
        response = self._client.post(CHAT_PATH, content=sealed.request.serialize(), headers=HEADERS)
        return response, sealed

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def config() -> MockConfig:
    return MockConfig()


@pytest.fixture(scope="module")
def loopback_url(config: MockConfig) -> Iterator[str]:
    with running_node(config) as base_url:
        yield base_url


def measure(
    benchmark: BenchmarkFixture,
    round_trip: Callable[[Workload], tuple[httpx.Response, SealedRequest]],
    workload: Workload,
    config: MockConfig,
    transport: str,
) -> None:
    response, sealed = round_trip(workload)  # once untimed: it works, and warms caches and the connection
    check_answer(response, sealed, workload, config)
    benchmark.group = workload.group
    benchmark.extra_info.update(
        {
            "transport": transport,
            "requests_per_round": 2,
            "plaintext_bytes": len(workload.plaintext),
            "sse_events": STREAM_EVENTS if workload.stream else 0,
        }
    )
    run: Callable[..., Any] = benchmark
    run(round_trip, workload)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_in_process(benchmark: BenchmarkFixture, config: MockConfig, name: str) -> None:
    client = InProcess(config)
    try:
        measure(benchmark, client.round, WORKLOADS[name], config, "in-process")
    finally:
        client.close()


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_loopback(benchmark: BenchmarkFixture, config: MockConfig, loopback_url: str, name: str) -> None:
    client = Loopback(loopback_url)
    try:
        measure(benchmark, client.round, WORKLOADS[name], config, "loopback")
    finally:
        client.close()
