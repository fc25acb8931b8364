"""docs/spec.md is machine-read (checks and vectors cite it), so its requirement lines have a contract,
which conformance.spec enforces and these tests pin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import spec

SPEC = (Path(__file__).resolve().parents[1] / "docs" / "spec.md").read_text(encoding="utf-8")
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
SMALL = """# Title

## 0. Conventions

Text: **R9.9** in prose is no requirement.

## 1. First

- **R1.1** MUST: one `a`.
- **R1.2** SHOULD NOT: two.

```
- **R1.3** MUST: fenced, not parsed.
## 7. Fenced
```

### 1.1 Sub

- **R1.3** MAY: three.

### Same

- **R1.4** MUST NOT: four.

## 2. Second

### Same

- **R2.1** SHOULD: five.
"""


def test_a_small_spec_parses_into_requirements_sections_and_anchors() -> None:
    parsed = spec.parse(SMALL)
    assert list(parsed.requirements) == ["R1.1", "R1.2", "R1.3", "R1.4", "R2.1"]
    assert parsed.requirements["R1.1"] == spec.Requirement("R1.1", "MUST", 1, "First", None, "one `a`.")
    assert parsed.requirements["R1.2"].level == "SHOULD NOT"
    assert parsed.requirements["R1.3"] == spec.Requirement("R1.3", "MAY", 1, "First", "1.1", "three.")
    assert parsed.requirements["R1.4"].subsection is None  # an unnumbered ### heading
    assert parsed.requirements["R2.1"].section_title == "Second"
    assert parsed.sections == {0: "Conventions", 1: "First", 2: "Second"}
    assert [r.id for r in parsed.in_section(1)] == ["R1.1", "R1.2", "R1.3", "R1.4"]
    anchors = [(h.depth, h.anchor, h.section, h.requirements) for h in parsed.headings]
    assert anchors == [
        (1, "title", None, ()),
        (2, "0-conventions", 0, ()),
        (2, "1-first", 1, ("R1.1", "R1.2")),
        (3, "11-sub", None, ("R1.3",)),
        (3, "same", None, ("R1.4",)),
        (2, "2-second", 2, ()),
        (3, "same-1", None, ("R2.1",)),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("- **R1.1** Must: lowercase level.", "malformed requirement"),
        ("- **R1.1** MUST lacks its colon.", "malformed requirement"),
        ("- **R1.1** MUST:", "malformed requirement"),
        ("- **R1.1**: MUST: level after the colon.", "malformed requirement"),
        ("  - **R1.1** MUST: indented.", "malformed requirement"),
        ("* **R1.1** MUST: another bullet.", "malformed requirement"),
        ("- **R1.1** SHALL: not a BCP 14 level.", "malformed requirement"),
        ("- **R2.1** MUST: in section 1.", "R2.1 is in section 1, so its id must start with R1."),
        ("- **R1.2** MUST: a gap.", "R1.2 should be R1.1: ids count from 1 without gaps or repeats"),
        ("- **R1.01** MUST: a padded number.", "R1.01 should be R1.1"),
    ],
)
def test_a_bad_requirement_line_is_an_error_naming_its_line(line: str, problem: str) -> None:
    with pytest.raises(spec.SpecError, match=re.escape(f"spec line 3: {problem}")) as raised:
        spec.parse(f"## 1. A\n\n{line}\n")
    assert raised.value.line == 3
    if problem == "malformed requirement":
        assert "'- **R<s>.<n>** <LEVEL>: <text>'" in str(raised.value) and "SHOULD NOT" in str(raised.value)


def test_repeated_and_homeless_requirements_are_errors() -> None:
    with pytest.raises(spec.SpecError, match=r"line 3: R1\.1 should be R1\.2"):
        spec.parse("## 1. A\n- **R1.1** MUST: x\n- **R1.1** MUST: y\n")
    with pytest.raises(spec.SpecError, match=r"line 1: R1\.1 is outside every '## <s>\. Title' section"):
        spec.parse("- **R1.1** MUST: before any section\n")
    with pytest.raises(spec.SpecError, match=r"line 2: section 1 appears twice"):
        spec.parse("## 1. A\n## 1. B\n")


def test_every_requirement_line_of_the_spec_parses() -> None:
    parsed = spec.parse(SPEC)
    starts = [line for line in SPEC.splitlines() if line.startswith("- **R")]
    assert len(starts) > 100 and list(parsed.requirements) == [line.split("**")[1] for line in starts]
    for rid, requirement in parsed.requirements.items():
        assert spec.REQUIREMENT_ID.fullmatch(rid) and requirement.level in spec.LEVELS, rid
        assert len(requirement.text) > 20 and requirement.section_title == parsed.sections[requirement.section], rid
        assert requirement.subsection is None or requirement.subsection.startswith(f"{requirement.section}."), rid
    assert parsed.requirements["R7.10"].subsection == "7.3" and parsed.requirements["R5.1"].subsection is None


def test_requirement_ids_are_dense_per_section_in_sections_1_to_13_and_15() -> None:
    parsed = spec.parse(SPEC)
    sections = {*range(1, 14), 15}  # §14 lists the upstream deviations and holds no requirement
    assert {r.section for r in parsed.requirements.values()} == sections
    for section in sorted(sections):
        ids = [r.id for r in parsed.in_section(section)]
        assert ids == [f"R{section}.{n}" for n in range(1, len(ids) + 1)], section


def test_the_numbered_sections_the_foundation_issue_names_exist_in_order() -> None:
    titles = [title for number, title in spec.parse(SPEC).sections.items() if 1 <= number <= 12]
    assert titles == SECTIONS


def test_load_is_the_packaged_spec_parsed_once_and_read_only() -> None:
    assert spec.load() is spec.load() and spec.load() == spec.parse(SPEC)
    with pytest.raises(TypeError):
        spec.load().requirements["R99.1"] = spec.load().requirements["R1.1"]  # type: ignore[index]


def test_requirement_id_is_ascii_and_whole() -> None:
    assert spec.REQUIREMENT_ID.fullmatch("R12.2") and not spec.REQUIREMENT_ID.fullmatch("R12")
    assert not spec.REQUIREMENT_ID.fullmatch("R\u0661.\u0662")  # Arabic-Indic digits
    assert [m[0] for m in spec.REQUIREMENT_ID.finditer("R3.4–R3.10, R10.3")] == ["R3.4", "R3.10", "R10.3"]


def test_importing_it_pulls_in_nothing_outside_the_stdlib() -> None:
    """The pytest plugin imports it at start-up, before any test is collected."""
    code = (
        "import sys; before = set(sys.modules); import conformance.spec; "
        "print(sorted(m for m in set(sys.modules) - before if m.partition('.')[0] not in sys.stdlib_module_names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(["conformance", "conformance.exits", "conformance.resources", "conformance.spec"])


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
