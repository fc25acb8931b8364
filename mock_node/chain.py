"""The mock's chain faces: the node's key history on a Sui full node, and the proxy service's evidence.

A client that checks the key a lock hands out (protocol.md §11) reads two more services than the
proxy: a Sui full node, for the node's ``NodePublicKeyCommittmentEvent`` and the matching
``NewKeyRotationEvent`` (its contract nonce), and the proxy service, for
``GET /v1/get_node_attestation/{node_small_id}``. The mock serves both on its own app:

- ``POST /sui``: JSON-RPC 2.0, ``suix_queryEvents`` (filters ``MoveEventType`` and ``MoveModule``;
  cursor, limit and order as a full node pages them: a limit of 0 or above 50 means 50, the cursor
  is exclusive, ``nextCursor`` is the last event returned) and ``sui_getObject`` for the package (so
  a client can confirm the package id it was given). Any other method is ``-32601``, bad parameters
  ``-32602``, a body that is not JSON ``-32700``, one that is not a request object ``-32600``; every
  JSON-RPC error is HTTP 200, as jsonrpsee answers.
- ``GET /v1/get_node_attestation/{node_small_id}``: ``{"node_small_id", "compressed_evidence"}`` for
  this node, 404 with an empty body for any other, 400 text/plain for a path that is not an i64
  (axum's ``Path<i64>`` rejection).

The history (package :data:`MOCK_PACKAGE_ID`, all derived from the node's seed, so every run and every
app of one seed serves the same bytes), in chain order:

====  ==============================  ========================================================
1     NewKeyRotationEvent             counter 1, epoch 512, nonce N1
2     NodePublicKeyCommittmentEvent   this node, counter 1, the *older* key, evidence bound to it
3     NewKeyRotationEvent             counter 2, epoch 519, nonce N2
4     NodePublicKeyCommittmentEvent   a neighbour node (id + 1), counter 2, its own key and evidence
5     NodePublicKeyCommittmentEvent   this node, counter 2, the node's key (``MockConfig.node_public_key``)
====  ==============================  ========================================================

Evidence is made by the test CA (:class:`~conformance.protocol.DeviceTestCa` of the node's seed, so
trusted only with ``--trust-test-ca``) exactly as ``mock_evidence`` makes it, and only when a chain
face is first asked: a test CA costs some 10 ms and apps are created by the hundred, so nothing of this
is built by ``create_app`` (the keys are derived on first use too). Builds are cached per process.

The knobs (:class:`~mock_node.behaviour.Behaviour`), each a failure a real deployment can have:

``chain_lock_key`` (the key the lock hands out *and the node decrypts under*: app.py asks
:meth:`MockChain.serving_keypair` for both, so a client that trusts the lock is served normally)

- ``current``: the key of the node's latest commitment (conformant);
- ``uncommitted``: a keypair that was never committed: what a client sees behind an interposed
  proxy (or a node that rotated its key in memory and never published it);
- ``stale``: the key of the node's *older* commitment (counter 1) while a newer one (counter 2)
  exists: a node or proxy cache that missed the rotation.

``chain_evidence`` (the evidence of the node's latest commitment, on chain and from the proxy service)

- ``bound``: every report answers ``BLAKE3(u64_le(N2) ‖ key ‖ u16_le(300))`` (conformant);
- ``other-key``: the report answers the nonce of another key (the uncommitted one): the evidence is
  genuine and signed, but attests someone else's key; only the *nonce* step fails;
- ``broken-chain``: the provisioner CA certificate (``certificate[2]``) is re-signed by a key that is
  not its issuer's: names, keys and the report are intact; only the *chain* step fails;
- ``signature-other-bytes``: the report's signature is a valid ECDSA signature by the leaf over other
  bytes (the same report answering another nonce, spliced in); only the *signature* step fails;
- ``fwid-mismatch``: the report claims a firmware ID other than its leaf certificate's, and is signed
  as such by the leaf: only the *fwid* step fails;
- ``measurement-drift``: measurement block 5 differs from the test device's golden value (its RIM), the
  report signed as such: only the comparison with the RIM (KEY-012) fails;
- ``zlib-bomb``: the evidence JSON followed by 17 MiB of JSON whitespace, about 17 KB compressed:
  complete and valid to a reader without a cap, refused by one that caps inflation at 16 MiB.

``chain_history`` (the events around the node's latest commitment)

- ``normal``: the table above;
- ``ambiguous``: a second commitment of this node at counter 2 (another key, its own bound evidence)
  just before the real one: the chain no longer says which key is the node's;
- ``behind``: a third rotation (counter 3, epoch 526) after the node's latest commitment, which the node
  never answered: its key is of a rotation the network has left;
- ``old``: the latest commitment's ``timestampMs`` is 1970-01-01T00:00:01Z: a key older than any
  ``--max-key-age``.

``service_evidence``: ``latest`` (conformant) or ``stale``, the proxy service serving the evidence of the
node's *older* commitment (counter 1), a cache that missed the rotation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import zlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conformance.protocol import (
    COMMITMENT_EVENT,
    DB_MODULE,
    EVENT_NAMES,
    MAX_EVENT_PAGE_LIMIT,
    MAX_INFLATED_SIZE,
    NVIDIA_CC_GPU_DEVICE_SLOT,
    ROTATION_EVENT,
    SUI_GET_OBJECT,
    SUI_QUERY_EVENTS,
    ChainEvent,
    DeviceTestCa,
    EvidenceEntry,
    EvidenceType,
    KeyCommitment,
    KeyRotation,
    OpaqueType,
    ProtocolError,
    SuiEventId,
    blake2b_256,
    certificate_pem,
    encode_evidence,
    encode_report,
    jsonwire,
    node_attestation_body,
    normalize_sui_address,
    report_nonce,
    sign_raw,
    signed_bytes,
    x25519_public_key,
)

from .behaviour import Behaviour, ChainHistory, EvidenceVariant, LockKey
from .config import MockConfig

MOCK_PACKAGE_ID = "0x" + blake2b_256(b"atoma-conformance mock Atoma package").hex()
EPOCHS = (512, 519)
BEHIND_EPOCH = 526
DRIFTED_BLOCK = 5  # the measurement ``measurement-drift`` changes
TIMESTAMPS_MS = (1_735_689_600_000, 1_738_368_000_000)  # 2025-01-01 and 2025-02-01, UTC
NEIGHBOUR_DEVICE = 1
BOMB_PADDING = MAX_INFLATED_SIZE + 1024 * 1024  # JSON whitespace after the evidence: 1 MiB past the cap
# JSON-RPC 2.0's error codes (section 5.1 of the specification)
JSONRPC_PARSE_ERROR = -32700
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601
JSONRPC_INVALID_PARAMS = -32602
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
)


class _InvalidParams(Exception):
    """A request's parameters the mock cannot serve: answered ``-32602`` with this message."""


@dataclasses.dataclass(frozen=True)
class History:
    """The events in chain order (the node's latest commitment last) and the package they belong to."""

    package_id: str
    events: tuple[ChainEvent, ...]

    latest: KeyCommitment  # the node's own latest commitment (the last event, unless a rotation follows)


class MockChain:
    """The chain faces of one app; creating it costs nothing (everything is derived on first use)."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.package_id = MOCK_PACKAGE_ID

    def keypair(self, which: LockKey) -> tuple[bytes, bytes]:
        """(private, public) X25519 key: the node's own, the older rotation's, or one never committed."""
        if which == "current":
            return self.config.node_private_key, self.config.node_public_key
        return _derived_keypair(self.config.seed, which)

    def serving_keypair(self, behaviour: Behaviour) -> tuple[bytes, bytes]:
        """The key the lock hands out and the node decrypts under (``chain_lock_key``)."""
        return self.keypair(behaviour.chain_lock_key)

    def history(self, behaviour: Behaviour) -> History:
        config = self.config
        return _history(
            config.seed,
            config.node_small_id,
            config.node_public_key,
            config.signer_address,
            behaviour.chain_evidence,
            behaviour.chain_history,
        )

    def attestation(self, node_small_id: int, behaviour: Behaviour) -> bytes | None:
        """The proxy service's answer about ``node_small_id``: None (404) for any node but this one."""
        if node_small_id != self.config.node_small_id:
            return None
        history = self.history(behaviour)
        mine = [e for e in history.events if isinstance(e, KeyCommitment) and e.node_small_id == node_small_id]
        served = mine[0] if behaviour.service_evidence == "stale" else history.latest
        return node_attestation_body(node_small_id, served.evidence_bytes)

    def rpc(self, body: bytes, behaviour: Behaviour) -> bytes:
        """Answer one JSON-RPC 2.0 request body."""
        try:
            request = jsonwire.loads(body)
        except ProtocolError:
            return _error(None, JSONRPC_PARSE_ERROR, "Parse error")
        if not isinstance(request, dict):  # a batch, or a bare value
            return _error(None, JSONRPC_INVALID_REQUEST, "Invalid request: one request object is served")
        request_id = request.get("id")
        if type(request_id) not in (int, str, type(None)):
            request_id = None
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(request_id, JSONRPC_INVALID_REQUEST, "Invalid request")
        params = request.get("params", [])
        try:
            if method == SUI_QUERY_EVENTS:
                result = self._query_events(params, behaviour)
            elif method == SUI_GET_OBJECT:
                result = self._get_object(params)
            else:
                return _error(request_id, JSONRPC_METHOD_NOT_FOUND, "Method not found")
        except _InvalidParams as exc:
            return _error(request_id, JSONRPC_INVALID_PARAMS, f"Invalid params: {exc}")
        return jsonwire.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _query_events(self, params: object, behaviour: Behaviour) -> dict[str, Any]:
        query, cursor, limit, descending = _positional(params, ("query", "cursor", "limit", "descending_order"))
        history = self.history(behaviour)
        wanted = self._filter(query)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise _InvalidParams("limit must be a non-negative integer")
        page_limit = MAX_EVENT_PAGE_LIMIT if not limit or limit > MAX_EVENT_PAGE_LIMIT else limit
        if descending is not None and type(descending) is not bool:
            raise _InvalidParams("descending_order must be a boolean")
        positions = [i for i, event in enumerate(history.events) if _name(event) in wanted]
        if descending:
            positions.reverse()
        if cursor is not None:
            after = self._cursor_position(cursor, history)
            positions = [i for i in positions if (i < after if descending else i > after)]
        page = positions[:page_limit]
        data = [history.events[i].to_event(self.package_id) for i in page]
        next_cursor = history.events[page[-1]].event_id.to_json() if page else cursor
        return {"data": data, "nextCursor": next_cursor, "hasNextPage": len(positions) > len(page)}

    def _filter(self, query: object) -> frozenset[str]:
        """The event names ``query`` selects from this package (empty for another package or module)."""
        if not isinstance(query, dict) or len(query) != 1:
            raise _InvalidParams("query must be an event filter object with one member")
        ((kind, value),) = query.items()
        if kind == "MoveEventType":
            if not isinstance(value, str) or value.count("::") != 2:
                raise _InvalidParams("MoveEventType must be <package>::<module>::<name>")
            address, module, name = value.split("::")
            if self._package(address) and module == DB_MODULE and name in EVENT_NAMES:
                return frozenset({name})
            return frozenset()
        if kind == "MoveModule":
            if not isinstance(value, dict) or set(value) != {"package", "module"}:
                raise _InvalidParams("MoveModule must be {package, module}")
            if self._package(value["package"]) and value["module"] == DB_MODULE:
                return frozenset(EVENT_NAMES)
            return frozenset()
        raise _InvalidParams("this node serves the MoveEventType and MoveModule filters only")

    def _package(self, address: object) -> bool:
        if not isinstance(address, str):
            raise _InvalidParams("a package id must be a string")
        try:
            return normalize_sui_address(address) == self.package_id
        except ProtocolError:
            raise _InvalidParams("a package id must be 0x and 1 to 64 hex digits") from None

    def _cursor_position(self, cursor: object, history: History) -> int:
        if isinstance(cursor, dict):
            for i, event in enumerate(history.events):
                if event.event_id.to_json() == cursor:
                    return i
        raise _InvalidParams("cursor must be the id {txDigest, eventSeq} of an event")

    def _get_object(self, params: object) -> dict[str, Any]:
        object_id, options = _positional(params, ("object_id", "options"))
        if not isinstance(object_id, str):
            raise _InvalidParams("object_id must be a string")
        try:
            normalized = normalize_sui_address(object_id)
        except ProtocolError:
            raise _InvalidParams("object_id must be 0x and 1 to 64 hex digits") from None
        if normalized != self.package_id:
            return {"error": {"code": "notExists", "object_id": normalized}}
        data: dict[str, Any] = {"objectId": self.package_id, "version": "1", "digest": _digest("package")}
        if isinstance(options, dict) and options.get("showType") is True:
            data["type"] = "package"
        return {"data": data}


def _positional(params: object, names: tuple[str, ...]) -> list[Any]:
    """JSON-RPC parameters by position or by name, absent ones as None."""
    if isinstance(params, list):
        if len(params) > len(names):
            raise _InvalidParams(f"at most {len(names)} parameters")
        return [*params, *([None] * (len(names) - len(params)))]
    if isinstance(params, dict):
        if set(params) - set(names):
            raise _InvalidParams(f"parameters are {', '.join(names)}")
        return [params.get(name) for name in names]
    raise _InvalidParams("params must be an array or an object")


def _error(request_id: object, code: int, message: str) -> bytes:
    return jsonwire.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _name(event: ChainEvent) -> str:
    return COMMITMENT_EVENT if isinstance(event, KeyCommitment) else ROTATION_EVENT


# --- the history, built once per process and seed -----------------------------------------------------


@functools.lru_cache(maxsize=16)
def _derived_keypair(seed: str, label: str) -> tuple[bytes, bytes]:
    private = blake2b_256(f"x25519:{label}:".encode() + seed.encode())
    return private, x25519_public_key(private)


def _u64(seed: str, label: str) -> int:
    return int.from_bytes(blake2b_256(f"{label}:".encode() + seed.encode())[:8], "little")


def _address(seed: str, label: str) -> str:
    return "0x" + blake2b_256(f"sui-address:{label}:".encode() + seed.encode()).hex()


def _digest(label: str, seed: str = "") -> str:
    """A transaction or object digest: base58 of 32 bytes."""
    number = int.from_bytes(blake2b_256(f"digest:{label}:".encode() + seed.encode()), "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _BASE58[digit] + out
    return out or _BASE58[0]


def contract_nonces(seed: str) -> tuple[int, int]:
    """The nonces of the two rotations (counters 1 and 2)."""
    return _u64(seed, "contract-nonce/1"), _u64(seed, "contract-nonce/2")


@functools.lru_cache(maxsize=8)
def _device(seed: bytes, device: int) -> DeviceTestCa:
    return DeviceTestCa.create(seed, device=device)


@functools.lru_cache(maxsize=32)
def _history(
    seed: str,
    node_small_id: int,
    node_public_key: bytes,
    node_sender: str,
    variant: EvidenceVariant,
    shape: ChainHistory = "normal",
) -> History:
    n1, n2 = contract_nonces(seed)
    old_key = _derived_keypair(seed, "stale")[1]
    neighbour_id = node_small_id + 1 if node_small_id < 2**64 - 1 else node_small_id - 1
    neighbour_key = _derived_keypair(seed, "neighbour")[1]
    admin = _address(seed, "atoma-admin")

    def event_id(label: str) -> SuiEventId:
        return SuiEventId(_digest(label, seed), 0)

    (e1, e2), (t1, t2) = EPOCHS, TIMESTAMPS_MS
    device = NVIDIA_CC_GPU_DEVICE_SLOT
    events: tuple[ChainEvent, ...] = (
        KeyRotation(e1, 1, n1, t1, event_id("rotation/1"), admin),
        KeyCommitment(
            e1,
            1,
            node_small_id,
            old_key,
            device,
            _evidence(seed, n1, old_key, "bound"),
            t1 + 60_000,
            event_id("commitment/1"),
            node_sender,
        ),
        KeyRotation(e2, 2, n2, t2, event_id("rotation/2"), admin),
        KeyCommitment(
            e2,
            2,
            neighbour_id,
            neighbour_key,
            device,
            _evidence(seed, n2, neighbour_key, "bound", device=NEIGHBOUR_DEVICE),
            t2 + 30_000,
            event_id("neighbour/2"),
            _address(seed, "neighbour"),
        ),
    )
    if shape == "ambiguous":
        twin = _derived_keypair(seed, "twin")[1]
        events += (
            KeyCommitment(
                e2,
                2,
                node_small_id,
                twin,
                device,
                _evidence(seed, n2, twin, "bound"),
                t2 + 45_000,
                event_id("twin/2"),
                node_sender,
            ),
        )
    latest = KeyCommitment(
        e2,
        2,
        node_small_id,
        node_public_key,
        device,
        _evidence(seed, n2, node_public_key, variant),
        1_000 if shape == "old" else t2 + 60_000,
        event_id("commitment/2"),
        node_sender,
    )
    events += (latest,)
    if shape == "behind":
        n3 = _u64(seed, "contract-nonce/3")
        events += (KeyRotation(BEHIND_EPOCH, 3, n3, t2 + 7 * 86_400_000, event_id("rotation/3"), admin),)
    return History(MOCK_PACKAGE_ID, events, latest)


def _evidence(seed: str, contract_nonce: int, key: bytes, variant: EvidenceVariant, *, device: int = 0) -> bytes:
    """``evidence_bytes`` for ``key`` at ``contract_nonce``: ``mock_evidence``'s bytes when ``bound``,
    else the variant's (module docstring)."""
    ca = _device(seed.encode(), device)
    nonce = report_nonce(contract_nonce, key)
    if variant == "other-key":
        nonce = report_nonce(contract_nonce, _derived_keypair(seed, "uncommitted")[1])
    entry = ca.entry(nonce)
    if variant == "broken-chain":
        certificates = list(ca.certificates)
        certificates[2] = _resigned(certificates[2], _forger(seed.encode()))
        entry = dataclasses.replace(entry, certificate=certificate_pem(certificates))
    elif variant in ("fwid-mismatch", "measurement-drift"):
        request = ca.request(nonce)
        response = ca.response(nonce)
        if variant == "fwid-mismatch":
            opaque = tuple(
                dataclasses.replace(o, value=bytes(b ^ 0xFF for b in o.value)) if o.type == OpaqueType.FWID else o
                for o in response.opaque
            )
            response = dataclasses.replace(response, opaque=opaque)
        else:  # one measurement (block 5) that is not the golden value, the report re-signed as such
            blocks = tuple(
                dataclasses.replace(b, value=bytes(x ^ 0x01 for x in b.value)) if b.index == DRIFTED_BLOCK else b
                for b in response.blocks
            )
            response = dataclasses.replace(response, blocks=blocks)
        signature = sign_raw(ca.leaf_key, signed_bytes(request, response))
        entry = EvidenceEntry(
            EvidenceType.DEVICE,
            entry.certificate,
            encode_report(request, dataclasses.replace(response, signature=signature)),
        )
    elif variant == "signature-other-bytes":
        request, response = ca.request(nonce), ca.response(nonce)
        other = report_nonce(contract_nonce ^ 1, key)
        signature = sign_raw(ca.leaf_key, signed_bytes(ca.request(other), ca.response(other)))
        entry = EvidenceEntry(
            EvidenceType.DEVICE,
            entry.certificate,
            encode_report(request, dataclasses.replace(response, signature=signature)),
        )
    if variant == "zlib-bomb":
        return _bomb(entry)
    return encode_evidence([entry])


def _forger(seed: bytes) -> ec.EllipticCurvePrivateKey:
    scalar = 1 + int.from_bytes(hashlib.sha512(b"atoma-conformance forger\0" + seed).digest(), "big") % (
        _P384_ORDER - 1
    )
    return ec.derive_private_key(scalar, ec.SECP384R1())


def _resigned(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """``cert`` with every field kept and its signature made by ``key`` instead of its issuer's."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA384(), ecdsa_deterministic=True)


def _bomb(entry: EvidenceEntry) -> bytes:
    """The evidence JSON, then :data:`BOMB_PADDING` bytes of JSON whitespace, in one zlib stream."""
    packer = zlib.compressobj(9)
    pieces = [packer.compress(jsonwire.dumps([entry.to_json()]))]
    block = b" " * (1024 * 1024)
    for _ in range(BOMB_PADDING // len(block)):
        pieces.append(packer.compress(block))
    pieces.append(packer.flush())
    return b"".join(pieces)
