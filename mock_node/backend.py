"""Relay the decrypted request to a real OpenAI-compatible server (``--backend URL``).

This lets a developer put a real local model (vLLM, llama.cpp's server, Ollama's OpenAI API) behind
the confidential envelope: the mock does the protocol, the backend does the thinking. As the
upstream node does, a streaming request is forwarded with ``stream_options.include_usage = true`` so
that the stream ends with a usage chunk. Backend failures become 502 ``BAD_GATEWAY``; the backend's
own error text is not forwarded, because it may quote the plaintext.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.protocol import ProtocolError, SseParser, jsonwire

BACKEND_PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "images": "/v1/images/generations",
}
MAX_BACKEND_BYTES = 64 * 1024 * 1024


class BackendError(Exception):
    """The backend could not give a usable answer; the message is safe to show the client."""


class Backend:
    def __init__(self, base_url: str, *, timeout_s: float = 120.0, transport: httpx.AsyncBaseTransport | None = None):
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def respond(self, endpoint: str, plaintext: bytes) -> dict[str, Any]:
        body = await self._post(endpoint, plaintext)
        try:
            return jsonwire.loads_object(body, field="backend response")
        except ProtocolError as exc:
            raise BackendError(f"the backend's answer is not a JSON object ({exc.reason})") from None

    async def stream(self, endpoint: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        forwarded = dict(request, stream=True, stream_options={"include_usage": True})
        body = await self._post(endpoint, jsonwire.dumps(forwarded))
        parser = SseParser(max_event_bytes=MAX_BACKEND_BYTES)
        chunks: list[dict[str, Any]] = []
        try:
            for event in parser.feed(body) + parser.close():
                if event.data.strip() == "[DONE]":
                    break
                chunks.append(jsonwire.loads_object(event.data, field="backend event"))
        except ProtocolError as exc:
            raise BackendError(f"the backend's stream is malformed ({exc.reason})") from None
        if not chunks:
            raise BackendError("the backend's stream had no events")
        return chunks

    async def _post(self, endpoint: str, body: bytes) -> bytes:
        try:
            response = await self._client.post(
                BACKEND_PATHS[endpoint], content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise BackendError(f"the backend is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise BackendError(f"the backend answered {response.status_code}")
        if len(response.content) > MAX_BACKEND_BYTES:
            raise BackendError("the backend's answer is too large")
        return response.content

    async def aclose(self) -> None:
        await self._client.aclose()
