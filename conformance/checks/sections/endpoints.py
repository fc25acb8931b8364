"""docs/spec.md §1, actors and flow: each confidential endpoint round-trips a valid request, every
message of the answer decrypting, hashing and verifying."""

from __future__ import annotations

from ...records import ExchangeRecord
from ..base import Group, Verdict
from ..evidence import RoundTrip
from ..probe import Probe, Reads
from ..probes import CHAT, CHAT_STREAM, COMPLETIONS, COMPLETIONS_STREAM, EMBEDDINGS, IMAGES
from ._helpers import round_trip

GROUP = Group((1,), "Actors and flow: the confidential endpoints")
check = GROUP.check


def _round_trips(check_id: str, probe: Probe[ExchangeRecord], title: str, spec: tuple[str, ...]) -> None:
    def predicate(reads: Reads) -> Verdict:
        record = reads.get(probe)
        return round_trip(record, f"{len(record.messages)} message(s) decrypted, hashed and verified")

    check(check_id, "MUST", title, spec=spec, reads=(probe,), evidence=RoundTrip)(predicate)


_round_trips("ENDPOINT-001", CHAT, "Confidential chat completions round-trips", ("R1.1", "R8.1"))
_round_trips("ENDPOINT-002", COMPLETIONS, "Confidential completions round-trips", ("R1.1", "R8.1"))
_round_trips("ENDPOINT-003", EMBEDDINGS, "Confidential embeddings round-trips", ("R1.1", "R8.1"))
_round_trips("ENDPOINT-004", IMAGES, "Confidential image generation round-trips", ("R1.1", "R8.1"))
_round_trips("ENDPOINT-005", CHAT_STREAM, "Streaming confidential chat completions round-trips", ("R1.1", "R9.2"))
_round_trips("ENDPOINT-006", COMPLETIONS_STREAM, "Streaming confidential completions round-trips", ("R1.1", "R9.2"))
