"""The one reader of docs/spec.md.

Checks, vectors, mock faults and reports all cite requirement ids, and each used to find them with its
own regular expression; they disagreed at the edges (a missing level, an indented item) and a malformed
line was silently skipped. Here the format of §0.6 is enforced once: a line that looks like a requirement
but is not one is an error, not an omission. Stdlib only, because the pytest plugin imports it at start-up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, cast

from .resources import spec_text

__all__ = [
    "LEVELS",
    "REQUIREMENT_ID",
    "Heading",
    "Level",
    "Requirement",
    "Spec",
    "SpecError",
    "github_slug",
    "load",
    "parse",
]

Level = Literal["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"]
LEVELS: tuple[Level, ...] = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY")

# ASCII digits only, like the results schema's pattern: ``\d`` would also accept other scripts' digits.
# No anchors: use fullmatch to validate a citation, finditer to find citations in prose.
REQUIREMENT_ID = re.compile(r"R(?P<section>[0-9]+)\.(?P<number>[0-9]+)")

_ITEM = re.compile(
    rf"- \*\*(?P<id>{REQUIREMENT_ID.pattern})\*\* "
    rf"(?P<level>{'|'.join(LEVELS)}): (?P<text>\S.*)"
)
# What an author means as a requirement, however mistyped: a list item opening with a bold R and a digit.
_ITEM_LIKE = re.compile(r"\s*[-*+]\s+\*\*R[0-9]")
_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*")
_SECTION = re.compile(r"([0-9]+)\.\s+(.*)")
_SUBSECTION = re.compile(r"([0-9]+\.[0-9]+)\s")
_FENCE = re.compile(r"\s*(```|~~~)")


class SpecError(ValueError):
    """docs/spec.md breaks its own §0.6; ``line`` is 1-based."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"spec line {line}: {problem}")
        self.line = line


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    section: int
    section_title: str
    subsection: str | None  # "7.3" of the enclosing ``### 7.3 …`` heading, None outside a numbered one
    text: str


@dataclass(frozen=True)
class Heading:
    """A heading outside code fences. Kept because reports link to GitHub's rendering of the spec."""

    depth: int
    title: str
    anchor: str  # GitHub's id, with its -1, -2 suffixes for repeated headings
    section: int | None  # n of a top-level ``## n. Title``
    requirements: tuple[str, ...]  # ids of the items directly under it


@dataclass(frozen=True)
class Spec:
    requirements: Mapping[str, Requirement]  # in file order
    sections: Mapping[int, str]  # every ``## n. Title``, number -> title
    headings: tuple[Heading, ...]

    def in_section(self, number: int) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements.values() if r.section == number)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading (without the -1, -2 suffix of repeated headings): the
    rendered text lowercased, punctuation dropped, spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) renders as text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def parse(text: str) -> Spec:
    """Raises :class:`SpecError` rather than skip a malformed, misplaced, repeated or out-of-sequence
    requirement: a skipped id would make every citation of it look like a typo in the citing code."""
    requirements: dict[str, Requirement] = {}
    sections: dict[int, str] = {}
    headings: list[tuple[int, str, str, int | None, list[str]]] = []
    seen: dict[str, int] = {}  # heading slug -> how many times so far
    count_in: dict[int, int] = {}  # section -> requirements so far
    section: int | None = None
    subsection: str | None = None
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _HEADING.fullmatch(line)
        if heading:
            depth, title = len(heading[1]), heading[2]
            top = _SECTION.fullmatch(title) if depth == 2 else None
            if depth <= 2:
                section, subsection = None, None
                if top:
                    section = int(top[1])
                    if section in sections:
                        raise SpecError(number, f"section {section} appears twice")
                    sections[section] = top[2].strip()
            elif depth == 3:
                sub = _SUBSECTION.match(title)
                subsection = sub[1] if sub else None
            slug = github_slug(title)
            seen[slug] = seen.get(slug, 0) + 1
            anchor = slug if seen[slug] == 1 else f"{slug}-{seen[slug] - 1}"
            headings.append((depth, title, anchor, section if top else None, []))
            continue
        if not _ITEM_LIKE.match(line):
            continue
        item = _ITEM.fullmatch(line.rstrip())
        if item is None:
            raise SpecError(
                number,
                f"malformed requirement {line[:60]!r}: the form is '- **R<s>.<n>** <LEVEL>: <text>' with "
                f"LEVEL one of {', '.join(LEVELS)}",
            )
        rid = item["id"]
        if section is None:
            raise SpecError(number, f"{rid} is outside every '## <s>. Title' section")
        if int(item["section"]) != section:
            raise SpecError(number, f"{rid} is in section {section}, so its id must start with R{section}.")
        expected = count_in.get(section, 0) + 1
        if rid != f"R{section}.{expected}":
            raise SpecError(number, f"{rid} should be R{section}.{expected}: ids count from 1 without gaps or repeats")
        count_in[section] = expected
        level = cast(Level, item["level"])
        requirements[rid] = Requirement(rid, level, section, sections[section], subsection, item["text"])
        headings[-1][4].append(rid)
    return Spec(
        requirements=MappingProxyType(requirements),
        sections=MappingProxyType(sections),
        headings=tuple(Heading(d, t, a, s, tuple(ids)) for d, t, a, s, ids in headings),
    )


@functools.cache
def load() -> Spec:
    """The spec packaged with the suite, which every verdict cites; parsed once per process."""
    return parse(spec_text())
