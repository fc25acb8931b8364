"""Envelopes end to end, and every refusal of open_request, open_response and open_chunk."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    RANDOM_NONCE_BUDGET,
    AeadError,
    AeadKey,
    Base64MissingPadding,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    Exchange,
    FixedBytes,
    HashMismatch,
    HighS,
    InvalidJson,
    KeyMismatch,
    LengthError,
    LowOrderPoint,
    MissingField,
    NonceLedger,
    NonceReuse,
    NonceUse,
    OpenedMessage,
    ProtocolError,
    Scheme,
    SealedRequest,
    SeededRandom,
    SignatureVerificationFailed,
    SignerMismatch,
    StreamChunk,
    SuiSignature,
    SuiSigner,
    Usage,
    UsageMismatch,
    b64decode,
    b64encode,
    blake2b_256,
    client_exchange,
    derive_key,
    dumps,
    key_id,
    low_order_encodings,
    open_chunk,
    open_request,
    open_response,
    seal_chunk,
    seal_request,
    seal_response,
    to_high_s,
    x25519_public_key,
    x25519_shared_secret,
)

NODE_SK = SeededRandom("node key").token_bytes(32)
NODE_PK = x25519_public_key(NODE_SK)
OTHER_NODE_SK = SeededRandom("other node key").token_bytes(32)
SIGNER = SuiSigner(Scheme.ED25519, SeededRandom("node signer").token_bytes(32))
OTHER_SIGNER = SuiSigner(Scheme.ED25519, SeededRandom("other signer").token_bytes(32))
PLAINTEXT = b'{"model":"llama","messages":[{"role":"user","content":"SECRET question"}]}'
USAGE_JSON: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
ANSWER = dumps({"choices": [{"message": {"content": "SECRET answer"}}], "usage": USAGE_JSON})
RESPONSE_NONCE = bytes(range(100, 112))

Kind = Literal["response", "chunk"]
KINDS: list[Kind] = ["response", "chunk"]


def _sealed(plaintext: bytes = PLAINTEXT, seed: str = "client", **kwargs: Any) -> SealedRequest:
    return seal_request(
        plaintext, node_public_key=NODE_PK, model_name="llama", stack_small_id=7, rng=SeededRandom(seed), **kwargs
    )


def _check(exc: ProtocolError, cls: type[ProtocolError], code: str, field: str | None) -> None:
    assert type(exc) is cls
    assert exc.code == code
    assert exc.field == field
    assert "SECRET" not in str(exc)


def _replace_request(req: ConfidentialComputeRequest, **changes: Any) -> ConfidentialComputeRequest:
    return dataclasses.replace(req, **changes)


def _seal(kind: Kind, plaintext: bytes, exchange: Exchange, signer: SuiSigner = SIGNER, **kwargs: Any) -> Any:
    kwargs.setdefault("nonce", RESPONSE_NONCE)
    if kind == "response":
        return seal_response(plaintext, exchange, signer, **kwargs)
    return seal_chunk(plaintext, exchange, signer, **kwargs)


def _open(kind: Kind, message: Any, exchange: Exchange, **kwargs: Any) -> OpenedMessage:
    if kind == "response":
        assert isinstance(message, ConfidentialComputeResponse)
        return open_response(message, exchange, **kwargs)
    assert isinstance(message, StreamChunk)
    return open_chunk(message, exchange, **kwargs)


def _open_refused(
    kind: Kind, message: Any, exchange: Exchange, cls: type[ProtocolError], code: str, field: str | None, **kwargs: Any
) -> ProtocolError:
    with pytest.raises(cls) as info:
        _open(kind, message, exchange, **kwargs)
    _check(info.value, cls, code, field)
    return info.value


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(Scheme))
def test_full_round_trip(scheme: Scheme) -> None:
    signer = SuiSigner(scheme, blake2b_256(scheme.label.encode()))
    sealed = _sealed()
    assert sealed.plaintext_hash == blake2b_256(PLAINTEXT)
    # The node receives the request as bytes on the wire.
    wire = ConfidentialComputeRequest.parse(sealed.request.serialize())
    opened = open_request(wire, NODE_SK)
    assert opened.plaintext == PLAINTEXT
    assert opened.exchange.key_id == sealed.exchange.key_id
    assert opened.exchange.salt == sealed.exchange.salt
    assert opened.exchange.request_nonce == sealed.exchange.request_nonce
    assert opened.exchange.client_public_key == sealed.exchange.client_public_key
    assert opened.exchange.node_public_key == NODE_PK == sealed.exchange.node_public_key
    assert opened.decoded == wire.decode()

    usage = Usage.from_json(USAGE_JSON)
    response = seal_response(ANSWER, opened.exchange, signer, usage=usage, rng=SeededRandom("response"))
    wire_response = ConfidentialComputeResponse.parse(response.serialize())
    result = open_response(wire_response, sealed.exchange, expected_signer=signer.address)
    assert result.plaintext == ANSWER
    assert result.plaintext_hash == blake2b_256(ANSWER)
    assert result.nonce == SeededRandom("response").token_bytes(12)
    assert result.signature is not None
    assert result.signature.address == signer.address
    assert result.signature.scheme is scheme


def test_stream_round_trip() -> None:
    sealed = _sealed(stream=True)
    assert sealed.request.stream is True
    opened = open_request(sealed.request, NODE_SK)
    rng = SeededRandom("stream")
    parts = [b'{"choices":[{"delta":{"content":"SECRET"}}]}', b'{"choices":[]}']
    chunks = [seal_chunk(p, opened.exchange, SIGNER, rng=rng) for p in parts]
    final = seal_chunk(ANSWER, opened.exchange, SIGNER, usage=Usage.from_json(USAGE_JSON), rng=rng)
    nonces = set()
    for plaintext, chunk in zip([*parts, ANSWER], [*chunks, final], strict=True):
        event = chunk.sse_event()
        assert event.startswith(b"data: ")
        wire = StreamChunk.parse(event[len(b"data: ") : -2])
        result = open_chunk(wire, sealed.exchange, expected_signer=SIGNER.address)
        assert result.plaintext == plaintext
        nonces.add(result.nonce)
    assert len(nonces) == 3


def test_fixed_bytes_pin_every_random_value() -> None:
    client_sk, salt, nonce = bytes([7]) * 32, bytes([8]) * 16, bytes([9]) * 12
    sealed = seal_request(
        PLAINTEXT,
        node_public_key=NODE_PK,
        model_name="m",
        stack_small_id=1,
        num_compute_units=5,
        rng=FixedBytes(client_sk, salt, nonce),
    )
    req = sealed.request
    assert req.client_dh_public_key == b64encode(x25519_public_key(client_sk))
    assert req.salt == b64encode(salt)
    assert req.nonce == b64encode(nonce)
    assert req.node_dh_public_key == b64encode(NODE_PK)
    assert req.plaintext_body_hash == b64encode(blake2b_256(PLAINTEXT))
    assert req.num_compute_units == 5
    assert req.stream is None
    key = derive_key(x25519_shared_secret(client_sk, NODE_PK), salt)
    assert b64decode(req.ciphertext) == AeadKey(key).seal(nonce, PLAINTEXT)
    assert open_request(req, NODE_SK).plaintext == PLAINTEXT


def test_random_values_are_drawn_in_documented_order() -> None:
    # Salt first would ask FixedBytes for 32 bytes while it holds 16: the order is key, salt, nonce.
    with pytest.raises(ValueError, match="FixedBytes"):
        seal_request(
            PLAINTEXT,
            node_public_key=NODE_PK,
            model_name="m",
            stack_small_id=1,
            rng=FixedBytes(bytes(16), bytes(32), bytes(12)),
        )


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_nonce_draws_no_randomness(kind: Kind) -> None:
    sealed = _sealed()
    message = _seal(kind, ANSWER, sealed.exchange, rng=FixedBytes())
    assert message.nonce == b64encode(RESPONSE_NONCE)
    assert _open(kind, message, sealed.exchange).nonce == RESPONSE_NONCE


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_bytes_response_nonce(kind: Kind) -> None:
    sealed = _sealed()
    message = _seal(kind, ANSWER, sealed.exchange, nonce=None, rng=FixedBytes(bytes([42]) * 12))
    assert message.nonce == b64encode(bytes([42]) * 12)
    assert message.response_hash == b64encode(blake2b_256(ANSWER))
    assert message.signature == SIGNER.sign(blake2b_256(ANSWER)).to_b64()


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_round_trip_property(request_body: bytes, answer: bytes) -> None:
    sealed = _sealed(request_body)
    opened = open_request(sealed.request, NODE_SK)
    assert opened.plaintext == request_body
    response = seal_response(answer, opened.exchange, SIGNER, nonce=RESPONSE_NONCE)
    assert open_response(response, sealed.exchange).plaintext == answer
    chunk = seal_chunk(answer, opened.exchange, SIGNER, nonce=RESPONSE_NONCE)
    assert open_chunk(chunk, sealed.exchange).plaintext == answer


# --- determinism, key ids and repr ------------------------------------------------------------------


def test_same_seed_gives_identical_requests() -> None:
    assert _sealed(seed="s").request.serialize() == _sealed(seed="s").request.serialize()
    assert _sealed(seed="s").request.serialize() != _sealed(seed="t").request.serialize()


def test_same_seed_gives_identical_responses() -> None:
    sealed = _sealed()
    one = seal_response(ANSWER, sealed.exchange, SIGNER, rng=SeededRandom(1))
    two = seal_response(ANSWER, sealed.exchange, SIGNER, rng=SeededRandom(1))
    assert one.serialize() == two.serialize()


def test_key_id_is_deterministic_and_binds_every_input() -> None:
    client, node, salt = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 16
    kid = key_id(client, node, salt)
    assert kid == key_id(client, node, salt)
    assert len(kid) == 32
    assert int(kid, 16) >= 0
    assert kid != key_id(client, node, bytes([4]) * 16)
    assert kid != key_id(bytes([9]) * 32, node, salt)
    assert kid != key_id(client, bytes([9]) * 32, salt)


def test_key_id_of_exchange() -> None:
    sealed = _sealed()
    ex = sealed.exchange
    assert ex.key_id == key_id(ex.client_public_key, ex.node_public_key, ex.salt)
    assert _sealed(seed="other").exchange.key_id != ex.key_id


def test_exchange_repr_has_no_key_material() -> None:
    sealed = _sealed()
    ex = sealed.exchange
    text = repr(ex)
    assert text == f"Exchange(key_id={ex.key_id})"
    client_sk = SeededRandom("client").token_bytes(32)
    key = derive_key(x25519_shared_secret(client_sk, NODE_PK), ex.salt)
    for secret in (key, client_sk, ex.salt, ex.client_public_key, ex.node_public_key, ex.request_nonce):
        assert secret.hex() not in text
        assert b64encode(secret) not in text
    assert key.hex() not in repr(sealed)
    assert client_sk.hex() not in repr(sealed)


# --- client_exchange -------------------------------------------------------------------------------

CLIENT_SK, SALT, REQUEST_NONCE = bytes([7]) * 32, bytes([8]) * 16, bytes([9]) * 12


def test_client_exchange_rebuilds_the_sealing_exchange() -> None:
    sealed = seal_request(
        PLAINTEXT,
        node_public_key=NODE_PK,
        model_name="m",
        stack_small_id=1,
        rng=FixedBytes(CLIENT_SK, SALT, REQUEST_NONCE),
    )
    rebuilt = client_exchange(CLIENT_SK, NODE_PK, SALT, REQUEST_NONCE)
    assert rebuilt.key_id == sealed.exchange.key_id
    assert rebuilt.salt == SALT
    assert rebuilt.request_nonce == REQUEST_NONCE
    assert rebuilt.client_public_key == x25519_public_key(CLIENT_SK)
    assert rebuilt.node_public_key == NODE_PK
    assert repr(rebuilt) == repr(sealed.exchange)
    opened = open_request(sealed.request, NODE_SK)
    response = seal_response(ANSWER, opened.exchange, SIGNER, nonce=RESPONSE_NONCE)
    assert open_response(response, rebuilt, expected_signer=SIGNER.address).plaintext == ANSWER


@pytest.mark.parametrize(
    ("salt", "nonce", "field"),
    [
        (bytes(15), REQUEST_NONCE, "salt"),
        (bytes(17), REQUEST_NONCE, "salt"),
        (SALT, bytes(11), "request_nonce"),
        (SALT, bytes(13), "request_nonce"),
        (bytes(12), bytes(16), "salt"),  # salt is checked first
    ],
)
def test_client_exchange_wrong_lengths(salt: bytes, nonce: bytes, field: str) -> None:
    with pytest.raises(LengthError) as info:
        client_exchange(CLIENT_SK, NODE_PK, salt, nonce)
    _check(info.value, LengthError, "WRONG_LENGTH", field)


def test_client_exchange_wrong_private_key_length() -> None:
    with pytest.raises(LengthError) as info:
        client_exchange(bytes(31), NODE_PK, SALT, REQUEST_NONCE)
    _check(info.value, LengthError, "WRONG_LENGTH", "private_key")


@pytest.mark.parametrize(
    ("node_key", "cls", "code"),
    [
        (bytes(32), LowOrderPoint, "LOW_ORDER_POINT"),
        (low_order_encodings()[-1], LowOrderPoint, "LOW_ORDER_POINT"),
        (bytes(31), LengthError, "WRONG_LENGTH"),
    ],
    ids=["zero", "p+1-high-bit", "short"],
)
def test_client_exchange_refuses_bad_node_key(node_key: bytes, cls: type[ProtocolError], code: str) -> None:
    # The node key comes from the other party: the error must name the argument the caller passed.
    with pytest.raises(cls) as info:
        client_exchange(CLIENT_SK, node_key, SALT, REQUEST_NONCE)
    _check(info.value, cls, code, "node_public_key")


# --- seal_request refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seal_request_node_key_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        seal_request(PLAINTEXT, node_public_key=bytes(length), model_name="m", stack_small_id=1, rng=SeededRandom(0))
    _check(info.value, LengthError, "WRONG_LENGTH", "node_public_key")


def test_seal_request_refuses_low_order_node_key() -> None:
    # The refused value is the caller's node_public_key (the name its LengthError already uses).
    with pytest.raises(LowOrderPoint) as info:
        seal_request(PLAINTEXT, node_public_key=bytes(32), model_name="m", stack_small_id=1, rng=SeededRandom(0))
    _check(info.value, LowOrderPoint, "LOW_ORDER_POINT", "node_public_key")


# --- open_request refusals --------------------------------------------------------------------------


def _open_request_refused(
    request: ConfidentialComputeRequest, cls: type[ProtocolError], code: str, field: str, **kwargs: Any
) -> ProtocolError:
    with pytest.raises(cls) as info:
        open_request(request, NODE_SK, **kwargs)
    _check(info.value, cls, code, field)
    return info.value


def test_open_request_node_key_mismatch() -> None:
    with pytest.raises(KeyMismatch) as info:
        open_request(_sealed().request, OTHER_NODE_SK)
    _check(info.value, KeyMismatch, "NODE_KEY_MISMATCH", "node_dh_public_key")


def test_open_request_node_key_private_length() -> None:
    with pytest.raises(LengthError) as info:
        open_request(_sealed().request, bytes(31))
    _check(info.value, LengthError, "WRONG_LENGTH", "private_key")


@pytest.mark.parametrize("point", low_order_encodings(), ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_open_request_low_order_client_key(point: bytes) -> None:
    req = _replace_request(_sealed().request, client_dh_public_key=b64encode(point))
    exc = _open_request_refused(req, LowOrderPoint, "LOW_ORDER_POINT", "client_dh_public_key")
    assert str(exc).startswith("client_dh_public_key: ")


def _all_zero_secret_request(client_point: bytes, plaintext: bytes = PLAINTEXT) -> ConfidentialComputeRequest:
    """What a client that sends a low-order key can do: encrypt under HKDF(32 zero bytes, salt)."""
    salt, nonce = bytes(range(16)), bytes(range(12))
    aead = AeadKey(derive_key(bytes(32), salt))
    return ConfidentialComputeRequest(
        ciphertext=b64encode(aead.seal(nonce, plaintext)),
        client_dh_public_key=b64encode(client_point),
        model_name="llama",
        node_dh_public_key=b64encode(NODE_PK),
        nonce=b64encode(nonce),
        plaintext_body_hash=b64encode(blake2b_256(plaintext)),
        salt=b64encode(salt),
        stack_small_id=7,
    )


@pytest.mark.parametrize("point", low_order_encodings(), ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_open_request_allow_low_order_reproduces_upstream(point: bytes) -> None:
    req = _all_zero_secret_request(point)
    _open_request_refused(req, LowOrderPoint, "LOW_ORDER_POINT", "client_dh_public_key")
    opened = open_request(req, NODE_SK, allow_low_order=True)
    assert opened.plaintext == PLAINTEXT
    # Anyone can derive that key: the response is readable without the node's private key.
    observer = Exchange(
        AeadKey(derive_key(bytes(32), bytes(range(16)))),
        bytes(range(16)),
        point,
        NODE_PK,
        bytes(range(12)),
    )
    assert observer.key_id == key_id(point, NODE_PK, bytes(range(16)))
    response = seal_response(ANSWER, opened.exchange, SIGNER, nonce=RESPONSE_NONCE)
    assert open_response(response, observer).plaintext == ANSWER


def test_open_request_tampered_ciphertext() -> None:
    req = _sealed().request
    raw = bytearray(b64decode(req.ciphertext))
    for index in (0, len(raw) - 1):
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        bad = _replace_request(req, ciphertext=b64encode(bytes(tampered)))
        _open_request_refused(bad, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext")
        _open_request_refused(bad, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext", check_hash=False)


def test_open_request_tampered_nonce_or_salt() -> None:
    req = _sealed().request
    _open_request_refused(
        _replace_request(req, nonce=b64encode(bytes(12))), AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext"
    )
    _open_request_refused(
        _replace_request(req, salt=b64encode(bytes(16))), AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext"
    )


def test_open_request_other_client_key() -> None:
    other = x25519_public_key(bytes([5]) * 32)
    req = _replace_request(_sealed().request, client_dh_public_key=b64encode(other))
    _open_request_refused(req, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext")


def test_open_request_wrong_plaintext_body_hash() -> None:
    req = _sealed().request
    wrong = blake2b_256(b"another body")
    bad = _replace_request(req, plaintext_body_hash=b64encode(wrong))
    exc = _open_request_refused(bad, HashMismatch, "HASH_MISMATCH", "plaintext_body_hash")
    right = blake2b_256(PLAINTEXT)
    for digest in (wrong, right):
        assert digest.hex() not in str(exc)
        assert b64encode(digest) not in str(exc)
    assert open_request(bad, NODE_SK, check_hash=False).plaintext == PLAINTEXT


def test_open_request_hash_over_raw_bytes() -> None:
    # Re-serializing the JSON (here: adding a space) changes the hash: the node must hash raw bytes.
    sealed = _sealed(b'{"a": 1}')
    assert open_request(sealed.request, NODE_SK).plaintext == b'{"a": 1}'
    bad = _replace_request(sealed.request, plaintext_body_hash=b64encode(blake2b_256(b'{"a":1}')))
    _open_request_refused(bad, HashMismatch, "HASH_MISMATCH", "plaintext_body_hash")


@pytest.mark.parametrize(
    ("key", "value", "cls", "code"),
    [
        ("salt", b64encode(bytes(15)), LengthError, "WRONG_LENGTH"),
        ("nonce", b64encode(bytes(16)), LengthError, "WRONG_LENGTH"),
        ("client_dh_public_key", b64encode(bytes(31)), LengthError, "WRONG_LENGTH"),
        ("node_dh_public_key", "AA", Base64MissingPadding, "BASE64_MISSING_PADDING"),
        ("ciphertext", b64encode(bytes(15)), LengthError, "WRONG_LENGTH"),
        ("plaintext_body_hash", b64encode(bytes(33)), LengthError, "WRONG_LENGTH"),
    ],
)
def test_open_request_decode_errors(key: str, value: str, cls: type[ProtocolError], code: str) -> None:
    _open_request_refused(_replace_request(_sealed().request, **{key: value}), cls, code, key)


def test_open_request_checks_node_key_before_client_key() -> None:
    req = _replace_request(_sealed().request, client_dh_public_key=b64encode(bytes(32)))
    with pytest.raises(KeyMismatch):
        open_request(req, OTHER_NODE_SK)


# --- open_response / open_chunk refusals ------------------------------------------------------------


@pytest.fixture
def exchange() -> Exchange:
    return _sealed().exchange


@pytest.mark.parametrize("kind", KINDS)
def test_nonce_reuse(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, ANSWER, exchange, nonce=exchange.request_nonce)
    exc = _open_refused(kind, message, exchange, NonceReuse, "NONCE_REUSE", "nonce")
    assert exchange.request_nonce.hex() not in str(exc)
    assert _open(kind, message, exchange, reject_request_nonce=False).plaintext == ANSWER


@pytest.mark.parametrize("kind", KINDS)
def test_bad_response_hash(kind: Kind, exchange: Exchange) -> None:
    wrong = blake2b_256(b"something else")
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), response_hash=b64encode(wrong))
    exc = _open_refused(kind, message, exchange, HashMismatch, "HASH_MISMATCH", "response_hash")
    for digest in (wrong, blake2b_256(ANSWER)):
        assert digest.hex() not in str(exc)
        assert b64encode(digest) not in str(exc)
    # require_hash only concerns a missing hash: a wrong one is always refused.
    _open_refused(kind, message, exchange, HashMismatch, "HASH_MISMATCH", "response_hash", require_hash=False)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("value", "cls", "code"),
    [
        (b64encode(bytes(31)), LengthError, "WRONG_LENGTH"),
        (b64encode(bytes(64)), LengthError, "WRONG_LENGTH"),
        ("AA", Base64MissingPadding, "BASE64_MISSING_PADDING"),
    ],
)
def test_malformed_response_hash(
    kind: Kind, exchange: Exchange, value: str, cls: type[ProtocolError], code: str
) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), response_hash=value)
    _open_refused(kind, message, exchange, cls, code, "response_hash")


@pytest.mark.parametrize("kind", KINDS)
def test_missing_response_hash(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), response_hash=None)
    _open_refused(kind, message, exchange, MissingField, "MISSING_FIELD", "response_hash")
    opened = _open(kind, message, exchange, require_hash=False)
    assert opened.plaintext == ANSWER
    assert opened.plaintext_hash == blake2b_256(ANSWER)
    assert opened.signature is not None  # still verified, over the hash of the decrypted bytes


@pytest.mark.parametrize("kind", KINDS)
def test_missing_signature(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), signature=None)
    _open_refused(kind, message, exchange, MissingField, "MISSING_FIELD", "signature")
    opened = _open(kind, message, exchange, require_signature=False)
    assert opened.plaintext == ANSWER
    assert opened.signature is None


@pytest.mark.parametrize("kind", KINDS)
def test_missing_hash_and_signature_both_allowed(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), signature=None, response_hash=None)
    opened = _open(kind, message, exchange, require_signature=False, require_hash=False)
    assert opened == OpenedMessage(ANSWER, blake2b_256(ANSWER), RESPONSE_NONCE, None)


@pytest.mark.parametrize("kind", KINDS)
def test_signature_by_another_signer(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, ANSWER, exchange, signer=OTHER_SIGNER)
    exc = _open_refused(
        kind, message, exchange, SignerMismatch, "SIGNATURE_WRONG_SIGNER", "signature", expected_signer=SIGNER.address
    )
    assert SIGNER.address not in str(exc)
    opened = _open(kind, message, exchange)
    assert opened.signature is not None
    assert opened.signature.address == OTHER_SIGNER.address
    assert _open(kind, message, exchange, expected_signer=OTHER_SIGNER.address).signature == opened.signature


@pytest.mark.parametrize("kind", KINDS)
def test_signature_over_a_different_hash(kind: Kind, exchange: Exchange) -> None:
    other = SIGNER.sign(blake2b_256(b"a different answer")).to_b64()
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), signature=other)
    _open_refused(
        kind,
        message,
        exchange,
        SignatureVerificationFailed,
        "SIGNATURE_VERIFICATION_FAILED",
        "signature",
        expected_signer=SIGNER.address,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_signature_not_base64(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), signature="AA")
    _open_refused(kind, message, exchange, Base64MissingPadding, "BASE64_MISSING_PADDING", "signature")


@pytest.mark.parametrize("kind", KINDS)
def test_usage_equal_passes(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, ANSWER, exchange, usage=Usage.from_json(USAGE_JSON))
    assert _open(kind, message, exchange).plaintext == ANSWER
    # A usage built in code (no raw JSON) with the same values and key order also matches.
    built = _seal(kind, ANSWER, exchange, usage=Usage(prompt_tokens=10, total_tokens=15, completion_tokens=5))
    assert _open(kind, built, exchange).plaintext == ANSWER


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "clear",
    [
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 16},
        {"prompt_tokens": 10, "total_tokens": 15},
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 1},
        },
    ],
)
def test_usage_mismatch(kind: Kind, exchange: Exchange, clear: dict[str, Any]) -> None:
    message = _seal(kind, ANSWER, exchange, usage=Usage.from_json(clear))
    _open_refused(kind, message, exchange, UsageMismatch, "USAGE_MISMATCH", "usage")
    assert _open(kind, message, exchange, check_usage=False).plaintext == ANSWER


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("inner", "clear"),
    [
        ({"prompt_tokens": 10.0, "total_tokens": 15}, {"prompt_tokens": 10, "total_tokens": 15}),  # 10.0 is not 10
        ({"prompt_tokens": 1, "total_tokens": True}, {"prompt_tokens": 1, "total_tokens": 1}),  # true is not 1
        ({"total_tokens": 15, "prompt_tokens": 10}, {"prompt_tokens": 10, "total_tokens": 16}),
        (None, {"prompt_tokens": 10, "total_tokens": 15}),  # no usage inside the plaintext at all
    ],
)
def test_usage_comparison_is_strict(kind: Kind, exchange: Exchange, inner: Any, clear: dict[str, Any]) -> None:
    plaintext = dumps({"choices": [], "usage": inner}) if inner is not None else b'{"choices":[]}'
    message = _seal(kind, plaintext, exchange, usage=Usage.from_json(clear))
    _open_refused(kind, message, exchange, UsageMismatch, "USAGE_MISMATCH", "usage")


@pytest.mark.parametrize("kind", KINDS)
def test_usage_comparison_ignores_key_order(kind: Kind, exchange: Exchange) -> None:
    plaintext = dumps({"usage": {"total_tokens": 15, "prompt_tokens": 10}})
    message = _seal(kind, plaintext, exchange, usage=Usage(prompt_tokens=10, total_tokens=15))
    assert _open(kind, message, exchange).plaintext == plaintext


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("plaintext", [b"not json SECRET", b"[1,2]", b'{"a":1,"a":2}'])
def test_usage_with_non_object_plaintext(kind: Kind, exchange: Exchange, plaintext: bytes) -> None:
    message = _seal(kind, plaintext, exchange, usage=Usage.from_json(USAGE_JSON))
    _open_refused(kind, message, exchange, InvalidJson, "INVALID_JSON", "plaintext")
    assert _open(kind, message, exchange, check_usage=False).plaintext == plaintext


@pytest.mark.parametrize("kind", KINDS)
def test_no_clear_usage_means_no_usage_check(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, b"not json at all", exchange)
    assert _open(kind, message, exchange).plaintext == b"not json at all"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("length", [0, 8, 11, 13, 16])
def test_wrong_length_nonce(kind: Kind, exchange: Exchange, length: int) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), nonce=b64encode(bytes(length)))
    exc = _open_refused(kind, message, exchange, LengthError, "WRONG_LENGTH", "nonce")
    assert exc.reason == f"decodes to {length} bytes, expected exactly 12"


@pytest.mark.parametrize("kind", KINDS)
def test_nonce_not_base64(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), nonce="AAAAAAAAAAAAAAA")
    _open_refused(kind, message, exchange, Base64MissingPadding, "BASE64_MISSING_PADDING", "nonce")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("length", [0, 1, 15])
def test_short_ciphertext(kind: Kind, exchange: Exchange, length: int) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), ciphertext=b64encode(bytes(length)))
    exc = _open_refused(kind, message, exchange, LengthError, "WRONG_LENGTH", "ciphertext")
    assert exc.reason == f"decodes to {length} bytes, shorter than the 16-byte GCM tag"


@pytest.mark.parametrize("kind", KINDS)
def test_ciphertext_not_base64(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), ciphertext="AA")
    _open_refused(kind, message, exchange, Base64MissingPadding, "BASE64_MISSING_PADDING", "ciphertext")


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_ciphertext(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, ANSWER, exchange)
    raw = bytearray(b64decode(message.ciphertext))
    raw[3] ^= 0x40
    tampered = dataclasses.replace(message, ciphertext=b64encode(bytes(raw)))
    _open_refused(kind, tampered, exchange, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext")


@pytest.mark.parametrize("kind", KINDS)
def test_other_nonce_fails_authentication(kind: Kind, exchange: Exchange) -> None:
    message = dataclasses.replace(_seal(kind, ANSWER, exchange), nonce=b64encode(bytes(12)))
    _open_refused(kind, message, exchange, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext")


@pytest.mark.parametrize("kind", KINDS)
def test_other_exchange_fails_authentication(kind: Kind, exchange: Exchange) -> None:
    message = _seal(kind, ANSWER, exchange)
    _open_refused(kind, message, _sealed(seed="other").exchange, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext")


@pytest.mark.parametrize("kind", KINDS)
def test_checks_run_in_documented_order(kind: Kind, exchange: Exchange) -> None:
    # Request nonce reuse is reported before the (also broken) AEAD tag, hash and signature.
    message = dataclasses.replace(
        _seal(kind, ANSWER, exchange, nonce=exchange.request_nonce),
        ciphertext=b64encode(bytes(32)),
        response_hash=None,
        signature=None,
    )
    _open_refused(kind, message, exchange, NonceReuse, "NONCE_REUSE", "nonce")
    # With the nonce check off, the tag is next.
    _open_refused(
        kind, message, exchange, AeadError, "AEAD_AUTHENTICATION_FAILED", "ciphertext", reject_request_nonce=False
    )
    # A good ciphertext with a wrong hash and a missing signature: the hash is reported first.
    bad = dataclasses.replace(_seal(kind, ANSWER, exchange), response_hash=b64encode(bytes(32)), signature=None)
    _open_refused(kind, bad, exchange, HashMismatch, "HASH_MISMATCH", "response_hash")


def test_ecdsa_signed_response_with_high_s_is_refused(exchange: Exchange) -> None:
    signer = SuiSigner(Scheme.SECP256K1, blake2b_256(b"k1 node"))
    response = seal_response(ANSWER, exchange, signer, nonce=RESPONSE_NONCE)
    assert response.signature is not None
    sig = SuiSignature(Scheme.SECP256K1, b64decode(response.signature)[1:65], signer.public_key)
    high = dataclasses.replace(response, signature=to_high_s(sig).to_b64())
    _open_refused("response", high, exchange, HighS, "SIGNATURE_HIGH_S", "signature")


# --- nonce audit across a whole exchange ------------------------------------------------------------
# open_chunk checks one chunk; reuse *across* chunks is found by auditing every nonce under the key.


def _audit(sealed: SealedRequest, chunks: list[StreamChunk], ledger: NonceLedger | None = None) -> NonceLedger:
    ledger = NonceLedger() if ledger is None else ledger
    ledger.observe(sealed.exchange.key_id, sealed.exchange.request_nonce, "request")
    for i, chunk in enumerate(chunks):
        opened = open_chunk(chunk, sealed.exchange, reject_request_nonce=False)
        ledger.observe(sealed.exchange.key_id, opened.nonce, f"chunk[{i}]")
    return ledger


def test_conformant_stream_has_no_nonce_findings() -> None:
    sealed = _sealed()
    opened = open_request(sealed.request, NODE_SK)
    rng = SeededRandom("chunks")
    ledger = _audit(sealed, [seal_chunk(b"{}", opened.exchange, SIGNER, rng=rng) for _ in range(4)])
    assert ledger.findings == []
    assert ledger.observations == 5
    assert ledger.keys == 1
    assert ledger.max_uses_per_key() == 5
    assert ledger.budget_fraction() == 5 / RANDOM_NONCE_BUDGET
    assert {u.where for u in ledger.uses()} == {"request", "chunk[0]", "chunk[1]", "chunk[2]", "chunk[3]"}


def test_stream_with_a_fixed_nonce_is_found_by_the_audit() -> None:
    sealed = _sealed()
    opened = open_request(sealed.request, NODE_SK)
    # Every chunk opens fine on its own: only the audit sees the reuse.
    chunks = [seal_chunk(b"{}", opened.exchange, SIGNER, nonce=RESPONSE_NONCE) for _ in range(3)]
    ledger = _audit(sealed, chunks)
    assert [(f.first.where, f.second.where) for f in ledger.findings] == [
        ("chunk[0]", "chunk[1]"),
        ("chunk[0]", "chunk[2]"),
    ]
    assert ledger.findings[0].first == NonceUse(sealed.exchange.key_id, RESPONSE_NONCE, "chunk[0]")
    assert ledger.max_uses_per_key() == 4
    assert ledger.observations == 4


def test_response_echoing_the_request_nonce_is_found_by_the_audit() -> None:
    sealed = _sealed()
    opened = open_request(sealed.request, NODE_SK)
    chunk = seal_chunk(b"{}", opened.exchange, SIGNER, nonce=sealed.exchange.request_nonce)
    ledger = _audit(sealed, [chunk])
    assert len(ledger.findings) == 1
    assert (ledger.findings[0].first.where, ledger.findings[0].second.where) == ("request", "chunk[0]")


def test_audit_separates_keys_and_merges_workers() -> None:
    one, two = _sealed(seed="one"), _sealed(seed="two")
    ledger_one = _audit(one, [])
    ledger_two = _audit(two, [])
    ledger_one.merge(ledger_two.uses())
    assert ledger_one.keys == 2
    assert ledger_one.findings == []
    # The same worker's nonces merged twice are all reuses.
    ledger_one.merge(ledger_two.uses())
    assert len(ledger_one.findings) == 1
    assert NonceLedger().max_uses_per_key() == 0
