"""An upper bound on what a run will send, from the catalogue's declarations alone.

A paid endpoint bills every request, so ``run --dry-run`` must promise a number the real run never
exceeds. The bound is built from data: each selected check declares the probes it reads
(``Check.reads``), each probe declares its own cost and the probes it reads first
(``Probe.cost``), and every xdist worker keeps its own probe cache, so each may send the whole
closure. Lock retries (on 429 and 503) are counted at their maximum. tests/test_estimate.py holds real
runs to this bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .checks import CATALOGUE, Check
from .checks.probe import PROBES
from .exits import UserError
from .taxonomy import Face
from .textsafe import one_line

LOCK_RETRIES = 3  # ClientOptions.lock_retries, the suite's default
PREFLIGHT_REQUESTS = {"proxy": 3, "node": 1}  # conformance.preflight: lock, then at most two look-ups


@dataclass(frozen=True)
class Bound:
    checks: int
    probes: int
    requests: int  # the promise: never exceeded
    without_retries: int  # what it comes to when no lock is retried
    preflight: int

    @property
    def detail(self) -> str:
        return f"{self.without_retries} if no lock is retried; {self.preflight} of them preflight, the rest per worker"


def select(expression: str | None, checks: tuple[Check, ...] = tuple(CATALOGUE)) -> list[Check]:
    """The checks a pytest ``-m`` expression selects (levels, categories and ids, as the suite marks them)."""
    if not expression:
        return list(checks)
    import pytest
    from _pytest.mark.expression import Expression  # pytest's own -m grammar, so the two never disagree

    try:
        compiled = Expression.compile(expression)
    except (pytest.UsageError, SyntaxError) as exc:
        raise UserError("-m", f"not a marker expression ({one_line(str(exc), 120)})") from None
    return [check for check in checks if compiled.evaluate(_marks_of(check))]


def _marks_of(check: Check) -> Callable[..., bool]:
    marks = {check.level.lower(), check.category.lower(), check.id}
    return lambda name, /, **_kwargs: name in marks


def closure(names: set[str], face: Face, member_table: str = "cover") -> set[str]:
    """The probes ``names`` run, with everything they read first; probes of the other face, and the
    member table's other depth, skip."""

    def runs(name: str) -> bool:
        return PROBES[name].face in (None, face) and PROBES[name].depth in (None, member_table)

    todo = [name for name in names if runs(name)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(read for read in PROBES[name].cost.reads if runs(read))
    return seen


def estimate_run(
    *, select_expr: str | None, workers: int, face: Face, embedded: bool, member_table: str = "cover"
) -> Bound:
    checks = select(select_expr)
    probes = closure({name for check in checks for name in check.probes}, face, member_table)
    per_lock = 0 if face == "node" else 1
    sends = sum(PROBES[name].cost.sends for name in probes)
    locks = sum(PROBES[name].cost.locks for name in probes) * per_lock
    preflight = 0 if embedded else PREFLIGHT_REQUESTS[face]
    return Bound(
        checks=len(checks),
        probes=len(probes),
        requests=preflight + workers * (sends + locks * (1 + LOCK_RETRIES)),
        without_retries=preflight + workers * (sends + locks),
        preflight=preflight,
    )
