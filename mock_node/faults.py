"""The fault catalogue: named, deterministic ways for the mock node to be wrong.

Every fault is a transform of a correct exchange, expressed as a change to :class:`Behaviour`, and
names the docs/spec.md requirements it violates. A suite that claims to test a requirement must catch
the faults that violate it; the meta-test proves that for every fault in this table. Faults are
chosen per process (``--fault NAME``, repeatable) or per request (``X-Mock-Fault: NAME[,NAME]``, only
when the node runs with ``--allow-fault-header``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.taxonomy import Face

from .behaviour import Behaviour


@dataclass(frozen=True)
class Fault:
    name: str
    category: str
    wire_effect: str
    violates: tuple[str, ...]
    changes: dict[str, object]
    caught_by: tuple[str, ...] = ()  # the suite's check ids that must fail under this fault
    face: Face = "proxy"  # the face the meta-test serves while proving the fault is caught

    def apply(self, behaviour: Behaviour) -> Behaviour:
        merged: dict[str, object] = {}
        for knob, value in self.changes.items():
            if knob == "stream_shape":
                assert isinstance(value, frozenset)
                merged[knob] = behaviour.stream_shape | value
            else:
                merged[knob] = value
        return behaviour.but(**merged)


def _f(name: str, category: str, wire_effect: str, violates: Iterable[str], **changes: object) -> Fault:
    return Fault(name, category, wire_effect, tuple(violates), changes, CAUGHT_BY[name])


def _node(name: str, wire_effect: str, violates: Iterable[str], **changes: object) -> Fault:
    """A fault of the node face (the proxy's hop): meaningful only when the mock serves ``--face node``."""
    return Fault(name, "node-face", wire_effect, tuple(violates), changes, CAUGHT_BY[name], face="node")


# Which checks of the suite (conformance.checks) must fail when the fault is on. The meta-test proves
# each entry: the named checks fail under the fault and pass against the clean mock.
CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "stream-nonce-reuse": ("NONCE-003", "NONCE-005"),
    "static-nonce": ("NONCE-004",),
    "echo-request-nonce": ("NONCE-001", "NONCE-002"),
    "wrong-response-hash": ("HASH-001", "HASH-002"),
    "sha256-response-hash": ("HASH-001", "HASH-003"),
    "reserialized-response-hash": ("HASH-001", "HASH-003"),
    "signature-wrong-bytes": ("SIG-004",),
    "foreign-signer": ("SIG-006", "SIG-007"),
    "malleated-signature": ("SIG-005",),
    "missing-signature": ("SIG-001", "SIG-002"),
    "urlsafe-base64": ("ENC-002",),
    "unpadded-base64": ("ENC-003",),
    "truncated-tag": ("AEAD-001", "AEAD-002"),
    "response-other-salt": ("AEAD-001", "AEAD-002"),
    "response-hkdf-info": ("AEAD-001", "AEAD-002"),
    "usage-mismatch": ("USAGE-003", "USAGE-004"),
    "usage-absent": ("USAGE-005",),
    "drop-usage-chunk": ("STREAM-005",),
    "duplicate-chunk": ("STREAM-006",),
    "reorder-chunks": ("STREAM-006",),
    "done-sentinel": ("STREAM-004",),
    "keepalive-flood": ("STREAM-007",),
    "accept-tampered-ciphertext": ("ERR-001", "ERR-002"),
    "accept-wrong-plaintext-hash": ("ERR-007",),
    "accept-expired-lock": ("LOCK-010",),
    "accept-low-order-key": ("ERR-008",),
    "accept-replay": ("REPLAY-001",),
    "accept-foreign-lock": ("LOCK-011",),
    "accept-long-plaintext-hash": ("ERR-016", "ERR-017"),
    "500-on-client-error": ("ERR-017",),
    "leak-hashes-in-error": ("ERR-019",),
    "leak-plaintext-in-error": ("ERR-019",),
    "oversize-text-plain": ("ERR-018",),
    "lock-low-order-key": ("LOCK-004",),
    "lock-short-key": ("LOCK-003",),
    "node-accept-missing-signature": ("NODE-001",),
    "node-accept-invalid-signature": ("NODE-002", "NODE-004"),
    "node-ignore-stack-owner": ("NODE-003",),
    "node-signature-unverified": ("NODE-004",),
    "node-accept-long-hash": ("NODE-005",),
    "node-stream-without-request-id": ("NODE-006",),
    "node-trust-stack-header": ("NODE-007",),
}


CATALOGUE: tuple[Fault, ...] = (
    # nonces
    _f(
        "stream-nonce-reuse",
        "nonce",
        "every chunk of a stream carries the same nonce (the upstream node's W1)",
        ["R12.2", "R12.3"],
        stream_nonce="per-stream",
    ),
    _f(
        "static-nonce",
        "nonce",
        "every response and chunk uses one fixed nonce, whatever the key",
        ["R12.5"],
        response_nonce="static",
        stream_nonce="static",
    ),
    _f(
        "echo-request-nonce",
        "nonce",
        "responses and chunks reuse the request's nonce under the same key",
        ["R12.1", "R12.4"],
        response_nonce="echo-request",
        stream_nonce="echo-request",
    ),
    # response_hash
    _f(
        "wrong-response-hash",
        "hash",
        "response_hash is BLAKE2b-256 of other bytes than those encrypted",
        ["R6.3"],
        response_hash="wrong",
    ),
    _f(
        "sha256-response-hash",
        "hash",
        "response_hash is SHA-256 of the plaintext instead of BLAKE2b-256",
        ["R6.1", "R6.3"],
        response_hash="sha256",
    ),
    _f(
        "reserialized-response-hash",
        "hash",
        "response_hash covers a re-serialization (spaces) of the plaintext, not the encrypted bytes",
        ["R6.3", "R6.4"],
        response_hash="reserialized",
    ),
    # signatures
    _f(
        "signature-wrong-bytes",
        "signature",
        "the signature covers H(ciphertext) instead of response_hash",
        ["R7.3", "R7.7"],
        signature="wrong-bytes",
    ),
    _f(
        "foreign-signer",
        "signature",
        "each message is signed by a fresh key that is not the node's",
        ["R7.8"],
        signature="foreign-signer",
    ),
    _f(
        "malleated-signature",
        "signature",
        "ECDSA signatures are sent as their high-s twin; Ed25519 ones with S + L",
        ["R7.2", "R7.5"],
        signature="malleated",
    ),
    _f("missing-signature", "signature", "signature is null", ["R7.7"], signature="missing"),
    # encodings
    _f(
        "urlsafe-base64",
        "encoding",
        "ciphertext is sent in the URL-safe base64 alphabet",
        ["R8.4", "R13.2"],
        ciphertext_encoding="urlsafe",
    ),
    _f(
        "unpadded-base64",
        "encoding",
        "response_hash is sent without its '=' padding",
        ["R6.3", "R13.2"],
        hash_encoding="unpadded",
    ),
    # AEAD
    _f(
        "truncated-tag", "aead", "the GCM tag on every response and chunk is cut to 12 bytes", ["R5.2"], tag="truncated"
    ),
    _f(
        "response-other-salt",
        "aead",
        "responses are encrypted under HKDF with another salt than the request's",
        ["R4.5"],
        response_key="other-salt",
    ),
    _f(
        "response-hkdf-info",
        "aead",
        "responses are encrypted under HKDF with info 'response' instead of empty",
        ["R4.4", "R4.5"],
        response_key="hkdf-info",
    ),
    # usage
    _f(
        "usage-mismatch",
        "usage",
        "the clear usage reports one more completion token than the encrypted usage",
        ["R11.4"],
        clear_usage="mismatch",
    ),
    _f(
        "usage-absent",
        "usage",
        "the clear usage member is omitted although the plaintext carries usage",
        ["R11.5"],
        clear_usage="absent",
    ),
    # streaming
    _f(
        "drop-usage-chunk",
        "stream",
        "the final usage chunk of a stream is not sent",
        ["R9.11"],
        stream_shape=frozenset({"drop-usage"}),
    ),
    _f(
        "duplicate-chunk",
        "stream",
        "the second event of a stream (chat: the first content chunk) is sent twice",
        ["R9.12", "R12.3"],
        stream_shape=frozenset({"duplicate"}),
    ),
    _f(
        "reorder-chunks",
        "stream",
        "the last two events of a stream are swapped, so a content chunk follows the usage chunk",
        ["R9.12"],
        stream_shape=frozenset({"reorder"}),
    ),
    _f(
        "done-sentinel",
        "stream",
        "a 'data: [DONE]' event is sent before the body ends",
        ["R9.8"],
        stream_shape=frozenset({"done"}),
    ),
    _f(
        "keepalive-flood",
        "stream",
        "25 keep-alive comments are sent before the first event",
        ["R9.7"],
        keepalive_comments=25,
    ),
    # acceptance
    _f(
        "accept-tampered-ciphertext",
        "acceptance",
        "a request whose GCM tag fails is answered 200 with a made-up completion",
        ["R5.4", "R10.5", "R10.8"],
        accept_tampered_ciphertext=True,
    ),
    _f(
        "accept-wrong-plaintext-hash",
        "acceptance",
        "a request whose plaintext_body_hash does not match is served",
        ["R6.2", "R10.6"],
        accept_wrong_plaintext_hash=True,
    ),
    _f(
        "accept-expired-lock",
        "acceptance",
        "a request on a lock past its timeout is served",
        ["R2.11", "R2.13"],
        accept_expired_lock=True,
    ),
    _f(
        "accept-low-order-key",
        "acceptance",
        "a request with a low-order client_dh_public_key is served (W17)",
        ["R4.2"],
        accept_low_order_key=True,
    ),
    _f(
        "accept-replay",
        "acceptance",
        "an identical replayed request is served again (W23)",
        ["R12.7"],
        accept_replay=True,
    ),
    _f(
        "accept-foreign-lock",
        "acceptance",
        "a lock taken with one API key serves another key's request (W9)",
        ["R2.14"],
        accept_foreign_lock=True,
    ),
    _f(
        "accept-long-plaintext-hash",
        "acceptance",
        "a 33-byte plaintext_body_hash is not refused at the proxy (W8)",
        ["R7.13", "R3.9"],
        accept_long_plaintext_hash=True,
    ),
    # errors
    _f(
        "500-on-client-error",
        "errors",
        "every client-caused refusal is answered 500 INTERNAL_ERROR (W12)",
        ["R10.2"],
        client_error_status="500",
        crypto_error_status=500,
    ),
    _f(
        "leak-hashes-in-error",
        "errors",
        "a hash mismatch is answered 400 INVALID_BODY whose message lists both hashes (W12)",
        ["R10.9"],
        error_leak="hashes",
    ),
    _f(
        "leak-plaintext-in-error",
        "errors",
        "plaintext-level error messages quote the decrypted request",
        ["R10.9"],
        error_leak="plaintext",
    ),
    _f(
        "oversize-text-plain",
        "errors",
        "an oversize body is answered 413 text/plain instead of a JSON error (W28)",
        ["R3.18", "R10.1"],
        oversize_response="text",
    ),
    # lock endpoint
    _f(
        "lock-low-order-key",
        "lock",
        "the lock hands out a low-order X25519 public key (all-zero shared secret)",
        ["R2.7"],
        lock_public_key="low-order",
    ),
    _f("lock-short-key", "lock", "the lock's public_key decodes to 31 bytes", ["R2.6"], lock_public_key="short"),
    # the node face
    _node(
        "node-accept-missing-signature",
        "a request without X-Signature is served",
        ["R7.11"],
        x_signature="accept-missing",
    ),
    _node(
        "node-accept-invalid-signature",
        "an X-Signature that cannot be parsed or does not verify is ignored and the request served",
        ["R7.11"],
        x_signature="accept-invalid",
    ),
    _node(
        "node-signature-unverified",
        "X-Signature is parsed but never verified, so a signature over another hash is accepted",
        ["R7.11"],
        x_signature="parse-only",
    ),
    _node(
        "node-ignore-stack-owner",
        "a valid X-Signature by any address is accepted for any stack",
        ["R7.12"],
        check_stack_owner=False,
    ),
    _node(
        "node-accept-long-hash",
        "a 33-byte plaintext_body_hash passes the header checks and fails later with 500",
        ["R3.9", "R10.2"],
        node_long_hash="accept",
    ),
    _node(
        "node-stream-without-request-id",
        "a streaming request without X-Request-Id is served",
        ["R1.7"],
        missing_request_id="accept",
    ),
    _node(
        "node-trust-stack-header",
        "the caller's X-Stack-Small-Id header decides the stack instead of the envelope",
        ["R1.8"],
        stack_from="header",
    ),
)

FAULTS: dict[str, Fault] = {fault.name: fault for fault in CATALOGUE}


class UnknownFault(ValueError):
    """A fault name that is not in the catalogue."""


def resolve(names: Iterable[str]) -> list[Fault]:
    """Look up fault names, refusing unknown ones with the list of valid names."""
    out = []
    for name in names:
        name = name.strip()
        if name not in FAULTS:
            raise UnknownFault(f"unknown fault {name!r}; see 'atoma-conformance mock --list-faults'")
        out.append(FAULTS[name])
    return out


def apply_all(behaviour: Behaviour, faults: Iterable[Fault]) -> Behaviour:
    for fault in faults:
        behaviour = fault.apply(behaviour)
    return behaviour
