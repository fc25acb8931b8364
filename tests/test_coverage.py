"""Requirement coverage (conformance/coverage.py): every MUST and SHOULD requirement is tested or has a
written reason it cannot be, every gap is named here, and docs/coverage.md and the HTML report show it.

The two sets below are exact on purpose. A new check that closes a gap, or a new fault that proves a check,
fails this file until the set shrinks; a requirement added to the spec without a check fails it until it
is either tested or listed. Neither can change silently.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance import __version__
from conformance.checks import CATALOGUE
from conformance.clients.checks import CLIENT_CHECKS
from conformance.coverage import NOT_TESTABLE, Coverage, Duty, build, duties, main, render_markdown
from conformance.report.render import html_report
from conformance.spec import load
from mock_node.faults import CATALOGUE as FAULTS
from tests.test_render import Page

ROOT = Path(__file__).resolve().parents[1]

# Gaps for issue 16: MUST and SHOULD duties the suite could test but no check cites yet, as
# "<requirement> <duty>" (node: a node's or proxy's duty, tested by a catalogue check; client: a client's,
# tested by a CLIENT check). Remove an entry when a check starts citing the requirement.
UNCOVERED_YET = {
    # The proxy's hop: observable with the suite's mock node behind the proxy under test.
    "R1.2 node",  # the forwarded envelope is unchanged
    "R1.3 node",  # the response envelope is passed through unchanged
    "R1.4 node",  # Authorization is stripped
    "R1.6 node",  # X-Request-Id is a fresh UUIDv4
    "R7.9 node",  # response signatures and the signer's address are checked
    "R7.10 node",  # X-Signature is set over plaintext_body_hash
    "R8.11 node",  # a bad response_hash or signature from the node is answered 502
    "R9.14 node",  # the node's SSE is parsed whatever the read boundaries
    "R9.15 node",  # every chunk is forwarded, completions included (W13)
    "R10.4 node",  # a node's 4xx is relayed as a 4xx (W12)
    # Observable on the node face over plain HTTP/1.1 (chunk boundaries), not yet probed.
    "R9.10 node",  # one event per HTTP chunk (W27)
    # A client's side of the shared primitives, and the client duties no scenario serves yet.
    "R4.1 client",
    "R4.3 client",  # a low-order lock key gets nothing encrypted (the lock-low-order-key fault exists)
    "R4.4 client",
    "R5.1 client",
    "R5.2 client",
    "R5.3 client",
    "R5.4 client",
    "R5.5 client",
    "R6.1 client",
    "R6.4 client",  # the verifier hashes the bytes, not a re-serialization
    "R7.2 client",  # unknown signature flags are refused
    "R7.3 client",
    "R7.5 client",  # high-s ECDSA is refused (the malleated-signature fault exists)
    "R7.6 client",
    "R12.1 client",
    "R12.5 client",
    "R13.9 client",  # a non-200 or wrong Content-Type answer is an error
}

# Node and proxy checks that no mock fault proves can fail (Fault.caught_by). Faults are being added in
# parallel: remove a check from this set when a fault that catches it lands.
NO_FAULT_YET = {"LOCK-012", "SIG-008", "NONCE-006"}


@pytest.fixture(scope="module")
def coverage() -> Coverage:
    return build()


def _diff(actual: set[str], expected: set[str], gone: str, new: str) -> str:
    return f"{gone}: {sorted(expected - actual)}; {new}: {sorted(actual - expected)}"


# --- (a) every MUST and SHOULD is covered, has a reason, or is a named gap --------------------------------


def test_every_must_and_should_duty_is_covered_has_a_reason_or_is_a_named_gap(coverage: Coverage) -> None:
    uncovered = coverage.uncovered()
    assert uncovered == UNCOVERED_YET, _diff(
        uncovered,
        UNCOVERED_YET,
        "now covered, remove from UNCOVERED_YET",
        "new gaps: add a check, or a reason to conformance.coverage.NOT_TESTABLE if no black-box test can decide it",
    )


def test_the_matrix_holds_every_requirement_and_every_citation(coverage: Coverage) -> None:
    spec = load()
    assert [row.id for row in coverage.rows] == list(spec.requirements)
    rows = {row.id: row for row in coverage.rows}
    for check in CATALOGUE:
        assert all(check.id in rows[ref].node_checks for ref in check.spec), check.id
    for client_check in CLIENT_CHECKS:
        assert all(client_check.id in rows[ref].client_checks for ref in client_check.spec), client_check.id
    for fault in FAULTS:
        assert all(fault.name in rows[ref].violated_by for ref in fault.violates), fault.name
    listed = {(c, row.id) for row in coverage.rows for c in (*row.node_checks, *row.client_checks)}
    citations = {(c.id, ref) for c in CATALOGUE for ref in c.spec} | {
        (c.id, ref) for c in CLIENT_CHECKS for ref in c.spec
    }
    assert listed == citations  # and nothing else


def test_a_fault_proves_the_requirements_of_the_checks_it_makes_fail(coverage: Coverage) -> None:
    rows = {row.id: row for row in coverage.rows}
    # stream-nonce-reuse makes NONCE-003 fail, which cites R12.2 and R12.3
    assert "stream-nonce-reuse" in rows["R12.2"].proven_by and "stream-nonce-reuse" in rows["R12.3"].violated_by
    proofs = {c.id: c.faults for c in coverage.checks}
    assert "stream-nonce-reuse" in proofs["NONCE-003"]
    for fault in FAULTS:
        for check_id in fault.caught_by:
            assert fault.name in proofs[check_id]


def test_vectors_are_listed_by_file_and_kind(coverage: Coverage) -> None:
    rows = {row.id: row for row in coverage.rows}
    assert "blake2b" in rows["R6.1"].vector_kinds
    assert dict(rows["R6.1"].vector_files)["blake2b_256.json"] > 0
    assert rows["R1.2"].vector_files == () and rows["R1.2"].vector_kinds == ()


def test_duties_are_read_off_the_requirement_text() -> None:
    spec = load().requirements
    assert duties(spec["R3.6"]) == ("node",)  # "A node refuses …"
    assert duties(spec["R4.3"]) == ("client",)  # "A client refuses …", outside §13
    assert duties(spec["R11.6"]) == ("client",)
    assert duties(spec["R4.1"]) == ("node", "client")  # "A node and a client …"
    assert duties(spec["R7.2"]) == ("node", "client")  # "A verifier (node, proxy or client) …"
    assert duties(spec["R5.5"]) == ("node", "client")  # "… and a client that cannot decrypt …"
    assert duties(spec["R7.14"]) == ("node",)  # its "Why:" mentions a client-chosen value: no client actor
    assert duties(spec["R1.4"]) == ("node",)  # "the client's Authorization header": not an actor
    assert all(duties(r) == ("client",) for r in spec.values() if r.section == 13)


def test_a_duty_is_covered_only_by_its_own_kind_of_check(coverage: Coverage) -> None:
    rows = {row.id: row for row in coverage.rows}
    assert rows["R3.6"].node_checks == ("ERR-024",) and rows["R3.6"].status() == "covered"  # the member table
    # Before the member table only CLIENT-005 (the client's own salt) cited R3.6, a node's duty: uncovered.
    salt = replace(rows["R3.6"], node_checks=())
    assert salt.client_checks and salt.status() == "uncovered"
    shared = rows["R5.1"]
    assert shared.node_checks and not shared.client_checks
    assert (shared.status("node"), shared.status("client"), shared.status()) == ("covered", "uncovered", "uncovered")
    assert shared.gaps() == ("client",)
    both = replace(shared, client_checks=("CLIENT-020",))
    assert both.status() == "covered" and both.gaps() == ()
    excused = replace(shared, reason="cannot be decided")
    assert excused.status() == "by reason" and excused.gaps() == ()


def test_the_tallies_count_must_and_should_requirements_by_population(coverage: Coverage) -> None:
    certifying = [row for row in coverage.rows if row.requirement.level != "MAY"]
    assert sum(coverage.tally().values()) == len(certifying)
    assert sum(coverage.tally("client").values()) == sum(1 for r in certifying if "client" in r.duties)
    assert sum(coverage.tally("node").values()) == sum(1 for r in certifying if "node" in r.duties)
    assert coverage.tally("node")["uncovered"] == sum(1 for g in UNCOVERED_YET if g.endswith(" node"))
    assert coverage.tally("client")["uncovered"] == sum(1 for g in UNCOVERED_YET if g.endswith(" client"))


# --- (b) the reasons --------------------------------------------------------------------------------------


def test_every_reason_names_a_real_requirement_that_no_check_covers(coverage: Coverage) -> None:
    spec = load().requirements
    assert set(NOT_TESTABLE) <= set(spec), set(NOT_TESTABLE) - set(spec)
    assert coverage.stale_reasons() == [], "a check cites these now: remove their reason from NOT_TESTABLE"
    assert all(len(reason) > 40 for reason in NOT_TESTABLE.values())


def test_a_reason_beside_a_citing_check_is_found_stale(coverage: Coverage) -> None:
    (cited,) = [row for row in coverage.rows if row.id == "R12.2"]
    assert cited.node_checks
    stale = Coverage((replace(cited, reason="cannot be decided"),), (), {})
    assert stale.stale_reasons() == ["R12.2"]
    assert stale.rows[0].status() == "covered"  # a check wins over a leftover reason


# --- (c) checks no fault proves ----------------------------------------------------------------------------


def test_the_checks_no_fault_proves_are_exactly_the_known_ones(coverage: Coverage) -> None:
    unproven = coverage.unproven()
    assert unproven == NO_FAULT_YET, _diff(
        unproven,
        NO_FAULT_YET,
        "a fault proves these now, remove from NO_FAULT_YET",
        "new checks without a proving fault: add a mock fault that catches them",
    )
    assert {c.id for c in coverage.checks} == {c.id for c in CATALOGUE}


# --- (d) docs/coverage.md -----------------------------------------------------------------------------------


def test_docs_coverage_md_is_generated_from_the_matrix(coverage: Coverage) -> None:
    text = render_markdown(coverage)
    assert (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8") == text, (
        "docs/coverage.md is stale: python -m conformance.coverage > docs/coverage.md"
    )
    node = coverage.tally("node")
    assert f"| binding a node or proxy | {node['covered']} | {node['by reason']} | {node['uncovered']} |" in text
    assert "| [R7.14](spec.md#73-the-x-signature-header-node-face) | SHOULD | node/proxy |" in text
    assert "**uncovered** (client)" in text  # a shared requirement missing one duty says which
    for rid, reason in NOT_TESTABLE.items():
        assert f"| by reason | {reason} |" in text, rid


def test_the_module_prints_the_doc_and_refuses_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render_markdown()
    assert main(["--format", "html"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "takes no arguments" in out.err


# --- (e) the HTML report --------------------------------------------------------------------------------------


def _results(version: str) -> dict[str, object]:
    check = next(c for c in CATALOGUE if c.id == "NONCE-003")
    return {
        "suite_version": version,
        "checks": [
            {
                "id": check.id,
                "level": check.level,
                "category": check.category,
                "outcome": "pass",
                "title": check.title,
                "reason": "ok",
                "spec": list(check.spec),
            }
        ],
    }


def test_the_html_report_shows_the_suites_requirement_coverage(coverage: Coverage) -> None:
    page = Page(html_report(_results(__version__)))
    assert "made by version" not in page.by_id("requirement-coverage").content
    populations: tuple[tuple[str, Duty | None], ...] = (("node", "node"), ("client", "client"), ("all", None))
    totals = {r.attrs["data-population"]: r for r in page.find("tr") if "data-population" in r.attrs}
    assert set(totals) == {p for p, _ in populations} and all(r.within("requirement-coverage") for r in totals.values())
    for population, duty in populations:
        cells = [
            c for c in page.find("td") if "data-status" in c.attrs and any(a is totals[population] for a in c.ancestors)
        ]
        tally = coverage.tally(duty)
        assert {c.attrs["data-status"]: int(c.content) for c in cells} == tally
    rows = {
        r.attrs["data-requirement"]: r
        for r in page.find("tr", within="requirement-matrix")
        if "data-requirement" in r.attrs
    }
    assert list(rows) == [row.id for row in coverage.rows]
    for row in coverage.rows:
        assert rows[row.id].attrs["data-status"] == row.status()
        assert ("gap" in rows[row.id].attrs.get("class", "")) == (row.status() == "uncovered")
    assert NOT_TESTABLE["R7.14"] in rows["R7.14"].content
    assert "uncovered (client)" in rows["R5.1"].content
    gaps = page.by_id("requirement-gaps").content
    assert all(gap in gaps for gap in UNCOVERED_YET)
    unproven = page.by_id("unproven-checks").content
    assert all(check_id in unproven for check_id in NO_FAULT_YET)
    # A check of this run links to its row; one the run did not hold is named, not linked.
    links = {a.content: a.attrs["href"] for a in page.find("a", within="requirement-matrix")}
    assert links["NONCE-003"] == "#check-NONCE-003" and "NONCE-001" not in links
    assert "NONCE-001" in rows["R12.4"].content
    assert links["R12.2"] == "#req-R12.2"
    for href in {a.attrs["href"] for a in page.find("a", within="requirement-coverage")}:
        page.by_id(href[1:])  # every link lands in the page


def test_the_html_report_says_when_the_run_was_made_by_another_version() -> None:
    section = Page(html_report(_results("0.0.1<b>"))).by_id("requirement-coverage").content
    assert "This run was made by version 0.0.1<b>" in section  # escaped text, not markup
    assert f"What atoma-conformance {__version__} can test" in section
