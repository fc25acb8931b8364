"""The concurrency faults (mock_node/races.py), shown directly against the app, without Locust.

Each test sends N requests to one handler through the app's own event loop (httpx.ASGITransport): first
one at a time, as ``atoma-conformance run`` does, where the fault must not show; then all at once with
asyncio.gather, where it must. Every request runs until the fault's await before any resumes (one event
loop, no I/O in between), so the interleaving, and the outcome, is exact. The strict node under the
same concurrent load shows neither effect. That a whole serial run passes every check under these
faults is tests/test_meta_faults.py's to prove; that ``atoma-conformance load`` catches them is
tests/test_load.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from conformance.protocol import (
    AeadError,
    ConfidentialComputeResponse,
    Exchange,
    SealedRequest,
    jsonwire,
    open_chunk,
    open_response,
    seal_request,
)
from mock_node.faults import CATALOGUE, FAULTS
from tests.mockclient import PATHS, MockClient, Sent, plaintext_for

MakeClient = Callable[..., MockClient]
TestFn = TypeVar("TestFn", bound=Callable[..., None])

N = 16  # requests per burst
# (endpoint, stream): the handlers a fault's slots are kept per, each answer kind once
HANDLERS = [("chat", False), ("chat", True), ("completions", True), ("embeddings", False), ("images", False)]
HANDLER_IDS = [f"{endpoint}{'-stream' if stream else ''}" for endpoint, stream in HANDLERS]

CONCURRENCY_TESTS: dict[str, Callable[..., None]] = {}


def covers(fault: str) -> Callable[[TestFn], TestFn]:
    def register(fn: TestFn) -> TestFn:
        CONCURRENCY_TESTS[fault] = fn
        return fn

    return register


def sealed_requests(client: MockClient, endpoint: str, stream: bool, n: int) -> list[SealedRequest]:
    """``n`` requests to one handler, each on its own lock with its own key and nonce; streams are kept
    to 6 chunks (max_tokens 3) so that a serial burst stays short."""
    out = []
    for i in range(n):
        short = {"max_tokens": 3} if stream else {}
        plaintext = plaintext_for(endpoint, stream=stream, prompt=f"request {i}", **short)
        lock = client.lock(plaintext["model"], **({"max_num_tokens": 2_000_000} if endpoint == "images" else {}))
        out.append(
            seal_request(
                jsonwire.dumps(plaintext),
                node_public_key=lock.node_public_key(),
                model_name=plaintext["model"],
                stack_small_id=lock.stack_small_id,
                stream=stream,
                rng=client.rng,
            )
        )
    return out


def post_all(client: MockClient, endpoint: str, sealed: list[SealedRequest], *, at_once: bool) -> list[Sent]:
    """POST every request to the app, all in flight at once (``at_once``) or one after another."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
            path, headers = PATHS[endpoint], client.headers()
            posts = [http.post(path, content=s.request.serialize(), headers=headers) for s in sealed]
            if at_once:
                return list(await asyncio.gather(*posts))
            return [await post for post in posts]

    responses = asyncio.run(send())
    assert [r.status_code for r in responses] == [200] * len(sealed), [r.text[:200] for r in responses]
    return [Sent(r, s, s.request.serialize()) for r, s in zip(responses, sealed, strict=True)]


def burst(client: MockClient, endpoint: str, stream: bool, *, at_once: bool, n: int = N) -> list[Sent]:
    """``n`` requests to one handler, all in flight at once (``at_once``) or one after another."""
    return post_all(client, endpoint, sealed_requests(client, endpoint, stream, n), at_once=at_once)


def streaming(sent: Sent) -> bool:
    return sent.response.headers["content-type"].startswith("text/event-stream")


def opens_under(sent: Sent, exchange: Exchange, signer: str) -> bool:
    """Whether every message of the answer decrypts under ``exchange``'s key (and then hashes and verifies:
    a wrong key is the only thing these faults may break)."""
    try:
        if streaming(sent):
            for chunk in sent.chunks():
                open_chunk(chunk, exchange, expected_signer=signer)
        else:
            open_response(ConfidentialComputeResponse.parse(sent.response.content), exchange, expected_signer=signer)
    except AeadError:
        return False
    return True


def nonces(sent: Sent) -> list[str]:
    """The node's nonces in one answer, in order."""
    return [c.nonce for c in sent.chunks()] if streaming(sent) else [sent.envelope()["nonce"]]


def shared_nonces(sents: list[Sent]) -> set[str]:
    """Nonces that appear in two different answers (each answer under its own key)."""
    seen: dict[str, int] = {}
    out = set()
    for i, sent in enumerate(sents):
        for nonce in nonces(sent):
            if seen.setdefault(nonce, i) != i:
                out.add(nonce)
    return out


def assert_clean(client: MockClient, sents: list[Sent]) -> None:
    """Every answer opens under its own request's key, and no node nonce repeats anywhere."""
    signer = client.config.signer_address
    assert all(opens_under(s, s.sealed.exchange, signer) for s in sents)
    every = [n for s in sents for n in nonces(s)]
    assert len(every) == len(set(every)), "a node nonce repeats"


# --- handler-key-race ----------------------------------------------------------------------------------


@covers("handler-key-race")
@pytest.mark.parametrize(("endpoint", "stream"), HANDLERS, ids=HANDLER_IDS)
def test_handler_key_race_seals_concurrent_answers_under_another_requests_key(
    make_client: MakeClient, endpoint: str, stream: bool
) -> None:
    faulty = make_client(faults=["handler-key-race"])
    signer = faulty.config.signer_address
    assert_clean(faulty, burst(faulty, endpoint, stream, at_once=False))  # one at a time: nothing shows
    racing = burst(faulty, endpoint, stream, at_once=True)
    wrong = [s for s in racing if not opens_under(s, s.sealed.exchange, signer)]
    # Every request wrote the handler's slot before any read it back: all are sealed under the last writer's key.
    assert len(wrong) == N - 1
    last = racing[-1]
    assert opens_under(last, last.sealed.exchange, signer)
    assert all(opens_under(s, last.sealed.exchange, signer) for s in wrong), "sealed under another request's key"
    every = [n for s in racing for n in nonces(s)]
    assert len(every) == len(set(every)), "the nonces stay fresh: only the key is wrong"


def test_a_chat_request_and_a_chat_stream_at_once_share_no_slot(make_client: MakeClient) -> None:
    """What sets these apart from shared-key-slot: a chat request and a chat stream in flight at once (the
    suite's overlap probe, AEAD-011) use two handlers' slots, so each is answered under its own key with
    nonces of its own, and the serial run, which sends no other pair at once, sees nothing."""
    for fault in ("handler-key-race", "handler-nonce-race"):
        client = make_client(faults=[fault])
        pair = [*sealed_requests(client, "chat", False, 1), *sealed_requests(client, "chat", True, 1)]
        assert_clean(client, post_all(client, "chat", pair, at_once=True))


# --- handler-nonce-race --------------------------------------------------------------------------------


@covers("handler-nonce-race")
@pytest.mark.parametrize(("endpoint", "stream"), HANDLERS, ids=HANDLER_IDS)
def test_handler_nonce_race_gives_concurrent_requests_the_same_nonce(
    make_client: MakeClient, endpoint: str, stream: bool
) -> None:
    faulty = make_client(faults=["handler-nonce-race"])
    signer = faulty.config.signer_address
    assert_clean(faulty, burst(faulty, endpoint, stream, at_once=False))  # one at a time: every nonce fresh
    racing = burst(faulty, endpoint, stream, at_once=True)
    assert all(opens_under(s, s.sealed.exchange, signer) for s in racing), "every answer is otherwise right"
    # Every request took the slot before any refill landed: their first messages share one nonce.
    first = {nonces(s)[0] for s in racing}
    assert len(first) == 1 and shared_nonces(racing) >= first
    for sent in racing:  # ... but no answer repeats a nonce of its own (NONCE-003 and NONCE-005 stay clean)
        assert len(set(nonces(sent))) == len(nonces(sent))


def test_handler_nonce_race_repeats_a_running_streams_nonce_in_a_later_request(make_client: MakeClient) -> None:
    """A stream takes a nonce for each chunk as it is produced, so a request to the same handler that
    starts while a stream runs gets one of that stream's nonces, whenever it starts."""
    client = make_client(faults=["handler-nonce-race"])
    early, late = sealed_requests(client, "chat", True, 2)

    async def staggered() -> list[Sent]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:

            async def post(sealed: SealedRequest, delay: float) -> Sent:
                await asyncio.sleep(delay)
                response = await http.post(PATHS["chat"], content=sealed.request.serialize(), headers=client.headers())
                return Sent(response, sealed, sealed.request.serialize())

            return list(await asyncio.gather(post(early, 0), post(late, 0.025)))  # mid-stream (10 ms a chunk)

    first, second = asyncio.run(staggered())
    assert nonces(second)[0] in nonces(first), "the later request repeats one of the running stream's nonces"
    for sent in (first, second):
        assert len(set(nonces(sent))) == len(nonces(sent))


# --- the strict node under the same load ---------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "stream"), HANDLERS, ids=HANDLER_IDS)
def test_the_strict_node_under_the_same_concurrent_load_shows_neither(
    make_client: MakeClient, endpoint: str, stream: bool
) -> None:
    strict = make_client()
    assert_clean(strict, burst(strict, endpoint, stream, at_once=True))


# --- the catalogue -------------------------------------------------------------------------------------


def test_every_concurrency_fault_is_shown_here() -> None:
    concurrent = {f.name for f in CATALOGUE if f.concurrent}
    assert concurrent == set(CONCURRENCY_TESTS) == {"handler-key-race", "handler-nonce-race"}
    for fault in CATALOGUE:
        assert (fault.category == "concurrency") == fault.concurrent, fault.name
    assert FAULTS["handler-key-race"].caught_by == ("AEAD-001", "AEAD-002")
    assert FAULTS["handler-nonce-race"].caught_by == ("NONCE-004",)
