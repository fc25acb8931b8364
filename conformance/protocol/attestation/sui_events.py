"""A node's key commitments and the network's key rotations, as a Sui full node reports them.

What a client needs to check the key a lock hands out (research note protocol.md §11): the node's
latest ``NodePublicKeyCommittmentEvent`` (its X25519 key and the evidence that binds it) and the
``NewKeyRotationEvent`` of the same ``key_rotation_counter`` (the contract nonce the evidence's report
nonce is derived from). This module builds the JSON-RPC bodies that ask a full node for them and reads
the answers into typed values; the adapter only moves bytes.

Upstream, as read (atoma-contracts ``sui/packages/atoma/sources/db.move``; atoma-node
``atoma-sui/src/events.rs`` and ``subscriber.rs``): both events are Move structs of the ``db`` module
(``DB_MODULE_NAME``), so their types are ``<package>::db::NewKeyRotationEvent`` and
``<package>::db::NodePublicKeyCommittmentEvent`` (the contract's spelling, double t)::

    NewKeyRotationEvent            { key_rotation_counter: u64, epoch: u64, nonce: u64 }
    NodePublicKeyCommittmentEvent  { epoch: u64, key_rotation_counter: u64, node_id: NodeSmallId,
                                     new_public_key: vector<u8>, device_type: u16,
                                     evidence_bytes: vector<u8> }
    NodeSmallId                    { inner: u64 }

A full node writes a Move value into ``parsedJson`` as ``SuiMoveValue`` does (sui-json-rpc-types
``sui_move.rs``): u8, u16 and u32 as JSON numbers, u64 and wider as *decimal strings*, a vector as a
JSON array (``vector<u8>`` as an array of numbers), and a struct as an object of its fields in
alphabetical order. So ``node_id`` is ``{"inner": "7"}`` and ``device_type`` is ``300``. A page of
``suix_queryEvents`` is ``{"data": [event...], "nextCursor": {"txDigest", "eventSeq"} | null,
"hasNextPage": bool}`` and an event is ``{"id", "packageId", "transactionModule", "sender", "type",
"parsedJson", "bcsEncoding", "bcs", "timestampMs"?}`` (Sui's OpenRPC ``suix_queryEvents`` example).

The answer comes from whatever RPC server the operator points at, so it is hostile input, read
strictly and bounded:

- the body is refused past :data:`MAX_SUI_RESPONSE_BYTES` before it is parsed, a page may hold no more
  events than were asked for (at most :data:`MAX_EVENT_PAGE_LIMIT`, Sui's own cap), and a byte vector no
  more than :data:`MAX_EVENT_BYTES` (Sui's ``max_event_emit_size``: no event on chain is larger);
- u64 strings must be canonical decimals (``s.parse::<u64>()`` upstream also takes ``+7`` and
  ``007``: one value, one spelling), byte arrays integers 0 to 255 (never ``true``), identifiers and
  digests short and of their alphabet, and JSON keys never duplicated (:mod:`..jsonwire`);
- an event whose ``type`` is not the type asked for is refused, not skipped: a server that answers
  another filter than the one asked is not one to take keys from. Unknown members are ignored, as
  serde does (full nodes have added members such as ``bcsEncoding`` over time).

Every refusal is a :class:`~conformance.protocol.errors.ProtocolError` naming the field at fault
(``result.data[2].parsedJson.new_public_key``).

The ``GET /v1/get_node_attestation/{id}`` answer of the proxy service (atoma-proxy
``atoma-proxy-service/src/handlers/nodes.rs``; ``NodeAttestation`` in ``atoma-state/src/types.rs``:
``{"node_small_id": i64, "compressed_evidence": [u8...]}``) is read here too: it is the same evidence,
without the key.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

from .. import jsonwire
from ..b64 import b64encode
from ..errors import LengthError, MissingField, OutOfRange, ProtocolError, WrongType
from ..jsonwire import json_type
from .binding import NODE_PUBLIC_KEY_LEN
from .errors import EvidenceTooLarge

DB_MODULE = "db"
EventName = Literal["NodePublicKeyCommittmentEvent", "NewKeyRotationEvent"]
COMMITMENT_EVENT: Final = "NodePublicKeyCommittmentEvent"
ROTATION_EVENT: Final = "NewKeyRotationEvent"
EVENT_NAMES: tuple[EventName, ...] = (COMMITMENT_EVENT, ROTATION_EVENT)
SUI_QUERY_EVENTS = "suix_queryEvents"
SUI_GET_OBJECT = "sui_getObject"

MAX_EVENT_PAGE_LIMIT = 50  # Sui's QUERY_MAX_RESULT_LIMIT: a full node never pages more events than this
EVENT_PAGE_LIMIT = MAX_EVENT_PAGE_LIMIT
# Each commitment carries its evidence (about 8 KB a GPU, 12 devices on a PPCIe node): a short page keeps a
# page's JSON under jsonwire's item cap even for the largest real nodes.
COMMITMENT_PAGE_LIMIT = 8
MAX_EVENT_PAGES = 16  # pages of one event type a KeyScan reads before it gives up looking
MAX_SUI_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_EVENT_BYTES = 256_000  # Sui's max_event_emit_size: the BCS of one event, so of any byte vector in it
MAX_TYPE_LEN = 512
MAX_DIGEST_LEN = 44  # base58 of 32 bytes
MAX_IDENTIFIER_LEN = 128  # Move identifiers
MAX_RPC_MESSAGE_LEN = 200

_U16_MAX = 2**16 - 1
_U64_MAX = 2**64 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{1,64}")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"(0x[0-9a-fA-F]{1,64})::([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)")


# --- errors -----------------------------------------------------------------------------------------


class SuiRecordError(ProtocolError):
    """Base class: a full node's (or the proxy service's) answer about keys was refused."""

    code = "SUI_RECORD_INVALID"


class SuiRpcError(SuiRecordError):
    """The server answered with a JSON-RPC error object; ``rpc_code`` is its code, ``rpc_message`` its
    message made printable and cut short (it is the server's text, shown only as such)."""

    code = "SUI_RPC_ERROR"

    def __init__(self, reason: str, *, field: str | None = None, rpc_code: int = 0, rpc_message: str = "") -> None:
        super().__init__(reason, field=field)
        self.rpc_code = rpc_code
        self.rpc_message = rpc_message


class SuiRpcMismatch(SuiRecordError):
    """The answer is not JSON-RPC 2.0, or answers another request (its ``id``)."""

    code = "SUI_RPC_MISMATCH"


class SuiResponseTooLarge(SuiRecordError):
    """The body, or the page in it, is larger than anything this reader asked for."""

    code = "SUI_RESPONSE_TOO_LARGE"


class SuiEventTypeMismatch(SuiRecordError):
    """An event's ``type`` is not the Move event type the query filtered on."""

    code = "SUI_EVENT_TYPE_MISMATCH"


class SuiEventDuplicate(SuiRecordError):
    """One event id twice in a page, or twice with different contents across pages."""

    code = "SUI_EVENT_DUPLICATE"


class SuiPackageNotFound(SuiRecordError):
    """The object asked for does not exist or is not a Move package."""

    code = "SUI_PACKAGE_NOT_FOUND"


class NodeMismatch(SuiRecordError):
    """The record names another node than the one asked about."""

    code = "RECORD_NODE_MISMATCH"


class CommitmentNotFound(SuiRecordError):
    """The node has no key commitment among the events read."""

    code = "KEY_COMMITMENT_NOT_FOUND"


class CommitmentAmbiguous(SuiRecordError):
    """Two different commitments of the node share its highest ``key_rotation_counter``."""

    code = "KEY_COMMITMENT_AMBIGUOUS"


class RotationNotFound(SuiRecordError):
    """No key rotation event has the counter of the node's latest commitment: no contract nonce."""

    code = "KEY_ROTATION_NOT_FOUND"


class RotationAmbiguous(SuiRecordError):
    """Two different key rotation events share one counter (the contract increments it every time)."""

    code = "KEY_ROTATION_AMBIGUOUS"


# --- values -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SuiEventId:
    """An event's id, and the cursor of ``suix_queryEvents``: its transaction and its index in it."""

    tx_digest: str
    event_seq: int

    def to_json(self) -> dict[str, str]:
        return {"txDigest": self.tx_digest, "eventSeq": str(self.event_seq)}


@dataclass(frozen=True, slots=True)
class KeyCommitment:
    """A ``NodePublicKeyCommittmentEvent``: node ``node_small_id`` committed ``new_public_key`` at
    ``key_rotation_counter``, with ``evidence_bytes`` (zlib JSON, :mod:`.evidence`) binding it."""

    epoch: int
    key_rotation_counter: int
    node_small_id: int
    new_public_key: bytes
    device_type: int
    evidence_bytes: bytes
    timestamp_ms: int | None
    event_id: SuiEventId
    sender: str

    def parsed_json(self) -> dict[str, Any]:
        """The event's ``parsedJson`` as a full node writes it (fields in alphabetical order)."""
        return {
            "device_type": self.device_type,
            "epoch": str(self.epoch),
            "evidence_bytes": list(self.evidence_bytes),
            "key_rotation_counter": str(self.key_rotation_counter),
            "new_public_key": list(self.new_public_key),
            "node_id": {"inner": str(self.node_small_id)},
        }

    def bcs(self) -> bytes:
        """The event's BCS: its fields in declaration order (db.move)."""
        return (
            struct.pack("<QQQ", self.epoch, self.key_rotation_counter, self.node_small_id)
            + _bcs_bytes(self.new_public_key)
            + struct.pack("<H", self.device_type)
            + _bcs_bytes(self.evidence_bytes)
        )

    def to_event(self, package_id: str) -> dict[str, Any]:
        return _event_json(
            self.event_id, package_id, self.sender, COMMITMENT_EVENT, self.parsed_json(), self.bcs(), self
        )


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """A ``NewKeyRotationEvent``: the network's ``key_rotation_counter`` moved on, with ``nonce``."""

    epoch: int
    key_rotation_counter: int
    nonce: int
    timestamp_ms: int | None
    event_id: SuiEventId
    sender: str

    def parsed_json(self) -> dict[str, Any]:
        return {
            "epoch": str(self.epoch),
            "key_rotation_counter": str(self.key_rotation_counter),
            "nonce": str(self.nonce),
        }

    def bcs(self) -> bytes:
        return struct.pack("<QQQ", self.key_rotation_counter, self.epoch, self.nonce)

    def to_event(self, package_id: str) -> dict[str, Any]:
        return _event_json(self.event_id, package_id, self.sender, ROTATION_EVENT, self.parsed_json(), self.bcs(), self)


ChainEvent = KeyCommitment | KeyRotation
E = TypeVar("E", KeyCommitment, KeyRotation)


@dataclass(frozen=True)
class SuiEventPage(Generic[E]):
    """One page of ``suix_queryEvents``."""

    events: tuple[E, ...]
    next_cursor: SuiEventId | None
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class KeySelection:
    """The node's latest commitment, the rotation that gives its contract nonce, and the highest
    rotation counter seen (``behind``: the network has rotated since the node last committed)."""

    commitment: KeyCommitment
    rotation: KeyRotation
    latest_rotation_counter: int

    @property
    def contract_nonce(self) -> int:
        return self.rotation.nonce

    @property
    def behind(self) -> bool:
        return self.commitment.key_rotation_counter < self.latest_rotation_counter


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """A :class:`KeyScan`'s reading of the chain about one node, before any rule judges it.

    ``latest`` holds the node's commitments at its highest counter (one, unless the chain is
    ambiguous; none when the node committed nothing that was read), ``rotations`` the rotation events
    of that counter (one gives the contract nonce), ``latest_rotation_counter`` the highest rotation
    read, ``holder`` the newest commitment of the node holding the watched key (the key a lock handed
    out), and ``events_seen`` how many commitments of any node were read.
    """

    node_small_id: int
    latest: tuple[KeyCommitment, ...]
    rotations: tuple[KeyRotation, ...]
    latest_rotation_counter: int | None
    holder: KeyCommitment | None
    truncated: bool
    events_seen: int

    @property
    def commitment(self) -> KeyCommitment | None:
        """The node's latest commitment when the chain names exactly one."""
        return self.latest[0] if len(self.latest) == 1 else None

    @property
    def rotation(self) -> KeyRotation | None:
        return self.rotations[0] if len(self.rotations) == 1 else None


# --- requests ---------------------------------------------------------------------------------------


def normalize_sui_address(text: str, *, field: str = "address") -> str:
    """A Sui address or object id as full nodes write it: ``0x`` and 64 lowercase hex digits."""
    if type(text) is not str or not _HEX_ADDRESS.fullmatch(text):
        raise WrongType("must be 0x and 1 to 64 hex digits (a Sui address)", field=field)
    return "0x" + text[2:].lower().rjust(64, "0")


def sui_event_type(package_id: str, event: str) -> str:
    """The Move type of one of the two events, ``<package>::db::<event>``, its address written in full."""
    if event not in EVENT_NAMES:
        raise ValueError(f"event must be one of {', '.join(EVENT_NAMES)}")
    return f"{normalize_sui_address(package_id, field='package_id')}::{DB_MODULE}::{event}"


def query_events_request(
    package_id: str,
    event: str,
    *,
    cursor: SuiEventId | None = None,
    limit: int = EVENT_PAGE_LIMIT,
    descending: bool = True,
    request_id: int = 1,
) -> bytes:
    """The body of a ``suix_queryEvents`` call filtered on ``MoveEventType``, positional parameters
    ``[query, cursor, limit, descending_order]`` as Sui's SDKs send them."""
    if type(limit) is not int or not 1 <= limit <= MAX_EVENT_PAGE_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_EVENT_PAGE_LIMIT}")
    params = [
        {"MoveEventType": sui_event_type(package_id, event)},
        None if cursor is None else cursor.to_json(),
        limit,
        bool(descending),
    ]
    return jsonwire.dumps({"jsonrpc": "2.0", "id": request_id, "method": SUI_QUERY_EVENTS, "params": params})


def get_object_request(object_id: str, *, request_id: int = 1) -> bytes:
    """The body of a ``sui_getObject`` call asking for the object's type (is the package there?)."""
    params = [normalize_sui_address(object_id, field="object_id"), {"showType": True}]
    return jsonwire.dumps({"jsonrpc": "2.0", "id": request_id, "method": SUI_GET_OBJECT, "params": params})


# --- answers ----------------------------------------------------------------------------------------


def sui_rpc_result(body: bytes, *, request_id: int) -> object:
    """The ``result`` of a JSON-RPC 2.0 answer to request ``request_id``, or the refusal of it."""
    answer = _load(body)
    if answer.get("jsonrpc") != "2.0":
        raise SuiRpcMismatch('must be "2.0"', field="jsonrpc")
    if "id" not in answer:
        raise MissingField("is required but missing", field="id")
    if type(answer["id"]) is not int or answer["id"] != request_id:
        raise SuiRpcMismatch("is not the id of the request this answers", field="id")
    if "error" in answer:
        raise _rpc_error(answer["error"])
    if "result" not in answer:
        raise MissingField("is required but missing (and no error was given)", field="result")
    return answer["result"]


def _load(body: bytes) -> dict[str, Any]:
    """The answer's JSON object, refused unparsed when the body is larger than any answer needs."""
    if len(body) > MAX_SUI_RESPONSE_BYTES:
        raise SuiResponseTooLarge(
            f"is {len(body):,} bytes, more than the {MAX_SUI_RESPONSE_BYTES:,} allowed", field="body"
        )
    return jsonwire.loads_object(body, field="body")


def _rpc_error(error: object) -> SuiRpcError:
    if not isinstance(error, dict):
        raise WrongType(f"must be a JSON object, got {json_type(error)}", field="error")
    code = error.get("code")
    if type(code) is not int:
        raise WrongType("must be an integer", field="error.code")
    message = error.get("message")
    text = message[:MAX_RPC_MESSAGE_LEN] if isinstance(message, str) else ""
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return SuiRpcError(
        f"the server answered JSON-RPC error {code}", field="error", rpc_code=code, rpc_message=printable
    )


def parse_commitment_page(
    body: bytes, *, package_id: str, request_id: int = 1, limit: int = COMMITMENT_PAGE_LIMIT
) -> SuiEventPage[KeyCommitment]:
    """A ``suix_queryEvents`` answer filtered on ``NodePublicKeyCommittmentEvent``."""
    return _page(body, sui_event_type(package_id, COMMITMENT_EVENT), request_id, limit, _commitment)


def parse_rotation_page(
    body: bytes, *, package_id: str, request_id: int = 1, limit: int = EVENT_PAGE_LIMIT
) -> SuiEventPage[KeyRotation]:
    """A ``suix_queryEvents`` answer filtered on ``NewKeyRotationEvent``."""
    return _page(body, sui_event_type(package_id, ROTATION_EVENT), request_id, limit, _rotation)


@dataclass(frozen=True, slots=True)
class _Meta:
    event_id: SuiEventId
    sender: str
    timestamp_ms: int | None


def _page(
    body: bytes,
    expected_type: str,
    request_id: int,
    limit: int,
    read: Callable[[dict[str, Any], _Meta, str], E],
) -> SuiEventPage[E]:
    if type(limit) is not int or not 1 <= limit <= MAX_EVENT_PAGE_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_EVENT_PAGE_LIMIT}")
    result = _object(sui_rpc_result(body, request_id=request_id), "result")
    data = _member(result, "data", "result")
    if not isinstance(data, list):
        raise WrongType(f"must be a JSON array, got {json_type(data)}", field="result.data")
    if len(data) > limit:
        raise SuiResponseTooLarge(f"holds {len(data)} events, more than the {limit} asked for", field="result.data")
    events: list[E] = []
    seen: set[SuiEventId] = set()
    for i, item in enumerate(data):
        where = f"result.data[{i}]"
        event, meta = _event(item, expected_type, where)
        if meta.event_id in seen:
            raise SuiEventDuplicate("repeats the id of an earlier event of the page", field=f"{where}.id")
        seen.add(meta.event_id)
        events.append(read(event, meta, f"{where}.parsedJson"))
    cursor = _member(result, "nextCursor", "result", required=False)
    next_cursor = None if cursor is None else _event_id(cursor, "result.nextCursor")
    has_next = _member(result, "hasNextPage", "result")
    if type(has_next) is not bool:
        raise WrongType(f"must be a boolean, got {json_type(has_next)}", field="result.hasNextPage")
    return SuiEventPage(tuple(events), next_cursor, has_next)


def _event(item: object, expected_type: str, where: str) -> tuple[dict[str, Any], _Meta]:
    """An event's envelope, checked; returns its ``parsedJson`` object and what the typed value keeps."""
    event = _object(item, where)
    event_id = _event_id(_member(event, "id", where), f"{where}.id")
    normalize_sui_address(_string(event, "packageId", where, 66), field=f"{where}.packageId")
    module = _string(event, "transactionModule", where, MAX_IDENTIFIER_LEN)
    if not _IDENTIFIER.fullmatch(module):
        raise WrongType("must be a Move identifier", field=f"{where}.transactionModule")
    sender = normalize_sui_address(_string(event, "sender", where, 66), field=f"{where}.sender")
    type_ = _string(event, "type", where, MAX_TYPE_LEN)
    match = _TYPE.fullmatch(type_)
    if match is None:
        raise SuiEventTypeMismatch("is not a Move struct type <address>::<module>::<name>", field=f"{where}.type")
    address, module_name, name = match.groups()
    if f"{normalize_sui_address(address)}::{module_name}::{name}" != expected_type:
        raise SuiEventTypeMismatch("is not the event type the query filtered on", field=f"{where}.type")
    parsed = _object(_member(event, "parsedJson", where), f"{where}.parsedJson")
    stamp = _member(event, "timestampMs", where, required=False)
    timestamp = None if stamp is None else _u64(stamp, f"{where}.timestampMs")
    return parsed, _Meta(event_id, sender, timestamp)


def _commitment(parsed: dict[str, Any], meta: _Meta, where: str) -> KeyCommitment:
    node_id = _object(_member(parsed, "node_id", where), f"{where}.node_id")
    key = _byte_vector(_member(parsed, "new_public_key", where), f"{where}.new_public_key")
    if len(key) != NODE_PUBLIC_KEY_LEN:
        raise LengthError(
            f"is {len(key)} bytes, an X25519 public key is {NODE_PUBLIC_KEY_LEN}", field=f"{where}.new_public_key"
        )
    device_type = _member(parsed, "device_type", where)
    if type(device_type) is not int:
        raise WrongType(f"must be a JSON number (a u16), got {json_type(device_type)}", field=f"{where}.device_type")
    if not 0 <= device_type <= _U16_MAX:
        raise OutOfRange(f"must be from 0 to {_U16_MAX}", field=f"{where}.device_type")
    return KeyCommitment(
        epoch=_u64(_member(parsed, "epoch", where), f"{where}.epoch"),
        key_rotation_counter=_u64(_member(parsed, "key_rotation_counter", where), f"{where}.key_rotation_counter"),
        node_small_id=_u64(_member(node_id, "inner", f"{where}.node_id"), f"{where}.node_id.inner"),
        new_public_key=key,
        device_type=device_type,
        evidence_bytes=_byte_vector(_member(parsed, "evidence_bytes", where), f"{where}.evidence_bytes", evidence=True),
        timestamp_ms=meta.timestamp_ms,
        event_id=meta.event_id,
        sender=meta.sender,
    )


def _rotation(parsed: dict[str, Any], meta: _Meta, where: str) -> KeyRotation:
    return KeyRotation(
        epoch=_u64(_member(parsed, "epoch", where), f"{where}.epoch"),
        key_rotation_counter=_u64(_member(parsed, "key_rotation_counter", where), f"{where}.key_rotation_counter"),
        nonce=_u64(_member(parsed, "nonce", where), f"{where}.nonce"),
        timestamp_ms=meta.timestamp_ms,
        event_id=meta.event_id,
        sender=meta.sender,
    )


def parse_package_object(body: bytes, *, package_id: str, request_id: int = 1) -> None:
    """Accept a ``sui_getObject`` answer only when it shows ``package_id`` to be a Move package."""
    expected = normalize_sui_address(package_id, field="package_id")
    result = _object(sui_rpc_result(body, request_id=request_id), "result")
    if result.get("error") is not None:
        raise SuiPackageNotFound("reports an error for the object instead of its data", field="result.error")
    data = _object(_member(result, "data", "result"), "result.data")
    object_id = normalize_sui_address(_string(data, "objectId", "result.data", 66), field="result.data.objectId")
    if object_id != expected:
        raise SuiPackageNotFound("is not the object asked for", field="result.data.objectId")
    if _string(data, "type", "result.data", MAX_TYPE_LEN) != "package":
        raise SuiPackageNotFound('is not "package": the object is not a Move package', field="result.data.type")


def parse_node_attestation(body: bytes, *, node_small_id: int) -> bytes:
    """The ``compressed_evidence`` of a ``GET /v1/get_node_attestation/{id}`` answer about ``node_small_id``."""
    answer = _load(body)
    node = _member(answer, "node_small_id", "")
    if type(node) is not int:
        raise WrongType(f"must be an integer, got {json_type(node)}", field="node_small_id")
    if not _I64_MIN <= node <= _I64_MAX:
        raise OutOfRange("must be a 64-bit signed integer", field="node_small_id")
    if node != node_small_id:
        raise NodeMismatch("is not the node asked about", field="node_small_id")
    return _byte_vector(_member(answer, "compressed_evidence", ""), "compressed_evidence", evidence=True)


def node_attestation_body(node_small_id: int, compressed_evidence: bytes) -> bytes:
    """The proxy service's answer, in ``NodeAttestation``'s field order."""
    return jsonwire.dumps({"node_small_id": node_small_id, "compressed_evidence": list(compressed_evidence)})


# --- the selection ----------------------------------------------------------------------------------


def select_key(
    commitments: Iterable[KeyCommitment], rotations: Iterable[KeyRotation], node_small_id: int
) -> KeySelection:
    """The latest commitment of ``node_small_id`` (the highest counter; two different ones there are
    refused as ambiguous) and the rotation event of that counter, whose nonce the evidence answers.

    Events read twice (pages overlap) are counted once; one id with two contents is refused.
    """
    mine = _distinct(c for c in commitments if c.node_small_id == node_small_id)
    if not mine:
        raise CommitmentNotFound(f"holds no commitment of node {node_small_id}", field=COMMITMENT_EVENT)
    top = max(c.key_rotation_counter for c in mine)
    latest = [c for c in mine if c.key_rotation_counter == top]
    if len(latest) > 1:
        raise CommitmentAmbiguous(
            f"holds {len(latest)} different commitments of node {node_small_id} at counter {top}",
            field=COMMITMENT_EVENT,
        )
    every = _distinct(rotations)
    matching = [r for r in every if r.key_rotation_counter == top]
    if not matching:
        raise RotationNotFound(f"holds no rotation with counter {top}: no contract nonce", field=ROTATION_EVENT)
    if len(matching) > 1:
        raise RotationAmbiguous(f"holds {len(matching)} different rotations with counter {top}", field=ROTATION_EVENT)
    return KeySelection(latest[0], matching[0], max(r.key_rotation_counter for r in every))


def _distinct(events: Iterable[E]) -> list[E]:
    by_id: dict[SuiEventId, E] = {}
    for event in events:
        known = by_id.setdefault(event.event_id, event)
        if known != event:
            raise SuiEventDuplicate("names two different events with one id", field="id")
    return list(by_id.values())


class KeyScan:
    """The reads that find a node's latest commitment and its rotation, sans-I/O.

    ``next_request()`` gives the body to POST to the full node (None when done), ``feed()`` takes the
    answer, and ``result()`` selects (:func:`select_key`). Both event types are read newest first; the
    commitments until one older than the node's latest shows (so a tie would have been seen), a tie
    shows, or the pages end; the rotations until one below that counter shows. Only the node's latest
    commitments are kept (memory stays at a page and a tie, whatever the server sends), and at most
    ``max_pages`` pages of each type are read (``truncated`` says that limit, not the answer, ended it).
    """

    def __init__(
        self,
        package_id: str,
        node_small_id: int,
        *,
        max_pages: int = MAX_EVENT_PAGES,
        commitment_limit: int = COMMITMENT_PAGE_LIMIT,
        rotation_limit: int = EVENT_PAGE_LIMIT,
        watch_key: bytes | None = None,
    ) -> None:
        self.package_id = normalize_sui_address(package_id, field="package_id")
        self.node_small_id = node_small_id
        self.watch_key = watch_key
        self.holder: KeyCommitment | None = None  # the newest commitment read of the node holding watch_key
        self.events_seen = 0  # commitments of any node read: none at all suggests a wrong package id
        self.max_pages = max_pages
        self._limits: dict[str, int] = {COMMITMENT_EVENT: commitment_limit, ROTATION_EVENT: rotation_limit}
        self._phase: EventName | Literal["done"] = COMMITMENT_EVENT
        self._cursor: SuiEventId | None = None
        self._pages = 0
        self._request_id = 0
        self._pending: int | None = None
        self.commitments: list[KeyCommitment] = []
        self.rotations: list[KeyRotation] = []
        self.truncated = False
        self._older = False  # a commitment of the node older than its latest has been read

    @property
    def done(self) -> bool:
        return self._phase == "done"

    def next_request(self) -> bytes | None:
        if self._phase == "done":
            return None
        if self._pending is not None:
            raise RuntimeError("feed() the answer to the previous request first")
        self._request_id += 1
        self._pending = self._request_id
        return query_events_request(
            self.package_id,
            self._phase,
            cursor=self._cursor,
            limit=self._limits[self._phase],
            descending=True,
            request_id=self._request_id,
        )

    def feed(self, body: bytes) -> None:
        if self._pending is None or self._phase == "done":
            raise RuntimeError("no request is waiting for an answer")
        request_id, self._pending = self._pending, None
        limit = self._limits[self._phase]
        settled: bool
        page: SuiEventPage[KeyCommitment] | SuiEventPage[KeyRotation]
        if self._phase == COMMITMENT_EVENT:
            page = parse_commitment_page(body, package_id=self.package_id, request_id=request_id, limit=limit)
            self.events_seen += len(page.events)
            fresh = [c for c in page.events if c.node_small_id == self.node_small_id]
            for c in fresh:
                if c.new_public_key == self.watch_key and (
                    self.holder is None or c.key_rotation_counter > self.holder.key_rotation_counter
                ):
                    self.holder = c
            mine = [*self.commitments, *fresh]
            top = max((c.key_rotation_counter for c in mine), default=None)
            self.commitments = [c for c in mine if c.key_rotation_counter == top]  # only the latest are kept
            self._older |= len(self.commitments) < len(mine)
            settled = self._older or len({c.event_id for c in self.commitments}) > 1  # a tie: ambiguous already
        else:
            page = parse_rotation_page(body, package_id=self.package_id, request_id=request_id, limit=limit)
            self.rotations += page.events
            settled = any(r.key_rotation_counter < self._target() for r in self.rotations)
        self._pages += 1
        self._cursor = page.next_cursor
        exhausted = not page.has_next_page or page.next_cursor is None
        if settled or exhausted or self._pages >= self.max_pages:
            self.truncated |= not (settled or exhausted)
            self._next_phase()

    def _target(self) -> int:
        return max(c.key_rotation_counter for c in self.commitments)

    def _next_phase(self) -> None:
        self._cursor, self._pages = None, 0
        if self._phase == COMMITMENT_EVENT and self.commitments:
            self._phase = ROTATION_EVENT
        else:
            self._phase = "done"

    def facts(self) -> KeyFacts:
        """What was read, without a verdict: every rule judges the part it needs (an ambiguous
        commitment does not stop the evidence from being judged, and a missing rotation does not stop
        the key from being compared)."""
        if self._phase != "done":
            raise RuntimeError("the scan is not finished: send next_request() and feed() its answer")
        latest = tuple(_distinct(self.commitments))
        counter = max((c.key_rotation_counter for c in latest), default=None)
        rotations = _distinct(self.rotations)
        matching = tuple(r for r in rotations if r.key_rotation_counter == counter)
        top = max((r.key_rotation_counter for r in rotations), default=None)
        return KeyFacts(self.node_small_id, latest, matching, top, self.holder, self.truncated, self.events_seen)

    def result(self) -> KeySelection:
        if self._phase != "done":
            raise RuntimeError("the scan is not finished: send next_request() and feed() its answer")
        return select_key(self.commitments, self.rotations, self.node_small_id)


# --- reading helpers --------------------------------------------------------------------------------


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WrongType(f"must be a JSON object, got {json_type(value)}", field=where)
    return value


def _member(item: dict[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    field = f"{where}.{key}" if where else key
    if key not in item:
        if required:
            raise MissingField("is required but missing", field=field)
        return None
    return item[key]


def _string(item: dict[str, Any], key: str, where: str, max_len: int) -> str:
    value = _member(item, key, where)
    field = f"{where}.{key}"
    if not isinstance(value, str):
        raise WrongType(f"must be a string, got {json_type(value)}", field=field)
    if len(value) > max_len:
        raise LengthError(f"is {len(value):,} characters, more than the {max_len} allowed", field=field)
    return value


def _u64(value: object, where: str) -> int:
    """A u64 as ``SuiMoveValue`` writes it: a canonical decimal string."""
    if not isinstance(value, str):
        raise WrongType(f"must be a decimal string (a u64), got {json_type(value)}", field=where)
    if not _DECIMAL.fullmatch(value):
        raise WrongType("must be a canonical decimal string (digits, no sign, no leading zero)", field=where)
    number = int(value)
    if number > _U64_MAX:
        raise OutOfRange(f"must be at most {_U64_MAX} (a u64)", field=where)
    return number


def _event_id(value: object, where: str) -> SuiEventId:
    item = _object(value, where)
    digest = _string(item, "txDigest", where, MAX_DIGEST_LEN)
    if not _BASE58.fullmatch(digest):
        raise WrongType("must be a base58 transaction digest", field=f"{where}.txDigest")
    return SuiEventId(digest, _u64(_member(item, "eventSeq", where), f"{where}.eventSeq"))


def _byte_vector(value: object, where: str, *, evidence: bool = False) -> bytes:
    """A ``vector<u8>``: a JSON array of integers 0 to 255, at most :data:`MAX_EVENT_BYTES` of them."""
    if not isinstance(value, list):
        raise WrongType(f"must be a JSON array of byte values, got {json_type(value)}", field=where)
    if len(value) > MAX_EVENT_BYTES:
        too_large = EvidenceTooLarge if evidence else LengthError
        raise too_large(f"holds {len(value):,} bytes, more than any Sui event can ({MAX_EVENT_BYTES:,})", field=where)
    if not all(type(x) is int for x in value):
        index = next(i for i, x in enumerate(value) if type(x) is not int)
        raise WrongType(f"must hold integers, got {json_type(value[index])}", field=f"{where}[{index}]")
    try:
        return bytes(value)
    except ValueError:
        index = next(i for i, x in enumerate(value) if not 0 <= x <= 255)
        raise OutOfRange("must be a byte value from 0 to 255", field=f"{where}[{index}]") from None


def _bcs_bytes(data: bytes) -> bytes:
    """A BCS ``vector<u8>``: the ULEB128 length, then the bytes."""
    n, prefix = len(data), bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        prefix.append(low | (0x80 if n else 0))
        if not n:
            return bytes(prefix) + data


def _event_json(
    event_id: SuiEventId,
    package_id: str,
    sender: str,
    name: str,
    parsed: dict[str, Any],
    bcs: bytes,
    event: ChainEvent,
) -> dict[str, Any]:
    """An event as ``suix_queryEvents`` lists it."""
    out: dict[str, Any] = {
        "id": event_id.to_json(),
        "packageId": normalize_sui_address(package_id, field="package_id"),
        "transactionModule": DB_MODULE,
        "sender": sender,
        "type": sui_event_type(package_id, name),
        "parsedJson": parsed,
        "bcsEncoding": "base64",
        "bcs": b64encode(bcs),
    }
    if event.timestamp_ms is not None:
        out["timestampMs"] = str(event.timestamp_ms)
    return out
