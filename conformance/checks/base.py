"""Checks as data: an id that is never renumbered, a level, a spec reference, the evidence it records,
the scenarios it needs, and a predicate over what those scenarios observed.

A check never sends anything itself. Scenarios (probes) send, once per run, and many checks read the
same exchange, which keeps a run against a paid endpoint small.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..taxonomy import CATEGORIES, LEVELS, Level

Outcome = Literal["pass", "fail", "skip", "error"]
__all__ = ["CATEGORIES", "LEVELS", "Check", "Level", "Outcome", "Precondition", "Skip", "Verdict"]


@dataclass
class Verdict:
    outcome: Outcome
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Skip(Exception):
    """The check cannot apply to this target (for example no embeddings model was named)."""


class Precondition(Exception):
    """What the check needs could not be obtained (the scenario itself failed): an 'error' verdict."""


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    title: str
    spec: tuple[str, ...]
    evidence: str
    scenarios: tuple[str, ...]
    predicate: Callable[[Any], Verdict]

    @property
    def category(self) -> str:
        return self.id.split("-")[0]

    def run(self, run: Any) -> Verdict:
        """Evaluate against a run; never raises."""
        try:
            return self.predicate(run)
        except Skip as exc:
            return Verdict("skip", str(exc))
        except Precondition as exc:
            return Verdict("error", str(exc))
        except Exception as exc:  # a bug in a check must show as an error verdict, not abort the run
            last = traceback.extract_tb(exc.__traceback__)[-1]
            return Verdict("error", f"internal error in the check: {type(exc).__name__} at {last.name}:{last.lineno}")


REGISTRY: dict[str, Check] = {}


def check(
    id: str, level: Level, title: str, *, spec: str | tuple[str, ...], evidence: str, scenarios: tuple[str, ...]
) -> Callable[[Callable[[Any], Verdict]], Callable[[Any], Verdict]]:
    """Register a predicate as a check. Ids are permanent: retire a check, never reuse its id."""
    if id in REGISTRY:
        raise ValueError(f"duplicate check id {id}")
    if id.split("-")[0] not in CATEGORIES:
        raise ValueError(f"{id}: unknown category")

    def register(fn: Callable[[Any], Verdict]) -> Callable[[Any], Verdict]:
        refs = (spec,) if isinstance(spec, str) else spec
        REGISTRY[id] = Check(id, level, title, refs, evidence, scenarios, fn)
        return fn

    return register


def passed(reason: str, **evidence: Any) -> Verdict:
    return Verdict("pass", reason, evidence)


def failed(reason: str, **evidence: Any) -> Verdict:
    return Verdict("fail", reason, evidence)


def verdict(ok: bool, good: str, bad: str, **evidence: Any) -> Verdict:
    return Verdict("pass" if ok else "fail", good if ok else bad, evidence)
