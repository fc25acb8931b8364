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
from typing import Any

import pybase64

from .errors import InvalidJson

JsonValue = Any  # JSON values are recursive; mypy cannot express them precisely without noise.


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"contains the non-JSON constant {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidJson("has the same key twice in one object; duplicate keys are ambiguous")
        out[key] = value
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
    """Parse strict JSON (UTF-8, no NaN/Infinity, no duplicate keys) or raise :class:`InvalidJson`."""
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
    try:
        value, end = _DECODER.raw_decode(text.lstrip(" \t\r\n"))
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
    rest = text.lstrip(" \t\r\n")[end:]
    if rest.strip(" \t\r\n"):
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
    separators = text.count(",") + text.count(":")
    return separators if separators > MAX_ITEMS else None


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

    Envelopes are flat objects whose big members are base64 text, which never needs escaping; for
    those the members are joined directly instead of scanning a megabyte for escapes. The output is
    byte-identical to the general path (a property test checks this).
    """
    if type(value) is not dict or not value:
        return _dumps(value)
    pieces = [b"{"]
    for key, member in value.items():
        name = _KEY_BYTES.get(key) if type(key) is str else None
        if name is None:
            name = _plain(key) if type(key) is str else None
            if name is None:  # a key that needs escaping (or is not a str): the general path
                return _dumps(value)
            if len(_KEY_BYTES) < _KEY_CACHE_SIZE and len(name) <= _KEY_CACHE_LENGTH:
                _KEY_BYTES[key] = name
        kind = type(member)
        if kind is str:
            raw = _plain(member)
            pieces += (b'"', name, b'":"', raw, b'",') if raw is not None else (b'"', name, b'":', _dumps(member), b",")
        elif kind is int and -_BIG_INT < member < _BIG_INT:
            pieces += (b'"', name, b'":', b"%d" % member, b",")
        elif member is None or kind is bool:
            pieces += (b'"', name, b'":', _LITERALS[member], b",")
        else:  # float, nested, huge integers: json decides
            pieces += (b'"', name, b'":', _dumps(member), b",")
    pieces[-1] = b'"}' if pieces[-1] == b'",' else b"}"  # the last member's comma closes the object
    return b"".join(pieces)  # one copy of each member, as the general path makes


# Envelope keys repeat in every message, so their checked bytes are kept (bounded: a fuzzer's random
# keys must not grow it without limit).
_KEY_BYTES: dict[str, bytes] = {}
_KEY_CACHE_SIZE = 1024
_KEY_CACHE_LENGTH = 64
_LITERALS = {None: b"null", True: b"true", False: b"false"}
_BIG_INT = 2**64  # far below sys.get_int_max_str_digits(), whose refusal json.dumps reports


_WRITTEN_AS_IS = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def _plain(text: str) -> bytes | None:
    """The ASCII bytes of text that JSON writes as is (printable, no quote or backslash), else None.

    The ASCII test is O(1) in CPython. Long members are nearly always base64, whose alphabet is all
    written as is, and pybase64's SIMD validator says "strict base64" about three times faster than
    the general test: deleting every as-is byte with ``bytes.translate`` and finding nothing left
    (itself about four times faster than ``str.isprintable``). The encoded bytes are handed back so
    that the caller copies a megabyte member once: a run against a hostile node holds several such
    members at once, and its memory is budgeted (the decoded bytes are freed before the copy).
    """
    if not text.isascii():
        return None
    if len(text) >= _BASE64_PROBE and _is_strict_base64(text):
        return text.encode("ascii")
    raw = text.encode("ascii")
    return None if raw.translate(None, _WRITTEN_AS_IS) else raw


def _is_strict_base64(text: str) -> bool:
    try:
        pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_BASE64_PROBE = 256  # below this the call costs more than translate saves


def _dumps(value: JsonValue) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("contains a lone surrogate, which UTF-8 cannot encode") from None
    except ValueError:  # allow_nan=False: NaN and infinities have no JSON form
        raise InvalidJson("contains NaN or an infinity, which JSON cannot represent") from None


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
