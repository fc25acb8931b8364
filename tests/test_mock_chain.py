"""The mock's chain faces (mock_node/chain.py), through the app as a client reaches them.

The strict mock hands out, in its lock, the key of the node's latest commitment on its Sui face, and
that commitment's evidence verifies against the test CA's root with the nonce of its rotation. Each
knob breaks exactly the step it names: an evidence variant fails one verification step and leaves the
others passing, and a lock-key variant hands out (and really decrypts under) a key the chain does not
vouch for while the chain itself stays intact. The JSON-RPC face answers as a full node does, the
proxy service's face serves the same evidence, and none of it is built when an app is created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import statistics
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.protocol import (
    MAX_INFLATED_SIZE,
    ChainSignatureInvalid,
    DeviceTestCa,
    EntryVerdict,
    EvidenceTooLarge,
    KeyCommitment,
    KeyScan,
    KeySelection,
    LockResponse,
    NonceMismatch,
    Outcome,
    ReportSignatureInvalid,
    Step,
    b64encode,
    get_object_request,
    jsonwire,
    mock_evidence,
    parse_commitment_page,
    parse_evidence,
    parse_node_attestation,
    parse_package_object,
    query_events_request,
    report_nonce,
    verify_commitment,
    verify_evidence,
)
from mock_node import chain
from mock_node.app import create_app
from mock_node.behaviour import Behaviour
from mock_node.chain import MOCK_PACKAGE_ID, contract_nonces
from mock_node.config import DEFAULT_SEED, MockConfig
from tests.mockclient import MockClient

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROOT = DeviceTestCa.create(DEFAULT_SEED.encode()).root
JSON = {"content-type": "application/json"}
MakeChainClient = Callable[..., MockClient]


@pytest.fixture
def make_client() -> Iterator[MakeChainClient]:
    """``make_client(chain_lock_key=..., chain_evidence=..., **config)``: a mock with the chain knobs set."""
    clients: list[MockClient] = []

    def make(**options: Any) -> MockClient:
        knobs = {k: options.pop(k) for k in ("chain_lock_key", "chain_evidence") if k in options}
        config = MockConfig(**options)
        config.behaviour = config.behaviour.but(**knobs)
        client = MockClient(config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def rpc(client: MockClient, request: dict[str, Any] | bytes) -> dict[str, Any]:
    body = request if isinstance(request, bytes) else jsonwire.dumps(request)
    response = client.post("/sui", body, JSON)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = json.loads(response.content)
    return answer


def call(client: MockClient, method: str, *params: Any, request_id: int = 1) -> dict[str, Any]:
    return rpc(client, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})


def select(client: MockClient) -> KeySelection:
    """What a client does: scan the full node for the node's latest commitment and its rotation."""
    scan = KeyScan(MOCK_PACKAGE_ID, client.config.node_small_id)
    while (request := scan.next_request()) is not None:
        scan.feed(client.post("/sui", request, JSON).content)
    assert not scan.truncated
    return scan.result()


def all_events(client: MockClient) -> list[dict[str, Any]]:
    answer = call(client, "suix_queryEvents", {"MoveModule": {"package": MOCK_PACKAGE_ID, "module": "db"}})
    events: list[dict[str, Any]] = answer["result"]["data"]
    return events


def commitments(client: MockClient) -> list[KeyCommitment]:
    body = query_events_request(MOCK_PACKAGE_ID, "NodePublicKeyCommittmentEvent", limit=8, descending=False)
    return list(parse_commitment_page(client.post("/sui", body, JSON).content, package_id=MOCK_PACKAGE_ID).events)


def verdict(selection: KeySelection) -> EntryVerdict:
    (entry,) = verify_commitment(
        selection.commitment.evidence_bytes,
        contract_nonce=selection.contract_nonce,
        node_public_key=selection.commitment.new_public_key,
        trusted_roots=[ROOT],
        now=NOW,
    )
    return entry


def outcomes(entry: EntryVerdict) -> dict[Step, Outcome]:
    return {result.step: result.outcome for result in entry.steps}


ALL_PASS = dict.fromkeys(Step, Outcome.PASS)


# --- the strict mock ----------------------------------------------------------------------------------


def test_the_lock_key_is_the_latest_commitment_and_its_evidence_binds_it(make_client: MakeChainClient) -> None:
    client = make_client()
    selection = select(client)
    assert client.lock().node_public_key() == selection.commitment.new_public_key == client.config.node_public_key
    assert (selection.commitment.key_rotation_counter, selection.latest_rotation_counter) == (2, 2)
    assert not selection.behind and selection.commitment.device_type == 300
    assert selection.contract_nonce == contract_nonces(DEFAULT_SEED)[1]
    assert selection.commitment.sender == client.config.signer_address, "the node's own address committed it"
    assert outcomes(verdict(selection)) == ALL_PASS
    # Under the real NVIDIA root alone the test CA's evidence is untrusted: only the chain step says so.
    (untrusted,) = verify_commitment(
        selection.commitment.evidence_bytes,
        contract_nonce=selection.contract_nonce,
        node_public_key=selection.commitment.new_public_key,
        trusted_roots=[],
        now=NOW,
    )
    assert {s for s, o in outcomes(untrusted).items() if o is not Outcome.PASS} == {Step.CHAIN}


def test_the_evidence_is_mock_evidence_of_the_seed(make_client: MakeChainClient) -> None:
    client = make_client()
    n1, n2 = contract_nonces(DEFAULT_SEED)
    old, new = commitments(client)[0], select(client).commitment
    assert new.evidence_bytes == mock_evidence(n2, client.config.node_public_key, seed=DEFAULT_SEED.encode())
    assert old.evidence_bytes == mock_evidence(n1, old.new_public_key, seed=DEFAULT_SEED.encode())


def test_the_older_commitment_is_genuine_too(make_client: MakeChainClient) -> None:
    """So that a stale key is a realistic failure: its commitment verifies, with its own nonce."""
    client = make_client()
    mine = [c for c in commitments(client) if c.node_small_id == client.config.node_small_id]
    assert [c.key_rotation_counter for c in mine] == [1, 2]
    old = mine[0]
    assert old.new_public_key != client.config.node_public_key
    (entry,) = verify_commitment(
        old.evidence_bytes,
        contract_nonce=contract_nonces(DEFAULT_SEED)[0],
        node_public_key=old.new_public_key,
        trusted_roots=[ROOT],
        now=NOW,
    )
    assert outcomes(entry) == ALL_PASS


def test_the_proxy_service_serves_the_same_evidence(make_client: MakeChainClient) -> None:
    client = make_client()
    response = client.get("/v1/get_node_attestation/1")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert list(json.loads(response.content)) == ["node_small_id", "compressed_evidence"]
    assert parse_node_attestation(response.content, node_small_id=1) == select(client).commitment.evidence_bytes
    for path, status in (("2", 404), ("-1", 404), ("abc", 400), ("1.0", 400), (str(2**63), 400)):
        other = client.get(f"/v1/get_node_attestation/{path}")
        assert other.status_code == status, path
        assert other.content == b"" if status == 404 else other.headers["content-type"].startswith("text/plain")


def test_the_package_is_confirmed(make_client: MakeChainClient) -> None:
    client = make_client()
    body = client.post("/sui", get_object_request(MOCK_PACKAGE_ID, request_id=7), JSON).content
    parse_package_object(body, package_id=MOCK_PACKAGE_ID, request_id=7)
    assert call(client, "sui_getObject", MOCK_PACKAGE_ID)["result"]["data"].get("type") is None, "showType asks"
    missing = call(client, "sui_getObject", "0x2")["result"]
    assert missing == {"error": {"code": "notExists", "object_id": "0x" + "0" * 63 + "2"}}


# --- the evidence variants ----------------------------------------------------------------------------

BROKEN: dict[str, tuple[Step, type[Exception], str]] = {
    "other-key": (Step.NONCE, NonceMismatch, "evidence_bytes[0].evidence.request.nonce"),
    "broken-chain": (Step.CHAIN, ChainSignatureInvalid, "evidence_bytes[0].certificate[2]"),
    "signature-other-bytes": (Step.SIGNATURE, ReportSignatureInvalid, "evidence_bytes[0].response.signature"),
}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_each_evidence_variant_fails_its_own_step_only(make_client: MakeChainClient, variant: str) -> None:
    client = make_client(chain_evidence=variant)
    selection = select(client)
    assert client.lock().node_public_key() == selection.commitment.new_public_key, "the key is still the committed one"
    step, error, field = BROKEN[variant]
    entry = verdict(selection)
    assert outcomes(entry) == {**ALL_PASS, step: Outcome.FAIL}
    failure = entry[step].error
    assert isinstance(failure, error) and failure.field == field
    served = parse_node_attestation(client.get("/v1/get_node_attestation/1").content, node_small_id=1)
    assert served == selection.commitment.evidence_bytes, "the proxy service holds the same evidence"
    strict = select(make_client()).commitment.evidence_bytes
    assert served != strict


def test_the_zlib_bomb_is_refused_by_the_cap_alone(make_client: MakeChainClient) -> None:
    client = make_client(chain_evidence="zlib-bomb")
    selection = select(client)
    evidence = selection.commitment.evidence_bytes
    assert len(evidence) < 64 * 1024, "what is served stays small"
    with pytest.raises(EvidenceTooLarge) as caught:
        verdict(selection)
    assert caught.value.field == "evidence_bytes"
    # A reader without a cap gets a complete, valid commitment after inflating past the cap.
    inflated = zlib.decompress(evidence)
    assert len(inflated) > MAX_INFLATED_SIZE
    expected = report_nonce(selection.contract_nonce, selection.commitment.new_public_key)
    (entry,) = verify_evidence(parse_evidence(inflated), expected, [ROOT], NOW)
    assert outcomes(entry) == ALL_PASS


# --- the lock-key variants ----------------------------------------------------------------------------


def test_an_uncommitted_key_is_handed_out_and_really_used(make_client: MakeChainClient) -> None:
    client = make_client(chain_lock_key="uncommitted")
    lock = client.lock()
    handed = lock.node_public_key()
    committed = {
        bytes(e["parsedJson"]["new_public_key"]) for e in all_events(client) if "new_public_key" in e["parsedJson"]
    }
    assert len(committed) == 3 and handed not in committed, "no commitment on chain names the lock's key"
    assert outcomes(verdict(select(client))) == ALL_PASS, "the chain itself is intact"
    sent = client.send(lock=lock)
    assert sent.status == 200 and sent.open().plaintext, "a client that trusts the lock is served"
    to_committed = dataclasses.replace(client.lock(), public_key=b64encode(client.config.node_public_key))
    assert client.send(lock=to_committed).status == 400, "the node really holds another keypair"


def test_a_stale_key_is_handed_out_and_really_used(make_client: MakeChainClient) -> None:
    client = make_client(chain_lock_key="stale")
    lock = client.lock()
    selection = select(client)
    older = [c for c in commitments(client) if c.node_small_id == 1 and c.key_rotation_counter == 1]
    assert lock.node_public_key() == older[0].new_public_key != selection.commitment.new_public_key
    assert outcomes(verdict(selection)) == ALL_PASS
    sent = client.send(lock=lock)
    assert sent.status == 200 and sent.open().plaintext


def test_the_strict_node_refuses_a_request_to_another_key(make_client: MakeChainClient) -> None:
    client = make_client()
    stale = chain.MockChain(client.config).keypair("stale")[1]
    lock = dataclasses.replace(client.lock(), public_key=b64encode(stale))
    assert client.send(lock=lock).status == 400


def test_the_knobs_default_to_the_conformant_node() -> None:
    assert (Behaviour().chain_lock_key, Behaviour().chain_evidence) == ("current", "bound")


# --- the JSON-RPC face --------------------------------------------------------------------------------


def test_json_rpc_errors(make_client: MakeChainClient) -> None:
    client = make_client()

    def error(request: dict[str, Any] | bytes) -> tuple[object, int]:
        answer = rpc(client, request)
        assert answer["jsonrpc"] == "2.0" and "result" not in answer
        return answer["id"], answer["error"]["code"]

    assert error({"jsonrpc": "2.0", "id": 4, "method": "sui_getChainIdentifier", "params": []}) == (4, -32601)
    assert error({"jsonrpc": "2.0", "id": "a", "method": "suix_getBalance"}) == ("a", -32601)
    assert error(b"{not json") == (None, -32700)
    assert error(b'[{"jsonrpc":"2.0","id":1,"method":"suix_queryEvents","params":[]}]') == (None, -32600)
    assert error({"id": 5, "method": "suix_queryEvents"}) == (5, -32600)
    assert error({"jsonrpc": "2.0", "id": 6, "method": 7}) == (6, -32600)
    events = {"jsonrpc": "2.0", "id": 8, "method": "suix_queryEvents"}
    for params in (
        [{"Sender": "0x2"}],
        [{"MoveEventType": "db::NewKeyRotationEvent"}],
        [{"MoveEventType": f"{MOCK_PACKAGE_ID}::db::NewKeyRotationEvent", "Sender": "0x2"}],
        [{"MoveModule": {"package": MOCK_PACKAGE_ID}}],
        [{"MoveModule": {"package": "atoma", "module": "db"}}],
        [{"MoveEventType": f"{MOCK_PACKAGE_ID}::db::NewKeyRotationEvent"}, {"txDigest": "x", "eventSeq": "0"}],
        [{"MoveEventType": f"{MOCK_PACKAGE_ID}::db::NewKeyRotationEvent"}, None, -1],
        [{"MoveEventType": f"{MOCK_PACKAGE_ID}::db::NewKeyRotationEvent"}, None, 5, "yes"],
        [None, None, None, None, None],
        "query",
    ):
        assert error({**events, "params": params}) == (8, -32602), params
    assert error({"jsonrpc": "2.0", "id": 9, "method": "sui_getObject", "params": ["package"]}) == (9, -32602)
    refused = client.post("/sui", b"{}", {"content-type": "text/plain"})
    assert refused.status_code == 415


def test_paging_as_a_full_node_pages(make_client: MakeChainClient) -> None:
    client = make_client()
    module = {"MoveModule": {"package": MOCK_PACKAGE_ID, "module": "db"}}
    names = [e["type"].rsplit("::", 1)[1][:3] for e in all_events(client)]
    assert names == ["New", "Nod", "New", "Nod", "Nod"], "rotation, commitment, rotation, neighbour, commitment"
    pages, cursor = [], None
    while True:
        result = call(client, "suix_queryEvents", module, cursor, 2, False)["result"]
        pages.append([e["id"] for e in result["data"]])
        cursor = result["nextCursor"]
        if not result["hasNextPage"]:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert cursor == pages[-1][-1], "nextCursor is the last event returned"
    flat = [i for p in pages for i in p]
    assert flat == [e["id"] for e in all_events(client)]
    # Newest first, by name, from a cursor (exclusive); an exhausted query keeps the cursor it was given.
    newest = rpc(client, {"jsonrpc": "2.0", "id": 1, "method": "suix_queryEvents", "params": {
        "query": module, "cursor": flat[2], "limit": 50, "descending_order": True}})["result"]  # fmt: skip
    assert [e["id"] for e in newest["data"]] == [flat[1], flat[0]] and not newest["hasNextPage"]
    empty = call(client, "suix_queryEvents", module, flat[0], 0, True)["result"]
    assert empty == {"data": [], "nextCursor": flat[0], "hasNextPage": False}
    # A limit of 0 is the default (50); another package or module has no events.
    assert len(call(client, "suix_queryEvents", module, None, 0)["result"]["data"]) == 5
    for query in (
        {"MoveEventType": "0x2::db::NewKeyRotationEvent"},
        {"MoveEventType": f"{MOCK_PACKAGE_ID}::gate::NewKeyRotationEvent"},
        {"MoveEventType": f"{MOCK_PACKAGE_ID}::db::NodeRegisteredEvent"},
        {"MoveModule": {"package": MOCK_PACKAGE_ID, "module": "settlement"}},
    ):
        assert call(client, "suix_queryEvents", query)["result"]["data"] == [], query
    short = "0x" + MOCK_PACKAGE_ID[2:].upper()
    assert (
        len(call(client, "suix_queryEvents", {"MoveEventType": f"{short}::db::NewKeyRotationEvent"})["result"]["data"])
        == 2
    )


def test_the_chain_is_deterministic_per_seed(make_client: MakeChainClient) -> None:
    request = query_events_request(MOCK_PACKAGE_ID, "NodePublicKeyCommittmentEvent", limit=8)
    one, two = make_client(), make_client()
    assert one.post("/sui", request, JSON).content == two.post("/sui", request, JSON).content
    other = make_client(seed="another seed", node_small_id=9)
    selection = select(other)
    assert (
        selection.commitment.node_small_id == 9 and selection.commitment.new_public_key == other.config.node_public_key
    )
    mine = [c for c in commitments(other) if c.node_small_id == 9]
    assert mine[0].new_public_key not in {c.new_public_key for c in commitments(one)}


def test_the_node_face_serves_the_chain_too(make_client: MakeChainClient) -> None:
    client = make_client(face="node")
    assert select(client).commitment.new_public_key == client.config.node_public_key


# --- cost ---------------------------------------------------------------------------------------------


def test_nothing_is_built_when_an_app_is_created_or_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chain history was built")

    monkeypatch.setattr(chain, "_history", refuse)
    monkeypatch.setattr(chain, "_derived_keypair", refuse)
    client = MockClient(MockConfig())
    try:
        sent = client.send()
        assert sent.status == 200 and sent.open().plaintext
        with pytest.raises(AssertionError, match="built"):
            client.post("/sui", query_events_request(MOCK_PACKAGE_ID, "NewKeyRotationEvent"), JSON)
    finally:
        client.close()


def test_app_creation_stays_cheap() -> None:
    create_app(MockConfig())  # imports and first-use caches
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            create_app(MockConfig())
        samples.append((time.perf_counter() - start) / 20)
    # About 0.3 ms on the reference machine; one test CA alone costs some 10 ms.
    assert statistics.median(samples) < 0.005


def test_lock_responses_are_still_lock_responses(make_client: MakeChainClient) -> None:
    for knob in ("current", "uncommitted", "stale"):
        lock = make_client(chain_lock_key=knob).lock()
        assert isinstance(lock, LockResponse) and len(lock.node_public_key()) == 32
