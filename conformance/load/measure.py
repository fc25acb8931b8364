"""What a load run measures besides findings: error classes and latency percentiles, as plain data.

Kept apart from the engine so that it can be tested (and imported) without Locust, which monkey-patches
the standard library when it is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..textsafe import one_line


@dataclass
class ErrorTally:
    """Error classes (a failed request's kind) with one sanitised example each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.examples.setdefault(kind, one_line(example, 200))

    def take(self) -> dict[str, Any]:
        wire = {"counts": self.counts, "examples": self.examples}
        self.counts, self.examples = {}, {}
        return wire

    def merge(self, wire: dict[str, Any]) -> None:
        for kind, count in wire["counts"].items():
            self.counts[kind] = self.counts.get(kind, 0) + int(count)
        for kind, example in wire["examples"].items():
            self.examples.setdefault(kind, one_line(str(example), 200))


def error_class(status: int | None, error: str | None, finding: str | None) -> tuple[str, str] | None:
    """A request's error class and a short description, or None when it succeeded."""
    if error is not None:
        kind = "timeout" if "timeout" in error.lower() or "deadline" in error.lower() else "transport"
        return kind, error
    if status is None:
        return "transport", "no answer"
    if status in (429, 503):
        return f"shed-{status}", f"status {status}"
    if status >= 500:
        return "http-5xx", f"status {status}"
    if status >= 400:
        return "http-4xx", f"status {status}"
    if status != 200:
        return "http-other", f"status {status}"
    if finding is not None:
        return "finding", finding
    return None


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile of a {rounded ms: count} histogram (Locust's buckets), or None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))
