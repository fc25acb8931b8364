"""docs/spec.md §11, usage: the token counts a node reports, and the clear copy of them that billing
reads, which only the encrypted, signed copy vouches for."""

from __future__ import annotations

from ..base import Group, Verdict
from ..evidence import Exchanges, Messages
from ..probe import Reads
from ..probes import STREAMS, TEXT_ENDPOINTS
from ._helpers import judge_exchanges, judge_messages

GROUP = Group((11,), "Usage")
check = GROUP.check


@check(
    "USAGE-001",
    "MUST",
    "usage has non-negative integer prompt_tokens, completion_tokens (text) and total_tokens",
    spec="R11.1",
    reads=TEXT_ENDPOINTS,
    evidence=Exchanges,
)
def usage_001(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "USAGE-001", TEXT_ENDPOINTS, "counts are integers")


@check(
    "USAGE-002",
    "MUST",
    "total_tokens = prompt_tokens + completion_tokens",
    spec="R11.2",
    reads=TEXT_ENDPOINTS,
    evidence=Exchanges,
)
def usage_002(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "USAGE-002", TEXT_ENDPOINTS, "totals add up")


@check(
    "USAGE-003",
    "MUST",
    "The clear usage equals the encrypted usage exactly (non-streaming)",
    spec="R11.4",
    reads=TEXT_ENDPOINTS,
    evidence=Messages,
)
def usage_003(reads: Reads) -> Verdict:
    # A clear usage that differs from the signed, encrypted one is how billing would be tampered with.
    return judge_messages(reads, "USAGE-003", TEXT_ENDPOINTS, "clear usage = encrypted usage")


@check(
    "USAGE-004",
    "MUST",
    "The clear usage on the stream's usage chunk equals its encrypted usage",
    spec="R11.4",
    reads=STREAMS,
    evidence=Messages,
)
def usage_004(reads: Reads) -> Verdict:
    return judge_messages(reads, "USAGE-004", STREAMS, "clear usage = encrypted usage")


@check(
    "USAGE-005",
    "MUST",
    "A clear usage member is present exactly when the plaintext carries usage",
    spec="R11.5",
    reads=(*TEXT_ENDPOINTS, *STREAMS),
    evidence=Messages,
)
def usage_005(reads: Reads) -> Verdict:
    return judge_messages(reads, "USAGE-005", (*TEXT_ENDPOINTS, *STREAMS), "usage presence")


@check(
    "USAGE-006",
    "MUST",
    "Usage details, when present, are objects of non-negative integers",
    spec="R11.3",
    reads=TEXT_ENDPOINTS,
    evidence=Exchanges,
)
def usage_006(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "USAGE-006", TEXT_ENDPOINTS, "details well formed (or absent)")


@check(
    "USAGE-007",
    "SHOULD",
    "The usage counts are plausible for the answer (completion tokens > 0 for text)",
    spec="R11.1",
    reads=TEXT_ENDPOINTS,
    evidence=Exchanges,
    weaker_because="a heuristic stricter than R11.1 (which allows zero), for a text answer that has text but "
    "reports no completion tokens",
)
def usage_007(reads: Reads) -> Verdict:
    return judge_exchanges(reads, "USAGE-007", TEXT_ENDPOINTS, "non-zero completion tokens")
