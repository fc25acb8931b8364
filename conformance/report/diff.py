"""What changed between two runs: check outcomes and the target's fingerprint.

Outcome changes are sorted into regressions (``pass`` → ``fail``/``error``), fixes (``fail``/``error``
→ ``pass``) and other changes (anything involving ``skip``, or ``fail`` ↔ ``error``); checks present in
only one run are listed as added or removed, and checks whose level changed (a SHOULD promoted to MUST)
are listed apart.

The target fingerprint is the part of ``results.json``'s ``target`` that identifies the deployment:
``node_public_key``, ``signer_address``, ``signature_scheme``, ``detected_profile`` and ``url``. A changed
node key, signer address or signature scheme means the results describe a different node identity; the
:class:`Diff` flags it (``key_or_signer_changed``) and :func:`format_diff` prints it first, marked ``!!``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..textsafe import one_line
from .baseline import FAILED, checks_by_id

FINGERPRINT_FIELDS = ("node_public_key", "signer_address", "signature_scheme", "detected_profile", "url")
IDENTITY_FIELDS = ("node_public_key", "signer_address", "signature_scheme")
SUITE_FIELDS = ("suite_version", "vector_set_digest", "results_version")


@dataclass(frozen=True)
class CheckChange:
    check_id: str
    level: str
    old_outcome: str | None
    new_outcome: str | None
    reason: str = ""
    """The check's reason text in the new run (in the old run for removed checks)."""
    old_level: str | None = None


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: Any
    new: Any


@dataclass
class Diff:
    regressed: list[CheckChange] = field(default_factory=list)
    fixed: list[CheckChange] = field(default_factory=list)
    changed: list[CheckChange] = field(default_factory=list)
    added: list[CheckChange] = field(default_factory=list)
    removed: list[CheckChange] = field(default_factory=list)
    level_changed: list[CheckChange] = field(default_factory=list)
    fingerprint: list[FieldChange] = field(default_factory=list)
    suite: list[FieldChange] = field(default_factory=list)
    """Suite version, vector set or results format changed: outcome changes may come from the suite."""

    @property
    def key_or_signer_changed(self) -> bool:
        return any(change.name in IDENTITY_FIELDS for change in self.fingerprint)

    @property
    def must_regressions(self) -> list[CheckChange]:
        return [change for change in self.regressed if change.level == "MUST"]

    @property
    def empty(self) -> bool:
        return not (
            self.regressed
            or self.fixed
            or self.changed
            or self.added
            or self.removed
            or self.level_changed
            or self.fingerprint
            or self.suite
        )

    def to_json(self) -> dict[str, Any]:
        def changes(group: list[CheckChange]) -> list[dict[str, Any]]:
            return [vars(c).copy() for c in group]

        return {
            "key_or_signer_changed": self.key_or_signer_changed,
            "fingerprint": [vars(c).copy() for c in self.fingerprint],
            "suite": [vars(c).copy() for c in self.suite],
            "regressed": changes(self.regressed),
            "fixed": changes(self.fixed),
            "changed": changes(self.changed),
            "added": changes(self.added),
            "removed": changes(self.removed),
            "level_changed": changes(self.level_changed),
        }


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Diff:
    """Compare two results documents (``old`` the earlier run). Raises
    :class:`~conformance.report.baseline.ResultsError` when either is not shaped like results.json."""
    old_checks, new_checks = checks_by_id(old), checks_by_id(new)
    out = Diff()
    for check_id, now in new_checks.items():
        before = old_checks.get(check_id)
        if before is None:
            out.added.append(CheckChange(check_id, now["level"], None, now["outcome"], now["reason"]))
            continue
        if before["level"] != now["level"]:
            out.level_changed.append(
                CheckChange(check_id, now["level"], before["outcome"], now["outcome"], now["reason"], before["level"])
            )
        was, is_ = before["outcome"], now["outcome"]
        if was == is_:
            continue
        change = CheckChange(check_id, now["level"], was, is_, now["reason"], before["level"])
        if was == "pass" and is_ in FAILED:
            out.regressed.append(change)
        elif was in FAILED and is_ == "pass":
            out.fixed.append(change)
        else:
            out.changed.append(change)
    for check_id, before in old_checks.items():
        if check_id not in new_checks:
            out.removed.append(CheckChange(check_id, before["level"], before["outcome"], None, before["reason"]))

    old_target, new_target = _target(old), _target(new)
    for name in FINGERPRINT_FIELDS:
        if old_target.get(name) != new_target.get(name):
            out.fingerprint.append(FieldChange(name, old_target.get(name), new_target.get(name)))
    for name in SUITE_FIELDS:
        if old.get(name) != new.get(name):
            out.suite.append(FieldChange(name, old.get(name), new.get(name)))
    return out


def _target(results: Mapping[str, Any]) -> Mapping[str, Any]:
    target = results.get("target")
    return target if isinstance(target, Mapping) else {}


def format_diff(d: Diff) -> str:
    """A plain-text report; a change of node key, signer or signature scheme comes first, marked ``!!``."""
    lines: list[str] = []
    identity = [c for c in d.fingerprint if c.name in IDENTITY_FIELDS]
    if identity:
        lines.append("!! NODE IDENTITY CHANGED: these results are from a different key or signer")
        for change in identity:
            lines.append(f"!!   {change.name}: {_show(change.old)} -> {_show(change.new)}")
    if d.empty:
        lines.append("no differences")
        return "\n".join(lines)

    regressions = len(d.regressed)
    must = len(d.must_regressions)
    lines.append(
        f"{regressions} regressed ({must} MUST), {len(d.fixed)} fixed, {len(d.changed)} otherwise changed, "
        f"{len(d.added)} new, {len(d.removed)} removed"
    )
    other = [c for c in d.fingerprint if c.name not in IDENTITY_FIELDS]
    if other:
        lines.append("target changed:")
        for change in other:
            lines.append(f"  {change.name}: {_show(change.old)} -> {_show(change.new)}")
    if d.suite:
        lines.append("suite changed (outcome changes may come from the suite, not the target):")
        for change in d.suite:
            lines.append(f"  {change.name}: {_show(change.old)} -> {_show(change.new)}")

    def section(title: str, group: list[CheckChange]) -> None:
        if not group:
            return
        lines.append(f"{title}:")
        for c in group:
            # Ids, levels, outcomes and reasons all come from the two files: escaped and capped.
            arrow = f"{_cell(c.old_outcome or '-')} -> {_cell(c.new_outcome or '-')}"
            level = _cell(c.level) if c.old_level in (None, c.level) else f"{_cell(c.old_level)}->{_cell(c.level)}"
            text = one_line(" ".join(c.reason.split()), 160)
            lines.append(f"  {one_line(c.check_id, 40):<12} {level:<6} {arrow:<16} {text}".rstrip())

    section("REGRESSED (pass -> fail/error)", d.regressed)
    section("FIXED (fail/error -> pass)", d.fixed)
    section("CHANGED", d.changed)
    section("LEVEL CHANGED", d.level_changed)
    section("NEW checks", d.added)
    section("REMOVED checks", d.removed)
    return "\n".join(lines)


def _show(value: Any) -> str:
    """A fingerprint value for a terminal: it is whatever the target answered, so escaped and capped."""
    return "(none)" if value is None else one_line(value, 200)


def _cell(value: Any) -> str:
    return one_line(value, 12)
