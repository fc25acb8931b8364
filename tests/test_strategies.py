"""The public Hypothesis strategies: plaintexts the fake model serves, serializations that parse back,
reproducible sealing, mutations whose labels the protocol core confirms, and SSE framings the parser reads.

The protocol core is the oracle for the mutation labels: every "refuse" mutation must be refused by
parse + decode + open_request with the error class its check is about, and every "accept" mutation must
open to the original plaintext.
"""

from __future__ import annotations

import copy
from random import Random
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from conformance import strategies as cs
from conformance.protocol import (
    AeadError,
    Base64BadPadding,
    Base64MissingPadding,
    Base64NonCanonicalTrailingBits,
    Base64UrlSafeAlphabet,
    Base64Whitespace,
    ConfidentialComputeRequest,
    FixedBytes,
    HashMismatch,
    InvalidJson,
    KeyMismatch,
    LengthError,
    LowOrderPoint,
    MissingField,
    OutOfRange,
    ProtocolError,
    SeededRandom,
    SseParser,
    WrongType,
    jsonwire,
    open_request,
    seal_request,
    x25519_public_key,
)
from mock_node import fake_model

NODE_SK = SeededRandom("tests/test_strategies.py node key").token_bytes(32)
NODE_PK = x25519_public_key(NODE_SK)
MODEL = "meta-llama/Llama-3.2-1B-Instruct"
# ``find`` only has to show that a strategy CAN produce something; skipping the shrink phase returns the
# first hit, which keeps these existence checks to milliseconds.
FIND = settings(max_examples=2000, database=None, phases=[Phase.generate])

# --- plaintext requests -------------------------------------------------------------------------------


def _check_body(endpoint: fake_model.Endpoint, body: dict[str, Any], stream: bool | None) -> None:
    fake_model.validate(endpoint, body)
    assert jsonwire.strict_equal(jsonwire.loads(jsonwire.dumps(body)), body)
    assert body["model"] == MODEL
    if stream is None:
        assert body.get("stream", False) is False
    else:
        assert body["stream"] is stream


@pytest.mark.parametrize("stream", [None, True, False])
@given(data=st.data())
def test_chat_requests_are_served(stream: bool | None, data: st.DataObject) -> None:
    body = data.draw(cs.chat_requests(MODEL, stream=stream))
    _check_body("chat", body, stream)
    assert body["messages"] and body["messages"][-1]["role"] == "user"
    assert {m["role"] for m in body["messages"]} <= {"system", "user", "assistant"}
    if "tool_choice" in body:
        assert body["tool_choice"] == "auto" and 1 <= len(body["tools"]) <= 2


@pytest.mark.parametrize("stream", [None, True])
@given(data=st.data())
def test_completions_requests_are_served(stream: bool | None, data: st.DataObject) -> None:
    body = data.draw(cs.completions_requests(MODEL, stream=stream))
    _check_body("completions", body, stream)
    assert isinstance(body["prompt"], str) or 1 <= len(body["prompt"]) <= 4


@given(cs.embeddings_requests(MODEL))
def test_embeddings_requests_are_served(body: dict[str, Any]) -> None:
    _check_body("embeddings", body, None)
    assert 1 <= body.get("dimensions", 1) <= 64


@given(cs.image_requests(MODEL))
def test_image_requests_are_served(body: dict[str, Any]) -> None:
    _check_body("images", body, None)
    assert body["response_format"] == "b64_json" and body.get("size", "256x256") in ("256x256", "512x512")


@pytest.mark.parametrize("endpoint", ["chat", "completions", "embeddings", "images"])
@given(data=st.data())
def test_plaintext_requests_dispatches(endpoint: fake_model.Endpoint, data: st.DataObject) -> None:
    body = data.draw(cs.plaintext_requests(endpoint, MODEL, stream=False))
    fake_model.validate(endpoint, body)


def test_plaintext_requests_refuses_what_cannot_be_served() -> None:
    with pytest.raises(ValueError, match="does not stream"):
        cs.plaintext_requests("images", MODEL, stream=True)
    with pytest.raises(ValueError, match="endpoint"):
        cs.plaintext_requests("/v1/chat/completions", MODEL)
    with pytest.raises(ValueError, match="model"):
        cs.chat_requests("")


def _contents(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"]]


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("empty content", lambda b: "" in _contents(b)),
        ("emoji", lambda b: any(0x1F300 <= ord(c) <= 0x1FAFF for text in _contents(b) for c in text)),
        ("control character", lambda b: any(ord(c) < 0x20 for text in _contents(b) for c in text)),
        ("NUL", lambda b: any("\x00" in text for text in _contents(b))),
        ("right-to-left", lambda b: any(0x0590 <= ord(c) <= 0x06FF for text in _contents(b) for c in text)),
        ("combining mark", lambda b: any(0x0300 <= ord(c) <= 0x036F for text in _contents(b) for c in text)),
        ("astral plane", lambda b: any(ord(c) > 0xFFFF for text in _contents(b) for c in text)),
        ("4 KiB-ish content", lambda b: any(len(text.encode()) > 3500 for text in _contents(b))),
        ("tools", lambda b: len(b.get("tools", ())) == 2 and b.get("tool_choice") == "auto"),
        ("stop list", lambda b: isinstance(b.get("stop"), list)),
    ],
)
def test_chat_requests_can_produce(what: str, condition: Any) -> None:
    body = find(cs.chat_requests(MODEL), condition, settings=FIND, random=Random(0))
    fake_model.validate("chat", body)


# --- serializations -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["/", "\\u00ab", "😀", "\x00\x1f", "e\u0301"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(value=JSON_VALUES, data=st.data())
def test_serializations_parse_back_to_the_value(value: Any, data: st.DataObject) -> None:
    text = data.draw(cs.serializations(value))
    parsed = jsonwire.loads(text)
    assert jsonwire.strict_equal(parsed, value, numbers_by_value=True)
    assert jsonwire.strict_equal(parsed, value)  # integers stay integers, floats stay floats


@given(data=st.data())
def test_serializations_of_a_plaintext_parse_back(data: st.DataObject) -> None:
    body = data.draw(cs.chat_requests(MODEL))
    assert jsonwire.strict_equal(jsonwire.loads(data.draw(cs.serializations(body))), body)


def test_serializations_vary() -> None:
    value = {"a": [1, 2.5, "x/y é 😀"], "b": {"c": None, "d": True}, "e": ""}
    compact = jsonwire.dumps(value)
    other = find(cs.serializations(value), lambda text: text != compact, settings=FIND, random=Random(0))
    assert jsonwire.strict_equal(jsonwire.loads(other), value)
    for condition in (
        lambda t: b'"b"' in t and t.index(b'"b"') < t.index(b'"a"'),  # member order
        lambda t: b"\\/" in t,  # escaped solidus
        lambda t: b"\\ud83d\\ude00" in t.lower(),  # ensure_ascii surrogate pair
        lambda t: b"\n " in t,  # pretty-printed
        lambda t: b"e+0" in t.lower(),  # exponent form of 2.5
    ):
        found = find(cs.serializations(value), condition, settings=FIND, random=Random(0))
        assert jsonwire.strict_equal(jsonwire.loads(found), value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), ValueError),
        ({"x": [float("inf")]}, ValueError),
        (["\ud800"], ValueError),
        ({1: 2}, TypeError),
        ((1, 2), TypeError),
    ],
)
def test_serializations_refuse_values_without_an_exact_json_text(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        cs.serializations(value)


# --- sealing ------------------------------------------------------------------------------------------


def _seal(plaintext: bytes, r: bytes, *, stream: bool | None = None, units: int | None = None) -> dict[str, Any]:
    sealed = seal_request(
        plaintext,
        node_public_key=NODE_PK,
        model_name=MODEL,
        stack_small_id=7,
        stream=stream,
        num_compute_units=units,
        rng=FixedBytes(r[:32], r[32:48], r[48:]),
    )
    return sealed.request.to_json()


@given(cs.seal_randomness(), st.binary(max_size=64))
def test_seal_randomness_round_trips(r: bytes, plaintext: bytes) -> None:
    assert len(r) == 60
    envelope = _seal(plaintext, r)
    opened = open_request(ConfidentialComputeRequest.parse(jsonwire.dumps(envelope)), NODE_SK)
    assert opened.plaintext == plaintext
    assert opened.decoded.salt == r[32:48] and opened.decoded.nonce == r[48:]
    assert opened.decoded.client_dh_public_key == x25519_public_key(r[:32])


# --- mutations ----------------------------------------------------------------------------------------

# name: (check id, spec ids, verdict, the core's error classes for a refusal)
FAMILIES: dict[str, tuple[str, tuple[str, ...], str, tuple[type[ProtocolError], ...]]] = {
    "ciphertext-bit-flip": ("ERR-001", ("R5.4", "R10.5", "R10.8"), "refuse", (AeadError,)),
    "tag-bit-flip": ("ERR-002", ("R5.4", "R10.5", "R10.8"), "refuse", (AeadError,)),
    "ciphertext-truncated": ("ERR-002", ("R5.2", "R5.4", "R10.5", "R10.8"), "refuse", (AeadError, LengthError)),
    "nonce-bit-flip": ("ERR-003", ("R5.4", "R10.8"), "refuse", (AeadError,)),
    "salt-bit-flip": ("ERR-004", ("R5.4", "R10.8"), "refuse", (AeadError,)),
    "client-key-swapped": ("ERR-005", ("R5.4",), "refuse", (AeadError,)),
    "node-key-swapped": ("ERR-006", ("R3.13",), "refuse", (KeyMismatch,)),
    "hash-bit-flip": ("ERR-007", ("R6.2", "R10.6"), "refuse", (HashMismatch,)),
    "low-order-client-key": ("ERR-008", ("R4.2",), "refuse", (LowOrderPoint,)),
    "field-missing": ("ERR-009", ("R3.1",), "refuse", (MissingField,)),
    "type-confusion": ("ERR-010", ("R3.1", "R3.11", "R3.12"), "refuse", (WrongType,)),
    "base64-urlsafe": ("ERR-014", ("R3.4", "R10.3"), "refuse", (Base64UrlSafeAlphabet, Base64Whitespace)),
    "base64-whitespace": ("ERR-014", ("R3.4", "R10.3"), "refuse", (Base64Whitespace,)),
    "base64-trailing-bits": ("ERR-014", ("R3.4", "R10.3"), "refuse", (Base64NonCanonicalTrailingBits,)),
    "base64-unpadded": ("ERR-015", ("R3.4", "R10.3"), "refuse", (Base64MissingPadding,)),
    "wrong-length": ("ERR-024", ("R3.5", "R3.6", "R3.7", "R3.8", "R3.9", "R10.3"), "refuse", (LengthError,)),
    "base64-surplus-padding": ("ERR-015", ("R3.4", "R10.3"), "refuse", (Base64BadPadding,)),
    "ciphertext-short": ("ERR-024", ("R3.10", "R10.3"), "refuse", (LengthError,)),
    "integer-form": ("ERR-010", ("R3.11", "R3.12"), "refuse", (WrongType, OutOfRange)),
    "body-not-object": ("ERR-035", ("R3.1", "R10.2"), "refuse", (WrongType, InvalidJson)),
    "extra-member": ("ENDPOINT-001", ("R3.2", "R1.1", "R8.1"), "accept", ()),
    "reserialized": ("ENDPOINT-001", ("R3.2", "R1.1", "R8.1"), "accept", ()),
}
PARSE_STAGE = {
    "field-missing",
    "type-confusion",
    "integer-form",
    "body-not-object",
}  # refused by the JSON shape check, before decoding

PLAINTEXTS = st.builds(
    lambda text: jsonwire.dumps({"model": MODEL, "messages": [{"role": "user", "content": text}]}),
    st.text(max_size=24),
)
ENVELOPE_OPTIONS = st.tuples(st.sampled_from([None, True, False]), st.none() | st.integers(0, 2**64 - 1))


def _check_oracle(mutation: cs.Mutation, envelope: dict[str, Any], plaintext: bytes) -> None:
    before = copy.deepcopy(envelope)
    body = mutation.apply(envelope)
    assert isinstance(body, bytes)
    assert envelope == before, "apply mutated its input"
    assert mutation.apply(envelope) == body, "apply is not deterministic"
    check_id, spec_refs, expect, errors = FAMILIES[mutation.name]
    assert (mutation.check_id, mutation.spec_refs, mutation.expect) == (check_id, spec_refs, expect)
    assert mutation.label().startswith(f"{check_id} {mutation.name} (")
    if expect == "accept":
        opened = open_request(ConfidentialComputeRequest.parse(body), NODE_SK)
        assert opened.plaintext == plaintext, mutation.label()
        return
    if mutation.name in PARSE_STAGE:
        with pytest.raises(errors):
            ConfidentialComputeRequest.parse(body)
        return
    request = ConfidentialComputeRequest.parse(body)  # every other family keeps the JSON shape valid
    with pytest.raises(errors):
        open_request(request, NODE_SK)


@given(st.lists(cs.mutations(), min_size=1, max_size=12), cs.seal_randomness(), PLAINTEXTS, ENVELOPE_OPTIONS)
def test_mutation_labels_agree_with_the_core(
    batch: list[cs.Mutation], r: bytes, plaintext: bytes, options: tuple[bool | None, int | None]
) -> None:
    envelope = _seal(plaintext, r, stream=options[0], units=options[1])
    for mutation in batch:
        _check_oracle(mutation, envelope, plaintext)


@given(st.lists(cs.mutations(include_accepting=False), min_size=1, max_size=12))
def test_refusing_only(batch: list[cs.Mutation]) -> None:
    assert all(m.expect == "refuse" for m in batch)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_is_drawn_and_labelled_right(name: str) -> None:
    mutation = find(cs.mutations(), lambda m: m.name == name, settings=FIND, random=Random(0))
    assert mutation == cs.Mutation(**{**mutation.__dict__})  # plain data, comparable and reproducible
    for seed in range(4):
        rng = SeededRandom(f"{name} {seed}")
        plaintext = jsonwire.dumps({"model": MODEL, "prompt": rng.token_bytes(8).hex()})
        envelope = _seal(plaintext, rng.token_bytes(60), stream=[None, True, False, None][seed], units=seed or None)
        _check_oracle(mutation, envelope, plaintext)


def test_labels_read_as_documented() -> None:
    drawn = find(cs.mutations(), lambda m: m.name == "tag-bit-flip", settings=FIND, random=Random(1))
    byte, bit = drawn.params
    assert drawn.label() == f"ERR-002 tag-bit-flip (bit {bit} of byte {byte} of the GCM tag flipped)"
    with pytest.raises(ValueError, match="unknown mutation family"):
        cs.Mutation("no-such-family", "ERR-000", (), "refuse", "").apply({})


def test_mutations_of_an_empty_plaintext() -> None:
    envelope = _seal(b"", bytes(60))
    flip = cs.Mutation("ciphertext-bit-flip", "ERR-001", ("R5.4", "R10.5"), "refuse", "", (0, 0))
    with pytest.raises(ValueError, match="no body"):
        flip.apply(envelope)
    truncate = cs.Mutation("ciphertext-truncated", "ERR-002", ("R5.2", "R5.4"), "refuse", "", (1,))
    with pytest.raises(LengthError):
        open_request(ConfidentialComputeRequest.parse(truncate.apply(envelope)), NODE_SK)


# --- SSE framings -------------------------------------------------------------------------------------

PAYLOADS = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=40).map(str.encode),
        st.builds(
            lambda n: jsonwire.dumps({"ciphertext": "AAAA" * n, "nonce": "AAAAAAAAAAAAAAAA", "signature": None}),
            st.integers(0, 64),
        ),
    ),
    max_size=6,
)


def _read(reads: list[bytes]) -> list[str]:
    parser = SseParser()
    out: list[str] = []
    for chunk in reads:
        assert chunk, "a network read is never empty"
        events = parser.feed(chunk)
        assert all(e.event == "message" for e in events)
        out.extend(e.data for e in events)
    out.extend(e.data for e in parser.close())
    assert parser.pending_bytes == 0
    return out


@given(data=st.data(), events=PAYLOADS, allow_done=st.booleans())
def test_sse_framings_carry_exactly_the_events(data: st.DataObject, events: list[bytes], allow_done: bool) -> None:
    reads = data.draw(cs.sse_framings(events, allow_done=allow_done))
    got = _read(reads)
    expected = [e.decode("utf-8") for e in events]
    if allow_done and got[len(expected) :] == ["[DONE]"]:
        got = got[:-1]
    assert got == expected


def test_sse_framings_vary() -> None:
    events = [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    for condition in (
        lambda reads: len(reads) == 1,  # all events coalesced in one read
        lambda reads: any(r.count(b"data") == 0 for r in reads) and len(reads) > 3,  # split mid-event
        lambda reads: b"\r\n" in b"".join(reads),
        lambda reads: b"\r" in b"".join(reads) and b"\n" not in b"".join(reads),
        lambda reads: b": keep-alive" in b"".join(reads),
        lambda reads: b"event:" in b"".join(reads) and b"id:" in b"".join(reads),
        lambda reads: b"data: [DONE]" in b"".join(reads),
    ):
        reads = find(cs.sse_framings(events), condition, settings=FIND, random=Random(0))
        assert [d for d in _read(reads) if d != "[DONE]"] == [e.decode() for e in events]
    never = find(cs.sse_framings(events, allow_done=False), lambda reads: True, settings=FIND)
    assert b"[DONE]" not in b"".join(never)


def test_sse_framings_refuse_payloads_no_framing_can_carry() -> None:
    with pytest.raises(ValueError, match="CR"):
        cs.sse_framings([b"a\rb"])
    with pytest.raises(ValueError, match="UTF-8"):
        cs.sse_framings([b"\xff"])
    assert find(cs.sse_framings([], allow_done=False), lambda reads: True, settings=FIND) == []
