"""Message models: strict shape checks with dotted field paths, wire key order, and decode()."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    U64_MAX,
    Base64MissingPadding,
    Base64UrlSafeAlphabet,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    DecodedRequest,
    ErrorBody,
    InvalidJson,
    LengthError,
    LockRequest,
    LockResponse,
    MissingField,
    OutOfRange,
    ProtocolError,
    StreamChunk,
    Usage,
    WrongType,
    b64encode,
    dumps,
)

SECRET = "SECRET-VALUE-91bc"


def _check(exc: ProtocolError, cls: type[ProtocolError], code: str, field: str | None) -> None:
    assert type(exc) is cls
    assert exc.code == code
    assert exc.field == field
    assert SECRET not in str(exc)


def _refused(parse: Callable[[Any], object], obj: Any, cls: type[ProtocolError], field: str | None) -> ProtocolError:
    codes: dict[type[ProtocolError], str] = {
        MissingField: "MISSING_FIELD",
        WrongType: "WRONG_TYPE",
        OutOfRange: "OUT_OF_RANGE",
    }
    with pytest.raises(cls) as info:
        parse(obj)
    _check(info.value, cls, codes[cls], field)
    return info.value


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    del out[key]
    return out


def _with(obj: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out[key] = value
    return out


# Values of the wrong JSON type for a field that must be an integer, and what the error names them.
NOT_INTEGERS: list[tuple[Any, str]] = [
    (True, "boolean"),
    (False, "boolean"),
    (1.0, "number"),
    (0.5, "number"),
    ("1", "string"),
    ([1], "array"),
    ({"v": 1}, "object"),
]
NOT_STRINGS: list[tuple[Any, str]] = [
    (1, "integer"),
    (1.5, "number"),
    (True, "boolean"),
    (["s"], "array"),
    ({}, "object"),
]
OUT_OF_RANGE = [-1, -(2**63), U64_MAX + 1, 2**100]
NON_OBJECTS: list[tuple[Any, str]] = [([], "array"), ("s", "string"), (1, "integer"), (None, "null"), (True, "boolean")]

# --- lock request -----------------------------------------------------------------------------------

LOCK_REQUEST = {"model": "llama", "max_num_tokens": 100, "timeout": 30}


def test_lock_request_round_trip() -> None:
    data = dumps(LOCK_REQUEST)
    req = LockRequest.parse(data)
    assert req == LockRequest("llama", 100, 30)
    assert req.serialize() == data
    assert list(req.to_json()) == ["model", "max_num_tokens", "timeout"]


def test_lock_request_optional_fields() -> None:
    assert LockRequest.parse(b'{"model":"m"}').serialize() == b'{"model":"m"}'
    explicit_null = LockRequest.parse(b'{"model":"m","max_num_tokens":null,"timeout":null}')
    assert explicit_null == LockRequest("m")
    assert explicit_null.serialize() == b'{"model":"m"}'
    assert LockRequest.parse(b'{"timeout":0,"model":"m"}').serialize() == b'{"model":"m","timeout":0}'


def test_lock_request_missing_model() -> None:
    _refused(LockRequest.from_json, _without(LOCK_REQUEST, "model"), MissingField, "model")


@pytest.mark.parametrize(("value", "name"), NOT_STRINGS)
def test_lock_request_model_wrong_type(value: Any, name: str) -> None:
    exc = _refused(LockRequest.from_json, _with(LOCK_REQUEST, "model", value), WrongType, "model")
    assert exc.reason == f"must be a string, got {name}"


def test_lock_request_model_null_is_wrong_type() -> None:
    exc = _refused(LockRequest.from_json, _with(LOCK_REQUEST, "model", None), WrongType, "model")
    assert exc.reason == "must be a string, got null"


@pytest.mark.parametrize("key", ["max_num_tokens", "timeout"])
@pytest.mark.parametrize(("value", "name"), NOT_INTEGERS)
def test_lock_request_integer_wrong_type(key: str, value: Any, name: str) -> None:
    exc = _refused(LockRequest.from_json, _with(LOCK_REQUEST, key, value), WrongType, key)
    assert exc.reason == f"must be an integer, got {name}"


@pytest.mark.parametrize("key", ["max_num_tokens", "timeout"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_lock_request_integer_out_of_range(key: str, value: int) -> None:
    exc = _refused(LockRequest.from_json, _with(LOCK_REQUEST, key, value), OutOfRange, key)
    assert exc.reason == f"must be an integer in [0, {U64_MAX}]"
    assert str(value) not in exc.reason


@pytest.mark.parametrize("value", [0, U64_MAX])
def test_lock_request_integer_bounds_accepted(value: int) -> None:
    assert LockRequest.from_json(_with(LOCK_REQUEST, "timeout", value)).timeout == value


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_lock_request_non_object(value: Any, name: str) -> None:
    exc = _refused(LockRequest.from_json, value, WrongType, None)
    assert exc.reason == f"must be a JSON object, got {name}"
    with pytest.raises(WrongType):
        LockRequest.parse(dumps(value))


def test_lock_request_parse_invalid_json() -> None:
    with pytest.raises(InvalidJson):
        LockRequest.parse(b'{"model":"a","model":"b"}')


# --- lock response ----------------------------------------------------------------------------------

NODE_KEY = bytes(range(32))
LOCK_RESPONSE = {
    "public_key": b64encode(NODE_KEY),
    "node_small_id": 3,
    "stack_entry_digest": "digest",
    "stack_small_id": 7,
}
LOCK_RESPONSE_KEYS = ["public_key", "node_small_id", "stack_entry_digest", "stack_small_id"]


def test_lock_response_round_trip() -> None:
    data = dumps(LOCK_RESPONSE)
    resp = LockResponse.parse(data)
    assert resp == LockResponse(b64encode(NODE_KEY), 3, "digest", 7)
    assert resp.serialize() == data
    assert list(resp.to_json()) == LOCK_RESPONSE_KEYS
    assert resp.node_public_key() == NODE_KEY


def test_lock_response_key_order_is_fixed() -> None:
    shuffled = {k: LOCK_RESPONSE[k] for k in reversed(LOCK_RESPONSE_KEYS)}
    assert LockResponse.parse(dumps(shuffled)).serialize() == dumps(LOCK_RESPONSE)


@pytest.mark.parametrize("digest", ["absent", "null"])
def test_lock_response_stack_entry_digest_always_serialized(digest: str) -> None:
    obj = (
        _without(LOCK_RESPONSE, "stack_entry_digest")
        if digest == "absent"
        else _with(LOCK_RESPONSE, "stack_entry_digest", None)
    )
    resp = LockResponse.from_json(obj)
    assert resp.stack_entry_digest is None
    assert list(resp.to_json()) == LOCK_RESPONSE_KEYS
    assert resp.serialize() == dumps(_with(LOCK_RESPONSE, "stack_entry_digest", None))
    assert b'"stack_entry_digest":null' in resp.serialize()


@pytest.mark.parametrize("key", ["public_key", "node_small_id", "stack_small_id"])
def test_lock_response_missing_field(key: str) -> None:
    _refused(LockResponse.from_json, _without(LOCK_RESPONSE, key), MissingField, key)


@pytest.mark.parametrize(("value", "name"), NOT_STRINGS)
def test_lock_response_strings_wrong_type(value: Any, name: str) -> None:
    _refused(LockResponse.from_json, _with(LOCK_RESPONSE, "public_key", value), WrongType, "public_key")
    _refused(LockResponse.from_json, _with(LOCK_RESPONSE, "stack_entry_digest", value), WrongType, "stack_entry_digest")


@pytest.mark.parametrize("key", ["node_small_id", "stack_small_id"])
@pytest.mark.parametrize(("value", "name"), [*NOT_INTEGERS, (None, "null")])
def test_lock_response_integer_wrong_type(key: str, value: Any, name: str) -> None:
    exc = _refused(LockResponse.from_json, _with(LOCK_RESPONSE, key, value), WrongType, key)
    assert exc.reason == f"must be an integer, got {name}"


@pytest.mark.parametrize("key", ["node_small_id", "stack_small_id"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_lock_response_integer_out_of_range(key: str, value: int) -> None:
    _refused(LockResponse.from_json, _with(LOCK_RESPONSE, key, value), OutOfRange, key)


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_lock_response_non_object(value: Any, name: str) -> None:
    _refused(LockResponse.from_json, value, WrongType, None)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_lock_response_node_public_key_length(length: int) -> None:
    resp = LockResponse.from_json(_with(LOCK_RESPONSE, "public_key", b64encode(bytes(length))))
    with pytest.raises(LengthError) as info:
        resp.node_public_key()
    _check(info.value, LengthError, "WRONG_LENGTH", "public_key")
    assert info.value.reason == f"decodes to {length} bytes, expected exactly 32"


def test_lock_response_node_public_key_strict_base64() -> None:
    urlsafe = b64encode(b"\xff" * 32).replace("/", "_")
    resp = LockResponse.from_json(_with(LOCK_RESPONSE, "public_key", urlsafe))
    with pytest.raises(Base64UrlSafeAlphabet) as info:
        resp.node_public_key()
    _check(info.value, Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET", "public_key")


# --- confidential compute request -------------------------------------------------------------------

BIN = {
    "ciphertext": bytes(range(20)),
    "client_dh_public_key": bytes([1]) * 32,
    "node_dh_public_key": bytes([2]) * 32,
    "nonce": bytes([3]) * 12,
    "plaintext_body_hash": bytes([4]) * 32,
    "salt": bytes([5]) * 16,
}
REQUEST: dict[str, Any] = {
    "ciphertext": b64encode(BIN["ciphertext"]),
    "client_dh_public_key": b64encode(BIN["client_dh_public_key"]),
    "model_name": "llama",
    "node_dh_public_key": b64encode(BIN["node_dh_public_key"]),
    "nonce": b64encode(BIN["nonce"]),
    "num_compute_units": 64,
    "plaintext_body_hash": b64encode(BIN["plaintext_body_hash"]),
    "salt": b64encode(BIN["salt"]),
    "stack_small_id": 7,
    "stream": True,
}
REQUIRED_STRINGS = [k for k in ConfidentialComputeRequest.REQUIRED if k != "stack_small_id"]


def test_request_round_trip_alphabetical() -> None:
    data = dumps(REQUEST)
    req = ConfidentialComputeRequest.parse(data)
    assert req.serialize() == data
    assert list(req.to_json()) == sorted(REQUEST)
    assert req.stream is True
    assert req.num_compute_units == 64


def test_request_key_order_is_alphabetical_whatever_the_input() -> None:
    shuffled = {k: REQUEST[k] for k in reversed(list(REQUEST))}
    assert ConfidentialComputeRequest.parse(dumps(shuffled)).serialize() == dumps(REQUEST)


def test_request_minimal_round_trip() -> None:
    minimal = {k: v for k, v in REQUEST.items() if k not in ("num_compute_units", "stream")}
    req = ConfidentialComputeRequest.from_json(minimal)
    assert req.num_compute_units is None
    assert req.stream is None
    assert req.serialize() == dumps(minimal)
    assert list(req.to_json()) == sorted(minimal)


@pytest.mark.parametrize("key", ["num_compute_units", "stream"])
def test_request_explicit_null_optional_is_omitted(key: str) -> None:
    req = ConfidentialComputeRequest.from_json(_with(REQUEST, key, None))
    assert getattr(req, key) is None
    assert key not in req.to_json()
    assert req == ConfidentialComputeRequest.from_json(_without(REQUEST, key))


def test_request_stream_false_and_zero_units_are_kept() -> None:
    req = ConfidentialComputeRequest.from_json(_with(_with(REQUEST, "stream", False), "num_compute_units", 0))
    assert req.stream is False
    assert req.num_compute_units == 0
    assert req.to_json()["stream"] is False
    assert req.to_json()["num_compute_units"] == 0


@pytest.mark.parametrize("key", ConfidentialComputeRequest.REQUIRED)
def test_request_missing_required(key: str) -> None:
    exc = _refused(ConfidentialComputeRequest.from_json, _without(REQUEST, key), MissingField, key)
    assert exc.reason == "is required but missing"


@pytest.mark.parametrize("key", REQUIRED_STRINGS)
@pytest.mark.parametrize(("value", "name"), [*NOT_STRINGS, (None, "null")])
def test_request_string_wrong_type(key: str, value: Any, name: str) -> None:
    exc = _refused(ConfidentialComputeRequest.from_json, _with(REQUEST, key, value), WrongType, key)
    assert exc.reason == f"must be a string, got {name}"


@pytest.mark.parametrize("key", ["stack_small_id", "num_compute_units"])
@pytest.mark.parametrize(("value", "name"), NOT_INTEGERS)
def test_request_integer_wrong_type(key: str, value: Any, name: str) -> None:
    exc = _refused(ConfidentialComputeRequest.from_json, _with(REQUEST, key, value), WrongType, key)
    assert exc.reason == f"must be an integer, got {name}"


def test_request_stack_small_id_null_is_wrong_type() -> None:
    _refused(ConfidentialComputeRequest.from_json, _with(REQUEST, "stack_small_id", None), WrongType, "stack_small_id")


@pytest.mark.parametrize("key", ["stack_small_id", "num_compute_units"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_request_integer_out_of_range(key: str, value: int) -> None:
    _refused(ConfidentialComputeRequest.from_json, _with(REQUEST, key, value), OutOfRange, key)


@pytest.mark.parametrize(
    ("value", "name"), [(1, "integer"), ("true", "string"), (0.0, "number"), ([], "array"), ({}, "object")]
)
def test_request_stream_wrong_type(value: Any, name: str) -> None:
    exc = _refused(ConfidentialComputeRequest.from_json, _with(REQUEST, "stream", value), WrongType, "stream")
    assert exc.reason == f"must be a boolean or null, got {name}"


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_request_non_object(value: Any, name: str) -> None:
    _refused(ConfidentialComputeRequest.from_json, value, WrongType, None)


def test_request_parse_refuses_duplicate_keys() -> None:
    data = dumps(REQUEST)[:-1] + b',"stream":false}'
    with pytest.raises(InvalidJson):
        ConfidentialComputeRequest.parse(data)


def test_request_wrong_type_does_not_echo_value() -> None:
    exc = _refused(
        ConfidentialComputeRequest.from_json, _with(REQUEST, "stack_small_id", SECRET), WrongType, "stack_small_id"
    )
    assert SECRET not in exc.reason


# decode()


def test_request_decode() -> None:
    decoded = ConfidentialComputeRequest.from_json(REQUEST).decode()
    assert decoded == DecodedRequest(**BIN)


def test_request_decode_accepts_bare_tag_ciphertext() -> None:
    req = ConfidentialComputeRequest.from_json(_with(REQUEST, "ciphertext", b64encode(bytes(16))))
    assert req.decode().ciphertext == bytes(16)


@pytest.mark.parametrize(
    ("key", "length", "expected"),
    [
        ("plaintext_body_hash", 31, 32),
        ("plaintext_body_hash", 33, 32),
        ("plaintext_body_hash", 64, 32),
        ("salt", 15, 16),
        ("salt", 17, 16),
        ("salt", 32, 16),
        ("nonce", 11, 12),
        ("nonce", 13, 12),
        ("nonce", 24, 12),
        ("client_dh_public_key", 31, 32),
        ("client_dh_public_key", 33, 32),
        ("node_dh_public_key", 0, 32),
        ("node_dh_public_key", 33, 32),
    ],
)
def test_request_decode_exact_lengths(key: str, length: int, expected: int) -> None:
    req = ConfidentialComputeRequest.from_json(_with(REQUEST, key, b64encode(bytes(length))))
    with pytest.raises(LengthError) as info:
        req.decode()
    _check(info.value, LengthError, "WRONG_LENGTH", key)
    assert info.value.reason == f"decodes to {length} bytes, expected exactly {expected}"


@pytest.mark.parametrize("length", [0, 1, 15])
def test_request_decode_short_ciphertext(length: int) -> None:
    req = ConfidentialComputeRequest.from_json(_with(REQUEST, "ciphertext", b64encode(bytes(length))))
    with pytest.raises(LengthError) as info:
        req.decode()
    _check(info.value, LengthError, "WRONG_LENGTH", "ciphertext")
    assert info.value.reason == f"decodes to {length} bytes, shorter than the 16-byte GCM tag"


@pytest.mark.parametrize(
    "key", ["plaintext_body_hash", "salt", "nonce", "client_dh_public_key", "node_dh_public_key", "ciphertext"]
)
def test_request_decode_strict_base64(key: str) -> None:
    unpadded = ConfidentialComputeRequest.from_json(_with(REQUEST, key, REQUEST[key][:-4] + "AA"))
    with pytest.raises(Base64MissingPadding) as info:
        unpadded.decode()
    _check(info.value, Base64MissingPadding, "BASE64_MISSING_PADDING", key)
    urlsafe = ConfidentialComputeRequest.from_json(_with(REQUEST, key, "_" + REQUEST[key][1:]))
    with pytest.raises(Base64UrlSafeAlphabet) as info2:
        urlsafe.decode()
    _check(info2.value, Base64UrlSafeAlphabet, "BASE64_URLSAFE_ALPHABET", key)


def test_request_decode_order_follows_the_spec() -> None:
    order = ["plaintext_body_hash", "salt", "nonce", "client_dh_public_key", "node_dh_public_key", "ciphertext"]
    obj = dict(REQUEST)
    for key in order:
        obj[key] = "A"
    for key in order:
        req = ConfidentialComputeRequest.from_json(obj)
        with pytest.raises(ProtocolError) as info:
            req.decode()
        assert info.value.field == key
        obj[key] = REQUEST[key]
    ConfidentialComputeRequest.from_json(obj).decode()


# --- usage ------------------------------------------------------------------------------------------

USAGE: dict[str, Any] = {
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "total_tokens": 15,
    "completion_tokens_details": {
        "accepted_prediction_tokens": 0,
        "audio_tokens": 1,
        "reasoning_tokens": 2,
        "rejected_prediction_tokens": None,
    },
    "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 4},
}


def test_usage_parse_and_raw_round_trip() -> None:
    usage = Usage.from_json(USAGE)
    assert usage.prompt_tokens == 10
    assert usage.completion_tokens == 5
    assert usage.total_tokens == 15
    assert usage.completion_tokens_details == USAGE["completion_tokens_details"]
    assert usage.prompt_tokens_details == {"audio_tokens": 0, "cached_tokens": 4}
    assert dumps(usage.to_json()) == dumps(USAGE)
    assert list(usage.to_json()) == list(USAGE)


def test_usage_raw_keeps_unknown_fields_and_order() -> None:
    raw = {"total_tokens": 3, "extra": {"x": [1]}, "prompt_tokens": 3}
    usage = Usage.from_json(raw)
    assert usage.to_json() == raw
    assert list(usage.to_json()) == ["total_tokens", "extra", "prompt_tokens"]
    assert usage.to_json() is not usage.raw


def test_usage_built_in_code_has_canonical_order() -> None:
    usage = Usage(prompt_tokens=1, total_tokens=3, completion_tokens=2, prompt_tokens_details={"cached_tokens": 1})
    assert list(usage.to_json()) == ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"]
    full = Usage(1, 3, 2, {"audio_tokens": 0}, {"cached_tokens": 1})
    assert list(full.to_json()) == [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "completion_tokens_details",
        "prompt_tokens_details",
    ]
    assert Usage(prompt_tokens=7, total_tokens=7).to_json() == {"prompt_tokens": 7, "total_tokens": 7}


def test_usage_embeddings_shape() -> None:
    usage = Usage.from_json({"prompt_tokens": 8, "total_tokens": 8})
    assert usage.completion_tokens is None
    assert usage.completion_tokens_details is None
    assert usage.prompt_tokens_details is None


def test_usage_equality_ignores_raw() -> None:
    assert Usage.from_json({"prompt_tokens": 1, "total_tokens": 2, "x": 1}) == Usage(1, 2)


def test_usage_explicit_nulls() -> None:
    usage = Usage.from_json(
        {
            "prompt_tokens": 1,
            "total_tokens": 2,
            "completion_tokens": None,
            "completion_tokens_details": None,
            "prompt_tokens_details": None,
        }
    )
    assert usage == Usage(1, 2)


def test_usage_details_ignore_unknown_names() -> None:
    usage = Usage.from_json(
        {"prompt_tokens": 1, "total_tokens": 2, "prompt_tokens_details": {"other": "x", "cached_tokens": 1}}
    )
    assert usage.prompt_tokens_details == {"cached_tokens": 1}
    assert (
        Usage.from_json(
            {"prompt_tokens": 1, "total_tokens": 2, "completion_tokens_details": {}}
        ).completion_tokens_details
        == {}
    )


@pytest.mark.parametrize("key", ["prompt_tokens", "total_tokens"])
def test_usage_missing_required(key: str) -> None:
    _refused(Usage.from_json, _without(USAGE, key), MissingField, f"usage.{key}")


@pytest.mark.parametrize("key", ["prompt_tokens", "total_tokens", "completion_tokens"])
@pytest.mark.parametrize(("value", "name"), NOT_INTEGERS)
def test_usage_integer_wrong_type(key: str, value: Any, name: str) -> None:
    exc = _refused(Usage.from_json, _with(USAGE, key, value), WrongType, f"usage.{key}")
    assert exc.reason == f"must be an integer, got {name}"


@pytest.mark.parametrize("key", ["prompt_tokens", "total_tokens", "completion_tokens"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_usage_integer_out_of_range(key: str, value: int) -> None:
    _refused(Usage.from_json, _with(USAGE, key, value), OutOfRange, f"usage.{key}")


@pytest.mark.parametrize(("details", "names"), [("completion_tokens_details", 4), ("prompt_tokens_details", 2)])
@pytest.mark.parametrize(("value", "name"), [([], "array"), (1, "integer"), ("x", "string"), (False, "boolean")])
def test_usage_details_not_object(details: str, names: int, value: Any, name: str) -> None:
    exc = _refused(Usage.from_json, _with(USAGE, details, value), WrongType, f"usage.{details}")
    assert exc.reason == f"must be a JSON object, got {name}"


@pytest.mark.parametrize(
    ("details", "key"),
    [
        ("completion_tokens_details", "accepted_prediction_tokens"),
        ("completion_tokens_details", "audio_tokens"),
        ("completion_tokens_details", "reasoning_tokens"),
        ("completion_tokens_details", "rejected_prediction_tokens"),
        ("prompt_tokens_details", "audio_tokens"),
        ("prompt_tokens_details", "cached_tokens"),
    ],
)
def test_usage_details_nested_errors(details: str, key: str) -> None:
    for value, cls in (
        (True, WrongType),
        (1.0, WrongType),
        ("1", WrongType),
        (-1, OutOfRange),
        (U64_MAX + 1, OutOfRange),
    ):
        obj = copy.deepcopy(USAGE)
        obj[details][key] = value
        _refused(Usage.from_json, obj, cls, f"usage.{details}.{key}")


@pytest.mark.parametrize(("value", "name"), [*NON_OBJECTS[:-2], (False, "boolean")])
def test_usage_non_object(value: Any, name: str) -> None:
    exc = _refused(Usage.from_json, value, WrongType, "usage")
    assert exc.reason == f"must be a JSON object, got {name}"


def test_usage_custom_prefix() -> None:
    _refused(
        lambda o: Usage.from_json(o, where="chunk.usage"),
        {"total_tokens": 1},
        MissingField,
        "chunk.usage.prompt_tokens",
    )


# --- non-streaming response -------------------------------------------------------------------------

RESPONSE: dict[str, Any] = {
    "nonce": b64encode(bytes(12)),
    "ciphertext": b64encode(bytes(20)),
    "response_hash": b64encode(bytes(32)),
    "signature": b64encode(bytes(97)),
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}
RESPONSE_KEYS = ["nonce", "ciphertext", "response_hash", "signature", "usage"]


def test_response_round_trip() -> None:
    data = dumps(RESPONSE)
    resp = ConfidentialComputeResponse.parse(data)
    assert resp.serialize() == data
    assert list(resp.to_json()) == RESPONSE_KEYS
    assert resp.usage == Usage(3, 7, 4)


def test_response_key_order_is_fixed() -> None:
    shuffled = {k: RESPONSE[k] for k in reversed(RESPONSE_KEYS)}
    assert ConfidentialComputeResponse.parse(dumps(shuffled)).serialize() == dumps(RESPONSE)


def test_response_without_usage() -> None:
    resp = ConfidentialComputeResponse.from_json(_without(RESPONSE, "usage"))
    assert resp.usage is None
    assert list(resp.to_json()) == RESPONSE_KEYS[:4]
    null_usage = ConfidentialComputeResponse.from_json(_with(RESPONSE, "usage", None))
    assert null_usage == resp
    assert "usage" not in null_usage.to_json()


@pytest.mark.parametrize("key", ["response_hash", "signature"])
def test_response_optional_hash_and_signature_always_serialized(key: str) -> None:
    missing = ConfidentialComputeResponse.from_json(_without(RESPONSE, key))
    null = ConfidentialComputeResponse.from_json(_with(RESPONSE, key, None))
    assert getattr(missing, key) is None
    assert missing == null
    assert missing.to_json()[key] is None
    assert list(missing.to_json()) == RESPONSE_KEYS
    assert missing.serialize() == dumps(_with(RESPONSE, key, None))


def test_response_minimal_constructor() -> None:
    resp = ConfidentialComputeResponse("n", "c")
    assert resp.serialize() == b'{"nonce":"n","ciphertext":"c","response_hash":null,"signature":null}'


@pytest.mark.parametrize("key", ["nonce", "ciphertext"])
def test_response_missing_required(key: str) -> None:
    _refused(ConfidentialComputeResponse.from_json, _without(RESPONSE, key), MissingField, key)


@pytest.mark.parametrize("key", ["nonce", "ciphertext", "response_hash", "signature"])
@pytest.mark.parametrize(("value", "name"), NOT_STRINGS)
def test_response_string_wrong_type(key: str, value: Any, name: str) -> None:
    _refused(ConfidentialComputeResponse.from_json, _with(RESPONSE, key, value), WrongType, key)


@pytest.mark.parametrize("key", ["nonce", "ciphertext"])
def test_response_required_null_is_wrong_type(key: str) -> None:
    _refused(ConfidentialComputeResponse.from_json, _with(RESPONSE, key, None), WrongType, key)


@pytest.mark.parametrize(
    ("usage", "cls", "field"),
    [
        ({"total_tokens": 1}, MissingField, "usage.prompt_tokens"),
        ({"prompt_tokens": 1}, MissingField, "usage.total_tokens"),
        ({"prompt_tokens": True, "total_tokens": 1}, WrongType, "usage.prompt_tokens"),
        ({"prompt_tokens": 1, "total_tokens": 1, "completion_tokens": -1}, OutOfRange, "usage.completion_tokens"),
        (
            {"prompt_tokens": 1, "total_tokens": 1, "completion_tokens_details": {"audio_tokens": 1.0}},
            WrongType,
            "usage.completion_tokens_details.audio_tokens",
        ),
        (
            {"prompt_tokens": 1, "total_tokens": 1, "prompt_tokens_details": []},
            WrongType,
            "usage.prompt_tokens_details",
        ),
        ([], WrongType, "usage"),
        (7, WrongType, "usage"),
    ],
)
def test_response_nested_usage_errors(usage: Any, cls: type[ProtocolError], field: str) -> None:
    _refused(ConfidentialComputeResponse.from_json, _with(RESPONSE, "usage", usage), cls, field)
    _refused(StreamChunk.from_json, _with(CHUNK, "usage", usage), cls, field)


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_response_non_object(value: Any, name: str) -> None:
    _refused(ConfidentialComputeResponse.from_json, value, WrongType, None)
    with pytest.raises(WrongType):
        ConfidentialComputeResponse.parse(json.dumps(value).encode())


# --- stream chunk -----------------------------------------------------------------------------------

CHUNK: dict[str, Any] = {
    "ciphertext": b64encode(bytes(20)),
    "nonce": b64encode(bytes(12)),
    "usage": {"prompt_tokens": 3, "total_tokens": 3},
    "signature": b64encode(bytes(97)),
    "response_hash": b64encode(bytes(32)),
}
CHUNK_KEYS = ["ciphertext", "nonce", "usage", "signature", "response_hash"]


def test_chunk_round_trip() -> None:
    data = dumps(CHUNK)
    chunk = StreamChunk.parse(data)
    assert chunk.serialize() == data
    assert list(chunk.to_json()) == CHUNK_KEYS
    assert chunk.usage == Usage(3, 3)


def test_chunk_key_order_is_fixed() -> None:
    shuffled = {k: CHUNK[k] for k in reversed(CHUNK_KEYS)}
    assert StreamChunk.parse(dumps(shuffled)).serialize() == dumps(CHUNK)


def test_chunk_without_usage() -> None:
    chunk = StreamChunk.from_json(_without(CHUNK, "usage"))
    assert list(chunk.to_json()) == ["ciphertext", "nonce", "signature", "response_hash"]
    assert StreamChunk.from_json(_with(CHUNK, "usage", None)) == chunk


@pytest.mark.parametrize("key", ["response_hash", "signature"])
def test_chunk_optional_hash_and_signature(key: str) -> None:
    missing = StreamChunk.from_json(_without(CHUNK, key))
    assert missing == StreamChunk.from_json(_with(CHUNK, key, None))
    assert missing.to_json()[key] is None
    assert list(missing.to_json()) == CHUNK_KEYS


def test_chunk_sse_event() -> None:
    chunk = StreamChunk("c", "n")
    assert chunk.sse_event() == b'data: {"ciphertext":"c","nonce":"n","signature":null,"response_hash":null}\n\n'
    full = StreamChunk.from_json(CHUNK)
    assert full.sse_event() == b"data: " + dumps(CHUNK) + b"\n\n"


@pytest.mark.parametrize("key", ["ciphertext", "nonce"])
def test_chunk_missing_required(key: str) -> None:
    _refused(StreamChunk.from_json, _without(CHUNK, key), MissingField, key)


@pytest.mark.parametrize("key", ["ciphertext", "nonce", "response_hash", "signature"])
@pytest.mark.parametrize(("value", "name"), NOT_STRINGS)
def test_chunk_string_wrong_type(key: str, value: Any, name: str) -> None:
    _refused(StreamChunk.from_json, _with(CHUNK, key, value), WrongType, key)


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_chunk_non_object(value: Any, name: str) -> None:
    _refused(StreamChunk.from_json, value, WrongType, None)
    with pytest.raises(WrongType):
        StreamChunk.parse(json.dumps(value).encode())


# --- error body -------------------------------------------------------------------------------------


def test_error_body_round_trip() -> None:
    data = b'{"error":{"code":"NODE_KEY_MISMATCH","message":"stale key"}}'
    body = ErrorBody.parse(data)
    assert body == ErrorBody("NODE_KEY_MISMATCH", "stale key")
    assert body.serialize() == data
    assert ErrorBody.parse(b'{"error":{"message":"m","code":"c"},"extra":1}').serialize() == (
        b'{"error":{"code":"c","message":"m"}}'
    )


def test_error_body_missing_error() -> None:
    _refused(ErrorBody.from_json, {"code": "x", "message": "y"}, MissingField, "error")


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_error_body_error_not_object(value: Any, name: str) -> None:
    exc = _refused(ErrorBody.from_json, {"error": value}, WrongType, "error")
    assert exc.reason == f"must be a JSON object, got {name}"


@pytest.mark.parametrize("key", ["code", "message"])
def test_error_body_inner_fields(key: str) -> None:
    inner = {"code": "c", "message": "m"}
    _refused(ErrorBody.from_json, {"error": _without(inner, key)}, MissingField, f"error.{key}")
    _refused(ErrorBody.from_json, {"error": _with(inner, key, 1)}, WrongType, f"error.{key}")
    _refused(ErrorBody.from_json, {"error": _with(inner, key, None)}, WrongType, f"error.{key}")


@pytest.mark.parametrize(("value", "name"), NON_OBJECTS)
def test_error_body_non_object(value: Any, name: str) -> None:
    _refused(ErrorBody.from_json, value, WrongType, None)


# --- properties -------------------------------------------------------------------------------------

u64 = st.integers(min_value=0, max_value=U64_MAX)
text = st.text(max_size=12)


@given(
    st.builds(
        ConfidentialComputeRequest,
        ciphertext=text,
        client_dh_public_key=text,
        model_name=text,
        node_dh_public_key=text,
        nonce=text,
        plaintext_body_hash=text,
        salt=text,
        stack_small_id=u64,
        num_compute_units=st.none() | u64,
        stream=st.none() | st.booleans(),
    )
)
def test_request_property_round_trip(req: ConfidentialComputeRequest) -> None:
    data = req.serialize()
    again = ConfidentialComputeRequest.parse(data)
    assert again == req
    assert again.serialize() == data
    assert list(again.to_json()) == sorted(again.to_json())


usages = st.builds(
    Usage,
    prompt_tokens=u64,
    total_tokens=u64,
    completion_tokens=st.none() | u64,
    completion_tokens_details=st.none() | st.fixed_dictionaries({}, optional={"audio_tokens": st.none() | u64}),
    prompt_tokens_details=st.none() | st.fixed_dictionaries({}, optional={"cached_tokens": st.none() | u64}),
)


@given(text, text, st.none() | text, st.none() | text, st.none() | usages)
def test_response_and_chunk_property_round_trip(
    nonce: str, ciphertext: str, response_hash: str | None, signature: str | None, usage: Usage | None
) -> None:
    resp = ConfidentialComputeResponse(nonce, ciphertext, response_hash, signature, usage)
    again = ConfidentialComputeResponse.parse(resp.serialize())
    assert again == resp
    assert again.serialize() == resp.serialize()
    chunk = StreamChunk(ciphertext, nonce, signature, response_hash, usage)
    chunk_again = StreamChunk.parse(chunk.serialize())
    assert chunk_again == chunk
    assert chunk_again.serialize() == chunk.serialize()


@given(u64, st.none() | u64, st.none() | u64, text)
def test_lock_property_round_trip(small_id: int, max_tokens: int | None, timeout: int | None, model: str) -> None:
    req = LockRequest(model, max_tokens, timeout)
    assert LockRequest.parse(req.serialize()) == req
    resp = LockResponse(model, small_id, None if timeout is None else model, small_id)
    assert LockResponse.parse(resp.serialize()) == resp
    body = ErrorBody(model, model)
    assert ErrorBody.parse(body.serialize()) == body


def test_a_string_subclass_is_a_string() -> None:
    """Values built in code (not parsed) may be str subclasses; they are strings all the same."""

    class Text(str):
        pass

    response = ConfidentialComputeResponse.from_json({"nonce": Text("AAAA"), "ciphertext": Text("BBBB")})
    assert response.nonce == "AAAA" and response.ciphertext == "BBBB"
