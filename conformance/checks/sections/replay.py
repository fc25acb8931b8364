"""docs/spec.md §12, replay: a node that remembers the requests it served refuses the same request
sent again, even on a fresh lock."""

from __future__ import annotations

from ..base import Group, Verdict
from ..evidence import Pairs
from ..probe import Reads
from ..probes import REPLAY
from ._helpers import judge_second

GROUP = Group((12,), "Replay")
check = GROUP.check


@check(
    "REPLAY-001",
    "SHOULD",
    "An identical replayed request is refused",
    spec="R12.7",
    reads=(REPLAY,),
    evidence=Pairs,
)
def replay_001(reads: Reads) -> Verdict:
    """The replay goes out on a fresh lock on the same stack, so a refusal for want of a lock is an
    earlier cause, not the replay rule (R12.7 asks for 409 REPLAYED_REQUEST)."""
    return judge_second(reads.get(REPLAY), (409,), "the node served the same request twice (replay accepted)")
