"""A client's check of the key a lock hands out, before it encrypts anything to it (docs/spec.md R15.14).

The reference client (:class:`~conformance.client.ConfidentialClient` with ``ClientOptions.key_source``)
and the reference adapter (conformance/clients/adapters/reference.py, whenever its instruction names a
chain) call :func:`verify_lock_key`. It reads the chain with :class:`~conformance.keybinding.ChainReader`
and judges what it read with the rulebook's key rules (conformance/keyrules.py): the functions
the KEY checks and the client judge (CLIENT-037) call, so "the key is bound" means one thing everywhere.

A client fails closed. A rule that fails, a rule that cannot judge (``Unjudged``), and a chain
that cannot be read or answers nonsense are all refusals: :class:`~conformance.client.UnverifiedLockKey`,
naming the requirement, and nothing is sealed to the key. The proxy service's copy of the evidence
(R15.13) and the key's age (R15.10) are not what R15.14 asks of a client, so they are not read here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from .client import UnverifiedLockKey
from .keybinding import ChainReader, ChainReadError, KeyBindingRecord, KeySource
from .keyrules import (
    Unjudged,
    behind_problem,
    commitment_problem,
    container_problem,
    lock_key_problem,
    steps_problem,
)
from .protocol import ProtocolError
from .protocol.attestation import Step
from .textsafe import one_line

REASON_LEN = 300
NOT_EVALUATED = "not evaluated: "

# The evidence steps a client judges, with the requirement each belongs to (as KEY-003 to KEY-007 judge
# them): a report or certificate that does not parse is the container's (R15.4).
EVIDENCE_STEPS: tuple[tuple[str, tuple[Step, ...]], ...] = (
    ("R15.4", (Step.REPORT, Step.CERTIFICATES)),
    ("R15.5", (Step.NONCE,)),
    ("R15.6", (Step.CHAIN,)),
    ("R15.7", (Step.SIGNATURE,)),
    ("R15.8", (Step.FWID,)),
)


def key_problem(record: KeyBindingRecord) -> tuple[str, str] | None:
    """The requirement ``record`` fails and why, or None when every rule passes.

    Every rule is asked: a rule that fails is named before one that could not judge (an ambiguous chain
    is reported as R15.2's failure, not as R15.11 being unable to pick the latest key); a rule that
    could not judge, with nothing failing, is still a problem, since R15.14 asks a client to send
    nothing to a key it could not verify.
    """
    facts = record.facts
    rules: list[tuple[str, Callable[[], str | None]]] = [
        ("R15.11", functools.partial(lock_key_problem, record.handed_out_key, facts)),
        ("R15.2", functools.partial(commitment_problem, facts)),
        ("R15.12", functools.partial(behind_problem, facts)),
        ("R15.4", functools.partial(container_problem, record.evidence)),
        *((rule, functools.partial(steps_problem, record.evidence, steps)) for rule, steps in EVIDENCE_STEPS),
    ]
    unjudged: tuple[str, str] | None = None
    for rule, judge in rules:
        try:
            problem = judge()
        except Unjudged as exc:
            if unjudged is None:
                unjudged = (rule, "cannot be verified: " + str(exc).removeprefix(NOT_EVALUATED))
            continue
        if problem is not None:
            return rule, one_line(problem, REASON_LEN)
    return None if unjudged is None else (unjudged[0], one_line(unjudged[1], REASON_LEN))


def verify_lock_key(
    source: KeySource,
    node_small_id: int,
    key: bytes,
    *,
    timeout_s: float = 30.0,
    deadline_s: float = 120.0,
    verify: bool | str = True,
) -> KeyBindingRecord:
    """Read the chain about ``node_small_id`` and return the record if ``key`` is its attested key;
    otherwise raise :class:`~conformance.client.UnverifiedLockKey`. Each call has the read timeout and
    all of them ``deadline_s`` together (:class:`~conformance.keybinding.ChainReader`)."""
    chain_only = dataclasses.replace(source, attestation_service=None)  # R15.13 is not a client's to judge
    reader = ChainReader(chain_only, timeout_s=timeout_s, deadline_s=deadline_s, verify=verify)
    try:
        record = reader.read(node_small_id, key)
    except ChainReadError as exc:
        raise UnverifiedLockKey("R15.14", f"cannot be verified: {one_line(str(exc), REASON_LEN)}") from None
    except ProtocolError as exc:  # an answer of the full node refused, naming its field
        reason = f"cannot be verified: the chain's answer was refused: {one_line(str(exc), REASON_LEN)}"
        raise UnverifiedLockKey("R15.14", reason) from None
    finally:
        reader.close()
    problem = key_problem(record)
    if problem is not None:
        raise UnverifiedLockKey(*problem)
    return record
