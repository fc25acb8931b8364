"""docs/spec.md is machine-read (checks and vectors cite it), so its requirement lines have a contract."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

SPEC = (Path(__file__).resolve().parents[1] / "docs" / "spec.md").read_text(encoding="utf-8")
REQ = re.compile(r"^- \*\*(R(\d+)\.(\d+))\*\* (MUST NOT|MUST|SHOULD NOT|SHOULD|MAY): \S", re.M)
SECTIONS = [
    "Actors and flow",
    "The lock endpoint",
    "Request fields and encodings",
    "Key agreement and KDF",
    "AEAD",
    "Hashes",
    "Signatures",
    "Non-streaming responses",
    "Streaming",
    "Errors",
    "Usage",
    "Nonce discipline",
]


def test_every_requirement_line_is_well_formed() -> None:
    starts = [line for line in SPEC.splitlines() if line.startswith("- **R")]
    assert starts and all(REQ.match(line) for line in starts), [line for line in starts if not REQ.match(line)]


def test_requirement_ids_are_unique_and_dense_per_section() -> None:
    by_section: dict[int, list[int]] = defaultdict(list)
    for _, section, number, _level in REQ.findall(SPEC):
        by_section[int(section)].append(int(number))
    for section, numbers in by_section.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"section {section}: {numbers}"


def test_the_numbered_sections_the_foundation_issue_names_exist_in_order() -> None:
    headings = re.findall(r"^## (\d+)\. (.+)$", SPEC, re.M)
    titles = [title for number, title in headings if 1 <= int(number) <= 12]
    assert titles == SECTIONS


def test_upstream_deviations_are_marked_under_the_requirements_they_violate() -> None:
    lines = SPEC.splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith("> **Upstream deviation**")]
    assert len(marks) >= 15
    for i in marks:
        previous = next(line for line in reversed(lines[:i]) if line.strip())
        assert previous.startswith(("- **R", "> ")), f"deviation at line {i + 1} is not under a requirement"


def test_stream_nonce_reuse_and_500_for_client_errors_are_called_out() -> None:
    assert re.search(r"R12\.3\*\* MUST NOT:.*\n> \*\*Upstream deviation\*\* \(W1\)", SPEC)
    assert re.search(r"R10\.2\*\* MUST NOT:.*\n> \*\*Upstream deviation\*\* \(W12\)", SPEC)
