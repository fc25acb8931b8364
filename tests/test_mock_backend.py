"""The --backend relay: the decrypted request reaches an OpenAI-compatible server byte for byte, its
answer comes back sealed, and its failures become 502 without echoing its text."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from conformance.protocol import jsonwire
from mock_node.config import ConfigError, MockConfig
from tests.mockclient import CHAT_MODEL, MockClient, plaintext_for

ANSWER = {
    "id": "chatcmpl-real",
    "object": "chat.completion",
    "created": 1,
    "model": CHAT_MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the backend"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
}


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> MockClient:
    return MockClient(MockConfig(backend_url="http://backend.invalid", backend_transport=httpx.MockTransport(handler)))


def test_non_streaming_relay_forwards_the_exact_plaintext_and_seals_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    client = _client(handler)
    request = plaintext_for("chat", prompt="relay me")
    sent = client.send("chat", request)
    assert sent.status == 200
    assert seen[0].url.path == "/v1/chat/completions"
    assert seen[0].content == jsonwire.dumps(request)
    opened = sent.open(expected_signer=client.config.signer_address)
    assert json.loads(opened.plaintext) == ANSWER
    assert sent.envelope()["usage"] == ANSWER["usage"]
    client.close()


def test_streaming_relay_asks_for_usage_and_seals_every_backend_chunk() -> None:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": CHAT_MODEL,
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
            "usage": None,
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": CHAT_MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    ]
    forwarded: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        forwarded.append(json.loads(request.content))
        body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = _client(handler)
    sent = client.send("chat", plaintext_for("chat", stream=True), stream=True)
    assert forwarded[0]["stream_options"] == {"include_usage": True}
    assert [json.loads(m.plaintext) for m in sent.open_chunks()] == chunks
    assert b"[DONE]" not in sent.response.content
    client.close()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(500, text="SENTINEL backend stack trace"), "the backend answered 500"),
        (httpx.Response(200, text="SENTINEL not json"), "the backend's answer is not a JSON object"),
    ],
)
def test_backend_failures_are_502_without_the_backends_text(response: httpx.Response, reason: str) -> None:
    client = _client(lambda request: response)
    sent = client.send("chat")
    assert sent.status == 502
    assert sent.error()["error"]["code"] == "BAD_GATEWAY" and sent.error()["error"]["message"].startswith(reason)
    assert b"SENTINEL" not in sent.response.content
    client.close()


def test_an_unreachable_backend_is_502() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = _client(handler)
    sent = client.send("chat")
    assert (sent.status, sent.error()["error"]["code"]) == (502, "BAD_GATEWAY")
    client.close()


@pytest.mark.parametrize("body", [b"", b"data: {not json}\n\n", b"data: [DONE]\n\n"])
def test_a_malformed_or_empty_backend_stream_is_502(body: bytes) -> None:
    client = _client(lambda request: httpx.Response(200, content=body))
    sent = client.send("chat", plaintext_for("chat", stream=True), stream=True)
    assert (sent.status, sent.error()["error"]["code"]) == (502, "BAD_GATEWAY")
    client.close()


def test_the_backend_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match=r"^--backend: "):
        MockConfig(backend_url="ftp://x")
