"""Differential properties: the reference core against independent libraries, on random inputs.

The core (:mod:`conformance.protocol`) is built on pyca/cryptography (OpenSSL) and hashlib. Every
property here computes the same value a second time with a library that shares no code with it:
libsodium through PyNaCl (X25519, Ed25519, BLAKE2b), pycryptodome (HKDF, AES-GCM, P-256 ECDSA) and
libsecp256k1 through coincurve (secp256k1 ECDSA), and requires the two to agree, on success and on
refusal alike. The independent side never calls the core.
"""

from __future__ import annotations

import base64
import json

import coincurve
import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.signing
import pytest
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS
from hypothesis import assume, example, given
from hypothesis import strategies as st

from conformance.protocol import (
    AeadError,
    AeadKey,
    HighS,
    LowOrderPoint,
    Scheme,
    SeededRandom,
    SignatureVerificationFailed,
    SuiSignature,
    SuiSigner,
    aead_open,
    blake2b_256,
    hkdf_sha256,
    low_order_encodings,
    seal_request,
    seal_response,
    verify,
    x25519_public_key,
    x25519_shared_secret,
)

# Group orders from SEC 2 and FIPS 186-4, written out here rather than taken from the core.
N_K1 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
N_R1 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
TAG_LEN = 16

LOW_ORDER = low_order_encodings()
LOW_ORDER_SET = frozenset(LOW_ORDER)

bytes32 = st.binary(min_size=32, max_size=32)
bytes12 = st.binary(min_size=12, max_size=12)


# --- independent helpers (no conformance.protocol inside) ----------------------------------------------


def nacl_blake2b(data: bytes) -> bytes:
    return nacl.hash.blake2b(data, digest_size=32, encoder=nacl.encoding.RawEncoder)


def sha256(data: bytes) -> bytes:
    return SHA256.new(data).digest()


def cryptodome_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    out = HKDF(master=ikm, key_len=length, salt=salt, hashmod=SHA256, context=info)
    assert isinstance(out, bytes)
    return out


def cryptodome_seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    ct, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(plaintext)
    return ct + tag


def cryptodome_open(key: bytes, nonce: bytes, sealed: bytes) -> bytes:
    """Open ``ct || tag`` (last 16 bytes are the tag); raises ValueError when it does not authenticate."""
    return AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(sealed[:-TAG_LEN], sealed[-TAG_LEN:])


def cryptodome_refuses(key: bytes, nonce: bytes, sealed: bytes) -> bool:
    try:
        cryptodome_open(key, nonce, sealed)
    except ValueError:
        return True
    return False


def libsodium_refuses(private: bytes, public: bytes) -> bool:
    try:
        nacl.bindings.crypto_scalarmult(private, public)
    except nacl.exceptions.RuntimeError:
        return True
    return False


def strict_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    assert base64.b64encode(raw).decode("ascii") == text, "not canonical base64"
    return raw


def der_signature(r: int, s: int) -> bytes:
    def integer(x: int) -> bytes:
        body = x.to_bytes(x.bit_length() // 8 + 1, "big")
        return b"\x02" + bytes([len(body)]) + body

    seq = integer(r) + integer(s)
    return b"\x30" + bytes([len(seq)]) + seq


def parse_der_signature(der: bytes) -> tuple[int, int]:
    assert der[0] == 0x30 and der[1] == len(der) - 2
    values: list[int] = []
    i = 2
    while i < len(der):
        assert der[i] == 0x02
        n = der[i + 1]
        values.append(int.from_bytes(der[i + 2 : i + 2 + n], "big"))
        i += 2 + n
    assert len(values) == 2
    return values[0], values[1]


def split_rs(sig: bytes) -> tuple[int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def join_rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def normalise(sig: bytes, order: int) -> bytes:
    r, s = split_rs(sig)
    return join_rs(r, min(s, order - s))


def coincurve_verifies(public_key: bytes, sig: bytes, msg: bytes) -> bool:
    return coincurve.PublicKey(public_key).verify(der_signature(*split_rs(sig)), msg, hasher=sha256)


def cryptodome_p256_verifies(public_key: bytes, sig: bytes, msg: bytes) -> bool:
    key = ECC.import_key(public_key, curve_name="P-256")
    try:
        DSS.new(key, "fips-186-3").verify(SHA256.new(msg), sig)
    except ValueError:
        return False
    return True


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- X25519 --------------------------------------------------------------------------------------------


@given(private=bytes32)
def test_x25519_public_key_matches_libsodium(private: bytes) -> None:
    assert x25519_public_key(private) == nacl.bindings.crypto_scalarmult_base(private)


@given(private=bytes32, peer=bytes32)
@example(private=bytes(32), peer=(9).to_bytes(32, "little"))
@example(private=b"\xff" * 32, peer=b"\xff" * 32)  # u >= p: a non-canonical encoding, reduced mod p by both
def test_x25519_shared_secret_matches_libsodium_on_random_peer_keys(private: bytes, peer: bytes) -> None:
    # A random 32-byte string is a point on the curve or on its twist; X25519 is defined on both. Only the
    # 14 low-order encodings are refused (by the next property); libsodium refusing anything else fails here.
    assume(peer not in LOW_ORDER_SET)
    assert x25519_shared_secret(private, peer) == nacl.bindings.crypto_scalarmult(private, peer)


@given(a=bytes32, b=bytes32)
def test_x25519_agreement_matches_libsodium_on_honest_keys(a: bytes, b: bytes) -> None:
    a_pub, b_pub = nacl.bindings.crypto_scalarmult_base(a), nacl.bindings.crypto_scalarmult_base(b)
    ours = x25519_shared_secret(a, b_pub)
    assert ours == nacl.bindings.crypto_scalarmult(a, b_pub) == nacl.bindings.crypto_scalarmult(b, a_pub)
    assert ours == x25519_shared_secret(b, a_pub)


@given(private=bytes32)
def test_every_low_order_encoding_is_refused_by_both(private: bytes) -> None:
    assert len(LOW_ORDER) == 14
    for encoding in LOW_ORDER:
        with pytest.raises(LowOrderPoint):
            x25519_shared_secret(private, encoding)
        assert libsodium_refuses(private, encoding), f"libsodium accepted low-order encoding {encoding.hex()}"
        # What a non-checking party computes is exactly libsodium's refused (all-zero) output.
        assert x25519_shared_secret(private, encoding, allow_low_order=True) == bytes(32)


# --- Ed25519 -------------------------------------------------------------------------------------------


@given(seed=bytes32, msg=bytes32, bit=st.integers(0, 64 * 8 - 1))
def test_ed25519_matches_libsodium(seed: bytes, msg: bytes, bit: int) -> None:
    ours = SuiSigner(Scheme.ED25519, seed).sign(msg)
    theirs = nacl.signing.SigningKey(seed)
    their_sig = theirs.sign(msg).signature
    assert ours.public_key == theirs.verify_key.encode()
    assert ours.signature == their_sig  # Ed25519 is deterministic: byte-identical
    # Each verifies the other's signature.
    theirs.verify_key.verify(msg, ours.signature)
    verify(SuiSignature(Scheme.ED25519, their_sig, theirs.verify_key.encode()), msg)
    # And both refuse the same signature with one bit flipped.
    forged = flip_bit(their_sig, bit)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        theirs.verify_key.verify(msg, forged)
    with pytest.raises(SignatureVerificationFailed):
        verify(SuiSignature(Scheme.ED25519, forged, ours.public_key), msg)


# --- secp256k1 -----------------------------------------------------------------------------------------


@given(scalar=st.integers(1, N_K1 - 1), msg=bytes32)
def test_secp256k1_matches_libsecp256k1(scalar: int, msg: bytes) -> None:
    secret = scalar.to_bytes(32, "big")
    ours = SuiSigner(Scheme.SECP256K1, secret).sign(msg)
    theirs = coincurve.PrivateKey(secret)
    public_key = theirs.public_key.format(compressed=True)
    assert ours.public_key == public_key
    # Ours verifies under libsecp256k1 (which itself refuses high-s, so ours is low-s)...
    assert coincurve_verifies(public_key, ours.signature, msg)
    # ...and equals libsecp256k1's RFC 6979 signature over SHA-256(msg), after low-s normalisation.
    their_sig = normalise(join_rs(*parse_der_signature(theirs.sign(msg, hasher=sha256))), N_K1)
    assert ours.signature == their_sig
    verify(SuiSignature(Scheme.SECP256K1, their_sig, public_key), msg)
    # The malleated twin (r, n - s) is refused by both.
    r, s = split_rs(their_sig)
    twin = join_rs(r, N_K1 - s)
    assert not coincurve_verifies(public_key, twin, msg)
    with pytest.raises(HighS):
        verify(SuiSignature(Scheme.SECP256K1, twin, public_key), msg)


# --- secp256r1 -----------------------------------------------------------------------------------------


@given(scalar=st.integers(1, N_R1 - 1), msg=bytes32)
def test_secp256r1_matches_pycryptodome(scalar: int, msg: bytes) -> None:
    secret = scalar.to_bytes(32, "big")
    ours = SuiSigner(Scheme.SECP256R1, secret).sign(msg)
    key = ECC.construct(curve="P-256", d=scalar)
    public_key = key.public_key().export_key(format="SEC1", compress=True)
    assert ours.public_key == public_key
    assert split_rs(ours.signature)[1] <= N_R1 // 2
    assert cryptodome_p256_verifies(public_key, ours.signature, msg)
    raw = DSS.new(key, "deterministic-rfc6979").sign(SHA256.new(msg))
    their_sig = normalise(raw, N_R1)
    assert ours.signature == their_sig
    verify(SuiSignature(Scheme.SECP256R1, their_sig, public_key), msg)
    # pycryptodome does not normalise: when its raw s is high, it still verifies there and the core refuses it.
    _, s = split_rs(raw)
    if s > N_R1 // 2:
        assert cryptodome_p256_verifies(public_key, raw, msg)
        with pytest.raises(HighS):
            verify(SuiSignature(Scheme.SECP256R1, raw, public_key), msg)


# --- BLAKE2b-256 ---------------------------------------------------------------------------------------


@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=bytes(128))  # exactly one block
@example(data=bytes(range(256)) * 2)  # several blocks
def test_blake2b_256_matches_libsodium(data: bytes) -> None:
    assert blake2b_256(data) == nacl_blake2b(data)


# --- HKDF-SHA256 ---------------------------------------------------------------------------------------


@given(
    ikm=st.binary(max_size=96),
    salt=st.binary(min_size=1, max_size=96),
    info=st.binary(max_size=96),
    length=st.integers(1, 255 * 32),
)
@example(ikm=bytes(32), salt=bytes(16), info=b"", length=32)
@example(ikm=b"\x0b" * 22, salt=b"\x00", info=b"", length=255 * 32)
def test_hkdf_sha256_matches_pycryptodome(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    assert hkdf_sha256(ikm, salt, info, length) == cryptodome_hkdf(ikm, salt, info, length)


# --- AES-256-GCM ---------------------------------------------------------------------------------------


@given(key=bytes32, nonce=bytes12, plaintext=st.binary(max_size=300))
def test_aes_gcm_matches_pycryptodome(key: bytes, nonce: bytes, plaintext: bytes) -> None:
    ours = AeadKey(key).seal(nonce, plaintext)
    theirs = cryptodome_seal(key, nonce, plaintext)
    assert ours == theirs
    assert len(ours) == len(plaintext) + TAG_LEN
    assert aead_open(key, nonce, theirs) == plaintext
    assert cryptodome_open(key, nonce, ours) == plaintext


@given(key=bytes32, nonce=bytes12, plaintext=st.binary(max_size=300), data=st.data())
def test_aes_gcm_single_bit_flip_is_refused_by_both(
    key: bytes, nonce: bytes, plaintext: bytes, data: st.DataObject
) -> None:
    sealed = cryptodome_seal(key, nonce, plaintext)
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1), label="bit")
    tampered = flip_bit(sealed, bit)
    with pytest.raises(AeadError):
        aead_open(key, nonce, tampered)
    assert cryptodome_refuses(key, nonce, tampered)


# --- full envelope -------------------------------------------------------------------------------------


@given(
    seed=st.binary(min_size=1, max_size=32),
    node_private=bytes32,
    request=st.binary(max_size=200),
    response=st.binary(max_size=200),
    signer_seed=bytes32,
)
def test_envelope_opens_with_independent_libraries(
    seed: bytes, node_private: bytes, request: bytes, response: bytes, signer_seed: bytes
) -> None:
    node_public = nacl.bindings.crypto_scalarmult_base(node_private)
    sealed = seal_request(
        request,
        node_public_key=node_public,
        model_name="m",
        stack_small_id=7,
        rng=SeededRandom(seed),
    )
    # --- the node side, rebuilt with libsodium and pycryptodome only
    body = json.loads(sealed.request.serialize())
    client_public = strict_b64(body["client_dh_public_key"])
    salt, nonce = strict_b64(body["salt"]), strict_b64(body["nonce"])
    assert strict_b64(body["node_dh_public_key"]) == node_public
    assert len(salt) == 16 and len(nonce) == 12
    # The documented draw order: client private key, then salt, then nonce.
    draws = SeededRandom(seed)
    assert client_public == nacl.bindings.crypto_scalarmult_base(draws.token_bytes(32))
    assert (salt, nonce) == (draws.token_bytes(16), draws.token_bytes(12))
    key = cryptodome_hkdf(nacl.bindings.crypto_scalarmult(node_private, client_public), salt, b"", 32)
    assert cryptodome_open(key, nonce, strict_b64(body["ciphertext"])) == request
    assert strict_b64(body["plaintext_body_hash"]) == nacl_blake2b(request)

    # --- the response, sealed by the core under that exchange, opened and verified independently
    signer = SuiSigner(Scheme.ED25519, signer_seed)
    sealed_response = seal_response(response, sealed.exchange, signer, rng=SeededRandom(seed + b"/response"))
    reply = json.loads(sealed_response.serialize())
    response_nonce = strict_b64(reply["nonce"])
    assert len(response_nonce) == 12 and response_nonce != nonce
    assert cryptodome_open(key, response_nonce, strict_b64(reply["ciphertext"])) == response
    digest = nacl_blake2b(response)
    assert strict_b64(reply["response_hash"]) == digest
    blob = strict_b64(reply["signature"])
    assert len(blob) == 97 and blob[0] == 0x00
    verify_key = nacl.signing.SigningKey(signer_seed).verify_key
    assert blob[65:] == verify_key.encode()
    verify_key.verify(digest, blob[1:65])
    assert signer.address == "0x" + nacl_blake2b(b"\x00" + blob[65:]).hex()
