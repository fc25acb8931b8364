"""Stateful fuzzing of sessions: lock, use, let expire, reuse, spend another key's lock, replay, and
stream, in any order Hypothesis finds, against a model of the lock semantics of docs/spec.md §2.

Every action goes through :class:`Session`, which keeps the model and logs the step; a failing run's
log is the replay case, and ``replay`` re-executes it step by step. The invariant after every step
is the nonce audit: no (key, nonce) pair used twice anywhere in the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ..checks import Target
from ..client import ENDPOINT_PATHS, BudgetExceeded, ConfidentialClient
from ..protocol import jsonwire
from ..records import Answer, HttpRecord, LockRecord, cut_off
from .oracle import Finding, OracleState, judge, judge_lock

_T = TypeVar("_T")

LOCK_TIMEOUT_S = 2
SETTLE_S = 5.5  # longer than any lock this suite takes (the default timeout is 5 s)
STEP_COUNT = 12  # rule steps per machine example (Hypothesis' stateful_step_count)


class SessionsOver(BaseException):
    """Raised by a session's ``admit`` hook to end the stateful phase at a campaign cap.

    A BaseException, so that Hypothesis neither shrinks nor replays it: the phase simply ends.
    """


def _admit_always(seconds: float) -> None:
    """The default hook: no cap."""


def _observe_nothing(answer: Answer) -> None:
    """The default hook: answers are not counted."""


class SessionStepError(ValueError):
    """A logged step cannot be executed as written (a replayed case naming a lock never taken)."""


class SessionFailure(AssertionError):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.label())
        self.finding = finding


@dataclass
class _Lock:
    key: str
    record: LockRecord
    expires_at: float


@dataclass
class Session:
    """Executes session steps against a target and checks each against the model."""

    target: Target
    clients: dict[str, ConfidentialClient]
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    state: OracleState = field(default_factory=OracleState)
    log: list[dict[str, Any]] = field(default_factory=list)
    locks: list[_Lock] = field(default_factory=list)
    spent: set[int] = field(default_factory=set)
    last_success: tuple[str, bytes] | None = None
    # Called before every step with the seconds it will sleep (0 for a request); raises SessionsOver
    # when the step would break the campaign's duration or request cap.
    admit: Callable[[float], None] = _admit_always
    # Called after every exchange with its answer; the campaign counts cut-off answers there and raises
    # SessionsOver when the target proves unusable.
    observe: Callable[[Answer], None] = _observe_nothing
    # Exchanges that got no whole answer (guard.cut_off): never judged, and a replay cannot call such a
    # session FIXED.
    unanswered: list[str] = field(default_factory=list)

    def _cut(self, what: str, answer: Answer) -> bool:
        """Count an answer; True (and noted) when it was cut off, so that it is not judged."""
        self.observe(answer)
        why = cut_off(answer)
        if why is None:
            return False
        http = answer if isinstance(answer, HttpRecord) else answer.http
        self.unanswered.append(f"{what}: {http.detail or why}")
        return True

    def _locks_of(self, key: str, stack: int) -> list[int]:
        return [
            i
            for i, lock in enumerate(self.locks)
            if i not in self.spent
            and lock.key == key
            and lock.record.lock is not None
            and lock.record.lock.stack_small_id == stack
        ]

    def _forget(self) -> None:
        """Let every lock expire and drop the model's bookkeeping (after a step the model cannot predict)."""
        self.wait(LOCK_TIMEOUT_S + 0.5)
        self.spent.update(range(len(self.locks)))

    def take_lock(self, key: str) -> int:
        self.admit(0.0)
        self.log.append({"action": "lock", "key": key})
        record = self.clients[key].lock(self.target.chat_model, timeout=LOCK_TIMEOUT_S)
        if self._cut("lock", record):  # a lock nobody can use: later steps on it do nothing
            self.locks.append(_Lock(key, record, float("-inf")))
            self.spent.add(len(self.locks) - 1)
            return len(self.locks) - 1
        findings = judge_lock(record)
        if findings:
            raise SessionFailure(findings[0])
        self.locks.append(_Lock(key, record, self.clock() + LOCK_TIMEOUT_S))
        return len(self.locks) - 1

    def use(self, index: int, key: str, *, stream: bool = False) -> None:
        """Send a valid request on lock ``index`` with API key ``key``; the model says if it may be served."""
        self.admit(0.0)
        self.log.append({"action": "use", "lock": index, "key": key, "stream": stream})
        if not 0 <= index < len(self.locks):
            raise SessionStepError(f"a use step names lock {index}, but {len(self.locks)} lock(s) were taken")
        lock = self.locks[index]
        if lock.record.lock is None:  # its answer was cut off: there is nothing to use
            return
        now = self.clock()
        own = self._locks_of(key, lock.record.lock.stack_small_id)
        # A lock that expires within the clock tolerance makes either answer conformant.
        ambiguous = any(abs(self.locks[i].expires_at - now) <= 0.25 for i in own)
        usable = [i for i in own if self.locks[i].expires_at > now]
        expired = [i for i in own if self.locks[i].expires_at <= now]
        body = {
            "model": self.target.chat_model,
            "messages": [{"role": "user", "content": "session step"}],
            "max_tokens": 8,
            "stream": stream,
        }
        record = self.clients[key].send(
            "chat", jsonwire.dumps(body), lock=lock.record, model_name=self.target.chat_model, stream=stream
        )
        if self._cut("request", record) or ambiguous:  # the model cannot say what the node did
            self._forget()
            return
        if usable:
            self.spent.add(usable[0])
            findings = judge(record, None, self.state)
            if findings:
                raise SessionFailure(findings[0])
            self.last_success = (key, record.request_body)
            return
        if record.http.status == 200:
            if key != lock.key:
                raise SessionFailure(Finding("LOCK-011", "a lock taken with one API key served another key's request"))
            if expired:
                raise SessionFailure(Finding("LOCK-010", "a request on an expired lock was served"))
            raise SessionFailure(Finding("LOCK-009", "a request was served with no unspent lock left"))

    def wait(self, seconds: float) -> None:
        self.admit(seconds)
        self.log.append({"action": "wait", "seconds": seconds})
        self.sleep(seconds)

    def replay_last(self) -> None:
        """Re-send the last served request's exact bytes on a fresh lock: it must be refused (SHOULD)."""
        if self.last_success is None:
            return
        self.admit(0.0)
        key, body = self.last_success
        self.log.append({"action": "replay", "key": key})
        self.take_lock(key)
        self.admit(0.0)
        client = self.clients[key]
        http = client.request("POST", ENDPOINT_PATHS["chat"], content=body, headers=client.headers())
        if not self._cut("replayed request", http) and http.status == 200:
            raise SessionFailure(Finding("REPLAY-001", "an identical replayed request was served again"))
        # Whether a refused replay consumed the fresh lock is the node's choice: forget the model's locks.
        self._forget()

    def audit(self) -> None:
        findings = self.state.ledger.findings
        if findings:
            f = findings[0]
            raise SessionFailure(Finding("NONCE-005", f"(key, nonce) reused: {f.first.where} and {f.second.where}"))


def run_steps(session: Session, steps: list[dict[str, Any]]) -> None:
    """Re-execute a logged session (for replay)."""
    for step in steps:
        action = step["action"]
        if action == "lock":
            session.take_lock(step["key"])
        elif action == "use":
            session.use(step["lock"], step["key"], stream=step.get("stream", False))
        elif action == "wait":
            session.wait(step["seconds"])
        elif action == "replay":
            session.replay_last()
        session.audit()


def session_machine(make_session: Callable[[], Session], keys: list[str]) -> type[RuleBasedStateMachine]:
    """A RuleBasedStateMachine class over fresh sessions built by ``make_session``."""

    class SessionMachine(RuleBasedStateMachine):
        locks = Bundle("locks")
        last: Session | None = None
        # The first failure seen, kept because a cap may interrupt Hypothesis while it shrinks it.
        failure: tuple[Session, SessionFailure] | None = None
        stopped = False  # a cap ended the phase (SessionsOver)
        error: Exception | None = None  # an unexpected error, which ends the phase and is re-raised

        def _step(self, action: Callable[[], _T]) -> _T:
            try:
                return action()
            except SessionFailure as failure:
                if type(self).failure is None:
                    type(self).failure = (self.session, failure)
                raise
            except SessionsOver:
                type(self).stopped = True
                raise
            except BudgetExceeded:  # a lock's retries ran into the hard cap: the phase is over
                type(self).stopped = True
                raise SessionsOver from None
            except Exception as exc:  # not a finding: Hypothesis must not shrink it, nor a cap hide it
                if type(self).error is None:
                    type(self).error = exc
                type(self).stopped = True
                raise SessionsOver from exc

        @initialize()
        def start(self) -> None:
            self.session = self._step(make_session)
            type(self).last = self.session
            # Start from a stack with no pending lock: wait out every lock an earlier step or campaign took.
            self._step(lambda: self.session.wait(SETTLE_S))
            self.session.log.clear()

        @rule(target=locks, key=st.sampled_from(keys))
        def lock(self, key: str) -> int:
            return self._step(lambda: self.session.take_lock(key))

        @rule(index=locks, key=st.sampled_from(keys), stream=st.booleans())
        def use(self, index: int, key: str, stream: bool) -> None:
            self._step(lambda: self.session.use(index, key, stream=stream))

        @rule(seconds=st.sampled_from([1.0, float(LOCK_TIMEOUT_S) + 1.0]))
        def wait(self, seconds: float) -> None:
            self._step(lambda: self.session.wait(seconds))

        @precondition(lambda self: self.session.last_success is not None)  # else the step is a no-op
        @rule()
        def replay(self) -> None:
            self._step(self.session.replay_last)

        @invariant()
        def nonces_are_never_reused(self) -> None:
            if hasattr(self, "session"):
                self._step(self.session.audit)

    return SessionMachine


# Directed sessions run first, one per lock rule of docs/spec.md §2, so that every rule is exercised
# whatever the random phase draws in a short (ci) campaign; Hypothesis then explores orderings.
DIRECTED: tuple[tuple[dict[str, Any], ...], ...] = (
    # a served request, then the same bytes again on a fresh lock (REPLAY-001)
    ({"action": "lock", "key": "a"}, {"action": "use", "lock": 0, "key": "a"}, {"action": "replay"}),
    # a request on a lock that has expired (LOCK-010)
    (
        {"action": "lock", "key": "a"},
        {"action": "wait", "seconds": LOCK_TIMEOUT_S + 1.0},
        {"action": "use", "lock": 0, "key": "a"},
    ),
    # a lock spent by a stream, used again (LOCK-009)
    (
        {"action": "lock", "key": "a"},
        {"action": "use", "lock": 0, "key": "a", "stream": True},
        {"action": "use", "lock": 0, "key": "a"},
    ),
    # one key's lock used by another key (LOCK-011; only with a second key)
    ({"action": "lock", "key": "a"}, {"action": "use", "lock": 0, "key": "b"}),
)


def run_directed(make_session: Callable[[], Session], keys: list[str]) -> tuple[Session | None, SessionFailure | None]:
    """The directed sessions whose keys are all available; the first failure ends the phase.

    A cap raises :class:`SessionsOver` out of here, as from the machine.
    """
    for steps in DIRECTED:
        if not _runs(steps, keys):
            continue
        session = make_session()
        try:
            session.wait(SETTLE_S)
            session.log.clear()
            run_steps(session, list(steps))
        except SessionFailure as failure:
            return session, failure
        except BudgetExceeded:
            raise SessionsOver from None
    return None, None


def step_requests(action: str, lock_cost: int) -> int:
    """The most requests one step can send; a lock costs ``lock_cost`` (1 + the client's lock retries)."""
    return {"lock": lock_cost, "use": 1, "wait": 0, "replay": lock_cost + 1}[action]


def directed_requests(keys: list[str], lock_cost: int) -> int:
    """The most requests the directed sessions send with these keys."""
    return sum(step_requests(step["action"], lock_cost) for steps in DIRECTED if _runs(steps, keys) for step in steps)


def machine_requests(max_examples: int, lock_cost: int) -> int:
    """The most requests ``max_examples`` machine examples send (the costliest step, every step)."""
    return max_examples * STEP_COUNT * max(step_requests(a, lock_cost) for a in ("lock", "use", "wait", "replay"))


def _runs(steps: tuple[dict[str, Any], ...], keys: list[str]) -> bool:
    return all(step.get("key", "a") in keys for step in steps)


def run_sessions(
    make_session: Callable[[], Session], keys: list[str], *, max_examples: int, seed: int
) -> tuple[Session | None, SessionFailure | None]:
    """Directed sessions, then the machine; returns the failing session (its log is the replay) and its failure."""
    try:
        session, found = run_directed(make_session, keys)
    except SessionsOver:
        return None, None
    if found is not None:
        return session, found
    machine = session_machine(make_session, keys)
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=max_examples,
                stateful_step_count=STEP_COUNT,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
                derandomize=True,
            ),
        )
    except (SessionsOver, SessionFailure, Flaky, BaseExceptionGroup) as error:
        last: Session | None = getattr(machine, "last", None)
        unexpected: Exception | None = getattr(machine, "error", None)
        if unexpected is not None:
            raise unexpected from None
        if getattr(machine, "stopped", False):
            # A cap interrupted Hypothesis mid-example (which it may also report as flaky data
            # generation): the phase is over, and only a failure seen before the stop counts.
            failure: tuple[Session, SessionFailure] | None = getattr(machine, "failure", None)
            return failure or (None, None)
        if isinstance(error, SessionFailure):
            return last, error
        found = _first_session_failure(error)  # a node whose answers change between replays is flaky
        if found is None or _has_other_than_failures(error):
            raise
        return last, found
    return None, None


def _first_session_failure(error: BaseException) -> SessionFailure | None:
    if isinstance(error, SessionFailure):
        return error
    for inner in getattr(error, "exceptions", ()) or ():
        found = _first_session_failure(inner)
        if found is not None:
            return found
    return _first_session_failure(error.__cause__) if error.__cause__ is not None else None


def _has_other_than_failures(error: BaseException) -> bool:
    """Whether what Hypothesis raised holds anything but session failures (and flaky reports of them)."""
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        return any(_has_other_than_failures(item) for item in inner)
    return not isinstance(error, SessionFailure | SessionsOver | Flaky)
