"""Strict base64: every refusal has its own class, code and field, and never echoes the input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    Base64BadPadding,
    Base64Error,
    Base64InvalidCharacter,
    Base64InvalidLength,
    Base64MissingPadding,
    Base64NonCanonicalTrailingBits,
    Base64NotString,
    Base64UrlSafeAlphabet,
    Base64Whitespace,
    LengthError,
    ProtocolError,
    b64decode,
    b64decode_fixed,
    b64encode,
)

FIELD = "plaintext_body_hash"


def _refused(text: object, cls: type[ProtocolError], code: str, *, field: str | None = FIELD) -> ProtocolError:
    """Decode ``text`` and check the exact class, code and field of the refusal; return it."""
    with pytest.raises(cls) as info:
        b64decode(text, field=field)
    exc = info.value
    assert type(exc) is cls
    assert exc.code == code
    assert exc.field == field
    assert isinstance(exc, Base64Error)
    if isinstance(text, str) and len(text.strip()) >= 4:  # shorter strings occur in any sentence
        assert text not in str(exc)
        assert text not in exc.reason
    return exc


# --- accepted values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("", b""),
        ("AA==", b"\x00"),
        ("AAA=", b"\x00\x00"),
        ("AAAA", b"\x00\x00\x00"),
        ("+/+/", b"\xfb\xff\xbf"),
        ("SGVsbG8=", b"Hello"),
        ("SGVsbG8h", b"Hello!"),
        ("SGk=", b"Hi"),
    ],
)
def test_canonical_values_decode(text: str, raw: bytes) -> None:
    assert b64decode(text) == raw
    assert b64decode(text, field="salt") == raw
    assert b64encode(raw) == text


def test_encode_has_padding_and_no_newline() -> None:
    assert b64encode(b"\xff") == "/w=="
    assert b64encode(b"\xff\xff") == "//8="
    assert b64encode(bytes(60)).count("\n") == 0


# --- URL-safe alphabet ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["-_-_", "AB-A", "AB_A", "-w==", "__8=", "SGVsbG8-"])
def test_urlsafe_alphabet(text: str) -> None:
    exc = _refused(text, Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET")
    assert "URL-safe" in exc.reason


def test_urlsafe_alphabet_field_is_the_one_passed() -> None:
    _refused("__8=", Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET", field="salt")
    _refused("__8=", Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET", field=None)


# --- padding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "missing"), [("AA", 2), ("AAA", 1), ("SGVsbG8", 1), ("SGVsbA", 2)])
def test_missing_padding(text: str, missing: int) -> None:
    exc = _refused(text, Base64MissingPadding, "BASE64_MISSING_PADDING")
    assert f"missing {missing}" in exc.reason


@pytest.mark.parametrize("text", ["AA=A", "A=AA", "=AAA", "AA==AAAA", "AA=AA==="])
def test_bad_padding_position(text: str) -> None:
    exc = _refused(text, Base64BadPadding, "BASE64_BAD_PADDING")
    assert "before the end" in exc.reason


@pytest.mark.parametrize(
    ("text", "pad", "expected"),
    [
        ("AA===", 3, 2),
        ("AAA==", 2, 1),
        ("AAAA=", 1, 0),
        ("AAAA==", 2, 0),
        ("AAAA====", 4, 0),
        ("====", 4, 0),
        ("=", 1, 0),
    ],
)
def test_too_much_padding(text: str, pad: int, expected: int) -> None:
    exc = _refused(text, Base64BadPadding, "BASE64_BAD_PADDING")
    assert f"has {pad} '=' padding character(s), expected {expected}" in exc.reason


# --- whitespace -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [" AAAA", "AAAA ", "AA AA", "\tAAAA", "AA\tAA", "AAAA\n", "AA\nAA", "AAAA\r\n", "AA\rAA", "AA\vAA", "AA\fAA"],
)
def test_whitespace(text: str) -> None:
    _refused(text, Base64Whitespace, "BASE64_WHITESPACE")


def test_whitespace_is_reported_before_other_faults() -> None:
    # A wrapped URL-safe string: the whitespace is the first thing a client author must fix.
    _refused("__8=\n", Base64Whitespace, "BASE64_WHITESPACE")


# --- trailing bits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["AB==", "AP==", "/x==", "QR=="])
def test_nonzero_trailing_bits_two_padding(text: str) -> None:
    _refused(text, Base64NonCanonicalTrailingBits, "BASE64_NONCANONICAL_TRAILING_BITS")


@pytest.mark.parametrize("text", ["AAB=", "AAD=", "//9=", "SGVsbG9="])
def test_nonzero_trailing_bits_one_padding(text: str) -> None:
    _refused(text, Base64NonCanonicalTrailingBits, "BASE64_NONCANONICAL_TRAILING_BITS")


def test_python_lenient_decoder_accepts_what_we_refuse() -> None:
    # The reason this module exists: the stdlib accepts non-canonical trailing bits.
    assert base64.b64decode("AB==", validate=True) == b"\x00"
    _refused("AB==", Base64NonCanonicalTrailingBits, "BASE64_NONCANONICAL_TRAILING_BITS")


# --- length and characters --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["A", "A=", "A==", "A===", "AAAAA", "AAAAA===", "AAAAAAAAA"])
def test_invalid_length(text: str) -> None:
    exc = _refused(text, Base64InvalidLength, "BASE64_INVALID_LENGTH")
    assert "data characters" in exc.reason


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("AA*A", "U+002A"),
        ("AAA.", "U+002E"),
        ("AA\x00A", "U+0000"),
        ("AAA\u00e9", "U+00E9"),
        ("\u20acAAA", "U+20AC"),
        ("AAA\U0001f600", "U+1F600"),
        ("AA!=", "U+0021"),
        ("A\u00a0AA", "U+00A0"),
    ],
)
def test_invalid_characters(text: str, first: str) -> None:
    exc = _refused(text, Base64InvalidCharacter, "BASE64_INVALID_CHARACTER")
    assert f"(first: {first})" in exc.reason


def test_invalid_characters_counts_distinct() -> None:
    exc = _refused("A*.*", Base64InvalidCharacter, "BASE64_INVALID_CHARACTER")
    assert "contains 2 character(s)" in exc.reason


# --- non-string input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "json_name"),
    [
        (None, "null"),
        (True, "boolean"),
        (0, "number"),
        (12345, "number"),
        (1.5, "number"),
        (b"AAAA", "bytes"),
        (bytearray(b"AAAA"), "bytes"),
        (["AAAA"], "array"),
        (("AAAA",), "array"),
        ({"a": "AAAA"}, "object"),
        (object(), "object"),
        (memoryview(b"AAAA"), "memoryview"),
    ],
)
def test_non_string_input(value: object, json_name: str) -> None:
    exc = _refused(value, Base64NotString, "BASE64_NOT_STRING")
    assert exc.reason == f"expected a base64 string, got {json_name}"


# --- error formatting -------------------------------------------------------------------------------


def test_message_prefixes_field_and_reason() -> None:
    exc = _refused("AA", Base64MissingPadding, "BASE64_MISSING_PADDING", field="salt")
    assert str(exc) == f"salt: {exc.reason}"
    exc = _refused("AA", Base64MissingPadding, "BASE64_MISSING_PADDING", field=None)
    assert str(exc) == exc.reason


def test_secret_input_is_never_echoed() -> None:
    secret = "c2VjcmV0LXBsYWludGV4dC1ib2R5LWhhc2g_"
    exc = _refused(secret, Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET")
    assert "c2VjcmV0" not in str(exc)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="padding"):
        b64decode("AA")


# --- fixed length -----------------------------------------------------------------------------------


def test_decode_fixed_accepts_exact_length() -> None:
    assert b64decode_fixed(b64encode(bytes(16)), 16, field="salt") == bytes(16)
    assert b64decode_fixed("", 0) == b""


@pytest.mark.parametrize("n", [0, 15, 17, 32])
def test_decode_fixed_wrong_length(n: int) -> None:
    with pytest.raises(LengthError) as info:
        b64decode_fixed(b64encode(bytes(n)), 16, field="salt")
    exc = info.value
    assert type(exc) is LengthError
    assert exc.code == "WRONG_LENGTH"
    assert exc.field == "salt"
    assert exc.reason == f"decodes to {n} bytes, expected exactly 16"


def test_decode_fixed_reports_base64_errors_with_field() -> None:
    with pytest.raises(Base64UrlSafeAlphabet) as info:
        b64decode_fixed("__8=", 2, field="nonce")
    assert info.value.code == "BASE64_URLSAFE_ALPHABET"
    assert info.value.field == "nonce"


def test_decode_fixed_without_field() -> None:
    with pytest.raises(LengthError) as info:
        b64decode_fixed("AA==", 2)
    assert info.value.field is None


# --- properties -------------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_round_trip(data: bytes) -> None:
    text = b64encode(data)
    assert b64decode(text) == data
    assert text == base64.b64encode(data).decode("ascii")


@given(st.binary(min_size=1, max_size=64))
def test_urlsafe_encoding_refused_when_it_differs(data: bytes) -> None:
    urlsafe = base64.urlsafe_b64encode(data).decode("ascii")
    if urlsafe == b64encode(data):
        assert b64decode(urlsafe) == data
    else:
        _refused(urlsafe, Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET")


@given(st.binary(min_size=1, max_size=64))
def test_unpadded_encoding_refused_when_it_differs(data: bytes) -> None:
    unpadded = b64encode(data).rstrip("=")
    if len(data) % 3 == 0:
        assert b64decode(unpadded) == data
    else:
        _refused(unpadded, Base64MissingPadding, "BASE64_MISSING_PADDING")


@given(st.text(max_size=24))
def test_any_text_decodes_canonically_or_raises_base64_error(text: str) -> None:
    error: Base64Error | None = None
    raw = b""
    try:
        raw = b64decode(text, field="f")
    except Base64Error as exc:
        error = exc
    if error is None:
        assert b64encode(raw) == text
    else:
        assert error.field == "f"
        assert type(error) is not Base64Error  # always a specific subclass


def _reference_decode(text: str) -> bytes | None:
    """The definition: strict decoding whose re-encoding reproduces the input exactly."""
    import binascii

    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return raw if binascii.b2a_base64(raw, newline=False).decode("ascii") == text else None


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n", max_size=24))
def test_the_o1_canonical_check_agrees_with_full_re_encoding(text: str) -> None:
    expected = _reference_decode(text)
    try:
        got: bytes | None = b64decode(text)
    except Base64Error:
        got = None
    assert got == expected


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=63))
def test_any_last_data_character_is_judged_like_full_re_encoding(data: bytes, index: int) -> None:
    """Replace the final data character of a valid encoding by each alphabet letter in turn: only the
    canonical one may decode, exactly as the full re-encoding definition says."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    text = b64encode(data)
    body = text.rstrip("=")
    changed = body[:-1] + alphabet[index] + text[len(body) :]
    expected = _reference_decode(changed)
    try:
        got: bytes | None = b64decode(changed)
    except Base64Error:
        got = None
    assert got == expected


def test_the_empty_string_is_the_canonical_encoding_of_no_bytes() -> None:
    assert b64decode("") == b""


def test_the_canonical_tail_check_refuses_a_partial_quantum_on_its_own() -> None:
    """Defence in depth: the strict decoder already refuses such lengths; the tail check does too."""
    from conformance.protocol.b64 import _canonical_tail

    assert _canonical_tail(b"A", "QQ") is False


@given(
    st.binary(min_size=60, max_size=90), st.integers(min_value=0, max_value=63), st.sampled_from(["", "=", "==", " "])
)
def test_short_and_long_texts_are_judged_alike_on_both_sides_of_the_decoder_switch(
    data: bytes, index: int, suffix: str
) -> None:
    """Texts up to 96 characters are decoded by binascii, longer ones by pybase64: around the switch,
    a canonical text, one with its last data character replaced, and one with a suffix are all judged
    exactly as the definition says."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    text = b64encode(data)
    body = text.rstrip("=")
    for candidate in (text, body[:-1] + alphabet[index] + text[len(body) :], text + suffix, body + suffix):
        try:
            got: bytes | None = b64decode(candidate)
        except Base64Error:
            got = None
        assert got == _reference_decode(candidate)
