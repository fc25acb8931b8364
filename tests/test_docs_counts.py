"""Every count the README and docs/*.md state is checked against the code it counts.

Why: counts in prose drift silently (the README said 35 faults and 95 checks long after there were 42
and 103). docs/checks.md and docs/faults.md are generated and tested elsewhere; every other count is
listed here, derived from the catalogue it names, and any new "<number> checks/faults/…" phrase that no
rule covers fails too, so that a count cannot be added without a check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from conformance.checks import CATALOGUE
from conformance.clients.checks import SCENARIOS as CLIENT_SCENARIOS
from conformance.fuzz.campaign import CAMPAIGN_MUTATIONS
from conformance.strategies import _FAMILY_LIST
from conformance.vectors import default_dir, load
from conformance.vectors.generate import BUILDERS
from mock_node.faults import CATALOGUE as FAULTS

ROOT = Path(__file__).resolve().parents[1]
# Generated from the code and compared byte for byte by their own tests; the spec is normative text.
EXEMPT = {"docs/checks.md", "docs/faults.md", "docs/client-matrix.md", "docs/spec.md"}
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
COUNTED = re.compile(
    r"(?<![\w-])(\d+) (?:[\w()`-]+,? ){0,2}(faults?|checks?|scenarios?|famil(?:y|ies)|vectors?|mutations?|"
    r"requirements?|adapters?)\b"
)


def _node_face_only() -> list[str]:
    """Checks that probe a scenario existing only on the node face: a proxy-face run skips them."""
    return [c.id for c in CATALOGUE if any(p.face == "node" for p in c.reads)]


@dataclass(frozen=True)
class Rule:
    docs: tuple[str, ...]
    pattern: str  # group 1 is the number
    expected: Callable[[], int]
    what: str


CHECKS = "checks in conformance.checks.CATALOGUE"
NAMED_FAULTS = "faults in mock_node/faults.py"
FAMILIES = "mutation families of conformance.strategies.mutations()"
RULES = (
    Rule(("README.md",), r"runs the (\d+) proxy-face checks", lambda: len(CATALOGUE) - len(_node_face_only()),
         "checks a proxy-face run evaluates (the catalogue minus the node-face-only checks)"),
    Rule(("README.md",), r"proxy-face checks \(of (\d+);", lambda: len(CATALOGUE), CHECKS),
    Rule(("README.md",), r"the (\d+) node-face checks skip", lambda: len(_node_face_only()),
         "checks that probe only the node face (Probe.face)"),
    Rule(("README.md",), r"\((\d+) checks as data", lambda: len(CATALOGUE), CHECKS),
    Rule(("README.md",), r"(\d+) named(?:, deterministic)? faults", lambda: len(FAULTS), NAMED_FAULTS),
    Rule(("docs/mock-node.md",), r"lists the (\d+) faults", lambda: len(FAULTS), NAMED_FAULTS),
    Rule(("README.md",), r"(\d+) labelled mutation families", lambda: len(_FAMILY_LIST), FAMILIES),
    Rule(("docs/fuzzing.md",), r"\(`mutations\(\)`\), (\d+) families", lambda: len(_FAMILY_LIST), FAMILIES),
    Rule(("docs/fuzzing.md",), r"has (\d+) families × 4 modes", lambda: len(_FAMILY_LIST) + len(CAMPAIGN_MUTATIONS),
         "sweep families: conformance.strategies.MUTATION_FAMILIES plus the campaign's own mutations"),
    Rule(("README.md",), r"(\d+) scenarios from the fault catalogue", lambda: len(CLIENT_SCENARIOS),
         "client scenarios in conformance.clients.checks.SCENARIOS"),
)  # fmt: skip


@cache
def _text(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def _line(doc: str, offset: int) -> int:
    return _text(doc).count("\n", 0, offset) + 1


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.docs[0]}:{r.pattern}" for r in RULES])
def test_each_stated_count_matches_the_code(rule: Rule) -> None:
    expected = rule.expected()
    for doc in rule.docs:
        found = list(re.finditer(rule.pattern, _text(doc)))
        assert found, f"{doc}: no sentence matches {rule.pattern!r} any more; update the rule with the wording"
        wrong = [f"{doc}:{_line(doc, m.start())}: says {m.group(1)}" for m in found if int(m.group(1)) != expected]
        assert not wrong, f"{'; '.join(wrong)}, but there are {expected} {rule.what}"


def test_the_node_face_only_checks_are_the_node_checks_and_the_node_key() -> None:
    """The README names the skipped checks "the node-face checks": the NODE checks, and KEY-011 (a node
    serves under its committed key), the one KEY check that needs a node's own face."""
    assert _node_face_only() == [*(c.id for c in CATALOGUE if c.category == "NODE"), "KEY-011"]


@pytest.mark.parametrize("doc", [d for d in DOCS if d not in EXEMPT])
def test_no_count_in_the_docs_escapes_the_rules(doc: str) -> None:
    """A new "<n> checks/faults/scenarios/…" phrase needs a rule above, or it will drift unnoticed."""
    covered = [m.span(1) for rule in RULES if doc in rule.docs for m in re.finditer(rule.pattern, _text(doc))]
    loose = [
        f"{doc}:{_line(doc, m.start())}: {m.group(0)!r}"
        for m in COUNTED.finditer(_text(doc))
        if m.span(1) not in covered
    ]
    assert not loose, "counts no test checks (add a rule to tests/test_docs_counts.py): " + "; ".join(loose)


def test_the_readme_vector_table_matches_the_vector_files() -> None:
    """The README's table of vector files: one row per generated file, each with its number of tests."""
    rows = dict(re.findall(r"^\| `([\w.]+\.json)` \| (\d+) \|", _text("README.md"), re.M))
    actual = {name: sum(len(group["tests"]) for group in load(default_dir() / name)["testGroups"]) for name in BUILDERS}
    assert list(rows) == list(actual), "README.md's vector table must list the generator's files, in order"
    wrong = {name: (int(rows[name]), count) for name, count in actual.items() if int(rows[name]) != count}
    assert not wrong, "README.md vector table (stated, actual): " + ", ".join(f"{n} {w}" for n, w in wrong.items())
