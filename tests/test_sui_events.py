"""The reader of key commitments and key rotations (conformance.protocol.attestation.sui_events).

A realistic full-node answer (the shape of Sui's OpenRPC ``suix_queryEvents`` example, with the
values ``SuiMoveValue`` writes for atoma's ``db`` events) parses into typed values; every malformed or
hostile variant is refused with its class and the field at fault; the latest commitment is chosen by
counter with its rotation's nonce; the request bodies are the exact bytes a full node expects.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest

from conformance.protocol import (
    COMMITMENT_EVENT,
    MAX_EVENT_BYTES,
    MAX_SUI_RESPONSE_BYTES,
    ROTATION_EVENT,
    CommitmentAmbiguous,
    CommitmentNotFound,
    EvidenceTooLarge,
    InvalidJson,
    KeyCommitment,
    KeyRotation,
    KeyScan,
    LengthError,
    MissingField,
    NodeMismatch,
    OutOfRange,
    ProtocolError,
    RotationAmbiguous,
    RotationNotFound,
    SuiEventDuplicate,
    SuiEventId,
    SuiEventTypeMismatch,
    SuiPackageNotFound,
    SuiResponseTooLarge,
    SuiRpcError,
    SuiRpcMismatch,
    WrongType,
    b64decode,
    get_object_request,
    jsonwire,
    node_attestation_body,
    normalize_sui_address,
    parse_commitment_page,
    parse_node_attestation,
    parse_package_object,
    parse_rotation_page,
    query_events_request,
    select_key,
    sui_event_type,
)

PACKAGE = "0x0c6a0d6fa4a4b6c5f1a2f3f7e0a1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d"
NODE_SENDER = "0x5d8f7cbf0e4c7b2b8f1d3a6e9c0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b"
KEY = bytes(range(32))
EVIDENCE = [120, 156, 139, 142, 5, 0, 0, 196, 0, 167]  # the head of a zlib stream: the reader does not inflate

# One page of NodePublicKeyCommittmentEvent, as a full node answers it.
COMMITMENT_PAGE = f"""{{
  "jsonrpc": "2.0",
  "id": 1,
  "result": {{
    "data": [
      {{
        "id": {{"txDigest": "8Xy3G8VnA7bU3Pz5cYh3yS1G2vq8kYVXq9tG4dJfJpZb", "eventSeq": "0"}},
        "packageId": "{PACKAGE}",
        "transactionModule": "db",
        "sender": "{NODE_SENDER}",
        "type": "{PACKAGE}::db::NodePublicKeyCommittmentEvent",
        "parsedJson": {{
          "device_type": 300,
          "epoch": "519",
          "evidence_bytes": {json.dumps(EVIDENCE)},
          "key_rotation_counter": "2",
          "new_public_key": {json.dumps(list(KEY))},
          "node_id": {{"inner": "7"}}
        }},
        "bcsEncoding": "base64",
        "bcs": "AAAA",
        "timestampMs": "1738368060000"
      }}
    ],
    "nextCursor": {{"txDigest": "8Xy3G8VnA7bU3Pz5cYh3yS1G2vq8kYVXq9tG4dJfJpZb", "eventSeq": "0"}},
    "hasNextPage": true
  }}
}}"""

ROTATION_PAGE = f"""{{"jsonrpc":"2.0","id":4,"result":{{"data":[{{
  "id":{{"txDigest":"3vQB7B6MrGQZaxCuFg4oh","eventSeq":"1"}},
  "packageId":"{PACKAGE}","transactionModule":"db",
  "sender":"0x000000000000000000000000000000000000000000000000000000000000a11c",
  "type":"{PACKAGE}::db::NewKeyRotationEvent",
  "parsedJson":{{"epoch":"519","key_rotation_counter":"2","nonce":"18446744073709551615"}},
  "bcsEncoding":"base64","bcs":""}}],
  "nextCursor":null,"hasNextPage":false}}}}"""


def commitment_doc() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(COMMITMENT_PAGE)
    return value


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def first(doc: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = doc["result"]["data"][0]
    return event


# --- a realistic answer -------------------------------------------------------------------------------


def test_a_realistic_commitment_page_parses() -> None:
    page = parse_commitment_page(COMMITMENT_PAGE.encode(), package_id=PACKAGE)
    (commitment,) = page.events
    assert commitment == KeyCommitment(
        epoch=519,
        key_rotation_counter=2,
        node_small_id=7,
        new_public_key=KEY,
        device_type=300,
        evidence_bytes=bytes(EVIDENCE),
        timestamp_ms=1_738_368_060_000,
        event_id=SuiEventId("8Xy3G8VnA7bU3Pz5cYh3yS1G2vq8kYVXq9tG4dJfJpZb", 0),
        sender=NODE_SENDER,
    )
    assert page.next_cursor == commitment.event_id and page.has_next_page


def test_a_realistic_rotation_page_parses() -> None:
    page = parse_rotation_page(ROTATION_PAGE.encode(), package_id=PACKAGE, request_id=4)
    (rotation,) = page.events
    assert (rotation.epoch, rotation.key_rotation_counter, rotation.nonce) == (519, 2, 2**64 - 1)
    assert rotation.timestamp_ms is None, "timestampMs is optional"
    assert rotation.sender == "0x" + "0" * 60 + "a11c"
    assert page.next_cursor is None and not page.has_next_page


def test_a_short_package_id_names_the_same_type() -> None:
    short = "0xa"
    doc = commitment_doc()
    first(doc)["type"] = "0xA::db::NodePublicKeyCommittmentEvent"
    first(doc)["packageId"] = short
    assert parse_commitment_page(body(doc), package_id="0x000a").events[0].node_small_id == 7
    assert normalize_sui_address("0xAb") == "0x" + "0" * 62 + "ab"
    assert sui_event_type("0x2", ROTATION_EVENT) == "0x" + "0" * 63 + "2::db::NewKeyRotationEvent"


def test_unknown_members_are_ignored_as_serde_does() -> None:
    doc = commitment_doc()
    first(doc)["checkpoint"] = "12"
    first(doc)["parsedJson"]["future"] = [1]
    doc["result"]["extra"] = None
    assert parse_commitment_page(body(doc), package_id=PACKAGE).events[0].epoch == 519


def test_encoders_round_trip_and_write_sui_shapes() -> None:
    (commitment,) = parse_commitment_page(COMMITMENT_PAGE.encode(), package_id=PACKAGE).events
    event = commitment.to_event(PACKAGE)
    assert list(event) == [
        *("id", "packageId", "transactionModule", "sender", "type", "parsedJson", "bcsEncoding", "bcs"),
        "timestampMs",
    ]
    assert list(event["parsedJson"]) == sorted(event["parsedJson"]), "a struct's fields, alphabetically"
    assert event["parsedJson"]["node_id"] == {"inner": "7"} and event["parsedJson"]["epoch"] == "519"
    # BCS in declaration order: epoch, counter, node id (u64 LE), the key (ULEB128 length), u16, evidence.
    assert b64decode(event["bcs"]) == (
        struct.pack("<QQQ", 519, 2, 7)
        + b"\x20"
        + KEY
        + struct.pack("<H", 300)
        + bytes([len(EVIDENCE)])
        + bytes(EVIDENCE)
    )
    page = {"jsonrpc": "2.0", "id": 9, "result": {"data": [event], "nextCursor": None, "hasNextPage": False}}
    assert parse_commitment_page(jsonwire.dumps(page), package_id=PACKAGE, request_id=9).events == (commitment,)
    (rotation,) = parse_rotation_page(ROTATION_PAGE.encode(), package_id=PACKAGE, request_id=4).events
    assert b64decode(rotation.to_event(PACKAGE)["bcs"]) == struct.pack("<QQQ", 2, 519, 2**64 - 1)
    long = KeyCommitment(1, 1, 1, KEY, 300, bytes(300), None, SuiEventId("1", 0), NODE_SENDER)
    assert b64decode(long.to_event(PACKAGE)["bcs"]).endswith(b"\xac\x02" + bytes(300)), "ULEB128 of 300"


# --- hostile and malformed answers ----------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]
PJ = "result.data[0].parsedJson"


def _set(path: str, value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return mutate


def _duplicate_event(doc: dict[str, Any]) -> None:
    doc["result"]["data"].append(copy.deepcopy(first(doc)))


EV = "result.data.0"
HOSTILE: dict[str, tuple[Mutation, type[ProtocolError], str]] = {
    "jsonrpc 1.0": (_set("jsonrpc", "1.0"), SuiRpcMismatch, "jsonrpc"),
    "another request's id": (_set("id", 2), SuiRpcMismatch, "id"),
    "id as a string": (_set("id", "1"), SuiRpcMismatch, "id"),
    "no id": (_delete("id"), MissingField, "id"),
    "no result": (_delete("result"), MissingField, "result"),
    "result not an object": (_set("result", []), WrongType, "result"),
    "data not an array": (_set("result.data", {}), WrongType, "result.data"),
    "no data": (_delete("result.data"), MissingField, "result.data"),
    "event not an object": (_set(EV, "event"), WrongType, "result.data[0]"),
    "no parsedJson": (_delete(f"{EV}.parsedJson"), MissingField, "result.data[0].parsedJson"),
    "parsedJson a string": (_set(f"{EV}.parsedJson", "x"), WrongType, "result.data[0].parsedJson"),
    "epoch as a number": (_set(f"{EV}.parsedJson.epoch", 519), WrongType, f"{PJ}.epoch"),
    "epoch with a leading zero": (_set(f"{EV}.parsedJson.epoch", "0519"), WrongType, f"{PJ}.epoch"),
    "epoch with a sign": (_set(f"{EV}.parsedJson.epoch", "+519"), WrongType, f"{PJ}.epoch"),
    "epoch empty": (_set(f"{EV}.parsedJson.epoch", ""), WrongType, f"{PJ}.epoch"),
    "counter past u64": (
        _set(f"{EV}.parsedJson.key_rotation_counter", "18446744073709551616"),
        OutOfRange,
        f"{PJ}.key_rotation_counter",
    ),
    "counter of 21 digits": (
        _set(f"{EV}.parsedJson.key_rotation_counter", "1" * 21),
        WrongType,
        f"{PJ}.key_rotation_counter",
    ),
    "no counter": (_delete(f"{EV}.parsedJson.key_rotation_counter"), MissingField, f"{PJ}.key_rotation_counter"),
    "node_id as a string": (_set(f"{EV}.parsedJson.node_id", "7"), WrongType, f"{PJ}.node_id"),
    "node_id without inner": (_set(f"{EV}.parsedJson.node_id", {}), MissingField, f"{PJ}.node_id.inner"),
    "node_id inner a number": (_set(f"{EV}.parsedJson.node_id", {"inner": 7}), WrongType, f"{PJ}.node_id.inner"),
    "a 31-byte key": (_set(f"{EV}.parsedJson.new_public_key", list(range(31))), LengthError, f"{PJ}.new_public_key"),
    "a 33-byte key": (_set(f"{EV}.parsedJson.new_public_key", list(range(33))), LengthError, f"{PJ}.new_public_key"),
    "key as base64": (_set(f"{EV}.parsedJson.new_public_key", "AAEC"), WrongType, f"{PJ}.new_public_key"),
    "key byte 256": (_set(f"{EV}.parsedJson.new_public_key.3", 256), OutOfRange, f"{PJ}.new_public_key[3]"),
    "key byte -1": (_set(f"{EV}.parsedJson.new_public_key.0", -1), OutOfRange, f"{PJ}.new_public_key[0]"),
    "key byte true": (_set(f"{EV}.parsedJson.new_public_key.5", True), WrongType, f"{PJ}.new_public_key[5]"),
    "key byte a string": (_set(f"{EV}.parsedJson.new_public_key.5", "5"), WrongType, f"{PJ}.new_public_key[5]"),
    "key byte a float": (_set(f"{EV}.parsedJson.new_public_key.5", 5.0), WrongType, f"{PJ}.new_public_key[5]"),
    "evidence as a string": (_set(f"{EV}.parsedJson.evidence_bytes", "eJw="), WrongType, f"{PJ}.evidence_bytes"),
    "evidence past any event's size": (
        _set(f"{EV}.parsedJson.evidence_bytes", [0] * (MAX_EVENT_BYTES + 1)),
        EvidenceTooLarge,
        f"{PJ}.evidence_bytes",
    ),
    "evidence byte 300": (_set(f"{EV}.parsedJson.evidence_bytes.2", 300), OutOfRange, f"{PJ}.evidence_bytes[2]"),
    "device_type as a string": (_set(f"{EV}.parsedJson.device_type", "300"), WrongType, f"{PJ}.device_type"),
    "device_type past u16": (_set(f"{EV}.parsedJson.device_type", 70000), OutOfRange, f"{PJ}.device_type"),
    "device_type a boolean": (_set(f"{EV}.parsedJson.device_type", True), WrongType, f"{PJ}.device_type"),
    "another event's type": (
        _set(f"{EV}.type", f"{PACKAGE}::db::NewKeyRotationEvent"),
        SuiEventTypeMismatch,
        "result.data[0].type",
    ),
    "another package's event": (
        _set(f"{EV}.type", "0x2::db::NodePublicKeyCommittmentEvent"),
        SuiEventTypeMismatch,
        "result.data[0].type",
    ),
    "another module's event": (
        _set(f"{EV}.type", f"{PACKAGE}::gate::NodePublicKeyCommittmentEvent"),
        SuiEventTypeMismatch,
        "result.data[0].type",
    ),
    "a generic type": (
        _set(f"{EV}.type", f"{PACKAGE}::db::NodePublicKeyCommittmentEvent<u8>"),
        SuiEventTypeMismatch,
        "result.data[0].type",
    ),
    "a type too long": (_set(f"{EV}.type", "0x2::db::" + "A" * 600), LengthError, "result.data[0].type"),
    "sender not an address": (_set(f"{EV}.sender", "node-7"), WrongType, "result.data[0].sender"),
    "packageId not an address": (_set(f"{EV}.packageId", "0xzz"), WrongType, "result.data[0].packageId"),
    "transactionModule not an identifier": (
        _set(f"{EV}.transactionModule", "db::x"),
        WrongType,
        "result.data[0].transactionModule",
    ),
    "txDigest not base58": (_set(f"{EV}.id.txDigest", "0OIl"), WrongType, "result.data[0].id.txDigest"),
    "txDigest too long": (_set(f"{EV}.id.txDigest", "1" * 45), LengthError, "result.data[0].id.txDigest"),
    "eventSeq as a number": (_set(f"{EV}.id.eventSeq", 0), WrongType, "result.data[0].id.eventSeq"),
    "no event id": (_delete(f"{EV}.id"), MissingField, "result.data[0].id"),
    "timestampMs as a number": (_set(f"{EV}.timestampMs", 1), WrongType, "result.data[0].timestampMs"),
    "one event twice": (_duplicate_event, SuiEventDuplicate, "result.data[1].id"),
    "no hasNextPage": (_delete("result.hasNextPage"), MissingField, "result.hasNextPage"),
    "hasNextPage a string": (_set("result.hasNextPage", "false"), WrongType, "result.hasNextPage"),
    "nextCursor a string": (_set("result.nextCursor", "abcd"), WrongType, "result.nextCursor"),
    "nextCursor without eventSeq": (
        _set("result.nextCursor", {"txDigest": "abc"}),
        MissingField,
        "result.nextCursor.eventSeq",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_answers_are_refused_with_their_field(case: str) -> None:
    mutate, error, field = HOSTILE[case]
    doc = commitment_doc()
    mutate(doc)
    with pytest.raises(error) as caught:
        parse_commitment_page(body(doc), package_id=PACKAGE)
    assert caught.value.field == field, caught.value
    assert "0OIl" not in str(caught.value) and "node-7" not in str(caught.value), "never quotes the value"


def test_a_json_rpc_error_is_refused_with_its_code() -> None:
    text = "x" * 1000 + "\x1b[2J"
    answer = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": text}}
    with pytest.raises(SuiRpcError) as caught:
        parse_commitment_page(body(answer), package_id=PACKAGE)
    assert (caught.value.field, caught.value.rpc_code) == ("error", -32602)
    assert len(caught.value.rpc_message) == 200 and caught.value.rpc_message.isprintable()
    with pytest.raises(WrongType, match=r"error\.code"):
        parse_commitment_page(body({"jsonrpc": "2.0", "id": 1, "error": {"code": "x"}}), package_id=PACKAGE)


def test_size_bounds() -> None:
    with pytest.raises(SuiResponseTooLarge) as caught:
        parse_commitment_page(b" " * (MAX_SUI_RESPONSE_BYTES + 1), package_id=PACKAGE)
    assert caught.value.field == "body"
    doc = commitment_doc()
    event = first(doc)
    doc["result"]["data"] = []
    for seq in range(3):
        copied = copy.deepcopy(event)
        copied["id"]["eventSeq"] = str(seq)
        doc["result"]["data"].append(copied)
    assert len(parse_commitment_page(body(doc), package_id=PACKAGE, limit=3).events) == 3
    with pytest.raises(SuiResponseTooLarge) as caught:
        parse_commitment_page(body(doc), package_id=PACKAGE, limit=2)
    assert caught.value.field == "result.data", "more events than were asked for"
    with pytest.raises(ValueError, match="limit"):
        parse_commitment_page(body(doc), package_id=PACKAGE, limit=51)


def test_not_json_and_duplicate_keys_are_refused() -> None:
    with pytest.raises(InvalidJson):
        parse_commitment_page(b"<html>502</html>", package_id=PACKAGE)
    duplicated = COMMITMENT_PAGE.replace('"epoch": "519",', '"epoch": "519", "epoch": "1",')
    with pytest.raises(InvalidJson, match="same key twice"):
        parse_commitment_page(duplicated.encode(), package_id=PACKAGE)


# --- the selection --------------------------------------------------------------------------------------


def commitment(counter: int, node: int = 7, key: bytes = KEY, tag: str = "") -> KeyCommitment:
    return KeyCommitment(
        500 + counter,
        counter,
        node,
        key,
        300,
        b"\x78\x9c",
        None,
        SuiEventId(f"c{node}n{counter}{tag}".replace("0", "o"), 0),
        NODE_SENDER,
    )


def rotation(counter: int, nonce: int | None = None, tag: str = "") -> KeyRotation:
    return KeyRotation(
        500 + counter,
        counter,
        1000 + counter if nonce is None else nonce,
        None,
        SuiEventId(f"r{counter}{tag}", 0),
        NODE_SENDER,
    )


def test_the_latest_commitment_and_its_rotation_are_chosen() -> None:
    commitments = [commitment(1, key=bytes(32)), commitment(3), commitment(2), commitment(4, node=8)]
    rotations = [rotation(1), rotation(2), rotation(3), rotation(4)]
    selection = select_key(commitments, rotations, 7)
    assert selection.commitment == commitment(3) and selection.rotation == rotation(3)
    assert selection.contract_nonce == 1003
    assert selection.latest_rotation_counter == 4 and selection.behind, "the network has rotated since"
    assert not select_key(commitments, rotations, 8).behind


def test_selection_refusals() -> None:
    with pytest.raises(CommitmentNotFound) as caught:
        select_key([commitment(1, node=8)], [rotation(1)], 7)
    assert caught.value.field == COMMITMENT_EVENT
    with pytest.raises(CommitmentAmbiguous, match="2 different commitments of node 7 at counter 2"):
        select_key([commitment(1), commitment(2), commitment(2, key=bytes(32), tag="b")], [rotation(2)], 7)
    with pytest.raises(RotationNotFound) as missing:
        select_key([commitment(2)], [rotation(1), rotation(3)], 7)
    assert missing.value.field == ROTATION_EVENT
    with pytest.raises(RotationAmbiguous):
        select_key([commitment(2)], [rotation(2), rotation(2, nonce=5, tag="b")], 7)


def test_events_read_twice_count_once_but_one_id_cannot_name_two_events() -> None:
    assert select_key([commitment(2), commitment(2)], [rotation(2), rotation(2)], 7).commitment == commitment(2)
    forged = KeyCommitment(502, 2, 7, bytes(32), 300, b"", None, commitment(2).event_id, NODE_SENDER)
    with pytest.raises(SuiEventDuplicate):
        select_key([commitment(2), forged], [rotation(2)], 7)


# --- the requests ---------------------------------------------------------------------------------------


def test_query_events_request_bytes() -> None:
    assert query_events_request("0x2", COMMITMENT_EVENT, limit=8, request_id=3) == (
        b'{"jsonrpc":"2.0","id":3,"method":"suix_queryEvents","params":[{"MoveEventType":"0x'
        + b"0" * 63
        + b'2::db::NodePublicKeyCommittmentEvent"},null,8,true]}'
    )
    cursor = SuiEventId("8Xy3G8", 4)
    sent = json.loads(query_events_request(PACKAGE, ROTATION_EVENT, cursor=cursor, descending=False))
    assert sent["params"] == [
        {"MoveEventType": f"{PACKAGE}::db::NewKeyRotationEvent"},
        {"txDigest": "8Xy3G8", "eventSeq": "4"},
        50,
        False,
    ]
    for bad in (0, 51, True):
        with pytest.raises(ValueError, match="limit"):
            query_events_request(PACKAGE, ROTATION_EVENT, limit=bad)
    with pytest.raises(ValueError, match="event"):
        query_events_request(PACKAGE, "NodeRegisteredEvent")
    with pytest.raises(WrongType) as caught:
        query_events_request("atoma", ROTATION_EVENT)
    assert caught.value.field == "package_id"


def test_package_object() -> None:
    request = json.loads(get_object_request("0x2", request_id=5))
    assert request == {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "sui_getObject",
        "params": ["0x" + "0" * 63 + "2", {"showType": True}],
    }

    def answer(result: object) -> bytes:
        return jsonwire.dumps({"jsonrpc": "2.0", "id": 1, "result": result})

    found = {"data": {"objectId": PACKAGE, "version": "1", "digest": "abc", "type": "package"}}
    parse_package_object(answer(found), package_id=PACKAGE)
    cases: list[tuple[object, str]] = [
        ({"error": {"code": "notExists", "object_id": PACKAGE}}, "result.error"),
        ({"data": {**found["data"], "type": "0x2::coin::Coin<0x2::sui::SUI>"}}, "result.data.type"),
        ({"data": {**found["data"], "objectId": "0x2"}}, "result.data.objectId"),
    ]
    for result, field in cases:
        with pytest.raises(SuiPackageNotFound) as caught:
            parse_package_object(answer(result), package_id=PACKAGE)
        assert caught.value.field == field
    with pytest.raises(MissingField):
        parse_package_object(answer({"data": {"objectId": PACKAGE}}), package_id=PACKAGE)


# --- the proxy service's evidence -----------------------------------------------------------------------


def test_node_attestation_answers() -> None:
    served = node_attestation_body(7, bytes(EVIDENCE))
    assert (
        served
        == b'{"node_small_id":7,"compressed_evidence":' + json.dumps(EVIDENCE, separators=(",", ":")).encode() + b"}"
    )
    assert parse_node_attestation(served, node_small_id=7) == bytes(EVIDENCE)
    with pytest.raises(NodeMismatch):
        parse_node_attestation(served, node_small_id=8)
    refusals: list[tuple[dict[str, Any], type[ProtocolError], str]] = [
        ({"node_small_id": "7", "compressed_evidence": []}, WrongType, "node_small_id"),
        ({"node_small_id": 2**63, "compressed_evidence": []}, OutOfRange, "node_small_id"),
        ({"node_small_id": 7}, MissingField, "compressed_evidence"),
        ({"node_small_id": 7, "compressed_evidence": "eJw="}, WrongType, "compressed_evidence"),
        (
            {"node_small_id": 7, "compressed_evidence": [0] * (MAX_EVENT_BYTES + 1)},
            EvidenceTooLarge,
            "compressed_evidence",
        ),
    ]
    for doc, error, field in refusals:
        with pytest.raises(error) as caught:
            parse_node_attestation(body(doc), node_small_id=7)
        assert caught.value.field == field


# --- the scan -------------------------------------------------------------------------------------------


class FakeFullNode:
    """Pages the given events newest first, as a full node filtered on one event type does."""

    def __init__(self, events: list[KeyCommitment | KeyRotation]) -> None:
        self.events = events
        self.requests: list[dict[str, Any]] = []

    def answer(self, request: bytes) -> bytes:
        sent = json.loads(request)
        self.requests.append(sent)
        query, cursor, limit, descending = sent["params"]
        assert descending is True
        name = query["MoveEventType"].rsplit("::", 1)[1]
        kind = KeyCommitment if name == COMMITMENT_EVENT else KeyRotation
        ordered = [e for e in reversed(self.events) if isinstance(e, kind)]
        if cursor is not None:
            ids = [e.event_id.to_json() for e in ordered]
            ordered = ordered[ids.index(cursor) + 1 :]
        page = ordered[:limit]
        result = {
            "data": [e.to_event(PACKAGE) for e in page],
            "nextCursor": page[-1].event_id.to_json() if page else cursor,
            "hasNextPage": len(ordered) > len(page),
        }
        return jsonwire.dumps({"jsonrpc": "2.0", "id": sent["id"], "result": result})


def run(scan: KeyScan, node: FakeFullNode) -> KeyScan:
    while (request := scan.next_request()) is not None:
        scan.feed(node.answer(request))
    return scan


def test_the_scan_reads_newest_first_until_the_answer_is_settled() -> None:
    others = [commitment(c, node=n) for c in (1, 2, 3) for n in (20, 21, 22)]
    events: list[KeyCommitment | KeyRotation] = [
        rotation(1), commitment(1), rotation(2), commitment(2), rotation(3), *others, rotation(4)
    ]  # fmt: skip
    node = FakeFullNode(events)
    scan = run(KeyScan(PACKAGE, 7, commitment_limit=2, rotation_limit=1), node)
    selection = scan.result()
    assert selection.commitment == commitment(2) and selection.rotation == rotation(2)
    assert selection.latest_rotation_counter == 4 and selection.behind
    assert scan.commitments == [commitment(2)], "only the node's latest commitments are kept"
    assert [r["id"] for r in node.requests] == list(range(1, len(node.requests) + 1))
    kinds = [r["params"][0]["MoveEventType"].rsplit("::", 1)[1] for r in node.requests]
    assert kinds == [COMMITMENT_EVENT] * 6 + [ROTATION_EVENT] * 4, "stops at the first older commitment and rotation"
    assert not scan.truncated


def test_the_scan_stops_at_a_tie() -> None:
    events: list[KeyCommitment | KeyRotation] = [
        rotation(1), commitment(1), rotation(2), commitment(2), commitment(2, key=bytes(32), tag="b"),
        *[commitment(2, node=n) for n in range(30, 40)],
    ]  # fmt: skip
    node = FakeFullNode(events)
    scan = run(KeyScan(PACKAGE, 7, commitment_limit=4), node)
    assert len(scan.commitments) == 2 and not scan.truncated
    assert len(node.requests) == 3 + 1, "three pages to reach the tie, then one of rotations"
    with pytest.raises(CommitmentAmbiguous):
        scan.result()


def test_the_scan_stops_at_its_page_budget_and_says_so() -> None:
    events: list[KeyCommitment | KeyRotation] = [
        rotation(1),
        commitment(1),
        *[commitment(1, node=n) for n in range(30, 60)],
    ]
    scan = run(KeyScan(PACKAGE, 7, max_pages=2, commitment_limit=4), FakeFullNode(events))
    assert scan.truncated and scan.done
    with pytest.raises(CommitmentNotFound):
        scan.result()


def test_the_scan_refuses_misuse() -> None:
    scan = KeyScan(PACKAGE, 7)
    with pytest.raises(RuntimeError, match="no request"):
        scan.feed(b"{}")
    request = scan.next_request()
    assert request is not None
    with pytest.raises(RuntimeError, match="feed"):
        scan.next_request()
    with pytest.raises(RuntimeError, match="not finished"):
        scan.result()
    with pytest.raises(SuiRpcMismatch):  # an answer to another request
        scan.feed(
            jsonwire.dumps(
                {"jsonrpc": "2.0", "id": 2, "result": {"data": [], "nextCursor": None, "hasNextPage": False}}
            )
        )
