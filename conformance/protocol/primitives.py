"""The protocol's primitives, each pinned to the exact parameters the node uses.

- X25519 (RFC 7748) with a low-order-point detector. The upstream node never checks contributory
  behaviour, so a client key of 32 zero bytes yields an all-zero shared secret that any observer
  knows. We detect it rather than rely on the backend raising, so that the *reason* is named.
- HKDF-SHA256 with salt = the request's 16-byte salt, empty info, 32-byte output.
- AES-256-GCM with a 12-byte nonce, the 16-byte tag appended, and no AAD.
- BLAKE2b with digest length 32. This is a different function from BLAKE2b-512 truncated to 32
  bytes (the digest length is a parameter of the hash), which is a classic porting mistake.

Everything here is pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AeadError, LengthError, LowOrderPoint, ZeroSharedSecret

X25519_KEY_LEN = 32
SALT_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
KEY_LEN = 32
HASH_LEN = 32

_P = 2**255 - 19

# u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and their non-canonical
# encodings (u + p). RFC 7748 implementations mask bit 255, so each also has a twin with the top bit
# set; :func:`is_low_order` masks before comparing. Any of these makes the clamped scalar product the
# identity, so the shared secret is 32 zero bytes whatever the private key.
LOW_ORDER_U: tuple[int, ...] = (
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P - 1,
    _P,
    _P + 1,
)
_LOW_ORDER_ENCODINGS = frozenset(u.to_bytes(32, "little") for u in LOW_ORDER_U)


def low_order_encodings() -> list[bytes]:
    """All 14 32-byte encodings of low-order X25519 public keys (7 values, top bit clear and set)."""
    out: list[bytes] = []
    for u in LOW_ORDER_U:
        enc = bytearray(u.to_bytes(32, "little"))
        out.append(bytes(enc))
        enc[31] |= 0x80
        out.append(bytes(enc))
    return out


def canonical_public_key(public_key: bytes) -> bytes:
    """The canonical encoding of an X25519 u-coordinate: bit 255 cleared and the value reduced mod p.

    RFC 7748 ignores bit 255 and accepts u >= p, so several byte strings name one key; anything that
    identifies a key (a replay cache, a nonce audit) must use this form or be fooled by a re-encoding.
    """
    _require_len(public_key, X25519_KEY_LEN, "public_key")
    u = int.from_bytes(public_key[:31] + bytes([public_key[31] & 0x7F]), "little") % _P
    return u.to_bytes(32, "little")


def is_low_order(public_key: bytes) -> bool:
    """True when ``public_key`` is (an encoding of) a low-order point."""
    if len(public_key) != X25519_KEY_LEN:
        return False
    masked = public_key[:31] + bytes([public_key[31] & 0x7F])
    return masked in _LOW_ORDER_ENCODINGS


def _require_len(value: bytes, length: int, field: str) -> None:
    if len(value) != length:
        raise LengthError(f"is {len(value)} bytes, expected exactly {length}", field=field)


def x25519_public_key(private_key: bytes) -> bytes:
    """The X25519 public key (u-coordinate) for a 32-byte private key."""
    _require_len(private_key, X25519_KEY_LEN, "private_key")
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def x25519_shared_secret(private_key: bytes, peer_public_key: bytes, *, allow_low_order: bool = False) -> bytes:
    """X25519(private_key, peer_public_key).

    With ``allow_low_order=False`` (the default, and what a conformant party does) a low-order peer
    key raises :class:`LowOrderPoint`. With ``allow_low_order=True`` the function reproduces what
    the upstream node computes: 32 zero bytes. That value is exact, not a guess: the clamped scalar
    is a multiple of 8, so it maps every point of order dividing 8 to the identity (u = 0).
    """
    return x25519_agree(private_key, peer_public_key, allow_low_order=allow_low_order)[1]


def x25519_agree(private_key: bytes, peer_public_key: bytes, *, allow_low_order: bool = False) -> tuple[bytes, bytes]:
    """(own public key, shared secret) from one private-key object.

    Loading an X25519 private key computes its public key, a full scalar multiplication; a party that
    needs both values gets them from one load (two multiplications, not three).
    """
    _require_len(private_key, X25519_KEY_LEN, "private_key")
    _require_len(peer_public_key, X25519_KEY_LEN, "peer_public_key")
    priv = X25519PrivateKey.from_private_bytes(private_key)
    public = priv.public_key().public_bytes_raw()
    if is_low_order(peer_public_key):
        if allow_low_order:
            return public, bytes(32)
        raise LowOrderPoint(
            "is a low-order X25519 point; the shared secret would be all zeros", field="peer_public_key"
        )
    try:
        shared = priv.exchange(X25519PublicKey.from_public_bytes(peer_public_key))
    except ValueError as exc:  # pragma: no cover - every all-zero output is caught by is_low_order
        raise ZeroSharedSecret("X25519 produced an all-zero shared secret", field="peer_public_key") from exc
    return public, shared


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes = b"", length: int = KEY_LEN) -> bytes:
    """HKDF-SHA256 (RFC 5869). The protocol uses salt = request salt, info = b"", length = 32."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def derive_key(shared_secret: bytes, salt: bytes) -> bytes:
    """The protocol KDF: the one AES-256 key for a request, its response and every stream chunk."""
    _require_len(shared_secret, X25519_KEY_LEN, "shared_secret")
    _require_len(salt, SALT_LEN, "salt")
    return hkdf_sha256(shared_secret, salt, b"", KEY_LEN)


class AeadKey:
    """An AES-256-GCM key with its cipher context built once.

    One key serves a request, its response and every chunk of a stream, so the context is built once
    per exchange rather than per message (building it costs about as much as sealing 4 KiB). The
    context lives exactly as long as the exchange that owns it; there is no global key cache.
    """

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        _require_len(key, KEY_LEN, "key")
        self._cipher = AESGCM(key)

    def seal(self, nonce: bytes, plaintext: bytes) -> bytes:
        """Encrypt with empty AAD; returns ``ciphertext || tag``."""
        _require_len(nonce, NONCE_LEN, "nonce")
        return self._cipher.encrypt(nonce, plaintext, None)

    def open(self, nonce: bytes, sealed: bytes, *, field: str = "ciphertext") -> bytes:
        """Decrypt ``ciphertext || tag`` with empty AAD, or raise :class:`AeadError`."""
        _require_len(nonce, NONCE_LEN, "nonce")
        if len(sealed) < TAG_LEN:
            raise LengthError(f"is {len(sealed)} bytes, shorter than the {TAG_LEN}-byte GCM tag", field=field)
        try:
            return self._cipher.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise AeadError(
                "AES-256-GCM authentication failed (wrong key or nonce, or a tampered ciphertext or tag)", field=field
            ) from None


def aead_seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM encrypt with empty AAD; returns ``ciphertext || tag``."""
    return AeadKey(key).seal(nonce, plaintext)


def aead_open(key: bytes, nonce: bytes, sealed: bytes) -> bytes:
    """AES-256-GCM decrypt ``ciphertext || tag`` with empty AAD, or raise :class:`AeadError`."""
    return AeadKey(key).open(nonce, sealed)


def blake2b_256(data: bytes) -> bytes:
    """BLAKE2b with a 32-byte digest length (not BLAKE2b-512 truncated)."""
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()
