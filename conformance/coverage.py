"""Requirement coverage as data: for every requirement of docs/spec.md, the checks that test it, the mock
faults that break it, the vectors that exercise it, or the written reason a black-box suite cannot test it.

Why a matrix and not a count: "every requirement is tested" was a claim no file could refute. Here it is
computed from the same data the suite runs on (the check catalogue, the client checks, the mock's fault
table and the vector files), so a requirement nobody tests shows up as a gap, and a check that no fault
proves can fail shows up as unproven.

A requirement binds a node or proxy, a client, or both ("A node and a client …"); which one is read off
its text (:func:`duties`). Each duty is covered by its own kind of check: a node or proxy duty by a check
of the catalogue, a client duty by a CLIENT check. A client check that cites R3.6 (the client judge
measures the salt) therefore does not cover a node's duty to refuse a 15-byte salt.

``python -m conformance.coverage > docs/coverage.md`` regenerates the Markdown rendering.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .checks import CATALOGUE
from .clients.checks import CLIENT_CHECKS
from .spec import Requirement, load
from .vectors.refs import REFS

__all__ = [
    "DUTIES",
    "NOT_TESTABLE",
    "CheckProof",
    "Coverage",
    "Duty",
    "Row",
    "Status",
    "build",
    "duties",
    "render_markdown",
]

Duty = Literal["node", "client"]
DUTIES: tuple[Duty, ...] = ("node", "client")
DUTY_LABEL: Mapping[Duty, str] = {"node": "node/proxy", "client": "client"}
Status = Literal["covered", "by reason", "uncovered"]
STATUSES: tuple[Status, ...] = ("covered", "by reason", "uncovered")
CERTIFYING = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT")  # the levels a conformance class is judged on (§0.5)

# Requirement id -> why no black-box test can tell a conforming implementation from one that is not.
# Kept here, as typed data beside the code that reads it, rather than in a data file: each reason is
# reviewed with the matrix it changes, and a reason on a requirement that a check now cites fails
# tests/test_coverage.py. A reason covers every duty of its requirement.
NOT_TESTABLE: dict[str, str] = {
    "R4.6": (
        "Internal state: whether a node or a client keeps K or ss after the session, or uses K for anything "
        "but that session's messages, leaves no trace in any exchange the suite makes or watches; the one "
        "visible consequence, a nonce repeated under K, is audited under §12"
    ),
    "R4.7": (
        "Needs the target to replace its X25519 key pair during the run: no message of the protocol makes a "
        "node rotate, so the suite can neither cause nor time it, and a run that did not straddle a rotation "
        "cannot tell a grace period from a rotation that has not happened"
    ),
    "R7.14": (
        "Key hygiene behind the proxy: which assets the stack-owner address holds and what else its key signs "
        "are facts of the proxy's wallet and the chain, not of any exchange; from the proxy face the suite "
        "never sees X-Signature or its signer"
    ),
    "R9.6": (
        "A MAY: keep-alive comments are allowed, never required, so no behaviour fails it; their rate is "
        "R9.7 (STREAM-007) and a client's duty to ignore them R13.16 (CLIENT-036)"
    ),
    "R9.13": (
        "The early stops it governs cannot be caused and watched at once: a client that disconnects receives "
        "nothing more, the proxy's stop request is atoma-node's /v1/stop-streamer (W24, outside this "
        "specification), and a backend failure cannot be induced from outside; every chunk the suite does "
        "see is judged under R9.4 and R9.5"
    ),
}

# A client is bound when the text names it as an actor: "A client …", "A node and a client …", "A node,
# proxy or client …", "(node, proxy or client)", or the generic verifier and recipient of §5 and §7. The
# "Why:" explanation is left out, and so is "a client-chosen value", which names no actor.
_CLIENT_ACTOR = re.compile(
    r"^A client\b|\b(?:node|proxy),? (?:and|or) (?:a )?client\b|\(node, proxy or client\)"
    r"|\b[Aa] (?:client|verifier|recipient)\b(?!-)"
)


def duties(requirement: Requirement) -> tuple[Duty, ...]:
    """Who the requirement binds: §13 and every "A client …" bind clients only; a text that also names a
    client as an actor binds both; the rest bind a node or a proxy (whatever serves the face)."""
    text = requirement.text.split(" Why: ")[0]
    if requirement.section == 13 or text.startswith("A client "):
        return ("client",)
    return ("node", "client") if _CLIENT_ACTOR.search(text) else ("node",)


@dataclass(frozen=True)
class Row:
    """One requirement and everything the suite holds against it."""

    requirement: Requirement
    anchor: str  # GitHub's anchor of the spec heading the requirement sits under
    duties: tuple[Duty, ...]
    node_checks: tuple[str, ...]  # catalogue checks citing it
    client_checks: tuple[str, ...]  # CLIENT checks citing it
    violated_by: tuple[str, ...]  # mock faults whose ``violates`` names it
    proven_by: tuple[str, ...]  # mock faults that make one of its node checks fail (Fault.caught_by)
    vector_kinds: tuple[str, ...]  # kinds of conformance/vectors/refs.py naming it
    vector_files: tuple[tuple[str, int], ...]  # (vector file, tests in it citing the requirement)
    reason: str | None  # NOT_TESTABLE's reason

    @property
    def id(self) -> str:
        return self.requirement.id

    @property
    def certifying(self) -> bool:
        return self.requirement.level in CERTIFYING

    def checks(self, duty: Duty) -> tuple[str, ...]:
        return self.node_checks if duty == "node" else self.client_checks

    def status(self, duty: Duty | None = None) -> Status:
        """Of one duty, or of the requirement: covered only when each duty it binds is."""
        of = (duty,) if duty is not None else self.duties
        if all(self.checks(d) for d in of):
            return "covered"
        return "by reason" if self.reason is not None else "uncovered"

    def gaps(self) -> tuple[Duty, ...]:
        """The duties neither a check nor a reason accounts for."""
        return tuple(d for d in self.duties if self.status(d) == "uncovered")


@dataclass(frozen=True)
class CheckProof:
    """A catalogue check and the mock faults proving it can fail (tests/test_meta_faults.py runs each serial
    one; a concurrency fault proves its checks under ``atoma-conformance load``, tests/test_load.py)."""

    id: str
    level: str
    spec: tuple[str, ...]
    faults: tuple[str, ...]


@dataclass(frozen=True)
class Coverage:
    rows: tuple[Row, ...]  # in spec order
    checks: tuple[CheckProof, ...]  # the node checks, in catalogue order
    sections: Mapping[int, tuple[str, str]]  # number -> (title, anchor)

    def by_section(self) -> dict[int, list[Row]]:
        out: dict[int, list[Row]] = {}
        for row in self.rows:
            out.setdefault(row.requirement.section, []).append(row)
        return out

    def tally(self, duty: Duty | None = None) -> dict[Status, int]:
        """MUST and SHOULD requirements (NOT included) per status: of one duty's population, or of all."""
        out: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            if row.certifying and (duty is None or duty in row.duties):
                out[row.status(duty)] += 1
        return out

    def uncovered(self) -> set[str]:
        """``"R4.1 client"`` for each MUST or SHOULD duty that neither a check nor a reason accounts for."""
        return {f"{row.id} {duty}" for row in self.rows if row.certifying for duty in row.gaps()}

    def stale_reasons(self) -> list[str]:
        """Requirements that keep a NOT_TESTABLE reason although a check now cites them."""
        return [row.id for row in self.rows if row.reason is not None and (row.node_checks or row.client_checks)]

    def unproven(self) -> set[str]:
        """Node checks that no mock fault makes fail."""
        return {c.id for c in self.checks if not c.faults}


def _vector_files() -> dict[str, list[tuple[str, int]]]:
    """Requirement -> (vector file, how many of its tests cite it), from the vectors the suite ships."""
    from .paths import MiB, read_json_file
    from .resources import vectors_dir
    from .vectors.generate import BUILDERS

    directory = vectors_dir()
    out: dict[str, list[tuple[str, int]]] = {}
    for name in BUILDERS:
        doc = read_json_file(directory / name, "vectors", 4 * MiB)
        counts: dict[str, int] = {}
        for group in doc["testGroups"]:
            for test in group["tests"]:
                for ref in test["spec_refs"]:
                    counts[ref] = counts.get(ref, 0) + 1
        for ref, count in counts.items():
            out.setdefault(ref, []).append((name, count))
    return out


@functools.cache
def build() -> Coverage:
    """The matrix of the suite as installed (cached: the catalogue and fault table do not change in a run)."""
    from mock_node.faults import CATALOGUE as FAULTS

    spec = load()
    anchors: dict[str, str] = {}
    sections: dict[int, tuple[str, str]] = {}
    for heading in spec.headings:
        anchors.update(dict.fromkeys(heading.requirements, heading.anchor))
        if heading.section is not None:
            sections[heading.section] = (spec.sections[heading.section], heading.anchor)

    def citing(checks: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for check_id, refs in checks:
            for ref in refs:
                out.setdefault(ref, []).append(check_id)
        return out

    node = citing(tuple((c.id, c.spec) for c in CATALOGUE))
    client = citing(tuple((c.id, c.spec) for c in CLIENT_CHECKS))
    proving: dict[str, list[str]] = {}
    for fault in FAULTS:
        for check_id in fault.caught_by:
            proving.setdefault(check_id, []).append(fault.name)
    violated = citing(tuple((f.name, f.violates) for f in FAULTS))
    kinds = citing(tuple((kind, tuple(refs)) for kind, refs in REFS.items()))
    files = _vector_files()
    rows = []
    for rid, requirement in spec.requirements.items():
        own = node.get(rid, [])
        proven = list(dict.fromkeys(f for check_id in own for f in proving.get(check_id, [])))
        rows.append(
            Row(
                requirement=requirement,
                anchor=anchors[rid],
                duties=duties(requirement),
                node_checks=tuple(own),
                client_checks=tuple(client.get(rid, [])),
                violated_by=tuple(violated.get(rid, [])),
                proven_by=tuple(proven),
                vector_kinds=tuple(kinds.get(rid, [])),
                vector_files=tuple(files.get(rid, [])),
                reason=NOT_TESTABLE.get(rid),
            )
        )
    checks = tuple(CheckProof(c.id, c.level, c.spec, tuple(proving.get(c.id, []))) for c in CATALOGUE)
    return Coverage(tuple(rows), checks, sections)


# --- docs/coverage.md ----------------------------------------------------------------------------------


def _link(row: Row) -> str:
    return f"[{row.id}](spec.md#{row.anchor})"


def _status_cell(row: Row) -> str:
    status = row.status()
    if status != "uncovered":
        return status
    missing = ", ".join(DUTY_LABEL[d] for d in row.gaps())
    return f"**uncovered** ({missing})" if len(row.duties) > 1 else "**uncovered**"


@functools.cache
def _under_load() -> frozenset[str]:
    """The concurrency faults: no serial run shows them; they prove their checks under load."""
    from mock_node.faults import CATALOGUE as FAULTS

    return frozenset(f.name for f in FAULTS if f.concurrent)


def _fault(name: str) -> str:
    return f"`{name}` (under load)" if name in _under_load() else f"`{name}`"


def _faults_cell(row: Row) -> str:
    parts = []
    if row.violated_by:
        parts.append("violate: " + ", ".join(_fault(f) for f in row.violated_by))
    extra = [f for f in row.proven_by if f not in row.violated_by]
    if extra:
        parts.append("prove a check: " + ", ".join(_fault(f) for f in extra))
    return "; ".join(parts) or "—"


def _vectors_cell(row: Row) -> str:
    files = ", ".join(f"{name} ({count})" for name, count in row.vector_files)
    kinds = ", ".join(f"`{k}`" for k in row.vector_kinds)
    return "; ".join(part for part in (files, f"kinds {kinds}" if kinds else "") if part) or "—"


def _totals(coverage: Coverage) -> list[str]:
    lines = [
        "| MUST and SHOULD requirements | covered | by reason | uncovered | total |",
        "| --- | --- | --- | --- | --- |",
    ]
    populations: tuple[tuple[str, Duty | None], ...] = (
        ("binding a node or proxy", "node"),
        ("binding a client", "client"),
        ("all (covered only when every duty is)", None),
    )
    for label, duty in populations:
        tally = coverage.tally(duty)
        lines.append(
            f"| {label} | {tally['covered']} | {tally['by reason']} | {tally['uncovered']} | {sum(tally.values())} |"
        )
    unproven = coverage.unproven()
    proven = len(coverage.checks) - len(unproven)
    may = [row for row in coverage.rows if not row.certifying]
    lines += [
        "",
        f"MAY requirements, listed below but left out of these counts: {', '.join(_link(r) for r in may) or 'none'}.",
        "",
        f"Of the {len(coverage.checks)} node and proxy checks, {proven} have a mock fault that proves they can "
        f"fail and {len(unproven)} have none yet ([below](#checks-and-the-faults-that-prove-them)).",
    ]
    return lines


def render_markdown(coverage: Coverage | None = None) -> str:
    """docs/coverage.md: the totals, one table per spec section, then every node check with its faults."""
    coverage = coverage or build()
    lines = [
        "# Requirement coverage",
        "",
        "Generated by `python -m conformance.coverage > docs/coverage.md`; do not edit by hand.",
        "",
        "Every requirement of [docs/spec.md](spec.md) with the checks that cite it, the mock faults that violate it",
        "(or prove that one of its checks can fail), the known-answer vectors that exercise it (a file with the",
        "number of its tests citing the requirement, and the vector kinds of `conformance/vectors/refs.py`) and,",
        "where no black-box test can decide it, the reason. A requirement binds a node or proxy, a client, or both,",
        "as its text says; a node or proxy duty is covered by a check of [docs/checks.md](checks.md), a client",
        "duty by a CLIENT check. *Uncovered* is a gap the suite could close; *by reason* is one it cannot.",
        "",
        "## Totals",
        "",
        *_totals(coverage),
    ]
    for number, rows in coverage.by_section().items():
        title, anchor = coverage.sections[number]
        lines += [
            "",
            f"## §{number} {title}",
            "",
            f"[Spec §{number}](spec.md#{anchor}).",
            "",
            "| requirement | level | binds | checks | faults | vectors | status | reason |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in rows:
            checks = ", ".join((*row.node_checks, *row.client_checks)) or "—"
            binds = ", ".join(DUTY_LABEL[d] for d in row.duties)
            lines.append(
                f"| {_link(row)} | {row.requirement.level} | {binds} | {checks} | {_faults_cell(row)} "
                f"| {_vectors_cell(row)} | {_status_cell(row)} | {row.reason or ''} |"
            )
    lines += [
        "",
        "## Checks and the faults that prove them",
        "",
        "A check is proven when a mock fault makes it fail while the clean mock passes it "
        "(tests/test_meta_faults.py); a fault marked *under load* shows only with requests in flight at once, "
        "and proves its checks under `atoma-conformance load` (tests/test_load.py). CLIENT checks are proven by "
        "toy clients instead (tests/test_clients.py), so only the node and proxy checks are listed.",
        "",
        "| check | level | spec | faults |",
        "| --- | --- | --- | --- |",
    ]
    for check in coverage.checks:
        faults = ", ".join(_fault(f) for f in check.faults) or "**none yet**"
        lines.append(f"| {check.id} | {check.level} | {', '.join(check.spec)} | {faults} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(
            "python -m conformance.coverage: takes no arguments; it writes docs/coverage.md to stdout", file=sys.stderr
        )
        return 2
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
