"""docs/spec.md §4 and §5, key agreement, the KDF and AEAD: every answer decrypts under the request's
key, and a request sealed or keyed wrongly is refused."""

from __future__ import annotations

from ..base import Group, Verdict
from ..evidence import Messages
from ..probe import Reads
from ..probes import ERR_LOW_ORDER_KEY, JSON_ENDPOINTS, MUTATED, SERVED, STREAMS
from ._helpers import judge_messages, refused_by_node

GROUP = Group((4, 5), "Key agreement, KDF and AEAD")
check = GROUP.check


@check(
    "AEAD-001",
    "MUST",
    "Every non-streaming response decrypts under the request's key with its nonce",
    spec=("R4.5", "R5.1"),
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def aead_001(reads: Reads) -> Verdict:
    return judge_messages(reads, "AEAD-001", JSON_ENDPOINTS, "decrypts under K")


@check(
    "AEAD-002",
    "MUST",
    "Every stream chunk decrypts under the request's key with its own nonce",
    spec=("R4.5", "R9.5"),
    reads=STREAMS,
    evidence=Messages,
)
def aead_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "AEAD-002", STREAMS, "decrypts under K")


@check(
    "ENC-002",
    "MUST",
    "Every ciphertext is canonical base64 of at least 16 bytes (ciphertext || tag)",
    spec=("R5.2", "R8.4"),
    reads=SERVED,
    evidence=Messages,
)
def enc_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-002", SERVED, "canonical ciphertext")


refused_by_node(
    GROUP,
    "ERR-001",
    MUTATED["err_tampered_ciphertext"],
    "A tampered ciphertext is refused",
    ("R5.4", "R10.5", "R10.8"),
)
refused_by_node(
    GROUP, "ERR-002", MUTATED["err_tampered_tag"], "A tampered GCM tag is refused", ("R5.4", "R10.5", "R10.8")
)
refused_by_node(GROUP, "ERR-003", MUTATED["err_tampered_nonce"], "A tampered nonce is refused", ("R5.4", "R10.8"))
refused_by_node(GROUP, "ERR-004", MUTATED["err_tampered_salt"], "A tampered salt is refused", ("R5.4", "R10.8"))
refused_by_node(
    GROUP,
    "ERR-005",
    MUTATED["err_wrong_client_key"],
    "A client_dh_public_key that did not seal the body is refused",
    ("R5.4",),
)
refused_by_node(GROUP, "ERR-008", ERR_LOW_ORDER_KEY, "A low-order client_dh_public_key is refused", ("R4.2",))
