"""docs/spec.md §15, key binding and attestation: is the key a lock hands out the one the node
committed on chain, with GPU evidence that binds it?

Every other check takes the lock's ``public_key`` on trust. These read a Sui full node (``--sui-rpc``,
``--sui-package``) and, for KEY-008, the proxy service (``--attestation-service``); without them they
skip, saying which option is missing, and never pass. Against the embedded mock they read the mock's
own chain faces and trust its test CA; against a deployment, only NVIDIA's device root (or the test CA
too with ``--trust-test-ca``, which is for a mock and never for a verdict).

On the proxy face the key is the lock's (KEY-001); on the node face, which has no lock, KEY-011 seals a
request to the key the chain commits (for ``--node-small-id``) and requires the node to serve it. The evidence
checks (KEY-003 to KEY-007) judge every entry, GPU and NVSwitch, each for its own step.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ...keybinding import ChainReader, ChainReadError, KeyBindingRecord
from ...keyrules import (
    Unjudged,
    age_problem,
    behind_problem,
    commitment_problem,
    container_problem,
    entry_problems,
    fingerprint,
    judged,
    key_age_s,
    lock_key_problem,
    measurement_problem,
    service_problem,
    unique_commitment,
)
from ...protocol import ProtocolError
from ...protocol.attestation import EvidenceType, Step
from ...records import ExchangeRecord
from ...textsafe import one_line
from ..base import Group, Precondition, Skip, Verdict, failed, passed
from ..evidence import EvidenceEntries, KeyBinding
from ..judging import round_trip_problem
from ..probe import Probe, Reads, probe
from ..probes import CHAT, LOCK
from ..run import Run

GROUP = Group((15,), "Key binding and attestation")
SHOWN = 8
F = TypeVar("F", bound=Callable[..., Any])


def _not_evaluated(fn: F) -> F:
    """A rule that cannot judge (conformance.keyrules.Unjudged) makes the check, or the probe, not
    evaluated: a Precondition, never a pass, and never an internal error."""

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except Unjudged as exc:
            raise Precondition(str(exc)) from None

    return wrapped  # type: ignore[return-value]


def check(*args: Any, **kwargs: Any) -> Callable[[Callable[[Reads], Verdict]], Any]:
    """GROUP.check, its predicate wrapped by :func:`_not_evaluated`."""

    def register(fn: Callable[[Reads], Verdict]) -> Any:
        return GROUP.check(*args, **kwargs)(_not_evaluated(fn))

    return register


# --- probes ------------------------------------------------------------------------------------------


def _key_binding(run: Run) -> KeyBindingRecord:
    source = run.target.key_source
    if source is None:
        raise Skip("no key source: --sui-rpc and --sui-package name the Sui full node and Atoma package to read")
    if run.target.face == "proxy":
        lock = run.get(LOCK)  # the run's first lock: only its key and node are read, it is not spent
        if not lock.ok or lock.public_key is None or lock.lock is None:
            raise Precondition(f"not evaluated: the lock did not succeed (status {lock.http.status})")
        key, node = lock.public_key, lock.lock.node_small_id
    else:
        hop = run.client.node_face
        if source.node_small_id is None or hop is None:
            raise Skip("the node face has no lock to name the node: --node-small-id does")
        key, node = hop.node_public_key, source.node_small_id
    options = run.client.options
    reader = ChainReader(source, timeout_s=options.timeout_s, deadline_s=options.deadline_s, verify=options.verify)
    try:
        return reader.read(node, key)
    except ChainReadError as exc:
        raise Precondition(f"not evaluated: {exc}") from None
    except ProtocolError as exc:
        raise Precondition(f"not evaluated: the chain's answer was refused: {one_line(str(exc), 200)}") from None
    finally:
        reader.close()


KEY_BINDING: Probe[KeyBindingRecord] = probe("key-binding", sends=0, locks=0, reads=(LOCK,))(_key_binding)


@_not_evaluated
def _key_node_serves(run: Run) -> ExchangeRecord:
    """A chat request sealed to the committed key. When that is the key the suite was given
    (--node-public-key), the run's CHAT exchange is that request; otherwise one more is sent, and only
    once the node has served CHAT, so that a node refusing everything is not judged on its key."""
    record = run.get(KEY_BINDING)
    committed = unique_commitment(record.facts)
    hop = run.client.node_face
    assert hop is not None  # the probe is of the node face
    if committed.new_public_key == hop.node_public_key:
        return run.get(CHAT)
    if run.get(CHAT).http.status != 200:
        raise Precondition("not evaluated: the node serves no request sealed to --node-public-key either (CHAT)")
    lock = dataclasses.replace(hop, node_public_key=committed.new_public_key).lock_record(run.target.chat_model)
    return run.send("chat", lock=lock)


KEY_NODE_SERVES: Probe[ExchangeRecord] = probe("key-node-serves", face="node", locks=0, reads=(KEY_BINDING, CHAT))(
    _key_node_serves
)


# --- evidence ----------------------------------------------------------------------------------------


def _binding(record: KeyBindingRecord) -> KeyBinding:
    facts = record.facts
    latest = facts.commitment
    age = key_age_s(latest, record.checked_at) if latest is not None else None
    return KeyBinding(
        record.node_small_id,
        fingerprint(record.handed_out_key),
        fingerprint(latest.new_public_key) if latest is not None else None,
        latest.key_rotation_counter if latest is not None else None,
        facts.holder.key_rotation_counter if facts.holder is not None else None,
        facts.latest_rotation_counter,
        round(age, 1) if age is not None else None,
    )


def _entries(record: KeyBindingRecord, failures: list[str], not_judged: list[str]) -> EvidenceEntries:
    reading = record.evidence
    assert reading is not None
    kinds = [v.evidence_type for v in reading.verdicts or ()]
    return EvidenceEntries(
        reading.digest,
        reading.length,
        kinds.count(EvidenceType.DEVICE),
        kinds.count(EvidenceType.NVSWITCH),
        tuple(failures[:SHOWN]),
        tuple(not_judged[:SHOWN]),
    )


def _steps(reads: Reads, steps: tuple[Step, ...], what: str) -> Verdict:
    """Judge ``steps`` of every entry: a failure fails, a step not judged (its input did not parse)
    makes the check not evaluated, all judged and passing passes."""
    record = reads.get(KEY_BINDING)
    verdicts = judged(record.evidence)
    failures, not_judged = entry_problems(verdicts, steps)
    evidence = _entries(record, failures, not_judged)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return failed(f"{failures[0]}{more}", evidence)
    if not_judged:
        raise Precondition(f"not evaluated: {not_judged[0]}")
    return passed(f"every one of the {len(verdicts)} report(s) {what}", evidence)


# --- checks ------------------------------------------------------------------------------------------


@check(
    "KEY-001",
    "MUST",
    "The key a lock hands out is the node's latest committed key",
    spec="R15.11",
    reads=(LOCK, KEY_BINDING),
    evidence=KeyBinding,
)
def key_001(reads: Reads) -> Verdict:
    """The lock's key against the latest commitment's; an older commitment holding it is named with both
    counters. (The node face has no lock: KEY-011 judges the node's own key there.)"""
    reads.get(LOCK)
    record = reads.get(KEY_BINDING)
    problem = lock_key_problem(record.handed_out_key, record.facts)
    if problem is not None:
        return failed(problem, _binding(record))
    return passed(f"the lock's key is node {record.node_small_id}'s latest commitment's", _binding(record))


@check(
    "KEY-002",
    "MUST",
    "The node's latest commitment and its rotation are unambiguous",
    spec="R15.2",
    reads=(KEY_BINDING,),
    evidence=KeyBinding,
)
def key_002(reads: Reads) -> Verdict:
    record = reads.get(KEY_BINDING)
    problem = commitment_problem(record.facts)
    if problem is not None:
        return failed(problem, _binding(record))
    return passed("one latest commitment, and one rotation event of its counter", _binding(record))


@check(
    "KEY-003",
    "MUST",
    "The evidence inflates within its cap and parses",
    spec="R15.4",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_003(reads: Reads) -> Verdict:
    """A zlib bomb is refused at 16 MiB inflated, before any parse."""
    record = reads.get(KEY_BINDING)
    problem = container_problem(record.evidence)
    if problem is not None:
        assert record.evidence is not None
        return failed(problem, EvidenceEntries(record.evidence.digest, record.evidence.length, 0, 0, (problem,), ()))
    if record.evidence is not None and record.evidence.verdicts is None:  # no nonce: decoded, not judged
        reading = record.evidence
        return passed("the evidence decodes", EvidenceEntries(reading.digest, reading.length, 0, 0, (), ()))
    return _steps(reads, (Step.REPORT, Step.CERTIFICATES), "and its certificate chain parse")


@check(
    "KEY-004",
    "MUST",
    "Every report answers the nonce of the committed key and the contract nonce",
    spec="R15.5",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_004(reads: Reads) -> Verdict:
    """BLAKE3(u64_le(contract_nonce) ‖ new_public_key ‖ u16_le(300)), GPU and NVSwitch reports alike."""
    return _steps(reads, (Step.NONCE,), "answers the report nonce of the committed key")


@check(
    "KEY-005",
    "MUST",
    "Every certificate chain verifies to NVIDIA's device identity root",
    spec="R15.6",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_005(reads: Reads) -> Verdict:
    return _steps(reads, (Step.CHAIN,), "has a chain that verifies to a trusted root")


@check(
    "KEY-006",
    "MUST",
    "Every report's signature verifies under its leaf certificate",
    spec="R15.7",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_006(reads: Reads) -> Verdict:
    return _steps(reads, (Step.SIGNATURE,), "is signed by its leaf certificate's key")


@check(
    "KEY-007",
    "MUST",
    "Every report parses as SPDM GET_MEASUREMENTS and its firmware ID matches its leaf certificate",
    spec="R15.8",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_007(reads: Reads) -> Verdict:
    return _steps(reads, (Step.REPORT, Step.FWID), "parses, and claims its leaf certificate's firmware ID")


@check(
    "KEY-008",
    "MUST",
    "The proxy service serves the latest commitment's evidence",
    spec="R15.13",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_008(reads: Reads) -> Verdict:
    record = reads.get(KEY_BINDING)
    if record.service is None:
        raise Skip("no --attestation-service: the proxy service's copy of the evidence is not read")
    problem = service_problem(record.service, record.evidence)
    reading = record.evidence
    assert reading is not None
    evidence = EvidenceEntries(reading.digest, reading.length, 0, 0, (problem,) if problem else (), ())
    if problem is not None:
        return failed(problem, evidence)
    return passed("GET /v1/get_node_attestation serves the latest commitment's evidence, byte for byte", evidence)


@check(
    "KEY-009",
    "MUST",
    "The node's key is committed at the network's latest rotation",
    spec=("R15.12", "R15.3"),
    reads=(KEY_BINDING,),
    evidence=KeyBinding,
)
def key_009(reads: Reads) -> Verdict:
    """Upstream's proxy hands out only keys verified at the latest rotation counter (protocol.md §11)."""
    record = reads.get(KEY_BINDING)
    problem = behind_problem(record.facts)
    if problem is not None:
        return failed(problem, _binding(record))
    return passed("the node's latest commitment is at the latest rotation", _binding(record))


@check(
    "KEY-010",
    "SHOULD",
    "The node's key is no older than --max-key-age",
    spec="R15.10",
    reads=(KEY_BINDING,),
    evidence=KeyBinding,
)
def key_010(reads: Reads) -> Verdict:
    source = reads.target.key_source
    if source is None or source.max_key_age_s is None:
        raise Skip("no --max-key-age: the key's age is not judged")
    record = reads.get(KEY_BINDING)
    problem = age_problem(unique_commitment(record.facts), record.checked_at, source.max_key_age_s)
    if problem is not None:
        return failed(problem, _binding(record))
    return passed("the node's latest commitment is younger than --max-key-age", _binding(record))


@check(
    "KEY-011",
    "MUST",
    "The node serves a request sealed to its latest committed key",
    spec="R15.1",
    reads=(KEY_BINDING, KEY_NODE_SERVES),
    evidence=KeyBinding,
)
def key_011(reads: Reads) -> Verdict:
    """The node face: the suite's own --node-public-key may be a stale copy; the chain is not. A node
    that serves under a key it never committed is caught here (its ordinary checks pass against that key)."""
    exchange = reads.get(KEY_NODE_SERVES)  # first: on the proxy face it skips before the chain is read
    record = reads.get(KEY_BINDING)
    committed = fingerprint(unique_commitment(record.facts).new_public_key)
    problem = round_trip_problem(exchange)
    if problem is not None:
        return failed(
            f"a request sealed to the node's latest committed key ({committed}) failed: {problem}", _binding(record)
        )
    return passed(f"the node serves a request sealed to its latest committed key ({committed})", _binding(record))


@check(
    "KEY-012",
    "INFO",
    "Every report's measurements match the reference integrity manifests given",
    spec="R15.9",
    reads=(KEY_BINDING,),
    evidence=EvidenceEntries,
)
def key_012(reads: Reads) -> Verdict:
    """INFO, not SHOULD: the RIMs come from the user (--rim-dir), not from NVIDIA's RIM service, and their
    own XML signatures are not verified, so a match is only as good as the files given. Each report is
    compared with the RIMs that name its driver or VBIOS version; a report no RIM names, or whose
    measurements no RIM covers, is not evaluated: a missing RIM is never a pass."""
    source = reads.target.key_source
    if source is None or source.rims is None:
        raise Skip("no --rim-dir: the measurements are not compared with NVIDIA's reference values (R15.9)")
    record = reads.get(KEY_BINDING)
    verdicts = judged(record.evidence)
    failures: list[str] = []
    not_judged: list[str] = []
    for verdict in verdicts:
        problem = measurement_problem(verdict, source.rims)
        if problem is not None:
            (failures if problem[0] else not_judged).append(problem[1])
    evidence = _entries(record, failures, not_judged)
    if failures:
        return failed(f"{failures[0]}{f' (and {len(failures) - 1} more)' if len(failures) > 1 else ''}", evidence)
    if not_judged:
        raise Precondition(f"not evaluated: {not_judged[0]}")
    return passed(f"every report's measurements match {source.rim_source}", evidence)
