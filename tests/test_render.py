"""The renderings of results.json, each parsed back: the JSON Schema of the document itself, JUnit XML,
the Markdown job summary and the self-contained HTML report (plus a headless Chromium screenshot of it
when Chromium is installed).

The samples are fresh runs of the suite against the embedded mock (strict and atoma-node-compat
profiles), made once per session under tmp_path_factory: never cached files from an earlier version,
so that the schema and the renderers follow what ``Results.to_json()`` writes today.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conformance.checks import CATALOGUE, CATEGORIES, LEVELS
from conformance.cli import main
from conformance.report.baseline import create_baseline, gate, gate_record, parse_baseline
from conformance.report.render import (
    github_slug,
    html_report,
    junit_xml,
    markdown_summary,
    packaged_spec,
    parse_spec,
    write_all,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "reports" / "results.schema.json"
SPEC_PATH = ROOT / "docs" / "spec.md"
PROFILE_ARGS = {"strict": [], "compat": ["--profile", "atoma-node-compat"]}
SECTIONS = {*range(1, 14), 15}
CERTIFYING = ("MUST", "SHOULD")


def _run_suite(directory: Path, name: str) -> dict[str, Any]:
    assert main(["run", *PROFILE_ARGS[name], "--report-dir", str(directory)]) in (0, 1)
    data: dict[str, Any] = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One fresh run per profile for the whole session (each costs a few seconds)."""
    return {name: _run_suite(tmp_path_factory.mktemp(f"sample-{name}"), name) for name in sorted(PROFILE_ARGS)}


@pytest.fixture(scope="session", params=sorted(PROFILE_ARGS))
def sample(request: pytest.FixtureRequest, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs[request.param]


@pytest.fixture(scope="session")
def compat(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs["compat"]


def _node_face_only() -> set[str]:
    """The checks a proxy-face run must skip: those probing a scenario that exists only on the node face."""
    return {c.id for c in CATALOGUE if any(p.face == "node" for p in c.reads)}


@pytest.fixture(scope="session")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _failing(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results["checks"] if c["level"] in CERTIFYING and c["outcome"] in ("fail", "error")]


def _hostile(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of the compat sample whose strings try to break out of every format."""
    doc = copy.deepcopy(results)
    failing = _failing(doc)[0]
    failing["reason"] = "<script>alert('x')</script> & \"quoted\" | piped \x00 `code` **bold**"
    failing["title"] = '"><img src=x onerror=alert(1)>'
    doc["target"]["model"] = "</td><script>alert(2)</script>"
    return doc


# --- the schema ----------------------------------------------------------------------------------------


def test_the_samples_validate_against_the_schema(sample: dict[str, Any], validator: Draft202012Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(sample)]
    assert errors == []
    assert re.fullmatch(r"[0-9a-f]{64}", sample["vector_set_digest"]), "the vectors ship with the package"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("unexpected",), 1),
        (("target", "api_key"), "secret"),
        (("counts", "MUST", "passed"), 1),
        (("certification", "MUST"), "maybe"),
        (("nonce_audit", "reuses"), -1),
        (("checks", 0, "outcome"), "passed"),
        (("checks", 0, "spec"), ["§2"]),
        (("checks", 0, "extra"), True),
        (("vector_set_digest",), "not-hex"),
    ],
)
def test_the_schema_refuses_what_to_json_never_writes(
    compat: dict[str, Any], validator: Draft202012Validator, path: tuple[str | int, ...], value: Any
) -> None:
    doc = copy.deepcopy(compat)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert not validator.is_valid(doc)


def test_the_schema_requires_every_member_and_describes_every_property() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    optional = {"baseline_gate", "incomplete", "stopped_early", "load"}  # run --baseline, Ctrl-C, the run guard, load
    assert set(schema["required"]) == set(schema["properties"]) - optional
    check = schema["$defs"]["check"]
    assert set(check["required"]) == set(check["properties"])
    assert check["properties"]["category"]["enum"] == list(CATEGORIES)
    assert check["properties"]["level"]["enum"] == list(LEVELS)

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if "description" not in sub:
                    yield f"{where}.{name}"
            for key, sub in node.items():
                yield from walk(sub, f"{where}.{key}")

    assert list(walk(schema, "$")) == []


# --- JUnit ---------------------------------------------------------------------------------------------


def test_junit_counts_match_the_results(sample: dict[str, Any]) -> None:
    root = ET.fromstring(junit_xml(sample))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    counts = sample["counts"]
    assert suite.get("name") == "atoma-conformance"
    assert int(suite.get("tests", "")) == len(sample["checks"]) == len(suite.findall("testcase"))
    assert int(suite.get("failures", "")) == sum(counts.get(lv, {}).get("fail", 0) for lv in CERTIFYING)
    assert int(suite.get("errors", "")) == sum(counts.get(lv, {}).get("error", 0) for lv in CERTIFYING)
    assert int(suite.get("skipped", "")) == sum(tally["skip"] for tally in counts.values())
    assert len(suite.findall("testcase/failure")) == int(suite.get("failures", ""))
    for case, check in zip(suite.findall("testcase"), sample["checks"], strict=True):
        assert case.get("classname") == f"atoma-conformance.{check['category']}"
        assert case.get("name") == f"{check['id']} {check['title']}"


def test_junit_names_a_failing_must_check_as_a_failure(compat: dict[str, Any]) -> None:
    suite = ET.fromstring(junit_xml(compat)).find("testsuite")
    assert suite is not None
    cases = {case.get("name", "").split()[0]: case for case in suite.findall("testcase")}
    must = [c for c in _failing(compat) if c["level"] == "MUST"]
    assert must, "the compat sample fails MUST checks"
    for check in must:
        failure = cases[check["id"]].find("failure")
        assert failure is not None
        assert failure.get("type") == "MUST"
        assert failure.get("message") == check["reason"]
        assert all(ref in (failure.text or "") for ref in check["spec"])
    assert cases["LOCK-001"].find("failure") is None


def test_junit_maps_error_skip_and_informational_failures(compat: dict[str, Any]) -> None:
    doc = _hostile(compat)
    hostile = _failing(doc)[0]
    info = next(c for c in doc["checks"] if c["level"] == "INFO")
    must_pass = [c for c in doc["checks"] if c["level"] == "MUST" and c["outcome"] == "pass"]
    must_pass[0].update(outcome="error", reason="precondition failed")
    must_pass[1].update(outcome="skip", reason="no embeddings model")
    info.update(outcome="fail", reason="informational finding")
    # The compat run is a proxy-face run: it skips exactly the checks that probe the node face (the
    # NODE checks), and errors nowhere; the two changes above add one error and one skip.
    skipped_before = {c["id"] for c in compat["checks"] if c["outcome"] == "skip"}
    assert skipped_before == _node_face_only() == {c.id for c in CATALOGUE if c.category == "NODE"} | {"KEY-011"}
    assert not [c for c in compat["checks"] if c["outcome"] == "error"]
    suite = ET.fromstring(junit_xml(doc)).find("testsuite")  # parses although a reason holds NUL
    assert suite is not None
    cases = {case.get("name", "").split()[0]: case for case in suite.findall("testcase")}
    error = cases[must_pass[0]["id"]].find("error")
    assert error is not None and error.get("message") == "precondition failed"
    skipped = cases[must_pass[1]["id"]].find("skipped")
    assert skipped is not None and skipped.get("message") == "no embeddings model"
    info_case = cases[info["id"]]
    assert info_case.find("failure") is None and info_case.find("error") is None
    assert "informational finding" in (info_case.findtext("system-out") or "")
    assert suite.get("errors") == "1" and suite.get("skipped") == str(len(skipped_before) + 1)
    failure = cases[hostile["id"]].find("failure")
    assert failure is not None
    assert failure.get("message") == hostile["reason"].replace("\x00", "\\x00")


# --- Markdown ------------------------------------------------------------------------------------------


def test_markdown_has_the_verdict_counts_and_every_failing_check(sample: dict[str, Any]) -> None:
    text = markdown_summary(sample)
    failing = _failing(sample)
    verdict = "FAIL" if sample["certification"]["MUST"] == "fail" else "PASS"
    verdict_line = next(line for line in text.splitlines() if line.startswith("**Verdict:"))
    assert verdict_line.startswith(f"**Verdict: {verdict}**")
    for level, result in sample["certification"].items():
        assert f"{level} {'✅ pass' if result == 'pass' else '❌ fail'}" in verdict_line
    for level, tally in sample["counts"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {level} |"))
        assert [int(n) for n in row.strip("|").split("|")[2:]] == [tally[o] for o in ("pass", "fail", "skip", "error")]
    assert f"### Failing checks ({len(failing)})" in text
    for check in failing:
        assert re.search(rf"^\| {re.escape(check['id'])} \| {check['level']} \|", text, re.M), check["id"]
    assert sample["target"]["node_public_key"] in text
    assert f"{sample['nonce_audit']['reuses']} reuse(s)" in text


def test_markdown_escapes_pipes_and_html_in_cells(compat: dict[str, Any]) -> None:
    doc = _hostile(compat)
    hostile = _failing(doc)[0]
    text = markdown_summary(doc)
    row = next(line for line in text.splitlines() if line.startswith(f"| {hostile['id']} |"))
    assert "\\| piped" in row
    assert len(re.split(r"(?<!\\)\|", row)) == 7  # five cells between the outer pipes
    assert "<script>" not in text and "&lt;script&gt;" in text


# --- HTML ----------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "data", "poster", "srcset", "background", "xlink:href"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: tuple[Element, ...]
    text: list[str] = field(default_factory=list)

    def within(self, element_id: str) -> bool:
        return any(a.attrs.get("id") == element_id for a in self.ancestors)

    @property
    def content(self) -> str:
        return "".join(self.text)


class Page(HTMLParser):
    """Every element with its attributes, ancestors and text; raises on a mismatched closing tag."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(source)
        self.close()
        assert [e.tag for e in self._open] == [], "unclosed elements"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, tuple(self._open))
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self._open and self._open[-1].tag == tag, f"</{tag}> closes <{self._open[-1].tag if self._open else ''}>"
        self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)

    def by_id(self, element_id: str) -> Element:
        (found,) = [e for e in self.elements if e.attrs.get("id") == element_id]
        return found

    def find(self, tag: str, *, within: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (within is None or e.within(within))]


@pytest.fixture(scope="session")
def page(sample: dict[str, Any]) -> tuple[dict[str, Any], str, Page]:
    source = html_report(sample, spec_path=SPEC_PATH)
    return sample, source, Page(source)


def test_html_has_every_section_and_the_verdict(page: tuple[dict[str, Any], str, Page]) -> None:
    results, _, doc = page
    for section in ("verdict", "failures", "coverage", "nonce-audit", "fingerprint"):
        doc.by_id(section)
    expected = "FAIL" if results["certification"]["MUST"] == "fail" else "PASS"
    assert doc.by_id("banner").content == expected
    assert expected in doc.find("title")[0].content
    for row in doc.find("tr", within="verdict"):
        if "data-cert-level" in row.attrs:
            assert results["certification"][row.attrs["data-cert-level"]].upper() in row.content
    audit = doc.by_id("nonce-audit").content
    assert all(str(results["nonce_audit"][k]) in audit for k in ("observations", "keys", "reuses", "max_per_key"))
    fingerprint = doc.by_id("fingerprint").content
    for key in ("url", "node_public_key", "signer_address", "detected_profile", "model"):
        assert str(results["target"][key]) in fingerprint


def test_html_lists_every_check_and_marks_failing_rows(page: tuple[dict[str, Any], str, Page]) -> None:
    results, _, doc = page
    for check in results["checks"]:
        row = doc.by_id(f"check-{check['id']}")
        assert row.within("all-checks")
        assert (row.attrs["data-level"], row.attrs["data-category"]) == (check["level"], check["category"])
        assert check["id"] in row.content
    failing_rows = [row for row in doc.find("tr", within="failures") if row.within("failures-table")]
    failing_rows = [row for row in failing_rows if "data-level" in row.attrs]
    assert [row.attrs["id"] for row in failing_rows] == [f"failure-{c['id']}" for c in _failing(results)]
    for row, check in zip(failing_rows, _failing(results), strict=True):
        assert row.attrs["data-level"] == check["level"] and row.attrs["data-outcome"] == check["outcome"]
        assert check["reason"] in row.content
    selects = {e.attrs["id"]: e for e in doc.find("select", within="failures")}
    assert set(selects) == {"filter-level", "filter-category"}
    values = {o.attrs["value"] for o in doc.find("option") if o.within("filter-category")}
    assert values == {"", *(c["category"] for c in results["checks"])}


def test_html_is_self_contained(page: tuple[dict[str, Any], str, Page]) -> None:
    results, source, doc = page
    external = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # any scheme, or protocol-relative
    for element in doc.elements:
        for name, value in element.attrs.items():
            if name in URL_ATTRIBUTES:
                assert not external.match(value), f"<{element.tag} {name}={value!r}>"
                assert value.startswith("#"), value  # nothing beside report.html is needed, not even spec.md
                doc.by_id(value[1:])  # and every link lands on something in the page
    assert [s.attrs for s in doc.find("script")] == [{}]
    assert doc.find("link") == [] and doc.find("img") == [] and doc.find("iframe") == []
    (csp,) = [m for m in doc.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp.attrs["content"]
    allowed = {results["target"]["url"], results["options"].get("target")}
    assert set(re.findall(r"https?://[^\s<\"']*", source)) <= allowed  # the target URL, as text only
    assert "@import" not in source and "url(" not in source


def test_html_coverage_has_a_row_per_spec_section(page: tuple[dict[str, Any], str, Page]) -> None:
    results, _, doc = page
    spec = parse_spec(SPEC_PATH.read_text(encoding="utf-8"))
    rows = {int(r.attrs["data-section"]): r for r in doc.find("tr", within="coverage") if "data-section" in r.attrs}
    assert set(rows) == SECTIONS
    for number, row in rows.items():
        citing = [c for c in results["checks"] if any(r.startswith(f"R{number}.") for r in c["spec"])]
        assert spec.sections[number][0] in row.content
        assert all(c["id"] in row.content for c in citing)
        bad = any(c["level"] in CERTIFYING and c["outcome"] in ("fail", "error") for c in citing)
        assert row.attrs["data-status"] == ("gap" if not citing else "fail" if bad else "pass")


def test_html_coverage_shows_a_section_no_check_cites_as_a_gap(compat: dict[str, Any]) -> None:
    doc = copy.deepcopy(compat)
    doc["checks"] = [c for c in doc["checks"] if not any(r.startswith("R6.") for r in c["spec"])]
    page = Page(html_report(doc, spec_path=SPEC_PATH))
    rows = {r.attrs["data-section"]: r for r in page.find("tr", within="coverage") if "data-section" in r.attrs}
    assert rows["6"].attrs["data-status"] == "gap" and "gap" in rows["6"].content
    # §5 fails too since the ERR checks assert the 400 the spec names (the compat node answers 500).
    assert rows["12"].attrs["data-status"] == "fail" and rows["8"].attrs["data-status"] == "pass"


def test_html_quotes_every_cited_requirement_in_the_report(compat: dict[str, Any]) -> None:
    """The spec links of old pointed to a spec.md that is never beside report.html: each citation now links
    to the report's own quotation of the requirement, with its level and section, and failing rows quote
    it in place."""
    spec = parse_spec(SPEC_PATH.read_text(encoding="utf-8"))
    doc = Page(html_report(compat, spec_path=SPEC_PATH))
    links = {a.content: a for a in doc.find("a", within="failures-table")}
    assert links["R12.2"].attrs["href"] == "#req-R12.2"
    assert links["R12.2"].attrs["title"].startswith("R12.2 MUST NOT (§12 Nonce discipline): A node reuses")
    level, text = spec.texts["R12.2"]
    quoted = doc.by_id("req-R12.2")
    assert quoted.within("spec") and level == "MUST NOT" and quoted.content == f"R12.2 {level}"
    (entry,) = [e for e in doc.find("dd", within="spec") if text.replace("`", "")[:60] in e.content]
    assert "NONCE-003" in entry.content  # which checks cite it
    for check in _failing(compat):
        row = doc.by_id(f"failure-{check['id']}")
        for ref in check["spec"]:
            assert spec.texts[ref][1].replace("`", "")[:40] in row.content, (check["id"], ref)
    coverage = {a.content: a.attrs["href"] for a in doc.find("a", within="coverage")}
    assert coverage["§5"] == "#spec-5" and doc.by_id("spec-5").content.startswith("§5 AEAD")
    cited = {r for c in compat["checks"] for r in c["spec"]}
    for rid in spec.texts:  # every requirement has an entry, cited or not (coverage lists the uncited)
        assert doc.by_id(f"req-{rid}").within("requirements")
    assert cited <= set(spec.texts)


def test_every_requirement_of_the_spec_has_a_level_and_text() -> None:
    spec = parse_spec(SPEC_PATH.read_text(encoding="utf-8"))
    assert len(spec.texts) == sum(len(ids) for ids in spec.by_section.values()) > 100
    for rid, (level, text) in spec.texts.items():
        assert level in {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"}, rid
        assert len(text) > 20 and not text.startswith(":"), rid


def test_the_renderers_read_the_packaged_spec_by_default(compat: dict[str, Any]) -> None:
    """A wheel has no docs/spec.md beside the package: the default is the copy shipped in it, which in a
    checkout is the repository's file itself."""
    assert html_report(compat) == html_report(compat, spec_path=SPEC_PATH)
    assert packaged_spec() == parse_spec(SPEC_PATH.read_text(encoding="utf-8"))


def test_markdown_quotes_the_requirements_the_failures_cite(compat: dict[str, Any]) -> None:
    text = markdown_summary(compat)
    spec = packaged_spec()
    folded = text[text.index("<details><summary>Requirements cited") : text.index("</details>")]
    refs = {r for c in _failing(compat) for r in c["spec"]}
    assert folded.count("\n- **R") == len(refs)
    for ref in refs:
        level, requirement = spec.texts[ref]
        assert f"- **{ref}** {level} (§" in folded and requirement in folded
    assert "<details>" not in markdown_summary(
        {
            **compat,
            "checks": [c for c in compat["checks"] if c not in _failing(compat)],
            "counts": None,
            "certification": None,
        }
    )


def test_github_slugs_and_repeated_headings() -> None:
    assert github_slug("7.3 The `X-Signature` header (node face)") == "73-the-x-signature-header-node-face"
    assert github_slug("12. Nonce discipline") == "12-nonce-discipline"
    assert github_slug("See [the spec](spec.md) — now") == "see-the-spec--now"
    index = parse_spec(
        "## 1. A\n### Same\n- **R1.1** MUST: x\n```\n## 9. Not a heading\n```\n### Same\n- **R1.2** MUST: y\n"
    )
    assert index.sections == {1: ("A", "1-a")}
    assert index.requirements == {"R1.1": "same", "R1.2": "same-1"}
    assert index.by_section == {1: ["R1.1", "R1.2"]}


def test_html_escapes_every_string(compat: dict[str, Any]) -> None:
    doc = _hostile(compat)
    source = html_report(doc, spec_path=SPEC_PATH)
    parsed = Page(source)
    assert len(parsed.find("script")) == 1 and parsed.find("img") == []
    assert "<script>alert" not in source and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in source
    hostile = _failing(doc)[0]
    assert hostile["reason"] in parsed.by_id(f"failure-{hostile['id']}").content
    assert doc["target"]["model"] in parsed.by_id("fingerprint").content


def test_a_passing_run_has_no_failures_table(sample: dict[str, Any]) -> None:
    doc = Page(html_report(sample))
    if _failing(sample):
        assert doc.by_id("failures-table")
    else:
        assert [e for e in doc.elements if e.attrs.get("id") == "failures-table"] == []
        assert "No failing checks" in doc.by_id("failures").content


def test_write_all_writes_the_three_files(compat: dict[str, Any], tmp_path: Path) -> None:
    paths = write_all(compat, tmp_path / "reports", spec_path=SPEC_PATH)
    assert paths == {
        "junit": tmp_path / "reports" / "junit.xml",
        "html": tmp_path / "reports" / "report.html",
        "summary": tmp_path / "reports" / "summary.md",
    }
    assert ET.parse(paths["junit"]).getroot().tag == "testsuites"
    Page(paths["html"].read_text(encoding="utf-8")).by_id("coverage")
    assert paths["summary"].read_text(encoding="utf-8") == markdown_summary(compat)


# --- the baseline gate --------------------------------------------------------------------------------

TODAY = datetime.date(2026, 12, 7)


def _gated(results: dict[str, Any], baseline: dict[str, Any], path: str = "/ci/work/baseline.json") -> dict[str, Any]:
    """``results`` with the gate's record stored as ``run --baseline`` stores it before rendering."""
    outcome = gate(results, parse_baseline(baseline), today=TODAY)
    return {**results, "baseline_gate": gate_record(outcome, path)}


def _baseline_of(results: dict[str, Any], expires: datetime.date = datetime.date(2027, 3, 31)) -> dict[str, Any]:
    return create_baseline(results, reason="upstream nonce reuse, OPS-1", expires=expires)


def test_gate_record_names_the_file_only_and_validates(compat: dict[str, Any], validator: Draft202012Validator) -> None:
    doc = _gated(compat, _baseline_of(compat))
    record = doc["baseline_gate"]
    assert record["file"] == "baseline.json" and record["today"] == "2026-12-07"
    assert (record["exit_code"], record["verdict"]) == (0, "PASS with known failures")
    assert [k["id"] for k in record["known"]] == [c["id"] for c in _failing(compat)]
    assert {k["reason"] for k in record["known"]} == {"upstream nonce reuse, OPS-1"}
    assert {k["expires"] for k in record["known"]} == {"2027-03-31"}
    assert record["new_failures"] == record["expired"] == record["now_passing"] == []
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == []
    bad = copy.deepcopy(doc)
    bad["baseline_gate"]["file"] = "/ci/work/baseline.json"
    assert not validator.is_valid(bad)


def test_a_passing_gate_leads_every_rendering(compat: dict[str, Any]) -> None:
    """run --baseline exits 0 when the only MUST failures are known; the reports must not say FAIL."""
    doc = _gated(compat, _baseline_of(compat))
    page = Page(html_report(doc))
    assert page.by_id("banner").content == "PASS with known failures"
    assert page.find("title")[0].content.startswith("atoma-conformance: PASS with known failures")
    assert "known" in page.by_id("verdict").attrs["class"].split()
    ungated = page.by_id("ungated-verdict").content
    assert ungated.startswith("Without the baseline: FAIL")
    gate_rows = [r for r in page.find("tr", within="baseline-table") if "data-gate" in r.attrs]
    assert [r.attrs["data-gate"] for r in gate_rows] == ["known"] * len(_failing(compat))
    for check in _failing(compat):  # never hidden: still in the failing table, marked as known
        assert "known · expires 2027-03-31" in page.by_id(f"failure-{check['id']}").content

    text = markdown_summary(doc)
    assert text.startswith("## ✅ atoma-conformance: PASS with known failures\n")
    assert "**Verdict: PASS with known failures** (baseline baseline.json: no new MUST failure" in text
    assert "\nWithout the baseline: **FAIL** (not conformant" in text
    assert "### Baseline gate (baseline.json): PASS with known failures" in text
    for check in _failing(compat):
        assert re.search(rf"^\| {re.escape(check['id'])} \| {check['level']} \| \w+ \(known\) \|", text, re.M)

    suite = ET.fromstring(junit_xml(doc)).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "PASS with known failures" and props["baseline.exit_code"] == "0"
    assert props["certification.MUST"] == "fail"  # the ungated verdict stays recorded
    assert suite.get("failures") == suite.get("errors") == "0"
    skips = sum(1 for c in compat["checks"] if c["outcome"] == "skip")
    assert suite.get("skipped") == str(skips + len(_failing(compat)))
    cases = {case.get("name", "").split()[0]: case for case in suite.findall("testcase")}
    for check in _failing(compat):
        skipped = cases[check["id"]].find("skipped")
        assert skipped is not None
        assert (
            skipped.get("message") == "known failure (baseline.json, expires 2027-03-31): upstream nonce reuse, OPS-1"
        )
        assert check["reason"].replace("\x00", "\\x00") in (cases[check["id"]].findtext("system-out") or "")


def test_a_failing_gate_says_fail_and_why(compat: dict[str, Any]) -> None:
    baseline = _baseline_of(compat)
    first, *rest = baseline["entries"]
    must_entries = [e for e in rest if e["level"] == "MUST"]
    must_entries[0]["expires"] = "2026-12-06"  # expired yesterday
    doc = _gated(compat, {**baseline, "entries": rest})
    record = doc["baseline_gate"]
    assert (record["exit_code"], record["verdict"]) == (1, "FAIL")
    assert record["new_failures"] == [first["check_id"]]
    assert [e["id"] for e in record["expired"]] == [must_entries[0]["check_id"]]
    page = Page(html_report(doc))
    assert page.by_id("banner").content == "FAIL" and "fail" in page.by_id("verdict").attrs["class"].split()
    why = page.by_id("verdict").content
    assert f"1 new MUST failure(s) ({first['check_id']})" in why
    assert f"whose baseline entry expired ({must_entries[0]['check_id']})" in why
    assert "baseline expired 2026-12-06" in page.by_id(f"failure-{must_entries[0]['check_id']}").content
    assert page.by_id(f"failure-{first['check_id']}").content.count("known") == 0
    text = markdown_summary(doc)
    assert text.startswith("## ❌ atoma-conformance: FAIL\n")
    assert f"- New MUST failures: {first['check_id']}" in text
    suite = ET.fromstring(junit_xml(doc)).find("testsuite")
    assert suite is not None
    cases = {case.get("name", "").split()[0]: case for case in suite.findall("testcase")}
    assert cases[first["check_id"]].find("failure") is not None
    expired = cases[must_entries[0]["check_id"]].find("failure")
    assert expired is not None and "baseline entry expired 2026-12-06" in (expired.text or "")


def test_a_gate_with_nothing_known_is_a_plain_pass(runs: dict[str, dict[str, Any]]) -> None:
    strict = runs["strict"]
    assert not _failing(strict)
    doc = _gated(strict, {"baseline_version": 1, "entries": []})
    assert doc["baseline_gate"]["verdict"] == "PASS"
    assert Page(html_report(doc)).by_id("banner").content == "PASS"
    assert markdown_summary(doc).startswith("## ✅ atoma-conformance: PASS\n")


# --- a real browser ------------------------------------------------------------------------------------


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(chromium: str, html: Path, png: Path, profile_dir: Path) -> None:
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            f"--screenshot={png}",
            "--window-size=1280,900",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_chromium_renders_the_report(compat: dict[str, Any], tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (/usr/bin/chromium, or chromium/chromium-browser on PATH)")
    html = tmp_path / "report.html"
    html.write_text(html_report(compat, spec_path=SPEC_PATH), encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(chromium, html, png, tmp_path / "profile")
    data = png.read_bytes() if png.exists() else b""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG written"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000, "the screenshot looks blank"  # a blank 1280x900 page compresses to a few kB
