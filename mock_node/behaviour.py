"""What the mock node does, as data: one knob per observable decision.

A profile is a preset of these knobs and a fault is a named change to one or more of them, so every
deviation the mock can show is a deterministic transform of a correct exchange and is listed in one
place. The defaults are the strict, conformant node of docs/spec.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from .fake_model import STREAMABLE

NonceMode = Literal["fresh", "per-stream", "static", "echo-request"]
# The chain faces (mock_node/chain.py): the key the lock hands out (and decrypts under), and the evidence
# of the node's latest key commitment.
LockKey = Literal["current", "uncommitted", "stale"]
EvidenceVariant = Literal[
    "bound", "other-key", "broken-chain", "signature-other-bytes", "fwid-mismatch", "measurement-drift", "zlib-bomb"
]
ChainHistory = Literal["normal", "ambiguous", "behind", "old"]
ServiceEvidence = Literal["latest", "stale"]

# The members the set-valued knobs may hold; a fault adds some (``Fault.apply`` takes the union).
STREAM_SHAPES = frozenset({"drop-usage", "duplicate", "reorder", "done", "data-keepalive", "unterminated"})
ENVELOPE_SHAPES = frozenset({"extra-member", "sorted", "pretty", "image-usage"})
LOCK_REPLY_SHAPES = frozenset({"text-plain", "sorted", "string-ids", "no-digest"})


@dataclass(frozen=True)
class Behaviour:
    # --- nonces (spec section 12) ---
    response_nonce: NonceMode = "fresh"
    stream_nonce: NonceMode = "fresh"
    # --- what is hashed and signed (sections 6, 7) ---
    response_hash: Literal["correct", "wrong", "sha256", "reserialized"] = "correct"
    signature: Literal["correct", "wrong-bytes", "foreign-signer", "malleated", "missing"] = "correct"
    # --- encodings and AEAD (sections 3, 5) ---
    ciphertext_encoding: Literal["standard", "urlsafe"] = "standard"
    hash_encoding: Literal["standard", "unpadded"] = "standard"
    tag: Literal["full", "truncated"] = "full"
    response_key: Literal["request-key", "other-salt", "hkdf-info"] = "request-key"
    # node-wide: one slot for every request's K; per-handler: one per endpoint and mode (mock_node/races.py)
    key_slot: Literal["per-request", "node-wide", "per-handler"] = "per-request"
    nonce_source: Literal["draw", "handler-slot"] = "draw"  # handler-slot: a racy generator (mock_node/races.py)
    nonce_encoding: Literal["standard", "mime"] = "standard"  # "mime": a MIME encoder's trailing newline
    signature_format: Literal["sui", "mime-wrapped", "bare"] = "sui"  # "bare": no flag, no public key
    # --- the response envelope and its HTTP answer (sections 8, 9) ---
    envelope_shape: frozenset[str] = field(default_factory=frozenset)  # of ENVELOPE_SHAPES
    plain_text_answers: frozenset[str] = field(default_factory=frozenset)  # endpoints answered as text/plain
    echo_hash_header: bool = False  # served answers carry X-Plaintext-Body-Hash (R10.9)
    # --- the plaintext answer the node encrypts (sections 8, 9, 11); see mock_node.misshape ---
    answer_shape: frozenset[str] = field(default_factory=frozenset)  # of misshape.ANSWER_SHAPES
    # --- usage (section 11) ---
    clear_usage: Literal["equal", "mismatch", "absent"] = "equal"
    # --- streaming shape (section 9) ---
    stream_shape: frozenset[str] = field(default_factory=frozenset)  # of STREAM_SHAPES
    keepalive_comments: int = 1
    stream_media_type: str = "text/event-stream"
    stream_cache_control: bool = True
    streamable: frozenset[str] = STREAMABLE  # the endpoints answered with a stream when asked (R9.1)
    # --- what the node accepts (sections 2, 3, 4, 5, 6, 12) ---
    accept_tampered_ciphertext: bool = False
    accept_wrong_plaintext_hash: bool = False
    accept_expired_lock: bool = False
    accept_low_order_key: bool = False
    accept_replay: bool = False
    accept_foreign_lock: bool = False
    accept_long_plaintext_hash: bool = False
    check_consistency: bool = True  # model_name == model, outer stream == inner stream
    check_model: bool = True  # the plaintext's model is one the node serves
    check_node_key: bool = True  # node_dh_public_key is the node's current key (R3.13)
    check_content_type: bool = True  # a confidential body must be application/json (R3.3)
    # --- the plaintext and the body's framing (sections 1.2, 3, 4, 9) ---
    plaintext_model: Literal["plaintext", "envelope"] = "plaintext"  # "envelope": model_name fills a missing model
    unservable_plaintext: Literal["400", "500"] = "400"  # a plaintext the model cannot serve (chat messages a string)
    node_unknown_model: Literal["400", "404"] = "400"  # node face: "404" answers as only the proxy face may
    body_limit_reads: Literal["counted", "content-length"] = "counted"  # "content-length": the header alone is judged
    body_limit_edge: Literal["inclusive", "exclusive"] = "inclusive"  # "exclusive": exactly the limit is refused
    chunked_bodies: Literal["accept", "411"] = "accept"  # "411": a body without Content-Length is refused
    content_type_match: Literal["media-type", "exact"] = "media-type"  # "exact": a charset parameter is refused
    unknown_envelope_members: Literal["ignore", "refuse"] = "ignore"  # R3.2
    plaintext_hash_input: Literal["raw", "reserialized"] = "raw"  # "reserialized": H(JSON(parsed)), not H(bytes)
    client_key_top_bit: Literal["ignore", "refuse"] = "ignore"  # R4.1: bit 255 of the client key
    unset_stream: Literal["json", "event-stream"] = "json"  # an absent or null envelope stream (R1.5, R3.12)
    base64_decoding: Literal["strict", "lenient"] = "strict"  # lenient: either alphabet, padding optional
    lenient_base64_members: frozenset[str] = frozenset()  # these binary members alone are read forgivingly
    # --- bearer tokens and locks on the proxy face (sections 2, 10) ---
    lock_requires_bearer: bool = True
    confidential_requires_bearer: bool = True
    check_api_key: bool = True  # False: any well-formed bearer token passes, whatever keys are configured
    token_after_lock: bool = False  # a confidential request's token is checked after its lock is spent (R10.7)
    lock_body_first: bool = False  # the lock body is read and validated before the token (W30, R2.4)
    lock_checks_content_type: bool = True  # a lock body must be application/json (Table 10.1)
    lock_rejections: Literal["json", "text"] = "json"  # "text": a framework's text/plain refusal of a body (W30)
    lock_members: Literal["lenient", "deny-unknown", "null-as-zero"] = "lenient"  # R2.1's unknown and null members
    compute_units: Literal["effective", "ignore-capacity", "null-as-zero"] = "effective"  # R2.12
    unknown_model_lock: Literal["503", "500"] = "503"
    spend_lock: bool = True  # a served request consumes its lock (R2.11)
    unknown_stack: Literal["refuse", "pass-through"] = "refuse"  # a stack the proxy has no record of
    release_stack_on_refusal: bool = True  # "False": a refusal after the lock was consumed jams the stack
    # --- errors (section 10) ---
    crypto_error_status: Literal[400, 500] = 400
    client_error_status: Literal["4xx", "500"] = "4xx"
    error_leak: Literal["none", "hashes", "plaintext"] = "none"
    validation_error_status: Literal["4xx", "200"] = "4xx"  # refusals before decryption (R10.8)
    body_limit: Literal["configured", "middleware"] = "configured"  # middleware: the 1 GiB layer only (W28)
    oversize_response: Literal["json", "text"] = "json"
    routing_errors: Literal["json", "text"] = "json"  # "text": a framework's own 404 and 405 bodies (R10.1)
    error_codes: Literal["paired", "mispaired"] = (
        "paired"  # "mispaired": 4xx refusals say AUTH_ERROR, 401s REQUEST_ERROR
    )
    # --- lock endpoint (section 2) ---
    lock_public_key: Literal["correct", "low-order", "short"] = "correct"
    lock_reply: frozenset[str] = field(default_factory=frozenset)  # of LOCK_REPLY_SHAPES
    # --- the node face (sections 1.3, 7.3); only read when the mock serves the node face ---
    x_signature: Literal["verify", "accept-missing", "accept-invalid", "parse-only"] = "verify"
    check_stack_owner: bool = True
    missing_request_id: Literal["400", "500", "accept"] = "400"
    stack_from: Literal["body", "header"] = "body"
    node_long_hash: Literal["refuse", "accept"] = "refuse"  # "accept": a 33-byte hash passes the hop checks
    foreign_owner: Literal["AUTH_ERROR", "INVALID_HEADER"] = "AUTH_ERROR"  # 401, or upstream's 400
    owner_check: Literal["before-decrypt", "after-plaintext"] = "before-decrypt"  # upstream: after the model check
    node_hash_code: Literal["INVALID_BODY", "INVALID_HEADER"] = "INVALID_BODY"
    # X-Signature paths an Ed25519 owner never reaches (mock_node/xsig.py): R7.5's rules, the curve point,
    # an empty header, and the flag in the signer's R7.6 address
    ecdsa_verifier: Literal["strict", "accept-high-s", "unchecked-scalars", "unchecked-point"] = "strict"
    empty_signature: Literal["400", "500"] = "400"
    signer_flag: Literal["own", "ed25519"] = "own"
    # --- the chain faces (protocol.md section 11; mock_node/chain.py): what the lock's key is on chain ---
    chain_lock_key: LockKey = "current"  # uncommitted: a keypair never committed; stale: the older rotation's
    chain_evidence: EvidenceVariant = "bound"  # the latest commitment's evidence, as chain.py's docstring says
    chain_history: ChainHistory = "normal"  # ambiguous, behind the network's rotation, or an old commitment
    service_evidence: ServiceEvidence = "latest"  # what the proxy service serves: stale = the older commitment's

    def but(self, **changes: object) -> Behaviour:
        """A copy with some knobs changed (profiles and faults are built this way)."""
        return replace(self, **changes)  # type: ignore[arg-type]


STRICT = Behaviour()

# What atoma-node and atoma-proxy really do, per the research notes' citations (docs/spec.md section 14).
ATOMA_NODE_COMPAT = STRICT.but(
    stream_nonce="per-stream",  # W1: one nonce for every chunk of a stream
    crypto_error_status=500,  # W12: b64, length, key mismatch and tag failures become 500
    error_leak="hashes",  # W12: the hash-mismatch message lists both hashes
    accept_low_order_key=True,  # W17: no contributory check
    accept_replay=True,  # W23: no replay cache
    accept_foreign_lock=True,  # W9: any API key may spend any lock on the stack
    accept_long_plaintext_hash=True,  # W8: the proxy signs a hash of any length
    check_consistency=False,  # the node reads model and stream from the plaintext only
    oversize_response="text",  # W28/W30: axum's 413 text/plain
    missing_request_id="500",  # W12: the missing X-Request-Id is raised inside the handler, which answers 500
    node_hash_code="INVALID_HEADER",  # a bad plaintext_body_hash is reported as a header problem
    foreign_owner="INVALID_HEADER",  # an unknown or foreign stack without X-Tx-Digest is a 400 INVALID_HEADER
    owner_check="after-plaintext",  # verify_permissions runs after decryption and the model check (§4.3)
)

PROFILES: dict[str, Behaviour] = {"strict": STRICT, "atoma-node-compat": ATOMA_NODE_COMPAT}
