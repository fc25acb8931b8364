"""Regression gating against a baseline of known failures.

A deployment that fails some checks today can still gate its releases: the failures it knows about
are written into a baseline file, each with a reason and an expiry date, and :func:`gate` then fails
only on what is *not* in the baseline (new failures) and on baseline entries whose time is up.

A baseline never hides a failure: every baselined failure that still fails is listed, with its reason
and expiry, in the gate's output (``known``), and entries whose check now passes are flagged
(``fixed``) so that the baseline shrinks instead of going stale.

Baseline file format (JSON, UTF-8)::

    {
      "baseline_version": 1,
      "comment": "optional free text",
      "entries": [
        {"check_id": "LOCK-011", "level": "MUST", "expires": "2025-09-30",
         "reason": "second API key not provisioned on staging; tracked in OPS-412"},
        {"check_id": "ERR-017", "level": "SHOULD", "expires": "2025-12-31",
         "reason": "upstream returns 500 on tampered ciphertext"}
      ]
    }

- ``baseline_version`` (required): the integer 1.
- ``comment`` (optional): a string, for people.
- ``entries`` (required): a list, possibly empty, of objects with exactly these members:

  - ``check_id`` (required): a check id such as ``LOCK-011``; each id at most once.
  - ``reason`` (required): a non-empty string: why the failure is accepted for now.
  - ``expires`` (required): ``YYYY-MM-DD``, the last day on which the entry is honoured. From the
    next day on, a check that still fails counts as a failure again.
  - ``level`` (optional): ``MUST`` or ``SHOULD``, the level the check had when it was baselined. When
    given and the check now has another level (a SHOULD promoted to MUST), the entry does not cover it:
    the acknowledgement was for a different requirement and has to be renewed.

Unknown members, wrong types and duplicate check ids are refused (:class:`BaselineError`, whose message
names the entry and field, e.g. ``entries[2].expires: not a date (YYYY-MM-DD)``).

How outcomes are gated (``fail`` and ``error`` are both failures; ``skip`` is neither a failure nor a
pass, as in ``atoma-conformance run``):

- MUST failure not covered by the baseline: ``new_failures``, exit code 1.
- MUST failure covered by an unexpired entry: ``known``, exit code unaffected (0).
- MUST failure covered by an expired entry (``expires`` < today): ``expired``, exit code 1.
- SHOULD failures never change the exit code, but are always reported: uncovered ones in
  ``should_failures``, covered ones in ``known`` or ``expired`` like MUST ones. They may be baselined
  too (so that the report only shows what is new). INFO checks are not gated.
- A baselined check that now passes: ``fixed`` (remove the entry), exit code unaffected.
- A baselined check that was skipped or not run: ``not_evaluated``, exit code unaffected.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ..exits import ExitCode
from ..textsafe import one_line

BASELINE_VERSION = 1
BASELINE_LEVELS = ("MUST", "SHOULD")
FAILED = ("fail", "error")
OUTCOMES = ("pass", "fail", "skip", "error")


_CHECK_ID = re.compile(r"[A-Z][A-Z0-9_]*-[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOP_FIELDS = ("baseline_version", "comment", "entries")
_ENTRY_FIELDS = ("check_id", "reason", "expires", "level")


class BaselineError(ValueError):
    """A baseline file that cannot be used. ``location`` is the path inside the document
    (``entries[2].expires``), ``problem`` what is wrong with it; the message is one line."""

    def __init__(self, source: str, location: str, problem: str) -> None:
        self.source = source
        self.location = location
        self.problem = problem
        where = f"{location}: " if location else ""
        super().__init__(f"{source}: {where}{problem}")


class ResultsError(ValueError):
    """A results document that is not shaped like ``results.json`` (see conformance/results.py)."""


@dataclass(frozen=True)
class BaselineEntry:
    check_id: str
    reason: str
    expires: datetime.date
    level: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check_id": self.check_id}
        if self.level is not None:
            out["level"] = self.level
        out["expires"] = self.expires.isoformat()
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Baseline:
    entries: tuple[BaselineEntry, ...] = ()
    comment: str | None = None
    version: int = BASELINE_VERSION

    def get(self, check_id: str) -> BaselineEntry | None:
        for entry in self.entries:
            if entry.check_id == check_id:
                return entry
        return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"baseline_version": self.version}
        if self.comment is not None:
            out["comment"] = self.comment
        out["entries"] = [e.to_json() for e in self.entries]
        return out


# --- loading and validation ---------------------------------------------------------------------


MAX_BASELINE_BYTES = 16 * 1024 * 1024


def load_baseline(path: Path | str, field: str = "--baseline") -> Baseline:
    """Read and strictly validate a baseline file. A FIFO, a device or a file over 16 MiB is refused
    before it is read; :class:`~conformance.exits.UserError` names ``field`` and what is wrong."""
    from ..exits import UserError
    from ..paths import read_json_file, shown

    doc = read_json_file(path, field, MAX_BASELINE_BYTES)
    try:
        return parse_baseline(doc, source=shown(path))
    except BaselineError as exc:
        raise UserError(field, str(exc)) from None


def parse_baseline(doc: Any, *, source: str = "<baseline>") -> Baseline:
    """Validate an already-parsed baseline document (the same rules as :func:`load_baseline`)."""

    def fail(location: str, problem: str) -> BaselineError:
        return BaselineError(source, location, problem)

    if not isinstance(doc, dict):
        raise fail("", f"must be a JSON object, not {_json_type(doc)}")
    for key in doc:
        if key not in _TOP_FIELDS:
            raise fail(str(key), f"unknown field (allowed: {', '.join(_TOP_FIELDS)})")
    if "baseline_version" not in doc:
        raise fail("baseline_version", "missing")
    version = doc["baseline_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail("baseline_version", f"must be an integer, not {_json_type(version)}")
    if version != BASELINE_VERSION:
        raise fail("baseline_version", f"unsupported version {version} (this suite reads {BASELINE_VERSION})")
    comment = doc.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise fail("comment", f"must be a string, not {_json_type(comment)}")
    if "entries" not in doc:
        raise fail("entries", "missing")
    raw_entries = doc["entries"]
    if not isinstance(raw_entries, list):
        raise fail("entries", f"must be a list, not {_json_type(raw_entries)}")

    entries: list[BaselineEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        at = f"entries[{index}]"
        if not isinstance(raw, dict):
            raise fail(at, f"must be an object, not {_json_type(raw)}")
        for key in raw:
            if key not in _ENTRY_FIELDS:
                raise fail(f"{at}.{key}", f"unknown field (allowed: {', '.join(_ENTRY_FIELDS)})")
        for key in ("check_id", "reason", "expires"):
            if key not in raw:
                raise fail(f"{at}.{key}", "missing")

        check_id = raw["check_id"]
        if not isinstance(check_id, str):
            raise fail(f"{at}.check_id", f"must be a string, not {_json_type(check_id)}")
        if not _CHECK_ID.fullmatch(check_id):
            raise fail(f"{at}.check_id", f"not a check id (like LOCK-011): {check_id!r}")
        if check_id in seen:
            raise fail(f"{at}.check_id", f"duplicate of entries[{seen[check_id]}] ({check_id})")
        seen[check_id] = index

        reason = raw["reason"]
        if not isinstance(reason, str):
            raise fail(f"{at}.reason", f"must be a string, not {_json_type(reason)}")
        if not reason.strip():
            raise fail(f"{at}.reason", "must not be empty: say why the failure is accepted")

        expires = raw["expires"]
        if not isinstance(expires, str):
            raise fail(f"{at}.expires", f"not a date (YYYY-MM-DD): a {_json_type(expires)}")
        try:
            if not _DATE.fullmatch(expires):
                raise ValueError(expires)
            expiry = datetime.date.fromisoformat(expires)
        except ValueError:
            raise fail(f"{at}.expires", f"not a date (YYYY-MM-DD): {expires!r}") from None

        level = raw.get("level")
        if level is not None and level not in BASELINE_LEVELS:
            raise fail(f"{at}.level", f"must be one of {', '.join(BASELINE_LEVELS)}, not {level!r}")

        entries.append(BaselineEntry(check_id, reason, expiry, level))
    return Baseline(tuple(entries), comment, version)


def write_baseline(path: Path | str, doc: Mapping[str, Any] | Baseline, field: str = "--out") -> None:
    """Validate a baseline (a document from :func:`create_baseline`, or a :class:`Baseline`) and write
    it as indented UTF-8 JSON, atomically and never through a link (a UserError naming ``field``)."""
    baseline = doc if isinstance(doc, Baseline) else parse_baseline(dict(doc), source=str(path))
    from ..paths import write_atomic

    text = json.dumps(baseline.to_json(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"), field)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- reading results.json -----------------------------------------------------------------------


def checks_by_id(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks of a results document keyed by id, in run order, each with at least ``id``,
    ``level``, ``outcome`` and ``reason``; :class:`ResultsError` when the document is not results.json."""
    if not isinstance(results, Mapping):
        raise ResultsError(f"results: must be a JSON object, not {_json_type(results)}")
    checks = results.get("checks")
    if not isinstance(checks, list):
        raise ResultsError("results: no 'checks' list (is this a results.json?)")
    out: dict[str, dict[str, Any]] = {}
    for index, check in enumerate(checks):
        at = f"results: checks[{index}]"
        if not isinstance(check, dict):
            raise ResultsError(f"{at}: must be an object")
        for key in ("id", "level", "outcome"):
            if not isinstance(check.get(key), str):
                raise ResultsError(f"{at}.{key}: missing or not a string")
        if check["outcome"] not in OUTCOMES:
            raise ResultsError(f"{at}.outcome: unknown outcome {check['outcome']!r}")
        if check["id"] in out:
            raise ResultsError(f"{at}.id: {check['id']} appears twice")
        reason = check.get("reason")
        out[check["id"]] = {**check, "reason": reason if isinstance(reason, str) else ""}
    return out


# --- gating -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateItem:
    """One check in the gate's output: its state in this run and, when baselined, its entry."""

    check_id: str
    level: str
    outcome: str
    reason: str
    entry: BaselineEntry | None = None
    note: str = ""


@dataclass
class GateOutcome:
    today: datetime.date
    new_failures: list[GateItem] = field(default_factory=list)
    """MUST fail/error not covered by the baseline: exit code 1."""
    known: list[GateItem] = field(default_factory=list)
    """Baselined (unexpired) and still failing, MUST and SHOULD: listed, never hidden."""
    expired: list[GateItem] = field(default_factory=list)
    """Baselined, still failing, expired: a failure again (exit 1 for MUST checks)."""
    fixed: list[GateItem] = field(default_factory=list)
    """Baselined but now passing: the entry should be removed."""
    should_failures: list[GateItem] = field(default_factory=list)
    """SHOULD fail/error not covered by the baseline: reported, exit code unaffected."""
    not_evaluated: list[GateItem] = field(default_factory=list)
    """Baselined checks that were skipped or are absent from the results."""

    @property
    def expired_must(self) -> list[GateItem]:
        return [item for item in self.expired if item.level == "MUST"]

    @property
    def exit_code(self) -> int:
        """0 when every MUST failure is baselined and unexpired; 1 on a new MUST failure or an expired
        entry whose MUST check still fails. SHOULD and INFO checks never change it."""
        return ExitCode.FAILED if self.new_failures or self.expired_must else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        def items(group: list[GateItem]) -> list[dict[str, Any]]:
            return [
                {
                    "check_id": i.check_id,
                    "level": i.level,
                    "outcome": i.outcome,
                    "reason": i.reason,
                    "baseline": i.entry.to_json() if i.entry else None,
                    "note": i.note,
                }
                for i in group
            ]

        return {
            "today": self.today.isoformat(),
            "exit_code": self.exit_code,
            "new_failures": items(self.new_failures),
            "expired": items(self.expired),
            "known": items(self.known),
            "fixed": items(self.fixed),
            "should_failures": items(self.should_failures),
            "not_evaluated": items(self.not_evaluated),
        }


def gate(results: Mapping[str, Any], baseline: Baseline, *, today: datetime.date) -> GateOutcome:
    """Compare a run's results with a baseline of known failures (see the module docstring for the
    rules). ``today`` is explicit so that the expiry decision is reproducible."""
    checks = checks_by_id(results)
    out = GateOutcome(today)
    for check_id, check in checks.items():
        level, outcome, reason = check["level"], check["outcome"], check["reason"]
        entry = baseline.get(check_id)
        note = ""
        if outcome in FAILED and entry is not None and entry.level is not None and entry.level != level:
            # The acknowledgement was for another requirement (a SHOULD since promoted to MUST).
            note = f"baselined as {entry.level} but the check is now {level}: the entry does not cover it"
            entry = None
        if outcome in FAILED:
            if entry is None:
                if level == "MUST":
                    out.new_failures.append(GateItem(check_id, level, outcome, reason, None, note))
                elif level == "SHOULD":
                    out.should_failures.append(GateItem(check_id, level, outcome, reason, None, note))
                # INFO checks never fail certification and are not gated.
            elif entry.expires < today:
                out.expired.append(GateItem(check_id, level, outcome, reason, entry))
            else:
                out.known.append(GateItem(check_id, level, outcome, reason, entry))
        elif entry is not None:
            if outcome == "pass":
                out.fixed.append(GateItem(check_id, level, outcome, reason, entry, "remove it from the baseline"))
            else:
                out.not_evaluated.append(GateItem(check_id, level, outcome, reason, entry, "skipped in this run"))
    for entry in baseline.entries:
        if entry.check_id not in checks:
            out.not_evaluated.append(
                GateItem(entry.check_id, entry.level or "?", "absent", "", entry, "not in these results")
            )
    return out


GATED_PASS, GATED_PASS_KNOWN, GATED_FAIL = "PASS", "PASS with known failures", "FAIL"


def gate_record(outcome: GateOutcome, baseline_path: str | PurePath) -> dict[str, Any]:
    """The gate's outcome as stored in results.json under ``baseline_gate``, for the renderers.

    Why it exists: ``run --baseline`` exits 0 when the only MUST failures are known, and the reports must
    say so too instead of contradicting the job; rendering from results.json alone needs the gate in it.
    Only the file's name is kept (a directory can reveal a runner's layout); known and expired entries
    keep their reason and expiry so that the report never hides why a failure is tolerated.
    """

    def entries(group: list[GateItem]) -> list[dict[str, Any]]:
        return [
            {
                "id": item.check_id,
                "level": item.level,
                "reason": item.entry.reason if item.entry else "",
                "expires": item.entry.expires.isoformat() if item.entry else "",
            }
            for item in group
        ]

    exit_code = outcome.exit_code
    verdict = GATED_FAIL if exit_code != ExitCode.OK else GATED_PASS_KNOWN if outcome.known else GATED_PASS
    return {
        "file": PurePath(baseline_path).name,
        "today": outcome.today.isoformat(),
        "exit_code": exit_code,
        "verdict": verdict,
        "known": entries(outcome.known),
        "expired": entries(outcome.expired),
        "new_failures": [item.check_id for item in outcome.new_failures],
        "now_passing": [item.check_id for item in outcome.fixed],
        "not_evaluated": [item.check_id for item in outcome.not_evaluated],
    }


def format_gate(outcome: GateOutcome) -> str:
    """A plain-text report: verdict, then the new / expired / known / fixed sections (always shown,
    "none" when empty), then SHOULD failures and not-evaluated entries when there are any."""
    lines: list[str] = []
    problems = []
    if outcome.new_failures:
        problems.append(f"{len(outcome.new_failures)} new MUST failure(s)")
    if outcome.expired_must:
        problems.append(f"{len(outcome.expired_must)} MUST failure(s) whose baseline entry expired")
    if problems:
        lines.append(f"baseline gate: FAIL (exit {outcome.exit_code}): " + ", ".join(problems))
    else:
        known_must = sum(1 for i in outcome.known if i.level == "MUST")
        lines.append(
            f"baseline gate: PASS (exit {outcome.exit_code}): no new MUST failure"
            + (f", {known_must} known MUST failure(s) baselined" if known_must else "")
        )

    def section(title: str, group: list[GateItem], *, always: bool = True) -> None:
        if not group and not always:
            return
        lines.append("")
        lines.append(f"{title}: {len(group) if group else 'none'}")
        for item in group:
            # Every string here comes from a results file or a baseline: escaped, so that a reason holding
            # "\x1b[2J... PASS" cannot rewrite the terminal the gate's verdict is read on.
            check_id, level, verdict = one_line(item.check_id, 40), one_line(item.level, 10), one_line(item.outcome, 10)
            head = f"  {check_id:<12} {level:<6} {verdict.upper():<6}"
            lines.append(f"{head} {one_line(_flat(item.reason), 200)}" if item.reason else head.rstrip())
            if item.entry is not None:
                expiry = item.entry.expires.isoformat()
                if item.entry.expires < outcome.today:
                    expiry += f" (expired {(outcome.today - item.entry.expires).days} day(s) ago)"
                why = "as above" if item.entry.reason == item.reason else one_line(_flat(item.entry.reason), 200)
                lines.append(f"      baseline: expires {expiry}; reason: {why}")
            if item.note:
                lines.append(f"      note: {one_line(item.note, 200)}")

    section("NEW MUST failures (not in the baseline; exit 1)", outcome.new_failures)
    section("EXPIRED baseline entries still failing (a failure again; exit 1 for MUST)", outcome.expired)
    section("KNOWN failures (baselined, still failing, not hidden)", outcome.known)
    section("FIXED (baselined but now passing: remove from the baseline)", outcome.fixed)
    section("SHOULD failures not in the baseline (reported; never change the exit code)", outcome.should_failures)
    section("NOT EVALUATED baseline entries (skipped, absent or level changed)", outcome.not_evaluated, always=False)
    return "\n".join(lines)


def _flat(text: str) -> str:
    """Whitespace runs (line breaks included) as one space: a reason reads as one line."""
    return " ".join(text.split())


def _one_line(text: str, limit: int = 200) -> str:
    """A reason stored in a baseline: one line, control characters escaped, at most ``limit`` characters."""
    return one_line(_flat(text), limit)


# --- creating a baseline ------------------------------------------------------------------------


def create_baseline(results: Mapping[str, Any], *, reason: str | None = None, expires: datetime.date) -> dict[str, Any]:
    """A baseline document with one entry per failing or erroring MUST and SHOULD check of ``results``,
    each expiring on ``expires``. The reason is ``reason`` when given, else the check's own reason text.
    The document is valid for :func:`parse_baseline` (and is written with :func:`write_baseline`)."""
    entries: list[BaselineEntry] = []
    for check_id, check in checks_by_id(results).items():
        if check["level"] not in BASELINE_LEVELS or check["outcome"] not in FAILED:
            continue
        text = reason if reason and reason.strip() else _one_line(check["reason"], 500)
        if not text:
            text = f"{check['outcome']} when the baseline was created"
        entries.append(BaselineEntry(check_id, text, expires, check["level"]))
    target = results.get("target")
    url = target.get("url") if isinstance(target, Mapping) else None
    comment = f"known failures of {url or 'the target'} (suite {results.get('suite_version', '?')})"
    return Baseline(tuple(entries), comment).to_json()
