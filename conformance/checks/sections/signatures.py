"""docs/spec.md §7, signatures: every message is signed, in a supported and non-malleable form, over
its response_hash, by the one key the node is registered under."""

from __future__ import annotations

from ...records import ExchangeRecord
from ..base import Group, Precondition, Skip, Verdict, passed, verdict
from ..evidence import Fact, Messages, Signers
from ..judging import signer_problems
from ..probe import Probe, Reads
from ..probes import CHAT, CHAT_AGAIN, JSON_ENDPOINTS, SERVED, STREAMS
from ._helpers import first_message, judge_messages, messages

GROUP = Group((7,), "Signatures")
check = GROUP.check


@check(
    "SIG-001",
    "MUST",
    "Every non-streaming response carries a signature",
    spec="R7.7",
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def sig_001(reads: Reads) -> Verdict:
    return judge_messages(reads, "SIG-001", JSON_ENDPOINTS, "signed")


@check(
    "SIG-002",
    "MUST",
    "Every stream chunk carries a signature",
    spec="R7.7",
    reads=STREAMS,
    evidence=Messages,
)
def sig_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "SIG-002", STREAMS, "signed")


@check(
    "SIG-003",
    "MUST",
    "Every signature uses a supported scheme (Ed25519, Secp256k1, Secp256r1) and length",
    spec="R7.2",
    reads=SERVED,
    evidence=Messages,
)
def sig_003(reads: Reads) -> Verdict:
    return judge_messages(reads, "SIG-003", SERVED, "supported scheme")


@check(
    "SIG-004",
    "MUST",
    "Every signature verifies over the 32 bytes of its response_hash",
    spec=("R7.3", "R7.4", "R7.5"),
    reads=SERVED,
    evidence=Messages,
)
def sig_004(reads: Reads) -> Verdict:
    return judge_messages(reads, "SIG-004", SERVED, "verifies")


@check(
    "SIG-005",
    "MUST",
    "ECDSA signatures are low-s",
    spec="R7.5",
    reads=SERVED,
    evidence=Messages,
)
def sig_005(reads: Reads) -> Verdict:
    return judge_messages(reads, "SIG-005", SERVED, "low-s ECDSA, Ed25519 S < L")


def _signers(reads: Reads, probes: tuple[Probe[ExchangeRecord], ...]) -> list[str]:
    signers = sorted({m.signer for _, m in messages(reads, probes) if m.signer})
    if not signers:
        raise Precondition("no parsable signature in the run")
    return signers


def _signed_by(check_id: str, signers: list[str], expected: str | None, good: str) -> Verdict:
    bad = [p.reason for p in signer_problems(signers, expected) if p.check_id == check_id]
    return verdict(not bad, good, "; ".join(bad), Signers(expected, tuple(signers[:5])))


@check(
    "SIG-006",
    "MUST",
    "One signer signs every message of the run",
    spec="R7.8",
    reads=(*SERVED, CHAT_AGAIN),
    evidence=Signers,
)
def sig_006(reads: Reads) -> Verdict:
    signers = _signers(reads, (*SERVED, CHAT_AGAIN))
    return _signed_by("SIG-006", signers, None, f"one signer {signers[0]}")


@check(
    "SIG-007",
    "MUST",
    "The signer is the node's registered address (--node-address)",
    spec=("R7.8", "R13.12"),
    reads=SERVED,
    evidence=Signers,
)
def sig_007(reads: Reads) -> Verdict:
    expected = reads.target.node_address
    if expected is None:
        raise Skip("no --node-address given: the suite cannot know the node's registered Sui address")
    return _signed_by("SIG-007", _signers(reads, SERVED), expected, "every message signed by the node address")


@check(
    "SIG-008",
    "INFO",
    "The signature scheme the node uses",
    spec="R7.1",
    reads=(CHAT,),
    evidence=Fact,
)
def sig_008(reads: Reads) -> Verdict:
    message = first_message(reads, CHAT)
    if message.signature is None:
        raise Precondition("the chat response has no parsable signature")
    return passed(message.signature.scheme.label, Fact(message.signature.scheme.label))


@check(
    "ENC-004",
    "MUST",
    "Every signature is canonical base64 of a Sui serialized signature",
    spec=("R7.1", "R7.2"),
    reads=SERVED,
    evidence=Messages,
)
def enc_004(reads: Reads) -> Verdict:
    return judge_messages(reads, "ENC-004", SERVED, "parsable signature")
