"""Typed models of every message in the confidential compute API, with strict parse and serialize.

Why hand-written dataclasses rather than pydantic: the suite needs to know *exactly* which JSON
type arrived (``true`` is not an integer, ``1.0`` is not an integer, a missing key differs from an
explicit ``null``), must never echo the value it refuses, and must install next to the official
Python SDK, whose ``pydantic<2.11`` pin would otherwise constrain every user of this package.

Parsing validates JSON *shape* (presence and types). Base64 and length rules are applied by
:meth:`ConfidentialComputeRequest.decode` and the envelope functions, because the node applies them
at a later step and reports them differently; keeping the stages apart lets the mock reproduce that
order and lets checks say which stage refused a message.

``parse`` takes bytes, ``from_json`` a parsed object; ``to_json`` returns a dict in wire key order and
``serialize`` compact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import jsonwire
from .b64 import b64decode, b64decode_fixed
from .errors import LengthError, MissingField, OutOfRange, WrongType
from .jsonwire import JsonValue, json_type
from .primitives import HASH_LEN, NONCE_LEN, SALT_LEN, TAG_LEN, X25519_KEY_LEN

U64_MAX = 2**64 - 1


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _require_object(value: JsonValue, where: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise WrongType(f"must be a JSON object, got {json_type(value)}", field=where or None)
    return value


def _str(obj: dict[str, JsonValue], key: str, prefix: str, *, required: bool = True) -> str | None:
    value = obj.get(key, _ABSENT)
    if type(value) is str:  # the common case first: the field's name is only built for an error
        return value
    if value is _ABSENT:
        if required:
            raise MissingField("is required but missing", field=_path(prefix, key))
        return None
    if value is None and not required:
        return None
    if isinstance(value, str):
        return value
    raise WrongType(f"must be a string, got {json_type(value)}", field=_path(prefix, key))


_ABSENT = object()


def _int(
    obj: dict[str, JsonValue], key: str, prefix: str, *, required: bool = True, maximum: int = U64_MAX
) -> int | None:
    where = _path(prefix, key)
    if key not in obj:
        if required:
            raise MissingField("is required but missing", field=where)
        return None
    value = obj[key]
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(f"must be an integer, got {json_type(value)}", field=where)
    if not 0 <= value <= maximum:
        raise OutOfRange(f"must be an integer in [0, {maximum}]", field=where)
    return value


def _bool(obj: dict[str, JsonValue], key: str, prefix: str) -> bool | None:
    where = _path(prefix, key)
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise WrongType(f"must be a boolean or null, got {json_type(value)}", field=where)
    return value


def _put_optional(out: dict[str, JsonValue], key: str, value: JsonValue) -> None:
    if value is not None:
        out[key] = value


# --- lock -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockRequest:
    """Body of ``POST /v1/nodes/lock``."""

    model: str
    max_num_tokens: int | None = None
    timeout: int | None = None

    @classmethod
    def from_json(cls, obj: JsonValue) -> LockRequest:
        o = _require_object(obj, "")
        model = _str(o, "model", "")
        assert model is not None
        return cls(model, _int(o, "max_num_tokens", "", required=False), _int(o, "timeout", "", required=False))

    @classmethod
    def parse(cls, data: bytes) -> LockRequest:
        return cls.from_json(jsonwire.loads(data))

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"model": self.model}
        _put_optional(out, "max_num_tokens", self.max_num_tokens)
        _put_optional(out, "timeout", self.timeout)
        return out

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())


@dataclass(frozen=True, slots=True)
class LockResponse:
    """Reply of ``POST /v1/nodes/lock``. ``stack_entry_digest`` is always serialized, possibly null."""

    public_key: str
    node_small_id: int
    stack_entry_digest: str | None
    stack_small_id: int

    @classmethod
    def from_json(cls, obj: JsonValue) -> LockResponse:
        o = _require_object(obj, "")
        public_key = _str(o, "public_key", "")
        node_small_id = _int(o, "node_small_id", "")
        stack_small_id = _int(o, "stack_small_id", "")
        assert public_key is not None and node_small_id is not None and stack_small_id is not None
        return cls(public_key, node_small_id, _str(o, "stack_entry_digest", "", required=False), stack_small_id)

    @classmethod
    def parse(cls, data: bytes) -> LockResponse:
        return cls.from_json(jsonwire.loads(data))

    def node_public_key(self) -> bytes:
        """The node's X25519 key, strictly decoded and exactly 32 bytes."""
        return b64decode_fixed(self.public_key, X25519_KEY_LEN, field="public_key")

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "public_key": self.public_key,
            "node_small_id": self.node_small_id,
            "stack_entry_digest": self.stack_entry_digest,
            "stack_small_id": self.stack_small_id,
        }

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())


# --- request ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """The binary fields of a request, strictly decoded with their exact lengths checked."""

    ciphertext: bytes
    client_dh_public_key: bytes
    node_dh_public_key: bytes
    nonce: bytes
    plaintext_body_hash: bytes
    salt: bytes


# The fixed-length binary members of a request and their decoded lengths, in the order the spec lists
# them (R3.5 to R3.9): the node's decode and the client judge read the same table.
REQUEST_FIELD_LENGTHS: dict[str, int] = {
    "plaintext_body_hash": HASH_LEN,
    "salt": SALT_LEN,
    "nonce": NONCE_LEN,
    "client_dh_public_key": X25519_KEY_LEN,
    "node_dh_public_key": X25519_KEY_LEN,
}


@dataclass(frozen=True, slots=True)
class ConfidentialComputeRequest:
    """The encrypted request body sent to ``/v1/confidential/*``.

    Optional fields set to ``None`` are omitted when serialized, which is what both SDKs do for an
    unset ``num_compute_units``.
    """

    ciphertext: str
    client_dh_public_key: str
    model_name: str
    node_dh_public_key: str
    nonce: str
    plaintext_body_hash: str
    salt: str
    stack_small_id: int
    num_compute_units: int | None = None
    stream: bool | None = None

    REQUIRED = (
        "ciphertext",
        "client_dh_public_key",
        "model_name",
        "node_dh_public_key",
        "nonce",
        "plaintext_body_hash",
        "salt",
        "stack_small_id",
    )

    @classmethod
    def from_json(cls, obj: JsonValue) -> ConfidentialComputeRequest:
        o = _require_object(obj, "")
        strings = {k: _str(o, k, "") for k in cls.REQUIRED if k != "stack_small_id"}
        stack = _int(o, "stack_small_id", "")
        assert stack is not None
        return cls(
            ciphertext=strings["ciphertext"] or "",
            client_dh_public_key=strings["client_dh_public_key"] or "",
            model_name=strings["model_name"] or "",
            node_dh_public_key=strings["node_dh_public_key"] or "",
            nonce=strings["nonce"] or "",
            plaintext_body_hash=strings["plaintext_body_hash"] or "",
            salt=strings["salt"] or "",
            stack_small_id=stack,
            num_compute_units=_int(o, "num_compute_units", "", required=False),
            stream=_bool(o, "stream", ""),
        )

    @classmethod
    def parse(cls, data: bytes) -> ConfidentialComputeRequest:
        return cls.from_json(jsonwire.loads(data))

    def decode(self) -> DecodedRequest:
        """Strict base64 and exact lengths, checked in the order the spec lists the fields."""
        fixed = {
            name: b64decode_fixed(getattr(self, name), length, field=name)
            for name, length in REQUEST_FIELD_LENGTHS.items()
        }
        plaintext_body_hash, salt, nonce = fixed["plaintext_body_hash"], fixed["salt"], fixed["nonce"]
        client, node = fixed["client_dh_public_key"], fixed["node_dh_public_key"]
        ciphertext = b64decode(self.ciphertext, field="ciphertext")
        if len(ciphertext) < TAG_LEN:
            raise LengthError(
                f"decodes to {len(ciphertext)} bytes, shorter than the {TAG_LEN}-byte GCM tag", field="ciphertext"
            )
        return DecodedRequest(ciphertext, client, node, nonce, plaintext_body_hash, salt)

    def to_json(self) -> dict[str, JsonValue]:
        """Keys in alphabetical order, as both official SDKs send them."""
        out: dict[str, JsonValue] = {
            "ciphertext": self.ciphertext,
            "client_dh_public_key": self.client_dh_public_key,
            "model_name": self.model_name,
            "node_dh_public_key": self.node_dh_public_key,
            "nonce": self.nonce,
        }
        _put_optional(out, "num_compute_units", self.num_compute_units)
        out["plaintext_body_hash"] = self.plaintext_body_hash
        out["salt"] = self.salt
        out["stack_small_id"] = self.stack_small_id
        _put_optional(out, "stream", self.stream)
        return out

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())


# --- usage ------------------------------------------------------------------------------------------

_COMPLETION_DETAILS = ("accepted_prediction_tokens", "audio_tokens", "reasoning_tokens", "rejected_prediction_tokens")
_PROMPT_DETAILS = ("audio_tokens", "cached_tokens")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting. ``raw`` keeps the exact JSON value so clear and encrypted copies compare exactly.

    ``completion_tokens`` is optional because embeddings report only prompt and total tokens.
    """

    prompt_tokens: int
    total_tokens: int
    completion_tokens: int | None = None
    completion_tokens_details: dict[str, int | None] | None = None
    prompt_tokens_details: dict[str, int | None] | None = None
    raw: dict[str, JsonValue] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, obj: JsonValue, *, where: str = "usage") -> Usage:
        o = _require_object(obj, where)
        prompt = _int(o, "prompt_tokens", where)
        total = _int(o, "total_tokens", where)
        assert prompt is not None and total is not None
        completion = _int(o, "completion_tokens", where, required=False)
        return cls(
            prompt_tokens=prompt,
            total_tokens=total,
            completion_tokens=completion,
            completion_tokens_details=_details(o, "completion_tokens_details", _COMPLETION_DETAILS, where),
            prompt_tokens_details=_details(o, "prompt_tokens_details", _PROMPT_DETAILS, where),
            raw=dict(o),
        )

    def to_json(self) -> dict[str, JsonValue]:
        if self.raw:
            return dict(self.raw)
        out: dict[str, JsonValue] = {"prompt_tokens": self.prompt_tokens}
        _put_optional(out, "completion_tokens", self.completion_tokens)
        out["total_tokens"] = self.total_tokens
        _put_optional(out, "completion_tokens_details", self.completion_tokens_details)
        _put_optional(out, "prompt_tokens_details", self.prompt_tokens_details)
        return out


def _details(o: dict[str, JsonValue], key: str, names: tuple[str, ...], prefix: str) -> dict[str, int | None] | None:
    where = _path(prefix, key)
    value = o.get(key)
    if value is None:
        return None
    d = _require_object(value, where)
    return {name: _int(d, name, where, required=False) for name in names if name in d}


def _usage(o: dict[str, JsonValue]) -> Usage | None:
    value = o.get("usage")
    return None if value is None else Usage.from_json(value)


# --- responses --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfidentialComputeResponse:
    """A non-streaming encrypted response.

    ``response_hash`` and ``signature`` are modelled as optional because the official SDKs' schema
    allows null; whether a node *must* send them is a conformance check, not a parse error.
    """

    nonce: str
    ciphertext: str
    response_hash: str | None = None
    signature: str | None = None
    usage: Usage | None = None

    @classmethod
    def from_json(cls, obj: JsonValue) -> ConfidentialComputeResponse:
        o = _require_object(obj, "")
        nonce, ciphertext = _str(o, "nonce", ""), _str(o, "ciphertext", "")
        assert nonce is not None and ciphertext is not None
        return cls(
            nonce=nonce,
            ciphertext=ciphertext,
            response_hash=_str(o, "response_hash", "", required=False),
            signature=_str(o, "signature", "", required=False),
            usage=_usage(o),
        )

    @classmethod
    def parse(cls, data: bytes) -> ConfidentialComputeResponse:
        return cls.from_json(jsonwire.loads(data))

    def to_json(self) -> dict[str, JsonValue]:
        """Upstream key order: nonce, ciphertext, response_hash, signature[, usage]."""
        out: dict[str, JsonValue] = {
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
            "response_hash": self.response_hash,
            "signature": self.signature,
        }
        if self.usage is not None:
            out["usage"] = self.usage.to_json()
        return out

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One SSE event's envelope: ``{"ciphertext","nonce"[,"usage"],"signature","response_hash"}``."""

    ciphertext: str
    nonce: str
    signature: str | None = None
    response_hash: str | None = None
    usage: Usage | None = None

    @classmethod
    def from_json(cls, obj: JsonValue) -> StreamChunk:
        o = _require_object(obj, "")
        ciphertext, nonce = _str(o, "ciphertext", ""), _str(o, "nonce", "")
        assert nonce is not None and ciphertext is not None
        return cls(
            ciphertext=ciphertext,
            nonce=nonce,
            signature=_str(o, "signature", "", required=False),
            response_hash=_str(o, "response_hash", "", required=False),
            usage=_usage(o),
        )

    @classmethod
    def parse(cls, data: bytes) -> StreamChunk:
        return cls.from_json(jsonwire.loads(data))

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"ciphertext": self.ciphertext, "nonce": self.nonce}
        if self.usage is not None:
            out["usage"] = self.usage.to_json()
        out["signature"] = self.signature
        out["response_hash"] = self.response_hash
        return out

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())

    def sse_event(self) -> bytes:
        """The exact SSE event bytes: ``data: <json>\\n\\n``."""
        return b"data: " + self.serialize() + b"\n\n"


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """``{"error":{"code":...,"message":...}}``, the node's and proxy's JSON error shape."""

    code: str
    message: str

    @classmethod
    def from_json(cls, obj: JsonValue) -> ErrorBody:
        o = _require_object(obj, "")
        if "error" not in o:
            raise MissingField("is required but missing", field="error")
        inner = _require_object(o["error"], "error")
        code, message = _str(inner, "code", "error"), _str(inner, "message", "error")
        assert code is not None and message is not None
        return cls(code, message)

    @classmethod
    def parse(cls, data: bytes) -> ErrorBody:
        return cls.from_json(jsonwire.loads(data))

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def serialize(self) -> bytes:
        return jsonwire.dumps(self.to_json())
