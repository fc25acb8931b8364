"""Checks as data: a permanent id, a level, the requirements it tests, the probes it reads, the
evidence it records, and a predicate over what those probes observed.

A check never sends anything itself. Probes send, once per run, and many checks read the same
exchange, which keeps a run against a paid endpoint small. Registration refuses a check whose
declaration cannot be true (an unknown requirement, a level weaker than its requirement's with no
reason given, a probe or evidence kind that does not exist), and :meth:`Check.run` refuses, as an
internal error, a predicate that reads a probe it did not declare or records other evidence than
it declares. So the data the docs and the dry run are built from is the data the code runs on.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..taxonomy import CATEGORIES, LEVELS, Level
from .evidence import Evidence
from .probe import PROBES, Probe, Reads, UndeclaredRead

if TYPE_CHECKING:
    from .run import Run

Outcome = Literal["pass", "fail", "skip", "error"]
__all__ = ["CATEGORIES", "LEVELS", "Check", "Group", "Level", "Outcome", "Precondition", "Skip", "Verdict"]


@dataclass
class Verdict:
    outcome: Outcome
    reason: str
    evidence: Evidence | dict[str, Any] | None = None  # node checks: their declared Evidence; clients: a dict

    def evidence_json(self) -> dict[str, Any]:
        if isinstance(self.evidence, Evidence):
            return self.evidence.to_json()
        return dict(self.evidence or {})


class Skip(Exception):
    """The check cannot apply to this target (for example no embeddings model was named)."""


class Precondition(Exception):
    """What the check needs could not be obtained (the probe itself failed): an 'error' verdict."""


@dataclass(frozen=True)
class Group:
    """The checks of one docs/spec.md section, as h2spec groups its tests by RFC section.

    ``sections`` are top-level section numbers (usually one; key agreement and AEAD share a module);
    every check of the group cites a requirement of one of them first (registration refuses others).
    """

    sections: tuple[int, ...]
    title: str
    checks: list[Check] = field(default_factory=list, compare=False)

    def check(
        self,
        id: str,
        level: Level,
        title: str,
        *,
        spec: str | tuple[str, ...],
        reads: tuple[Probe[Any], ...],
        evidence: type[Evidence],
        weaker_because: str | None = None,
    ) -> Callable[[Callable[[Reads], Verdict]], Check]:
        """Register a predicate as a check. Ids are permanent: retire a check, never reuse its id."""

        def register(fn: Callable[[Reads], Verdict]) -> Check:
            made = Check(
                id,
                level,
                title,
                (spec,) if isinstance(spec, str) else spec,
                reads,
                evidence,
                fn,
                weaker_because=weaker_because,
                group=self,
            )
            register_check(made)
            self.checks.append(made)
            return made

        return register


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    title: str
    spec: tuple[str, ...]
    reads: tuple[Probe[Any], ...]
    evidence: type[Evidence]
    predicate: Callable[[Reads], Verdict] = field(repr=False)
    weaker_because: str | None = None  # why the level is below the cited requirement's own
    group: Group | None = field(default=None, repr=False, compare=False)

    @property
    def category(self) -> str:
        return self.id.split("-")[0]

    @property
    def probes(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.reads)

    def run(self, run: Run) -> Verdict:
        """Evaluate against a run; never raises."""
        try:
            verdict = self.predicate(Reads(run, self.id, self.reads))
        except Skip as exc:
            return Verdict("skip", str(exc))
        except Precondition as exc:
            return Verdict("error", str(exc))
        except UndeclaredRead as exc:
            return Verdict("error", f"internal error in the check: {exc}")
        except Exception as exc:  # a bug in a check must show as an error verdict, not abort the run
            last = traceback.extract_tb(exc.__traceback__)[-1]
            return Verdict("error", f"internal error in the check: {type(exc).__name__} at {last.name}:{last.lineno}")
        if verdict.outcome in ("pass", "fail") and type(verdict.evidence) is not self.evidence:
            got = type(verdict.evidence).__name__
            return Verdict("error", f"internal error in the check: it recorded {got}, not its {self.evidence.__name__}")
        return verdict


REGISTRY: dict[str, Check] = {}


def register_check(made: Check) -> None:
    """Add ``made`` to the catalogue, refusing a declaration that cannot be true."""
    from .. import spec as spec_index

    if made.id in REGISTRY:
        raise ValueError(f"duplicate check id {made.id}")
    if made.category not in CATEGORIES:
        raise ValueError(f"{made.id}: unknown category")
    if made.level not in LEVELS:
        raise ValueError(f"{made.id}: unknown level {made.level!r}")
    if not made.reads:
        raise ValueError(f"{made.id}: reads no probe")
    for read in made.reads:
        if PROBES.get(read.name) is not read:
            raise ValueError(f"{made.id}: reads {read!r}, which is not a registered probe")
    if not (isinstance(made.evidence, type) and issubclass(made.evidence, Evidence) and made.evidence is not Evidence):
        raise ValueError(f"{made.id}: evidence must be a kind of Evidence, not {made.evidence!r}")
    requirements = spec_index.load().requirements
    for ref in made.spec:
        if ref not in requirements:
            raise ValueError(f"{made.id}: cites {ref}, which docs/spec.md does not define")
    if made.group is not None and requirements[made.spec[0]].section not in made.group.sections:
        raise ValueError(f"{made.id}: cites {made.spec[0]} first, outside §{made.group.sections} ({made.group.title})")
    weaker = _weaker_than_spec(made.level, [requirements[ref].level for ref in made.spec])
    if weaker and not made.weaker_because:
        raise ValueError(f"{made.id}: level {made.level} is below what {made.spec} asks; say why (weaker_because=)")
    if made.weaker_because and not weaker:
        raise ValueError(f"{made.id}: weaker_because given, but the level is not below its requirements'")
    REGISTRY[made.id] = made


def _weaker_than_spec(level: Level, spec_levels: list[str]) -> bool:
    """Whether a check is weaker than the strongest requirement it cites (INFO checks record facts)."""
    if level == "INFO":
        return False
    rank = {"MUST": 2, "MUST NOT": 2, "SHOULD": 1, "SHOULD NOT": 1, "MAY": 0}
    return rank[level] < max(rank[s] for s in spec_levels)


def passed(reason: str, evidence: Evidence) -> Verdict:
    return Verdict("pass", reason, evidence)


def failed(reason: str, evidence: Evidence) -> Verdict:
    return Verdict("fail", reason, evidence)


def verdict(ok: bool, good: str, bad: str, evidence: Evidence) -> Verdict:
    return Verdict("pass" if ok else "fail", good if ok else bad, evidence)
