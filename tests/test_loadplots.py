"""The ``load`` object of a load run (issue 17): its JSON Schema, its ``#load`` section with inline SVG
plots, its block of summary.md, and the verdict a load run's reports lead with.

The load objects are built here, the way ``atoma-conformance load`` writes them, so that these tests
need no Locust run; the results document around them is ``Results.to_json()`` of a run with no checks.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conformance.report import loadplots
from conformance.report.render import html_report, junit_xml, markdown_summary
from conformance.results import Results
from tests import test_render as rendering
from tests.test_render import SCHEMA_PATH, SPEC_PATH, Page

HOSTILE = "<script>alert(1)</script>\"'&\x1b[2J"
SVG = re.compile(r"<svg\b.*?</svg>", re.S)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _point(t: int, users: int) -> dict[str, Any]:
    quiet = t % 97 == 0  # a second in which no request completed
    wave = 1 + 0.3 * math.sin(t / 60)
    return {
        "t": float(t),
        "users": users,
        "rps": 0.0 if quiet else round(40 * wave, 2),
        "p50_ms": None if quiet else round(30 * wave, 2),
        "p90_ms": None if quiet else round(70 * wave, 2),
        "p99_ms": None if quiet else round(180 * wave + (900 if t == 1234 else 0), 2),
        "errors": 3 if t % 301 == 0 else 0,
        "findings": 1 if t % 600 == 5 else 0,
    }


def make_load(seconds: int = 3600, *, findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A one-hour distributed run against the embedded mock, as conformance.load writes it."""
    endpoints = [
        ("lock", 1200, 0, 0.33, 2.1, 4.0, 9.5, 31.0),
        ("chat", 80000, 12, 22.2, 31.0, 72.5, 190.4, 1240.0),
        ("chat-stream", 40000, 3, 11.1, 55.0, 120.0, 310.0, 2210.0),
        ("completions", 20000, 0, 5.55, 28.0, 66.0, 171.0, 900.0),
        ("embeddings", 6789, 0, 1.89, 12.0, 20.0, 44.0, 120.0),
    ]
    return {
        "mode": "distributed",
        "workers": 4,
        "users": 50,
        "spawn_rate": 5.0,
        "duration_s": float(seconds),
        "elapsed_s": float(seconds) + 0.4,
        "mix": {"chat": 4, "stream": 2, "completions": 1, "embeddings": 1},
        "max_requests": None,
        "stopped_by": "duration",
        "requests": 147989,
        "exchanges": 146774,
        "cut_off": 15,
        "rps": 41.1,
        "endpoints": [
            dict(zip(("name", "requests", "failures", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"), e, strict=True))
            for e in endpoints
        ],
        "errors": [
            {"class": "http-5xx", "count": 12, "example": "HTTP 503 from /v1/chat/completions"},
            {"class": "timeout", "count": 3, "example": "read timeout after 30 s"},
        ],
        "findings": findings
        if findings is not None
        else [
            {
                "check_id": "STREAM-004",
                "level": "SHOULD",
                "count": 6,
                "examples": ["event without a trailing blank line"],
            },
            {"check_id": "SIG-005", "level": "INFO", "count": 2, "examples": ["signer changed between answers"]},
        ],
        "nonce_audit": {
            "messages": 293548,
            "keys": 1200,
            "within_key_reuses": 0,
            "cross_key_repeats": 0,
            "cross_worker_repeats": 0,
            "index_capacity": 1048576,
            "index_generations": 1,
        },
        "signers": {"distinct": 1, "addresses": ["0x" + "ab" * 32]},
        "series": [_point(t, min(50, 1 + t * 5)) for t in range(1, seconds + 1)],
        "server_rss_mb": [{"t": float(t), "rss_mb": 80 + t / 100} for t in range(0, seconds + 1, 5)],
    }


def load_doc(load: Any) -> dict[str, Any]:
    """A complete results.json of a load run: no checks, the usual members, and ``load``."""
    target = {
        "url": "http://127.0.0.1:8080",
        "embedded": True,
        "profile": "strict",
        "model": "mock-model",
        "node_address": None,
        "node_public_key": "cVI+4eP5fwTRGvs3Ozlp1Qmj8saSXcSToixsxS/zBC4=",
        "signer_address": "0x" + "ab" * 32,
        "signature_scheme": "ed25519",
        "detected_profile": "strict",
    }
    audit = {"observations": 293548, "keys": 1200, "reuses": 0, "max_per_key": 300, "budget_fraction": 7e-8}
    doc = Results(target, [], audit, 1795670098.8, 3600.4, 147989).to_json()
    return {**doc, "load": load}


def _svgs(source: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed as XML: a malformed one raises."""
    return [ET.fromstring(match) for match in SVG.findall(source)]


def _points_per_line(svg: ET.Element) -> list[int]:
    return [len(re.findall(r"[ML]", p.get("d", ""))) for p in svg.iter("path")]


# --- the schema ----------------------------------------------------------------------------------------


def test_a_realistic_load_run_validates(validator: Draft202012Validator) -> None:
    doc = load_doc(make_load())
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == []
    short = make_load(5)
    short.update(server_rss_mb=None, duration_s=None, max_requests=500, stopped_by="max-requests", mix={"chat": 1})
    assert validator.is_valid(load_doc(short))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("unexpected",), 1),
        (("mode",), "cluster"),
        (("workers",), 0),
        (("spawn_rate",), 0),
        (("mix", "video"), 1),
        (("mix", "chat"), -1),
        (("stopped_by",), "boredom"),
        (("rps",), "fast"),
        (("endpoints", 0, "name"), "<script>"),
        (("endpoints", 0, "extra"), 1),
        (("errors", 0, "example"), "x" * 201),
        (("findings", 0, "level"), "CRITICAL"),
        (("findings", 0, "check_id"), "<script>alert(1)</script>"),
        (("findings", 0, "examples"), ["e"] * 6),
        (("nonce_audit", "within_key_reuses"), -1),
        (("signers", "addresses"), ["0x"] * 17),
        (("series", 0, "p99_ms"), "slow"),
        (("server_rss_mb",), {"t": 1}),
    ],
)
def test_the_schema_refuses_a_malformed_load(
    validator: Draft202012Validator, path: tuple[str | int, ...], value: Any
) -> None:
    doc = load_doc(make_load(10))
    node: Any = doc["load"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert not validator.is_valid(doc)


@pytest.mark.parametrize("member", ["series", "findings", "nonce_audit", "server_rss_mb", "exchanges"])
def test_every_member_of_load_is_required(validator: Draft202012Validator, member: str) -> None:
    doc = load_doc(make_load(10))
    del doc["load"][member]
    assert not validator.is_valid(doc)


# --- the section ---------------------------------------------------------------------------------------


def test_the_section_shows_the_numbers_and_four_well_formed_plots() -> None:
    load = make_load()
    source = loadplots.load_section(load)
    page = Page(source)
    section = page.by_id("load")
    text = section.content
    assert "147989" in text and "146774" in text and "41.1" in text  # requests, exchanges, req/s
    (chat,) = [e for e in page.find("tr") if e.attrs.get("data-endpoint") == "chat"]
    assert "190" in chat.content and "80000" in chat.content  # its p99 and its requests
    assert "STREAM-004" in page.by_id("load-findings").content
    assert "293548" in page.by_id("load-nonce-audit").content
    svgs = _svgs(source)
    assert [s.get("id") for s in svgs] == ["load-plot-rps", "load-plot-latency", "load-plot-errors", "load-plot-rss"]
    for svg in svgs:
        assert svg.get("role") == "img" and svg.get("aria-label") and svg.findtext("title")
        assert len(svg.findall(".//text")) > 10  # ticks on both axes, axis titles, a legend
        assert all(n <= loadplots.MAX_PLOT_POINTS for n in _points_per_line(svg))  # an hour, downsampled
    latency = svgs[1]
    spike = max(p["p99_ms"] for p in load["series"] if p["p99_ms"] is not None)  # t = 1234 s, one second
    assert spike > 1000 and f"p99 at most {spike:.0f} ms" in (latency.get("aria-label") or "")  # max per bucket
    assert "p99 (max)" in "".join(latency.itertext())  # downsampled: the legend says how
    assert not re.search(r"\sstyle\s*=", source) and "<script" not in source


def test_a_five_second_run_draws_its_points_and_its_gaps() -> None:
    load = make_load(5)
    load["series"][2].update(p50_ms=None, p90_ms=None, p99_ms=None)  # nothing completed in the third second
    load["server_rss_mb"] = None
    source = loadplots.load_section(load)
    svgs = _svgs(source)
    assert [s.get("id") for s in svgs] == ["load-plot-rps", "load-plot-latency", "load-plot-errors"]
    assert "not measured" in Page(source).by_id("load").content
    rps = svgs[0]
    assert _points_per_line(rps)[0] == 5
    latency = svgs[1]
    assert {p.get("d", "").count("M") for p in latency.iter("path")} == {2}  # the gap breaks each line in two
    assert "5 s" in "".join(rps.itertext())


def _hostile_load() -> dict[str, Any]:
    load = make_load(10)
    long = HOSTILE * 2000
    load.update(
        mode=HOSTILE,
        users=math.inf,
        rps="fast",
        elapsed_s=math.nan,
        requests=-5,
        exchanges=True,
        mix=["chat"],
        stopped_by={"why": HOSTILE},
        nonce_audit=HOSTILE,
        server_rss_mb={"t": 1},
        signers={"distinct": "many", "addresses": [HOSTILE, 7, long] * 40},
        errors=[{"class": HOSTILE, "count": 10**30, "example": long}] * 5000,
        findings=[{"check_id": HOSTILE, "level": HOSTILE, "count": "x", "examples": [long] * 50}] * 5000,
    )
    load["endpoints"] = [{"name": long, "requests": 1.5, "p99_ms": -1}, "garbage", None] * 20
    load["series"] = [
        {"t": t, "users": "u", "rps": math.inf if t % 7 else t, "p99_ms": 1e300, "errors": -1} for t in range(10**6)
    ] + ["junk", {"t": "late"}, {"t": math.nan}]
    del load["cut_off"]
    return load


def test_a_hostile_load_renders_bounded_and_escaped() -> None:
    load = _hostile_load()
    source = loadplots.load_section(load)
    assert len(source.encode("utf-8")) < 400_000
    assert "<script" not in source and "\x1b" not in source and "&lt;script&gt;" in source
    assert not re.search(r"\sstyle\s*=", source)
    page = Page(source)
    assert "n/a" in page.by_id("load").content
    assert "more findings in results.json" in source
    assert "past the first 100000 are not plotted" in source
    assert len(_svgs(source)) == 3  # no RSS plot from an object that is not a list of samples
    damaged: list[Any] = [{}, {"series": "x", "endpoints": {}, "findings": None}, "not an object", None, 42]
    for broken in damaged:
        Page(loadplots.load_section(broken))  # never raises, always well-formed
        loadplots.markdown_block(broken)
    verdicts = {loadplots.verdict(b)[1] for b in (load, {}, "x", {"exchanges": 3, "findings": "x"})}
    assert verdicts == {loadplots.NOT_RUN}


# --- the whole report ----------------------------------------------------------------------------------


def test_the_html_report_of_a_load_run_is_self_contained() -> None:
    doc = load_doc(make_load())
    source = html_report(doc, spec_path=SPEC_PATH)
    page = Page(source)
    rendering.test_html_is_self_contained((doc, source, page))  # the CSP and no-external-reference checks
    sections = [e.attrs["id"] for e in page.find("section")]
    assert sections[:2] == ["verdict", "load"]
    assert "failures" not in sections and "coverage" not in sections  # no checks: nothing to list
    (csp,) = [m.attrs["content"] for m in page.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    (style,) = re.findall(r"<style>(.*?)</style>", source, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    assert f"style-src 'sha256-{digest}'" in csp and "svg.plot" in style  # the plot CSS is in the hashed block
    assert not re.search(r"\sstyle\s*=", source)
    assert len(_svgs(source)) == 4
    assert len(source.encode("utf-8")) < 2 * 1024 * 1024


def test_the_summary_of_a_load_run_shows_the_load_numbers() -> None:
    doc = load_doc(make_load())
    text = markdown_summary(doc)
    assert "### Load run" in text and "**147989 requests**" in text and "**41.1 req/s**" in text
    row = next(line for line in text.splitlines() if line.startswith("| chat-stream |"))
    assert row.split("|")[-2].strip() == "310"  # its p99
    assert re.search(r"^\| STREAM-004 \| SHOULD \| 6 \|", text, re.M)
    assert "within\\_key\\_reuses 0" in text and "messages 293548" in text
    assert "### Failing checks" not in text and "| Level | Certification" not in text
    hostile = markdown_summary(load_doc(_hostile_load()))
    assert "<script" not in hostile and "\x1b" not in hostile
    assert len(hostile.encode("utf-8")) < 400_000


# --- the verdict ---------------------------------------------------------------------------------------

MUST_FINDING = {"check_id": "NONCE-003", "level": "MUST", "count": 4, "examples": ["nonce reused under one key"]}


def _headline(doc: dict[str, Any]) -> tuple[str, str]:
    page = Page(html_report(doc, spec_path=SPEC_PATH))
    verdict_line = next(line for line in markdown_summary(doc).splitlines() if line.startswith("**Verdict:"))
    return page.by_id("banner").content, page.by_id("verdict").content + "\n" + verdict_line


def test_a_load_run_without_a_must_finding_passes_and_says_how_much_was_judged() -> None:
    banner, text = _headline(load_doc(make_load(10)))
    assert banner == "PASS"
    assert "no MUST finding in 146774 judged exchanges" in text
    assert "6 SHOULD finding(s)" in text and "15 answer(s) cut off and not judged" in text


def test_a_must_finding_fails_the_load_run_whatever_the_empty_checks_say() -> None:
    doc = load_doc(make_load(10, findings=[copy.deepcopy(MUST_FINDING)]))
    assert doc["certification"]["MUST"] == "pass" and doc["checks"] == []
    banner, text = _headline(doc)
    assert banner == "FAIL" and "4 MUST finding(s) under load (NONCE-003)" in text
    assert markdown_summary(doc).startswith("## ❌ atoma-conformance: FAIL")
    assert b'name="verdict" value="FAIL"' in junit_xml(doc)


def test_a_load_run_that_judged_nothing_is_not_run() -> None:
    load = make_load(10)
    load.update(exchanges=0, findings=[])
    banner, text = _headline(load_doc(load))
    assert banner == "NOT RUN" and "nothing was judged" in text and "PASS" not in text
    assert markdown_summary(load_doc(load)).startswith("## ⚠️ atoma-conformance: NOT RUN")
    load["findings"] = [MUST_FINDING]  # a finding in an answer cut short of an exchange still fails
    assert _headline(load_doc(load))[0] == "FAIL"
