"""The whole-stream client checks (R13.12, R13.14): each refusal is provoked by the one change it names."""

from __future__ import annotations

import pytest

from conformance.protocol import (
    Exchange,
    NonceReuse,
    Scheme,
    SeededRandom,
    SignatureError,
    StreamChunk,
    StreamOrderError,
    StreamVerifier,
    SuiSigner,
    Usage,
    jsonwire,
    open_request,
    seal_chunk,
    seal_request,
    x25519_public_key,
)

RNG = SeededRandom("streamcheck")
NODE_SK = RNG.token_bytes(32)
SIGNER = SuiSigner(Scheme.ED25519, RNG.token_bytes(32))
OTHER = SuiSigner(Scheme.ED25519, RNG.token_bytes(32))


def exchange() -> tuple[Exchange, Exchange]:
    sealed = seal_request(
        b'{"model":"m","stream":true}', node_public_key=x25519_public_key(NODE_SK), model_name="m",
        stack_small_id=1, stream=True, rng=RNG,
    )  # fmt: skip
    return sealed.exchange, open_request(sealed.request, NODE_SK).exchange


def chunk(
    node: Exchange, content: str, *, usage: bool = False, nonce: bytes | None = None, **kw: object
) -> StreamChunk:
    body: dict[str, object] = {"id": kw.get("id", "c1"), "model": "m", "choices": [{"delta": {"content": content}}]}
    clear = None
    if usage:  # R9.11: the usage chunk carries no choices
        body["choices"] = []
        body["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        clear = Usage.from_json(body["usage"])
    signer = kw.get("signer", SIGNER)
    assert isinstance(signer, SuiSigner)
    return seal_chunk(jsonwire.dumps(body), node, signer, usage=clear, nonce=nonce, rng=RNG)


def test_an_honest_stream_opens_chunk_by_chunk() -> None:
    client, node = exchange()
    verifier = StreamVerifier(client, expected_signer=SIGNER.address)
    texts = [verifier.open(chunk(node, t)).plaintext for t in ("a", "b")]
    texts.append(verifier.open(chunk(node, "", usage=True)).plaintext)
    contents = [jsonwire.loads_object(t)["choices"] for t in texts]
    assert contents == [[{"delta": {"content": "a"}}], [{"delta": {"content": "b"}}], []]


def test_a_repeated_chunk_is_refused() -> None:
    client, node = exchange()
    verifier, first = StreamVerifier(client), chunk(node, "a")
    verifier.open(first)
    with pytest.raises(StreamOrderError, match="repeats an earlier chunk"):
        verifier.open(first)


def test_a_repeated_nonce_is_refused_unless_explicitly_allowed() -> None:
    client, node = exchange()
    nonce = RNG.token_bytes(12)
    strict, lenient = StreamVerifier(client), StreamVerifier(client, allow_nonce_reuse=True)
    first, second = chunk(node, "a", nonce=nonce), chunk(node, "b", nonce=nonce)
    strict.open(first)
    with pytest.raises(NonceReuse):
        strict.open(second)
    lenient.open(first)
    assert lenient.open(second).nonce == nonce


def test_a_change_of_signer_mid_stream_is_refused() -> None:
    client, node = exchange()
    verifier = StreamVerifier(client)  # no expected address: signer *stability* still holds (R13.12)
    verifier.open(chunk(node, "a"))
    with pytest.raises(SignatureError, match="different address"):
        verifier.open(chunk(node, "b", signer=OTHER))


def test_a_chunk_after_the_usage_chunk_is_refused() -> None:
    client, node = exchange()
    verifier = StreamVerifier(client)
    verifier.open(chunk(node, "", usage=True))
    with pytest.raises(StreamOrderError, match="after the usage chunk"):
        verifier.open(chunk(node, "late"))


def test_a_change_of_stream_id_is_refused() -> None:
    client, node = exchange()
    verifier = StreamVerifier(client)
    verifier.open(chunk(node, "a"))
    with pytest.raises(StreamOrderError, match="id, created or model"):
        verifier.open(chunk(node, "b", id="c2"))


def test_an_unsigned_stream_opens_only_when_signatures_are_not_required() -> None:
    import dataclasses

    client, node = exchange()
    unsigned = dataclasses.replace(chunk(node, "a"), signature=None)
    assert StreamVerifier(client, require_signature=False).open(unsigned).signature is None
