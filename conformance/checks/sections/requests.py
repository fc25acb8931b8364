"""docs/spec.md §3, request fields and encodings: an envelope or plaintext that breaks one of them is
refused, with everything else valid so that the refusal can only be for that."""

from __future__ import annotations

from ...textsafe import one_line
from ..base import Check, Group, Precondition, Skip, Verdict, verdict
from ..evidence import Cases, Refusal
from ..judging import earlier_cause, refusal_problem, response_of
from ..probe import Reads
from ..probes import (
    CHAT,
    ERR_CONTENT_TYPE,
    ERR_OVERSIZE,
    ERR_UNKNOWN_MODEL,
    MEMBER_TABLE,
    MEMBER_TABLE_FULL,
    MUTATED,
    TableRun,
)
from ._helpers import judge_expected_refusal, refusal, refused_by_node, refused_with_status, served

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


@check(
    "ERR-011",
    "MUST",
    "A plaintext naming a model nobody serves is refused (400; on the proxy face 400 or 404)",
    spec=("R3.14",),
    reads=(CHAT, ERR_UNKNOWN_MODEL),
    evidence=Refusal,
)
def err_011(reads: Reads) -> Verdict:
    """R3.14 gives the node face 400 only; 404 is the proxy face's. ERR-032 sends the same model in
    model_name as well, so that no consistency rule (R3.16) can refuse it first."""
    statuses = (400,) if reads.target.face == "node" else (400, 404)
    if reads.target.face == "node":
        served(reads, CHAT)
    return judge_expected_refusal(reads.get(ERR_UNKNOWN_MODEL), statuses, "served anyway: accepted with 200")


refused_by_node(GROUP, "ERR-013", ERR_OVERSIZE, "A body over the size limit is refused", ("R3.18",), statuses=(413,))


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


# --- the member table: each rule over every member it covers (conformance.member_table) -----------------


def table_of(reads: Reads) -> TableRun:
    """The member table at the run's depth (the other depth's probe skips)."""
    return reads.get(MEMBER_TABLE_FULL if reads.target.member_table == "full" else MEMBER_TABLE)


def judge_table(reads: Reads, check_id: str) -> Verdict:
    """Every case of the table that breaks ``check_id``'s rule must be refused with 400 (R10.3 for the
    binary members, R3.1, R3.11 and R3.12 for the others), cleanly. A case refused for an earlier
    cause (no lock, no token, 429, 503) did not reach the rule: if no case fails, the check is then
    "not evaluated", never a pass on the cases that remain."""
    if reads.target.face == "node":
        served(reads, CHAT)
    table = table_of(reads)
    rows = table.of(check_id)
    if not rows:
        raise AssertionError(f"the member table's {table.depth} depth has no case of {check_id}")
    failed: list[tuple[str, str]] = []  # (case, why)
    not_evaluated: list[tuple[str, str]] = []
    not_producible: list[str] = []
    statuses: list[int | None] = []
    for case, answer in rows:
        if answer is None:
            not_producible.append(case.label)
            continue
        statuses.append(response_of(answer).status)
        earlier = earlier_cause(answer, (400,))
        if earlier is not None:
            not_evaluated.append((case.label, earlier))
        elif (why := refusal_problem(answer) or refused_with_status(answer, (400,))) is not None:
            failed.append((case.label, why))
    evidence = Cases(
        table.depth,
        len(rows),
        tuple(statuses),
        tuple(label for label, _ in failed),
        tuple(label for label, _ in not_evaluated),
        tuple(not_producible),
    )
    judged = len(rows) - len(not_producible)
    if failed:
        shown = "; ".join(f"{label}: {why}" for label, why in failed[:4])
        return verdict(False, "", f"{len(failed)} of {judged} case(s) not refused cleanly with 400: {shown}", evidence)
    if not_evaluated:
        label, earlier = not_evaluated[0]
        raise Precondition(f"not evaluated: {len(not_evaluated)} of {judged} case(s) were {earlier} (first: {label})")
    if not judged:
        raise Precondition("not evaluated: no case of this rule could be made from the envelopes sealed")
    extra = f"; {len(not_producible)} could not be made ({', '.join(not_producible)})" if not_producible else ""
    return verdict(True, f"all {judged} case(s) refused with 400 ({table.depth} table){extra}", "", evidence)


def _table_check(check_id: str, title: str, spec: tuple[str, ...]) -> Check:
    def predicate(reads: Reads) -> Verdict:
        return judge_table(reads, check_id)

    predicate.__doc__ = (
        f"The member table's cases of {check_id}: every member the rule covers, every value it names; "
        "the default run sends the cover, --member-table full every case."
    )
    return check(check_id, "MUST", title, spec=spec, reads=(CHAT, *MEMBER_TABLES), evidence=Cases)(predicate)


MEMBER_TABLES = (MEMBER_TABLE, MEMBER_TABLE_FULL)
_table_check("ERR-009", "An envelope missing a required member is refused, for every required member", ("R3.1",))
_table_check(
    "ERR-010",
    "A member of a type, form or value its rule does not allow is refused, for every member",
    ("R3.1", "R3.11", "R3.12"),
)
_table_check(
    "ERR-014",
    "Non-canonical base64 (URL-safe alphabet, whitespace, non-zero trailing bits) is refused, in every binary member",
    ("R3.4", "R10.3"),
)
_table_check("ERR-015", "Missing or surplus base64 padding is refused, in every binary member", ("R3.4", "R10.3"))
_table_check(
    "ERR-024",
    "A binary member of the wrong decoded length is refused, for every binary member",
    ("R3.5", "R3.6", "R3.7", "R3.8", "R3.9", "R3.10", "R10.3"),
)
_table_check("ERR-035", "A body that is not one JSON object in UTF-8 is refused", ("R3.1", "R10.2"))
