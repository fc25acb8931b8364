"""What a check records beside its verdict, typed: one small dataclass per kind of check.

A check declares its kind (``@check(..., evidence=Refusal)``) and every pass or fail it gives must
carry exactly that class, or the verdict becomes an internal error (``Check.run``); docs/checks.md
lists the fields. Evidence holds counts, statuses, codes, member names and short public labels,
never a body, a key or a plaintext: results.json is built from it and must be safe to share.

Words: *records* (``conformance.records``) are what was observed on the wire; *evidence* is what a
check keeps of them to explain its verdict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal


@dataclass(frozen=True)
class Evidence:
    """Base of every evidence kind. ``summary`` says in a few words what the fields show (for the docs)."""

    summary: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class Messages(Evidence):
    """A rule judged on every message (response or chunk) of the exchanges read."""

    summary: ClassVar[str] = "messages judged, and how many broke the rule"
    messages: int
    offenders: int


@dataclass(frozen=True)
class Exchanges(Evidence):
    """A rule judged once per exchange (an endpoint's answer, a stream)."""

    summary: ClassVar[str] = "exchanges judged, and the probes whose exchange broke the rule"
    exchanges: int
    offenders: tuple[str, ...]


CameBack = Literal["error body", "other body", "ciphertext", "plaintext", "event stream", "nothing"]


@dataclass(frozen=True)
class Refusal(Evidence):
    """One request the target should refuse: what it answered."""

    summary: ClassVar[str] = "status, media type, error code, and what came back"
    status: int | None
    media_type: str | None
    code: str | None
    came_back: CameBack


@dataclass(frozen=True)
class Refusals(Evidence):
    """Every refusal of a run, judged for one rule shared by all refusals."""

    summary: ClassVar[str] = "refusals judged, and the probes whose refusal broke the rule"
    refusals: int
    offenders: tuple[str, ...]


@dataclass(frozen=True)
class LockReply(Evidence):
    """The lock's answer."""

    summary: ClassVar[str] = "status, media type, member names in order, and the problem found"
    status: int | None
    media_type: str | None
    members: tuple[str, ...]
    problem: str | None


@dataclass(frozen=True)
class Signers(Evidence):
    """Who signed the messages of a run."""

    summary: ClassVar[str] = "the expected signer, if known, and the distinct signer addresses seen"
    expected: str | None
    signers: tuple[str, ...]


@dataclass(frozen=True)
class Hop(Evidence):
    """The stack owner the suite signs X-Signature as on the node face, and the node's answer to it."""

    summary: ClassVar[str] = "the owner's signature scheme and Sui address (R7.6), and the status and code it got"
    scheme: str
    address: str
    status: int | None
    code: str | None


@dataclass(frozen=True)
class Fact(Evidence):
    """An INFO check's finding about the target."""

    summary: ClassVar[str] = "the fact established"
    fact: str


@dataclass(frozen=True)
class NonceAudit(Evidence):
    """What the run's nonce ledgers saw."""

    summary: ClassVar[str] = "nonce uses observed, keys, findings, and the busiest key's share of the budget"
    observations: int
    keys: int
    findings: int
    busiest_key_uses: int
    budget_fraction: float


@dataclass(frozen=True)
class RoundTrip(Evidence):
    """One valid request: was it served, and did every message decrypt, hash and verify."""

    summary: ClassVar[str] = "status, messages, and how many failed to decrypt, hash or verify"
    status: int | None
    messages: int
    offenders: int


@dataclass(frozen=True)
class Pairs(Evidence):
    """Two requests where the second must be refused (a reused lock, a replay)."""

    summary: ClassVar[str] = "status of the first request, and of the second"
    first: int | None
    second: int | None


@dataclass(frozen=True)
class Cases(Evidence):
    """Cases of the member table (conformance.member_table) a check judged, at the run's depth."""

    summary: ClassVar[str] = (
        "depth (cover or full), cases sent, the statuses they got, and the cases that failed, were not "
        "evaluated, or could not be made"
    )
    depth: str
    cases: int
    statuses: tuple[int | None, ...]
    failed: tuple[str, ...]
    not_evaluated: tuple[str, ...]
    not_producible: tuple[str, ...]


@dataclass(frozen=True)
class KeyBinding(Evidence):
    """The key a lock handed out against the node's commitments on chain (docs/spec.md §15.1, §15.3).

    Keys are public, but a report keeps only their fingerprints (the first 8 bytes of BLAKE2b-256, hex),
    which are enough to tell two keys apart."""

    summary: ClassVar[str] = (
        "node, the handed-out and the committed key's fingerprints, the counters of the latest commitment, "
        "of the commitment holding the handed-out key and of the latest rotation, and the commitment's age"
    )
    node_small_id: int
    handed_out_key: str
    committed_key: str | None
    commitment_counter: int | None
    handed_out_counter: int | None
    latest_rotation_counter: int | None
    commitment_age_s: float | None


@dataclass(frozen=True)
class EvidenceEntries(Evidence):
    """The latest commitment's evidence, judged entry by entry (docs/spec.md §15.2)."""

    summary: ClassVar[str] = (
        "the evidence's BLAKE2b-256 and length, its GPU and NVSwitch entries, and the entries that failed "
        "the check's step or could not be judged for it"
    )
    evidence_digest: str
    evidence_length: int
    gpu_entries: int
    nvswitch_entries: int
    failed: tuple[str, ...]
    not_judged: tuple[str, ...]


KINDS: tuple[type[Evidence], ...] = (
    KeyBinding,
    EvidenceEntries,
    Cases,
    Messages,
    Exchanges,
    Refusal,
    Refusals,
    LockReply,
    Signers,
    Hop,
    Fact,
    NonceAudit,
    RoundTrip,
    Pairs,
)
