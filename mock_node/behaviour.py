"""What the mock node does, as data: one knob per observable decision.

A profile is a preset of these knobs and a fault is a named change to one or more of them, so every
deviation the mock can show is a deterministic transform of a correct exchange and is listed in one
place. The defaults are the strict, conformant node of docs/spec.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

NonceMode = Literal["fresh", "per-stream", "static", "echo-request"]


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
    # --- usage (section 11) ---
    clear_usage: Literal["equal", "mismatch", "absent"] = "equal"
    # --- streaming shape (section 9) ---
    stream_shape: frozenset[str] = field(default_factory=frozenset)  # drop-usage, duplicate, reorder, done
    keepalive_comments: int = 1
    # --- what the node accepts (sections 2, 3, 4, 5, 6, 12) ---
    accept_tampered_ciphertext: bool = False
    accept_wrong_plaintext_hash: bool = False
    accept_expired_lock: bool = False
    accept_low_order_key: bool = False
    accept_replay: bool = False
    accept_foreign_lock: bool = False
    accept_long_plaintext_hash: bool = False
    check_consistency: bool = True  # model_name == model, outer stream == inner stream
    # --- errors (section 10) ---
    crypto_error_status: Literal[400, 500] = 400
    client_error_status: Literal["4xx", "500"] = "4xx"
    error_leak: Literal["none", "hashes", "plaintext"] = "none"
    oversize_response: Literal["json", "text"] = "json"
    # --- lock endpoint (section 2) ---
    lock_public_key: Literal["correct", "low-order", "short"] = "correct"
    # --- the node face (sections 1.3, 7.3); only read when the mock serves the node face ---
    x_signature: Literal["verify", "accept-missing", "accept-invalid", "parse-only"] = "verify"
    check_stack_owner: bool = True
    missing_request_id: Literal["400", "500", "accept"] = "400"
    stack_from: Literal["body", "header"] = "body"
    node_long_hash: Literal["refuse", "accept"] = "refuse"  # "accept": a 33-byte hash passes the hop checks
    foreign_owner: Literal["AUTH_ERROR", "INVALID_HEADER"] = "AUTH_ERROR"  # 401, or upstream's 400
    owner_check: Literal["before-decrypt", "after-plaintext"] = "before-decrypt"  # upstream: after the model check
    node_hash_code: Literal["INVALID_BODY", "INVALID_HEADER"] = "INVALID_BODY"

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
