"""JSON as it travels on the wire: strict parsing and compact, order-preserving serialization.

Why not plain ``json.loads``/``json.dumps``:

- ``json.loads`` accepts ``NaN``/``Infinity`` and silently keeps the last of two duplicate keys. The
  node's serde structs refuse duplicate fields, and an ambiguous body is exactly what a smuggling
  attack needs, so we refuse both.
- Hashes cover bytes, not values. The protocol's canonical output is compact JSON with keys in
  insertion order and non-ASCII emitted raw (serde_json with ``preserve_order``); ``json.dumps``
  defaults to spaces and ``\\uXXXX`` escapes, which hash differently.

Errors never quote the input: it may be plaintext.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from typing import Any

import pybase64

from .errors import InvalidJson

JsonValue = Any  # JSON values are recursive; mypy cannot express them precisely without noise.


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"contains the non-JSON constant {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # a key came twice
        raise InvalidJson("has the same key twice in one object; duplicate keys are ambiguous")
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidJson("has a number too large for a 64-bit float")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_float=_finite_float
)


def loads(data: bytes | bytearray | memoryview | str, *, field: str | None = None) -> JsonValue:
    """Parse strict JSON (UTF-8, no NaN/Infinity, no duplicate keys) or raise :class:`InvalidJson`.

    A document holding long base64 strings (an envelope's ciphertext) is read by :func:`_spliced`,
    which returns exactly what the general parser returns, or says it is unsure and lets it decide.
    """
    if type(data) is bytes and len(data) > _SPLICE_MIN:
        value = _spliced(data)
        if value is not None:
            return value
    return _strict_loads(data, field)


def _strict_loads(data: bytes | bytearray | memoryview | str, field: str | None) -> JsonValue:
    """The general strict parser: the stdlib's C scanner with strict hooks, and the checks around it."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"is not valid UTF-8 (bad byte at offset {exc.start})", field=field) from None
    wide = _too_wide(text)
    if wide is not None:
        raise InvalidJson(
            f"has {wide:,} ',' and ':' separators, more than the {MAX_ITEMS:,} any protocol message needs",
            field=field,
        )
    text = text.lstrip(" \t\r\n")  # the same object when there is nothing to strip
    try:
        value, end = _DECODER.raw_decode(text)
    except InvalidJson as exc:
        raise InvalidJson(exc.reason, field=field) from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", field=field
        ) from None
    except RecursionError:
        raise InvalidJson("is nested too deeply", field=field) from None
    except ValueError:  # int() refuses integers of more than sys.get_int_max_str_digits() digits
        raise InvalidJson("has an integer with too many digits", field=field) from None
    if end < len(text) and text[end:].strip(" \t\r\n"):
        raise InvalidJson("has trailing characters after the JSON value", field=field)
    if "\\u" in text and _MAYBE_SURROGATE.search(text) and _has_lone_surrogate(value):
        # serde_json refuses these, and no UTF-8 serializer can write them back.
        raise InvalidJson("has a \\u escape for a lone UTF-16 surrogate", field=field)
    return value


_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")

# Parsed, each object member costs ~200 bytes of Python objects and each array element ~30: a wide
# document just under the 32 MiB response cap would take gigabytes. So a document is refused before it
# is parsed when its ``,`` and ``:`` characters, an upper bound on its members and elements, exceed
# MAX_ITEMS. No protocol message comes near it (an envelope has a dozen members, and prose has a comma
# every few dozen characters); counting them is a single pass in C, where an exact count that skips
# the separators inside strings would cost seconds and a copy of the text.
MAX_ITEMS = 1_000_000


def _too_wide(text: str) -> int | None:
    """The number of ``,`` and ``:`` in ``text`` when over MAX_ITEMS, else None."""
    if len(text) <= MAX_ITEMS:  # no need to count: there cannot be more separators than characters
        return None
    separators = text.count(",") + text.count(":")
    return separators if separators > MAX_ITEMS else None


# --- the spliced reader ---------------------------------------------------------------------------
#
# The C scanner reads a string character by character, and the checks around it pass over the whole
# text again: a 1 MiB answer (1.4 MB of base64 in one member) costs several milliseconds, more than
# decrypting and hashing it. The spliced reader finds such strings by their quotes (memchr), proves
# each one is plain base64 (pybase64's SIMD validator: nothing in it that JSON would escape or refuse),
# and cuts it out: the general parser then reads a skeleton, the document with each long string
# replaced by a short placeholder, and each placeholder is swapped back for its text. Every strict
# rule (duplicate keys, constants, numbers, nesting, surrogates, width, trailing characters, UTF-8) is
# still applied, by the same code, to everything but the cut-out base64, which cannot break any.
#
# Why the result is always the general parser's. The reader only goes on when the document has no
# backslash: then every quote in it delimits a string, opening and closing in turn. The skeleton
# differs from the document only between the two quotes around each span; a span's text and its
# placeholder are both runs of characters that a string holds as they are, and a placeholder starts
# with '@', which is invalid outside a string. So when the skeleton parses, the quotes around each
# placeholder opened and closed one string (had they closed one and opened the next, the '@' would
# stand outside any string and the parse would fail); the same quotes in the document delimit the
# span's text; and the document parses exactly as the skeleton does, with that text for that string.
# The checks after the parse see the same keys, separators and characters (a span has no ',', ':',
# backslash or non-ASCII character). The swap is only made when the skeleton holds exactly as many
# '"@' as there are placeholders (so no other string starts with '@') and each placeholder is the value
# of a top-level member. In every other case the reader is unsure, and the general parser runs on the
# document (and raises its own error, with its own message, when the document is refused).

_SPLICE_MIN = 1024  # shorter strings cost the C scanner less than cutting them out
_SPLICE_QUOTES = 96  # quotes looked at before giving up looking (an envelope has about 40)
_SPLICE_SPANS = 8  # strings cut out of one document at most
_PLACEHOLDERS = tuple(f"@{k}" for k in range(_SPLICE_SPANS))
_PLACEHOLDER_BYTES = tuple(name.encode("ascii") for name in _PLACEHOLDERS)
_PLACEHOLDER_INDEX = {name: k for k, name in enumerate(_PLACEHOLDERS)}


def _spliced(data: bytes) -> dict[str, JsonValue] | None:
    """The document's value (always an object), or None when unsure; see the comment above."""
    find, size, view = data.find, len(data), memoryview(data)
    pieces: list[bytes] = []
    spans: list[memoryview] = []
    done, end = 0, -1
    for _ in range(_SPLICE_QUOTES // 2):
        start = find(b'"', end + 1)
        if start < 0 or size - start <= _SPLICE_MIN:  # no room left for a long string
            break
        end = find(b'"', start + 1)
        if end < 0:
            break
        if end - start > _SPLICE_MIN and _is_strict_base64(text := view[start + 1 : end]):
            pieces += (data[done : start + 1], _PLACEHOLDER_BYTES[len(spans)])
            spans.append(text)
            done = end
            if len(spans) == _SPLICE_SPANS:
                break
    if not spans:
        return None
    pieces.append(data[done:])
    skeleton = b"".join(pieces)
    if b"\\" in skeleton or skeleton.count(b'"@') != len(spans):
        return None
    try:
        value = _strict_loads(skeleton, None)
    except InvalidJson:
        return None
    if type(value) is not dict:
        return None
    found = [(key, member) for key, member in value.items() if type(member) is str and member in _PLACEHOLDER_INDEX]
    if len(found) != len(spans):
        return None
    for key, member in found:
        value[key] = str(spans[_PLACEHOLDER_INDEX[member]], "ascii")  # the one copy of the long text
    return value


def _has_lone_surrogate(value: JsonValue) -> bool:
    """Iterative on purpose: a document the C parser accepts can be nested deeper than Python recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def loads_object(data: bytes | bytearray | memoryview | str, *, field: str | None = None) -> dict[str, JsonValue]:
    """Parse strict JSON and require a top-level object."""
    value = loads(data, field=field)
    if not isinstance(value, dict):
        raise InvalidJson(f"must be a JSON object, got {json_type(value)}", field=field)
    return value


def is_compact(body: bytes) -> bool | None:
    """Whether ``body`` is already the protocol's compact serialization of the JSON it holds (R8.2,
    R9.3; a client's envelope, R13.2): None when it is not strict JSON at all, which is another rule's
    failure. The node-side checks and the mock's client judge both ask this."""
    try:
        value = loads(body)
    except InvalidJson:
        return None
    return dumps(value) == body


def dumps(value: JsonValue) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order, non-ASCII raw (the protocol's JSON(v)).

    Envelopes are flat objects whose big members are base64 text, which never needs escaping: their
    members are written one by one (short strings by the stdlib's own C string encoder, base64 text
    as it is, instead of scanning a megabyte for escapes), and an all-ASCII text is encoded once. A
    text with other characters is encoded piece by piece instead: joined first, one character past
    Latin-1 would widen a megabyte of base64 two- or fourfold. The output is byte-identical to the
    general path (a property test checks this).
    """
    if type(value) is not dict or not value:
        return _dumps(value)
    pieces = ["{"]
    ascii_only = True
    for key, member in value.items():
        name = _KEY_TEXT.get(key) if type(key) is str else None  # a cached name is ASCII
        if name is None:
            if type(key) is not str:  # json turns other keys into strings: the general path decides
                return _dumps(value)
            name = _encode_string(key) + ":"
            if not name.isascii():
                ascii_only = False
            elif len(_KEY_TEXT) < _KEY_CACHE_SIZE and len(key) <= _KEY_CACHE_LENGTH:
                _KEY_TEXT[key] = name
        kind = type(member)
        if kind is str:
            if len(member) >= _BASE64_PROBE and member.isascii() and _is_strict_base64(member):
                pieces += (name, '"', member, '",')
                continue
            written = _encode_string(member)
            ascii_only = ascii_only and written.isascii()
        elif kind is int and -_BIG_INT < member < _BIG_INT:
            written = int.__repr__(member)
        elif member is None or kind is bool:
            written = _LITERALS[member]
        else:  # float, nested, huge integers: json decides
            written = _dumps_text(member)
            ascii_only = ascii_only and written.isascii()
        pieces += (name, written, ",")
    pieces[-1] = '"}' if pieces[-1] == '",' else "}"  # the last member's comma closes the object
    if ascii_only:  # the joined text (freed at once) is the document's size, whatever it holds
        return "".join(pieces).encode("ascii")
    try:
        return b"".join([piece.encode("utf-8") for piece in pieces])
    except UnicodeEncodeError:
        raise InvalidJson(_LONE_SURROGATE) from None


# Envelope keys repeat in every message, so their written form is kept when it is ASCII (bounded: a
# fuzzer's random keys must not grow it without limit).
_KEY_TEXT: dict[str, str] = {}
_KEY_CACHE_SIZE = 1024
_KEY_CACHE_LENGTH = 64
_LITERALS = {None: "null", True: "true", False: "false"}
_BIG_INT = 2**64  # far below sys.get_int_max_str_digits(), whose refusal json.dumps reports
_LONE_SURROGATE = "contains a lone surrogate, which UTF-8 cannot encode"
# The C function json.dumps itself writes strings with when ensure_ascii=False: quotes, escapes of
# '"', '\\' and control characters, everything else as it is.
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _is_strict_base64(text: str | memoryview) -> bool:
    """Whether ``text`` is strict base64, so plain ASCII that a JSON string holds as it is (no quote,
    backslash or control character). pybase64's SIMD validator says so about three times faster than
    deleting every such byte with ``bytes.translate``."""
    try:
        pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_BASE64_PROBE = 256  # below this the C string encoder costs less than the probe


def _dumps_text(value: JsonValue) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # allow_nan=False: NaN and infinities have no JSON form
        raise InvalidJson("contains NaN or an infinity, which JSON cannot represent") from None


def _dumps(value: JsonValue) -> bytes:
    try:
        return _dumps_text(value).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson(_LONE_SURROGATE) from None


def json_type(value: object) -> str:
    """The JSON type name of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def strict_equal(a: JsonValue, b: JsonValue, *, numbers_by_value: bool = False) -> bool:
    """JSON value equality that, unlike ``==``, never equates ``true`` with ``1``.

    By default ``1`` and ``1.0`` also differ, because they are different bytes on the wire (the clear
    and encrypted ``usage`` copies must match exactly). With ``numbers_by_value=True`` numbers compare
    by value, which is JSON's own data model (it has one number type).
    """
    numeric = (int, float)
    if numbers_by_value and type(a) in numeric and type(b) in numeric:
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k], numbers_by_value=numbers_by_value) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(
            strict_equal(x, y, numbers_by_value=numbers_by_value) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b)
