"""docs/spec.md §3, request fields and encodings: an envelope or plaintext that breaks one of them is
refused, with everything else valid so that the refusal can only be for that."""

from __future__ import annotations

from ...textsafe import one_line
from ..base import Group, Precondition, Skip, Verdict, verdict
from ..evidence import Refusal
from ..judging import earlier_cause, refusal_problem, response_of
from ..probe import Reads
from ..probes import (
    ERR_CONTENT_TYPE,
    ERR_OVERSIZE,
    ERR_UNKNOWN_MODEL,
    ERR_URLSAFE_BASE64,
    MUTATED,
)
from ._helpers import judge_expected_refusal, refusal, refused_by_node

GROUP = Group((3,), "Request fields and encodings")
check = GROUP.check

# Error codes only a node gives (Table 10.1): a proxy answering with one relayed the node's refusal.
NODE_FACE_ONLY_CODES = frozenset({"INVALID_HEADER", "INVALID_BODY", "MISSING_HEADER"})

refused_by_node(
    GROUP,
    "ERR-006",
    MUTATED["err_wrong_node_key"],
    "A node_dh_public_key that is not the node's key is refused",
    ("R3.13",),
    statuses=(400,),
)
refused_by_node(
    GROUP,
    "ERR-009",
    MUTATED["err_missing_field"],
    "An envelope missing a required member is refused",
    ("R3.1",),
    statuses=(400,),
)
refused_by_node(
    GROUP,
    "ERR-010",
    MUTATED["err_mistyped_field"],
    "A mistyped member (stack_small_id as a string) is refused",
    ("R3.1", "R3.11"),
    statuses=(400,),
)
refused_by_node(
    GROUP,
    "ERR-011",
    ERR_UNKNOWN_MODEL,
    "A plaintext naming a model nobody serves is refused",
    ("R3.14",),
    statuses=(400, 404),
)
refused_by_node(GROUP, "ERR-013", ERR_OVERSIZE, "A body over the size limit is refused", ("R3.18",), statuses=(413,))
refused_by_node(
    GROUP, "ERR-014", ERR_URLSAFE_BASE64, "URL-safe base64 in a binary member is refused", ("R3.4",), statuses=(400,)
)
refused_by_node(
    GROUP,
    "ERR-015",
    MUTATED["err_unpadded_base64"],
    "Unpadded base64 in a binary member is refused",
    ("R3.4",),
    statuses=(400,),
)


@check(
    "ERR-016",
    "MUST",
    "A 33-byte plaintext_body_hash is refused with 400, not signed and forwarded",
    spec=("R3.9", "R7.13"),
    reads=(MUTATED["err_long_hash"],),
    evidence=Refusal,
)
def err_016(reads: Reads) -> Verdict:
    """R7.13 asks the proxy for 400 before signing. A 5xx, or a node's own error code, shows that the
    hash was signed and forwarded and a node refused it (W8). The node face has NODE-005 instead."""
    if reads.target.face == "node":
        raise Skip("a proxy requirement: on the node face NODE-005 checks the 33-byte hash")
    result = reads.get(MUTATED["err_long_hash"])
    earlier = earlier_cause(result, (400,))
    if earlier is not None:
        raise Precondition(f"not evaluated: {earlier}")
    http = response_of(result)
    error = http.error_body()
    code = error[0] if error else None
    why = refusal_problem(result)
    if why is None and code in NODE_FACE_ONLY_CODES:
        why = f"refused with the node's {code}: the hash was signed and forwarded to a node (W8)"
    elif why is None and http.status != 400:
        why = f"refused with {http.status}, not 400: the hash was signed and forwarded, and the node refused it (W8)"
    shown = f" {one_line(code, 64)}" if code else ""
    return verdict(why is None, f"refused with {http.status}{shown}", why or "", refusal(result))


refused_by_node(
    GROUP,
    "ERR-022",
    ERR_CONTENT_TYPE,
    "A confidential request that is not application/json is refused",
    ("R3.3",),
    statuses=(415,),
)


@check(
    "ERR-023",
    "SHOULD",
    "An envelope whose model_name differs from the plaintext's model is refused",
    spec=("R3.16", "R13.5"),
    reads=(MUTATED["err_model_name_mismatch"],),
    evidence=Refusal,
    weaker_because="refusing the mismatch is the node's duty, a SHOULD (R3.16); R13.5, the client's MUST "
    "not to send one, is cited for context",
)
def err_023(reads: Reads) -> Verdict:
    """A node that ignores the mismatch (W4) serves the request, and proxy and node may then disagree
    about the response format. R3.16 names 400; a refusal for want of a lock or a token proves nothing."""
    return judge_expected_refusal(
        reads.get(MUTATED["err_model_name_mismatch"]), (400,), "served anyway: accepted with 200"
    )


refused_by_node(
    GROUP,
    "ERR-024",
    MUTATED["err_wrong_length"],
    "A binary member of the wrong decoded length (an 11-byte nonce) is refused",
    ("R3.5", "R10.3"),
    statuses=(400,),
)
