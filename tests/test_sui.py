"""Sui signatures: known answers, the three schemes, and every way a signature or key is refused."""

from __future__ import annotations

import hashlib

import coincurve
import nacl.signing
import pytest
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    CURVE_ORDER,
    SERIALIZED_LEN,
    Base64MissingPadding,
    HighS,
    InvalidPublicKey,
    InvalidSecretKey,
    LengthError,
    ProtocolError,
    Scheme,
    SignatureLength,
    SignatureVerificationFailed,
    SignerMismatch,
    SuiSignature,
    SuiSigner,
    UnknownSignatureScheme,
    b64encode,
    blake2b_256,
    parse_signature,
    parse_signature_bytes,
    sui_address,
    to_high_s,
    verify,
    verify_b64,
)

A1_KEYSTORE = "AIgaZOcV4LWOsLMY37SfkEalngk2nbUM9S3SDhSe+rHq"
A1_PUBLIC_KEY = "6061c0a0b767fe464e818edce3c196dabf5a0b469b99ee80c55eb42257a60e32"
A1_ADDRESS = "0xe9068128f7b0955412f8b825cd3bab6e1a5dd49cde8c51a72091481df9bca609"
A1_SIGNATURE = (
    "APgRgid4ldc9KBrvQ3xJOl9FJbGtB51p5digQX1BsvYYU0ONEUwPlIobL+wJimLMQkxI2Bfxeh6eMDfHZzVunQBgYcCgt2f+"
    "Rk6BjtzjwZbav1oLRpuZ7oDFXrQiV6YOMg=="
)
MESSAGE = blake2b_256(b"Test message")
OTHER_MESSAGE = blake2b_256(b"Another message")

SCHEMES = list(Scheme)
ECDSA = [Scheme.SECP256K1, Scheme.SECP256R1]
SECRETS = {scheme: blake2b_256(b"test secret " + scheme.label.encode()) for scheme in Scheme}


def _signer(scheme: Scheme, tag: str = "") -> SuiSigner:
    return SuiSigner(scheme, blake2b_256(f"test secret {scheme.label}{tag}".encode()))


def _check(exc: ProtocolError, cls: type[ProtocolError], code: str, field: str | None = "signature") -> None:
    assert type(exc) is cls
    assert exc.code == code
    assert exc.field == field


def _refuses(sig: SuiSignature, cls: type[ProtocolError], code: str, message: bytes = MESSAGE) -> ProtocolError:
    with pytest.raises(cls) as info:
        verify(sig, message)
    _check(info.value, cls, code)
    with pytest.raises(cls) as info:
        verify_b64(sig.to_b64(), message, field="sig")
    _check(info.value, cls, code, "sig")
    assert sig.to_b64() not in str(info.value)
    return info.value


# --- known answers ----------------------------------------------------------------------------------


def test_a1_keystore_public_key_and_address() -> None:
    signer = SuiSigner.from_keystore(A1_KEYSTORE)
    assert signer.scheme is Scheme.ED25519
    assert signer.public_key.hex() == A1_PUBLIC_KEY
    assert signer.address == A1_ADDRESS
    assert sui_address(Scheme.ED25519, bytes.fromhex(A1_PUBLIC_KEY)) == A1_ADDRESS
    assert signer.to_keystore() == A1_KEYSTORE


def test_a1_signature_is_exact() -> None:
    signer = SuiSigner.from_keystore(A1_KEYSTORE)
    sig = signer.sign(MESSAGE)
    assert sig.to_b64() == A1_SIGNATURE
    assert sig.address == A1_ADDRESS
    parsed = verify_b64(A1_SIGNATURE, MESSAGE, expected_address=A1_ADDRESS)
    assert parsed == sig
    assert nacl.signing.VerifyKey(parsed.public_key).verify(MESSAGE, parsed.signature) == MESSAGE


def test_address_is_blake2b_of_flag_and_key() -> None:
    for scheme in SCHEMES:
        signer = _signer(scheme)
        assert signer.address == "0x" + hashlib.blake2b(bytes([scheme]) + signer.public_key, digest_size=32).hexdigest()
        assert len(signer.address) == 66


# --- round trips per scheme -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sign_verify_round_trip(scheme: Scheme) -> None:
    signer = _signer(scheme)
    sig = signer.sign(MESSAGE)
    assert sig.scheme is scheme
    assert sig.public_key == signer.public_key
    assert len(sig.signature) == 64
    verify(sig, MESSAGE)
    parsed = verify_b64(sig.to_b64(), MESSAGE, expected_address=signer.address)
    assert parsed == sig
    assert parsed.address == signer.address


@pytest.mark.parametrize(("scheme", "length"), [(Scheme.ED25519, 97), (Scheme.SECP256K1, 98), (Scheme.SECP256R1, 98)])
def test_serialized_lengths(scheme: Scheme, length: int) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    assert len(sig.to_bytes()) == length == SERIALIZED_LEN[scheme]
    assert sig.to_bytes()[0] == scheme.value
    assert parse_signature_bytes(sig.to_bytes()) == sig
    assert parse_signature(sig.to_b64()) == sig


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keystore_round_trip(scheme: Scheme) -> None:
    signer = _signer(scheme)
    entry = signer.to_keystore()
    again = SuiSigner.from_keystore(entry)
    assert again.scheme is scheme
    assert again.public_key == signer.public_key
    assert again.address == signer.address
    assert again.sign(MESSAGE) == signer.sign(MESSAGE)


def test_ecdsa_public_keys_are_compressed() -> None:
    for scheme in ECDSA:
        pk = _signer(scheme).public_key
        assert len(pk) == 33
        assert pk[0] in (2, 3)


# --- tampering --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tampered_message_fails(scheme: Scheme) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    _refuses(sig, SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED", OTHER_MESSAGE)
    flipped = bytes([MESSAGE[0] ^ 1]) + MESSAGE[1:]
    _refuses(sig, SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED", flipped)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("index", [0, 31, 63])
def test_tampered_signature_fails(scheme: Scheme, index: int) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    raw = bytearray(sig.signature)
    raw[index] ^= 0x01  # flipping the lowest bit of r or s keeps both in range and low
    _refuses(
        SuiSignature(scheme, bytes(raw), sig.public_key), SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED"
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_other_signers_public_key_fails(scheme: Scheme) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    other = _signer(scheme, "other").public_key
    _refuses(SuiSignature(scheme, sig.signature, other), SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED")


@pytest.mark.parametrize(
    ("scheme", "flag"),
    [(Scheme.ED25519, 1), (Scheme.ED25519, 2), (Scheme.SECP256K1, 0), (Scheme.SECP256R1, 0)],
)
def test_wrong_flag_changes_the_length_rule(scheme: Scheme, flag: int) -> None:
    raw = bytes([flag]) + _signer(scheme).sign(MESSAGE).to_bytes()[1:]
    with pytest.raises(SignatureLength) as info:
        parse_signature_bytes(raw)
    _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH")
    with pytest.raises(SignatureLength) as info:
        verify_b64(b64encode(raw), MESSAGE)
    _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH")


@pytest.mark.parametrize(
    ("scheme", "relabel", "cls", "code"),
    [
        # Deterministic keys: this k1 key happens to be a valid r1 point, this r1 key is not a k1 point.
        (Scheme.SECP256K1, Scheme.SECP256R1, SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED"),
        (Scheme.SECP256R1, Scheme.SECP256K1, InvalidPublicKey, "SIGNATURE_INVALID_PUBLIC_KEY"),
    ],
)
def test_wrong_flag_between_ecdsa_curves(scheme: Scheme, relabel: Scheme, cls: type[ProtocolError], code: str) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    _refuses(SuiSignature(relabel, sig.signature, sig.public_key), cls, code)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("cut", [1, 32, 64])
def test_truncated_signature(scheme: Scheme, cut: int) -> None:
    raw = _signer(scheme).sign(MESSAGE).to_bytes()
    with pytest.raises(SignatureLength) as info:
        parse_signature_bytes(raw[:-cut])
    _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH")
    assert f"is {len(raw) - cut} bytes" in info.value.reason
    assert str(SERIALIZED_LEN[scheme]) in info.value.reason


@pytest.mark.parametrize("scheme", SCHEMES)
def test_extended_signature(scheme: Scheme) -> None:
    raw = _signer(scheme).sign(MESSAGE).to_bytes()
    for extra in (b"\x00", b"\x00" * 32):
        with pytest.raises(SignatureLength) as info:
            parse_signature(b64encode(raw + extra), field="sig")
        _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH", "sig")


def test_only_flag_is_too_short() -> None:
    with pytest.raises(SignatureLength):
        parse_signature_bytes(b"\x00")


def test_empty_signature() -> None:
    with pytest.raises(SignatureLength) as info:
        parse_signature("")
    _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH")
    assert "empty" in info.value.reason
    with pytest.raises(SignatureLength) as info:
        parse_signature_bytes(b"", field=None)
    _check(info.value, SignatureLength, "SIGNATURE_WRONG_LENGTH", None)


@pytest.mark.parametrize("flag", [0x03, 0x04, 0x05, 0x80, 0xFF])
def test_unknown_flag(flag: int) -> None:
    raw = bytes([flag]) + bytes(97)
    with pytest.raises(UnknownSignatureScheme) as info:
        parse_signature(b64encode(raw))
    _check(info.value, UnknownSignatureScheme, "SIGNATURE_UNKNOWN_SCHEME")
    assert f"0x{flag:02x}" in info.value.reason


def test_signature_not_base64() -> None:
    with pytest.raises(Base64MissingPadding) as info:
        parse_signature("AA")
    _check(info.value, Base64MissingPadding, "BASE64_MISSING_PADDING")
    with pytest.raises(Base64MissingPadding) as info:
        verify_b64("AA", MESSAGE, field="chunk.signature")
    _check(info.value, Base64MissingPadding, "BASE64_MISSING_PADDING", "chunk.signature")


# --- ECDSA scalar rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ECDSA)
def test_high_s_rejected(scheme: Scheme) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    high = to_high_s(sig)
    assert high != sig
    assert int.from_bytes(high.signature[32:], "big") > CURVE_ORDER[scheme] // 2
    assert high.signature[:32] == sig.signature[:32]
    exc = _refuses(high, HighS, "SIGNATURE_HIGH_S")
    assert "high s" in exc.reason
    assert to_high_s(high) == sig


@pytest.mark.parametrize("scheme", ECDSA)
def test_high_s_is_a_valid_ecdsa_signature_otherwise(scheme: Scheme) -> None:
    # The twin verifies under plain ECDSA (OpenSSL does not apply the low-s rule): only Sui's rule refuses it.
    sig = to_high_s(_signer(scheme).sign(MESSAGE))
    r = int.from_bytes(sig.signature[:32], "big")
    s = int.from_bytes(sig.signature[32:], "big")
    curve: ec.EllipticCurve = ec.SECP256K1() if scheme is Scheme.SECP256K1 else ec.SECP256R1()
    public = ec.EllipticCurvePublicKey.from_encoded_point(curve, sig.public_key)
    public.verify(encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hashes.SHA256()))


def _with_rs(sig: SuiSignature, r: int, s: int) -> SuiSignature:
    return SuiSignature(sig.scheme, r.to_bytes(32, "big") + s.to_bytes(32, "big"), sig.public_key)


@pytest.mark.parametrize("scheme", ECDSA)
@pytest.mark.parametrize("which", ["r=0", "s=0", "r=n", "s=n", "r=max", "s=max", "r=n+1"])
def test_r_or_s_out_of_range(scheme: Scheme, which: str) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    n = CURVE_ORDER[scheme]
    r = int.from_bytes(sig.signature[:32], "big")
    s = int.from_bytes(sig.signature[32:], "big")
    values = {"0": 0, "n": n, "max": 2**256 - 1, "n+1": n + 1}
    name, value = which.split("=")
    bad = _with_rs(sig, values[value], s) if name == "r" else _with_rs(sig, r, values[value])
    exc = _refuses(bad, SignatureVerificationFailed, "SIGNATURE_VERIFICATION_FAILED")
    assert "outside [1, n-1]" in exc.reason


@pytest.mark.parametrize("scheme", ECDSA)
@pytest.mark.parametrize(
    "public_key",
    [
        b"\x05" + bytes(32),  # not a SEC1 prefix
        b"\x04" + bytes([1]) * 32,  # uncompressed prefix with a compressed length
        b"\x00" * 33,  # the point at infinity is not a public key
        b"\x02" + b"\xff" * 32,  # x >= p
    ],
)
def test_invalid_public_key(scheme: Scheme, public_key: bytes) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    _refuses(SuiSignature(scheme, sig.signature, public_key), InvalidPublicKey, "SIGNATURE_INVALID_PUBLIC_KEY")


@pytest.mark.parametrize(("scheme", "x"), [(Scheme.SECP256K1, 0), (Scheme.SECP256R1, 1)])
def test_x_not_on_curve(scheme: Scheme, x: int) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    for prefix in (b"\x02", b"\x03"):
        bad = SuiSignature(scheme, sig.signature, prefix + x.to_bytes(32, "big"))
        _refuses(bad, InvalidPublicKey, "SIGNATURE_INVALID_PUBLIC_KEY")


def test_to_high_s_refuses_ed25519() -> None:
    sig = _signer(Scheme.ED25519).sign(MESSAGE)
    with pytest.raises(ValueError, match="ECDSA"):
        to_high_s(sig)


# --- signer pinning and message length --------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_expected_address_mismatch(scheme: Scheme) -> None:
    sig = _signer(scheme).sign(MESSAGE)
    other = _signer(scheme, "other").address
    with pytest.raises(SignerMismatch) as info:
        verify_b64(sig.to_b64(), MESSAGE, expected_address=other)
    _check(info.value, SignerMismatch, "SIGNATURE_WRONG_SIGNER")
    assert other not in str(info.value)
    assert sig.address not in str(info.value)


def test_expected_address_is_case_insensitive() -> None:
    signer = SuiSigner.from_keystore(A1_KEYSTORE)
    verify_b64(A1_SIGNATURE, MESSAGE, expected_address=A1_ADDRESS.upper())
    verify_b64(A1_SIGNATURE, MESSAGE, expected_address=signer.address)


def test_same_key_other_scheme_is_another_address() -> None:
    secret = SECRETS[Scheme.SECP256K1]
    assert SuiSigner(Scheme.SECP256K1, secret).address != SuiSigner(Scheme.SECP256R1, secret).address


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_message_must_be_32_bytes(scheme: Scheme, length: int) -> None:
    signer = _signer(scheme)
    sig = signer.sign(MESSAGE)
    with pytest.raises(LengthError) as info:
        verify(sig, bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "message")
    with pytest.raises(LengthError) as info:
        signer.sign(bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "message")


# --- signers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("length", [0, 31, 33])
def test_signer_secret_wrong_length(scheme: Scheme, length: int) -> None:
    with pytest.raises(LengthError) as info:
        SuiSigner(scheme, bytes(length))
    _check(info.value, LengthError, "WRONG_LENGTH", "secret")


@pytest.mark.parametrize("scheme", ECDSA)
@pytest.mark.parametrize("offset", [None, 0, 1])
def test_ecdsa_secret_out_of_range(scheme: Scheme, offset: int | None) -> None:
    scalar = 0 if offset is None else CURVE_ORDER[scheme] + offset
    with pytest.raises(InvalidSecretKey) as info:
        SuiSigner(scheme, scalar.to_bytes(32, "big"))
    _check(info.value, InvalidSecretKey, "SIGNATURE_INVALID_SECRET_KEY", "secret")
    with pytest.raises(InvalidSecretKey):
        SuiSigner(scheme, b"\xff" * 32)


@pytest.mark.parametrize("scheme", ECDSA)
def test_ecdsa_secret_extremes_accepted(scheme: Scheme) -> None:
    for scalar in (1, CURVE_ORDER[scheme] - 1):
        signer = SuiSigner(scheme, scalar.to_bytes(32, "big"))
        verify(signer.sign(MESSAGE), MESSAGE)


def test_ed25519_any_32_byte_seed_is_a_key() -> None:
    for seed in (bytes(32), b"\xff" * 32):
        signer = SuiSigner(Scheme.ED25519, seed)
        verify(signer.sign(MESSAGE), MESSAGE)


@pytest.mark.parametrize("length", [0, 1, 32, 34])
def test_keystore_wrong_length(length: int) -> None:
    with pytest.raises(LengthError) as info:
        SuiSigner.from_keystore(b64encode(bytes(length)))
    _check(info.value, LengthError, "WRONG_LENGTH", "keystore_entry")
    assert f"decodes to {length} bytes" in info.value.reason


@pytest.mark.parametrize("flag", [0x03, 0x05, 0xFF])
def test_keystore_unknown_flag(flag: int) -> None:
    entry = b64encode(bytes([flag]) + bytes(range(1, 33)))
    with pytest.raises(UnknownSignatureScheme) as info:
        SuiSigner.from_keystore(entry)
    _check(info.value, UnknownSignatureScheme, "SIGNATURE_UNKNOWN_SCHEME", "keystore_entry")
    assert entry not in str(info.value)


def test_keystore_not_base64() -> None:
    with pytest.raises(Base64MissingPadding) as info:
        SuiSigner.from_keystore(A1_KEYSTORE[:-1])
    _check(info.value, Base64MissingPadding, "BASE64_MISSING_PADDING", "keystore_entry")
    assert A1_KEYSTORE[:-1] not in str(info.value)


def test_keystore_ecdsa_zero_scalar() -> None:
    with pytest.raises(InvalidSecretKey) as info:
        SuiSigner.from_keystore(b64encode(b"\x01" + bytes(32)))
    assert info.value.code == "SIGNATURE_INVALID_SECRET_KEY"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signer_repr_hides_secret(scheme: Scheme) -> None:
    secret = SECRETS[scheme]
    signer = SuiSigner(scheme, secret)
    text = repr(signer)
    assert text == f"SuiSigner({scheme.label}, address={signer.address})"
    assert secret.hex() not in text
    assert b64encode(secret) not in text
    assert signer.to_keystore() not in text
    assert signer.to_keystore() not in str(signer)


def test_a1_repr_hides_keystore() -> None:
    signer = SuiSigner.from_keystore(A1_KEYSTORE)
    assert A1_KEYSTORE not in repr(signer)
    assert A1_ADDRESS in repr(signer)


# --- scheme labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "scheme"),
    [
        ("ed25519", Scheme.ED25519),
        ("secp256k1", Scheme.SECP256K1),
        ("secp256r1", Scheme.SECP256R1),
        ("ED25519", Scheme.ED25519),
        ("Secp256R1", Scheme.SECP256R1),
    ],
)
def test_scheme_from_label(label: str, scheme: Scheme) -> None:
    assert Scheme.from_label(label) is scheme
    assert scheme.label == label.lower()


@pytest.mark.parametrize("label", ["", "ed448", "secp256k2", "p256", " ed25519"])
def test_scheme_from_bad_label(label: str) -> None:
    with pytest.raises(ValueError, match="unknown signature scheme"):
        Scheme.from_label(label)


def test_scheme_flags() -> None:
    assert [int(s) for s in Scheme] == [0, 1, 2]


# --- properties and differential checks -------------------------------------------------------------

messages = st.binary(min_size=32, max_size=32)


@given(messages)
def test_ecdsa_deterministic_and_low_s(message: bytes) -> None:
    for scheme in ECDSA:
        signer = SuiSigner(scheme, SECRETS[scheme])
        sig = signer.sign(message)
        assert signer.sign(message) == sig
        assert SuiSigner(scheme, SECRETS[scheme]).sign(message).to_b64() == sig.to_b64()
        s = int.from_bytes(sig.signature[32:], "big")
        assert 0 < s <= CURVE_ORDER[scheme] // 2
        verify(sig, message)


@given(messages)
def test_all_schemes_round_trip(message: bytes) -> None:
    for scheme in SCHEMES:
        signer = SuiSigner(scheme, SECRETS[scheme])
        sig = signer.sign(message)
        assert verify_b64(sig.to_b64(), message, expected_address=signer.address) == sig


@given(messages)
def test_secp256k1_matches_libsecp256k1(message: bytes) -> None:
    # libsecp256k1 signs RFC 6979 nonces and normalises to low-s, so the bytes must agree exactly.
    secret = SECRETS[Scheme.SECP256K1]
    sig = SuiSigner(Scheme.SECP256K1, secret).sign(message)
    compact = coincurve.PrivateKey(secret).sign_recoverable(message, hasher=lambda m: hashlib.sha256(m).digest())
    assert sig.signature == compact[:64]
    assert coincurve.PublicKey(sig.public_key).format(compressed=True) == sig.public_key


@given(messages)
def test_secp256r1_verifies_with_pycryptodome(message: bytes) -> None:
    sig = SuiSigner(Scheme.SECP256R1, SECRETS[Scheme.SECP256R1]).sign(message)
    key = ECC.import_key(sig.public_key, curve_name="P-256")
    DSS.new(key, "fips-186-3").verify(SHA256.new(message), sig.signature)


@given(messages)
def test_ed25519_verifies_with_libsodium(message: bytes) -> None:
    sig = SuiSigner(Scheme.ED25519, SECRETS[Scheme.ED25519]).sign(message)
    nacl.signing.VerifyKey(sig.public_key).verify(message, sig.signature)
    assert nacl.signing.SigningKey(SECRETS[Scheme.ED25519]).sign(message).signature == sig.signature
