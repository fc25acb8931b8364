"""The plaintext and the body's framing: the probes build what they claim (a body of exactly 2 MiB, a
chunked body with no Content-Length, a key whose top bit names the same key, a plaintext in another
layout with the hash over its exact bytes, malformed plaintexts sealed with their correct hash), and
each check passes on the clean mock, on both faces, and fails under the fault that breaks its rule,
and under no other of these faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from conformance.checks import CATALOGUE, Run
from conformance.checks.judging import streamed_answer, table_pairs
from conformance.checks.probes import STREAM_FOR_EMBEDDINGS
from conformance.checks.probes_body import (
    ACCEPTED_VARIATIONS,
    BODY_AT_LIMIT,
    BODY_LIMIT,
    COMBINED,
    LIMIT_FORMS,
    NOT_AN_OBJECT_WITH_A_MODEL,
    PLAINTEXT_SHAPES,
    VARIATIONS,
    _other_layout,
    _padded,
    top_bit_set,
)
from conformance.client import AsyncConfidentialClient, ConfidentialClient
from conformance.embedded import embedded_target
from conformance.protocol import ProtocolError, jsonwire
from conformance.protocol.b64 import b64decode
from conformance.protocol.primitives import blake2b_256, x25519_public_key, x25519_shared_secret
from conformance.records import HttpRecord
from conformance.taxonomy import Face

MINE = (
    "ERR-030",
    "ERR-031",
    "ERR-032",
    "ERR-033",
    "ENDPOINT-010",
    "ENDPOINT-011",
    "ENDPOINT-012",
    "ENDPOINT-013",
    "ENDPOINT-014",
    "ENDPOINT-015",
    "ENDPOINT-016",
    "STREAM-008",
)
CHECKS = [c for c in CATALOGUE if c.id in MINE]

# Each fault of this change, the face it is served on, and the checks of MINE it fails (and no other).
FAULTS: list[tuple[str, Face, set[str]]] = [
    ("stream-embeddings", "proxy", {"STREAM-008"}),
    ("stream-images", "proxy", {"STREAM-008"}),
    ("model-from-envelope", "proxy", {"ERR-030"}),
    ("unservable-plaintext-500", "proxy", {"ERR-031"}),
    ("node-unknown-model-404", "node", {"ERR-032"}),
    ("size-limit-content-length-only", "proxy", {"ERR-033"}),
    ("body-limit-exclusive", "proxy", {"ENDPOINT-016"}),
    ("chunked-body-refused", "proxy", {"ENDPOINT-015", "ERR-033"}),
    ("charset-refused", "proxy", {"ENDPOINT-014"}),
    ("unknown-member-refused", "proxy", {"ENDPOINT-011"}),
    ("request-hash-reserialized", "proxy", {"ENDPOINT-012"}),
    ("client-key-top-bit-refused", "proxy", {"ENDPOINT-013"}),
    ("unset-stream-streams", "proxy", {"ENDPOINT-010"}),
]


class _Counted:
    """A run against the embedded mock whose confidential requests (locks apart) are counted."""

    def __init__(self, faults: tuple[str, ...] = (), face: Face = "proxy") -> None:
        self._context = embedded_target("strict", faults, face=face)
        embedded = self._context.__enter__()
        self.client = ConfidentialClient(
            embedded.target.base_url, embedded.target.api_key, node_face=embedded.node_face
        )
        self.sent: list[str] = []
        original = self.client.request

        def request(method: str, path: str, **kwargs: object) -> HttpRecord:
            if path != "/v1/nodes/lock":
                self.sent.append(path)
            return original(method, path, **kwargs)  # type: ignore[arg-type]

        self.client.request = request  # type: ignore[method-assign]
        self.run = Run(embedded.target, self.client, sleep=embedded.sleep)

    def outcomes(self) -> dict[str, tuple[str, str]]:
        return {c.id: (v.outcome, v.reason) for c in CHECKS for v in [c.run(self.run)]}

    def close(self) -> None:
        self.client.close()
        self._context.__exit__(None, None, None)


@pytest.fixture
def counted() -> Iterator[_Counted]:
    run = _Counted()
    yield run
    run.close()


# --- what the probes build ----------------------------------------------------------------------------


def test_a_chunked_request_carries_no_content_length_in_either_client() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request.headers)
        return httpx.Response(200, json={"ok": True})

    body = b"x" * 200_000
    with ConfidentialClient("http://node", None, transport=httpx.MockTransport(handler)) as client:
        client.request("POST", "/p", content=body, chunked=True)
        client.request("POST", "/p", content=body)

    async def send() -> None:
        async with AsyncConfidentialClient("http://node", None, transport=httpx.MockTransport(handler)) as client:
            await client.request("POST", "/p", content=body, chunked=True)

    asyncio.run(send())
    chunked, declared, async_chunked = seen
    assert chunked.get("transfer-encoding") == "chunked" and "content-length" not in chunked
    assert chunked.get("connection") == "close", "a body the node may answer half-read: no reuse"
    assert declared.get("content-length") == str(len(body)) and "transfer-encoding" not in declared
    assert async_chunked.get("transfer-encoding") == "chunked" and "content-length" not in async_chunked


def test_the_body_at_the_limit_is_exactly_2_mib_and_round_trips(counted: _Counted) -> None:
    at_limit = counted.run.get(BODY_AT_LIMIT)
    record = at_limit.record
    assert BODY_LIMIT == 2 * 1024 * 1024 == len(record.request_body)
    assert record.request.plaintext_body_hash == jsonwire.loads(record.request_body)["plaintext_body_hash"]
    assert blake2b_256(record.plaintext) == b64decode(record.request.plaintext_body_hash)
    compact = jsonwire.dumps(jsonwire.loads(record.plaintext))  # the padding is JSON whitespace alone
    assert record.plaintext == compact[:-1] + b" " * (len(record.plaintext) - len(compact)) + b"}"
    assert record.http.status == 200 and record.messages and not record.messages[0].aead_error
    assert counted.sent.count("/v1/confidential/chat/completions") == 1


def test_the_envelope_forms_reach_every_residue_so_any_envelope_can_fill_the_limit() -> None:
    envelope = {"ciphertext": "AAAA", "model_name": "m", "nonce": "n", "stack_small_id": 1, "stream": False}
    lengths = {len(jsonwire.dumps(edit(envelope))) % 4 for _, edit in LIMIT_FORMS}
    assert lengths == {0, 1, 2, 3}


def test_padding_keeps_the_plaintext_value_and_reaches_the_length() -> None:
    plaintext = b'{"model":"m","messages":[]}'
    padded = _padded(plaintext, 1000)
    assert len(padded) == 1000 and jsonwire.loads(padded) == jsonwire.loads(plaintext)


def test_a_key_with_bit_255_set_is_the_same_key_to_x25519() -> None:
    node_private, client_private = bytes(range(32)), bytes(range(1, 33))
    client_public = x25519_public_key(client_private)
    flipped = top_bit_set(client_public)
    assert flipped[31] & 0x80 and flipped[:31] == client_public[:31]
    assert x25519_shared_secret(node_private, flipped) == x25519_shared_secret(node_private, client_public)


def test_the_other_layout_is_the_same_value_in_other_bytes() -> None:
    plaintext = jsonwire.dumps({"model": "org/model", "messages": [{"role": "user", "content": "hi (mark)"}]})
    layout = _other_layout(plaintext)
    assert json.loads(layout) == json.loads(plaintext) and layout != plaintext
    assert b"\\/" in layout and b" : " in layout and b"\n" in layout
    assert list(json.loads(layout)) == ["messages", "model"]  # members in another order
    assert b"hi (mark)" in layout  # the prompt, and so the sentinel, is written unescaped


def test_every_malformed_plaintext_lacks_an_object_with_a_string_model(counted: _Counted) -> None:
    cases = counted.run.get(PLAINTEXT_SHAPES).cases
    assert [name for name, _ in cases] == list(NOT_AN_OBJECT_WITH_A_MODEL)
    for name, record in cases:
        try:
            value = jsonwire.loads(record.plaintext)
        except ProtocolError:
            value = None
        assert not (isinstance(value, dict) and isinstance(value.get("model"), str)), name
        assert blake2b_256(record.plaintext) == b64decode(record.request.plaintext_body_hash), name
        assert record.http.status == 400, name


def test_every_variation_travels_in_one_of_two_requests_on_a_conformant_target(counted: _Counted) -> None:
    varied = counted.run.get(ACCEPTED_VARIATIONS)
    assert {v.name for group in COMBINED for v in group} == {v.name for v in VARIATIONS}
    assert not varied.alone and len(counted.sent) == 2
    first, second = (record for _, record in varied.combined)
    sent = jsonwire.loads(first.request_body)
    assert next(iter(sent)) == "atoma_conformance_unknown_member" and "stream" not in sent
    assert sent["num_compute_units"] is None and b64decode(sent["client_dh_public_key"])[31] & 0x80
    assert jsonwire.loads(second.request_body)["stream"] is None and b"\\/" in second.plaintext


def test_a_refused_combination_is_sent_again_one_variation_at_a_time() -> None:
    counted = _Counted(("charset-refused",))
    try:
        varied = counted.run.get(ACCEPTED_VARIATIONS)
        names = {v.name for v in COMBINED[1]}
        # the two combined requests, the plain request that shows the target serves at all, then each alone
        assert set(varied.alone) == names and len(counted.sent) == 2 + 1 + len(names)
        assert {n: r.http.status for n, r in varied.alone.items()}["charset=utf-8"] == 415
        assert all(r.http.status == 200 for n, r in varied.alone.items() if n != "charset=utf-8")
    finally:
        counted.close()


def test_streaming_embeddings_reaches_the_nodes_own_refusal(counted: _Counted) -> None:
    """Envelope and plaintext agree, so it is the endpoint's not streaming (R9.1) that refuses it, not
    the envelope-plaintext comparison of R3.16."""
    record = counted.run.get(STREAM_FOR_EMBEDDINGS)
    assert jsonwire.loads(record.plaintext)["stream"] is True
    error = record.http.error_body()
    assert record.http.status == 400 and error is not None and "does not stream" in error[1]


# --- the rules ------------------------------------------------------------------------------------------


def _http(status: int, media: str, body: bytes = b"") -> HttpRecord:
    return HttpRecord("POST", "/v1/confidential/embeddings", status, {"content-type": media}, body)


def test_streamed_answer_allows_json_or_a_4xx_and_nothing_else() -> None:
    refusal = b'{"error":{"code":"REQUEST_ERROR","message":"no"}}'
    assert streamed_answer(_http(200, "application/json", b"{}")) is None
    assert streamed_answer(_http(400, "application/json", refusal)) is None
    assert streamed_answer(_http(200, "text/event-stream")) == "answered 200 with an event stream"
    assert streamed_answer(_http(200, "text/plain")) == "answered 200 text/plain, not JSON"
    assert streamed_answer(_http(500, "application/json", refusal)) == "refused with 500, a server error"


def test_the_table_names_400_alone_for_an_unserved_model_on_the_node_face() -> None:
    assert {s for s, _ in table_pairs("model", "node")} == {400}
    assert (404, "NOT_FOUND") in table_pairs("model", "proxy")
    assert table_pairs("plaintext", "node") == ((400, "INVALID_BODY"),)
    assert table_pairs("size", "proxy") == table_pairs("size", "node") == ((413, "PAYLOAD_TOO_LARGE"),)


# --- the checks against the mock -----------------------------------------------------------------------


@pytest.mark.parametrize("face", ["proxy", "node"])
def test_the_clean_mock_passes_every_check_on_both_faces(face: Face) -> None:
    counted = _Counted(face=face)
    try:
        outcomes = counted.outcomes()
    finally:
        counted.close()
    assert {i: o for i, o in outcomes.items() if o[0] != "pass"} == {}


@pytest.mark.parametrize(("fault", "face", "failing"), FAULTS, ids=[f for f, _, _ in FAULTS])
def test_each_fault_fails_its_checks_and_no_other(fault: str, face: Face, failing: set[str]) -> None:
    counted = _Counted((fault,), face)
    try:
        outcomes = counted.outcomes()
    finally:
        counted.close()
    assert {i for i, (o, _) in outcomes.items() if o == "fail"} == failing
    errors = {i: why for i, (o, why) in outcomes.items() if o == "error"}
    if fault == "request-hash-reserialized":  # the 2 MiB body is padded with the whitespace it refuses
        assert set(errors) == {"ENDPOINT-016"} and "not evaluated" in errors["ENDPOINT-016"]
    else:
        assert errors == {}


def test_a_check_of_a_variation_is_not_evaluated_when_no_valid_request_round_trips() -> None:
    counted = _Counted(("wrong-response-hash",))
    try:
        outcomes = counted.outcomes()
        assert not counted.run.get(ACCEPTED_VARIATIONS).alone, "nothing is told apart on a target that serves nothing"
    finally:
        counted.close()
    for check_id in ("ENDPOINT-010", "ENDPOINT-013", "ENDPOINT-016"):
        outcome, why = outcomes[check_id]
        assert outcome == "error" and "ENDPOINT-001" in why, check_id
