"""Replaying a saved case against a target: FIXED when the finding no longer appears, STILL FAILING
when it does, and COULD NOT REPLAY when the replay says nothing either way.

FIXED is a claim about the target, so it needs evidence: the request was answered and the rule was
judged on that answer. A target that is down, a TLS failure, a refused key, a lock that fails before
the request is sent, an answer that was cut off (a timeout, the deadline, the size cap), a valid
request that is no longer served (so its content rule cannot be judged), or a session stopped by
another finding first: each is COULD NOT REPLAY, with the reason.

A request case is made again, not re-sent (see :mod:`.cases`): a fresh lock, the case's plaintext (its
shape, or the kept plaintext) sealed under the node's current key with fresh randomness, and the same
mutation with the same drawn parameters. So a replay needs no secret from the case, and a node that
has seen the original request (or has restarted with a new key) still gets a request it can judge.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..checks import Target
from ..client import ConfidentialClient
from ..exits import UserError
from ..records import ExchangeRecord
from ..textsafe import one_line
from ..transport_errors import describe_transport_error
from .cases import ReplayCase
from .guard import cut_off
from .oracle import ENDPOINT_CHECK, STREAM_CHECK, Finding, OracleState, judge, judge_lock

LOCK_ORDER = ("LOCK-001", "LOCK-003", "LOCK-004")  # judge_lock's order: a later finding means earlier ones hold


@dataclass
class ReplayOutcome:
    still_failing: bool
    findings: list[Finding]
    status: int | None
    not_run: str | None = None  # why the replay could not decide; ``still_failing`` is then False

    @property
    def verdict(self) -> str:
        if self.not_run is not None:
            return "COULD NOT REPLAY"
        return "STILL FAILING" if self.still_failing else "FIXED"


def _not_run(reason: str, findings: list[Finding] | None = None, status: int | None = None) -> ReplayOutcome:
    return ReplayOutcome(False, findings or [], status, reason)


def replay(
    case: ReplayCase,
    client: ConfidentialClient,
    target: Target,
    *,
    client_factory: Callable[[str | None], ConfidentialClient] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayOutcome:
    """Re-send the case and judge it. A transport failure is reported in the client's own words
    (``HttpRecord.detail``: a refused connection, a TLS handshake with a plain-HTTP port, ...)."""
    explain = describe_transport_error
    if "steps" in case.extra:
        return _replay_session(case, client, target, client_factory, sleep, clock, explain)
    state = OracleState(expected_signer=target.node_address, api_key=target.api_key, face=target.face)
    for nonce in case.extra.get("prior_nonces", []):
        state.node_nonces.observe("any", bytes.fromhex(nonce), "an earlier request of the campaign")
    lock = client.lock(case.model, max_num_tokens=max(8192, 1_048_576 if case.endpoint == "images" else 0))
    if lock.http.status is None:
        return _not_run(f"the lock got no answer: {lock.http.detail or explain(lock.http.error)}")
    lock_cut = cut_off(lock)
    if lock_cut is not None:
        detail = one_line(lock.http.detail or lock_cut, 120)
        return _not_run(f"the lock's answer was cut off ({detail}, after status {lock.http.status})")
    if lock.http.status == 401:
        return _not_run("the target refused the API key (401 on /v1/nodes/lock)", status=401)
    lock_findings = judge_lock(lock)
    if case.check_id.startswith("LOCK-"):
        hit = [f for f in lock_findings if f.check_id == case.check_id]
        if hit or not lock_findings:
            return ReplayOutcome(bool(hit), lock_findings, lock.http.status)
        first = lock_findings[0]
        ordered = first.check_id in LOCK_ORDER and case.check_id in LOCK_ORDER
        if ordered and LOCK_ORDER.index(first.check_id) > LOCK_ORDER.index(case.check_id):
            return ReplayOutcome(False, lock_findings, lock.http.status)  # judged, and it holds
        return _not_run(
            f"the lock failed earlier ({first.label()}), so {case.check_id} could not be judged",
            lock_findings,
            lock.http.status,
        )
    if lock_findings:
        return _not_run(
            f"the lock failed ({lock_findings[0].label()}), so the request was not sent",
            lock_findings,
            lock.http.status,
        )
    from .campaign import mutation_from_case, seal_case, units_for

    try:
        mutation = mutation_from_case(case.mutation, case.mutation_params) if case.mutation is not None else None
    except ValueError as exc:  # read() checked it; a case built in code may not have been
        raise UserError("mutation_params", str(exc)) from None
    plaintext_value = case.plaintext_value()
    plaintext_value["model"] = case.model
    units = units_for(case.endpoint)
    try:
        prepared = seal_case(
            client,
            lock,
            endpoint=case.endpoint,
            stream=case.stream,
            plaintext_value=plaintext_value,
            model=case.model,
            mutation=mutation,
            units=units,
            secret=os.urandom(60),  # fresh keys: the case holds none
        )
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise UserError("mutation_params", f"cannot be applied ({type(exc).__name__})") from None
    record: ExchangeRecord = client.post_prepared(prepared)
    findings = judge(record, mutation, state)
    status = record.http.status
    if status is None:
        return _not_run(f"the request got no answer: {record.http.detail or explain(record.http.error)}")
    why = cut_off(record)
    if why is not None:
        detail = one_line(record.http.detail or why, 120)
        return _not_run(f"the answer was cut off ({detail}, after status {status}), so nothing could be judged")
    if any(f.check_id == case.check_id for f in findings):
        return ReplayOutcome(True, findings, status)
    served_check = (STREAM_CHECK if case.stream else ENDPOINT_CHECK).get(case.endpoint)
    if case.expect == "accept" and status != 200 and case.check_id != served_check:
        return _not_run(
            f"the request was not served (status {status}), so {case.check_id} could not be judged on an answer",
            findings,
            status,
        )
    return ReplayOutcome(False, findings, status)


def _replay_session(
    case: ReplayCase,
    client: ConfidentialClient,
    target: Target,
    client_factory: Callable[[str | None], ConfidentialClient] | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    explain: Callable[[str | None], str],
) -> ReplayOutcome:
    """Re-execute a logged session step by step."""
    from .campaign import session_keys
    from .stateful import Session, SessionFailure, SessionStepError, run_steps

    api = session_keys(target, f"replay-{time.monotonic_ns()}")
    clients = {"a": client_factory(api["a"]) if client_factory is not None and target.embedded else client}
    if "b" in case.extra.get("keys", []):
        if client_factory is None or api["b"] is None:
            raise ValueError("this case needs a second API key (--second-api-key)")
        clients["b"] = client_factory(api["b"])
    session = Session(
        target,
        clients,
        sleep,
        clock,
        OracleState(expected_signer=target.node_address, api_key=target.api_key, face=target.face),
    )
    failure: SessionFailure | None = None
    try:
        run_steps(session, case.extra["steps"])
    except SessionFailure as found:
        failure = found
    except SessionStepError as exc:
        return _not_run(f"step {len(session.log)}: {exc}")
    finally:
        for opened in clients.values():
            if opened is not client:
                opened.close()
    if session.unanswered:
        what, _, error = session.unanswered[0].partition(": ")
        return _not_run(f"a {what} of the session got no answer: {error or 'no answer'}")
    if failure is None:
        return ReplayOutcome(False, [], None)
    if failure.finding.check_id == case.check_id:
        return ReplayOutcome(True, [failure.finding], None)
    return _not_run(
        f"step {len(session.log)} failed another check first ({failure.finding.label()}), "
        f"so {case.check_id} could not be judged",
        [failure.finding],
    )
