"""What the section modules share: reading probes the way every check must, and turning the
rulebook's judgement of those records into a verdict with its evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ...records import ExchangeRecord, HttpRecord, MessageRecord
from ..base import Check, Group, Precondition, Skip, Verdict, failed, passed, verdict
from ..evidence import Exchanges, Messages, Pairs, Refusal, Refusals
from ..judging import EXCHANGE_RULE, MESSAGE_RULE, came_back, earlier_cause, refusal_problem, refused_with, response_of
from ..probe import Probe, Reads
from ..probes import CHAT

T = TypeVar("T")


def served(reads: Reads, probe: Probe[ExchangeRecord]) -> ExchangeRecord:
    """A probe's record when the target served it, or Precondition naming why there is nothing to judge."""
    record = reads.get(probe)
    if record.http.status != 200:
        raise Precondition(
            f"the {probe.name} exchange did not succeed (status {record.http.status}"
            f"{', ' + record.http.error if record.http.error else ''})"
        )
    return record


def applicable(reads: Reads, probes: Iterable[Probe[T]]) -> list[tuple[Probe[T], T]]:
    """(probe, result) for every listed probe that applies to the target; Skip when none does."""
    out = []
    for probe in probes:
        try:
            out.append((probe, reads.get(probe)))
        except Skip:
            continue
    if not out:
        raise Skip("none of the endpoints this check needs applies to the target")
    return out


def all_served(reads: Reads, probes: Iterable[Probe[ExchangeRecord]]) -> list[tuple[str, ExchangeRecord]]:
    """(probe name, record) for every applicable probe, each of which must have been served."""
    return [(probe.name, served(reads, probe)) for probe, _ in applicable(reads, probes)]


def messages(reads: Reads, probes: Iterable[Probe[ExchangeRecord]]) -> list[tuple[ExchangeRecord, MessageRecord]]:
    """Every message of every applicable, served probe."""
    out = [(record, m) for _, record in all_served(reads, probes) for m in record.messages]
    if not out:
        raise Precondition("the exchanges returned no messages to examine")
    return out


def judge_messages(reads: Reads, check_id: str, probes: Iterable[Probe[ExchangeRecord]], what: str) -> Verdict:
    """The rulebook's message rule ``check_id`` over every message of ``probes``."""
    rule = MESSAGE_RULE[check_id]
    pairs = [(r, m) for r, m in messages(reads, probes) if rule.applies(r)]
    if not pairs:
        raise Precondition("the exchanges returned no messages this rule judges")
    offenders = [(r, m, why) for r, m in pairs if (why := rule.judge(m, r))]
    evidence = Messages(len(pairs), len(offenders))
    if not offenders:
        return passed(f"{what}: all {len(pairs)} message(s)", evidence)
    first = "; ".join(f"{r.endpoint} {m.where}: {why}" for r, m, why in offenders[:3])
    return failed(f"{len(offenders)} of {len(pairs)} message(s) fail: {first}", evidence)


def judge_exchanges(
    reads: Reads, check_id: str, probes: Iterable[Probe[ExchangeRecord]], what: str, *, served_only: bool = True
) -> Verdict:
    """The rulebook's exchange rule ``check_id`` over every applicable (and by default served) probe."""
    rule = EXCHANGE_RULE[check_id]
    if served_only:
        rows = all_served(reads, probes)
    else:
        rows = [(probe.name, record) for probe, record in applicable(reads, probes)]
    bad = [(name, why) for name, record in rows if (why := rule.judge(record))]
    return verdict(
        not bad,
        f"{what} ({len(rows)} exchange(s))",
        "; ".join(f"{name}: {why}" for name, why in bad[:4]),
        Exchanges(len(rows), tuple(name for name, _ in bad)),
    )


def refusal(result: ExchangeRecord | HttpRecord) -> Refusal:
    http = response_of(result)
    error = http.error_body()
    kind: Any = came_back(result)
    return Refusal(http.status, http.media_type, error[0][:64] if error else None, kind)


def refused_by_node(
    group: Group, check_id: str, probe: Probe[Any], title: str, spec: tuple[str, ...], *, statuses: tuple[int, ...]
) -> Check:
    """Register the check that ``probe``, a request the target must refuse, is refused cleanly with
    one of ``statuses`` (the ones the spec names for this rule).

    A probe refused for an earlier cause (no lock, no token, rate limiting: ``judging.EARLIER_CAUSES``)
    did not reach the rule, so the check is "not evaluated", never a pass. It reads CHAT too: on the
    node face no bearer token or lock stands between a bad setup and a 4xx, so a refusal counts only
    once a valid request is known to be served."""

    def predicate(reads: Reads) -> Verdict:
        if reads.target.face == "node":
            served(reads, CHAT)
        result = reads.get(probe)
        earlier = earlier_cause(result, statuses)
        if earlier is not None:
            raise Precondition(f"not evaluated: {earlier}")
        why = refusal_problem(result) or refused_with_status(result, statuses)
        return verdict(why is None, f"refused with {response_of(result).status}", why or "", refusal(result))

    return group.check(check_id, "MUST", title, spec=spec, reads=(CHAT, probe), evidence=Refusal)(predicate)


def refused_with_status(result: ExchangeRecord | HttpRecord, statuses: tuple[int, ...]) -> str | None:
    status = response_of(result).status
    if status in statuses:
        return None
    return f"refused with {status}; the spec asks for {' or '.join(map(str, statuses))}"


def each_refusal(result: Any) -> list[ExchangeRecord | HttpRecord]:
    """The records of a refusal probe: one, or each refused request of a sweep."""
    return list(getattr(result, "refused", (result,)))


def refusals(reads: Reads, probes: Iterable[Probe[Any]]) -> list[tuple[str, ExchangeRecord | HttpRecord]]:
    """(probe name, record) for every refusal of every applicable refusal probe that was refused cleanly."""
    rows = [(p.name, r) for p, result in applicable(reads, probes) for r in each_refusal(result)]
    return [(name, r) for name, r in rows if refusal_problem(r) is None]


def over_refusals(rows: list[tuple[str, Any]], bad: list[str], good: str, why: str) -> Verdict:
    return verdict(
        not bad,
        good,
        f"{len(bad)} of {len(rows)} refusal(s) {why}: {', '.join(bad[:6])}",
        Refusals(len(rows), tuple(bad)),
    )


def judge_answers(reads: Reads, check_id: str, probes: Iterable[Probe[ExchangeRecord]], what: str) -> Verdict:
    """The rulebook's exchange rule ``check_id`` over every applicable probe, served or not: for the
    rules that judge the status itself (ENC-005, STREAM-001), where a refusal is the failure to report."""
    return judge_exchanges(reads, check_id, probes, what, served_only=False)


def first_message(reads: Reads, probe: Probe[ExchangeRecord]) -> MessageRecord:
    """The first message of a served probe, or Precondition (an INFO check reads one answer)."""
    record = served(reads, probe)
    if not record.messages:
        raise Precondition(
            f"the {probe.name} exchange returned no encrypted message (a {record.http.media_type or 'bodiless'} answer)"
        )
    return record.messages[0]


def round_trip(record: ExchangeRecord, good: str, bad: str = "") -> Verdict:
    """A valid request judged by the rulebook's round-trip rule, with RoundTrip evidence; ``bad``
    prefixes the rule's reason when it fails."""
    from ..evidence import RoundTrip
    from ..judging import round_trip_problem, unverified

    why = round_trip_problem(record)
    evidence = RoundTrip(record.http.status, len(record.messages), len(unverified(record)))
    return verdict(why is None, good, f"{bad}{why}", evidence)


def accepted_problem(reads: Reads, record: ExchangeRecord, what: str) -> str | None:
    """Why ``record``, a valid request in a form the spec says a target accepts (``what``), was not
    served and round-tripped, or None. Not evaluated when it was refused for an earlier cause, or when a
    plain valid request (CHAT, which the check must read) does not round-trip either: the form is then
    not what failed (ENDPOINT-001 is)."""
    from ...records import cut_off
    from ..judging import round_trip_problem

    cut = cut_off(record)
    if cut is not None:
        raise Precondition(f"not evaluated: the request with {what} got no whole answer ({cut})")
    earlier = earlier_cause(record, ())
    if earlier is not None:
        raise Precondition(f"not evaluated: the request with {what} was {earlier}")
    why = round_trip_problem(record)
    if why is not None and round_trip_problem(reads.get(CHAT)) is not None:
        raise Precondition("not evaluated: a plain valid request does not round-trip either (ENDPOINT-001)")
    return why


def judge_expected_refusal(result: ExchangeRecord | HttpRecord, expected: tuple[int, ...], served: str) -> Verdict:
    """A request the spec says is refused with one of ``expected``: served is ``served`` (the failure),
    a refusal for an earlier cause is "not evaluated", any other status or a leaky refusal fails."""
    status = response_of(result).status
    if status is not None and 200 <= status < 300:
        return verdict(False, "", served, refusal(result))
    earlier = earlier_cause(result, expected)
    if earlier is not None:
        raise Precondition(f"not evaluated: {earlier}")
    why = refusal_problem(result) or refused_with_status(result, expected)
    return verdict(why is None, f"refused with {status}", why or "", refusal(result))


def judge_second(pair: Any, expected: tuple[int, ...], served: str) -> Verdict:
    """The second request of a pair that only the first may have (a spent lock, a replay): the first
    must have been served, or the second's refusal proves nothing."""
    first, second = pair.first, pair.second
    if first.http.status != 200:
        raise Precondition(f"not evaluated: the first request was not served (status {first.http.status})")
    status = response_of(second).status
    if status is not None and 200 <= status < 300:
        return verdict(False, "", served, Pairs(first.http.status, status))
    earlier = earlier_cause(second, expected)
    if earlier is not None:
        raise Precondition(f"not evaluated: the second request was {earlier}")
    why = refusal_problem(second) or refused_with_status(second, expected)
    return verdict(why is None, f"second request refused with {status}", why or "", Pairs(first.http.status, status))


def judge_refused_with(
    result: ExchangeRecord | HttpRecord, allowed: tuple[tuple[int, str], ...], served: str
) -> Verdict:
    """As :func:`judge_expected_refusal`, for a rule that names the code as well as the status: served is
    ``served`` (the failure), a refusal for an earlier cause is "not evaluated", and any other refusal
    must carry one of the (status, code) pairs ``allowed``."""
    status = response_of(result).status
    if status is not None and 200 <= status < 300:
        return verdict(False, "", served, refusal(result))
    earlier = earlier_cause(result, tuple(pair[0] for pair in allowed))
    if earlier is not None:
        raise Precondition(f"not evaluated: {earlier}")
    why = refused_with(result, allowed)
    return verdict(why is None, f"refused with {status} {refusal(result).code}", why or "", refusal(result))


Findings = list[tuple[str, str]]  # (label of a request, why), as a reason shows them


def each_refused(
    rows: Iterable[tuple[str, ExchangeRecord | HttpRecord]],
    expected: tuple[int, ...],
    rule: Callable[[ExchangeRecord | HttpRecord], str | None],
    served: str,
) -> tuple[Findings, Findings]:
    """(failed, not evaluated) over labelled requests a target must refuse as ``rule`` says, ``expected``
    being the statuses the rule allows: one served fails with ``served``, one refused for an earlier
    cause (:data:`judging.EARLIER_CAUSES`) proves nothing, any other is judged by ``rule``."""
    failures: Findings = []
    unjudged: Findings = []
    for label, result in rows:
        status = response_of(result).status
        if status is not None and 200 <= status < 300:
            failures.append((label, f"{served} ({status})"))
        elif (earlier := earlier_cause(result, expected)) is not None:
            unjudged.append((label, earlier))
        elif (why := rule(result)) is not None:
            failures.append((label, why))
    return failures, unjudged


def refusals_verdict(count: int, failures: Findings, unjudged: Findings, good: str) -> Verdict:
    """The verdict over :func:`each_refused`'s findings: a failure fails, else a request that proved
    nothing leaves the check "not evaluated" (never a pass)."""
    evidence = Refusals(count, tuple(label for label, _ in failures))
    if failures:
        return failed("; ".join(f"{label}: {why}" for label, why in failures[:4]), evidence)
    if unjudged:
        raise Precondition("not evaluated: " + "; ".join(f"{label}: {why}" for label, why in unjudged[:3]))
    return passed(good, evidence)
