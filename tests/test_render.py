"""The renderings of results.json, each parsed back: the JSON Schema of the document itself, JUnit XML,
the Markdown job summary and the self-contained HTML report (plus a headless Chromium screenshot of it
when Chromium is installed).

The samples are /tmp/sample-strict and /tmp/sample-compat when they exist, else fresh runs of the suite
against the embedded mock (strict and atoma-node-compat profiles); the schema is also checked against a
fresh run, so that it follows what ``Results.to_json()`` writes today.
"""

from __future__ import annotations

import copy
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

from conformance.checks import CATEGORIES, LEVELS
from conformance.cli import main
from conformance.report.render import github_slug, html_report, junit_xml, markdown_summary, parse_spec, write_all

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "reports" / "results.schema.json"
SPEC_PATH = ROOT / "docs" / "spec.md"
SAMPLE_DIRS = {"strict": Path("/tmp/sample-strict"), "compat": Path("/tmp/sample-compat")}
PROFILE_ARGS = {"strict": [], "compat": ["--profile", "atoma-node-compat"]}
SECTIONS = set(range(1, 14))
CERTIFYING = ("MUST", "SHOULD")


def _run_suite(directory: Path, name: str) -> dict[str, Any]:
    assert main(["run", *PROFILE_ARGS[name], "--report-dir", str(directory)]) in (0, 1)
    data: dict[str, Any] = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session", params=sorted(SAMPLE_DIRS))
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    name: str = request.param
    path = SAMPLE_DIRS[name] / "results.json"
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    return _run_suite(tmp_path_factory.mktemp(f"sample-{name}"), name)


@pytest.fixture(scope="session")
def compat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = SAMPLE_DIRS["compat"] / "results.json"
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    return _run_suite(tmp_path_factory.mktemp("sample-compat"), "compat")


@pytest.fixture(scope="session")
def fresh_compat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run_suite(tmp_path_factory.mktemp("fresh-compat"), "compat")


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


def test_a_fresh_run_validates_against_the_schema(
    fresh_compat: dict[str, Any], validator: Draft202012Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(fresh_compat)]
    assert errors == []


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
    assert set(schema["required"]) == set(schema["properties"])
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
    assert suite.get("errors") == "1" and suite.get("skipped") == "1"
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
                assert value.startswith(("#", "spec.md")), value
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
    assert rows["12"].attrs["data-status"] == "fail" and rows["5"].attrs["data-status"] == "pass"


def test_html_spec_links_use_the_github_anchor_of_the_requirements_heading(compat: dict[str, Any]) -> None:
    doc = Page(html_report(compat, spec_path=SPEC_PATH))
    links = {a.content: a.attrs["href"] for a in doc.find("a", within="failures-table")}
    assert links["R12.2"] == "spec.md#12-nonce-discipline"
    assert links["R2.14"].startswith("spec.md#2") and links["R2.14"] != "spec.md#"
    coverage = {a.content: a.attrs["href"] for a in doc.find("a", within="coverage")}
    assert coverage["§5"] == "spec.md#5-aead"
    bare = Page(html_report(compat))
    spec_links = [a for a in bare.find("a") if re.fullmatch(r"R\d+\.\d+|§\d+", a.content)]
    assert spec_links and {a.attrs["href"] for a in spec_links} == {"spec.md"}
    rows = [r for r in bare.find("tr", within="coverage") if "data-section" in r.attrs]
    assert {int(r.attrs["data-section"]) for r in rows} == SECTIONS


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
