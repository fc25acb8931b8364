"""X25519 with low-order detection, HKDF-SHA256, AES-256-GCM and BLAKE2b-256, against published vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import nacl.bindings
import nacl.encoding
import nacl.hash
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    LOW_ORDER_U,
    AeadError,
    AeadKey,
    LengthError,
    LowOrderPoint,
    ProtocolError,
    aead_open,
    aead_seal,
    blake2b_256,
    derive_key,
    hkdf_sha256,
    is_low_order,
    low_order_encodings,
    x25519_public_key,
    x25519_shared_secret,
)

# RFC 7748 §6.1
ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PK = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SK = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
# B3: HKDF-SHA256(SHARED, salt=00..0f, info="", L=32)
B3_KEY = bytes.fromhex("193a1658e238ccf07108d772c923f3336a66f156195421b9b3f7cef441f13af7")

LOW_ORDER = low_order_encodings()


def _check(exc: ProtocolError, cls: type[ProtocolError], code: str, field: str | None) -> None:
    assert type(exc) is cls
    assert exc.code == code
    assert exc.field == field


# --- low-order points -------------------------------------------------------------------------------


def test_low_order_encodings_are_14_distinct_32_byte_values() -> None:
    assert len(LOW_ORDER) == 14
    assert len(set(LOW_ORDER)) == 14
    assert all(len(e) == 32 for e in LOW_ORDER)
    assert len(LOW_ORDER_U) == 7


def test_low_order_encodings_come_in_top_bit_twins() -> None:
    for clear, high in zip(LOW_ORDER[0::2], LOW_ORDER[1::2], strict=True):
        assert clear[31] & 0x80 == 0
        assert high == clear[:31] + bytes([clear[31] | 0x80])


def test_low_order_encodings_include_the_classic_ones() -> None:
    assert bytes(32) in LOW_ORDER
    assert (1).to_bytes(32, "little") in LOW_ORDER
    # The order-8 point libsodium lists first in its blocklist.
    assert bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800") in LOW_ORDER
    assert bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157") in LOW_ORDER


def test_low_order_list_is_a_fresh_copy() -> None:
    first = low_order_encodings()
    first.clear()
    assert len(low_order_encodings()) == 14


@pytest.mark.parametrize("point", LOW_ORDER, ids=[p.hex()[:8] + p.hex()[-2:] for p in LOW_ORDER])
def test_is_low_order_true_for_every_encoding(point: bytes) -> None:
    assert is_low_order(point)


@pytest.mark.parametrize("point", LOW_ORDER, ids=[p.hex()[:8] + p.hex()[-2:] for p in LOW_ORDER])
def test_backend_agrees_every_encoding_gives_zero(point: bytes) -> None:
    # OpenSSL refuses an all-zero X25519 output: confirms each encoding really is low order.
    with pytest.raises(ValueError, match="shared key"):
        X25519PrivateKey.from_private_bytes(ALICE_SK).exchange(X25519PublicKey.from_public_bytes(point))


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_is_low_order_false_for_wrong_length(length: int) -> None:
    assert not is_low_order(bytes(length))


@pytest.mark.parametrize("point", [ALICE_PK, BOB_PK, (9).to_bytes(32, "little"), (2).to_bytes(32, "little")])
def test_is_low_order_false_for_ordinary_keys(point: bytes) -> None:
    assert not is_low_order(point)


@pytest.mark.parametrize("point", LOW_ORDER, ids=[p.hex()[:8] + p.hex()[-2:] for p in LOW_ORDER])
def test_shared_secret_refuses_low_order(point: bytes) -> None:
    with pytest.raises(LowOrderPoint) as info:
        x25519_shared_secret(ALICE_SK, point)
    _check(info.value, LowOrderPoint, "LOW_ORDER_POINT", "peer_public_key")
    assert point.hex() not in str(info.value)


@pytest.mark.parametrize("point", LOW_ORDER, ids=[p.hex()[:8] + p.hex()[-2:] for p in LOW_ORDER])
def test_shared_secret_low_order_allowed_is_all_zero(point: bytes) -> None:
    assert x25519_shared_secret(ALICE_SK, point, allow_low_order=True) == bytes(32)
    assert x25519_shared_secret(BOB_SK, point, allow_low_order=True) == bytes(32)


def test_allow_low_order_does_not_change_ordinary_results() -> None:
    assert x25519_shared_secret(ALICE_SK, BOB_PK, allow_low_order=True) == SHARED


# --- X25519 -----------------------------------------------------------------------------------------


def test_rfc7748_public_keys() -> None:
    assert x25519_public_key(ALICE_SK) == ALICE_PK
    assert x25519_public_key(BOB_SK) == BOB_PK


def test_rfc7748_shared_secret_both_directions() -> None:
    assert x25519_shared_secret(ALICE_SK, BOB_PK) == SHARED
    assert x25519_shared_secret(BOB_SK, ALICE_PK) == SHARED


def test_rfc7748_section_5_2_vector() -> None:
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    assert x25519_shared_secret(scalar, u) == expected


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_x25519_agrees_with_libsodium(a: bytes, b: bytes) -> None:
    pk_b = x25519_public_key(b)
    assert pk_b == nacl.bindings.crypto_scalarmult_base(b)
    assert x25519_shared_secret(a, pk_b) == nacl.bindings.crypto_scalarmult(a, pk_b)
    assert x25519_shared_secret(a, pk_b) == x25519_shared_secret(b, x25519_public_key(a))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_public_key_wrong_private_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        x25519_public_key(bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "private_key")
    assert info.value.reason == f"is {length} bytes, expected exactly 32"


@pytest.mark.parametrize("length", [0, 31, 33])
def test_shared_secret_wrong_private_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        x25519_shared_secret(bytes(length), BOB_PK)
    _check(info.value, LengthError, "WRONG_LENGTH", "private_key")


@pytest.mark.parametrize("length", [0, 31, 33])
def test_shared_secret_wrong_peer_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        x25519_shared_secret(ALICE_SK, bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "peer_public_key")


def test_shared_secret_length_checked_before_low_order() -> None:
    with pytest.raises(LengthError):
        x25519_shared_secret(ALICE_SK, bytes(31), allow_low_order=True)


# --- HKDF -------------------------------------------------------------------------------------------


def test_derive_key_b3() -> None:
    assert derive_key(SHARED, bytes(range(16))) == B3_KEY


def test_derive_key_is_hkdf_with_empty_info() -> None:
    salt = bytes(range(16))
    assert derive_key(SHARED, salt) == hkdf_sha256(SHARED, salt, b"", 32)
    assert derive_key(SHARED, salt) == hkdf_sha256(SHARED, salt)
    assert derive_key(SHARED, salt) != hkdf_sha256(SHARED, salt, b"atoma")
    assert derive_key(SHARED, salt) != derive_key(SHARED, bytes(16))


def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf_sha256(bytes([0x0B] * 22), bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


@pytest.mark.parametrize("length", [0, 31, 33])
def test_derive_key_wrong_secret_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        derive_key(bytes(length), bytes(16))
    _check(info.value, LengthError, "WRONG_LENGTH", "shared_secret")


@pytest.mark.parametrize("length", [0, 12, 15, 17, 32])
def test_derive_key_wrong_salt_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        derive_key(SHARED, bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "salt")


# --- AES-256-GCM ------------------------------------------------------------------------------------

NONCE = bytes(range(12))


def test_gcm_spec_test_case_13_and_14() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", AES-256 test cases 13 and 14.
    assert aead_seal(bytes(32), bytes(12), b"").hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    sealed = aead_seal(bytes(32), bytes(12), bytes(16))
    assert sealed.hex() == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"
    assert aead_open(bytes(32), bytes(12), sealed) == bytes(16)


@given(st.binary(max_size=256), st.binary(min_size=32, max_size=32), st.binary(min_size=12, max_size=12))
def test_aead_round_trip(plaintext: bytes, key: bytes, nonce: bytes) -> None:
    sealed = aead_seal(key, nonce, plaintext)
    assert len(sealed) == len(plaintext) + 16
    assert aead_open(key, nonce, sealed) == plaintext
    aead = AeadKey(key)
    assert aead.seal(nonce, plaintext) == sealed
    assert aead.open(nonce, sealed) == plaintext


def test_aead_key_is_reusable() -> None:
    aead = AeadKey(B3_KEY)
    one = aead.seal(NONCE, b"one")
    two = aead.seal(bytes(12), b"two")
    assert aead.open(NONCE, one) == b"one"
    assert aead.open(bytes(12), two) == b"two"


def _aead_refused(call: Callable[[], object], field: str = "ciphertext") -> None:
    with pytest.raises(AeadError) as info:
        call()
    _check(info.value, AeadError, "AEAD_AUTHENTICATION_FAILED", field)
    assert B3_KEY.hex() not in str(info.value)


@pytest.mark.parametrize("index", [0, 5, -16, -1])
def test_aead_tamper_refused(index: int) -> None:
    sealed = bytearray(aead_seal(B3_KEY, NONCE, b"secret plaintext"))
    sealed[index] ^= 0x01
    _aead_refused(lambda: aead_open(B3_KEY, NONCE, bytes(sealed)))


def test_aead_nonce_tamper_refused() -> None:
    sealed = aead_seal(B3_KEY, NONCE, b"secret plaintext")
    _aead_refused(lambda: aead_open(B3_KEY, bytes([NONCE[0] ^ 1]) + NONCE[1:], sealed))


def test_aead_wrong_key_refused() -> None:
    sealed = aead_seal(B3_KEY, NONCE, b"secret plaintext")
    _aead_refused(lambda: aead_open(bytes(32), NONCE, sealed))


def test_aead_truncated_or_extended_refused() -> None:
    sealed = aead_seal(B3_KEY, NONCE, b"secret plaintext")
    _aead_refused(lambda: aead_open(B3_KEY, NONCE, sealed[:-1]))
    _aead_refused(lambda: aead_open(B3_KEY, NONCE, sealed + b"\x00"))


def test_aead_open_uses_given_field() -> None:
    sealed = bytearray(aead_seal(B3_KEY, NONCE, b"x"))
    sealed[0] ^= 0x80
    _aead_refused(lambda: AeadKey(B3_KEY).open(NONCE, bytes(sealed), field="chunk.ciphertext"), "chunk.ciphertext")


def test_aead_empty_plaintext_is_exactly_a_tag() -> None:
    sealed = aead_seal(B3_KEY, NONCE, b"")
    assert len(sealed) == 16
    assert aead_open(B3_KEY, NONCE, sealed) == b""


@pytest.mark.parametrize("length", [0, 1, 15])
def test_aead_sealed_shorter_than_tag(length: int) -> None:
    with pytest.raises(LengthError) as info:
        aead_open(B3_KEY, NONCE, bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "ciphertext")
    assert info.value.reason == f"is {length} bytes, shorter than the 16-byte GCM tag"
    with pytest.raises(LengthError) as info:
        AeadKey(B3_KEY).open(NONCE, bytes(length), field="x")
    _check(info.value, LengthError, "WRONG_LENGTH", "x")


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_aead_key_wrong_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        AeadKey(bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "key")
    with pytest.raises(LengthError) as info:
        aead_seal(bytes(length), NONCE, b"")
    _check(info.value, LengthError, "WRONG_LENGTH", "key")
    with pytest.raises(LengthError) as info:
        aead_open(bytes(length), NONCE, bytes(16))
    _check(info.value, LengthError, "WRONG_LENGTH", "key")


@pytest.mark.parametrize("length", [0, 8, 11, 13, 16])
def test_aead_nonce_wrong_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        aead_seal(B3_KEY, bytes(length), b"x")
    _check(info.value, LengthError, "WRONG_LENGTH", "nonce")
    with pytest.raises(LengthError) as info:
        aead_open(B3_KEY, bytes(length), bytes(32))
    _check(info.value, LengthError, "WRONG_LENGTH", "nonce")


def test_aead_key_repr_hides_key() -> None:
    assert B3_KEY.hex() not in repr(AeadKey(B3_KEY))


# --- BLAKE2b-256 ------------------------------------------------------------------------------------


def test_blake2b_256_known_answers() -> None:
    assert blake2b_256(b"").hex() == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    assert blake2b_256(b"abc").hex() == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"


def test_blake2b_256_is_not_truncated_blake2b_512() -> None:
    for data in (b"", b"abc", b"Test message"):
        assert blake2b_256(data) != hashlib.blake2b(data).digest()[:32]
        assert len(blake2b_256(data)) == 32


@given(st.binary(max_size=512))
def test_blake2b_256_agrees_with_libsodium(data: bytes) -> None:
    expected = nacl.hash.blake2b(data, digest_size=32, encoder=nacl.encoding.RawEncoder)
    assert blake2b_256(data) == expected


def test_canonical_public_key_folds_bit_255_and_values_above_p() -> None:
    from conformance.protocol import canonical_public_key, key_id

    key = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    high = key[:31] + bytes([key[31] | 0x80])
    assert canonical_public_key(high) == canonical_public_key(key) == key
    p_plus_one = (2**255 - 19 + 1).to_bytes(32, "little")
    assert canonical_public_key(p_plus_one) == (1).to_bytes(32, "little")
    assert key_id(high, key, bytes(16)) == key_id(key, key, bytes(16)), "same K, same name"
    with pytest.raises(LengthError):
        canonical_public_key(bytes(31))
