"""The plaintext faults: named ways a node mis-shapes the OpenAI answer it is about to encrypt.

Why apart from the fake model: :mod:`mock_node.fake_model` is the conformant backend (and a relayed
``--backend`` answers in its place), so a wrong answer is a change made afterwards, to whichever
backend answered, the way a node's own code would get it wrong between its backend and its sealing.
Each name is one member of :attr:`Behaviour.answer_shape`; the clear ``usage`` member is read from the
changed answer, so it stays equal to the encrypted one (R11.4) and only the named rule is broken.
"""

from __future__ import annotations

import base64
import copy
import struct
from typing import Any

from conformance.protocol import jsonwire

ANSWER_SHAPES = frozenset(
    {
        "double-encoded-images",  # the image answer is serialized twice: R is a JSON string (R8.5)
        "float-created",  # created is a float timestamp, as time.time() gives it (R8.6, R8.8, R8.10)
        "base64-embeddings",  # embeddings as base64 float32, though the request did not ask (R8.9)
        "swapped-chunk-objects",  # chat chunks say text_completion and completion chunks the reverse (R9.12)
        "null-content",  # chat message content is null (R8.7)
        "float-token-counts",  # usage counts are JSON floats (R11.1)
        "total-without-prompt",  # total_tokens counts only the completion (R11.2)
        "malformed-usage-details",  # completion_tokens_details carries a -1 sentinel (R11.3)
        "zero-completion-tokens",  # text answers report no completion tokens (R11.1, USAGE-007)
    }
)
_TEXT = ("chat", "completions")
_CHUNK_OBJECTS = {"chat": "text_completion", "completions": "chat.completion.chunk"}


def answer(endpoint: str, body: dict[str, Any], shape: frozenset[str]) -> dict[str, Any]:
    """A non-streaming answer as the faulty node encrypts it (``body`` itself when ``shape`` is empty)."""
    if not shape:
        return body
    body = copy.deepcopy(body)
    if "float-created" in shape and isinstance(body.get("created"), int):
        body["created"] += 0.25
    if "base64-embeddings" in shape and endpoint == "embeddings":
        for item in body.get("data") or []:
            vector = item.get("embedding")
            if isinstance(vector, list):
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    if "null-content" in shape and endpoint == "chat":
        for choice in body.get("choices") or []:
            if isinstance(choice.get("message"), dict):
                choice["message"]["content"] = None
    _usage(endpoint, body, shape)
    return body


def chunks(endpoint: str, bodies: list[dict[str, Any]], shape: frozenset[str]) -> list[dict[str, Any]]:
    """The chunk plaintexts of a stream as the faulty node encrypts them."""
    if not shape:
        return bodies
    out = []
    for body in copy.deepcopy(bodies):
        if "float-created" in shape and isinstance(body.get("created"), int):
            body["created"] += 0.25
        if "swapped-chunk-objects" in shape and endpoint in _CHUNK_OBJECTS:
            body["object"] = _CHUNK_OBJECTS[endpoint]
        _usage(endpoint, body, shape)
        out.append(body)
    return out


def plaintext(endpoint: str, body: dict[str, Any], shape: frozenset[str]) -> bytes:
    """The bytes encrypted for a non-streaming answer: its compact JSON, or that JSON serialized again as
    a JSON string (``double-encoded-images``: a handler that passes the backend's body on as a string)."""
    text = jsonwire.dumps(body)
    if "double-encoded-images" in shape and endpoint == "images":
        return jsonwire.dumps(text.decode("utf-8"))
    return text


def _usage(endpoint: str, body: dict[str, Any], shape: frozenset[str]) -> None:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return
    if "zero-completion-tokens" in shape and endpoint in _TEXT:
        usage["completion_tokens"] = 0
        usage["total_tokens"] = usage.get("prompt_tokens", 0)
    if "total-without-prompt" in shape:
        usage["total_tokens"] = usage.get("completion_tokens") or 0
    if "malformed-usage-details" in shape and endpoint in _TEXT:
        usage["completion_tokens_details"] = {"reasoning_tokens": -1}
    if "float-token-counts" in shape:
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if isinstance(usage.get(key), int):
                usage[key] = float(usage[key])
