"""Human and CI renderings of one run: JUnit XML, a GitHub job-summary in Markdown and a self-contained
HTML report, all built from the results.json document alone (``Results.to_json()``), never from pytest.

* :func:`junit_xml`: one ``<testsuite name="atoma-conformance">``, one ``<testcase>`` per check. A MUST or
  SHOULD ``fail`` is a ``<failure>``, an ``error`` an ``<error>``, a ``skip`` a ``<skipped>``. INFO checks
  never fail certification, so an INFO ``fail`` or ``error`` is a passing test case with ``<system-out>``.
* :func:`markdown_summary`: verdict line, counts per level, failing checks (with the text of the
  requirements they cite), target fingerprint and the nonce audit, for ``$GITHUB_STEP_SUMMARY``.
* :func:`html_report`: one HTML file with inline CSS and script and no external URL (a Content-Security-
  Policy of ``default-src 'none'`` pins that down); sections ``#verdict``, ``#baseline`` (under a
  baseline gate), ``#failures``, ``#coverage``, ``#requirement-coverage``, ``#nonce-audit``, ``#fingerprint``
  and ``#spec``; a load run (``atoma-conformance load``) adds ``#load`` after the verdict, with its plots
  (:mod:`conformance.report.loadplots`). ``#requirement-coverage`` is the one part not read from
  results.json: it is the matrix of the suite that renders the report (:mod:`conformance.coverage`,
  docs/coverage.md), what that suite can test whatever the run selected, and says so when the run was
  made by another version. A report
  is read where it lands (a CI artefact, a mail), with no spec.md beside it, so every spec citation links
  to ``#req-R<s>.<n>`` in ``#spec``, which quotes each requirement of the packaged docs/spec.md with its
  level and section; failing rows quote the text in place too.
* :func:`write_all`: the three files beside results.json.

When ``run --baseline`` stored the gate's outcome in results.json (``baseline_gate``), every rendering
leads with the gated verdict the job exits with (``PASS with known failures``); the ungated one stays
visible beside it, and no known failure is hidden.

The functions tolerate an older or partial document: counts and certification missing from it are
derived from its checks.

Every string in results.json that a target chose (a reason, an evidence value, a key, a URL) is capped
before it is rendered, with its full length stated (``… (N characters in results.json)``): one 32 MB
lock reply once made 214 MB of reports. Markdown text is also escaped with
:func:`conformance.textsafe.one_line`, because summaries end up in terminals and CI logs; HTML and JUnit
keep their own escaping. Each file has a total cap whatever results.json holds: ``summary.md`` stays
under GitHub's 1 MiB job-summary limit (the failure list is cut, with "N more failures in report.html"),
``report.html`` and ``junit.xml`` under 16 MiB (rows and details are left out past a budget, said so).
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import atomic_target, write_atomic
from ..spec import REQUIREMENT_ID, Spec, github_slug, load, parse
from ..textsafe import one_line
from . import loadplots

__all__ = ["SpecIndex", "github_slug", "html_report", "junit_xml", "markdown_summary", "parse_spec", "write_all"]

SUITE_NAME = "atoma-conformance"
LEVELS = ("MUST", "SHOULD", "INFO")
OUTCOMES = ("pass", "fail", "skip", "error")
BAD = ("fail", "error")
CERTIFYING = ("MUST", "SHOULD")  # INFO checks never fail certification
SPEC_SECTIONS = (*range(1, 14), 15)  # requirement-bearing sections of docs/spec.md (§0.6; §14 has none)
MAX_EVIDENCE_CHARS = 8000
MAX_REASON_CHARS = 1000
"""A check's reason as rendered; results.json keeps it whole."""
MAX_FIELD_CHARS = 300
"""Any other string of results.json as rendered: ids, titles, target fingerprint fields, option values."""
MAX_EVIDENCE_VALUE_CHARS = 500
MAX_EVIDENCE_ITEMS = 50
SUMMARY_MAX_BYTES = 1024 * 1024
"""GitHub's job-summary limit: a larger $GITHUB_STEP_SUMMARY is dropped whole."""
SUMMARY_BUDGET = 900 * 1024
"""What summary.md aims at, leaving room below SUMMARY_MAX_BYTES for the lines added after the budget."""
HTML_MAX_BYTES = 16 * 1024 * 1024
JUNIT_MAX_BYTES = 16 * 1024 * 1024
MAX_IDS_LISTED = 100

JUNIT_FILE, HTML_FILE, SUMMARY_FILE = "junit.xml", "report.html", "summary.md"
FINGERPRINT = (
    ("url", "URL"),
    ("embedded", "Embedded mock"),
    ("profile", "Profile (expected)"),
    ("detected_profile", "Profile (detected)"),
    ("model", "Model"),
    ("node_address", "Node address"),
    ("node_public_key", "Node public key (X25519)"),
    ("signer_address", "Signer address"),
    ("signature_scheme", "Signature scheme"),
)


# --- bounding the document -----------------------------------------------------------------------------


def _cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters in results.json)"


def _capped(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    """A scalar with a string cut to ``limit``; anything else (a list, an object) as its capped text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _cap(value, limit)
    return _cap(json.dumps(value, ensure_ascii=False, default=str)[: limit + 1], limit)


def _capped_tree(value: Any, depth: int = 0) -> Any:
    """A JSON value with every string, list and object cut: for evidence, options and the nonce audit,
    whose size a target decides."""
    if isinstance(value, str):
        return _cap(value, MAX_EVIDENCE_VALUE_CHARS)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= 6:
        return "… (nested too deeply to show)"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {_cap(str(k), 100): _capped_tree(v, depth + 1) for k, v in items[:MAX_EVIDENCE_ITEMS]}
        if len(items) > MAX_EVIDENCE_ITEMS:
            out["…"] = f"{len(items) - MAX_EVIDENCE_ITEMS} more member(s) in results.json"
        return out
    if isinstance(value, (list, tuple)):
        shown = [_capped_tree(v, depth + 1) for v in value[:MAX_EVIDENCE_ITEMS]]
        if len(value) > MAX_EVIDENCE_ITEMS:
            shown.append(f"… {len(value) - MAX_EVIDENCE_ITEMS} more item(s) in results.json")
        return shown
    return _cap(str(value), MAX_EVIDENCE_VALUE_CHARS)


def _bounded_check(check: Mapping[str, Any]) -> dict[str, Any]:
    out = {str(k)[:100]: _capped(v) for k, v in check.items() if k not in ("reason", "evidence", "spec")}
    out["reason"] = _capped(check.get("reason", ""), MAX_REASON_CHARS)
    out["evidence"] = _capped_tree(check.get("evidence"))
    spec = check.get("spec")
    out["spec"] = [_cap(str(r), 40) for r in spec[:20]] if isinstance(spec, list) else []
    return out


def _bounded_gate(gate: Any) -> Any:
    if not isinstance(gate, Mapping):
        return gate
    out: dict[str, Any] = {str(k)[:100]: _capped(v) for k, v in gate.items()}
    for key in ("known", "expired"):
        entries = gate.get(key)
        if isinstance(entries, list):
            out[key] = [
                {str(k)[:100]: _capped(v, MAX_REASON_CHARS if k == "reason" else MAX_FIELD_CHARS) for k, v in e.items()}
                for e in entries
                if isinstance(e, Mapping)
            ]
    for key in ("new_failures", "now_passing", "not_evaluated"):
        ids = gate.get(key)
        if isinstance(ids, list):
            out[key] = [_capped(i, 100) for i in ids]
    return out


def _bounded(results: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document in which no string is longer than the renderers show.

    Why here and not at each use: one pass covers every rendering, including the places a reason or a
    key is printed twice (a JUnit message and its details); results.json itself keeps every byte."""
    doc: dict[str, Any] = {str(k)[:100]: _capped(v) for k, v in results.items() if not isinstance(v, (dict, list))}
    checks = results.get("checks")
    doc["checks"] = [_bounded_check(c) for c in checks if isinstance(c, Mapping)] if isinstance(checks, list) else []
    target = results.get("target")
    doc["target"] = {str(k)[:100]: _capped(v) for k, v in target.items()} if isinstance(target, Mapping) else {}
    for key in ("options", "nonce_audit"):
        value = results.get(key)
        doc[key] = _capped_tree(value) if isinstance(value, Mapping) else {}
    for key in ("counts", "certification"):
        if isinstance(results.get(key), Mapping):
            doc[key] = results[key]
    if "baseline_gate" in results:
        doc["baseline_gate"] = _bounded_gate(results["baseline_gate"])
    if "load" in results:  # as it is: loadplots caps every value as it reads it, and reads the series only once
        doc["load"] = results["load"]
    return doc


def _id_list(ids: Sequence[str], render: Any = str, limit: int = MAX_IDS_LISTED) -> str:
    """At most ``limit`` ids joined with commas, then how many more there are."""
    shown = ", ".join(render(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


# --- reading the document ------------------------------------------------------------------------------


def _checks(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(c) for c in results.get("checks") or []]


def _counts(results: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Outcomes per level, every level and outcome present (zero when the document leaves it out)."""
    given = results.get("counts")
    out = {level: dict.fromkeys(OUTCOMES, 0) for level in LEVELS}
    if isinstance(given, Mapping):
        for level, tally in given.items():
            row = out.setdefault(str(level), dict.fromkeys(OUTCOMES, 0))
            for outcome in OUTCOMES:
                count = tally.get(outcome, 0) if isinstance(tally, Mapping) else 0
                row[outcome] = count if isinstance(count, int) and not isinstance(count, bool) else 0
        return out
    for check in _checks(results):
        row = out.setdefault(str(check.get("level")), dict.fromkeys(OUTCOMES, 0))
        outcome = str(check.get("outcome"))
        row[outcome] = row.get(outcome, 0) + 1
    return out


def _certification(results: Mapping[str, Any]) -> dict[str, str]:
    given = results.get("certification")
    if isinstance(given, Mapping):
        # Anything but an exact "pass" reads as a failure: a damaged verdict never shows as a pass.
        return {level: "pass" if given.get(level, "pass") == "pass" else "fail" for level in LEVELS}
    checks = _checks(results)
    out = {
        level: "fail" if any(c.get("level") == level and c.get("outcome") in BAD for c in checks) else "pass"
        for level in CERTIFYING
    }
    out["INFO"] = "pass"
    return out


def _failures(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks that count against certification: MUST and SHOULD checks that failed or errored."""
    return [c for c in _checks(results) if c.get("level") in CERTIFYING and c.get("outcome") in BAD]


def _info_findings(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _checks(results) if c.get("level") not in CERTIFYING and c.get("outcome") in BAD]


def _verdict(results: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, one-line explanation) in the terms of docs/spec.md §0.5."""
    cert = _certification(results)
    must = sum(1 for c in _failures(results) if c.get("level") == "MUST")
    should = sum(1 for c in _failures(results) if c.get("level") == "SHOULD")
    if cert["MUST"] != "pass":
        return False, f"not conformant: {must} MUST check(s) failed or could not be evaluated"
    if cert["SHOULD"] != "pass":
        return True, f"conformant, not fully conformant: {should} SHOULD check(s) failed"
    return True, "fully conformant: every MUST and SHOULD check passed"


GATE_VERDICTS = ("PASS", "PASS with known failures", "FAIL")


def _gate(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``baseline_gate`` of a ``run --baseline`` (conformance.report.baseline.gate_record), if any."""
    gate = results.get("baseline_gate")
    return gate if isinstance(gate, Mapping) and gate.get("verdict") in GATE_VERDICTS else None


def _ids(gate: Mapping[str, Any], key: str) -> list[str]:
    return [str(i) for i in gate.get(key) or []]


def _entries(gate: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    return {str(e.get("id")): e for e in gate.get(key) or [] if isinstance(e, Mapping)}


def _gate_why(gate: Mapping[str, Any]) -> str:
    name = _text(gate.get("file"))
    known = _entries(gate, "known")
    if gate.get("verdict") == "FAIL":
        new = _ids(gate, "new_failures")
        expired = [i for i, e in _entries(gate, "expired").items() if e.get("level") == "MUST"]
        problems = [f"{len(new)} new MUST failure(s) ({_id_list(new, limit=20)})"] if new else []
        if expired:
            problems.append(
                f"{len(expired)} MUST failure(s) whose baseline entry expired ({_id_list(expired, limit=20)})"
            )
        return f"baseline {name}: " + ("; ".join(problems) or "the gate failed")
    tolerated = f"; {len(known)} known failure(s) tolerated until their entries expire" if known else ""
    return f"baseline {name}: no new MUST failure{tolerated}"


def _headline(results: Mapping[str, Any]) -> tuple[bool, str, str]:
    """(passed, verdict, why) as the job decides it: the baseline gate's verdict when ``run --baseline``
    stored one, else certification's. Why: the reports must never contradict the exit code."""
    gate = _gate(results)
    if gate is not None:
        verdict = str(gate["verdict"])
        return verdict != "FAIL", verdict, _gate_why(gate)
    if _load_run(results):
        return loadplots.verdict(results.get("load"), certified=_certification(results)["MUST"] == "pass")
    passed, why = _verdict(results)
    return passed, "PASS" if passed else "FAIL", why


def _load_run(results: Mapping[str, Any]) -> bool:
    """A load run (``atoma-conformance load``) has a ``load`` member and no checks: zero failed checks
    says nothing of it, so its verdict is read from its findings (loadplots.verdict)."""
    return "load" in results and not _checks(results)


def _started_iso(results: Mapping[str, Any]) -> str:
    started = results.get("started")
    if not isinstance(started, (int, float)) or isinstance(started, bool):
        return ""
    try:
        moment = datetime.datetime.fromtimestamp(float(started), tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _evidence_json(evidence: Any) -> str:
    text = json.dumps(evidence if evidence is not None else {}, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        text = text[:MAX_EVIDENCE_CHARS] + f"\n… ({len(text) - MAX_EVIDENCE_CHARS} more characters in results.json)"
    return text


def _nonce_line(audit: Mapping[str, Any]) -> str:
    if not audit:
        return "no nonce audit recorded"
    fraction = audit.get("budget_fraction")
    share = f"{fraction:.3g}" if isinstance(fraction, (int, float)) else _text(fraction)
    return (
        f"{_text(audit.get('observations'))} nonce(s) under {_text(audit.get('keys'))} key(s), "
        f"{_text(audit.get('reuses'))} reuse(s); busiest key {_text(audit.get('max_per_key'))} nonce(s), "
        f"{share} of the 2^32 random-nonce budget"
    )


# --- docs/spec.md --------------------------------------------------------------------------------------


@dataclass
class SpecIndex:
    """What the report needs from docs/spec.md (parsed by :mod:`conformance.spec`), in the shape its
    renderers index by: top-level sections, and where each requirement lives."""

    sections: dict[int, tuple[str, str]] = field(default_factory=dict)  # number -> (title, anchor)
    requirements: dict[str, str] = field(default_factory=dict)  # R<s>.<n> -> anchor of the heading above it
    by_section: dict[int, list[str]] = field(default_factory=dict)  # number -> requirement ids in order
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)  # R<s>.<n> -> (MUST/SHOULD/…, its text)

    def describe(self, requirement: str) -> str:
        """``R12.2 MUST (§12 Nonce discipline): <text>``, one line: what a report shows for a citation."""
        level, text = self.texts.get(requirement, ("", ""))
        section = _section_of(requirement)
        title = self.sections.get(section, ("", ""))[0] if section is not None else ""
        where = f"§{section} {title}".strip() if section is not None else ""
        head = " ".join(part for part in (requirement, level, f"({where})" if where else "") if part)
        return f"{head}: {text}" if text else f"{head}: not in docs/spec.md"


def _index(spec: Spec) -> SpecIndex:
    index = SpecIndex()
    for heading in spec.headings:
        if heading.section is not None:
            index.sections[heading.section] = (spec.sections[heading.section], heading.anchor)
        index.requirements.update(dict.fromkeys(heading.requirements, heading.anchor))
    for rid, requirement in spec.requirements.items():
        index.by_section.setdefault(requirement.section, []).append(rid)
        index.texts[rid] = (requirement.level, requirement.text)
    return index


def parse_spec(text: str) -> SpecIndex:
    """Headings (with GitHub's de-duplicated anchors) and requirement items of docs/spec.md; raises
    :class:`conformance.spec.SpecError` on a malformed requirement."""
    return _index(parse(text))


def _section_of(requirement: str) -> int | None:
    match = REQUIREMENT_ID.fullmatch(requirement)
    return int(match["section"]) if match else None


@functools.cache
def packaged_spec() -> SpecIndex:
    """The spec the suite ships with (conformance.resources): a report quotes the requirements it cites
    instead of linking to a spec.md that is not beside report.html wherever the report is opened."""
    return _index(load())


def _load_spec(spec_path: Path | None) -> SpecIndex:
    return parse_spec(spec_path.read_text(encoding="utf-8")) if spec_path is not None else packaged_spec()


def _req_anchor(requirement: str) -> str:
    return f"req-{requirement}"


def _spec_href(requirement: str, spec: SpecIndex) -> str:
    """The report's own entry for a requirement (``#req-R12.2``), else its section's (``#spec-12``)."""
    if requirement in spec.texts:
        return f"#{_req_anchor(requirement)}"
    section = _section_of(requirement)
    return f"#spec-{section}" if section in spec.by_section else "#spec"


# --- JUnit XML -----------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(value: Any) -> str:
    """Text XML 1.0 can carry: characters it forbids (NUL, most C0 controls) become \\xNN; None is empty and
    booleans are true/false. DEL and the C1 controls are allowed by XML but escaped too: CI tools print
    JUnit messages to terminals, where ``\\x9b`` starts an escape sequence as ``ESC [`` does."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(results: dict[str, Any]) -> bytes:
    """JUnit XML of the run: ``<testsuites>`` holding one ``<testsuite name="atoma-conformance">``.

    ``failures`` and ``errors`` count MUST and SHOULD checks only (INFO never fails certification: its
    failures and errors are passing cases with ``<system-out>``); ``skipped`` counts skips of every level.
    Under a baseline gate a known failure is ``<skipped>`` with the baseline's reason and expiry (pytest
    reports an xfail the same way), so that the test counts agree with the job's exit code; the failure
    itself stays in the message and ``<system-out>``.

    At most :data:`JUNIT_MAX_BYTES`: past a budget the cases keep their outcome and message but lose
    their details; a document too large even so becomes one case saying so, with the real counts.
    """
    bounded = _bounded(results)
    document = _junit(bounded, detail_budget=JUNIT_MAX_BYTES * 3 // 4)
    if len(document) <= JUNIT_MAX_BYTES:
        return document
    return _junit_too_large(bounded, len(document))


def _junit_too_large(results: Mapping[str, Any], size: int) -> bytes:
    checks = _checks(results)
    bad = [c for c in checks if c.get("level") in CERTIFYING and c.get("outcome") in BAD]
    root = ET.Element("testsuites", {"name": SUITE_NAME, "tests": "1", "failures": "1" if bad else "0"})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, "tests": "1", "failures": "1" if bad else "0"})
    case = ET.SubElement(suite, "testcase", {"classname": SUITE_NAME, "name": "atoma-conformance report", "time": "0"})
    note = (
        f"junit.xml would be {size} bytes, over the {JUNIT_MAX_BYTES} cap, for {len(checks)} checks "
        f"({len(bad)} MUST or SHOULD failures); see results.json and report.html"
    )
    if bad:
        ET.SubElement(case, "failure", {"message": note, "type": "MUST"})
    else:
        ET.SubElement(case, "system-out").text = note
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _load_cases(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A load run as JUnit test cases, so that a CI reporter shows it red when it fails: one failing case
    per check with findings (at the check's level), one error case when nothing was judged, else one
    passing case."""
    load = results.get("load") if isinstance(results.get("load"), Mapping) else {}
    assert isinstance(load, Mapping)
    cases: list[dict[str, Any]] = []
    for finding in load.get("findings") or []:
        if not isinstance(finding, Mapping):
            continue
        examples = [str(e) for e in finding.get("examples") or []][:5]
        cases.append(
            {
                "id": finding.get("check_id"),
                "title": f"under load: {_text(finding.get('count'))} finding(s)",
                "level": finding.get("level"),
                "category": "load",
                "outcome": "fail",
                "reason": examples[0] if examples else "",
                "spec": [],
                "evidence": {"count": finding.get("count"), "examples": examples},
            }
        )
    if not cases:
        judged = load.get("exchanges")
        nothing = not isinstance(judged, int) or judged <= 0
        cases.append(
            {
                "id": "LOAD",
                "title": "every answer judged by the rulebook",
                "level": "MUST",
                "category": "load",
                "outcome": "error" if nothing else "pass",
                "reason": "nothing was judged" if nothing else f"no finding in {judged} judged exchanges",
                "spec": [],
                "evidence": {},
            }
        )
    return cases


def _junit(results: Mapping[str, Any], *, detail_budget: int) -> bytes:
    spec = packaged_spec()
    checks = _load_cases(results) if _load_run(results) else _checks(results)
    gate = _gate(results)
    known = _entries(gate, "known") if gate is not None else {}
    expired = _entries(gate, "expired") if gate is not None else {}
    counted = [c for c in checks if c.get("level") in CERTIFYING and str(c.get("id")) not in known]
    failures = sum(1 for c in counted if c.get("outcome") == "fail")
    errors = sum(1 for c in counted if c.get("outcome") == "error")
    skipped = sum(1 for c in checks if c.get("outcome") == "skip" or _is_known(c, known))
    duration = results.get("duration_s")
    seconds = f"{float(duration):.3f}" if isinstance(duration, (int, float)) else "0.000"
    counts = {"tests": str(len(checks)), "failures": str(failures), "errors": str(errors), "time": seconds}

    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, **counts, "skipped": str(skipped)})
    if timestamp := _started_iso(results):
        suite.set("timestamp", timestamp.removesuffix("Z"))
    properties = ET.SubElement(suite, "properties")
    target = results.get("target") or {}
    cert = _certification(results)
    props: list[tuple[str, Any]] = [
        ("suite_version", results.get("suite_version")),
        ("results_version", results.get("results_version")),
        ("vector_set_digest", results.get("vector_set_digest")),
        ("catalogue_size", results.get("catalogue_size")),
        ("requests", results.get("requests")),
        *((f"certification.{level}", cert[level]) for level in LEVELS),
        *((f"target.{key}", target.get(key)) for key, _ in FINGERPRINT),
    ]
    if gate is not None:
        props[:0] = [
            ("verdict", gate.get("verdict")),
            ("baseline.file", gate.get("file")),
            ("baseline.exit_code", gate.get("exit_code")),
            ("baseline.known", _id_list(list(known))),
            ("baseline.new_failures", _id_list(_ids(gate, "new_failures"))),
            ("baseline.expired", _id_list(list(expired))),
            ("baseline.now_passing", _id_list(_ids(gate, "now_passing"))),
        ]
    else:
        props[:0] = [("verdict", _headline(results)[1])]
    for name, value in props:
        ET.SubElement(properties, "property", {"name": name, "value": _xml(value)})

    for check in checks:
        level, outcome = str(check.get("level", "")), str(check.get("outcome", ""))
        reason = _xml(check.get("reason", ""))
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"{SUITE_NAME}.{_xml(check.get('category', ''))}",
                "name": f"{_xml(check.get('id', ''))} {_xml(check.get('title', ''))}",
                "time": "0",
            },
        )
        refs = [str(r) for r in check.get("spec") or []]
        entry = expired.get(str(check.get("id")))
        if outcome in BAD and detail_budget > 0:
            details = _xml(
                f"{level} {check.get('id')}: {check.get('reason', '')}\n"
                + (f"baseline entry expired {entry.get('expires')}: {entry.get('reason')}\n" if entry else "")
                + f"spec: {', '.join(refs)}\n"
                + "".join(f"  {spec.describe(r)}\n" for r in refs)
                + f"evidence: {_evidence_json(check.get('evidence'))}"
            )
            detail_budget -= len(details.encode("utf-8")) * 2  # XML escaping can grow it; stay on the safe side
        else:
            details = _xml(
                f"{level} {check.get('id')}: {check.get('reason', '')}\n"
                "details left out: junit.xml reached its size cap; see report.html and results.json"
            )
        if _is_known(check, known):
            entry = known[str(check.get("id"))]
            message = _xml(
                f"known failure ({_text(gate and gate.get('file'))}, expires {entry.get('expires')}): "
                f"{entry.get('reason')}"
            )
            ET.SubElement(case, "skipped", {"message": message})
            out = ET.SubElement(case, "system-out")
            out.text = f"{level} check {outcome}, tolerated by the baseline\n{details}"
        elif outcome == "skip":
            ET.SubElement(case, "skipped", {"message": reason})
        elif outcome in BAD and level not in CERTIFYING:
            out = ET.SubElement(case, "system-out")
            out.text = f"{level} check {outcome} (informational, not counted against certification)\n{details}"
        elif outcome in BAD:
            element = ET.SubElement(
                case, "failure" if outcome == "fail" else "error", {"message": reason, "type": level}
            )
            element.text = details
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _is_known(check: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    return check.get("outcome") in BAD and str(check.get("id")) in known


# --- Markdown ------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


_NOTE_SLACK = 100
"""Room for the "… (N characters in results.json)" a capped value already carries, so it survives."""


def _md(value: Any, limit: int = MAX_REASON_CHARS + _NOTE_SLACK) -> str:
    """Cell-safe Markdown text: one line, control characters escaped (a summary is read in terminals and
    CI logs too), at most ``limit`` characters of it, HTML and Markdown punctuation escaped, ``|`` as ``\\|``."""
    text = one_line(" ".join(_text(value).split()), limit)
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _mark(verdict: str) -> str:
    return "✅ pass" if verdict == "pass" else "❌ fail"


def _size(lines: Iterable[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _fit(rows: Sequence[str], budget: int) -> list[str]:
    """The leading ``rows`` whose total size stays within ``budget`` bytes."""
    shown: list[str] = []
    used = 0
    for row in rows:
        used += len(row.encode("utf-8")) + 1
        if used > budget:
            break
        shown.append(row)
    return shown


def markdown_summary(results: dict[str, Any]) -> str:
    """A GitHub job summary: verdict line (the baseline gate's, when there is one), counts per level,
    failing checks with the text of the requirements they cite, the gate, fingerprint, nonce audit.

    Under :data:`SUMMARY_MAX_BYTES` whatever results.json holds (GitHub drops a larger summary whole):
    every value is capped, and the failure list is cut to fit, ending "N more failures in report.html"."""
    results = _bounded(results)
    passed, verdict, why = _headline(results)
    cert = _certification(results)
    counts = _counts(results)
    target = results.get("target") or {}
    gate = _gate(results)
    known = _entries(gate, "known") if gate is not None else {}
    marks = " · ".join(f"{level} {_mark(cert[level])}" for level in LEVELS)
    load_run = _load_run(results)  # no checks: the certification marks and tables say nothing of it
    icon = "✅" if passed else "⚠️" if verdict == loadplots.NOT_RUN else "❌"
    head = [f"## {icon} atoma-conformance: {_md(verdict, 40)}", ""]
    if gate is None:
        head.append(f"**Verdict: {_md(verdict, 40)}** ({_md(why)})" + ("" if load_run else f": {marks}"))
    else:
        ungated_passed, ungated_why = _verdict(results)
        head += [
            f"**Verdict: {_md(verdict, 40)}** ({_md(why)}; exit {_md(gate.get('exit_code'), 10)})",
            "",
            f"Without the baseline: **{'PASS' if ungated_passed else 'FAIL'}** ({_md(ungated_why)}): {marks}",
        ]
    if load_run:
        head += loadplots.markdown_block(results.get("load"))
    else:
        head += ["", "| Level | Certification | Pass | Fail | Skip | Error |", "|---|---|---:|---:|---:|---:|"]
        for level in LEVELS:
            row = counts[level]
            head.append(f"| {level} | {_mark(cert[level])} | " + " | ".join(str(row[o]) for o in OUTCOMES) + " |")
    failures = _failures(results)
    head += [] if load_run else ["", f"### Failing checks ({len(failures)})", ""]
    rows: list[str] = []
    for c in failures:
        spec = ", ".join(_md(s, 40) for s in c.get("spec") or [])
        outcome = f"{c.get('outcome')} (known)" if _is_known(c, known) else c.get("outcome")
        rows.append(
            f"| {_md(c.get('id'), 40)} | {_md(c.get('level'), 10)} | {_md(outcome, 20)} | {_md(c.get('reason'))} "
            f"| {spec} |"
        )
    requirements = _md_requirements(failures)
    tail = _md_gate(gate) if gate is not None else []
    info = _info_findings(results)
    if info:
        tail += ["", "INFO findings (not counted): " + _id_list([_md(c.get("id"), 40) for c in info])]
    tail += ["", "### Target", "", "| | |", "|---|---|"]
    tail += [f"| {name} | {_md(target.get(key), MAX_FIELD_CHARS + _NOTE_SLACK)} |" for key, name in FINGERPRINT]
    tail += [
        "",
        f"**Nonce audit:** {'❌' if (results.get('nonce_audit') or {}).get('reuses') else '✅'} "
        + _md(_nonce_line(results.get("nonce_audit") or {})),
        "",
        f"<sub>atoma-conformance {_md(results.get('suite_version'), 40)} · results "
        f"v{_md(results.get('results_version'), 10)} · {len(_checks(results))} of "
        f"{_md(results.get('catalogue_size'), 10)} checks · {_md(results.get('requests'), 20)} requests in "
        f"{_md(results.get('duration_s'), 20)} s · vectors {_md(str(results.get('vector_set_digest') or '—')[:16])}"
        "</sub>",
        "",
    ]
    if failures:
        table = ["| Check | Level | Outcome | Reason | Spec |", "|---|---|---|---|---|"]
        shown = _fit(rows, SUMMARY_BUDGET - _size(head) - _size(table) - _size(requirements) - _size(tail))
        table += shown
        if len(shown) < len(rows):
            table += ["", f"… {len(rows) - len(shown)} more failures in report.html (summary.md stays under 1 MiB)"]
        body = table + requirements
    else:
        body = [] if load_run else ["None: every MUST and SHOULD check passed or was skipped."]
    return "\n".join(head + body + tail)


MAX_REQUIREMENTS_QUOTED = 100


def _md_requirements(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """The text of every requirement the failing checks cite, folded: the report's spec is the packaged
    one, so a reader needs no spec.md beside the summary."""
    spec = packaged_spec()
    refs = list(dict.fromkeys(str(r) for c in failures for r in c.get("spec") or []))
    if not refs:
        return []
    items = [
        f"- **{_md(r, 40)}** {' '.join(spec.describe(r).removeprefix(r).split())}"  # the rest is the packaged spec
        for r in refs[:MAX_REQUIREMENTS_QUOTED]
    ]
    if len(refs) > MAX_REQUIREMENTS_QUOTED:
        items.append(f"- … {len(refs) - MAX_REQUIREMENTS_QUOTED} more in report.html")
    return ["", f"<details><summary>Requirements cited ({len(refs)})</summary>", "", *items, "", "</details>"]


MD_GATE_BUDGET = 200 * 1024


def _md_gate(gate: Mapping[str, Any]) -> list[str]:
    known = _entries(gate, "known")
    expired = _entries(gate, "expired")
    lines = ["", f"### Baseline gate ({_md(gate.get('file'), 100)}): {_md(gate.get('verdict'), 40)}", ""]
    if known or expired:
        rows = [
            f"| {_md(check_id, 40)} | {_md(entry.get('level'), 10)} | {state} | {_md(entry.get('expires'), 20)} "
            f"| {_md(entry.get('reason'))} |"
            for state, group in (("expired", expired), ("known", known))
            for check_id, entry in group.items()
        ]
        shown = _fit(rows, MD_GATE_BUDGET)
        lines += ["| Check | Level | State | Expires | Reason (baseline) |", "|---|---|---|---|---|", *shown]
        if len(shown) < len(rows):
            lines += ["", f"… {len(rows) - len(shown)} more baselined failures in report.html"]
        lines.append("")
    for title, key in (
        ("New MUST failures", "new_failures"),
        ("Now passing (remove from the baseline)", "now_passing"),
        ("Not evaluated", "not_evaluated"),
    ):
        ids = _ids(gate, key)
        if ids or key == "new_failures":
            lines.append(f"- {title}: {_id_list([_md(i, 40) for i in ids]) or 'none'}")
    return lines


# --- HTML ----------------------------------------------------------------------------------------------

_CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: flex; gap: 24px; align-items: center; flex-wrap: wrap; padding: 16px;
  border-radius: 8px; border: 2px solid var(--ok); background: #dafbe1; }
.verdict.fail { border-color: var(--bad); background: #ffebe9; }
.banner { font-size: 44px; font-weight: 800; letter-spacing: 2px; color: var(--ok); min-width: 150px; }
.verdict.fail .banner { color: var(--bad); }
.verdict .why { font-size: 16px; font-weight: 600; margin: 0 0 8px; }
.verdict table { width: auto; background: #fff; }
.cert-pass { color: var(--ok); font-weight: 700; } .cert-fail { color: var(--bad); font-weight: 700; }
.o-pass { color: var(--ok); } .o-fail, .o-error { color: var(--bad); font-weight: 600; }
.o-skip { color: var(--muted); }
tr.info-finding td { background: #fff8c5; }
.meta { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.filters { display: flex; gap: 16px; align-items: center; margin: 6px 0; flex-wrap: wrap; }
.filters label { font-weight: 600; } select { font: inherit; padding: 2px 4px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
pre { background: var(--bg2); padding: 6px; margin: 4px 0 0; max-height: 320px; overflow: auto; white-space: pre-wrap; }
tr.gap td { background: #fff8c5; } tr.cov-fail td:first-child { border-left: 4px solid var(--bad); }
tr.cov-pass td:first-child { border-left: 4px solid var(--ok); }
tr.gap td:first-child { border-left: 4px solid var(--warn); }
td.id, td.small a { white-space: nowrap; }
.small { font-size: 12px; color: var(--muted); } .empty { color: var(--muted); font-style: italic; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 6px 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
.reuse { color: var(--bad); font-weight: 700; }
.verdict.known { border-color: var(--warn); background: #fff8c5; } .verdict.known .banner { color: var(--warn); }
.banner .qualifier { display: block; font-size: 16px; letter-spacing: 0; }
.ungated { margin: 0 0 8px; } .known-badge { color: var(--warn); font-weight: 600; white-space: nowrap; }
details.req p { margin: 4px 0; font-size: 12.5px; } dl.reqs dt { margin-top: 6px; } dl.reqs dd { margin: 0 0 0 16px; }
.verdict.notrun { border-color: var(--warn); background: #fff8c5; } .verdict.notrun .banner { color: var(--warn); }
figure.plot { margin: 8px 0 16px; break-inside: avoid; } svg.plot { display: block; max-width: 100%; height: auto; }
figure.plot figcaption { font-size: 12px; color: var(--muted); } tr.load-must td { background: #ffebe9; }
#load td ul { margin: 0; padding-left: 18px; }
@media print { details { display: block; } .filters { display: none; } }
"""

_JS = """
(function () {
  "use strict";
  var level = document.getElementById("filter-level");
  var category = document.getElementById("filter-category");
  function apply() {
    var rows = document.querySelectorAll("tr[data-level]");
    var shown = {};
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok = (!level.value || row.getAttribute("data-level") === level.value) &&
               (!category.value || row.getAttribute("data-category") === category.value);
      row.hidden = !ok;
      var table = row.closest("table");
      if (ok && table) { shown[table.id] = (shown[table.id] || 0) + 1; }
    }
    var counters = document.querySelectorAll("[data-count-for]");
    for (var j = 0; j < counters.length; j++) {
      counters[j].textContent = String(shown[counters[j].getAttribute("data-count-for")] || 0);
    }
  }
  function reveal() {
    var target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
    var details = target ? target.closest("details") : null;
    if (details) { details.open = true; target.scrollIntoView(); }
  }
  if (level && category) {
    level.addEventListener("change", apply);
    category.addEventListener("change", apply);
    apply();
  }
  window.addEventListener("hashchange", reveal);
  reveal();
})();
"""


def _e(value: Any) -> str:
    return html.escape(_text(value), quote=True)


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


_CODE_SPAN = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _spec_html(text: str) -> str:
    """A requirement's Markdown as HTML: escaped first, then its code spans and bold marked up."""
    return _BOLD.sub(r"<b>\1</b>", _CODE_SPAN.sub(r"<code>\1</code>", _e(text)))


def _plain(text: str) -> str:
    return _BOLD.sub(r"\1", _CODE_SPAN.sub(r"\1", text))


def _spec_links(refs: Iterable[Any], spec: SpecIndex) -> str:
    return ", ".join(
        f'<a href="{_e(_spec_href(str(r), spec))}" title="{_e(_plain(spec.describe(str(r))))}">{_e(r)}</a>'
        for r in refs
    )


def _spec_quotes(refs: Iterable[Any], spec: SpecIndex) -> str:
    """The cited requirements' text, folded under the links, for the rows a reader acts on."""
    paragraphs = "".join(f"<p>{_spec_html(spec.describe(str(r)))}</p>" for r in refs)
    return f'<details class="req"><summary>text</summary>{paragraphs}</details>' if paragraphs else ""


def _check_row(check: Mapping[str, Any], spec: SpecIndex, *, row_id: str | None, evidence: bool, note: str = "") -> str:
    level, outcome = _text(check.get("level")), _text(check.get("outcome"))
    classes = ["info-finding"] if level not in CERTIFYING and outcome in BAD else []
    attrs = f' id="{_e(row_id)}"' if row_id else ""
    attrs += f' class="{" ".join(classes)}"' if classes else ""
    cells = [
        f'<td class="id"><code>{_e(check.get("id"))}</code></td>',
        f"<td>{_e(level)}</td>",
        f"<td>{_e(check.get('category'))}</td>",
        f'<td class="o-{_e(outcome)}">{_e(outcome)}{note}</td>',
        f"<td>{_e(check.get('title'))}</td>",
    ]
    reason = _e(check.get("reason"))
    if evidence:
        reason += (
            f"<details><summary>evidence</summary><pre>{html.escape(_evidence_json(check.get('evidence')))}</pre>"
            "</details>"
        )
    refs = check.get("spec") or []
    quotes = _spec_quotes(refs, spec) if evidence else ""
    cells += [f"<td>{reason}</td>", f"<td>{_spec_links(refs, spec)}{quotes}</td>"]
    return (
        f'<tr data-level="{_e(level)}" data-category="{_e(check.get("category"))}" data-outcome="{_e(outcome)}"'
        f"{attrs}>{''.join(cells)}</tr>"
    )


_CHECK_HEAD = (
    "<thead><tr><th>Check</th><th>Level</th><th>Category</th><th>Outcome</th><th>Title</th><th>Reason</th>"
    "<th>Spec</th></tr></thead>"
)


def _verdict_section(results: Mapping[str, Any]) -> str:
    passed, verdict, why = _headline(results)
    gate = _gate(results)
    cert, counts = _certification(results), _counts(results)
    rows = "".join(
        f'<tr data-cert-level="{level}"><th>{level}</th><td class="cert-{_e(cert[level])}">{_e(cert[level]).upper()}'
        "</td>" + "".join(f'<td class="num">{counts[level][o]}</td>' for o in OUTCOMES) + "</tr>"
        for level in LEVELS
    )
    target = results.get("target") or {}
    meta = (
        f"{_e(target.get('url'))} · atoma-conformance {_e(results.get('suite_version'))} · "
        f"{len(_checks(results))} of {_e(results.get('catalogue_size'))} checks · {_e(results.get('requests'))} "
        f"requests · {_e(results.get('duration_s'))} s · started {_e(_started_iso(results) or None)}"
    )
    word, _, qualifier = (verdict, "", "") if verdict == loadplots.NOT_RUN else verdict.partition(" ")
    banner = _e(word) + (f'<span class="qualifier"> {_e(qualifier)}</span>' if qualifier else "")
    ungated = ""
    if gate is not None:
        ungated_passed, ungated_why = _verdict(results)
        ungated = (
            f'<p class="ungated" id="ungated-verdict">Without the baseline: <b>{"PASS" if ungated_passed else "FAIL"}'
            f'</b> ({_e(ungated_why)}); see <a href="#baseline">the baseline gate</a>.</p>'
        )
    style = "fail" if not passed else "known" if gate is not None and _entries(gate, "known") else "pass"
    style = "notrun" if verdict == loadplots.NOT_RUN else style
    levels = (
        '<table class="levels"><thead><tr><th>Level</th><th>Certification</th>'
        + "".join(f'<th class="num">{o}</th>' for o in OUTCOMES)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
        if not _load_run(results)
        else '<p class="load-note">A load run: no check was run, every answer was judged by the rulebook; see '
        '<a href="#load">the load run</a>.</p>'
    )
    return (
        f'<section id="verdict" class="verdict {style}">'
        f'<div class="banner" id="banner">{banner}</div>'
        f'<div><p class="why">{_e(why)}</p>{ungated}{levels}<p class="meta">{meta}</p></div></section>'
    )


def _baseline_section(results: Mapping[str, Any]) -> str:
    gate = _gate(results)
    if gate is None:
        return ""
    known, expired = _entries(gate, "known"), _entries(gate, "expired")
    rows = _rows_within(
        (
            f'<tr data-gate="{state}"><td class="id"><a href="#failure-{_e(check_id)}"><code>{_e(check_id)}</code>'
            f"</a></td><td>{_e(entry.get('level'))}</td><td>{state}</td><td>{_e(entry.get('expires'))}</td>"
            f"<td>{_e(entry.get('reason'))}</td></tr>"
            for state, group in (("expired", expired), ("known", known))
            for check_id, entry in group.items()
        ),
        len(known) + len(expired),
        HTML_TABLE_BUDGET // 4,
        "baselined failures",
        columns=5,
    )
    table = (
        '<table id="baseline-table"><thead><tr><th>Check</th><th>Level</th><th>State</th><th>Expires</th>'
        f"<th>Reason (baseline)</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="empty">No baselined check failed in this run.</p>'
    )
    items = "".join(
        f"<dt>{_e(title)}</dt><dd>{_id_list(_ids(gate, key), lambda i: f'<code>{_e(i)}</code>') or 'none'}</dd>"
        for title, key in (
            ("New MUST failures", "new_failures"),
            ("Now passing (remove from the baseline)", "now_passing"),
            ("Not evaluated", "not_evaluated"),
        )
    )
    return (
        f'<section id="baseline"><h2>Baseline gate: {_e(gate.get("verdict"))} (exit {_e(gate.get("exit_code"))})'
        f'</h2><p class="small">Baseline <code>{_e(gate.get("file"))}</code>, expiry judged on '
        f"{_e(gate.get('today'))}. A baseline never hides a failure: every tolerated one is listed here and in "
        f'the failing checks.</p>{table}<dl class="kv">{items}</dl></section>'
    )


def _spec_section(results: Mapping[str, Any], spec: SpecIndex) -> str:
    """Every requirement of the spec with its text and the checks citing it: the target of every spec link,
    so the report reads offline without spec.md beside it."""
    citing: dict[str, list[str]] = {}
    for check in _checks(results):
        for ref in check.get("spec") or []:
            citing.setdefault(str(ref), []).append(_text(check.get("id")))
    parts = []
    for number in sorted(spec.by_section):
        title = spec.sections.get(number, ("", ""))[0]
        entries = []
        for rid in spec.by_section[number]:
            level, text = spec.texts.get(rid, ("", ""))
            ids = citing.get(rid, [])
            cited = (
                "cited by " + _id_list(ids, lambda i: f'<a href="#check-{_e(i)}">{_e(i)}</a>')
                if ids
                else "no check of this run cites it"
            )
            entries.append(
                f'<dt id="{_e(_req_anchor(rid))}"><code>{_e(rid)}</code> {_e(level)}</dt>'
                f'<dd>{_spec_html(text)} <span class="small">· {cited}</span></dd>'
            )
        parts.append(f'<h3 id="spec-{number}">§{number} {_e(title)}</h3><dl class="reqs">{"".join(entries)}</dl>')
    total = sum(len(v) for v in spec.by_section.values())
    cited_count = sum(1 for rids in spec.by_section.values() for rid in rids if rid in citing)
    return (
        '<section id="spec"><h2>Requirements (docs/spec.md)</h2><details id="requirements"><summary>'
        f"All {total} requirements, {cited_count} cited by this run's checks</summary>{''.join(parts)}</details>"
        "</section>"
    )


HTML_TABLE_BUDGET = 6 * 1024 * 1024
"""Each of the two check tables; with the rest of the page well under HTML_MAX_BYTES."""


def _rows_within(rows: Iterable[str], total: int, budget: int, what: str, columns: int = 7) -> str:
    """The rows that fit in ``budget`` bytes, then one row saying how many were left out (it carries no
    ``data-level``, so the filters and counters skip it)."""
    shown: list[str] = []
    used = 0
    for row in rows:
        used += len(row.encode("utf-8"))
        if used > budget:
            break
        shown.append(row)
    if len(shown) < total:
        shown.append(
            f'<tr class="omitted"><td colspan="{columns}" class="empty">{total - len(shown)} more {what} not shown: '
            "report.html stays under its size cap; every one is in results.json</td></tr>"
        )
    return "".join(shown)


def _failures_section(results: Mapping[str, Any], spec: SpecIndex) -> str:
    checks = _checks(results)
    failures = _failures(results)
    gate = _gate(results)
    known = _entries(gate, "known") if gate is not None else {}
    expired = _entries(gate, "expired") if gate is not None else {}

    def note(check: Mapping[str, Any]) -> str:
        check_id = str(check.get("id"))
        if _is_known(check, known):
            return f'<br><span class="known-badge">known · expires {_e(known[check_id].get("expires"))}</span>'
        if _is_known(check, expired):
            return f'<br><span class="known-badge">baseline expired {_e(expired[check_id].get("expires"))}</span>'
        return ""

    present_levels = [lv for lv in LEVELS if any(c.get("level") == lv for c in checks)]
    categories = list(dict.fromkeys(_text(c.get("category")) for c in checks))[:MAX_IDS_LISTED]
    options_level = "".join(f'<option value="{_e(lv)}">{_e(lv)}</option>' for lv in present_levels)
    options_category = "".join(f'<option value="{_e(cat)}">{_e(cat)}</option>' for cat in categories)
    filters = (
        '<div class="filters"><label for="filter-level">Level</label>'
        f'<select id="filter-level"><option value="">all</option>{options_level}</select>'
        '<label for="filter-category">Category</label>'
        f'<select id="filter-category"><option value="">all</option>{options_category}</select></div>'
    )
    if failures:
        body = _rows_within(
            (
                _check_row(c, spec, row_id=f"failure-{_text(c.get('id'))}", evidence=True, note=note(c))
                for c in failures
            ),
            len(failures),
            HTML_TABLE_BUDGET,
            "failing checks",
        )
        table = f'<table id="failures-table">{_CHECK_HEAD}<tbody>{body}</tbody></table>'
    else:
        table = '<p class="empty">No failing checks: every MUST and SHOULD check passed or was skipped.</p>'
    all_rows = _rows_within(
        (_check_row(c, spec, row_id=f"check-{_text(c.get('id'))}", evidence=False) for c in checks),
        len(checks),
        HTML_TABLE_BUDGET,
        "checks",
    )
    return (
        f'<section id="failures"><h2>Failing checks (<span data-count-for="failures-table">{len(failures)}</span>'
        f" of {len(failures)})</h2>{filters}{table}"
        f'<details id="all-checks"><summary>All checks (<span data-count-for="all-checks-table">{len(checks)}</span>'
        f' of {len(checks)})</summary><table id="all-checks-table">{_CHECK_HEAD}<tbody>{all_rows}</tbody></table>'
        "</details></section>"
    )


def _coverage_section(results: Mapping[str, Any], spec: SpecIndex) -> str:
    checks = _checks(results)
    by_section: dict[int, list[dict[str, Any]]] = {}
    cited: set[str] = set()
    for check in checks:
        sections = {s for s in (_section_of(str(r)) for r in check.get("spec") or []) if s is not None}
        cited.update(str(r) for r in check.get("spec") or [])
        for number in sections:
            by_section.setdefault(number, []).append(check)
    numbers = sorted(set(SPEC_SECTIONS) | set(by_section) | set(spec.by_section))
    rows = []
    for number in numbers:
        in_section = by_section.get(number, [])
        tally = {o: sum(1 for c in in_section if c.get("outcome") == o) for o in OUTCOMES}
        bad = any(c.get("level") in CERTIFYING and c.get("outcome") in BAD for c in in_section)
        status = "gap" if not in_section else ("fail" if bad else "pass")
        title = spec.sections.get(number, ("", ""))[0]
        href = f"#spec-{number}" if number in spec.by_section else "#spec"
        heading = f'<a href="{href}">§{number}</a>' + (f" {_e(title)}" if title else "")
        if number in spec.by_section:
            requirements = spec.by_section[number]
            uncited = [r for r in requirements if r not in cited]
            req_cell = f'<td class="num">{len(requirements) - len(uncited)} of {len(requirements)}</td>'
            uncited_cell = f'<td class="small">{_spec_links(uncited, spec) or "—"}</td>'
        else:
            req_cell, uncited_cell = '<td class="num">—</td>', '<td class="small">—</td>'
        ids = (
            _id_list([_text(c.get("id")) for c in in_section], lambda i: f'<a href="#check-{_e(i)}">{_e(i)}</a>')
            if in_section
            else '<span class="empty">gap: no check cites this section</span>'
        )
        rows.append(
            f'<tr class="cov-{status}{" gap" if status == "gap" else ""}" data-section="{number}" '
            f'data-status="{status}"><td>{heading}</td>{req_cell}<td class="num">{len(in_section)}</td>'
            + "".join(f'<td class="num">{tally[o]}</td>' for o in OUTCOMES)
            + f'<td class="small">{ids}</td>{uncited_cell}</tr>'
        )
    gaps = sum(1 for number in numbers if not by_section.get(number))
    note = "" if spec.by_section else '<p class="small">The spec holds no requirements: counts are missing.</p>'
    return (
        '<section id="coverage"><h2>Coverage by specification section</h2>'
        f'<p class="small">{len(numbers) - gaps} of {len(numbers)} sections have at least one check; '
        "a check citing requirements of several sections counts in each.</p>"
        '<table id="coverage-table"><thead><tr><th>Section</th><th class="num">Requirements cited</th>'
        '<th class="num">Checks</th>'
        + "".join(f'<th class="num">{o}</th>' for o in OUTCOMES)
        + f"<th>Checks citing it</th><th>Requirements no check cites</th></tr></thead><tbody>{''.join(rows)}"
        f"</tbody></table>{note}</section>"
    )


def _requirement_coverage_section(results: Mapping[str, Any], spec: SpecIndex) -> str:
    """The suite's requirement matrix (docs/coverage.md): which requirements a check, or a written reason,
    accounts for. Computed at render time from :mod:`conformance.coverage` rather than stored in every
    results.json, because it describes the suite, not the target; a check id links to its row when this
    run has one."""
    from .. import __version__
    from ..coverage import DUTY_LABEL, STATUSES, Duty, build

    coverage = build()
    in_run = {_text(c.get("id")) for c in _checks(results)}

    def check_link(check_id: str) -> str:
        code = f"<code>{_e(check_id)}</code>"
        return f'<a href="#check-{_e(check_id)}">{code}</a>' if check_id in in_run else code

    populations: tuple[tuple[Duty | None, str], ...] = (
        ("node", "Binding a node or proxy"),
        ("client", "Binding a client"),
        (None, "All (covered when every duty is)"),
    )
    totals = []
    for duty, label in populations:
        tally = coverage.tally(duty)
        cells = "".join(f'<td class="num" data-status="{s}">{tally[s]}</td>' for s in STATUSES)
        totals.append(
            f'<tr data-population="{duty or "all"}"><th>{_e(label)}</th>{cells}'
            f'<td class="num">{sum(tally.values())}</td></tr>'
        )
    rows = []
    for number, section_rows in coverage.by_section().items():
        rows.append(f'<tr class="section"><th colspan="7">§{number} {_e(coverage.sections[number][0])}</th></tr>')
        for row in section_rows:
            status = row.status()
            shown: str = status
            if status == "uncovered" and len(row.duties) > 1:
                shown += f" ({', '.join(DUTY_LABEL[d] for d in row.gaps())})"
            checks = ", ".join(check_link(i) for i in (*row.node_checks, *row.client_checks)) or "—"
            faults = ", ".join(f"<code>{_e(f)}</code>" for f in row.violated_by) or "—"
            gap = ' class="gap"' if status == "uncovered" else ""
            rows.append(
                f'<tr data-requirement="{_e(row.id)}" data-status="{status}"{gap}>'
                f'<td class="id"><a href="{_e(_spec_href(row.id, spec))}">{_e(row.id)}</a></td>'
                f"<td>{_e(row.requirement.level)}</td><td>{_e(', '.join(DUTY_LABEL[d] for d in row.duties))}</td>"
                f'<td>{_e(shown)}</td><td class="small">{checks}</td><td class="small">{faults}</td>'
                f'<td class="small">{_e(row.reason or "")}</td></tr>'
            )
    version = results.get("suite_version")
    other = (
        f" This run was made by version {_e(version)}; the matrix is of the version rendering the report."
        if version is not None and _text(version) != __version__
        else ""
    )
    gaps = ", ".join(sorted(coverage.uncovered(), key=_requirement_order)) or "none"
    unproven = [c.id for c in coverage.checks if not c.faults]
    unproven_list = ", ".join(f"<code>{_e(i)}</code>" for i in unproven) or "none"
    heads = "".join(f'<th class="num">{s}</th>' for s in STATUSES)
    return (
        '<section id="requirement-coverage"><h2>Requirement coverage of the suite</h2>'
        f'<p class="small">What atoma-conformance {_e(__version__)} can test, whatever this run selected: each '
        "MUST and SHOULD requirement is covered by a check (a client's duty by a CLIENT check), accounted for by "
        f"a written reason why no black-box test can decide it, or uncovered (docs/coverage.md).{other}</p>"
        f'<table id="requirement-coverage-totals"><thead><tr><th>MUST and SHOULD requirements</th>{heads}'
        f'<th class="num">total</th></tr></thead><tbody>{"".join(totals)}</tbody></table>'
        f'<p class="small" id="requirement-gaps">Uncovered duties: {_e(gaps)}.</p>'
        f'<p class="small" id="unproven-checks">{len(coverage.checks) - len(unproven)} of {len(coverage.checks)} '
        f"node and proxy checks have a mock fault that proves they can fail; without one: {unproven_list}.</p>"
        f'<details id="requirement-matrix"><summary>All {len(coverage.rows)} requirements</summary>'
        '<table id="requirement-matrix-table"><thead><tr><th>Requirement</th><th>Level</th><th>Binds</th>'
        "<th>Status</th><th>Checks</th><th>Faults violating it</th><th>Reason</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></details></section>"
    )


def _requirement_order(entry: str) -> tuple[int, int, str]:
    """``"R10.2 node"`` after ``"R9.1 client"``: numeric, not string, order."""
    rid, _, duty = entry.partition(" ")
    match = REQUIREMENT_ID.fullmatch(rid)
    return (int(match["section"]), int(match["number"]), duty) if match else (0, 0, entry)


def _nonce_section(results: Mapping[str, Any]) -> str:
    audit = results.get("nonce_audit") or {}
    if not audit:
        return '<section id="nonce-audit"><h2>Nonce audit</h2><p class="empty">No nonce audit recorded.</p></section>'
    reuses = audit.get("reuses")
    fraction = audit.get("budget_fraction")
    items = [
        ("Nonces observed", _e(audit.get("observations"))),
        ("Keys", _e(audit.get("keys"))),
        ("(key, nonce) reuses", f'<span class="{"reuse" if reuses else "cert-pass"}">{_e(reuses)}</span>'),
        ("Most nonces under one key", _e(audit.get("max_per_key"))),
        (
            "Busiest key's share of the 2^32 budget",
            _e(f"{fraction:.3g}" if isinstance(fraction, (int, float)) else fraction),
        ),
    ]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="nonce-audit"><h2>Nonce audit</h2><dl class="kv">{body}</dl></section>'


def _fingerprint_section(results: Mapping[str, Any]) -> str:
    target = results.get("target") or {}
    items = [(name, target.get(key)) for key, name in FINGERPRINT]
    items += [
        ("Suite version", results.get("suite_version")),
        ("Results format", results.get("results_version")),
        ("Vector set digest", results.get("vector_set_digest")),
        ("Catalogue size", results.get("catalogue_size")),
        ("Seed", results.get("seed")),
        ("Started (UTC)", _started_iso(results) or None),
    ]
    body = "".join(f'<dt>{_e(k)}</dt><dd class="mono">{_e(v)}</dd>' for k, v in items)
    options = results.get("options") or {}
    opts = "".join(
        f'<dt>{_e(k)}</dt><dd class="mono">{_e(json.dumps(v, ensure_ascii=False, default=str))}</dd>'
        for k, v in options.items()
    )
    options_html = f'<details><summary>Options</summary><dl class="kv">{opts}</dl></details>' if opts else ""
    return f'<section id="fingerprint"><h2>Target fingerprint</h2><dl class="kv">{body}</dl>{options_html}</section>'


def html_report(results: dict[str, Any], *, spec_path: Path | None = None) -> str:
    """One self-contained, offline HTML page for the run (see the module docstring for its sections).
    ``spec_path`` names another copy of docs/spec.md; by default the one packaged with the suite.

    At most :data:`HTML_MAX_BYTES`: the check tables stop at a budget and say how many rows they left
    out; a page still too large (tens of thousands of checks) is replaced by its verdict and a note."""
    results = _bounded(results)
    page = _html_page(results, _load_spec(spec_path))
    size = len(page.encode("utf-8"))
    if size <= HTML_MAX_BYTES:
        return page
    _, verdict, why = _headline(results)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        f"<title>atoma-conformance: {_e(verdict)}</title></head>\n<body><h1>atoma-conformance report</h1>"
        f'<section id="verdict"><p><b>{_e(verdict)}</b>: {_e(why)}</p></section>'
        f'<p class="meta">The full report would be {size} bytes, over the {HTML_MAX_BYTES}-byte cap for '
        f"{len(_checks(results))} checks; read results.json instead.</p></body></html>\n"
    )


def _html_page(results: Mapping[str, Any], spec: SpecIndex) -> str:
    _, verdict, _ = _headline(results)
    target = results.get("target") or {}
    csp = (
        f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    checked = not _load_run(results)  # a load run has no checks: "no failing check" and 13 gaps would mislead
    sections: Sequence[str] = (
        _verdict_section(results),
        loadplots.load_section(results["load"]) if "load" in results else "",
        _baseline_section(results),
        _failures_section(results, spec) if checked else "",
        _coverage_section(results, spec) if checked else "",
        _requirement_coverage_section(results, spec),
        _nonce_section(results),
        _fingerprint_section(results),
        _spec_section(results, spec),
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>atoma-conformance: {_e(verdict)} · {_e(target.get('url'))}</title>"
        f"<style>{_CSS}</style></head>\n<body>"
        f"<h1>atoma-conformance report</h1>\n"
        + "\n".join(s for s in sections if s)
        + '\n<p class="meta">Rendered from results.json; this file is self-contained and works offline.</p>'
        f"\n<script>{_JS}</script>\n</body></html>\n"
    )


# --- files ---------------------------------------------------------------------------------------------


def write_all(
    results: dict[str, Any], directory: Path, *, spec_path: Path | None = None, junit_path: Path | None = None
) -> dict[str, Path]:
    """Write junit.xml, report.html and summary.md into ``directory`` (beside results.json); returns
    ``{"junit": …, "html": …, "summary": …}``. ``junit_path`` puts the JUnit file where a CI system
    looks for it instead."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "junit": junit_path or directory / JUNIT_FILE,
        "html": directory / HTML_FILE,
        "summary": directory / SUMMARY_FILE,
    }
    # Atomic, and never through a link planted at a report's name: a UserError naming the option instead.
    field = "--report-dir"
    for name, path in paths.items():  # every destination checked before any is written
        atomic_target(path, "--junit-xml" if name == "junit" and junit_path is not None else field)
    write_atomic(paths["junit"], junit_xml(results), "--junit-xml" if junit_path is not None else field)
    write_atomic(paths["html"], html_report(results, spec_path=spec_path).encode("utf-8"), field)
    write_atomic(paths["summary"], markdown_summary(results).encode("utf-8"), field)
    return paths
