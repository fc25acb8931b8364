"""Sui signatures as the node and proxy use them: ``flag || signature || public_key``, base64.

What is signed is the 32 raw bytes of a BLAKE2b-256 hash (Sui's ``sign_hashed``): no intent prefix,
no BCS. Ed25519 signs those bytes directly. The two ECDSA schemes sign SHA-256 of them with an
RFC 6979 nonce and normalise to low-s, and their verifiers refuse high-s, as fastcrypto does. A
verifier that forgets the low-s rule accepts two encodings of one signature, which breaks any
de-duplication keyed on signature bytes.

A Sui address is ``0x`` + hex(BLAKE2b-256(flag || public_key)).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .b64 import b64decode, b64encode
from .errors import (
    HighS,
    InvalidPublicKey,
    InvalidSecretKey,
    LengthError,
    SignatureLength,
    SignatureVerificationFailed,
    SignerMismatch,
    UnknownSignatureScheme,
)
from .primitives import blake2b_256


class Scheme(IntEnum):
    """Sui signature scheme flags accepted by the node's verifier."""

    ED25519 = 0x00
    SECP256K1 = 0x01
    SECP256R1 = 0x02

    @property
    def label(self) -> str:
        return {0: "ed25519", 1: "secp256k1", 2: "secp256r1"}[self.value]

    @classmethod
    def from_label(cls, label: str) -> Scheme:
        for scheme in cls:
            if scheme.label == label.lower():
                return scheme
        raise ValueError(f"unknown signature scheme {label!r}; expected one of ed25519, secp256k1, secp256r1")


SIGNATURE_LEN = 64
PUBLIC_KEY_LEN = {Scheme.ED25519: 32, Scheme.SECP256K1: 33, Scheme.SECP256R1: 33}
SERIALIZED_LEN = {scheme: 1 + SIGNATURE_LEN + n for scheme, n in PUBLIC_KEY_LEN.items()}
MESSAGE_LEN = 32

_CURVES: dict[Scheme, ec.EllipticCurve] = {Scheme.SECP256K1: ec.SECP256K1(), Scheme.SECP256R1: ec.SECP256R1()}
# Group orders, needed for the low-s rule and for scalar range checks.
CURVE_ORDER = {
    Scheme.SECP256K1: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    Scheme.SECP256R1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}


def is_sui_address(text: str) -> bool:
    """``0x`` and 64 hex digits (either case): the shape of a Sui address."""
    digits = text[2:]
    return len(text) == 66 and text[:2] == "0x" and all(c in "0123456789abcdefABCDEF" for c in digits)


def sui_address(scheme: Scheme, public_key: bytes) -> str:
    """``0x`` + lowercase hex of BLAKE2b-256(flag || public_key)."""
    return "0x" + blake2b_256(bytes([scheme]) + public_key).hex()


@dataclass(frozen=True)
class SuiSignature:
    """A parsed Sui serialized signature."""

    scheme: Scheme
    signature: bytes
    public_key: bytes

    def to_bytes(self) -> bytes:
        return bytes([self.scheme]) + self.signature + self.public_key

    def to_b64(self) -> str:
        return b64encode(self.to_bytes())

    @property
    def address(self) -> str:
        return sui_address(self.scheme, self.public_key)


def parse_signature_bytes(raw: bytes, *, field: str | None = "signature") -> SuiSignature:
    """Split ``flag || sig || pk`` and check the flag and the exact length for that scheme."""
    if not raw:
        raise SignatureLength("is empty; expected flag || signature || public key", field=field)
    try:
        scheme = Scheme(raw[0])
    except ValueError:
        raise UnknownSignatureScheme(
            f"has scheme flag 0x{raw[0]:02x}; only 0x00 (Ed25519), 0x01 (Secp256k1) and 0x02 (Secp256r1) are accepted",
            field=field,
        ) from None
    if len(raw) != SERIALIZED_LEN[scheme]:
        raise SignatureLength(
            f"is {len(raw)} bytes; a {scheme.label} Sui signature is exactly {SERIALIZED_LEN[scheme]}", field=field
        )
    return SuiSignature(scheme, raw[1 : 1 + SIGNATURE_LEN], raw[1 + SIGNATURE_LEN :])


def parse_signature(text: object, *, field: str | None = "signature") -> SuiSignature:
    """Parse a base64 Sui signature string (strict base64)."""
    return parse_signature_bytes(b64decode(text, field=field), field=field)


def verify(sig: SuiSignature, message: bytes, *, field: str | None = "signature", any_length: bool = False) -> None:
    """Verify ``sig`` over the 32-byte ``message`` (a hash) with the embedded public key.

    Raises :class:`HighS` for a malleable ECDSA signature before any curve arithmetic, and
    :class:`SignatureVerificationFailed` when the signature does not verify. ``any_length`` lifts the
    32-byte rule, to reproduce the upstream proxy and node, which sign and verify a
    ``plaintext_body_hash`` of any length (W8); a conformant party never sets it.
    """
    if len(message) != MESSAGE_LEN and not any_length:
        raise LengthError(f"is {len(message)} bytes; Sui hash signatures cover exactly 32 bytes", field="message")
    if sig.scheme is Scheme.ED25519:
        try:
            Ed25519PublicKey.from_public_bytes(sig.public_key).verify(sig.signature, message)
        except InvalidSignature:
            raise SignatureVerificationFailed("Ed25519 signature does not verify over the hash", field=field) from None
        except ValueError:  # pragma: no cover - length is already checked by parse
            raise InvalidPublicKey("embedded Ed25519 public key is malformed", field=field) from None
        return
    order = CURVE_ORDER[sig.scheme]
    r = int.from_bytes(sig.signature[:32], "big")
    s = int.from_bytes(sig.signature[32:], "big")
    if not (0 < r < order and 0 < s < order):
        raise SignatureVerificationFailed(f"{sig.scheme.label} r or s is outside [1, n-1]", field=field)
    if s > order // 2:
        raise HighS(
            f"{sig.scheme.label} signature has high s (s > n/2); only low-s signatures are accepted", field=field
        )
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[sig.scheme], sig.public_key)
    except ValueError:
        raise InvalidPublicKey(
            f"embedded {sig.scheme.label} public key is not a valid compressed point", field=field
        ) from None
    try:
        public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureVerificationFailed(
            f"{sig.scheme.label} signature does not verify over the hash", field=field
        ) from None


def verify_b64(
    text: object, message: bytes, *, expected_address: str | None = None, field: str | None = "signature"
) -> SuiSignature:
    """Parse, verify, and (optionally) pin the signer. Returns the parsed signature."""
    sig = parse_signature(text, field=field)
    verify(sig, message, field=field)
    if expected_address is not None and sig.address != expected_address.lower():
        raise SignerMismatch("was made by a different Sui address than the expected node address", field=field)
    return sig


class SuiSigner:
    """A Sui key pair for one scheme, built from a 32-byte secret (Ed25519 seed or ECDSA scalar)."""

    def __init__(self, scheme: Scheme, secret: bytes) -> None:
        if len(secret) != 32:
            raise LengthError(f"is {len(secret)} bytes, expected a 32-byte secret", field="secret")
        self.scheme = scheme
        self._secret = bytes(secret)
        if scheme is Scheme.ED25519:
            self._ed = Ed25519PrivateKey.from_private_bytes(secret)
            self.public_key = self._ed.public_key().public_bytes_raw()
        else:
            scalar = int.from_bytes(secret, "big")
            if not 0 < scalar < CURVE_ORDER[scheme]:
                raise InvalidSecretKey(
                    f"is not a valid {scheme.label} private scalar (must be in [1, n-1])", field="secret"
                )
            self._ec = ec.derive_private_key(scalar, _CURVES[scheme])
            self.public_key = self._ec.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
        self.address = sui_address(scheme, self.public_key)

    @classmethod
    def from_keystore(cls, entry: str) -> SuiSigner:
        """Load a Sui keystore entry: base64 of ``flag || 32-byte secret``."""
        raw = b64decode(entry, field="keystore_entry")
        if len(raw) != 33:
            raise LengthError(
                f"decodes to {len(raw)} bytes, expected flag || 32-byte secret (33)", field="keystore_entry"
            )
        try:
            scheme = Scheme(raw[0])
        except ValueError:
            raise UnknownSignatureScheme(f"has scheme flag 0x{raw[0]:02x}", field="keystore_entry") from None
        return cls(scheme, raw[1:])

    def to_keystore(self) -> str:
        """The Sui keystore entry for this key. It is a secret: never log it."""
        return b64encode(bytes([self.scheme]) + self._secret)

    def sign(self, message: bytes, *, any_length: bool = False) -> SuiSignature:
        """Sign the 32 raw bytes of a hash the way Sui's ``sign_hashed`` does.

        ``any_length`` signs a message of another length, as the upstream proxy does (W8): the suite
        needs that to ask a node whether it refuses a 33-byte ``plaintext_body_hash`` that is signed.
        """
        if len(message) != MESSAGE_LEN and not any_length:
            raise LengthError(f"is {len(message)} bytes; Sui hash signatures cover exactly 32 bytes", field="message")
        if self.scheme is Scheme.ED25519:
            return SuiSignature(self.scheme, self._ed.sign(message), self.public_key)
        der = self._ec.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        order = CURVE_ORDER[self.scheme]
        if s > order // 2:
            s = order - s
        return SuiSignature(self.scheme, r.to_bytes(32, "big") + s.to_bytes(32, "big"), self.public_key)

    def __repr__(self) -> str:  # never show the secret
        return f"SuiSigner({self.scheme.label}, address={self.address})"


def to_high_s(sig: SuiSignature) -> SuiSignature:
    """The malleable twin of a low-s ECDSA signature (s -> n - s). For vectors and mock faults."""
    if sig.scheme is Scheme.ED25519:
        raise ValueError("high-s only exists for the ECDSA schemes")
    order = CURVE_ORDER[sig.scheme]
    s = int.from_bytes(sig.signature[32:], "big")
    return SuiSignature(sig.scheme, sig.signature[:32] + (order - s).to_bytes(32, "big"), sig.public_key)


def ecdsa_scalars(sig: SuiSignature) -> tuple[int, int]:
    """``(r, s)`` of an ECDSA Sui signature, each read as 32 big-endian bytes (Table 7.1), as a verifier
    reads them before the R7.5 range and low-s rules."""
    if sig.scheme is Scheme.ED25519:
        raise ValueError("r and s only exist for the ECDSA schemes")
    return int.from_bytes(sig.signature[:32], "big"), int.from_bytes(sig.signature[32:], "big")


def with_scalars(sig: SuiSignature, r: int, s: int) -> SuiSignature:
    """``sig`` with ``r`` and ``s`` replaced, any values that fit 32 bytes (0 and n included): the
    out-of-range signatures a node must refuse under R7.5, which no signer produces."""
    if sig.scheme is Scheme.ED25519:
        raise ValueError("r and s only exist for the ECDSA schemes")
    if not (0 <= r < 2**256 and 0 <= s < 2**256):
        raise ValueError("r and s are 32-byte values")
    return SuiSignature(sig.scheme, r.to_bytes(32, "big") + s.to_bytes(32, "big"), sig.public_key)


# The curves' fields and coefficients (SEC 2 §2.4.1 and §2.4.2), y^2 = x^3 + a*x + b mod p: only to
# build a compressed key that names no point, which the node must refuse (Table 7.1, R7.11).
_FIELD = {
    Scheme.SECP256K1: (2**256 - 2**32 - 977, 0, 7),
    Scheme.SECP256R1: (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        2**256 - 2**224 + 2**192 + 2**96 - 1 - 3,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
}


def off_curve_key(scheme: Scheme) -> bytes:
    """A 33-byte SEC1 compressed key (``0x02 || x``) that is not a point of the curve: the smallest x
    for which x^3 + ax + b has no square root mod p (Euler's criterion), so no y exists. Its shape is
    right and only the point is wrong, so a verifier that refuses it has checked the curve."""
    if scheme is Scheme.ED25519:
        raise ValueError("compressed curve points only exist for the ECDSA schemes")
    p, a, b = _FIELD[scheme]
    x = 0
    while pow((x**3 + a * x + b) % p, (p - 1) // 2, p) in (0, 1):
        x += 1
    return b"\x02" + x.to_bytes(32, "big")
