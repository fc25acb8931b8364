"""The (member x mutation) table: each encoding, length and type rule of docs/spec.md §3 applied to every
member it covers, with every value the rule names, as data that the suite and the fuzzer both send.

Why: a rule probed on one member passes a node that enforces it on that member only. Independent
nodes did exactly that (strict base64 on the ciphertext, none on the salt; a length check on the nonce,
none on the keys). Each case here is one member broken in one way, everything else valid and sealed,
so a refusal can only be for that.

The full table costs a fresh lock per case on the proxy face (a refused request may spend its lock), so
the default run sends the *cover*: a fixed set of cases holding every row and every column at least
once. ``--member-table full`` sends every case; the fuzzer's sweep sends every case in every campaign.
Both say which they sent, so a verdict never claims more than it probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .strategies import Mutation, mutation

Depth = Literal["cover", "full"]
DEPTHS: tuple[Depth, ...] = ("cover", "full")

BINARY = ("ciphertext", "client_dh_public_key", "node_dh_public_key", "nonce", "plaintext_body_hash", "salt")
FIXED_LENGTH = ("client_dh_public_key", "node_dh_public_key", "nonce", "plaintext_body_hash", "salt")
REQUIRED = (*BINARY, "model_name", "stack_small_id")
BODY = "(body)"  # the envelope as a whole: a row of its own
ROWS = (*BINARY, "stack_small_id", "model_name", "num_compute_units", "stream", BODY)
COLUMNS = (
    "missing",
    "null",
    "wrong type",
    "URL-safe alphabet",
    "whitespace",
    "trailing bits",
    "no padding",
    "surplus padding",
    "too short",
    "too long",
    "out of range",
    "not an object",
)


@dataclass(frozen=True)
class Case:
    """One cell value: ``member`` broken by ``rule`` (a column), as ``mutation`` does it."""

    member: str
    rule: str
    mutation: Mutation

    @property
    def check_id(self) -> str:
        return self.mutation.check_id

    @property
    def label(self) -> str:
        """``"salt: no padding"``: the member and the column, both the suite's own words."""
        return f"{self.member}: {self.rule}"

    def describe(self) -> str:
        return f"{self.label} ({self.mutation.description})"


def _build() -> tuple[Case, ...]:
    cases: list[Case] = []

    def add(member: str, rule: str, family: str, *params: object) -> None:
        cases.append(Case(member, rule, mutation(family, *params)))

    for member in REQUIRED:
        add(member, "missing", "field-missing", member)
        add(member, "null", "type-confusion", member, "null")
    for member in (*BINARY, "model_name"):
        add(member, "wrong type", "type-confusion", member, "integer")
    # R3.11 names each form it refuses for stack_small_id; R3.12 the types num_compute_units and stream refuse.
    for kind in ("string", "boolean", "float"):
        add("stack_small_id", "wrong type", "type-confusion", "stack_small_id", kind)
    add("stack_small_id", "wrong type", "integer-form", "stack_small_id", "exponent")
    for kind in ("string", "boolean", "float"):
        add("num_compute_units", "wrong type", "type-confusion", "num_compute_units", kind)
    for kind in ("string", "integer"):
        add("stream", "wrong type", "type-confusion", "stream", kind)
    for member in BINARY:
        add(member, "URL-safe alphabet", "base64-urlsafe", member, True)
        add(member, "whitespace", "base64-whitespace", member, 4, " ")
        add(member, "whitespace", "base64-whitespace", member, -1, "\n")
        if member != "nonce":  # 12 bytes encode to 16 characters: never padded, no unused bits
            add(member, "trailing bits", "base64-trailing-bits", member, 1)
            add(member, "no padding", "base64-unpadded", member)
        add(member, "surplus padding", "base64-surplus-padding", member)
    for member in FIXED_LENGTH:
        add(member, "too short", "wrong-length", member, -1, 0)
        add(member, "too long", "wrong-length", member, 1, 0)
    add("ciphertext", "too short", "ciphertext-short", 15)
    for member in ("stack_small_id", "num_compute_units"):
        add(member, "out of range", "integer-form", member, "negative")
        add(member, "out of range", "integer-form", member, "above-u64")
    for form in ("array", "trailing-data", "string", "invalid-utf8"):
        add(BODY, "not an object", "body-not-object", form)
    return tuple(cases)


TABLE: tuple[Case, ...] = _build()

# The default run's cases: every row and every column at least once, and every check of the table at
# least once (tests/test_member_table.py holds all three). The first five are the single probes the
# suite sent before the table existed, so a verdict on them means what it meant.
_COVER = (
    ("salt", "missing", 0),
    ("stack_small_id", "wrong type", 0),
    ("ciphertext", "URL-safe alphabet", 0),
    ("salt", "no padding", 0),
    ("nonce", "too short", 0),
    ("client_dh_public_key", "trailing bits", 0),
    ("node_dh_public_key", "whitespace", 1),
    ("plaintext_body_hash", "surplus padding", 0),
    ("model_name", "null", 0),
    ("num_compute_units", "out of range", 0),
    ("stream", "wrong type", 0),
    ("salt", "too long", 0),
    (BODY, "not an object", 0),
)


def cases_of(member: str, rule: str) -> list[Case]:
    return [case for case in TABLE if case.member == member and case.rule == rule]


COVER: tuple[Case, ...] = tuple(cases_of(member, rule)[index] for member, rule, index in _COVER)


def cases(depth: Depth) -> tuple[Case, ...]:
    return TABLE if depth == "full" else COVER


def grid() -> dict[tuple[str, str], int]:
    """(row, column) -> how many cases the full table has there; absent: the rule does not cover it."""
    out: dict[tuple[str, str], int] = {}
    for case in TABLE:
        out[case.member, case.rule] = out.get((case.member, case.rule), 0) + 1
    return out
