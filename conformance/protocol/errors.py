"""Every way the protocol core can refuse input, as a named exception.

Why named classes instead of ``ValueError("...")``: the suite turns each refusal into a check verdict
or an HTTP error body, so callers need a stable machine-readable ``code`` and the JSON ``field`` that
caused it, not a sentence to pattern-match. Messages never contain the offending value itself (it may
be a secret or a plaintext hash); they carry the field name, the reason, and lengths at most.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Base class: a value was refused by the protocol core.

    ``code`` is a stable SCREAMING_SNAKE identifier, ``field`` the dotted JSON path of the value that
    was refused (or ``None`` when no single field is at fault), and ``reason`` a human sentence.
    """

    code = "PROTOCOL_ERROR"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)

    def with_field(self, field: str) -> ProtocolError:
        """Return a copy of this error attributed to ``field`` (used when a helper did not know it)."""
        clone = type(self)(self.reason, field=field)
        return clone


# --- base64 -----------------------------------------------------------------------------------------


class Base64Error(ProtocolError):
    """The value is not canonical RFC 4648 standard base64."""

    code = "BASE64_INVALID"


class Base64NotString(Base64Error):
    code = "BASE64_NOT_STRING"


class Base64UrlSafeAlphabet(Base64Error):
    code = "BASE64_URLSAFE_ALPHABET"


class Base64Whitespace(Base64Error):
    code = "BASE64_WHITESPACE"


class Base64MissingPadding(Base64Error):
    code = "BASE64_MISSING_PADDING"


class Base64BadPadding(Base64Error):
    code = "BASE64_BAD_PADDING"


class Base64InvalidCharacter(Base64Error):
    code = "BASE64_INVALID_CHARACTER"


class Base64NonCanonicalTrailingBits(Base64Error):
    code = "BASE64_NONCANONICAL_TRAILING_BITS"


# --- lengths and keys -------------------------------------------------------------------------------


class LengthError(ProtocolError):
    """A decoded value does not have the exact length the protocol fixes."""

    code = "WRONG_LENGTH"


class LowOrderPoint(ProtocolError):
    """An X25519 public key is a low-order point: the shared secret would be all zeros."""

    code = "LOW_ORDER_POINT"


class ZeroSharedSecret(ProtocolError):
    """X25519 produced an all-zero shared secret (non-contributory key agreement)."""

    code = "ZERO_SHARED_SECRET"


class KeyMismatch(ProtocolError):
    """``node_dh_public_key`` is not the key this node currently holds."""

    code = "NODE_KEY_MISMATCH"


# --- AEAD and hashes --------------------------------------------------------------------------------


class AeadError(ProtocolError):
    """AES-256-GCM refused the ciphertext: the tag did not authenticate it."""

    code = "AEAD_AUTHENTICATION_FAILED"


class HashMismatch(ProtocolError):
    """A BLAKE2b-256 hash does not match the bytes it claims to cover."""

    code = "HASH_MISMATCH"


# --- signatures -------------------------------------------------------------------------------------


class SignatureError(ProtocolError):
    """A Sui signature could not be parsed or did not verify."""

    code = "SIGNATURE_INVALID"


class UnknownSignatureScheme(SignatureError):
    code = "SIGNATURE_UNKNOWN_SCHEME"


class SignatureLength(SignatureError):
    code = "SIGNATURE_WRONG_LENGTH"


class InvalidPublicKey(SignatureError):
    code = "SIGNATURE_INVALID_PUBLIC_KEY"


class InvalidSecretKey(SignatureError):
    """A signing secret is not a valid private key for its scheme."""

    code = "SIGNATURE_INVALID_SECRET_KEY"


class HighS(SignatureError):
    """An ECDSA signature has s > n/2; Sui verifiers reject it as malleable."""

    code = "SIGNATURE_HIGH_S"


class SignatureVerificationFailed(SignatureError):
    code = "SIGNATURE_VERIFICATION_FAILED"


class SignerMismatch(SignatureError):
    """The signature is valid but was made by a different Sui address than expected."""

    code = "SIGNATURE_WRONG_SIGNER"


# --- message models ---------------------------------------------------------------------------------


class MessageError(ProtocolError):
    """A JSON message does not have the shape the protocol defines."""

    code = "MESSAGE_INVALID"


class InvalidJson(MessageError):
    code = "INVALID_JSON"


class MissingField(MessageError):
    code = "MISSING_FIELD"


class WrongType(MessageError):
    code = "WRONG_TYPE"


class OutOfRange(MessageError):
    code = "OUT_OF_RANGE"


class UsageMismatch(MessageError):
    """The clear ``usage`` copy on an envelope differs from the encrypted one."""

    code = "USAGE_MISMATCH"


class Base64InvalidLength(Base64Error):
    code = "BASE64_INVALID_LENGTH"


class NonceReuse(ProtocolError):
    """A nonce was used twice under one key (for example a response echoing the request nonce)."""

    code = "NONCE_REUSE"


class StreamOrderError(ProtocolError):
    """A stream's chunks are duplicated, reordered or inconsistent in a way a client can see (R13.14)."""

    code = "STREAM_ORDER"
