"""Every fault of the mock node's catalogue, shown by its exact effect on the wire.

Each per-fault test runs one exchange against a node with the fault and checks the effect with the
protocol core as the oracle, then runs the same exchange against the strict node and checks that the
effect is absent, so the test proves the fault is what changed the bytes. Where it helps, the strict
and the faulty node are *twins*: same node key, same seeded node randomness, same clock and the same
seeded client, so their answers are byte-identical except for what the fault does, and the test can
state the effect as an exact transform of the strict bytes ("the faulty ciphertext is the strict one
minus its last four bytes").

``FAULT_TESTS`` maps every fault name to its test; a meta-test requires its keys to equal the
catalogue (but for the concurrency faults, which tests/test_mock_concurrency_faults.py shows), so a
fault added without a wire-effect test fails the suite. The file also covers the
``X-Mock-Fault`` header, :func:`mock_node.faults.resolve`, the catalogue's integrity against
docs/spec.md, and the documented behaviours of the ``atoma-node-compat`` profile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conformance import spec
from conformance.client import DROP, ConfidentialClient, NodeFace
from conformance.protocol import (
    CURVE_ORDER,
    KEEPALIVE,
    TAG_LEN,
    AeadError,
    AeadKey,
    Base64MissingPadding,
    Base64UrlSafeAlphabet,
    Base64Whitespace,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    Exchange,
    HashMismatch,
    HighS,
    LengthError,
    LockResponse,
    LowOrderPoint,
    MissingField,
    NonceReuse,
    Scheme,
    SeededRandom,
    SignatureLength,
    SignatureVerificationFailed,
    SignerMismatch,
    SseParser,
    SuiSignature,
    SuiSigner,
    UnknownSignatureScheme,
    UsageMismatch,
    WrongType,
    b64decode,
    b64encode,
    blake2b_256,
    derive_key,
    ecdsa_scalars,
    hkdf_sha256,
    is_compact,
    is_low_order,
    jsonwire,
    off_curve_key,
    open_response,
    parse_signature,
    seal_request,
    to_high_s,
    verify,
    verify_b64,
    with_scalars,
    x25519_public_key,
    x25519_shared_secret,
)
from mock_node import misshape
from mock_node.app import BINARY_MEMBERS
from mock_node.behaviour import (
    ATOMA_NODE_COMPAT,
    ENVELOPE_SHAPES,
    LOCK_REPLY_SHAPES,
    STREAM_SHAPES,
    STRICT,
    Behaviour,
)
from mock_node.config import MAX_BODY_BYTES, ConfigError, MockConfig
from mock_node.faults import CATALOGUE, FAULTS, UnknownFault, resolve
from mock_node.sealing import STATIC_NONCE
from mock_node.testing import running_node
from tests.mockclient import CHAT_MODEL, PATHS, MockClient, Sent, plaintext_for

MakeClient = Callable[..., MockClient]
TestFn = TypeVar("TestFn", bound=Callable[..., None])

ED25519_L = 2**252 + 27742317777372353535851937790883648493  # written out, not taken from the mock
FIXED_WALL_CLOCK = 1_700_000_000.0
INTERNAL = (500, "INTERNAL_ERROR", "Internal server error occurred")

FAULT_TESTS: dict[str, Callable[..., None]] = {}


def covers(fault: str) -> Callable[[TestFn], TestFn]:
    """Register ``fn`` as the wire-effect test of ``fault`` (checked against the catalogue below)."""

    def register(fn: TestFn) -> TestFn:
        assert fault not in FAULT_TESTS, f"two tests claim {fault}"
        FAULT_TESTS[fault] = fn
        return fn

    return register


# --- helpers -----------------------------------------------------------------------------------------


def twins(make_client: MakeClient, *faults: str, **config: Any) -> tuple[MockClient, MockClient]:
    """A strict node and a faulty node that differ only by ``faults``: same keys, node randomness, clock
    and client randomness, so every byte they send differs only where a fault acts."""

    def build(active: tuple[str, ...]) -> MockClient:
        return make_client(
            faults=list(active), rng=SeededRandom("twin node"), wall_clock=lambda: FIXED_WALL_CLOCK, **config
        )

    return build(()), build(faults)


def error_of(sent_or_response: Sent | httpx.Response) -> tuple[int, str, str]:
    """(status, code, message) of a JSON error body, after checking the R10.1 shape."""
    response = sent_or_response.response if isinstance(sent_or_response, Sent) else sent_or_response
    assert response.headers["content-type"] == "application/json", response.text
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return response.status_code, body["error"]["code"], body["error"]["message"]


def decrypt(sent: Sent) -> bytes:
    """The response plaintext under the request key, with no hash, signature or nonce check."""
    envelope = sent.envelope()
    return sent.sealed.exchange.aead.open(b64decode(envelope["nonce"]), b64decode(envelope["ciphertext"]))


def shared_secret(client: MockClient, sent: Sent) -> bytes:
    """The exchange's X25519 shared secret, recomputed on the node side from the node's private key."""
    return x25519_shared_secret(client.config.node_private_key, sent.sealed.exchange.client_public_key)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def event_data(sent: Sent) -> list[str]:
    return [event.data for event in sent.events()]


def flip_tag(text: str) -> str:
    """Flip one bit of the last byte (the GCM tag) of a base64 value."""
    raw = bytearray(b64decode(text))
    raw[-1] ^= 1
    return b64encode(bytes(raw))


def tampered(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"ciphertext": flip_tag(envelope["ciphertext"])}


WRONG_HASH = blake2b_256(b"not the plaintext")


def wrong_hash(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"plaintext_body_hash": b64encode(WRONG_HASH)}


def other_model(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"model_name": "other"}


def low_order_request(client: MockClient, stack_small_id: int) -> tuple[bytes, Exchange, bytes]:
    """A chat request with ``client_dh_public_key`` = 32 zero bytes, sealed under the key any observer can
    compute: HKDF(ss = 32 zero bytes, salt). Returns the body, the exchange and the plaintext."""
    rng = SeededRandom("low-order client")
    salt, nonce = rng.token_bytes(16), rng.token_bytes(12)
    plaintext = jsonwire.dumps(plaintext_for("chat"))
    zero, node_pk = bytes(32), client.config.node_public_key
    exchange = Exchange(AeadKey(derive_key(zero, salt)), salt, zero, node_pk, nonce)
    request = ConfidentialComputeRequest(
        ciphertext=b64encode(exchange.aead.seal(nonce, plaintext)),
        client_dh_public_key=b64encode(zero),
        model_name=CHAT_MODEL,
        node_dh_public_key=b64encode(node_pk),
        nonce=b64encode(nonce),
        plaintext_body_hash=b64encode(blake2b_256(plaintext)),
        salt=b64encode(salt),
        stack_small_id=stack_small_id,
        stream=False,
    )
    return request.serialize(), exchange, plaintext


def assert_strict_opens(client: MockClient, sent: Sent) -> bytes:
    """The strict node's answer passes every client check, signer pinned; returns the plaintext."""
    assert sent.status == 200, sent.response.text
    return sent.open(expected_signer=client.config.signer_address).plaintext


# --- nonces ------------------------------------------------------------------------------------------


@covers("stream-nonce-reuse")
def test_stream_nonce_reuse_gives_every_chunk_one_nonce_and_leaks_plaintext_xor(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "stream-nonce-reuse")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    chunks = bad.chunks()
    assert len(chunks) >= 4
    assert {c.nonce for c in chunks} == {good.chunks()[0].nonce}, "one nonce: the first one a fresh node draws"
    opened = bad.open_chunks(expected_signer=faulty.config.signer_address)  # each chunk alone is valid
    assert [m.plaintext for m in opened] == [m.plaintext for m in good.open_chunks()]
    bodies = [b64decode(c.ciphertext)[:-TAG_LEN] for c in chunks]
    for body, message in zip(bodies[1:], opened[1:], strict=True):
        n = min(len(bodies[0]), len(body))
        # Same key and nonce, same keystream: the ciphertext XOR is the plaintext XOR (R12.2, R12.3).
        assert xor(bodies[0][:n], body[:n]) == xor(opened[0].plaintext[:n], message.plaintext[:n])
    # Strict: a fresh nonce per chunk, and the XOR relation does not hold.
    strict_chunks = good.chunks()
    assert len({c.nonce for c in strict_chunks}) == len(strict_chunks)
    plain = [m.plaintext for m in good.open_chunks()]
    strict_bodies = [b64decode(c.ciphertext)[:-TAG_LEN] for c in strict_chunks]
    n = min(len(strict_bodies[0]), len(strict_bodies[1]))
    assert xor(strict_bodies[0][:n], strict_bodies[1][:n]) != xor(plain[0][:n], plain[1][:n])


@covers("static-nonce")
def test_static_nonce_is_one_fixed_nonce_across_requests_and_chunks(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "static-nonce")
    static = b64encode(STATIC_NONCE)
    first, second = faulty.send(), faulty.send()
    assert first.sealed.exchange.key_id != second.sealed.exchange.key_id, "two different keys"
    assert first.envelope()["nonce"] == second.envelope()["nonce"] == static
    assert first.open().nonce == STATIC_NONCE, "otherwise the response is valid"
    streamed = faulty.send(stream=True)
    assert {c.nonce for c in streamed.chunks()} == {static}
    # Strict: fresh nonces everywhere, never the static one.
    nonces = [strict.send().envelope()["nonce"], strict.send().envelope()["nonce"]]
    nonces += [c.nonce for c in strict.send(stream=True).chunks()]
    assert len(set(nonces)) == len(nonces) and static not in nonces


@covers("echo-request-nonce")
def test_echo_request_nonce_reuses_the_request_nonce(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "echo-request-nonce")
    bad = faulty.send()
    request_nonce = bad.sealed.exchange.request_nonce
    assert bad.envelope()["nonce"] == bad.sealed.request.nonce == b64encode(request_nonce)
    with pytest.raises(NonceReuse):
        bad.open()
    assert bad.open(reject_request_nonce=False).nonce == request_nonce, "it is otherwise well sealed"
    streamed = faulty.send(stream=True)
    assert {c.nonce for c in streamed.chunks()} == {streamed.sealed.request.nonce}
    with pytest.raises(NonceReuse):
        streamed.open_chunks()
    # Strict: the response nonce differs from the request nonce and the response opens.
    good = strict.send()
    assert good.envelope()["nonce"] != good.sealed.request.nonce
    assert_strict_opens(strict, good)
    good_stream = strict.send(stream=True)
    assert good_stream.sealed.request.nonce not in {c.nonce for c in good_stream.chunks()}


# --- response_hash -----------------------------------------------------------------------------------


@covers("wrong-response-hash")
def test_wrong_response_hash_covers_other_bytes(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "wrong-response-hash")
    good, bad = strict.send(), faulty.send()
    plaintext = decrypt(bad)  # the ciphertext itself is fine
    claimed = b64decode(bad.envelope()["response_hash"])
    assert len(claimed) == 32 and claimed != blake2b_256(plaintext)
    assert claimed == blake2b_256(plaintext + b" "), "the hash of one extra byte"
    verify_b64(bad.envelope()["signature"], claimed)  # the node signed the wrong hash consistently
    with pytest.raises(HashMismatch):
        bad.open()
    # Only response_hash and signature differ from the strict twin.
    assert {k: v for k, v in bad.envelope().items() if k not in ("response_hash", "signature")} == {
        k: v for k, v in good.envelope().items() if k not in ("response_hash", "signature")
    }
    assert b64decode(good.envelope()["response_hash"]) == blake2b_256(assert_strict_opens(strict, good))


@covers("sha256-response-hash")
def test_sha256_response_hash_is_sha256_of_the_plaintext(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "sha256-response-hash")
    good, bad = strict.send(), faulty.send()
    plaintext = decrypt(bad)
    assert bad.envelope()["response_hash"] == b64encode(hashlib.sha256(plaintext).digest())
    with pytest.raises(HashMismatch):
        bad.open()
    strict_plain = assert_strict_opens(strict, good)
    assert strict_plain == plaintext
    assert good.envelope()["response_hash"] == b64encode(blake2b_256(plaintext))
    assert good.envelope()["response_hash"] != bad.envelope()["response_hash"]


@covers("reserialized-response-hash")
def test_reserialized_response_hash_covers_a_reserialization(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "reserialized-response-hash")
    good, bad = strict.send(), faulty.send()
    plaintext = decrypt(bad)
    reserialized = json.dumps(json.loads(plaintext)).encode()
    assert reserialized != plaintext and b'", "' in reserialized, "json.dumps adds spaces"
    assert bad.envelope()["response_hash"] == b64encode(blake2b_256(reserialized))
    with pytest.raises(HashMismatch):
        bad.open()
    assert good.envelope()["response_hash"] == b64encode(blake2b_256(assert_strict_opens(strict, good)))
    assert good.envelope()["response_hash"] != b64encode(blake2b_256(reserialized))


# --- signatures --------------------------------------------------------------------------------------


@covers("signature-wrong-bytes")
def test_signature_wrong_bytes_signs_the_hash_of_the_ciphertext(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "signature-wrong-bytes")
    good, bad = strict.send(), faulty.send()
    envelope = bad.envelope()
    response_hash = b64decode(envelope["response_hash"])
    assert response_hash == blake2b_256(decrypt(bad)), "the hash itself is right"
    signature = verify_b64(envelope["signature"], blake2b_256(b64decode(envelope["ciphertext"])))
    assert signature.address == faulty.config.signer_address, "the right key, over the wrong bytes"
    with pytest.raises(SignatureVerificationFailed):
        verify_b64(envelope["signature"], response_hash)
    with pytest.raises(SignatureVerificationFailed):
        bad.open()
    # Strict: the signature covers response_hash, not H(ciphertext).
    assert_strict_opens(strict, good)
    with pytest.raises(SignatureVerificationFailed):
        verify_b64(good.envelope()["signature"], blake2b_256(b64decode(good.envelope()["ciphertext"])))


@covers("foreign-signer")
def test_foreign_signer_signs_with_a_fresh_key_per_message(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "foreign-signer")
    first, second = faulty.send(), faulty.send()
    signers = [m.signature.address for m in (first.open(), second.open()) if m.signature is not None]
    assert len(signers) == 2, "each signature is valid over its response_hash"
    assert faulty.config.signer_address not in signers and signers[0] != signers[1]
    with pytest.raises(SignerMismatch):
        first.open(expected_signer=faulty.config.signer_address)
    opened = [strict.send().open(expected_signer=strict.config.signer_address) for _ in range(2)]
    assert {m.signature.address for m in opened if m.signature is not None} == {strict.config.signer_address}


@covers("malleated-signature")
@pytest.mark.parametrize("scheme", [Scheme.ED25519, Scheme.SECP256K1])
def test_malleated_signature_is_the_non_canonical_twin(make_client: MakeClient, scheme: Scheme) -> None:
    strict, faulty = twins(make_client, "malleated-signature", signer_scheme=scheme)
    good, bad = strict.send(), faulty.send()
    response_hash = b64decode(bad.envelope()["response_hash"])
    sent_sig = parse_signature(bad.envelope()["signature"])
    strict_sig = parse_signature(good.envelope()["signature"])
    assert sent_sig.address == faulty.config.signer_address
    if scheme is Scheme.ED25519:
        s = int.from_bytes(sent_sig.signature[32:], "little")
        assert s >= ED25519_L, "S is not reduced mod L"
        with pytest.raises(SignatureVerificationFailed):
            verify(sent_sig, response_hash)
        canonical = SuiSignature(
            scheme, sent_sig.signature[:32] + (s - ED25519_L).to_bytes(32, "little"), sent_sig.public_key
        )
        assert int.from_bytes(strict_sig.signature[32:], "little") < ED25519_L
        with pytest.raises(SignatureVerificationFailed):
            bad.open()
    else:
        order = CURVE_ORDER[scheme]
        s = int.from_bytes(sent_sig.signature[32:], "big")
        assert s > order // 2
        with pytest.raises(HighS):
            verify(sent_sig, response_hash)
        canonical = SuiSignature(scheme, sent_sig.signature[:32] + (order - s).to_bytes(32, "big"), sent_sig.public_key)
        assert int.from_bytes(strict_sig.signature[32:], "big") <= order // 2
        with pytest.raises(HighS):
            bad.open()
    verify(canonical, response_hash)  # the canonical twin verifies ...
    assert canonical == strict_sig, "... and is exactly what the strict node sends"
    assert_strict_opens(strict, good)


@covers("missing-signature")
def test_missing_signature_is_null(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "missing-signature")
    bad = faulty.send()
    assert b'"signature":null' in bad.response.content and bad.envelope()["signature"] is None
    with pytest.raises(MissingField) as refused:
        bad.open()
    assert refused.value.field == "signature"
    assert bad.open(require_signature=False).signature is None, "everything else is intact"
    assert all(c.signature is None for c in faulty.send(stream=True).chunks())
    good = strict.send()
    assert isinstance(good.envelope()["signature"], str)
    assert_strict_opens(strict, good)
    assert all(isinstance(c.signature, str) for c in strict.send(stream=True).chunks())


# --- encodings ---------------------------------------------------------------------------------------


@covers("urlsafe-base64")
def test_urlsafe_base64_ciphertext(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "urlsafe-base64")
    good, bad = strict.send(), faulty.send()
    ciphertext = bad.envelope()["ciphertext"]
    assert "+" not in ciphertext and "/" not in ciphertext
    assert {"-", "_"} & set(ciphertext), "the seeded ciphertext has characters the alphabets differ on"
    with pytest.raises(Base64UrlSafeAlphabet):
        b64decode(ciphertext)
    standard = ciphertext.translate(str.maketrans("-_", "+/"))
    assert standard == good.envelope()["ciphertext"], "the same bytes in the other alphabet"
    repaired = ConfidentialComputeResponse.parse(bad.response.content)
    opened = open_response(dataclasses.replace(repaired, ciphertext=standard), bad.sealed.exchange)
    assert opened.plaintext == assert_strict_opens(strict, good)
    assert bad.envelope()["nonce"] == good.envelope()["nonce"], "only the ciphertext is re-encoded"


@covers("unpadded-base64")
def test_unpadded_base64_removes_only_padding_as_documented(make_client: MakeClient) -> None:
    """The documented effect ("sent without '=' padding"): some base64 member loses its '=' padding and
    nothing else, so re-adding the padding gives back the strict twin's value."""
    strict, faulty = twins(make_client, "unpadded-base64")
    good_sent, bad_sent = strict.send(), faulty.send()
    good, bad = good_sent.envelope(), bad_sent.envelope()
    changed = [k for k in good if good[k] != bad[k]]
    assert changed == ["response_hash"]
    assert good["response_hash"].endswith("=") and bad["response_hash"] == good["response_hash"].rstrip("=")
    with pytest.raises(Base64MissingPadding):
        bad_sent.open()
    assert_strict_opens(strict, good_sent)


@covers("nonce-trailing-newline")
def test_nonce_trailing_newline_ends_every_nonce_with_a_newline(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "nonce-trailing-newline")
    good, bad = strict.send(), faulty.send()
    assert bad.envelope() == good.envelope() | {"nonce": good.envelope()["nonce"] + "\n"}, "only the nonce changes"
    with pytest.raises(Base64Whitespace):
        b64decode(bad.envelope()["nonce"])
    parsed = ConfidentialComputeResponse.parse(bad.response.content)
    repaired = dataclasses.replace(parsed, nonce=parsed.nonce.removesuffix("\n"))
    assert open_response(repaired, bad.sealed.exchange).plaintext == assert_strict_opens(strict, good)
    good_chunks, bad_chunks = strict.send(stream=True).chunks(), faulty.send(stream=True).chunks()
    assert [c.nonce for c in bad_chunks] == [c.nonce + "\n" for c in good_chunks]


@covers("wrapped-signature")
def test_wrapped_signature_breaks_the_signature_into_mime_lines(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "wrapped-signature")
    good, bad = strict.send(), faulty.send()
    wrapped = bad.envelope()["signature"]
    lines = wrapped.split("\n")
    assert len(lines) == 3 and lines[-1] == "" and [len(line) for line in lines[:-1]] == [76, 56]
    assert wrapped.replace("\n", "") == good.envelope()["signature"], "the same signature, re-laid"
    assert {k: v for k, v in bad.envelope().items() if k != "signature"} == {
        k: v for k, v in good.envelope().items() if k != "signature"
    }
    with pytest.raises(Base64Whitespace):
        parse_signature(wrapped)
    good_chunks, bad_chunks = strict.send(stream=True).chunks(), faulty.send(stream=True).chunks()
    assert [(c.signature or "").replace("\n", "") for c in bad_chunks] == [c.signature for c in good_chunks]
    assert all((c.signature or "").endswith("\n") for c in bad_chunks)


@covers("bare-signature")
def test_bare_signature_sends_the_64_signature_bytes_alone(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "bare-signature")
    good, bad = strict.send(), faulty.send()
    framed = parse_signature(good.envelope()["signature"])
    bare = b64decode(bad.envelope()["signature"])
    assert bare == framed.signature and len(bare) == 64, "flag byte and public key dropped"
    with pytest.raises((UnknownSignatureScheme, SignatureLength)):
        parse_signature(bad.envelope()["signature"])
    # A genuine signature over response_hash, only unframed: with the flag and key put back it verifies.
    verify(SuiSignature(framed.scheme, bare, framed.public_key), b64decode(bad.envelope()["response_hash"]))
    assert {k: v for k, v in bad.envelope().items() if k != "signature"} == {
        k: v for k, v in good.envelope().items() if k != "signature"
    }
    assert all(len(b64decode(c.signature or "")) == 64 for c in faulty.send(stream=True).chunks())


# --- the response envelope and its HTTP answer --------------------------------------------------------


@covers("images-text-plain")
def test_images_text_plain_sends_the_image_envelope_as_text(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "images-text-plain")
    good, bad = strict.send("images"), faulty.send("images")
    assert good.response.headers["content-type"] == "application/json"
    assert bad.response.headers["content-type"] == "text/plain; charset=utf-8"
    assert bad.response.content == good.response.content, "the body is the strict one"
    assert faulty.send().response.headers["content-type"] == "application/json", "only the image answer"


@covers("extra-envelope-member")
def test_extra_envelope_member_appends_the_request_id(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "extra-envelope-member")
    good, bad = strict.send(), faulty.send()
    assert list(bad.envelope()) == [*good.envelope(), "request_id"]
    request_id = bad.envelope()["request_id"]
    assert bad.envelope() == good.envelope() | {"request_id": request_id}
    answer = json.loads(decrypt(bad))
    assert answer["id"] == f"chatcmpl-{request_id}", "the completion's id, in clear"
    assert event_data(faulty.send(stream=True)) == event_data(strict.send(stream=True)), "chunks are untouched"


@covers("sorted-envelope-members")
def test_sorted_envelope_members_lists_members_alphabetically(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "sorted-envelope-members")
    good, bad = strict.send(), faulty.send()
    assert list(good.envelope()) == ["nonce", "ciphertext", "response_hash", "signature", "usage"]
    assert list(bad.envelope()) == sorted(good.envelope()) and bad.envelope() == good.envelope()
    good_events, bad_events = event_data(strict.send(stream=True)), event_data(faulty.send(stream=True))
    assert [json.loads(e) for e in bad_events] == [json.loads(e) for e in good_events], "the same values"
    assert all(list(json.loads(e)) == sorted(json.loads(e)) for e in bad_events)
    assert list(json.loads(good_events[0])) == ["ciphertext", "nonce", "signature", "response_hash"]


@covers("image-usage")
def test_image_usage_adds_a_null_usage_member(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "image-usage")
    good, bad = strict.send("images"), faulty.send("images")
    assert list(good.envelope()) == ["nonce", "ciphertext", "response_hash", "signature"]
    assert bad.envelope() == good.envelope() | {"usage": None} and list(bad.envelope())[-1] == "usage"
    assert "usage" not in json.loads(decrypt(bad)), "the image plaintext carries none"
    assert faulty.send().envelope() == strict.send().envelope(), "text answers are untouched"


@covers("pretty-json")
def test_pretty_json_indents_the_body(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "pretty-json")
    good, bad = strict.send(), faulty.send()
    assert bad.response.content == json.dumps(good.envelope(), indent=2).encode()
    assert is_compact(good.response.content) and not is_compact(bad.response.content)
    assert bad.envelope() == good.envelope()
    assert faulty.send(stream=True).response.content == strict.send(stream=True).response.content


# --- the plaintext -------------------------------------------------------------------------------------


def plain_answers(make_client: MakeClient, fault: str, endpoint: str = "chat") -> tuple[Any, Any, Sent]:
    """The decrypted answers of a strict twin and a faulty twin, and the faulty exchange."""
    strict, faulty = twins(make_client, fault)
    good, bad = strict.send(endpoint), faulty.send(endpoint)
    return json.loads(assert_strict_opens(strict, good)), json.loads(decrypt(bad)), bad


@covers("double-encoded-image")
def test_double_encoded_image_encrypts_the_json_as_a_string(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "double-encoded-image")
    good, bad = strict.send("images"), faulty.send("images")
    answer = assert_strict_opens(strict, good)
    assert decrypt(bad) == jsonwire.dumps(answer.decode()), "the strict plaintext, serialized once more"
    assert isinstance(json.loads(decrypt(bad)), str)
    assert bad.open().plaintext == decrypt(bad), "hash and signature cover the bytes it encrypted"
    assert json.loads(decrypt(faulty.send())) == json.loads(assert_strict_opens(strict, strict.send()))


@covers("float-created")
def test_float_created_adds_a_fraction_to_created(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "float-created")
    for endpoint in ("chat", "completions", "images"):
        good = json.loads(assert_strict_opens(strict, strict.send(endpoint)))
        bad = json.loads(decrypt(faulty.send(endpoint)))
        assert isinstance(good["created"], int) and bad == good | {"created": good["created"] + 0.25}, endpoint
    chunks = [json.loads(m.plaintext) for m in faulty.send(stream=True).open_chunks()]
    assert {c["created"] for c in chunks} == {FIXED_WALL_CLOCK + 0.25}


@covers("base64-embeddings")
def test_base64_embeddings_sends_float32_base64(make_client: MakeClient) -> None:
    good, bad, _ = plain_answers(make_client, "base64-embeddings", "embeddings")
    vector = good["data"][0]["embedding"]
    packed = base64.b64decode(bad["data"][0]["embedding"], validate=True)
    assert len(packed) == 4 * len(vector)
    assert struct.unpack(f"<{len(vector)}f", packed) == pytest.approx(vector, abs=1e-6)
    assert bad | {"data": good["data"]} == good, "nothing else changes"


@covers("swapped-chunk-objects")
def test_swapped_chunk_objects_labels_each_stream_as_the_other(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "swapped-chunk-objects")
    for endpoint, wrong in (("chat", "text_completion"), ("completions", "chat.completion.chunk")):
        good = [json.loads(m.plaintext) for m in strict.send(endpoint, stream=True).open_chunks()]
        bad = [json.loads(m.plaintext) for m in faulty.send(endpoint, stream=True).open_chunks()]
        assert bad == [chunk | {"object": wrong} for chunk in good], endpoint
    assert json.loads(decrypt(faulty.send()))["object"] == "chat.completion", "whole answers are untouched"


@covers("null-content")
def test_null_content_sends_a_null_message_content(make_client: MakeClient) -> None:
    good, bad, _ = plain_answers(make_client, "null-content")
    content = good["choices"][0]["message"]["content"]
    assert isinstance(content, str) and content
    assert bad["choices"][0]["message"]["content"] is None
    bad["choices"][0]["message"]["content"] = content
    assert bad == good


# --- AEAD --------------------------------------------------------------------------------------------


@covers("truncated-tag")
def test_truncated_tag_cuts_the_gcm_tag_to_twelve_bytes(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "truncated-tag")
    good, bad = strict.send(), faulty.send()
    plaintext = assert_strict_opens(strict, good)
    sealed = b64decode(bad.envelope()["ciphertext"])
    assert len(sealed) == len(plaintext) + TAG_LEN - 4
    assert sealed == b64decode(good.envelope()["ciphertext"])[:-4], "the strict bytes minus 4 tag bytes"
    with pytest.raises(AeadError):
        bad.open()
    # The 12 bytes left are a genuine truncated tag: GCM accepts them with a 12-byte minimum.
    key = derive_key(shared_secret(faulty, bad), bad.sealed.exchange.salt)
    nonce = b64decode(bad.envelope()["nonce"])
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, sealed[-12:], min_tag_length=12)).decryptor()
    assert decryptor.update(sealed[:-12]) + decryptor.finalize() == plaintext
    # Every chunk of a stream too.
    good_chunks, bad_chunks = strict.send(stream=True).chunks(), faulty.send(stream=True).chunks()
    assert [b64decode(c.ciphertext) for c in bad_chunks] == [b64decode(c.ciphertext)[:-4] for c in good_chunks]


def _other_salt_key(shared: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(shared, blake2b_256(b"other salt" + salt)[:16], b"", 32)


def _response_info_key(shared: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(shared, salt, b"response", 32)


@covers("response-other-salt")
def test_response_other_salt_encrypts_under_another_hkdf_salt(make_client: MakeClient) -> None:
    _check_wrong_response_key(make_client, "response-other-salt", _other_salt_key)


@covers("response-hkdf-info")
def test_response_hkdf_info_encrypts_under_info_response(make_client: MakeClient) -> None:
    _check_wrong_response_key(make_client, "response-hkdf-info", _response_info_key)


def _check_wrong_response_key(make_client: MakeClient, fault: str, derive: Callable[[bytes, bytes], bytes]) -> None:
    strict, faulty = twins(make_client, fault)
    good, bad = strict.send(), faulty.send()
    with pytest.raises(AeadError):
        bad.open()  # the request key does not open the response
    exchange = bad.sealed.exchange
    shared = shared_secret(faulty, bad)
    # The reconstruction is right: the protocol KDF over it gives the request key, which opens strict's answer.
    plaintext = assert_strict_opens(strict, good)
    nonce = b64decode(good.envelope()["nonce"])
    assert AeadKey(derive_key(shared, exchange.salt)).open(nonce, b64decode(good.envelope()["ciphertext"])) == plaintext
    wrong = dataclasses.replace(exchange, aead=AeadKey(derive(shared, exchange.salt)))
    opened = open_response(ConfidentialComputeResponse.parse(bad.response.content), wrong)
    assert opened.plaintext == plaintext, "the faulty key opens it, and hash and signature are right"
    with pytest.raises(AeadError):
        open_response(ConfidentialComputeResponse.parse(good.response.content), wrong)
    bad_chunks = faulty.send(stream=True)
    with pytest.raises(AeadError):
        bad_chunks.open_chunks()


def overlapping(client: MockClient) -> tuple[Sent, Sent]:
    """Two chat requests in flight at once on the node's app: the second arrives while the first waits
    on the backend (one event loop, so the interleaving is exact)."""
    sealed = []
    for _ in range(2):
        lock = client.lock()
        raw = jsonwire.dumps(plaintext_for("chat"))
        sealed.append(
            seal_request(
                raw,
                node_public_key=lock.node_public_key(),
                model_name=CHAT_MODEL,
                stack_small_id=lock.stack_small_id,
                rng=client.rng,
            )
        )

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
            posts = [http.post(PATHS["chat"], content=s.request.serialize(), headers=client.headers()) for s in sealed]
            return list(await asyncio.gather(*posts))

    first, second = asyncio.run(both())
    return Sent(first, sealed[0], sealed[0].request.serialize()), Sent(second, sealed[1], sealed[1].request.serialize())


@covers("shared-key-slot")
def test_shared_key_slot_answers_overlapping_requests_under_one_key(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["shared-key-slot"])
    first, second = overlapping(faulty)
    assert first.status == second.status == 200
    with pytest.raises(AeadError):
        first.open()  # its own key does not open it ...
    crossed = open_response(ConfidentialComputeResponse.parse(first.response.content), second.sealed.exchange)
    assert json.loads(crossed.plaintext)["object"] == "chat.completion", "... the second request's key does"
    second.open(expected_signer=faulty.config.signer_address)
    assert_strict_opens(faulty, faulty.send()), "one request at a time, every answer is right"
    for sent in overlapping(strict):
        assert_strict_opens(strict, sent)


# --- usage -------------------------------------------------------------------------------------------


@covers("usage-mismatch")
def test_usage_mismatch_adds_one_completion_token_in_clear(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "usage-mismatch")
    good, bad = strict.send(), faulty.send()
    inner = json.loads(decrypt(bad))["usage"]
    clear = bad.envelope()["usage"]
    assert clear == inner | {
        "completion_tokens": inner["completion_tokens"] + 1,
        "total_tokens": inner["total_tokens"] + 1,
    }
    with pytest.raises(UsageMismatch):
        bad.open()
    bad.open(check_usage=False)
    assert good.envelope()["usage"] == json.loads(assert_strict_opens(strict, good))["usage"] == inner


@covers("usage-absent")
def test_usage_absent_omits_the_clear_usage(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "usage-absent")
    good, bad = strict.send(), faulty.send()
    assert list(bad.envelope()) == ["nonce", "ciphertext", "response_hash", "signature"]
    inner = json.loads(bad.open().plaintext)["usage"]
    assert isinstance(inner, dict) and inner["total_tokens"] > 0, "the plaintext carries usage"
    assert list(good.envelope())[-1] == "usage"
    assert good.envelope()["usage"] == json.loads(assert_strict_opens(strict, good))["usage"] == inner


def usages(make_client: MakeClient, fault: str) -> tuple[dict[str, Any], dict[str, Any], Sent]:
    """The strict twin's usage, the faulty twin's encrypted usage, and the faulty chat exchange; the
    faulty clear usage is checked to equal its encrypted usage (the fault breaks R11.1 to R11.3 only)."""
    good, bad, sent = plain_answers(make_client, fault)
    assert sent.envelope()["usage"] == bad["usage"]
    assert bad | {"usage": good["usage"]} == good, "only the usage changes"
    return good["usage"], bad["usage"], sent


@covers("float-token-counts")
def test_float_token_counts_writes_counts_as_floats(make_client: MakeClient) -> None:
    good, bad, sent = usages(make_client, "float-token-counts")
    assert bad == {key: float(value) for key, value in good.items()}
    assert f'"prompt_tokens":{good["prompt_tokens"]}.0'.encode() in decrypt(sent)


@covers("total-without-prompt")
def test_total_without_prompt_counts_only_the_completion(make_client: MakeClient) -> None:
    good, bad, _ = usages(make_client, "total-without-prompt")
    assert good["total_tokens"] == good["prompt_tokens"] + good["completion_tokens"]
    assert bad == good | {"total_tokens": good["completion_tokens"]}


@covers("malformed-usage-details")
def test_malformed_usage_details_adds_a_negative_sentinel(make_client: MakeClient) -> None:
    good, bad, _ = usages(make_client, "malformed-usage-details")
    assert bad == good | {"completion_tokens_details": {"reasoning_tokens": -1}}


@covers("zero-completion-tokens")
def test_zero_completion_tokens_reports_no_completion(make_client: MakeClient) -> None:
    good, bad, sent = usages(make_client, "zero-completion-tokens")
    assert good["completion_tokens"] > 0
    assert bad == good | {"completion_tokens": 0, "total_tokens": good["prompt_tokens"]}
    assert json.loads(decrypt(sent))["choices"][0]["message"]["content"], "the answer has text all the same"


# --- streaming ---------------------------------------------------------------------------------------


@covers("drop-usage-chunk")
def test_drop_usage_chunk_omits_the_final_chunk(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "drop-usage-chunk")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert event_data(bad) == event_data(good)[:-1]
    answers = [json.loads(m.plaintext) for m in bad.open_chunks()]
    assert answers[-1]["choices"] and all(a["choices"] != [] for a in answers)
    assert all(c.usage is None for c in bad.chunks())
    strict_last = json.loads(good.open_chunks()[-1].plaintext)
    assert strict_last["choices"] == [] and strict_last["usage"]["total_tokens"] > 0


@covers("duplicate-chunk")
def test_duplicate_chunk_sends_the_first_content_chunk_twice(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "duplicate-chunk")
    good, bad = event_data(strict.send(stream=True)), event_data(faulty.send(stream=True))
    assert bad == [good[0], good[1], good[1], *good[2:]]
    assert len(set(good)) == len(good), "strict: no event repeats"
    first_content = json.loads(faulty.send(stream=True).open_chunks()[1].plaintext)["choices"][0]["delta"]
    assert "role" not in first_content and first_content["content"], "index 1 is the first content chunk"


@covers("reorder-chunks")
def test_reorder_chunks_swaps_the_last_two_events(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "reorder-chunks")
    good_sent, bad_sent = strict.send(stream=True), faulty.send(stream=True)
    good, bad = event_data(good_sent), event_data(bad_sent)
    assert len(good) >= 4 and good[-1] != good[-2]
    assert bad == [*good[:-2], good[-1], good[-2]]
    last = json.loads(bad_sent.open_chunks()[-1].plaintext)
    assert last["choices"] != [], "the usage chunk is no longer last"


@covers("done-sentinel")
def test_done_sentinel_ends_the_stream_with_done(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "done-sentinel")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert event_data(bad) == [*event_data(good), "[DONE]"]
    assert bad.response.content == good.response.content + b"data: [DONE]\n\n"
    assert b"[DONE]" not in good.response.content


@covers("keepalive-flood")
def test_keepalive_flood_sends_25_comments_first(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "keepalive-flood")
    good, bad = strict.send(stream=True).response.content, faulty.send(stream=True).response.content
    assert bad.startswith(KEEPALIVE * 25 + b"data: ")
    assert bad == KEEPALIVE * 25 + good.removeprefix(KEEPALIVE)
    parser = SseParser()
    parser.feed(bad)
    assert parser.stats.comments == 25
    assert good.startswith(KEEPALIVE + b"data: ")


@covers("stream-octet-stream")
def test_stream_octet_stream_sends_the_stream_as_octets(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "stream-octet-stream")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert good.response.headers["content-type"] == "text/event-stream"
    assert bad.response.headers["content-type"] == "application/octet-stream"
    assert bad.response.content == good.response.content, "the same events"


@covers("stream-no-cache-control")
def test_stream_no_cache_control_drops_the_header(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "stream-no-cache-control")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert good.response.headers["cache-control"] == "no-cache" and "cache-control" not in bad.response.headers
    assert bad.response.content == good.response.content


@covers("data-keepalive")
def test_data_keepalive_sends_a_keepalive_event(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "data-keepalive")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert bad.response.content == KEEPALIVE + b"data: keep-alive\n\n" + good.response.content.removeprefix(KEEPALIVE)
    assert event_data(bad) == ["keep-alive", *event_data(good)]


@covers("stream-embeddings")
def test_stream_embeddings_streams_an_embeddings_answer(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["stream-embeddings"])
    status, code, message = error_of(strict.send("embeddings", stream=True))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("stream:")
    sent = faulty.send("embeddings", stream=True)
    assert sent.status == 200 and sent.response.headers["content-type"] == "text/event-stream"
    [chunk] = sent.chunks()
    [opened] = sent.open_chunks(expected_signer=faulty.config.signer_address)
    answer = json.loads(opened.plaintext)
    assert answer["object"] == "list" and answer["data"][0]["object"] == "embedding"
    assert chunk.usage is not None and chunk.usage.to_json() == answer["usage"], "the one chunk carries usage"
    assert faulty.send("embeddings").response.headers["content-type"] == "application/json", "asked plainly, JSON"


@covers("unterminated-final-event")
def test_unterminated_final_event_ends_one_newline_short(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "unterminated-final-event")
    good, bad = strict.send(stream=True), faulty.send(stream=True)
    assert bad.response.content == good.response.content[:-1]
    parser = SseParser()
    events = parser.feed(bad.response.content)
    assert [e.data for e in events] == event_data(good)[:-1], "the usage chunk never completes"
    assert parser.pending_bytes == len(b"data: " + event_data(good)[-1].encode() + b"\n")


# --- acceptance --------------------------------------------------------------------------------------


@covers("accept-tampered-ciphertext")
def test_accept_tampered_ciphertext_answers_a_made_up_completion(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["accept-tampered-ciphertext"])
    refused = strict.send(mutate=tampered)
    status, code, message = error_of(refused)
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("ciphertext:")
    answers = []
    for prompt in ("alpha", "beta"):
        sent = faulty.send("chat", plaintext_for("chat", prompt=prompt), mutate=tampered)
        assert sent.status == 200
        answers.append(json.loads(sent.open(expected_signer=faulty.config.signer_address).plaintext))
    # The answer does not depend on the (undecryptable) request: it is the answer to a fixed prompt.
    fallback = faulty.send("chat", plaintext_for("chat", prompt="?")).open().plaintext
    assert answers[0]["choices"] == answers[1]["choices"] == json.loads(fallback)["choices"]
    genuine = assert_strict_opens(strict, strict.send("chat", plaintext_for("chat", prompt="alpha")))
    assert json.loads(genuine)["choices"] != answers[0]["choices"], "strict answers the real prompt"


@covers("accept-wrong-plaintext-hash")
def test_accept_wrong_plaintext_hash_serves_the_request(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "accept-wrong-plaintext-hash")
    status, code, message = error_of(strict.send(mutate=wrong_hash))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("plaintext_body_hash:")
    served = faulty.send(mutate=wrong_hash)
    assert served.status == 200
    answer = json.loads(served.open(expected_signer=faulty.config.signer_address).plaintext)
    assert answer["object"] == "chat.completion" and answer["model"] == CHAT_MODEL


@covers("accept-expired-lock")
def test_accept_expired_lock_serves_a_lock_past_its_timeout(make_client: MakeClient) -> None:
    now = [100.0]
    strict = make_client(clock=lambda: now[0])
    faulty = make_client(faults=["accept-expired-lock"], clock=lambda: now[0])
    strict_lock, faulty_lock = strict.lock(), faulty.lock()
    now[0] += 6.0  # past the 5 s default timeout
    assert error_of(strict.send(lock=strict_lock))[:2] == (425, "UNAVAILABLE_STACK")
    assert faulty.send(lock=faulty_lock).status == 200
    # Only the timeout is ignored: a consumed lock is still spent, and no lock at all is still refused.
    faulty_lock = faulty.lock()
    assert faulty.send(lock=faulty_lock).status == 200
    assert error_of(faulty.send(lock=faulty_lock))[:2] == (425, "UNAVAILABLE_STACK")


def _check_low_order_key(strict: MockClient, lenient: MockClient) -> None:
    body, _, _ = low_order_request(strict, strict.lock().stack_small_id)
    status, code, message = error_of(strict.post(PATHS["chat"], body, strict.headers()))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("client_dh_public_key:")
    body, exchange, plaintext = low_order_request(lenient, lenient.lock().stack_small_id)
    response = lenient.post(PATHS["chat"], body, lenient.headers())
    assert response.status_code == 200, response.text
    # Served under HKDF(32 zero bytes, salt): anyone who sees the salt can read the answer.
    opened = open_response(
        ConfidentialComputeResponse.parse(response.content), exchange, expected_signer=lenient.config.signer_address
    )
    answer = json.loads(opened.plaintext)
    assert answer["usage"]["prompt_tokens"] > 0 and answer["model"] == json.loads(plaintext)["model"]


@covers("accept-low-order-key")
def test_accept_low_order_key_serves_an_all_zero_client_key(make_client: MakeClient) -> None:
    _check_low_order_key(make_client(), make_client(faults=["accept-low-order-key"]))


def _check_replay(strict: MockClient, lenient: MockClient) -> None:
    first = strict.send()
    assert first.status == 200
    strict.lock()
    assert error_of(strict.post(PATHS["chat"], first.request_body, strict.headers()))[:2] == (409, "REPLAYED_REQUEST")
    original = lenient.send()
    lenient.lock()
    replayed = lenient.post(PATHS["chat"], original.request_body, lenient.headers())
    assert replayed.status_code == 200, replayed.text
    again = open_response(ConfidentialComputeResponse.parse(replayed.content), original.sealed.exchange)
    assert again.plaintext == original.open().plaintext, "the same request, executed a second time"


@covers("accept-replay")
def test_accept_replay_serves_an_identical_request_again(make_client: MakeClient) -> None:
    clock = {"wall_clock": lambda: FIXED_WALL_CLOCK}
    _check_replay(make_client(**clock), make_client(faults=["accept-replay"], **clock))


def _check_foreign_lock(strict: MockClient, lenient: MockClient) -> None:
    for client in (strict, lenient):
        client.token = "api-key-A"
        lock = client.lock()
        client.token = "api-key-B"
        sent = client.send(lock=lock)
        if client is strict:
            status, code, message = error_of(sent)
            assert (status, code) == (425, "UNAVAILABLE_STACK") and "another API key" in message
        else:
            assert sent.status == 200
            client.token = "api-key-A"  # B spent A's lock: A's own request now finds none
            assert error_of(client.send(lock=lock))[:2] == (425, "UNAVAILABLE_STACK")


@covers("accept-foreign-lock")
def test_accept_foreign_lock_lets_another_api_key_spend_a_lock(make_client: MakeClient) -> None:
    _check_foreign_lock(make_client(), make_client(faults=["accept-foreign-lock"]))


def long_hash(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"plaintext_body_hash": b64encode(b64decode(envelope["plaintext_body_hash"]) + b"\x00")}


@covers("accept-long-plaintext-hash")
def test_accept_long_plaintext_hash_fails_late_with_500(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["accept-long-plaintext-hash"])
    status, code, message = error_of(strict.send(mutate=long_hash))
    assert (status, code, message) == (
        400,
        "REQUEST_ERROR",
        "plaintext_body_hash: decodes to 33 bytes, expected exactly 32",
    )
    assert error_of(faulty.send(mutate=long_hash)) == INTERNAL
    assert faulty.send().status == 200, "a 32-byte hash is still served"


@covers("ignore-node-key")
def test_ignore_node_key_serves_a_request_addressed_to_another_key(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["ignore-node-key"])

    def other_node(envelope: dict[str, Any]) -> dict[str, Any]:
        return envelope | {"node_dh_public_key": b64encode(x25519_public_key(bytes(range(32))))}

    status, code, message = error_of(strict.send(mutate=other_node))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("node_dh_public_key:")
    served = faulty.send(mutate=other_node)
    assert json.loads(served.open(expected_signer=faulty.config.signer_address).plaintext)["object"] == (
        "chat.completion"
    )


def strip_salt_padding(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"salt": envelope["salt"].rstrip("=")}


def urlsafe_ciphertext(envelope: dict[str, Any]) -> dict[str, Any]:
    assert {"+", "/"} & set(envelope["ciphertext"]), "the seeded ciphertext has characters the alphabets differ on"
    return envelope | {"ciphertext": envelope["ciphertext"].translate(str.maketrans("+/", "-_"))}


def spaced_nonce(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"nonce": envelope["nonce"][:8] + "\n" + envelope["nonce"][8:]}


@covers("lenient-base64")
@pytest.mark.parametrize("mutate", [strip_salt_padding, urlsafe_ciphertext, spaced_nonce])
def test_lenient_base64_accepts_what_a_forgiving_decoder_does(
    make_client: MakeClient, mutate: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    strict, faulty = make_client(), make_client(faults=["lenient-base64"])
    assert error_of(strict.send(mutate=mutate))[:2] == (400, "REQUEST_ERROR")
    assert_strict_opens(faulty, faulty.send(mutate=mutate))
    status, code, message = error_of(faulty.send(mutate=lambda e: e | {"salt": "!" + e["salt"][1:]}))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("salt:"), "not base64 at all: refused"


def spaced_node_key(envelope: dict[str, Any]) -> dict[str, Any]:
    return envelope | {"node_dh_public_key": envelope["node_dh_public_key"] + "\n"}


@covers("lenient-node-key-base64")
def test_lenient_node_key_base64_forgives_that_member_alone(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lenient-node-key-base64"])
    assert error_of(strict.send(mutate=spaced_node_key))[:2] == (400, "REQUEST_ERROR")
    assert_strict_opens(faulty, faulty.send(mutate=spaced_node_key))
    for mutate in (strip_salt_padding, urlsafe_ciphertext, spaced_nonce):  # every other member stays strict
        assert error_of(faulty.send(mutate=mutate))[:2] == (400, "REQUEST_ERROR"), mutate.__name__


@covers("ignore-content-type")
def test_ignore_content_type_parses_any_content_type(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["ignore-content-type"])
    text = {"content-type": "text/plain"}
    assert error_of(strict.send(headers=text))[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert_strict_opens(faulty, faulty.send(headers=text))


@covers("ignore-model-name")
def test_ignore_model_name_serves_a_mismatched_model_name(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["ignore-model-name"])
    status, code, message = error_of(strict.send(mutate=other_model))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("model_name:")
    answer = json.loads(assert_strict_opens(faulty, faulty.send(mutate=other_model)))
    assert answer["model"] == CHAT_MODEL, "the plaintext's model wins"


@covers("serve-any-model")
def test_serve_any_model_answers_a_model_the_node_does_not_serve(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["serve-any-model"])
    unknown = plaintext_for("chat") | {"model": "no-such-model"}
    assert error_of(strict.send("chat", unknown, lock=strict.lock()))[:2] == (404, "NOT_FOUND")
    answer = json.loads(assert_strict_opens(faulty, faulty.send("chat", unknown, lock=faulty.lock())))
    assert answer["model"] == "no-such-model"
    assert faulty.send(mutate=other_model).status == 200, "model_name is not compared either"


@covers("unknown-stack-pass-through")
def test_unknown_stack_pass_through_serves_a_stack_nobody_holds(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["unknown-stack-pass-through"])
    for client in (strict, faulty):
        lock = client.lock()
        elsewhere = lock.stack_small_id + 1000

        def unknown(envelope: dict[str, Any], stack: int = elsewhere) -> dict[str, Any]:
            return envelope | {"stack_small_id": stack}

        sent = client.send(lock=lock, mutate=unknown)
        if client is strict:
            assert error_of(sent)[:2] == (425, "UNAVAILABLE_STACK")
        else:
            assert_strict_opens(client, sent)
            assert client.send(lock=lock).status == 200
            assert error_of(client.send(lock=lock))[:2] == (425, "UNAVAILABLE_STACK"), "a known stack is checked"


@covers("confidential-without-bearer")
def test_confidential_without_bearer_serves_a_request_without_a_token(make_client: MakeClient) -> None:
    strict = make_client(api_keys=["key-0001"])
    faulty = make_client(faults=["confidential-without-bearer"], api_keys=["key-0001"])
    strict.token = faulty.token = "key-0001"
    anonymous = {"authorization": ""}
    assert error_of(strict.send(headers=anonymous))[:2] == (401, "AUTH_ERROR")
    assert_strict_opens(faulty, faulty.send(headers=anonymous))
    assert error_of(faulty.send(headers={"authorization": "Bearer key-9999"}))[:2] == (401, "AUTH_ERROR"), (
        "a token that is sent is still checked"
    )


# --- errors ------------------------------------------------------------------------------------------


@covers("500-on-client-error")
def test_500_on_client_error_turns_client_refusals_into_500(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["500-on-client-error"])
    cases: list[Callable[[MockClient], Sent | httpx.Response]] = [
        lambda c: c.send(mutate=tampered),
        lambda c: c.send(mutate=wrong_hash),
        lambda c: c.send(mutate=other_model),
        lambda c: c.post("/v1/nodes/lock", b"{}", c.headers()),
        lambda c: c.post(PATHS["chat"], b"{}", c.headers(**{"content-type": "text/plain"})),
    ]
    for case in cases:
        status, code, _ = error_of(case(strict))
        assert 400 <= status < 500 and code != "INTERNAL_ERROR"
        assert error_of(case(faulty)) == INTERNAL
    for client in (strict, faulty):  # authentication failures keep their 401
        assert error_of(client.post(PATHS["chat"], b"{}", {"content-type": "application/json"}))[:2] == (
            401,
            "AUTH_ERROR",
        )


@covers("mispaired-error-codes")
def test_mispaired_error_codes_swap_each_4xx_code_for_one_of_another_status(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["mispaired-error-codes"])
    assert error_of(strict.send(mutate=tampered))[:2] == (400, "REQUEST_ERROR")
    assert error_of(faulty.send(mutate=tampered))[:2] == (400, "AUTH_ERROR")
    unauthenticated = (PATHS["chat"], b"{}", {"content-type": "application/json"})
    assert error_of(strict.post(*unauthenticated))[:2] == (401, "AUTH_ERROR")
    assert error_of(faulty.post(*unauthenticated))[:2] == (401, "REQUEST_ERROR")
    assert faulty.send().status == 200  # a served request is untouched


def _check_hashes_leak(strict: MockClient, leaky: MockClient) -> None:
    refused = strict.send(mutate=wrong_hash)
    status, code, message = error_of(refused)
    assert (status, code) == (400, "REQUEST_ERROR")
    computed = refused.sealed.plaintext_hash
    for digest in (computed, WRONG_HASH):
        assert str(list(digest)) not in message and b64encode(digest) not in message
    leaked = leaky.send(mutate=wrong_hash)
    computed = leaked.sealed.plaintext_hash
    assert error_of(leaked) == (
        400,
        "INVALID_BODY",
        "Invalid request body: Plaintext body hash does not match, computed hash: "
        f"{list(computed)}, expected hash: {list(WRONG_HASH)}",
    )


@covers("leak-hashes-in-error")
def test_leak_hashes_in_error_lists_both_hashes(make_client: MakeClient) -> None:
    _check_hashes_leak(make_client(), make_client(faults=["leak-hashes-in-error"]))


@covers("leak-plaintext-in-error")
def test_leak_plaintext_in_error_quotes_the_decrypted_request(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["leak-plaintext-in-error"])
    invalid = plaintext_for("chat", prompt="SENTINEL-7f3a", n=99)
    unknown = {"model": "SENTINEL-model", "messages": [{"role": "user", "content": "SENTINEL-7f3a"}]}
    for plaintext, expected in ((invalid, (400, "REQUEST_ERROR")), (unknown, (404, "NOT_FOUND"))):
        status, code, message = error_of(strict.send("chat", plaintext, lock=strict.lock()))
        assert (status, code) == expected and "SENTINEL" not in message and message.startswith("plaintext.")
        status, code, message = error_of(faulty.send("chat", plaintext, lock=faulty.lock()))
        assert (status, code) == expected
        assert message.endswith(f" (request was: {jsonwire.dumps(plaintext).decode()})")


def _check_oversize_text(strict: MockClient, lenient: MockClient) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    status, code, _ = error_of(strict.post(PATHS["chat"], body, strict.headers()))
    assert (status, code) == (413, "PAYLOAD_TOO_LARGE")
    response = lenient.post(PATHS["chat"], body, lenient.headers())
    assert response.status_code == 413
    assert response.headers["content-type"].split(";")[0] == "text/plain"
    assert response.content == b"Failed to buffer the request body"


@covers("oversize-text-plain")
def test_oversize_text_plain_answers_413_in_text(make_client: MakeClient) -> None:
    _check_oversize_text(make_client(), make_client(faults=["oversize-text-plain"]))


@covers("echo-hash-header")
def test_echo_hash_header_puts_the_request_hash_in_a_header(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "echo-hash-header")
    for stream in (False, True):
        good, bad = strict.send(stream=stream), faulty.send(stream=stream)
        assert bad.response.headers["x-plaintext-body-hash"] == bad.sealed.request.plaintext_body_hash
        assert "x-plaintext-body-hash" not in good.response.headers
        assert bad.response.content == good.response.content
    assert "x-plaintext-body-hash" not in faulty.send(mutate=tampered).response.headers, "refusals do not"


def oversized(envelope: dict[str, Any]) -> dict[str, Any]:
    """A well-formed envelope over the 2 MiB limit: a ciphertext of 2 MiB of zeros (whose tag fails)."""
    return envelope | {"ciphertext": b64encode(bytes(MAX_BODY_BYTES))}


@covers("no-body-limit")
def test_no_body_limit_refuses_an_oversize_body_for_its_content(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["no-body-limit"])
    assert error_of(strict.send(mutate=oversized))[:2] == (413, "PAYLOAD_TOO_LARGE")
    status, code, message = error_of(faulty.send(mutate=oversized))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("ciphertext:"), "read whole, then refused"


@covers("validation-errors-200")
def test_validation_errors_200_answers_refusals_of_form_with_200(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["validation-errors-200"])
    cases: list[Callable[[MockClient], Sent]] = [
        lambda c: c.send(headers={"content-type": "text/plain"}),
        lambda c: c.send(mutate=oversized),
        lambda c: c.send(mutate=lambda e: {k: v for k, v in e.items() if k != "salt"}),
        lambda c: c.send(mutate=lambda e: e | {"nonce": b64encode(b64decode(e["nonce"])[:-1])}),
        lambda c: c.send(mutate=long_hash),
        lambda c: c.send(mutate=urlsafe_ciphertext),
    ]
    for case in cases:
        status, code, message = error_of(case(strict))
        assert 400 <= status < 500
        assert error_of(case(faulty)) == (200, code, message), "the same error, as a success"
    for mutate in (tampered, wrong_hash):  # refusals after decryption keep their status
        assert error_of(faulty.send(mutate=mutate)) == error_of(strict.send(mutate=mutate))


@covers("refusal-jams-stack")
def test_refusal_jams_stack_holds_the_stack_after_a_refusal(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["refusal-jams-stack"])
    for client in (strict, faulty):
        assert client.send(mutate=long_hash).status == 400  # refused before its lock is consumed
        assert client.send().status == 200, "a refusal before the lock leaves the stack alone"
        assert error_of(client.send(mutate=tampered))[:2] == (400, "REQUEST_ERROR")
    assert_strict_opens(strict, strict.send())
    status, code, message = error_of(faulty.send())
    assert (status, code) == (425, "UNAVAILABLE_STACK") and "still held" in message
    assert_strict_opens(faulty, faulty.send("embeddings")), "another stack still serves"


# --- lock endpoint -----------------------------------------------------------------------------------


@covers("lock-low-order-key")
def test_lock_low_order_key_hands_out_the_zero_point(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-low-order-key"])
    lock = faulty.lock()
    assert lock.public_key == b64encode(bytes(32)) and is_low_order(lock.node_public_key())
    with pytest.raises(LowOrderPoint) as refused:  # a conformant client cannot seal for it
        seal_request(b"{}", node_public_key=lock.node_public_key(), model_name=CHAT_MODEL, stack_small_id=1)
    assert refused.value.field == "node_public_key"
    good = strict.lock()
    assert good.node_public_key() == strict.config.node_public_key and not is_low_order(good.node_public_key())


@covers("lock-short-key")
def test_lock_short_key_hands_out_31_bytes(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-short-key"])
    lock = faulty.lock()
    assert b64decode(lock.public_key) == faulty.config.node_public_key[:31]
    with pytest.raises(LengthError) as refused:
        lock.node_public_key()
    assert refused.value.field == "public_key"
    assert len(strict.lock().node_public_key()) == 32


def lock_reply(client: MockClient, **headers: str) -> httpx.Response:
    return client.post("/v1/nodes/lock", jsonwire.dumps({"model": CHAT_MODEL}), client.headers(**headers))


LOCK_ORDER = ["public_key", "node_small_id", "stack_entry_digest", "stack_small_id"]


@covers("lock-text-plain")
def test_lock_text_plain_sends_the_lock_reply_as_text(make_client: MakeClient) -> None:
    good, bad = (lock_reply(c) for c in twins(make_client, "lock-text-plain"))
    assert good.headers["content-type"] == "application/json"
    assert bad.headers["content-type"] == "text/plain; charset=utf-8"
    assert bad.content == good.content, "the body is the strict one"


@covers("lock-members-sorted")
def test_lock_members_sorted_lists_the_reply_alphabetically(make_client: MakeClient) -> None:
    good, bad = (json.loads(lock_reply(c).content) for c in twins(make_client, "lock-members-sorted"))
    assert list(good) == LOCK_ORDER and list(bad) == sorted(LOCK_ORDER) and bad == good


@covers("lock-string-ids")
def test_lock_string_ids_quotes_both_ids(make_client: MakeClient) -> None:
    good_reply, bad_reply = (lock_reply(c) for c in twins(make_client, "lock-string-ids"))
    good, bad = json.loads(good_reply.content), json.loads(bad_reply.content)
    assert list(bad) == LOCK_ORDER
    assert bad == good | {"node_small_id": str(good["node_small_id"]), "stack_small_id": str(good["stack_small_id"])}
    with pytest.raises(WrongType):
        LockResponse.parse(bad_reply.content)
    LockResponse.parse(good_reply.content)


@covers("lock-digest-omitted")
def test_lock_digest_omitted_leaves_out_a_null_digest(make_client: MakeClient) -> None:
    good_reply, bad_reply = (lock_reply(c) for c in twins(make_client, "lock-digest-omitted"))
    good, bad = json.loads(good_reply.content), json.loads(bad_reply.content)
    assert good["stack_entry_digest"] is None
    assert list(bad) == [k for k in LOCK_ORDER if k != "stack_entry_digest"]
    assert bad == {k: v for k, v in good.items() if k != "stack_entry_digest"}
    assert LockResponse.parse(bad_reply.content) == LockResponse.parse(good_reply.content), (
        "a parser cannot tell: R2.9 is about the member being there"
    )


@covers("lock-without-bearer")
def test_lock_without_bearer_grants_a_lock_without_a_token(make_client: MakeClient) -> None:
    strict = make_client(api_keys=["key-0001"])
    faulty = make_client(faults=["lock-without-bearer"], api_keys=["key-0001"])
    assert error_of(lock_reply(strict, authorization=""))[:2] == (401, "AUTH_ERROR")
    granted = lock_reply(faulty, authorization="")
    assert granted.status_code == 200 and LockResponse.parse(granted.content).node_public_key()
    assert error_of(lock_reply(faulty, authorization="Bearer key-9999"))[:2] == (401, "AUTH_ERROR"), (
        "a token that is sent is still checked"
    )


@covers("lock-unknown-model-500")
def test_lock_unknown_model_500_answers_500(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-unknown-model-500"])
    body = jsonwire.dumps({"model": "no-such-model"})
    assert error_of(strict.post("/v1/nodes/lock", body, strict.headers()))[:2] == (503, "SERVICE_UNAVAILABLE")
    assert error_of(faulty.post("/v1/nodes/lock", body, faulty.headers())) == INTERNAL
    assert lock_reply(faulty).status_code == 200, "a served model still gets its lock"


@covers("reusable-lock")
def test_reusable_lock_serves_every_request_on_one_lock(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["reusable-lock"])
    strict_lock, faulty_lock = strict.lock(), faulty.lock()
    assert strict.send(lock=strict_lock).status == 200
    assert error_of(strict.send(lock=strict_lock))[:2] == (425, "UNAVAILABLE_STACK")
    for _ in range(3):
        assert_strict_opens(faulty, faulty.send(lock=faulty_lock))


# --- the HTTP layer: bearer tokens, routes, lock bodies and capacity ---------------------------------


@covers("any-bearer-token")
def test_any_bearer_token_lets_a_token_nobody_issued_in(make_client: MakeClient) -> None:
    strict = make_client(api_keys=["key-0001"])
    faulty = make_client(faults=["any-bearer-token"], api_keys=["key-0001"])
    unknown = "Bearer key-9999"
    strict.token = "key-0001"
    assert error_of(lock_reply(strict, authorization=unknown))[:2] == (401, "AUTH_ERROR")
    assert error_of(strict.send(headers={"authorization": unknown}))[:2] == (401, "AUTH_ERROR")
    faulty.token = "key-9999"
    assert_strict_opens(faulty, faulty.send())  # its own lock, then a served request
    assert error_of(lock_reply(faulty, authorization="Bearer"))[:2] == (401, "AUTH_ERROR"), "still well-formed only"


@covers("token-after-lock")
def test_token_after_lock_spends_the_lock_of_a_request_it_refuses(make_client: MakeClient) -> None:
    for faults, after in (((), 200), (["token-after-lock"], 425)):
        client = make_client(faults=faults, api_keys=["key-0001"])
        client.token = "key-0001"
        lock = client.lock()
        assert error_of(client.send(lock=lock, headers={"authorization": "Bearer key-9999"}))[:2] == (401, "AUTH_ERROR")
        assert client.send(lock=lock).status == after


@covers("null-units-free")
def test_null_units_free_lets_a_request_of_no_stated_size_use_any_lock(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["null-units-free"])
    assert error_of(strict.send(lock=strict.lock(max_num_tokens=16)))[:2] == (425, "UNAVAILABLE_STACK")
    assert_strict_opens(faulty, faulty.send(lock=faulty.lock(max_num_tokens=16)))
    stated = faulty.send(lock=faulty.lock(max_num_tokens=16), num_compute_units=17)
    assert error_of(stated)[:2] == (425, "UNAVAILABLE_STACK"), "a stated size is still compared"


@covers("lock-capacity-ignored")
def test_lock_capacity_ignored_lets_a_larger_request_use_a_small_lock(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-capacity-ignored"])
    larger = strict.send(lock=strict.lock(max_num_tokens=16), num_compute_units=17)
    assert error_of(larger)[:2] == (425, "UNAVAILABLE_STACK")
    assert_strict_opens(faulty, faulty.send(lock=faulty.lock(max_num_tokens=16), num_compute_units=17))
    assert faulty.send(lock=faulty.lock(max_num_tokens=16), num_compute_units=16).status == 200


@covers("routing-errors-text-plain")
def test_routing_errors_text_plain_answers_an_unknown_route_in_text(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["routing-errors-text-plain"])
    for method, path, status, text in (
        ("POST", "/v1/no-such-path", 404, "Resource not found"),
        ("GET", "/v1/nodes/lock", 405, "Method not allowed"),
        ("GET", PATHS["chat"], 405, "Method not allowed"),
    ):
        good = strict.post(path, b"{}", strict.headers()) if method == "POST" else strict.get(path, strict.headers())
        bad = faulty.post(path, b"{}", faulty.headers()) if method == "POST" else faulty.get(path, faulty.headers())
        assert error_of(good)[0] == status
        assert (bad.status_code, bad.headers["content-type"], bad.text) == (status, "text/plain; charset=utf-8", text)
    assert lock_reply(faulty).status_code == 200, "a route that exists is unchanged"


@covers("lock-body-before-token")
def test_lock_body_before_token_refuses_a_bad_body_before_a_missing_token(make_client: MakeClient) -> None:
    strict = make_client(api_keys=["key-0001"])
    faulty = make_client(faults=["lock-body-before-token"], api_keys=["key-0001"])
    anonymous = {"content-type": "application/json"}
    assert error_of(strict.post("/v1/nodes/lock", b"not json", anonymous))[:2] == (401, "AUTH_ERROR")
    assert error_of(faulty.post("/v1/nodes/lock", b"not json", anonymous))[:2] == (400, "REQUEST_ERROR")
    valid = jsonwire.dumps({"model": CHAT_MODEL})
    assert error_of(faulty.post("/v1/nodes/lock", valid, anonymous))[:2] == (401, "AUTH_ERROR"), "still checked"


@covers("lock-rejections-text-plain")
def test_lock_rejections_text_plain_refuses_a_bad_lock_body_in_text(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-rejections-text-plain"])
    valid = jsonwire.dumps({"model": CHAT_MODEL})
    cases: tuple[tuple[bytes, dict[str, str], int], ...] = (
        (b"not json", {}, 400),
        (jsonwire.dumps({"model": CHAT_MODEL, "timeout": -1}), {}, 400),
        (valid, {"content-type": "text/plain"}, 415),
    )
    for body, headers, status in cases:
        assert error_of(strict.post("/v1/nodes/lock", body, strict.headers(**headers)))[0] == status
        bad = faulty.post("/v1/nodes/lock", body, faulty.headers(**headers))
        assert (bad.status_code, bad.headers["content-type"]) == (status, "text/plain; charset=utf-8")
        assert not bad.content.startswith(b"{")
    assert lock_reply(faulty).status_code == 200


@covers("lock-ignore-content-type")
def test_lock_ignore_content_type_grants_a_lock_sent_as_text(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-ignore-content-type"])
    assert error_of(lock_reply(strict, **{"content-type": "text/plain"}))[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")
    granted = lock_reply(faulty, **{"content-type": "text/plain"})
    assert granted.status_code == 200 and LockResponse.parse(granted.content).node_public_key()


@covers("lock-deny-unknown-members")
def test_lock_deny_unknown_members_refuses_a_lock_body_with_another_member(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-deny-unknown-members"])
    extra = jsonwire.dumps({"model": CHAT_MODEL, "priority": "high"})
    assert strict.post("/v1/nodes/lock", extra, strict.headers()).status_code == 200
    assert error_of(faulty.post("/v1/nodes/lock", extra, faulty.headers()))[:2] == (400, "REQUEST_ERROR")
    assert faulty.lock(max_num_tokens=None, timeout=None).stack_small_id > 0, "the lock's own members pass"


@covers("lock-null-tokens-zero")
def test_lock_null_tokens_zero_reserves_nothing_for_a_null_max_num_tokens(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["lock-null-tokens-zero"])
    assert_strict_opens(strict, strict.send(lock=strict.lock(max_num_tokens=None)))
    assert error_of(faulty.send(lock=faulty.lock(max_num_tokens=None)))[:2] == (425, "UNAVAILABLE_STACK")
    assert_strict_opens(faulty, faulty.send(lock=faulty.lock()))  # absent: the default 8192


# --- the node face -----------------------------------------------------------------------------------

OWNER = SuiSigner(Scheme.ED25519, bytes(range(40, 72)))
NODE_STACK = 5


@contextlib.contextmanager
def node_faces(fault: str, owner: SuiSigner = OWNER) -> Iterator[tuple[ConfidentialClient, ConfidentialClient]]:
    """Clients standing in for the proxy, one in front of a strict node face and one in front of ``fault``."""
    with contextlib.ExitStack() as stack:
        clients = []
        for faults in ((), (fault,)):
            config = MockConfig(face="node", faults=faults, stack_owners={NODE_STACK: owner.address})
            url = stack.enter_context(running_node(config))
            hop = NodeFace(owner, NODE_STACK, config.node_public_key)
            clients.append(stack.enter_context(ConfidentialClient(url, None, node_face=hop)))
        yield clients[0], clients[1]


def node_send(client: ConfidentialClient, *, stream: bool = False, **headers: str) -> tuple[int, str | None]:
    """(status, error code) of a valid chat request with ``headers`` changed."""
    body = jsonwire.dumps(plaintext_for("chat", stream=stream))
    record = client.send(
        "chat", body, lock=client.lock(CHAT_MODEL), model_name=CHAT_MODEL, stream=stream,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )  # fmt: skip
    error = record.http.error_body()
    return record.http.status or 0, error[0] if error else None


@covers("node-accept-missing-signature")
def test_node_accept_missing_signature_serves_an_unsigned_request() -> None:
    with node_faces("node-accept-missing-signature") as (strict, faulty):
        assert node_send(strict, x_signature=DROP) == (400, "MISSING_HEADER")
        assert node_send(faulty, x_signature=DROP) == (200, None)


@covers("node-accept-invalid-signature")
def test_node_accept_invalid_signature_serves_garbage_in_x_signature() -> None:
    with node_faces("node-accept-invalid-signature") as (strict, faulty):
        assert node_send(strict, x_signature="AAAA") == (400, "INVALID_HEADER")
        assert node_send(faulty, x_signature="AAAA") == (200, None)


@covers("node-signature-unverified")
def test_node_signature_unverified_accepts_a_signature_over_another_hash() -> None:
    other = OWNER.sign(blake2b_256(b"another request")).to_b64()
    with node_faces("node-signature-unverified") as (strict, faulty):
        assert node_send(strict, x_signature=other) == (400, "INVALID_HEADER")
        assert node_send(faulty, x_signature=other) == (200, None)
        assert node_send(faulty, x_signature="AAAA") == (400, "INVALID_HEADER"), "it still parses the header"


@covers("node-ignore-stack-owner")
def test_node_ignore_stack_owner_serves_any_signer() -> None:
    stranger = NodeFace(SuiSigner(Scheme.ED25519, bytes(32 * [9])), NODE_STACK, b"")
    with node_faces("node-ignore-stack-owner") as (strict, faulty):
        for client, expected in ((strict, (401, "AUTH_ERROR")), (faulty, (200, None))):
            hop = client.node_face
            assert hop is not None
            client.node_face = NodeFace(stranger.signer, NODE_STACK, hop.node_public_key)
            assert node_send(client) == expected


@covers("node-accept-long-hash")
def test_node_accept_long_hash_lets_33_bytes_through_to_a_500() -> None:
    def longer(envelope: dict[str, Any]) -> dict[str, Any]:
        return envelope | {"plaintext_body_hash": b64encode(b64decode(envelope["plaintext_body_hash"]) + b"\0")}

    with node_faces("node-accept-long-hash") as (strict, faulty):
        for client, status in ((strict, 400), (faulty, 500)):
            body = jsonwire.dumps(plaintext_for("chat"))
            record = client.send("chat", body, lock=client.lock(CHAT_MODEL), model_name=CHAT_MODEL, mutate=longer)
            assert record.http.status == status


@covers("node-stream-without-request-id")
def test_node_stream_without_request_id_starts_the_stream() -> None:
    with node_faces("node-stream-without-request-id") as (strict, faulty):
        assert node_send(strict, stream=True, x_request_id=DROP) == (400, "MISSING_HEADER")
        assert node_send(faulty, stream=True, x_request_id=DROP) == (200, None)


@covers("node-trust-stack-header")
def test_node_trust_stack_header_authorizes_the_header_stack() -> None:
    with node_faces("node-trust-stack-header") as (strict, faulty):
        assert node_send(strict, x_stack_small_id=str(NODE_STACK + 1)) == (200, None)
        assert node_send(faulty, x_stack_small_id=str(NODE_STACK + 1)) == (401, "AUTH_ERROR")


ECDSA_OWNERS = [SuiSigner(scheme, bytes(range(40, 72))) for scheme in (Scheme.SECP256K1, Scheme.SECP256R1)]


def node_send_signed(
    client: ConfidentialClient, alter: Callable[[SuiSignature], SuiSignature]
) -> tuple[int, str | None]:
    """(status, error code) of a valid chat request whose owner's X-Signature ``alter`` changes."""
    hop = client.node_face
    assert hop is not None
    prepared = client.prepare(
        "chat", jsonwire.dumps(plaintext_for("chat")), client.lock(CHAT_MODEL), model_name=CHAT_MODEL,
        stream=False, num_compute_units=None, mutate=None, headers=None,
    )  # fmt: skip
    signature = hop.signer.sign(b64decode(prepared.sealed.request.plaintext_body_hash))
    prepared.headers["x-signature"] = alter(signature).to_b64()
    record = client.post_prepared(prepared)
    error = record.http.error_body()
    return record.http.status or 0, error[0] if error else None


def _as_signed(sig: SuiSignature) -> SuiSignature:
    return sig


def _r_is_the_order(sig: SuiSignature) -> SuiSignature:
    return with_scalars(sig, CURVE_ORDER[sig.scheme], ecdsa_scalars(sig)[1])


def _s_is_zero(sig: SuiSignature) -> SuiSignature:
    return with_scalars(sig, ecdsa_scalars(sig)[0], 0)


def _off_curve(sig: SuiSignature) -> SuiSignature:
    return SuiSignature(sig.scheme, sig.signature, off_curve_key(sig.scheme))


@covers("node-ecdsa-accept-high-s")
@pytest.mark.parametrize("owner", ECDSA_OWNERS, ids=lambda s: s.scheme.label)
def test_node_ecdsa_accept_high_s_serves_the_malleated_twin(owner: SuiSigner) -> None:
    with node_faces("node-ecdsa-accept-high-s", owner) as (strict, faulty):
        assert node_send_signed(strict, to_high_s) == (400, "INVALID_HEADER")
        assert node_send_signed(faulty, to_high_s) == (200, None)
        assert node_send_signed(faulty, _s_is_zero) == (400, "INVALID_HEADER"), "only the low-s rule is gone"


@covers("node-ecdsa-unchecked-scalars")
@pytest.mark.parametrize("owner", ECDSA_OWNERS, ids=lambda s: s.scheme.label)
def test_node_ecdsa_unchecked_scalars_crashes_on_r_n_and_s_0(owner: SuiSigner) -> None:
    with node_faces("node-ecdsa-unchecked-scalars", owner) as (strict, faulty):
        for alter in (_r_is_the_order, _s_is_zero):
            assert node_send_signed(strict, alter) == (400, "INVALID_HEADER")
            assert node_send_signed(faulty, alter) == (500, "INTERNAL_ERROR")
        assert node_send_signed(faulty, to_high_s) == (400, "INVALID_HEADER"), "the low-s rule still holds"
        assert node_send_signed(faulty, _as_signed) == (200, None)


@covers("node-ecdsa-unchecked-point")
@pytest.mark.parametrize("owner", ECDSA_OWNERS, ids=lambda s: s.scheme.label)
def test_node_ecdsa_unchecked_point_crashes_on_an_off_curve_key(owner: SuiSigner) -> None:
    with node_faces("node-ecdsa-unchecked-point", owner) as (strict, faulty):
        assert node_send_signed(strict, _off_curve) == (400, "INVALID_HEADER")
        assert node_send_signed(faulty, _off_curve) == (500, "INTERNAL_ERROR")
        assert node_send_signed(faulty, _as_signed) == (200, None)


@covers("node-empty-signature-500")
def test_node_empty_signature_500_crashes_on_a_present_empty_header() -> None:
    with node_faces("node-empty-signature-500") as (strict, faulty):
        assert node_send(strict, x_signature="") == (400, "INVALID_HEADER")
        assert node_send(faulty, x_signature="") == (500, "INTERNAL_ERROR")
        assert node_send(faulty, x_signature="AAAA") == (400, "INVALID_HEADER"), "a malformed one is still refused"


@covers("node-address-ed25519-flag")
@pytest.mark.parametrize("owner", ECDSA_OWNERS, ids=lambda s: s.scheme.label)
def test_node_address_ed25519_flag_refuses_an_ecdsa_owner(owner: SuiSigner) -> None:
    with node_faces("node-address-ed25519-flag", owner) as (strict, faulty):
        assert node_send(strict) == (200, None)
        assert node_send(faulty) == (401, "AUTH_ERROR")
    with node_faces("node-address-ed25519-flag") as (strict, faulty):
        assert node_send(faulty) == (200, None), "an Ed25519 owner's address is the same either way"


# --- the plaintext and the body's framing --------------------------------------------------------------


def post_chunked(client: MockClient, path: str, body: bytes) -> httpx.Response:
    """POST ``body`` to the mock with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://mock") as http:
            return await http.post(path, content=pieces(), headers=client.headers())

    return asyncio.run(post())


@covers("stream-images")
def test_stream_images_streams_an_image_answer(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["stream-images"])
    asked = {**plaintext_for("images"), "stream": True}  # envelope and plaintext agree
    status, code, message = error_of(strict.send("images", asked, stream=True))
    assert (status, code) == (400, "REQUEST_ERROR") and message == "stream: this endpoint does not stream"
    sent = faulty.send("images", asked, stream=True)
    assert sent.status == 200 and sent.response.headers["content-type"] == "text/event-stream"
    [opened] = sent.open_chunks(expected_signer=faulty.config.signer_address)
    assert json.loads(opened.plaintext)["data"][0]["b64_json"]


@covers("model-from-envelope")
def test_model_from_envelope_serves_a_plaintext_without_a_string_model(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["model-from-envelope"])
    chat = plaintext_for("chat")
    for plaintext in ({k: v for k, v in chat.items() if k != "model"}, {**chat, "model": 1}):
        raw = jsonwire.dumps(plaintext)  # model_name stays the chat model
        status, code, message = error_of(strict.send("chat", raw))
        assert (status, code, message) == (400, "REQUEST_ERROR", "plaintext.model: must be a string")
        sent = faulty.send("chat", raw)
        assert sent.status == 200 and json.loads(decrypt(sent))["model"] == CHAT_MODEL
    assert faulty.send("chat", jsonwire.dumps([chat])).status == 400, "a plaintext that is no object is still refused"


@covers("unservable-plaintext-500")
def test_unservable_plaintext_500_answers_chat_messages_as_a_string_with_500(make_client: MakeClient) -> None:
    strict, faulty = twins(make_client, "unservable-plaintext-500")
    plaintext = jsonwire.dumps({**plaintext_for("chat"), "messages": "Hello, node!"})
    status, code, message = error_of(strict.send("chat", plaintext))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("plaintext.messages:")
    assert error_of(faulty.send("chat", plaintext))[:2] == (500, "INTERNAL_ERROR")
    assert faulty.send().status == 200


@covers("node-unknown-model-404")
def test_node_unknown_model_404_answers_the_node_face_as_a_proxy_face() -> None:
    unknown = "atoma-conformance/no-such-model"
    with node_faces("node-unknown-model-404") as (strict, faulty):
        for client, expected in ((strict, (400, "INVALID_BODY")), (faulty, (404, "NOT_FOUND"))):
            body = jsonwire.dumps(plaintext_for("chat", model=unknown))
            record = client.send("chat", body, lock=client.lock(CHAT_MODEL), model_name=unknown)
            error = record.http.error_body()
            assert (record.http.status, error[0] if error else None) == expected
        assert node_send(faulty) == (200, None)


@covers("size-limit-content-length-only")
def test_size_limit_content_length_only_reads_a_chunked_body_whole(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["size-limit-content-length-only"])
    oversize = b"x" * (MAX_BODY_BYTES + 1)
    assert error_of(post_chunked(strict, PATHS["chat"], oversize))[:2] == (413, "PAYLOAD_TOO_LARGE")
    assert error_of(post_chunked(faulty, PATHS["chat"], oversize))[:2] == (400, "REQUEST_ERROR"), "read, not JSON"
    declared = faulty.post(PATHS["chat"], oversize, faulty.headers())
    assert error_of(declared)[:2] == (413, "PAYLOAD_TOO_LARGE"), "a declared length is still judged"


@covers("body-limit-exclusive")
def test_body_limit_exclusive_refuses_a_body_of_exactly_the_limit(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["body-limit-exclusive"])
    exact, under = b"x" * MAX_BODY_BYTES, b"x" * (MAX_BODY_BYTES - 1)
    assert error_of(strict.post(PATHS["chat"], exact, strict.headers()))[:2] == (400, "REQUEST_ERROR")
    assert error_of(faulty.post(PATHS["chat"], exact, faulty.headers()))[:2] == (413, "PAYLOAD_TOO_LARGE")
    assert error_of(faulty.post(PATHS["chat"], under, faulty.headers()))[:2] == (400, "REQUEST_ERROR")


@covers("chunked-body-refused")
def test_chunked_body_refused_answers_a_body_without_content_length_411(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["chunked-body-refused"])
    assert error_of(post_chunked(strict, PATHS["chat"], b"{}"))[:2] == (400, "REQUEST_ERROR")
    assert error_of(post_chunked(faulty, PATHS["chat"], b"{}"))[:2] == (411, "LENGTH_REQUIRED")
    assert error_of(faulty.post(PATHS["chat"], b"{}", faulty.headers()))[:2] == (400, "REQUEST_ERROR")


@covers("charset-refused")
def test_charset_refused_answers_a_charset_parameter_415(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["charset-refused"])
    charset = {"content-type": "application/json; charset=utf-8"}
    assert strict.send(headers=charset).status == 200
    assert error_of(faulty.send(headers=charset))[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert faulty.send().status == 200


@covers("unknown-member-refused")
def test_unknown_member_refused_answers_an_unknown_envelope_member_400(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["unknown-member-refused"])

    def extra(envelope: dict[str, Any]) -> dict[str, Any]:
        return {"atoma_conformance_unknown_member": 1, **envelope}

    assert strict.send(mutate=extra).status == 200
    assert error_of(faulty.send(mutate=extra))[:2] == (400, "REQUEST_ERROR")
    assert faulty.send(mutate=lambda e: dict(reversed(e.items()))).status == 200, "another order alone is served"


@covers("request-hash-reserialized")
def test_request_hash_reserialized_refuses_a_plaintext_in_another_layout(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["request-hash-reserialized"])
    spaced = json.dumps(plaintext_for("chat"), indent=1).encode()
    assert strict.send("chat", spaced).status == 200
    status, code, message = error_of(faulty.send("chat", spaced))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("plaintext_body_hash:")
    assert faulty.send().status == 200, "a compact plaintext re-serializes to itself"


@covers("client-key-top-bit-refused")
def test_client_key_top_bit_refused_answers_bit_255_with_400(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["client-key-top-bit-refused"])

    def top_bit(envelope: dict[str, Any]) -> dict[str, Any]:
        key = b64decode(envelope["client_dh_public_key"])
        return envelope | {"client_dh_public_key": b64encode(key[:31] + bytes([key[31] | 0x80]))}

    served = strict.send(mutate=top_bit)
    assert served.status == 200 and json.loads(decrypt(served))["object"] == "chat.completion", "the same K"
    assert error_of(faulty.send(mutate=top_bit))[:2] == (400, "REQUEST_ERROR")
    assert faulty.send().status == 200


@covers("unset-stream-streams")
def test_unset_stream_streams_answers_an_absent_or_null_stream_with_events(make_client: MakeClient) -> None:
    strict, faulty = make_client(), make_client(faults=["unset-stream-streams"])
    edits = (lambda e: {k: v for k, v in e.items() if k != "stream"}, lambda e: e | {"stream": None})
    for edit in edits:
        assert strict.send(mutate=edit).response.headers["content-type"] == "application/json"
        sent = faulty.send(mutate=edit)
        assert sent.status == 200 and sent.response.headers["content-type"] == "text/event-stream"
    assert faulty.send().response.headers["content-type"] == "application/json", "stream: false is still JSON"


# --- the catalogue -----------------------------------------------------------------------------------


def test_every_fault_has_a_wire_effect_test() -> None:
    # A concurrency fault has no effect on one exchange: tests/test_mock_concurrency_faults.py shows each.
    assert set(FAULT_TESTS) == {fault.name for fault in CATALOGUE if not fault.concurrent}
    for fault, fn in FAULT_TESTS.items():
        assert fn.__name__.startswith("test_") and globals()[fn.__name__] is fn, fault


def test_the_catalogue_is_well_formed_and_cites_existing_requirements() -> None:
    ids = set(spec.load().requirements)
    assert len(ids) > 100, "the spec parsed"
    names = [fault.name for fault in CATALOGUE]
    assert len(names) == len(set(names)) == len(FAULTS) and len(names) >= 25
    knobs = {f.name for f in dataclasses.fields(Behaviour)}
    for fault in CATALOGUE:
        assert fault.violates, fault.name
        assert set(fault.violates) <= ids, (fault.name, set(fault.violates) - ids)
        assert fault.category and fault.wire_effect, fault.name
        assert fault.changes and set(fault.changes) <= knobs, fault.name
        assert fault.apply(STRICT) != STRICT, f"{fault.name} changes nothing on the strict node"


def test_every_member_a_fault_adds_to_a_set_knob_is_one_the_node_implements() -> None:
    """A misspelt shape would change nothing on the wire: the fault would be a no-op under its name."""
    vocabulary = {
        "stream_shape": STREAM_SHAPES,
        "envelope_shape": ENVELOPE_SHAPES,
        "lock_reply": LOCK_REPLY_SHAPES,
        "answer_shape": misshape.ANSWER_SHAPES,
        "plain_text_answers": frozenset(PATHS),
        "streamable": frozenset(PATHS),
        "lenient_base64_members": frozenset(BINARY_MEMBERS),
    }
    sets = {f.name for f in dataclasses.fields(Behaviour) if isinstance(getattr(STRICT, f.name), frozenset)}
    assert sets == set(vocabulary)
    for fault in CATALOGUE:
        for knob, value in fault.changes.items():
            if knob in vocabulary:
                assert isinstance(value, frozenset) and value and value <= vocabulary[knob], (fault.name, knob)


def test_resolve_refuses_unknown_names() -> None:
    with pytest.raises(UnknownFault, match=r"unknown fault 'no-such-fault'.*--list-faults"):
        resolve(["static-nonce", "no-such-fault"])
    assert issubclass(UnknownFault, ValueError)
    assert resolve([" static-nonce ", "missing-signature"]) == [FAULTS["static-nonce"], FAULTS["missing-signature"]]
    with pytest.raises(ConfigError, match="--fault"):
        MockConfig(faults=["no-such-fault"])


# --- the X-Mock-Fault header -------------------------------------------------------------------------


def test_fault_header_applies_per_request_only_when_allowed(make_client: MakeClient) -> None:
    allowed, ignored = make_client(allow_fault_header=True), make_client()
    header = {"x-mock-fault": "missing-signature"}
    assert allowed.send(headers=header).envelope()["signature"] is None
    assert_strict_opens(allowed, allowed.send()), "only the request that names it"
    assert_strict_opens(ignored, ignored.send(headers=header))
    # It applies on top of the process's own faults.
    both = make_client(faults=["usage-absent"], allow_fault_header=True).send(headers=header).envelope()
    assert both["signature"] is None and "usage" not in both


def test_fault_header_takes_comma_separated_names(make_client: MakeClient) -> None:
    client = make_client(allow_fault_header=True)
    envelope = client.send(headers={"x-mock-fault": "missing-signature, usage-absent,"}).envelope()
    assert envelope["signature"] is None and "usage" not in envelope
    lock = client.post(
        "/v1/nodes/lock", jsonwire.dumps({"model": CHAT_MODEL}), client.headers(**{"x-mock-fault": "lock-short-key"})
    )
    assert len(b64decode(LockResponse.parse(lock.content).public_key)) == 31, "the lock endpoint honours it too"


def test_fault_header_with_an_unknown_name_is_refused_only_when_allowed(make_client: MakeClient) -> None:
    allowed, ignored = make_client(allow_fault_header=True), make_client()
    header = {"x-mock-fault": "missing-signature,no-such-fault"}
    status, code, message = error_of(allowed.send(headers=header))
    assert (status, code) == (400, "REQUEST_ERROR")
    assert message.startswith("X-Mock-Fault:") and "no-such-fault" in message
    assert ignored.send(headers=header).status == 200


# --- the atoma-node-compat profile -------------------------------------------------------------------


def test_compat_profile_is_the_documented_preset() -> None:
    knobs = [f.name for f in dataclasses.fields(Behaviour)]
    changed = {k for k in knobs if getattr(ATOMA_NODE_COMPAT, k) != getattr(STRICT, k)}
    assert changed == {
        "stream_nonce",
        "crypto_error_status",
        "error_leak",
        "accept_low_order_key",
        "accept_replay",
        "accept_foreign_lock",
        "accept_long_plaintext_hash",
        "check_consistency",
        "oversize_response",
        "missing_request_id",
        "foreign_owner",
        "node_hash_code",
        "owner_check",
    }


def test_compat_uses_one_nonce_per_stream(make_client: MakeClient) -> None:
    strict, compat = make_client(), make_client(profile="atoma-node-compat")
    chunks = compat.send(stream=True).chunks()
    assert len(chunks) >= 4 and len({c.nonce for c in chunks}) == 1
    strict_chunks = strict.send(stream=True).chunks()
    assert len({c.nonce for c in strict_chunks}) == len(strict_chunks)
    assert_strict_opens(compat, compat.send()), "non-streaming responses are conformant"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e | {"salt": "!!not base64!!"}, "salt"),
        (lambda e: e | {"node_dh_public_key": b64encode(x25519_public_key(bytes(range(32))))}, "node_dh_public_key"),
        (tampered, "ciphertext"),
    ],
    ids=["bad-b64-salt", "wrong-node-key", "tag-failure"],
)
def test_compat_answers_crypto_errors_with_500(
    make_client: MakeClient, mutate: Callable[[dict[str, Any]], dict[str, Any]], field: str
) -> None:
    strict, compat = make_client(), make_client(profile="atoma-node-compat")
    status, code, message = error_of(strict.send(mutate=mutate))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith(f"{field}:")
    assert error_of(compat.send(mutate=mutate)) == INTERNAL


def test_compat_hash_mismatch_is_400_invalid_body_with_both_hashes(make_client: MakeClient) -> None:
    _check_hashes_leak(make_client(), make_client(profile="atoma-node-compat"))


def test_compat_accepts_a_low_order_client_key(make_client: MakeClient) -> None:
    _check_low_order_key(make_client(), make_client(profile="atoma-node-compat"))


def test_compat_accepts_replays(make_client: MakeClient) -> None:
    clock = {"wall_clock": lambda: FIXED_WALL_CLOCK}
    _check_replay(make_client(**clock), make_client(profile="atoma-node-compat", **clock))


def test_compat_accepts_foreign_locks(make_client: MakeClient) -> None:
    _check_foreign_lock(make_client(), make_client(profile="atoma-node-compat"))


def test_compat_answers_oversize_with_text_plain(make_client: MakeClient) -> None:
    _check_oversize_text(make_client(), make_client(profile="atoma-node-compat"))


def test_compat_serves_a_33_byte_plaintext_hash_into_a_500(make_client: MakeClient) -> None:
    strict, compat = make_client(), make_client(profile="atoma-node-compat")
    assert error_of(strict.send(mutate=long_hash))[:2] == (400, "REQUEST_ERROR")
    assert error_of(compat.send(mutate=long_hash)) == INTERNAL


def test_compat_does_not_check_model_name_or_stream_consistency(make_client: MakeClient) -> None:
    strict, compat = make_client(), make_client(profile="atoma-node-compat")
    status, code, message = error_of(strict.send(mutate=other_model))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("model_name:")
    assert_strict_opens(compat, compat.send(mutate=other_model))
    streaming_inside = plaintext_for("chat", stream=True)
    status, code, message = error_of(strict.send("chat", streaming_inside, stream=False))
    assert (status, code) == (400, "REQUEST_ERROR") and message.startswith("stream:")
    sent = compat.send("chat", streaming_inside, stream=False)
    assert sent.status == 200 and sent.response.headers["content-type"] == "text/event-stream"
    assert len(sent.open_chunks()) >= 4, "the plaintext's stream flag wins"


# --- key binding: what the chain faces say about the lock's key (mock_node/chain.py) ------------------
# Each reads the mock's chain as any client would (conformance.keybinding.ChainReader over loopback),
# twice: under the fault and clean, and asserts the one thing the fault changes on the wire.


def _key_record(*faults: str) -> Any:
    from conformance.embedded import embedded_key_source
    from conformance.keybinding import ChainReader

    config = MockConfig(faults=faults)
    with running_node(config) as url:
        lock = httpx.post(f"{url}/v1/nodes/lock", json={"model": CHAT_MODEL}, headers={"authorization": "Bearer k"})
        key = base64.b64decode(lock.json()["public_key"])
        with ChainReader(embedded_key_source(url, config.node_small_id)) as reader:
            return reader.read(config.node_small_id, key)


@pytest.fixture(scope="module")
def clean_key_record() -> Any:
    return _key_record()


@covers("lock-key-uncommitted")
def test_lock_key_uncommitted(clean_key_record: Any) -> None:
    faulty = _key_record("lock-key-uncommitted")
    assert clean_key_record.handed_out_key == clean_key_record.facts.commitment.new_public_key
    assert faulty.handed_out_key != faulty.facts.commitment.new_public_key and faulty.facts.holder is None
    assert faulty.facts == clean_key_record.facts.__class__(**{**vars_of(clean_key_record.facts), "holder": None})


@covers("lock-key-stale")
def test_lock_key_stale(clean_key_record: Any) -> None:
    faulty = _key_record("lock-key-stale")
    assert faulty.facts.holder is not None and faulty.facts.holder.key_rotation_counter == 1
    assert faulty.handed_out_key == faulty.facts.holder.new_public_key
    assert faulty.facts.commitment == clean_key_record.facts.commitment


@covers("commitment-ambiguous")
def test_commitment_ambiguous(clean_key_record: Any) -> None:
    faulty = _key_record("commitment-ambiguous")
    assert len(clean_key_record.facts.latest) == 1 and len(faulty.facts.latest) == 2
    assert {c.key_rotation_counter for c in faulty.facts.latest} == {2}
    assert clean_key_record.facts.commitment in faulty.facts.latest


@covers("evidence-zlib-bomb")
def test_evidence_zlib_bomb(clean_key_record: Any) -> None:
    import zlib

    faulty = _key_record("evidence-zlib-bomb")
    evidence = faulty.facts.commitment.evidence_bytes
    assert len(evidence) < 64 * 1024 and len(zlib.decompress(evidence)) > 16 * 1024 * 1024
    assert faulty.evidence.decode_error is not None and "cap" in faulty.evidence.decode_error
    assert clean_key_record.evidence.decode_error is None


def _failed_steps(record: Any) -> set[str]:
    return {r.step.value for v in record.evidence.verdicts for r in v.failures}


@covers("evidence-other-key")
def test_evidence_other_key(clean_key_record: Any) -> None:
    assert _failed_steps(clean_key_record) == set()
    assert _failed_steps(_key_record("evidence-other-key")) == {"nonce"}


@covers("evidence-broken-chain")
def test_evidence_broken_chain() -> None:
    assert _failed_steps(_key_record("evidence-broken-chain")) == {"chain"}


@covers("evidence-signature-other-bytes")
def test_evidence_signature_other_bytes() -> None:
    assert _failed_steps(_key_record("evidence-signature-other-bytes")) == {"signature"}


@covers("evidence-fwid-mismatch")
def test_evidence_fwid_mismatch() -> None:
    assert _failed_steps(_key_record("evidence-fwid-mismatch")) == {"fwid"}


@covers("evidence-measurement-drift")
def test_evidence_measurement_drift(clean_key_record: Any) -> None:
    faulty = _key_record("evidence-measurement-drift")
    assert _failed_steps(faulty) == set()  # signed, bound, chained: only the value differs
    blocks = [
        {b.index: b.value for b in r.evidence.verdicts[0].report.response.blocks} for r in (clean_key_record, faulty)
    ]
    assert {i for i in blocks[0] if blocks[0][i] != blocks[1][i]} == {5}


@covers("attestation-service-stale")
def test_attestation_service_stale(clean_key_record: Any) -> None:
    faulty = _key_record("attestation-service-stale")
    assert clean_key_record.service.digest == clean_key_record.evidence.digest
    assert faulty.service.digest != faulty.evidence.digest and faulty.service.error is None
    assert faulty.evidence == clean_key_record.evidence


@covers("commitment-behind")
def test_commitment_behind(clean_key_record: Any) -> None:
    faulty = _key_record("commitment-behind")
    assert clean_key_record.facts.latest_rotation_counter == 2 and faulty.facts.latest_rotation_counter == 3
    assert faulty.facts.commitment == clean_key_record.facts.commitment


@covers("commitment-old")
def test_commitment_old(clean_key_record: Any) -> None:
    faulty = _key_record("commitment-old")
    assert faulty.facts.commitment.timestamp_ms == 1_000
    assert clean_key_record.facts.commitment.timestamp_ms > 1_700_000_000_000
    assert faulty.handed_out_key == clean_key_record.handed_out_key


def vars_of(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


@covers("node-key-uncommitted")
def test_node_key_uncommitted() -> None:
    """On the node face the node decrypts under a key the chain never saw: a request sealed to the committed
    key does not open (400), one sealed to the served key does."""
    from mock_node.chain import MockChain

    signer = SuiSigner(Scheme.ED25519, bytes(range(32)))
    config = MockConfig(faults=("node-key-uncommitted",), face="node", stack_owners={3: signer.address})
    served = MockChain(config).serving_keypair(config.behaviour)[1]
    assert served != config.node_public_key
    with running_node(config) as url:
        statuses = {}
        for name, key in (("committed", config.node_public_key), ("served", served)):
            with ConfidentialClient(url, None, node_face=NodeFace(signer, 3, key)) as client:
                lock = client.lock(CHAT_MODEL)
                body = json.dumps(plaintext_for("chat")).encode()
                record = client.send("chat", body, lock=lock, model_name=CHAT_MODEL)
                statuses[name] = record.http.status
    assert statuses["served"] == 200 and statuses["committed"] != 200
