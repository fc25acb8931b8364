"""The fault catalogue: named, deterministic ways for the mock node to be wrong.

Every fault is a transform of a correct exchange, expressed as a change to :class:`Behaviour`, and
names the docs/spec.md requirements it violates. A suite that claims to test a requirement must catch
the faults that violate it; the meta-test proves that for every fault in this table, except the
"concurrency" faults, which show only with requests in flight at once: for those the meta-test proves a
serial run passes, and ``atoma-conformance load`` is what catches them (tests/test_load.py). Faults are
chosen per process (``--fault NAME``, repeatable) or per request (``X-Mock-Fault: NAME[,NAME]``, only
when the node runs with ``--allow-fault-header``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.protocol import Scheme
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
    owner: Scheme = Scheme.ED25519  # node face: the stack owner's scheme the meta-test signs X-Signature with
    # Shows only when requests are in flight at once: a serial run passes every check under it, and
    # caught_by names the checks that fail under `atoma-conformance load` (tests/test_load.py), not the catalogue's.
    concurrent: bool = False

    def apply(self, behaviour: Behaviour) -> Behaviour:
        """``behaviour`` with this fault's changes; a set-valued knob (the shapes) gains the fault's members,
        so two faults on the same knob compose."""
        merged: dict[str, object] = {}
        for knob, value in self.changes.items():
            current = getattr(behaviour, knob)
            merged[knob] = current | value if isinstance(value, frozenset) else value
        return behaviour.but(**merged)


def _f(name: str, category: str, wire_effect: str, violates: Iterable[str], **changes: object) -> Fault:
    return Fault(name, category, wire_effect, tuple(violates), changes, CAUGHT_BY[name])


def _node(
    name: str, wire_effect: str, violates: Iterable[str], *, owner: Scheme = Scheme.ED25519, **changes: object
) -> Fault:
    """A fault of the node face (the proxy's hop): meaningful only when the mock serves ``--face node``;
    ``owner`` is the stack owner's scheme that reaches it (an ECDSA flaw is invisible to an Ed25519 owner)."""
    return Fault(name, "node-face", wire_effect, tuple(violates), changes, CAUGHT_BY[name], face="node", owner=owner)


def _race(name: str, wire_effect: str, violates: Iterable[str], **changes: object) -> Fault:
    """A fault of the "concurrency" category: invisible one request at a time (tests/test_meta_faults.py
    proves the serial run passes every check under it), caught only by ``atoma-conformance load``."""
    return Fault(name, "concurrency", wire_effect, tuple(violates), changes, CAUGHT_BY[name], concurrent=True)


# The round-trip checks: every endpoint's answer decrypts, hashes and verifies. A fault that breaks any
# message of every answer breaks them too, for their own reason (a client cannot use the answer).
ROUND_TRIP = ("ENDPOINT-001", "ENDPOINT-002", "ENDPOINT-003", "ENDPOINT-004", "ENDPOINT-005", "ENDPOINT-006")

# Which checks of the suite (conformance.checks) must fail when the fault is on: every check whose own
# rule the fault breaks, and no other. The meta-test proves each entry: the named checks fail under the
# fault and pass against the clean mock.
CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "stream-nonce-reuse": ("NONCE-003", "NONCE-005"),
    "static-nonce": ("NONCE-003", "NONCE-004", "NONCE-005"),
    "echo-request-nonce": ("NONCE-001", "NONCE-002", "NONCE-003", "NONCE-005"),
    "wrong-response-hash": ("HASH-001", "HASH-002", "HASH-003", *ROUND_TRIP),
    "sha256-response-hash": ("HASH-001", "HASH-002", "HASH-003", *ROUND_TRIP),
    "reserialized-response-hash": ("HASH-001", "HASH-002", "HASH-003", *ROUND_TRIP),
    "signature-wrong-bytes": ("SIG-004", *ROUND_TRIP),
    "foreign-signer": ("SIG-006", "SIG-007"),
    "malleated-signature": ("SIG-004", "SIG-005", *ROUND_TRIP),
    "missing-signature": ("SIG-001", "SIG-002", *ROUND_TRIP),
    "bare-signature": ("SIG-003", *ROUND_TRIP),
    "urlsafe-base64": ("ENC-002", *ROUND_TRIP),
    "unpadded-base64": ("ENC-003", *ROUND_TRIP),
    "nonce-trailing-newline": ("ENC-001", *ROUND_TRIP),
    "wrapped-signature": ("ENC-004", *ROUND_TRIP),
    "images-text-plain": ("ENC-005", "ENDPOINT-004"),
    "extra-envelope-member": ("ENC-006",),
    "sorted-envelope-members": ("ENC-007", "ENC-008"),
    "image-usage": ("ENC-009",),
    "pretty-json": ("ENC-010",),
    "double-encoded-image": ("AEAD-003",),
    "float-created": ("AEAD-004", "AEAD-005", "AEAD-007"),
    "base64-embeddings": ("AEAD-006",),
    "swapped-chunk-objects": ("AEAD-008", "AEAD-009"),
    "null-content": ("AEAD-010",),
    "shared-key-slot": ("AEAD-011",),
    # Concurrency faults: the checks that fail under `atoma-conformance load`, which judges every answer by
    # the rulebook (conformance.checks.judging): an answer sealed under another request's key does not open
    # (AEAD-001 for a response, AEAD-002 for a stream's chunks; its hash and signature are still right),
    # and a nonce handed to two requests is one node nonce under two keys (NONCE-004; no key sees it twice).
    "handler-key-race": ("AEAD-001", "AEAD-002"),
    "handler-nonce-race": ("NONCE-004",),
    "truncated-tag": ("AEAD-001", "AEAD-002", *ROUND_TRIP),
    "response-other-salt": ("AEAD-001", "AEAD-002", *ROUND_TRIP),
    "response-hkdf-info": ("AEAD-001", "AEAD-002", *ROUND_TRIP),
    "usage-mismatch": ("USAGE-003", "USAGE-004"),
    "usage-absent": ("USAGE-005",),
    "float-token-counts": ("USAGE-001",),
    "total-without-prompt": ("USAGE-002",),
    "malformed-usage-details": ("USAGE-006",),
    "zero-completion-tokens": ("USAGE-007",),
    "stream-octet-stream": ("STREAM-001", "ENDPOINT-005", "ENDPOINT-006"),
    "stream-no-cache-control": ("STREAM-002",),
    "data-keepalive": ("STREAM-003",),
    "stream-embeddings": ("STREAM-008",),
    "stream-images": ("STREAM-008",),
    # the plaintext and the body's framing (conformance/checks/sections/plaintext.py, key_encodings.py)
    "model-from-envelope": ("ERR-030",),
    "unservable-plaintext-500": ("ERR-017", "ERR-031"),
    "node-unknown-model-404": ("ERR-011", "ERR-032"),
    "size-limit-content-length-only": ("ERR-033",),
    "body-limit-exclusive": ("ENDPOINT-016",),
    "chunked-body-refused": ("ENDPOINT-015", "ERR-033"),
    "charset-refused": ("ENDPOINT-014",),
    "unknown-member-refused": ("ENDPOINT-011",),
    "request-hash-reserialized": ("ENDPOINT-012",),
    "client-key-top-bit-refused": ("ENDPOINT-013",),
    "unset-stream-streams": ("ENDPOINT-010",),
    "unterminated-final-event": ("STREAM-005", "STREAM-009"),
    "drop-usage-chunk": ("STREAM-005",),
    "duplicate-chunk": ("NONCE-003", "NONCE-005", "STREAM-006"),
    "reorder-chunks": ("STREAM-005", "STREAM-006"),
    "done-sentinel": ("STREAM-004",),
    "keepalive-flood": ("STREAM-007",),
    "accept-tampered-ciphertext": ("ERR-001", "ERR-002", "ERR-003", "ERR-004", "ERR-005"),
    "accept-wrong-plaintext-hash": ("ERR-007",),
    "accept-expired-lock": ("LOCK-010",),
    "accept-low-order-key": ("ERR-008",),
    "accept-replay": ("REPLAY-001",),
    "accept-foreign-lock": ("LOCK-011",),
    "accept-long-plaintext-hash": ("ERR-016", "ERR-017"),
    "ignore-node-key": ("ERR-006",),
    "lenient-base64": ("ERR-014", "ERR-015"),
    "lenient-node-key-base64": ("ERR-014",),
    "ignore-content-type": ("ERR-022",),
    "ignore-model-name": ("ERR-023",),
    "serve-any-model": ("ERR-011", "ERR-023", "ERR-032"),
    "unknown-stack-pass-through": ("ERR-012",),
    "confidential-without-bearer": ("ERR-021", "ERR-028"),
    "any-bearer-token": ("LOCK-014", "ERR-029"),
    "token-after-lock": ("ERR-028", "LOCK-011"),
    "null-units-free": ("LOCK-019",),
    "lock-capacity-ignored": ("LOCK-019",),
    "echo-hash-header": ("ERR-025",),
    "no-body-limit": ("ERR-013", "ERR-033"),
    "validation-errors-200": (
        *("ERR-009", "ERR-010", "ERR-013", "ERR-014", "ERR-015", "ERR-016", "ERR-022", "ERR-024"),
        *("ERR-033", "ERR-035"),
    ),
    "refusal-jams-stack": ("ERR-020",),
    # Every refusal check now names its status, so each refusal answered 500 fails its own check too.
    "mispaired-error-codes": (
        *("ERR-026", "ERR-028", "ERR-029"),
        *("LOCK-007", "LOCK-013", "LOCK-014", "LOCK-016", "LOCK-019"),
        *("ERR-030", "ERR-032", "ERR-033"),
    ),
    "500-on-client-error": (
        *("ERR-001", "ERR-002", "ERR-003", "ERR-004", "ERR-005", "ERR-006", "ERR-007", "ERR-008", "ERR-009"),
        *("ERR-010", "ERR-011", "ERR-012", "ERR-013", "ERR-014", "ERR-015", "ERR-016", "ERR-017", "ERR-022"),
        *("ERR-024", "LOCK-009", "LOCK-010", "LOCK-011", "REPLAY-001"),
        *("LOCK-015", "LOCK-016", "LOCK-019"),
        *("ERR-030", "ERR-031", "ERR-032", "ERR-033", "ERR-035", "STREAM-008"),
    ),
    "leak-hashes-in-error": ("ERR-019",),
    "leak-plaintext-in-error": ("ERR-019",),
    "oversize-text-plain": ("ERR-018", "ERR-033"),
    "routing-errors-text-plain": ("ERR-018", "ERR-027"),
    "lock-low-order-key": ("LOCK-004",),
    "lock-short-key": ("LOCK-003",),
    "lock-text-plain": ("LOCK-001",),
    "lock-members-sorted": ("LOCK-002",),
    "lock-string-ids": ("LOCK-005",),
    "lock-digest-omitted": ("LOCK-001", "LOCK-006"),
    "lock-without-bearer": ("LOCK-007", "LOCK-013", "LOCK-017"),
    "lock-body-before-token": ("LOCK-017",),
    "lock-rejections-text-plain": ("ERR-018", "LOCK-015", "LOCK-016"),
    "lock-ignore-content-type": ("LOCK-016",),
    "lock-deny-unknown-members": ("LOCK-018",),
    "lock-null-tokens-zero": ("LOCK-018",),
    "lock-unknown-model-500": ("LOCK-008",),
    "reusable-lock": ("LOCK-009",),
    "node-accept-missing-signature": ("NODE-001",),
    "node-accept-invalid-signature": ("NODE-002", "NODE-004"),
    "node-ignore-stack-owner": ("NODE-003",),
    "node-signature-unverified": ("NODE-004",),
    "node-accept-long-hash": ("ERR-017", "NODE-005"),
    "node-stream-without-request-id": ("NODE-006",),
    "node-trust-stack-header": ("NODE-007",),
    "node-ecdsa-accept-high-s": ("NODE-008",),
    "node-ecdsa-unchecked-scalars": ("NODE-009",),
    "node-ecdsa-unchecked-point": ("NODE-010",),
    "node-empty-signature-500": ("NODE-011",),
    # every request of an ECDSA owner is refused: the checks that judge served answers' statuses fail too
    "node-address-ed25519-flag": ("NODE-012", "ENC-005", "STREAM-001", *ROUND_TRIP),
    # key binding (docs/spec.md §15; mock_node/chain.py): each breaks one step of what a lock's key is bound by
    "lock-key-uncommitted": ("KEY-001",),
    "lock-key-stale": ("KEY-001",),
    "node-key-uncommitted": ("KEY-011",),
    "commitment-ambiguous": ("KEY-002",),
    "evidence-zlib-bomb": ("KEY-003",),
    "evidence-other-key": ("KEY-004",),
    "evidence-broken-chain": ("KEY-005",),
    "evidence-signature-other-bytes": ("KEY-006",),
    "evidence-fwid-mismatch": ("KEY-007",),
    "evidence-measurement-drift": ("KEY-012",),
    "attestation-service-stale": ("KEY-008",),
    "commitment-behind": ("KEY-009",),
    "commitment-old": ("KEY-010",),
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
    _race(
        "handler-nonce-race",
        "each handler hands out one pre-drawn nonce and refills it from an async entropy source (10 ms) after "
        "handing it out: a request to the same handler that draws meanwhile, for its response or any chunk, "
        "gets the same nonce under its own key. One request never gets a nonce twice",
        ["R12.5"],
        nonce_source="handler-slot",
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
    _f(
        "nonce-trailing-newline",
        "encoding",
        "every nonce is written by a MIME base64 encoder, which ends it with a newline",
        ["R8.4", "R9.4"],
        nonce_encoding="mime",
    ),
    _f(
        "wrapped-signature",
        "encoding",
        "every signature is MIME base64: broken into 76-character lines, each ended by a newline",
        ["R7.1"],
        signature_format="mime-wrapped",
    ),
    _f(
        "bare-signature",
        "signature",
        "every signature is the bare 64-byte signature, without the Sui flag byte and public key",
        ["R7.1", "R7.7"],
        signature_format="bare",
    ),
    # the response envelope and its HTTP answer
    _f(
        "images-text-plain",
        "envelope",
        "the image response is sent with Content-Type text/plain (its handler returns a string)",
        ["R8.1"],
        plain_text_answers=frozenset({"images"}),
    ),
    _f(
        "extra-envelope-member",
        "envelope",
        "every non-streaming envelope carries one more member, the node's request_id",
        ["R8.2", "R8.3"],
        envelope_shape=frozenset({"extra-member"}),
    ),
    _f(
        "sorted-envelope-members",
        "envelope",
        "response and chunk envelopes list their members alphabetically (a sorted JSON map)",
        ["R8.2", "R9.4"],
        envelope_shape=frozenset({"sorted"}),
    ),
    _f(
        "image-usage",
        "envelope",
        'the image response envelope carries "usage": null (an Option serialized as null, not skipped)',
        ["R8.3"],
        envelope_shape=frozenset({"image-usage"}),
    ),
    _f(
        "pretty-json",
        "envelope",
        "non-streaming bodies are pretty-printed JSON (two-space indent, newlines)",
        ["R8.2"],
        envelope_shape=frozenset({"pretty"}),
    ),
    # the plaintext answer
    _f(
        "double-encoded-image",
        "plaintext",
        "the image plaintext is the answer's JSON serialized again, as one JSON string",
        ["R8.5"],
        answer_shape=frozenset({"double-encoded-images"}),
    ),
    _f(
        "float-created",
        "plaintext",
        "created is a float timestamp (time.time()) in every answer and chunk",
        ["R8.6", "R8.8", "R8.10"],
        answer_shape=frozenset({"float-created"}),
    ),
    _f(
        "base64-embeddings",
        "plaintext",
        "embeddings are base64 float32 strings, though the request did not ask for base64",
        ["R8.9"],
        answer_shape=frozenset({"base64-embeddings"}),
    ),
    _f(
        "swapped-chunk-objects",
        "plaintext",
        "chat chunks say object text_completion and completion chunks chat.completion.chunk",
        ["R9.12"],
        answer_shape=frozenset({"swapped-chunk-objects"}),
    ),
    _f(
        "null-content",
        "plaintext",
        "the chat answer's message content is null",
        ["R8.7"],
        answer_shape=frozenset({"null-content"}),
    ),
    # AEAD
    _f(
        "shared-key-slot",
        "aead",
        "the node keeps K in one node-wide slot while its backend runs (200 ms): of two overlapping "
        "requests, the first is answered under the second's key",
        ["R4.5", "R4.6"],
        key_slot="node-wide",
    ),
    _race(
        "handler-key-race",
        "each handler (endpoint and stream mode) keeps K in its own slot across the model's 50 ms: of two "
        "requests to one handler in flight at once, the first is answered under the second's key. Unlike "
        "shared-key-slot's node-wide slot, which the suite's overlapping chat request and chat stream meet "
        "in (AEAD-011), two handlers never share a slot, so only load shows it",
        ["R4.5", "R4.6"],
        key_slot="per-handler",
    ),
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
    _f(
        "float-token-counts",
        "usage",
        "every usage count is a JSON float (12.0), in the plaintext and in clear",
        ["R11.1"],
        answer_shape=frozenset({"float-token-counts"}),
    ),
    _f(
        "total-without-prompt",
        "usage",
        "total_tokens counts only the completion tokens, in the plaintext and in clear",
        ["R11.2"],
        answer_shape=frozenset({"total-without-prompt"}),
    ),
    _f(
        "malformed-usage-details",
        "usage",
        "text usage carries completion_tokens_details with a -1 'unknown' sentinel",
        ["R11.3"],
        answer_shape=frozenset({"malformed-usage-details"}),
    ),
    _f(
        "zero-completion-tokens",
        "usage",
        "text answers report 0 completion tokens (and total = prompt), though they carry text",
        ["R11.1"],
        answer_shape=frozenset({"zero-completion-tokens"}),
    ),
    # streaming
    _f(
        "stream-octet-stream",
        "stream",
        "streams are sent with Content-Type application/octet-stream",
        ["R9.2"],
        stream_media_type="application/octet-stream",
    ),
    _f(
        "stream-no-cache-control",
        "stream",
        "streams are sent without Cache-Control: no-cache",
        ["R9.2"],
        stream_cache_control=False,
    ),
    _f(
        "data-keepalive",
        "stream",
        "a 'data: keep-alive' event (an event, not a comment) precedes the first chunk",
        ["R9.3", "R9.8"],
        stream_shape=frozenset({"data-keepalive"}),
    ),
    _f(
        "stream-embeddings",
        "stream",
        "an embeddings request whose envelope says stream: true gets an event stream of one chunk (the envelope's "
        "flag decides, on every endpoint)",
        ["R9.1"],
        streamable=frozenset({"embeddings"}),
    ),
    _f(
        "stream-images",
        "stream",
        "an image request that asks for a stream (envelope and plaintext) gets an event stream of one chunk",
        ["R9.1"],
        streamable=frozenset({"images"}),
    ),
    # the plaintext and the body's framing
    _f(
        "model-from-envelope",
        "acceptance",
        "a plaintext without a string model is served with the model the clear model_name names",
        ["R3.14"],
        plaintext_model="envelope",
    ),
    _f(
        "unservable-plaintext-500",
        "errors",
        "a plaintext the model cannot serve (chat messages as a string) is answered 500 INTERNAL_ERROR",
        ["R10.2"],
        unservable_plaintext="500",
    ),
    _node(
        "node-unknown-model-404",
        "the node face answers a model it does not serve with the proxy face's 404 NOT_FOUND",
        ["R3.14"],
        node_unknown_model="404",
    ),
    _f(
        "size-limit-content-length-only",
        "errors",
        "the size limit judges the Content-Length header alone: a chunked body over 2 MiB is read whole",
        ["R3.18"],
        body_limit_reads="content-length",
    ),
    _f(
        "body-limit-exclusive",
        "acceptance",
        "a body of exactly 2 MiB is refused 413 (the limit compared with >=)",
        ["R3.17"],
        body_limit_edge="exclusive",
    ),
    _f(
        "chunked-body-refused",
        "acceptance",
        "a body sent with Transfer-Encoding: chunked (no Content-Length) is refused 411",
        ["R3.17", "R3.18"],
        chunked_bodies="411",
    ),
    _f(
        "charset-refused",
        "acceptance",
        "Content-Type application/json; charset=utf-8 is refused 415 (the header compared whole)",
        ["R3.3"],
        content_type_match="exact",
    ),
    _f(
        "unknown-member-refused",
        "acceptance",
        "an envelope with a member the node does not know is refused 400 (a parser that denies unknown fields)",
        ["R3.2"],
        unknown_envelope_members="refuse",
    ),
    _f(
        "request-hash-reserialized",
        "hash",
        "the node hashes its compact re-serialization of the decrypted plaintext, not the bytes (W11)",
        ["R3.15", "R6.2", "R6.4"],
        plaintext_hash_input="reserialized",
    ),
    _f(
        "client-key-top-bit-refused",
        "acceptance",
        "a client_dh_public_key with bit 255 set is refused 400 (RFC 7748 says ignore the bit)",
        ["R4.1"],
        client_key_top_bit="refuse",
    ),
    _f(
        "unset-stream-streams",
        "acceptance",
        "an envelope whose stream is absent or null is answered with an event stream",
        ["R1.5", "R3.12"],
        unset_stream="event-stream",
    ),
    _f(
        "unterminated-final-event",
        "stream",
        "the body ends one newline short: the last event (the usage chunk) is never terminated",
        ["R9.3", "R9.9", "R9.11"],
        stream_shape=frozenset({"unterminated"}),
    ),
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
    _f(
        "ignore-node-key",
        "acceptance",
        "node_dh_public_key is never compared with the node's key: any addressed key is served",
        ["R3.13", "R10.3"],
        check_node_key=False,
    ),
    _f(
        "lenient-base64",
        "acceptance",
        "binary members are decoded forgivingly: either alphabet, padding optional, whitespace ignored",
        ["R3.4"],
        base64_decoding="lenient",
    ),
    _f(
        "lenient-node-key-base64",
        "acceptance",
        "node_dh_public_key alone is decoded forgivingly (it is compared with the node's key, not used in "
        "HKDF, so a node may read it apart from the others); every other member stays strict",
        ["R3.4"],
        lenient_base64_members=frozenset({"node_dh_public_key"}),
    ),
    _f(
        "ignore-content-type",
        "acceptance",
        "a confidential body is parsed as JSON whatever its Content-Type",
        ["R3.3"],
        check_content_type=False,
    ),
    _f(
        "ignore-model-name",
        "acceptance",
        "the envelope's model_name and stream are never compared with the plaintext (W4)",
        ["R3.16"],
        check_consistency=False,
    ),
    _f(
        "serve-any-model",
        "acceptance",
        "any plaintext model is served (by the one model the node runs), and model_name is not compared",
        ["R3.14", "R3.16"],
        check_model=False,
        check_consistency=False,
    ),
    _f(
        "unknown-stack-pass-through",
        "acceptance",
        "a request naming a stack the proxy has no record of is served without a lock",
        ["R2.13", "R2.15"],
        unknown_stack="pass-through",
    ),
    _f(
        "confidential-without-bearer",
        "acceptance",
        "confidential requests are served without a bearer token (no auth middleware on the route; "
        "per process only, as X-Mock-Fault is read after authentication)",
        ["R10.7"],
        confidential_requires_bearer=False,
    ),
    _f(
        "any-bearer-token",
        "acceptance",
        "any well-formed bearer token is let in, on the lock and the confidential endpoints: the configured "
        "API keys are never compared (per process only, as X-Mock-Fault is read after authentication)",
        ["R2.2", "R10.7"],
        check_api_key=False,
    ),
    _f(
        "token-after-lock",
        "acceptance",
        "a confidential request spends a lock on its stack before its bearer token is checked, so a "
        "request refused 401 leaves the caller's lock spent",
        ["R10.7"],
        token_after_lock=True,
    ),
    _f(
        "null-units-free",
        "acceptance",
        "a request whose num_compute_units is null or absent counts as 0 units (an Option read as its "
        "default), so a lock of any size admits it",
        ["R2.12", "R2.13"],
        compute_units="null-as-zero",
    ),
    _f(
        "lock-capacity-ignored",
        "acceptance",
        "a request consumes any unexpired lock on its stack, whatever its num_compute_units and the lock's "
        "max_num_tokens",
        ["R2.12", "R2.13"],
        compute_units="ignore-capacity",
    ),
    # errors
    _f(
        "echo-hash-header",
        "errors",
        "every served answer carries X-Plaintext-Body-Hash, the request's plaintext_body_hash, in clear",
        ["R10.9"],
        echo_hash_header=True,
    ),
    _f(
        "no-body-limit",
        "errors",
        "only the 1 GiB middleware limits the body (W28): a body over 2 MiB is read whole and refused 400 "
        "for its content, not 413 for its size",
        ["R3.18"],
        body_limit="middleware",
    ),
    _f(
        "validation-errors-200",
        "errors",
        "a request refused before decryption (Content-Type, size, JSON shape, base64, lengths) is answered "
        "200 with the JSON error body",
        ["R10.8", "R3.1", "R3.3", "R3.18", "R10.3"],
        validation_error_status="200",
    ),
    _f(
        "refusal-jams-stack",
        "errors",
        "a request refused after its lock was consumed never releases the stack: later requests on it get 425",
        ["R10.10"],
        release_stack_on_refusal=False,
    ),
    _f(
        "mispaired-error-codes",
        "errors",
        "every 4xx refusal carries a Table 10.1 code of another status (400 AUTH_ERROR, 401 REQUEST_ERROR)",
        ["R10.11", "R10.12"],
        error_codes="mispaired",
    ),
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
    _f(
        "routing-errors-text-plain",
        "errors",
        "a request to a path with no route, or with a method its route does not take, gets the web "
        "framework's own 404 or 405 with a text/plain body",
        ["R10.1"],
        routing_errors="text",
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
    _f(
        "lock-text-plain",
        "lock",
        "the lock reply is sent with Content-Type text/plain",
        ["R2.5"],
        lock_reply=frozenset({"text-plain"}),
    ),
    _f(
        "lock-members-sorted",
        "lock",
        "the lock reply lists its members alphabetically",
        ["R2.5"],
        lock_reply=frozenset({"sorted"}),
    ),
    _f(
        "lock-string-ids",
        "lock",
        "node_small_id and stack_small_id are JSON strings (a JavaScript proxy guarding u64 precision)",
        ["R2.8"],
        lock_reply=frozenset({"string-ids"}),
    ),
    _f(
        "lock-digest-omitted",
        "lock",
        "a null stack_entry_digest is left out of the lock reply (a serializer that skips None)",
        ["R2.5", "R2.9"],
        lock_reply=frozenset({"no-digest"}),
    ),
    _f(
        "lock-without-bearer",
        "lock",
        "the lock is granted without a bearer token (per process only: X-Mock-Fault is read after authentication)",
        ["R2.2"],
        lock_requires_bearer=False,
    ),
    _f(
        "lock-body-before-token",
        "lock",
        "the lock body is validated before the bearer token, so a caller without a token whose body is "
        "malformed gets 400, not 401 (W30)",
        ["R2.4"],
        lock_body_first=True,
    ),
    _f(
        "lock-rejections-text-plain",
        "lock",
        "a lock body that is not application/json, not JSON or not of the lock's shape is refused by the "
        "web framework with a text/plain message and no error code (W30)",
        ["R2.3", "R10.1"],
        lock_rejections="text",
    ),
    _f(
        "lock-ignore-content-type",
        "lock",
        "the lock endpoint reads its body whatever the Content-Type, so a text/plain lock request is granted",
        ["R2.3"],
        lock_checks_content_type=False,
    ),
    _f(
        "lock-deny-unknown-members",
        "lock",
        "a lock body with a member other than model, max_num_tokens and timeout is refused 400 (a struct "
        "that denies unknown fields)",
        ["R2.1"],
        lock_members="deny-unknown",
    ),
    _f(
        "lock-null-tokens-zero",
        "lock",
        'a lock body with "max_num_tokens": null reserves 0 units instead of 8192 (null read as a number, '
        "as JavaScript's Number(null) does), so the lock admits no request",
        ["R2.1"],
        lock_members="null-as-zero",
    ),
    _f(
        "lock-unknown-model-500",
        "lock",
        "a lock for a model no node serves is answered 500 INTERNAL_ERROR",
        ["R2.10", "R10.2"],
        unknown_model_lock="500",
    ),
    _f(
        "reusable-lock",
        "lock",
        "a lock is not spent by the request it serves: it serves every later request too",
        ["R2.11", "R2.13"],
        spend_lock=False,
    ),
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
    _node(
        "node-ecdsa-accept-high-s",
        "an ECDSA X-Signature with s > n/2 (the malleated twin of a valid one) is normalised and served",
        ["R7.5", "R7.11"],
        owner=Scheme.SECP256K1,
        ecdsa_verifier="accept-high-s",
    ),
    _node(
        "node-ecdsa-unchecked-scalars",
        "an ECDSA X-Signature with r or s outside 1 to n - 1 reaches the verifier's arithmetic unchecked: 500",
        ["R7.5", "R7.11", "R10.2"],
        owner=Scheme.SECP256K1,
        ecdsa_verifier="unchecked-scalars",
    ),
    _node(
        "node-ecdsa-unchecked-point",
        "an ECDSA X-Signature whose embedded public key is not a curve point fails to load: 500",
        ["R7.11", "R10.2"],
        owner=Scheme.SECP256K1,
        ecdsa_verifier="unchecked-point",
    ),
    _node(
        "node-empty-signature-500",
        "an X-Signature that decodes to zero bytes crashes the parser (it reads the flag byte first): 500",
        ["R7.11", "R10.2"],
        empty_signature="500",
    ),
    _node(
        "node-address-ed25519-flag",
        "the signer's address is derived with the Ed25519 flag whatever the scheme, so an ECDSA stack owner's"
        " valid X-Signature is refused as not owning the stack",
        ["R7.6", "R7.12"],
        owner=Scheme.SECP256K1,
        signer_flag="ed25519",
    ),
    # key binding: what the chain says about the lock's key (mock_node/chain.py serves it)
    _f(
        "lock-key-uncommitted",
        "key",
        "the lock hands out (and the node decrypts under) a key the node never committed on chain: what a client "
        "sees behind an interposed proxy",
        ["R15.11", "R15.1"],
        chain_lock_key="uncommitted",
    ),
    Fault(
        "node-key-uncommitted",
        "key",
        "the node decrypts under a key it never committed on chain (its operator's copy of the key works; a "
        "proxy that takes the key from chain cannot reach it)",
        ("R15.1",),
        {"chain_lock_key": "uncommitted"},
        CAUGHT_BY["node-key-uncommitted"],
        face="node",
    ),
    _f(
        "lock-key-stale",
        "key",
        "the lock hands out the key of the node's older commitment (counter 1) while a newer one (counter 2) exists",
        ["R15.11"],
        chain_lock_key="stale",
    ),
    _f(
        "commitment-ambiguous",
        "key",
        "the chain holds two different commitments of the node at its latest counter",
        ["R15.2"],
        chain_history="ambiguous",
    ),
    _f(
        "evidence-zlib-bomb",
        "key",
        "the latest commitment's evidence is valid JSON followed by 17 MiB of whitespace, about 17 KB compressed",
        ["R15.4"],
        chain_evidence="zlib-bomb",
    ),
    _f(
        "evidence-other-key",
        "key",
        "the evidence is genuine and signed, but its report nonce binds another key",
        ["R15.5"],
        chain_evidence="other-key",
    ),
    _f(
        "evidence-broken-chain",
        "key",
        "the provisioner CA certificate of the evidence's chain is signed by a key that is not its issuer's",
        ["R15.6"],
        chain_evidence="broken-chain",
    ),
    _f(
        "evidence-signature-other-bytes",
        "key",
        "the report's signature is the leaf's valid signature over other bytes (the report for another nonce)",
        ["R15.7"],
        chain_evidence="signature-other-bytes",
    ),
    _f(
        "evidence-fwid-mismatch",
        "key",
        "the report claims a firmware ID other than its leaf certificate's (and is signed as such)",
        ["R15.8"],
        chain_evidence="fwid-mismatch",
    ),
    _f(
        "evidence-measurement-drift",
        "key",
        "one measurement of the report (block 5) is not the device's golden value, and the report is signed as such",
        ["R15.9"],
        chain_evidence="measurement-drift",
    ),
    _f(
        "attestation-service-stale",
        "key",
        "GET /v1/get_node_attestation serves the evidence of the node's older commitment",
        ["R15.13"],
        service_evidence="stale",
    ),
    _f(
        "commitment-behind",
        "key",
        "the network rotated (counter 3) after the node's latest commitment, and its key is still handed out",
        ["R15.12", "R15.3"],
        chain_history="behind",
    ),
    _f(
        "commitment-old",
        "key",
        "the node's latest commitment is dated 1970-01-01, older than any --max-key-age",
        ["R15.10"],
        chain_history="old",
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
