"""One verdict per evidence entry, step by step, so that each conformance check judges one step.

A key commitment binds the node's X25519 key only when every entry passes every step:

========================  ==============================================================  ==============
step                      what it establishes                                             needs
========================  ==============================================================  ==============
``report``                the evidence is a well-formed SPDM GET_MEASUREMENTS report      —
``certificates``          the certificate field is a PEM chain of X.509 certificates      —
``nonce``                 the report answers the nonce derived from the key (bound)       report
``chain``                 the chain leads to a trusted root and is valid at ``now``       certificates
``signature``             the report is signed by the chain's leaf key                    report, certificates
``fwid``                  the leaf certificate carries the firmware ID the report claims  report, certificates
========================  ==============================================================  ==============

Steps are judged independently wherever their inputs exist: a report bound to another key still has
its signature and chain judged, and a signature that verifies under an untrusted leaf is reported as
"signature: pass, chain: fail" rather than hidden behind the first failure. A step whose input could
not be parsed is ``not_run`` (naming what it lacked), never ``pass``. ``fwid`` is ``not_applicable``
when the report claims no firmware ID (older Hopper firmware), as in NVIDIA's verifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from .binding import REPORT_NONCE_LEN, report_nonce
from .chain import VerifiedChain, check_fwid, parse_chain, verify_chain, verify_report_signature
from .errors import AttestationError, NonceMismatch
from .evidence import FIELD, EvidenceEntry, EvidenceType, decode_evidence
from .spdm import AttestationReport, parse_report


class Step(StrEnum):
    REPORT = "report"
    CERTIFICATES = "certificates"
    NONCE = "nonce"
    CHAIN = "chain"
    SIGNATURE = "signature"
    FWID = "fwid"


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    NOT_RUN = "not_run"


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one step; ``error`` is the refusal when it failed, ``note`` says why it did not run."""

    step: Step
    outcome: Outcome
    error: AttestationError | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS


@dataclass(frozen=True, slots=True)
class EntryVerdict:
    """Every step's result for one evidence entry, and what was parsed on the way."""

    index: int
    evidence_type: EvidenceType
    steps: tuple[StepResult, ...]
    report: AttestationReport | None
    certificates: tuple[x509.Certificate, ...] | None
    chain: VerifiedChain | None

    def __getitem__(self, step: Step) -> StepResult:
        for result in self.steps:
            if result.step is step:
                return result
        raise KeyError(step)  # pragma: no cover - every verdict holds every step

    @property
    def ok(self) -> bool:
        """Whether the entry binds: every step passed or does not apply."""
        return all(r.outcome in (Outcome.PASS, Outcome.NOT_APPLICABLE) for r in self.steps)

    @property
    def failures(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.steps if r.outcome is Outcome.FAIL)


def verify_entry(
    entry: EvidenceEntry,
    expected_nonce: bytes,
    trusted_roots: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    index: int = 0,
) -> EntryVerdict:
    """Judge every step for one entry (see the module docstring)."""
    if len(expected_nonce) != REPORT_NONCE_LEN:
        raise ValueError(f"expected_nonce must be {REPORT_NONCE_LEN} bytes")
    where = f"{FIELD}[{index}]"
    results: dict[Step, StepResult] = {}
    report: AttestationReport | None = None
    certificates: tuple[x509.Certificate, ...] | None = None
    chain: VerifiedChain | None = None

    try:
        report = parse_report(entry.evidence, field=f"{where}.evidence")
        results[Step.REPORT] = StepResult(Step.REPORT, Outcome.PASS)
    except AttestationError as exc:
        results[Step.REPORT] = StepResult(Step.REPORT, Outcome.FAIL, exc)
    try:
        certificates = parse_chain(entry.certificate, field=f"{where}.certificate")
        results[Step.CERTIFICATES] = StepResult(Step.CERTIFICATES, Outcome.PASS)
    except AttestationError as exc:
        results[Step.CERTIFICATES] = StepResult(Step.CERTIFICATES, Outcome.FAIL, exc)

    if report is None:
        results[Step.NONCE] = _not_run(Step.NONCE, "the report did not parse")
    elif report.nonce == expected_nonce:
        results[Step.NONCE] = StepResult(Step.NONCE, Outcome.PASS)
    else:
        mismatch = NonceMismatch(
            "is not the expected nonce: the report is bound to another key or contract nonce",
            field=f"{where}.evidence.request.nonce",
        )
        results[Step.NONCE] = StepResult(Step.NONCE, Outcome.FAIL, mismatch)

    if certificates is None:
        results[Step.CHAIN] = _not_run(Step.CHAIN, "the certificate chain did not parse")
    else:
        try:
            chain = verify_chain(certificates, trusted_roots, now, field=f"{where}.certificate")
            results[Step.CHAIN] = StepResult(Step.CHAIN, Outcome.PASS)
        except AttestationError as exc:
            results[Step.CHAIN] = StepResult(Step.CHAIN, Outcome.FAIL, exc)

    if report is None or certificates is None:
        lacking = "the report" if report is None else "the certificate chain"
        results[Step.SIGNATURE] = _not_run(Step.SIGNATURE, f"{lacking} did not parse")
        results[Step.FWID] = _not_run(Step.FWID, f"{lacking} did not parse")
    else:
        leaf = certificates[0]
        results[Step.SIGNATURE] = _judge(Step.SIGNATURE, lambda: verify_report_signature(report, leaf, field=where))
        results[Step.FWID] = _judge_fwid(report, leaf, where)

    return EntryVerdict(index, entry.evidence_type, tuple(results[s] for s in Step), report, certificates, chain)


def _not_run(step: Step, why: str) -> StepResult:
    return StepResult(step, Outcome.NOT_RUN, note=f"not judged: {why}")


def _judge(step: Step, check: Callable[[], None]) -> StepResult:
    try:
        check()
    except AttestationError as exc:
        return StepResult(step, Outcome.FAIL, exc)
    return StepResult(step, Outcome.PASS)


def _judge_fwid(report: AttestationReport, leaf: x509.Certificate, where: str) -> StepResult:
    try:
        applies = check_fwid(report, leaf, field=f"{where}.evidence")
    except AttestationError as exc:
        return StepResult(Step.FWID, Outcome.FAIL, exc)
    if not applies:
        return StepResult(Step.FWID, Outcome.NOT_APPLICABLE, note="the report claims no firmware ID")
    return StepResult(Step.FWID, Outcome.PASS)


def verify_evidence(
    entries: Iterable[EvidenceEntry],
    expected_nonce: bytes,
    trusted_roots: Sequence[x509.Certificate],
    now: dt.datetime,
) -> tuple[EntryVerdict, ...]:
    """One :class:`EntryVerdict` per entry, in order; every entry must carry ``expected_nonce``."""
    return tuple(verify_entry(entry, expected_nonce, trusted_roots, now, index=i) for i, entry in enumerate(entries))


def verify_commitment(
    evidence_bytes: bytes,
    *,
    contract_nonce: int,
    node_public_key: bytes,
    trusted_roots: Sequence[x509.Certificate],
    now: dt.datetime,
) -> tuple[EntryVerdict, ...]:
    """A key commitment as published on chain, judged whole: the container is decoded (its refusals
    raise, there being no entry to give a verdict on) and every entry judged against the nonce that
    ``contract_nonce`` and ``node_public_key`` derive."""
    expected = report_nonce(contract_nonce, node_public_key)
    return verify_evidence(decode_evidence(evidence_bytes), expected, trusted_roots, now)
