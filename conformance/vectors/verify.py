"""Run one vector through the reference core and say whether the core agrees with it.

This is the consumer half of the vector files (the pyca/cryptography model: data plus a small
loader). It is used by ``atoma-conformance vectors check`` and by the test suite, so "the core
passes every vector" is one function, not two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.protocol import (
    AeadError,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    FixedBytes,
    LengthError,
    LowOrderPoint,
    NonceLedger,
    ProtocolError,
    Scheme,
    StreamChunk,
    SuiSigner,
    aead_open,
    aead_seal,
    b64decode,
    b64decode_fixed,
    b64encode,
    blake2b_256,
    client_exchange,
    derive_key,
    hkdf_sha256,
    jsonwire,
    open_chunk,
    open_request,
    open_response,
    seal_request,
    sui_address,
    verify_b64,
    x25519_public_key,
    x25519_shared_secret,
)

Test = dict[str, Any]
Group = dict[str, Any]


class VectorFailure(AssertionError):
    """The core disagrees with a vector."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise VectorFailure(what)


def _raises(code: str, action: Callable[[], object]) -> None:
    try:
        action()
    except ProtocolError as exc:
        _expect(exc.code == code, f"raised {exc.code}, expected {code}")
        return
    raise VectorFailure(f"accepted an invalid vector (expected {code})")


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def verify_x25519(test: Test, group: Group) -> None:
    private, public, shared = _h(test["private"]), _h(test["public"]), _h(test["shared"])
    if test["result"] == "valid":
        _expect(x25519_shared_secret(private, public) == shared, "shared secret differs")
        return
    try:
        x25519_shared_secret(private, public)
    except LowOrderPoint:
        pass
    else:
        raise VectorFailure("low-order public key was accepted")
    _expect(x25519_shared_secret(private, public, allow_low_order=True) == shared, "non-checking shared secret differs")


def verify_x25519_iteration(test: Test, group: Group) -> None:
    k = u = (9).to_bytes(32, "little")
    for _ in range(test["iterations"]):
        k, u = x25519_shared_secret(k, u), k
    _expect(k.hex() == test["result_k"], "iterated result differs")


def verify_hkdf(test: Test, group: Group) -> None:
    ikm, salt, info = _h(test["ikm"]), _h(test["salt"]), _h(test["info"])
    if test["result"] == "valid":
        _expect(hkdf_sha256(ikm, salt, info, test["size"]).hex() == test["okm"], "HKDF output differs")
        if len(salt) == 16 and len(ikm) == 32 and not info and test["size"] == 32:
            _expect(derive_key(ikm, salt).hex() == test["okm"], "protocol KDF differs")
    else:
        _expect(derive_key(ikm, salt).hex() != test["okm"], "protocol KDF produced a mis-parameterised key")


def verify_aead(test: Test, group: Group) -> None:
    key, iv, msg = _h(test["key"]), _h(test["iv"]), _h(test["msg"])
    sealed = _h(test["ct"]) + _h(test["tag"])
    if test["result"] == "valid":
        _expect(aead_seal(key, iv, msg) == sealed, "ciphertext or tag differs")
        _expect(aead_open(key, iv, sealed) == msg, "decryption differs")
        return
    try:
        aead_open(key, iv, sealed)
    except (AeadError, LengthError):
        return
    raise VectorFailure("tampered AEAD input was accepted")


def verify_hash(test: Test, group: Group) -> None:
    digest = blake2b_256(_h(test["msg"])).hex()
    _expect((digest == test["digest"]) == (test["result"] == "valid"), "BLAKE2b-256 verdict differs")


def verify_base64(test: Test, group: Group) -> None:
    if test["result"] == "valid":
        raw = b64decode(test["encoded"])
        _expect(raw.hex() == test["decoded"] and b64encode(raw) == test["encoded"], "base64 round trip differs")
    else:
        _raises(test["error"], lambda: b64decode(test["encoded"]))


def verify_field_length(test: Test, group: Group) -> None:
    if test["result"] == "valid":
        raw = b64decode_fixed(test["encoded"], test["length"], field=test["field"])
        _expect(raw.hex() == test["decoded"], "decoded bytes differ")
    else:
        _raises(test["error"], lambda: b64decode_fixed(test["encoded"], test["length"], field=test["field"]))


def verify_sui_signature(test: Test, group: Group) -> None:
    msg = _h(test["msg"])
    if test["result"] == "valid":
        sig = verify_b64(test["signature"], msg, expected_address=test["address"])
        _expect(sig.scheme.label == test["scheme"], "scheme differs")
    else:
        _raises(test["error"], lambda: verify_b64(test["signature"], msg, expected_address=test["address"]))


def verify_sui_address(test: Test, group: Group) -> None:
    _expect(
        sui_address(Scheme.from_label(test["scheme"]), _h(test["public_key"])) == test["address"], "address differs"
    )


def verify_keystore(test: Test, group: Group) -> None:
    signer = SuiSigner.from_keystore(test["keystore"])
    _expect(signer.public_key.hex() == test["public_key"], "public key differs")
    _expect(signer.address == test["address"], "address differs")
    digest = blake2b_256(_h(test["msg"]))
    _expect(b64encode(digest) == test["msg_hash"], "message hash differs")
    _expect(signer.sign(digest).to_b64() == test["signature"], "signature differs")
    verify_b64(test["signature"], digest, expected_address=test["address"])


def verify_request_envelope(test: Test, group: Group) -> None:
    node_private = _h(test["node_private"])

    def open_body() -> bytes:
        return open_request(ConfidentialComputeRequest.parse(test["body"].encode()), node_private).plaintext

    if test["result"] != "valid":
        _raises(test["error"], open_body)
        return
    _expect(open_body() == _h(test["plaintext"]), "decrypted plaintext differs")
    client_private, salt, nonce = _h(test["client_private"]), _h(test["salt"]), _h(test["request_nonce"])
    node_public = x25519_public_key(node_private)
    _expect(
        derive_key(x25519_shared_secret(client_private, node_public), salt).hex() == test["key"], "derived key differs"
    )
    if "KeyOrder" not in test["flags"]:
        request = ConfidentialComputeRequest.parse(test["body"].encode())
        sealed = seal_request(
            _h(test["plaintext"]),
            node_public_key=node_public,
            model_name=request.model_name,
            stack_small_id=request.stack_small_id,
            stream=request.stream,
            num_compute_units=request.num_compute_units,
            rng=FixedBytes(client_private, salt, nonce),
        )
        _expect(sealed.request.serialize().decode() == test["body"], "re-sealed body differs byte for byte")


def _exchange(test: Test):  # type: ignore[no-untyped-def]
    return client_exchange(
        _h(test["client_private"]),
        x25519_public_key(_h(test["node_private"])),
        _h(test["salt"]),
        _h(test["request_nonce"]),
    )


def verify_response_envelope(test: Test, group: Group) -> None:
    exchange = _exchange(test)

    def open_body() -> bytes:
        response = ConfidentialComputeResponse.parse(test["body"].encode())
        return open_response(response, exchange, expected_signer=test["signer_address"]).plaintext

    if test["result"] != "valid":
        _raises(test["error"], open_body)
        return
    _expect(open_body() == _h(test["plaintext"]), "decrypted plaintext differs")
    reparsed = ConfidentialComputeResponse.parse(test["body"].encode()).serialize().decode()
    _expect(reparsed == test["body"], "body is not in canonical key order")


def verify_stream_envelope(test: Test, group: Group) -> None:
    exchange = _exchange(test)
    ledger = NonceLedger()
    ledger.observe(exchange.key_id, exchange.request_nonce, "request")
    ciphertexts: list[bytes] = []
    for i, (event, expected) in enumerate(zip(test["events"], test["chunk_plaintexts"], strict=True)):
        _expect(event.startswith("data: ") and event.endswith("\n\n"), f"event {i} is not 'data: <json>\\n\\n'")
        chunk = StreamChunk.parse(event[len("data: ") : -2].encode())
        _expect(chunk.sse_event().decode() == event, f"event {i} is not in canonical form")
        opened = open_chunk(chunk, exchange, expected_signer=test["signer_address"])
        _expect(opened.plaintext == _h(expected), f"chunk {i} plaintext differs")
        ledger.observe(exchange.key_id, opened.nonce, f"chunk[{i}]")
        ciphertexts.append(b64decode(chunk.ciphertext))
    if test["result"] == "valid":
        _expect(not ledger.findings, "nonce reuse in a stream marked valid")
        return
    _expect(bool(ledger.findings) and test["error"] == "NONCE_REUSE", "expected nonce reuse was not found")
    # Show the consequence, not just the equality: the XOR of two ciphertexts is the XOR of the plaintexts.
    pts = [_h(p) for p in test["chunk_plaintexts"]]
    n = min(len(pts[0]), len(pts[1]))
    x_ct = bytes(a ^ b for a, b in zip(ciphertexts[0][:n], ciphertexts[1][:n], strict=True))
    x_pt = bytes(a ^ b for a, b in zip(pts[0][:n], pts[1][:n], strict=True))
    _expect(x_ct == x_pt, "keystream reuse not demonstrated")


def verify_json_hash(test: Test, group: Group) -> None:
    data = test["serialization"].encode("utf-8")
    _expect(
        jsonwire.strict_equal(jsonwire.loads(data), test["logical"], numbers_by_value=True),
        "serialization does not parse to the logical value",
    )
    matches = b64encode(blake2b_256(data)) == test["hash"]
    _expect(matches == (test["result"] == "valid"), "hash-over-raw-bytes verdict differs")


VERIFIERS: dict[str, Callable[[Test, Group], None]] = {
    "X25519Test": verify_x25519,
    "X25519IterationTest": verify_x25519_iteration,
    "HkdfTest": verify_hkdf,
    "AeadTest": verify_aead,
    "HashTest": verify_hash,
    "Base64Test": verify_base64,
    "FieldLengthTest": verify_field_length,
    "SuiSignatureTest": verify_sui_signature,
    "SuiAddressTest": verify_sui_address,
    "KeystoreTest": verify_keystore,
    "RequestEnvelopeTest": verify_request_envelope,
    "ResponseEnvelopeTest": verify_response_envelope,
    "StreamEnvelopeTest": verify_stream_envelope,
    "JsonHashTest": verify_json_hash,
}


def verify_test(test: Test, group: Group) -> None:
    """Raise :class:`VectorFailure` (or the core's error) unless the core agrees with ``test``."""
    VERIFIERS[group["type"]](test, group)
