"""The family sweep: every mutation family on every endpoint the target has, in both stream modes
where the endpoint streams, at least once in every campaign, before the random search.

Why: which families a random campaign exercises is left to Hypothesis' draw distribution, which is
biased (towards the first branches, by the constants in the code under test) and changes with the
seed and with any edit to the code. A 20 s campaign against a node that serves a wrong
``plaintext_body_hash`` found it at seed 5 and not at seed 0. A sweep makes coverage a property of
the campaign, not of the seed, and its ledger says what was exercised and what was not.

The order is mode by mode, the modes in the order of :func:`modes_of`: the first pass sends every
family on chat (the endpoint every target has, and the one a budget should buy first), the next on
chat streams, and so on. So a budget too small for the whole sweep still covers every family (and
says which cells it left). This module is the ledger and the order; :mod:`.campaign` sends the cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

STREAMING_ENDPOINTS = ("chat", "completions")
Status = Literal["not swept", "no finding", "finding", "cut off"]
# Why a cell was not swept, beyond the campaign's own stop reasons (``CampaignResult.stopped_by``).
SWEEP_SHARE = "sweep-share"  # the passes after the first stop at half the request cap or duration
LIVE_PROFILE = "live-profile"  # the live profile sends no 2 MiB body (the oversize family)
NOT_STARTED = "not-started"  # a cell the campaign never reached (it ended before the sweep did)
NOT_PRODUCIBLE = "not-producible"  # a member-table case no seal could carry (a key with no '+' or '/')
TABLE_FAMILY = "member-table"  # the family name of the member table's cells (conformance.member_table)


@dataclass(frozen=True)
class Mode:
    endpoint: str
    stream: bool

    def label(self) -> str:
        return f"{self.endpoint} stream" if self.stream else self.endpoint


@dataclass(frozen=True)
class Cell:
    family: str
    mode: Mode
    case: str = ""  # a member-table cell: the case's label and description (its family is TABLE_FAMILY)


@dataclass
class CellResult:
    status: Status = "not swept"
    requests: int = 0
    findings: list[str] = field(default_factory=list)  # check ids, in the order found
    reason: str | None = None  # why it was not swept

    def to_json(self, cell: Cell) -> dict[str, Any]:
        return {
            "endpoint": cell.mode.endpoint,
            "stream": cell.mode.stream,
            "requests": self.requests,
            "outcome": self.status,
            "findings": list(self.findings),
            "reason": self.reason,
        }


def modes_of(endpoints: Iterable[str]) -> list[Mode]:
    """Every (endpoint, stream) pair the sweep covers: both modes where the endpoint streams."""
    out = []
    for endpoint in endpoints:
        out.append(Mode(endpoint, False))
        if endpoint in STREAMING_ENDPOINTS:
            out.append(Mode(endpoint, True))
    return out


def sweep_order(families: Sequence[str], modes: Sequence[Mode]) -> list[Cell]:
    """Every cell once, one pass per mode: every family on the first mode, then on the next."""
    return [Cell(family, mode) for mode in modes for family in families]


@dataclass
class Sweep:
    """What the sweep planned, sent and found, cell by cell; and what the random phase then spent per
    family (``"valid"`` for requests left unmutated)."""

    families: dict[str, str]  # family name -> the check it exercises, in sweep order
    modes: list[Mode]
    order: list[Cell]
    cells: dict[Cell, CellResult]
    random_ran: bool = False
    random_requests: dict[str, int] = field(default_factory=dict)
    random_findings: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def plan(
        cls, families: dict[str, str], endpoints: Sequence[str], excluded: dict[str, str], table: Sequence[str] = ()
    ) -> Sweep:
        """The sweep of ``families`` over ``endpoints``, and of the member table's ``table`` cases on the
        first mode right after the first pass; a family in ``excluded`` (name -> reason) is listed with
        every cell not swept, for that reason."""
        modes = modes_of(endpoints)
        order = sweep_order(list(families), modes)
        if modes and table:
            first = len(families)
            order[first:first] = [Cell(TABLE_FAMILY, modes[0], case) for case in table]
        cells = {cell: CellResult() for cell in order}
        for cell, result in cells.items():
            if cell.family in excluded:
                result.reason = excluded[cell.family]
        return cls(dict(families), modes, order, cells)

    @property
    def first_pass(self) -> int:
        """How many cells the first pass holds: one per family."""
        return len(self.families)

    def to_send(self) -> list[tuple[int, Cell]]:
        """The cells to send, in order, with their position (those of an excluded family are left)."""
        return [(i, cell) for i, cell in enumerate(self.order) if self.cells[cell].reason is None]

    def leave(self, cells: Iterable[Cell], reason: str) -> None:
        """Mark ``cells`` not swept (those not already sent or excluded) for ``reason``."""
        for cell in cells:
            result = self.cells[cell]
            if result.status == "not swept" and result.reason is None:
                result.reason = reason

    # --- views ----------------------------------------------------------------------------------------

    def swept(self) -> int:
        return sum(1 for r in self.cells.values() if r.status != "not swept")

    def requests(self) -> int:
        return sum(r.requests for r in self.cells.values())

    def not_swept(self) -> list[tuple[Cell, str]]:
        return [(c, r.reason or NOT_STARTED) for c, r in self.cells.items() if r.status == "not swept"]

    def table_cells(self) -> list[tuple[Cell, CellResult]]:
        return [(cell, result) for cell, result in self.cells.items() if cell.family == TABLE_FAMILY]

    def table_json(self) -> dict[str, Any]:
        cells = self.table_cells()
        return {
            "cases": len(cells),
            "swept": sum(1 for _, r in cells if r.status != "not swept"),
            "requests": sum(r.requests for _, r in cells),
            "findings": [
                {"case": cell.case, "checks": list(result.findings)} for cell, result in cells if result.findings
            ],
            "not_swept": [
                {"case": cell.case, "reason": result.reason or NOT_STARTED}
                for cell, result in cells
                if result.status == "not swept"
            ],
        }

    def family_cells(self, family: str) -> list[tuple[Cell, CellResult]]:
        """The family's cells in mode order (not send order): how a reader looks for one."""
        return [(Cell(family, mode), self.cells[Cell(family, mode)]) for mode in self.modes]

    def family_findings(self, family: str) -> list[str]:
        found: list[str] = []
        for _, result in self.family_cells(family):
            found += [c for c in result.findings if c not in found]
        found += [c for c in self.random_findings.get(family, []) if c not in found]
        return found

    def family_outcome(self, family: str) -> str:
        """``finding``, ``no finding`` (in at least one judged cell), ``cut off`` (sent, never judged)
        or ``not swept``."""
        if self.family_findings(family):
            return "finding"
        statuses = {result.status for _, result in self.family_cells(family)}
        for status in ("no finding", "cut off"):
            if status in statuses:
                return status
        return "not swept"

    def to_json(self) -> dict[str, Any]:
        return {
            "cells": len(self.cells),
            "swept": self.swept(),
            "requests": self.requests(),
            "complete": self.swept() == len(self.cells),
            "modes": [mode.label() for mode in self.modes],
            "random_search": self.random_ran,
            "random_valid_requests": self.random_requests.get("valid", 0),
            "families": [
                {
                    "family": family,
                    "check_id": check_id,
                    "cells": len(self.modes),
                    "swept": sum(1 for _, r in self.family_cells(family) if r.status != "not swept"),
                    "requests": sum(r.requests for _, r in self.family_cells(family)),
                    "random_requests": self.random_requests.get(family, 0),
                    "outcome": self.family_outcome(family),
                    "findings": self.family_findings(family),
                    "by_cell": [result.to_json(cell) for cell, result in self.family_cells(family)],
                }
                for family, check_id in self.families.items()
            ],
            "member_table": self.table_json(),
            "not_swept": [
                {"family": cell.family, "endpoint": cell.mode.endpoint, "stream": cell.mode.stream, "reason": reason}
                for cell, reason in self.not_swept()
                if cell.family != TABLE_FAMILY
            ],
        }

    def text(self) -> list[str]:
        """The summary's grid: a line per family, a column per mode, then why any cell was left.
        Every name in it is the suite's own (families, endpoints, check ids, reasons): nothing a
        target said."""
        head = f"family sweep: {self.swept()} of {len(self.cells)} cells swept, {self.requests()} requests"
        if self.random_ran:
            head += f"; then random search: {sum(self.random_requests.values())} requests"
        labels = [_SHORT.get(m.endpoint, m.endpoint) + ("/s" if m.stream else "") for m in self.modes]
        name_w = max([len(name) for name in self.families] + [len("family")])
        check_w = max([len(check) for check in self.families.values()] + [len("check")])
        widths = [max(len(label), 3) for label in labels]
        columns = "  ".join(f"{label:<{w}}" for label, w in zip(labels, widths, strict=True))
        lines = [head, f"  {'family':<{name_w}}  {'check':<{check_w}}  {columns}  sweep  random  outcome"]
        for family, check_id in self.families.items():
            marks = "  ".join(
                f"{_MARK[result.status]:<{w}}" for (_, result), w in zip(self.family_cells(family), widths, strict=True)
            )
            spent = sum(r.requests for _, r in self.family_cells(family))
            random = str(self.random_requests.get(family, 0)) if self.random_ran else "-"
            outcome = self.family_outcome(family)
            shown = f"FINDING {', '.join(self.family_findings(family))}" if outcome == "finding" else outcome
            lines.append(f"  {family:<{name_w}}  {check_id:<{check_w}}  {marks}  {spent:>5}  {random:>6}  {shown}")
        lines.append("  (ok: no finding, F: finding, -: not swept, cut: sent but cut off, not judged; /s: streaming)")
        table = self.table_json()
        if table["cases"]:
            found = sorted({check for row in table["findings"] for check in row["checks"]})
            lines.append(
                f"  member table (conformance/member_table.py): {table['swept']} of {table['cases']} cases swept on "
                f"{self.modes[0].label()}, {table['requests']} requests; "
                + (f"FINDING {', '.join(found)} in {len(table['findings'])} case(s)" if found else "no finding")
            )
        reasons: dict[str, int] = {}
        for _, reason in self.not_swept():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            lines.append(f"  not swept: {count} cell{'s' if count > 1 else ''}: {REASONS.get(reason, reason)}")
        return lines


_SHORT = {"completions": "compl", "embeddings": "embed", "images": "image"}
_MARK: dict[Status, str] = {"no finding": "ok", "finding": "F", "not swept": "-", "cut off": "cut"}
# What each reason a cell was left means, for the summary (the JSON keeps the short name).
REASONS = {
    SWEEP_SHARE: "the passes after the first stop at half the request cap or half the duration",
    LIVE_PROFILE: "the live profile sends no 2 MiB body",
    NOT_STARTED: "the campaign ended before the sweep reached it",
    NOT_PRODUCIBLE: "no seal could carry the member-table case (a fixed key with no '+' or '/')",
    "max-requests": "the --max-requests cap was reached",
    "request-estimate": "the request estimate was reached",
    "max-compute-units": "it would pass --max-compute-units",
    "duration": "--duration ran out",
    "unusable": "the target proved unusable",
    "error": "an unexpected error ended the campaign",
}
