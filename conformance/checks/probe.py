"""Probes as typed data: what a run sends, what each result is, and who may read it.

A probe sends what it needs once per run; many checks read its result. Each probe is a ``Probe[T]``
whose ``T`` is the record it yields (``LOCK_NO_AUTH: Probe[HttpRecord]``), so a check that reads it is
typed, and each check declares the probes it reads. The runner hands a check a :class:`Reads` view
that refuses any other probe, so the declaration that ``docs/checks.md`` and ``run --dry-run`` are
built from cannot drift from what the check really reads.

The word: a *probe* is an exchange the suite sends to a node. (A *scenario* is the other direction:
a response the mock node serves to a client under test, ``conformance/clients``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..taxonomy import Face

if TYPE_CHECKING:
    from ..protocol.nonces import NonceLedger
    from .run import Run, Target

T = TypeVar("T")


@dataclass(frozen=True)
class Cost:
    """What one probe may send, declared beside it so ``run --dry-run`` can bound a run before it starts.

    ``sends`` counts its own requests other than locks, ``locks`` its lock requests (each may be retried
    on 429/503, and costs nothing on the node face, which has no lock endpoint), and ``reads`` the other
    probes it runs first. tests/test_estimate.py runs every probe and holds it to its declaration.
    """

    sends: int = 1
    locks: int = 1
    reads: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Probe(Generic[T]):
    """One registered probe. Compared by identity: two probes are never the same probe."""

    name: str
    send: Callable[[Run], T]
    cost: Cost
    face: Face | None  # None: both faces; else the one face it applies to (elsewhere it skips)
    depth: str | None = None  # None: every run; else the one --member-table depth that sends it

    def __repr__(self) -> str:
        return f"Probe({self.name!r})"


PROBES: dict[str, Probe[Any]] = {}


def probe(
    name: str,
    *,
    face: Face | None = None,
    sends: int = 1,
    locks: int = 1,
    reads: tuple[Probe[Any], ...] = (),
    depth: str | None = None,
) -> Callable[[Callable[[Run], T]], Probe[T]]:
    """Register a probe; the default cost is the common probe: one lock and one confidential request."""

    def register(fn: Callable[[Run], T]) -> Probe[T]:
        if name in PROBES:
            raise ValueError(f"duplicate probe {name}")
        made: Probe[T] = Probe(name, fn, Cost(sends, locks, tuple(p.name for p in reads)), face, depth)
        PROBES[name] = made
        return made

    return register


class UndeclaredRead(Exception):
    """A check read a probe it did not declare: a bug in the check, shown as an error verdict."""


class Reads:
    """What a check may see of a run: the probes it declared, and the run's facts and ledgers."""

    def __init__(self, run: Run, check_id: str, allowed: tuple[Probe[Any], ...]) -> None:
        self._run = run
        self._check_id = check_id
        self._allowed = frozenset(p.name for p in allowed)

    def get(self, probe: Probe[T]) -> T:
        """The result of ``probe``, sending it on first use in the run."""
        if probe.name not in self._allowed:
            raise UndeclaredRead(f"{self._check_id} reads probe {probe.name}, which it does not declare")
        return self._run.get(probe)

    @property
    def target(self) -> Target:
        return self._run.target

    @property
    def ledger(self) -> NonceLedger:
        """(key, nonce) uses of every exchange so far (read it after the probes that feed it)."""
        return self._run.ledger

    @property
    def node_nonces(self) -> NonceLedger:
        return self._run.node_nonces
