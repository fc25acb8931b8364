"""docs/spec.md §12, nonce discipline: one key K serves a request, its response and every chunk, so a
repeated nonce anywhere under K exposes the AES-GCM keystream and its GHASH key."""

from __future__ import annotations

import dataclasses

from ...protocol.nonces import NonceLedger
from ..base import Group, Verdict, passed, verdict
from ..evidence import Exchanges, Messages, NonceAudit
from ..judging import across_keys
from ..probe import Reads
from ..probes import JSON_ENDPOINTS, STREAMS, SUCCESSES
from ._helpers import applicable, judge_exchanges, judge_messages

GROUP = Group((12,), "Nonce discipline")
check = GROUP.check


def _after_successes(reads: Reads) -> None:
    """Read every success probe that applies, so that the ledgers hold all the run's valid exchanges."""
    applicable(reads, SUCCESSES)


def _audit(reads: Reads, ledger: NonceLedger, findings: int) -> NonceAudit:
    # Keys and the budget are per K, which only the keyed ledger knows (node_nonces is keyed by value).
    keyed = reads.ledger
    return NonceAudit(ledger.observations, keyed.keys, findings, keyed.max_uses_per_key(), keyed.budget_fraction())


@check(
    "NONCE-001",
    "MUST",
    "No response nonce equals its request's nonce",
    spec=("R12.1", "R12.4"),
    reads=JSON_ENDPOINTS,
    evidence=Messages,
)
def nonce_001(reads: Reads) -> Verdict:
    return judge_messages(reads, "NONCE-001", JSON_ENDPOINTS, "response nonces differ from request nonces")


@check(
    "NONCE-002",
    "MUST",
    "No stream chunk carries its request's nonce",
    spec=("R12.1", "R12.3"),
    reads=STREAMS,
    evidence=Messages,
)
def nonce_002(reads: Reads) -> Verdict:
    return judge_messages(reads, "NONCE-002", STREAMS, "no chunk echoes the request nonce")


@check(
    "NONCE-003",
    "MUST",
    "No nonce repeats within a stream",
    spec=("R12.2", "R12.3"),
    reads=STREAMS,
    evidence=Exchanges,
)
def nonce_003(reads: Reads) -> Verdict:
    # atoma-node draws one nonce per stream (spec W1); the spec makes that a MUST failure, as here.
    judged = judge_exchanges(reads, "NONCE-003", STREAMS, "every chunk has its own nonce")
    if judged.outcome != "fail":
        return judged
    lead = "AES-GCM nonce reuse under one key within a stream (keystream and GHASH key exposed)"
    return dataclasses.replace(judged, reason=f"{lead}: {judged.reason}")


@check(
    "NONCE-004",
    "MUST",
    "No node nonce repeats anywhere in the run, even under different keys",
    spec="R12.5",
    reads=SUCCESSES,
    evidence=NonceAudit,
)
def nonce_004(reads: Reads) -> Verdict:
    # Under different keys a repeat breaks no confidentiality, but proves the nonces are not random.
    _after_successes(reads)
    nonces = reads.node_nonces
    findings = across_keys(nonces.findings)
    return verdict(
        not findings,
        f"{nonces.observations} node nonces, no repeats across keys",
        f"{len(findings)} nonce(s) repeat across different keys: the node's nonces are not random "
        f"(first: {findings[0].first.where} and {findings[0].second.where})"
        if findings
        else "",
        _audit(reads, nonces, len(findings)),
    )


@check(
    "NONCE-005",
    "MUST",
    "Session-wide audit: no (key, nonce) pair is used twice by anyone",
    spec=("R12.1", "R12.2"),
    reads=SUCCESSES,
    evidence=NonceAudit,
)
def nonce_005(reads: Reads) -> Verdict:
    _after_successes(reads)
    ledger = reads.ledger
    findings = ledger.findings
    detail = "; ".join(f"{f.first.where} and {f.second.where}" for f in findings[:3])
    return verdict(
        not findings,
        f"{ledger.observations} nonce uses under {ledger.keys} keys, all distinct",
        f"{len(findings)} (key, nonce) reuse(s): {detail}",
        _audit(reads, ledger, len(findings)),
    )


@check(
    "NONCE-006",
    "INFO",
    "How much of the random-nonce budget (2^32 per key) the run used",
    spec="R12.6",
    reads=SUCCESSES,
    evidence=NonceAudit,
)
def nonce_006(reads: Reads) -> Verdict:
    _after_successes(reads)
    ledger = reads.ledger
    return passed(
        f"busiest key used {ledger.max_uses_per_key()} nonce(s), {ledger.budget_fraction():.3g} of the budget",
        _audit(reads, ledger, len(ledger.findings)),
    )
