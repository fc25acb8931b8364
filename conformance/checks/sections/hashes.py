"""docs/spec.md §6, hashes: every response_hash is BLAKE2b-256 of the exact plaintext bytes, and a
request whose plaintext_body_hash does not cover its plaintext is refused."""

from __future__ import annotations

from ..base import Group, Verdict, failed, passed
from ..evidence import Fact, Messages
from ..judging import hash_profile
from ..probe import Reads
from ..probes import CHAT, JSON_ENDPOINTS, MUTATED, SERVED, STREAMS
from ._helpers import first_message, judge_messages, refused_by_node

GROUP = Group((6,), "Hashes")
check = GROUP.check


@check(
    "HASH-001",
    "MUST",
    "response_hash equals BLAKE2b-256 of the decrypted bytes (non-streaming)",
    spec="R6.3",
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def hash_001(reads: Reads) -> Verdict:
    return judge_messages(reads, "HASH-001", JSON_ENDPOINTS, "response_hash = H(plaintext)")


@check(
    "HASH-002",
    "MUST",
    "response_hash equals BLAKE2b-256 of the decrypted bytes on every chunk",
    spec="R6.3",
    reads=STREAMS,
    evidence=Messages,
)
def hash_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "HASH-002", STREAMS, "response_hash = H(chunk)")


@check(
    "HASH-003",
    "INFO",
    "Which hash function the target's response_hash uses",
    spec=("R6.1", "R6.4"),
    reads=(CHAT,),
    evidence=Fact,
)
def hash_003(reads: Reads) -> Verdict:
    profile = hash_profile(first_message(reads, CHAT))
    if profile == "blake2b-256":
        return passed("BLAKE2b-256 over the exact plaintext bytes", Fact(profile))
    return failed(f"response_hash is {profile}, not BLAKE2b-256 of the plaintext", Fact(profile))


@check(
    "ENC-003",
    "MUST",
    "Every response_hash is canonical base64 of exactly 32 bytes",
    spec="R6.3",
    reads=SERVED,
    evidence=Messages,
)
def enc_003(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-003", SERVED, "32-byte hash")


refused_by_node(
    GROUP,
    "ERR-007",
    MUTATED["err_wrong_hash"],
    "A wrong plaintext_body_hash is refused",
    ("R6.2", "R10.6"),
    statuses=(400,),
)
