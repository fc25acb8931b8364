"""The check catalogue: every requirement the suite tests, as data.

The checks live in ``sections/``, one module per docs/spec.md section; ``CATALOGUE`` lists them in id
order, and ``docs/checks.md`` is generated from it.
"""

from __future__ import annotations

from . import sections as _sections  # noqa: F401 - importing registers the checks
from .base import CATEGORIES, LEVELS, REGISTRY, Check, Level, Outcome, Verdict
from .run import Run, Target


def _order(check_id: str) -> tuple[int, int]:
    category, number = check_id.split("-")
    return CATEGORIES.index(category), int(number)


CATALOGUE: tuple[Check, ...] = tuple(sorted(REGISTRY.values(), key=lambda c: _order(c.id)))

__all__ = ["CATALOGUE", "CATEGORIES", "LEVELS", "Check", "Level", "Outcome", "Run", "Target", "Verdict"]
