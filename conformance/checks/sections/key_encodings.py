"""docs/spec.md §4, key agreement: the encodings of a client key a node must accept. RFC 7748 ignores
the top bit of a received u-coordinate, so a key with bit 255 set names the same key, and a node that
refuses it, or does not mask it, fails clients whose X25519 library leaves the bit as it found it."""

from __future__ import annotations

from ..base import Group, Verdict, verdict
from ..evidence import RoundTrip
from ..judging import unverified
from ..probe import Reads
from ..probes import CHAT
from ..probes_body import ACCEPTED_VARIATIONS
from ._helpers import accepted_problem

GROUP = Group((4,), "Key agreement: the client key encodings a node accepts")
check = GROUP.check

TOP_BIT = "client key with bit 255 set"


@check(
    "ENDPOINT-013",
    "MUST",
    "A client key with bit 255 set (the same u-coordinate) is served, under the key the masked u gives",
    spec=("R4.1",),
    reads=(CHAT, ACCEPTED_VARIATIONS),
    evidence=RoundTrip,
)
def endpoint_013(reads: Reads) -> Verdict:
    """The request is sealed for the masked key (the client's own), so the answer round-trips only if
    the node masked the bit before X25519, as R4.1 says; a refusal or an answer under another K fails."""
    record = reads.get(ACCEPTED_VARIATIONS).record(TOP_BIT)
    why = accepted_problem(reads, record, TOP_BIT)
    evidence = RoundTrip(record.http.status, len(record.messages), len(unverified(record)))
    return verdict(why is None, f"{TOP_BIT}: served and round-tripped", f"{TOP_BIT}: {why}", evidence)
