"""The unmodified official Python SDK (atoma-sdk 0.1.3) completes confidential chat against the mock.

It runs in its own environment (``tox -e interop``; ``.ci/run`` builds ``.venv-interop``) because the
SDK pins pydantic < 2.11. There the environment sets ATOMA_INTEROP_REQUIRED=1, so a missing SDK is a
failure, not a skip; in the main environment the module is skipped with that reason.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from mock_node import fake_model
from mock_node.config import MockConfig
from mock_node.testing import running_node

if os.environ.get("ATOMA_INTEROP_REQUIRED"):
    atoma_sdk: Any = importlib.import_module("atoma_sdk")
else:
    atoma_sdk = pytest.importorskip("atoma_sdk", reason="atoma-sdk runs in its own env: tox -e interop")

# The SDK's async methods leave their httpx transports open when the event loop ends; that leak is the
# SDK's (reported in our client matrix), not the node's, so it must not fail the node's interop test.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
MESSAGES = [{"role": "user", "content": "Tell me about confidential computing, briefly."}]


def _expected_content() -> str:
    answer = fake_model.respond("chat", {"model": MODEL, "messages": MESSAGES}, request_id="x", created=0)
    content: str = answer["choices"][0]["message"]["content"]
    return content


@pytest.fixture(scope="module", params=["strict", "atoma-node-compat"])
def base_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running_node(MockConfig(profile=request.param)) as url:
        yield url


def _sdk(url: str) -> Any:
    return atoma_sdk.AtomaSDK(bearer_auth="interop-token", server_url=url)


def test_create(base_url: str) -> None:
    response = _sdk(base_url).confidential_chat.create(messages=MESSAGES, model=MODEL)
    assert response.choices[0].message.content == _expected_content()
    assert response.model == MODEL


def test_create_async(base_url: str) -> None:
    async def call() -> Any:
        return await _sdk(base_url).confidential_chat.create_async(messages=MESSAGES, model=MODEL)

    response = asyncio.run(call())
    assert response.choices[0].message.content == _expected_content()


def _joined(chunks: list[Any]) -> str:
    return "".join(c.data.choices[0].delta.content or "" for c in chunks if c.data.choices)


def test_create_stream(base_url: str) -> None:
    chunks = list(_sdk(base_url).confidential_chat.create_stream(messages=MESSAGES, model=MODEL))
    assert len(chunks) >= 3
    assert _joined(chunks) == _expected_content()


def test_create_stream_async(base_url: str) -> None:
    async def call() -> list[Any]:
        stream = await _sdk(base_url).confidential_chat.create_stream_async(messages=MESSAGES, model=MODEL)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(call())
    assert _joined(chunks) == _expected_content()


def test_sdk_sends_what_the_protocol_expects(base_url: str) -> None:
    """The SDK's max_tokens becomes num_compute_units; the lock must cover it and the reply must honour it."""
    response = _sdk(base_url).confidential_chat.create(messages=MESSAGES, model=MODEL, max_tokens=3)
    assert response.usage.completion_tokens <= 3
    assert json.loads(response.model_dump_json())["choices"][0]["message"]["role"] == "assistant"
