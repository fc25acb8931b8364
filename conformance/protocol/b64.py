"""Strict base64: RFC 4648 standard alphabet, canonical ``=`` padding, zero trailing bits.

Why strict: the upstream node decodes with Rust ``base64::STANDARD``, which requires canonical padding
and rejects non-zero trailing bits. Python's ``base64.b64decode`` is lenient (it silently drops
characters outside the alphabet unless ``validate=True``, and even then accepts non-canonical trailing
bits), so a client that is "fine" against a Python server can be refused by the real node. Every
refusal names what is wrong, because "not base64" tells a client author nothing.
"""

from __future__ import annotations

import binascii

import pybase64

from .errors import (
    Base64BadPadding,
    Base64InvalidCharacter,
    Base64InvalidLength,
    Base64MissingPadding,
    Base64NonCanonicalTrailingBits,
    Base64NotString,
    Base64UrlSafeAlphabet,
    Base64Whitespace,
    LengthError,
)

_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_WHITESPACE = frozenset(" \t\r\n\v\f")


def b64encode(data: bytes) -> str:
    """Encode ``data`` as canonical standard base64 with padding (pybase64: SIMD, same bytes as stdlib)."""
    return pybase64.b64encode_as_string(data)


def b64decode(text: object, *, field: str | None = None) -> bytes:
    """Decode canonical standard base64, or raise the specific :class:`Base64Error` subclass.

    A string is canonical exactly when re-encoding its decoded bytes reproduces it. Strict-mode
    decoding already refuses every character outside the alphabet and every misplaced or missing
    ``=``, so the only freedom left is in the unused bits of the final quantum: re-encoding just that
    quantum decides canonicity in O(1) instead of re-encoding a megabyte. Only a refusal is diagnosed.
    """
    if not isinstance(text, str):
        raise Base64NotString(f"expected a base64 string, got {_json_type(text)}", field=field)
    try:
        # pybase64's validating decoder accepts exactly what binascii's strict mode accepts (property
        # tests compare them), at about thirty times the speed on a megabyte; below a hundred
        # characters (a nonce, a hash, a key, a signature) binascii answers sooner.
        if len(text) <= _SHORT:
            raw = binascii.a2b_base64(text, strict_mode=True)
        else:
            raw = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is not None and _canonical_tail(raw, text):
        return raw
    _diagnose(text, field)
    raise AssertionError("unreachable: _diagnose always raises")  # pragma: no cover


_SHORT = 96


def _canonical_tail(raw: bytes, text: str) -> bool:
    """Whether the final quantum of ``text`` (already decoded strictly to ``raw``) is canonical.

    Re-encoding that quantum's bytes would give the same data characters except for the bits the
    last one leaves unused, and the same padding: so it is canonical exactly when those bits are
    zero, which a lookup of that one character says.
    """
    if not text:
        return not raw
    if len(text) % 4:
        return False
    tail = len(raw) - (len(text) // 4 - 1) * 3  # bytes encoded by the final 4-character quantum
    if tail == 3:
        return text[-1] != "="
    if tail == 2:
        return text[-1] == "=" != text[-2] and text[-2] in _ZERO_LOW_2_BITS
    return tail == 1 and text[-2:] == "==" and text[-3] in _ZERO_LOW_4_BITS


# The characters whose value has its low 2 (or 4) bits zero: the only ones that can end the data of a
# quantum encoding 2 bytes (18 bits for 16) or 1 byte (12 bits for 8).
_ZERO_LOW_2_BITS = frozenset("AEIMQUYcgkosw048")
_ZERO_LOW_4_BITS = frozenset("AQgw")


def b64decode_fixed(text: object, length: int, *, field: str | None = None) -> bytes:
    """Decode strict base64 and require exactly ``length`` bytes."""
    raw = b64decode(text, field=field)
    if len(raw) != length:
        raise LengthError(f"decodes to {len(raw)} bytes, expected exactly {length}", field=field)
    return raw


def _diagnose(text: str, field: str | None) -> None:
    """Raise the most specific error for a string that failed the canonical round trip."""
    if any(c in _WHITESPACE for c in text):
        raise Base64Whitespace(
            "contains whitespace; base64 fields must not be wrapped or padded with spaces", field=field
        )
    if any(c in "-_" for c in text):
        raise Base64UrlSafeAlphabet(
            "uses the URL-safe alphabet ('-' or '_'); the standard alphabet ('+', '/') is required", field=field
        )
    bad = sorted({c for c in text if c not in _ALPHABET and c != "="})
    if bad:
        raise Base64InvalidCharacter(
            f"contains {len(bad)} character(s) outside the base64 alphabet (first: U+{ord(bad[0]):04X})", field=field
        )
    body = text.rstrip("=")
    pad = len(text) - len(body)
    if "=" in body:
        raise Base64BadPadding("has '=' before the end of the string", field=field)
    if len(body) % 4 == 1:
        raise Base64InvalidLength(f"has {len(body)} data characters, which no byte string encodes to", field=field)
    expected_pad = (4 - len(body) % 4) % 4
    if pad == 0 and expected_pad:
        raise Base64MissingPadding(f"is missing {expected_pad} '=' padding character(s)", field=field)
    if pad != expected_pad:
        raise Base64BadPadding(f"has {pad} '=' padding character(s), expected {expected_pad}", field=field)
    raise Base64NonCanonicalTrailingBits(
        "has non-zero trailing bits in its last character (a non-canonical encoding)", field=field
    )


def _json_type(value: object) -> str:
    """Name a Python value by the JSON type it came from, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return type(value).__name__
