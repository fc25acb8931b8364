"""A small synchronous driver for the mock node in tests: lock, seal, post, open.

It talks to the ASGI app in-process through httpx's ASGI transport (no sockets), and uses only the
protocol core for crypto, so a test reads as the wire exchange it checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.protocol import (
    ConfidentialComputeResponse,
    LockResponse,
    OpenedMessage,
    RandomSource,
    SealedRequest,
    SeededRandom,
    SseEvent,
    SseParser,
    StreamChunk,
    jsonwire,
    open_chunk,
    open_response,
    seal_request,
)
from mock_node.app import create_app
from mock_node.config import MockConfig

CHAT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
EMBED_MODEL = "intfloat/multilingual-e5-large-instruct"
IMAGE_MODEL = "black-forest-labs/FLUX.1-schnell"
PATHS = {
    "chat": "/v1/confidential/chat/completions",
    "completions": "/v1/confidential/completions",
    "embeddings": "/v1/confidential/embeddings",
    "images": "/v1/confidential/images/generations",
}


def plaintext_for(endpoint: str, *, stream: bool = False, prompt: str = "Hello, node!", **extra: Any) -> dict[str, Any]:
    """A valid plaintext request for ``endpoint``."""
    body: dict[str, Any]
    if endpoint == "chat":
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": prompt}], "stream": stream}
    elif endpoint == "completions":
        body = {"model": CHAT_MODEL, "prompt": prompt, "stream": stream}
    elif endpoint == "embeddings":
        body = {"model": EMBED_MODEL, "input": prompt}
    else:
        body = {"model": IMAGE_MODEL, "prompt": prompt}
    body.update(extra)
    return body


@dataclass
class Sent:
    """One confidential exchange as it happened on the wire."""

    response: httpx.Response
    sealed: SealedRequest
    request_body: bytes

    @property
    def status(self) -> int:
        return self.response.status_code

    def error(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.response.content)
        return body

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.response.content)
        return body

    def open(self, **kwargs: Any) -> OpenedMessage:
        return open_response(ConfidentialComputeResponse.parse(self.response.content), self.sealed.exchange, **kwargs)

    def events(self) -> list[SseEvent]:
        parser = SseParser()
        return parser.feed(self.response.content) + parser.close()

    def chunks(self) -> list[StreamChunk]:
        return [StreamChunk.parse(e.data.encode()) for e in self.events()]

    def open_chunks(self, **kwargs: Any) -> list[OpenedMessage]:
        return [open_chunk(c, self.sealed.exchange, **kwargs) for c in self.chunks()]


@dataclass
class MockClient:
    config: MockConfig = field(default_factory=MockConfig)
    token: str = "test-token"
    rng: RandomSource = field(default_factory=lambda: SeededRandom("mockclient"))

    def __post_init__(self) -> None:
        self.app = create_app(self.config)
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://mock")

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self._runner.run(self._client.post(path, content=content, headers=headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._runner.run(self._client.get(path, headers=headers))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": "application/json", **extra}

    def lock(self, model: str = CHAT_MODEL, **fields: Any) -> LockResponse:
        response = self.post("/v1/nodes/lock", jsonwire.dumps({"model": model, **fields}), self.headers())
        assert response.status_code == 200, response.text
        return LockResponse.parse(response.content)

    def send(
        self,
        endpoint: str = "chat",
        plaintext: dict[str, Any] | bytes | None = None,
        *,
        stream: bool = False,
        lock: LockResponse | None = None,
        mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        num_compute_units: int | None = None,
    ) -> Sent:
        """Lock (unless given one), seal ``plaintext``, optionally mutate the envelope, and POST it."""
        if plaintext is None:
            plaintext = plaintext_for(endpoint, stream=stream)
        raw = plaintext if isinstance(plaintext, bytes) else jsonwire.dumps(plaintext)
        model = plaintext.get("model", CHAT_MODEL) if isinstance(plaintext, dict) else CHAT_MODEL
        if lock is None:
            lock = self.lock(
                model if isinstance(model, str) else CHAT_MODEL,
                **({"max_num_tokens": 2_000_000} if endpoint == "images" else {}),
            )
        sealed = seal_request(
            raw,
            node_public_key=lock.node_public_key(),
            model_name=model if isinstance(model, str) else "",
            stack_small_id=lock.stack_small_id,
            stream=stream,
            num_compute_units=num_compute_units,
            rng=self.rng,
        )
        envelope = sealed.request.to_json()
        if mutate is not None:
            envelope = mutate(envelope)
        body = jsonwire.dumps(envelope)
        response = self.post(PATHS[endpoint], body, self.headers(**(headers or {})))
        return Sent(response, sealed, body)
