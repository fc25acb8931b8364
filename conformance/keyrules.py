"""The rulebook's key-binding rules (docs/spec.md §15): pure functions over what the chain says.

A module outside ``conformance.checks``, importing only the protocol core and the chain's records, because
the mock's client judge (mock_node/judge.py) applies these rules too, and the mock and the catalogue are
layers that do not import each other (tests/test_layers.py).

The KEY checks, the client judge (CLIENT-037: did a client encrypt to a key the chain does not commit?)
and the reference client's opt-in verification call these, so "the key is bound" means one thing
everywhere. Like ``conformance.checks.judging``, a rule returns a reason (words safe to show) or None,
and raises :class:`Unjudged` when what it needs was not established: the KEY checks report it as "not
evaluated" (a Precondition), a client refuses the key; never a pass.

Which rule owns which failure, so that each check fails only for its own reason:

- the handed-out key against the latest commitment's key: :func:`lock_key_problem` (R15.1, R15.11);
- the latest commitment and its rotation being unique: :func:`commitment_problem` (R15.2);
- the node being behind the network's rotations: :func:`behind_problem` (R15.3, R15.12);
- the evidence's container: :func:`container_problem` (R15.4); each report's steps:
  :func:`entry_problems` (R15.5 to R15.8). The report nonce is recomputed from the *committed* key, not
  the handed-out one: a lock that hands out another key fails R15.11 alone, not R15.5 as well;
- the proxy service's copy: :func:`service_problem` (R15.13); the key's age: :func:`age_problem` (R15.10).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .keybinding import EvidenceReading, ServiceReading
from .protocol import KeyCommitment, KeyFacts
from .protocol.attestation import (
    EntryVerdict,
    Outcome,
    ReferenceManifest,
    RimError,
    Step,
    compare_measurements,
    report_driver_version,
    report_vbios_version,
)
from .protocol.primitives import blake2b_256
from .textsafe import one_line

REASON_LEN = 300


class Unjudged(Exception):
    """A rule could not judge: what it needs (a unique commitment, decoded evidence) was not read."""


def fingerprint(key: bytes) -> str:
    """A public key as reports show it: the first 8 bytes of its BLAKE2b-256, hex."""
    return blake2b_256(key).hex()[:16]


def unique_commitment(facts: KeyFacts) -> KeyCommitment:
    """The node's latest commitment, or Unjudged: none was read, or the chain names several."""
    if not facts.latest:
        if facts.events_seen == 0:
            raise Unjudged(
                "not evaluated: the package holds no key commitment of any node (is --sui-package the Atoma "
                "package of this deployment's network?)"
            )
        raise Unjudged(f"not evaluated: no key commitment of node {facts.node_small_id} was read")
    if len(facts.latest) > 1:
        raise Unjudged("not evaluated: the node's latest commitment is ambiguous (KEY-002)")
    return facts.latest[0]


def lock_key_problem(key: bytes, facts: KeyFacts) -> str | None:
    """R15.1/R15.11: ``key`` (what a lock handed out, or what a client encrypted to) is the node's
    latest committed key. A node without any commitment on a chain that holds others' fails here."""
    if not facts.latest and facts.events_seen > 0:
        return (
            f"node {facts.node_small_id} has no key commitment among the {facts.events_seen} read: the key "
            f"{fingerprint(key)} was never committed"
        )
    latest = unique_commitment(facts)
    if key == latest.new_public_key:
        return None
    counter = latest.key_rotation_counter
    holder = facts.holder
    if holder is not None:
        return (
            f"the key handed out ({fingerprint(key)}) is the node's commitment at key_rotation_counter "
            f"{holder.key_rotation_counter}, not its latest, at {counter} ({fingerprint(latest.new_public_key)}): "
            "a stale rotation"
        )
    tail = " (the scan stopped at its page limit)" if facts.truncated else ""
    return (
        f"the key handed out ({fingerprint(key)}) is not the node's latest committed key "
        f"({fingerprint(latest.new_public_key)}, key_rotation_counter {counter}), and no commitment of the "
        f"node that was read holds it{tail}: a key that was never committed"
    )


def commitment_problem(facts: KeyFacts) -> str | None:
    """R15.2: one latest commitment of the node, and one rotation event of its counter."""
    if not facts.latest:
        unique_commitment(facts)  # raises: nothing of the node to judge
    if len(facts.latest) > 1:
        counter = facts.latest[0].key_rotation_counter
        node = facts.node_small_id
        return f"the chain holds {len(facts.latest)} different commitments of node {node} at counter {counter}"
    counter = facts.latest[0].key_rotation_counter
    if not facts.rotations:
        return (
            f"no NewKeyRotationEvent with key_rotation_counter {counter} was read: the evidence has no contract nonce"
        )
    if len(facts.rotations) > 1:
        return f"{len(facts.rotations)} different NewKeyRotationEvents carry key_rotation_counter {counter}"
    return None


def behind_problem(facts: KeyFacts) -> str | None:
    """R15.3/R15.12: the node's latest commitment is at the network's latest rotation. Its counter is
    known even when the chain holds two commitments at it (R15.2's failure, not this rule's)."""
    if not facts.latest:
        unique_commitment(facts)  # raises: nothing of the node to judge
    counter = facts.latest[0].key_rotation_counter
    top = facts.latest_rotation_counter
    if top is None:
        raise Unjudged("not evaluated: no NewKeyRotationEvent was read")
    if counter < top:
        return (
            f"the node's latest commitment is at key_rotation_counter {counter}, but the "
            f"network has rotated to {top}: its key is handed out without a commitment of this rotation"
        )
    return None


def container_problem(reading: EvidenceReading | None) -> str | None:
    """R15.4: the evidence inflates, within its cap, and parses."""
    if reading is None:
        raise Unjudged("not evaluated: no unique latest commitment, so no evidence to judge")
    return reading.decode_error


def judged(reading: EvidenceReading | None) -> tuple[EntryVerdict, ...]:
    """The entries' verdicts, or Unjudged: the container did not decode, or there is no nonce."""
    if reading is None:
        raise Unjudged("not evaluated: no unique latest commitment, so no evidence to judge")
    if reading.decode_error is not None:
        raise Unjudged("not evaluated: the evidence does not decode (KEY-003)")
    if reading.verdicts is None:
        raise Unjudged("not evaluated: no rotation event gives the contract nonce (KEY-002)")
    return reading.verdicts


def steps_problem(reading: EvidenceReading | None, steps: tuple[Step, ...]) -> str | None:
    """The first failure of ``steps`` over every entry, or None; Unjudged when none failed but one could
    not be judged (its input did not parse), or when there are no verdicts to judge (:func:`judged`)."""
    failures, not_judged = entry_problems(judged(reading), steps)
    if failures:
        return failures[0]
    if not_judged:
        raise Unjudged(f"not evaluated: {not_judged[0]}")
    return None


def entry_problems(verdicts: Iterable[EntryVerdict], steps: tuple[Step, ...]) -> tuple[list[str], list[str]]:
    """(failures, not judged) of ``steps`` over every entry, each one line naming the field."""
    failed: list[str] = []
    not_judged: list[str] = []
    for verdict in verdicts:
        for step in steps:
            result = verdict[step]
            if result.outcome is Outcome.FAIL and result.error is not None:
                failed.append(one_line(str(result.error), REASON_LEN))
            elif result.outcome is Outcome.NOT_RUN:
                not_judged.append(f"evidence_bytes[{verdict.index}] {step.value}: {result.note}")
    return failed, not_judged


def service_problem(service: ServiceReading, reading: EvidenceReading | None) -> str | None:
    """R15.13: the proxy service serves the latest commitment's evidence, byte for byte."""
    if reading is None:
        raise Unjudged("not evaluated: no unique latest commitment to compare the service's evidence with")
    if service.error is not None:
        if service.status is not None and service.status != 200:
            return f"GET /v1/get_node_attestation answered HTTP {service.status} for a node with a commitment"
        if service.status is None:
            raise Unjudged(f"not evaluated: {service.error}")
        return service.error
    if service.digest != reading.digest:
        return (
            f"the service's compressed_evidence ({service.length:,} bytes, BLAKE2b {str(service.digest)[:16]}) is "
            f"not the latest commitment's evidence_bytes ({reading.length:,} bytes, BLAKE2b {reading.digest[:16]})"
        )
    return None


def key_age_s(commitment: KeyCommitment, now: dt.datetime) -> float | None:
    if commitment.timestamp_ms is None:
        return None
    return now.timestamp() - commitment.timestamp_ms / 1000


def age_problem(commitment: KeyCommitment, now: dt.datetime, max_age_s: float) -> str | None:
    """R15.10: the latest commitment is no older than ``max_age_s``."""
    age = key_age_s(commitment, now)
    if age is None:
        raise Unjudged("not evaluated: the full node gave the commitment event no timestampMs")
    if age > max_age_s:
        days, allowed = age / 86400, max_age_s / 86400
        return f"the node's latest commitment is {days:,.1f} days old, more than the {allowed:,.1f} allowed"
    return None


def measurement_problem(verdict: EntryVerdict, rims: tuple[ReferenceManifest, ...]) -> tuple[bool, str] | None:
    """R15.9: the entry's measurements against the RIMs naming its driver or VBIOS version: None when they
    match, else (failed, reason). Not failed means it could not be judged (no report, no RIM names it, the
    RIMs conflict, no measurement covered), which the caller must not count as a pass."""
    where = f"evidence_bytes[{verdict.index}]"
    report = verdict.report
    if report is None:
        return False, f"{where}: the report did not parse (KEY-007)"
    versions = [v for v in (report_driver_version(report), report_vbios_version(report)) if v]
    chosen = [m for m in rims if any(m.names_version(v) for v in versions)]
    if not chosen:
        named = ", ".join(one_line(v, 40) for v in versions) or "no version"
        return False, f"{where}: no RIM given names this report's driver or VBIOS version ({named})"
    try:
        comparison = compare_measurements(report, chosen, field=f"{where}.evidence")
    except RimError as exc:
        return False, f"{where}: the RIMs given cannot be used together: {one_line(str(exc), REASON_LEN)}"
    if comparison.mismatched:
        first = comparison.mismatched[0]
        more = f" (and {len(comparison.mismatched) - 1} more)" if len(comparison.mismatched) > 1 else ""
        return True, f"{first.field}: {one_line(first.reason, REASON_LEN)}{more}"
    if not comparison.matched:
        return False, f"{where}: no measurement of the report is covered by the RIMs that name it"
    return None
