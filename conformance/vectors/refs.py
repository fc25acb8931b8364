"""The docs/spec.md requirement ids each kind of vector exercises.

Kept in one table so that a renumbered or deleted requirement breaks exactly one place, and a test
checks that every id named here exists in docs/spec.md.
"""

from __future__ import annotations

REFS: dict[str, list[str]] = {
    "x25519": ["R4.1"],
    "x25519_low_order": ["R4.2", "R4.3"],
    "hkdf": ["R4.4"],
    "kdf": ["R4.4", "R4.5"],
    "aead": ["R5.1", "R5.2", "R5.3"],
    "aead_tamper": ["R5.4", "R5.5", "R10.5"],
    "blake2b": ["R6.1"],
    "b64": ["R3.4", "R13.2"],
    "len_nonce": ["R3.5"],
    "len_salt": ["R3.6"],
    "len_client_dh_public_key": ["R3.7"],
    "len_node_dh_public_key": ["R3.8"],
    "len_plaintext_body_hash": ["R3.9", "R7.13"],
    "len_public_key": ["R2.6"],
    "sig_format": ["R7.1", "R7.2", "R7.3", "R7.4"],
    "sig_ecdsa": ["R7.5"],
    "sig_high_s": ["R7.2", "R7.5"],
    "address": ["R7.6"],
    "signer": ["R7.8", "R13.12"],
    "request": ["R3.2", "R3.13", "R13.2", "R13.3"],
    "request_hash": ["R6.2", "R13.4"],
    "response": ["R6.3", "R7.7", "R8.4", "R13.10", "R13.11"],
    "response_nonce": ["R12.1", "R12.4", "R13.13"],
    "usage": ["R11.4", "R11.6"],
    "stream": ["R9.3", "R9.4", "R9.5", "R12.1"],
    "stream_nonce": ["R12.2", "R12.3"],
    "json_hash": ["R6.4", "R13.4"],
}
