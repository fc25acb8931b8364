"""docs/spec.md §12, replay: a node that remembers the requests it served refuses the same request
sent again, even on a fresh lock."""

from __future__ import annotations

from ..base import Group, Precondition, Verdict, verdict
from ..evidence import Pairs
from ..judging import response_of
from ..probe import Reads
from ..probes import REPLAY

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
    pair = reads.get(REPLAY)
    if pair.first.http.status != 200:
        raise Precondition(f"the original request failed (status {pair.first.http.status})")
    second = response_of(pair.second).status
    return verdict(
        second != 200,
        f"replay refused ({second})",
        "the node served the same request twice (replay accepted)",
        Pairs(pair.first.http.status, second),
    )
