"""Bounds on a run's time, and the judgement that a target cannot be tested.

``run`` (RunGuard, through the client) and ``fuzz`` (fuzz.guard) share :class:`Usability`, so both
commands call the same target unusable for the same reason and say so in the same words.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from .budget import RunStopped
from .client import DRIP_MIN_BYTES, MAX_PIECES
from .records import Answer, HttpRecord, LockRecord, cut_off
from .textsafe import one_line
from .transport_errors import describe_transport_error

WINDOW = 6  # the first exchanges, where a target that cannot be tested shows at once
WINDOW_HITS = 5
IN_A_ROW = 5
SLOW = frozenset({"timeout", "deadline", "slow", "drip"})
LOCK_PATH = "/v1/nodes/lock"


class Usability:
    """The judgement that a target is unusable, shared by ``run`` (RunGuard) and ``fuzz`` (fuzz.guard).

    An answer cut off by a timeout, the deadline, the size cap or a transport error says nothing about
    the rules, so it is never judged (``records.cut_off``). When cut-off answers are most of what a
    target gives (5 of the first 6 exchanges, or 5 in a row), nothing more is worth sending: the
    command stops with exit 2 and this sentence, never a verdict about a target it could not test.
    A lock answered whole is not counted, so a target that locks at once and then stalls every answer
    does not look half usable.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        deadline_s: float,
        max_response_bytes: int = 32 * 1024 * 1024,
        max_chunks: int = 10_000,
        cut_by: str = "--run-deadline",
    ) -> None:
        self.cut_by = cut_by  # the option whose time limit can shorten an exchange's deadline
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self.max_chunks = max_chunks
        self.judged = 0  # whole answers
        self.cut: Counter[str] = Counter()  # cut-off answers, by why
        self.strikes: Counter[str] = Counter()  # cut-off answers, and whole ones slower than the read timeout
        self._details: dict[str, str] = {}
        self._seen = 0
        self._cut_in_window = 0
        self._in_a_row = 0
        self._longest_deadline_cut = 0.0
        self._lock = threading.Lock()
        self.unusable: str | None = None

    def observe(self, answer: Answer) -> str | None:
        """Count one answer; returns why it was cut off (None for a whole answer). Sets
        :attr:`unusable` when cut-offs reach the limit. A lock that was answered whole is not counted:
        a target that locks at once and then drips every answer must not look half usable."""
        why = cut_off(answer)
        http = answer if isinstance(answer, HttpRecord) else answer.http
        if why is None and (isinstance(answer, LockRecord) or http.path == LOCK_PATH):
            return None
        with self._lock:
            return self._count(why, http)

    def _count(self, why: str | None, http: HttpRecord) -> str | None:
        """A strike is a cut-off answer, or a whole one that took longer than the read timeout: a body
        dripped over 30 s and then ended is judged like any answer, but a target that answers every
        probe that way cannot be tested within any sensible time."""
        self._seen += 1
        strike = why if why is not None else ("slow" if http.elapsed_s >= self.timeout_s else None)
        if why is None:
            self.judged += 1
        else:
            self.cut[why] += 1
        if strike is None:
            self._in_a_row = 0
            return None
        self.strikes[strike] += 1
        if strike == "deadline":
            self._longest_deadline_cut = max(self._longest_deadline_cut, http.elapsed_s)
        if http.detail and strike not in self._details:
            self._details[strike] = one_line(http.detail, 120)
        self._in_a_row += 1
        if self._seen <= WINDOW:
            self._cut_in_window += 1
        if self.unusable is None:
            if self._cut_in_window >= WINDOW_HITS:
                self.unusable = self._sentence(f"{self._cut_in_window} of the first {self._seen} exchanges")
            elif self._in_a_row >= IN_A_ROW:
                self.unusable = self._sentence(f"{self._in_a_row} exchanges in a row")
        return why

    def verdict_at_end(self) -> str | None:
        """Unusable after the fact: at least as many answers were cut off as were whole."""
        if self.unusable is None and self.cut and sum(self.cut.values()) >= self.judged:
            total = sum(self.cut.values())
            self.unusable = self._sentence(f"{total} of {total + self.judged} exchanges")
        return self.unusable

    def _sentence(self, how_many: str) -> str:
        why, _ = self.strikes.most_common(1)[0]
        slow = all(reason in SLOW for reason in self.strikes)
        head = "target too slow" if slow else "target unusable"
        others = sum(self.strikes.values()) - self.strikes[why]
        tail = f" ({others} more otherwise)" if others else ""
        return f"{head}: {how_many} {self.describe(why)}{tail}"

    def describe(self, why: str) -> str:
        if why == "slow":
            return f"took longer than the {self.timeout_s:g} s read timeout to answer"
        if why == "drip":
            return f"dripped less than {DRIP_MIN_BYTES // 1024} KiB in the {self.timeout_s:g} s read timeout"
        if why == "too-fragmented":
            return f"sent their body in more than {MAX_PIECES:,} pieces"
        if why == "timeout":
            return f"hit the {self.timeout_s:g} s read timeout"
        if why == "deadline":
            if self._longest_deadline_cut < self.deadline_s * 0.9:  # the deadline was cut to the time left
                return f"hit the exchange deadline (cut to {self._longest_deadline_cut:.1f} s by {self.cut_by})"
            return f"hit the {self.deadline_s:g} s exchange deadline"
        if why == "too-large":
            return f"ran past the {self.max_response_bytes // (1024 * 1024)} MiB response cap"
        if why == "too-many-chunks":
            return f"ran past the {self.max_chunks:,}-chunk stream cap"
        if why == "content-encoding":
            return "came with a content encoding the client does not decode"
        detail = self._details.get(why) or describe_transport_error(why)
        return f"got no whole answer ({one_line(detail, 120)})"

    @property
    def cut_total(self) -> int:
        return sum(self.cut.values())


class RunGuard:
    """The whole run's deadline, and the judgement (:class:`Usability`) that a target is unusable.

    Per-exchange limits alone do not bound a run: a target that drips one byte a second makes every
    one of ~70 probes wait out its own deadline. So each exchange also draws on the run's remaining
    time, every answer is counted by :class:`Usability`, and once the target is unusable nothing more
    is sent. ``clock`` is injected so the rule is tested without waiting.
    """

    def __init__(
        self,
        run_deadline_s: float | None,
        *,
        timeout_s: float,
        deadline_s: float,
        max_response_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        label_s: float | None = None,
    ) -> None:
        """``run_deadline_s`` is the time left from now; ``label_s`` the user's --run-deadline, which the
        message names (the run began, with the preflight, a little before this guard)."""
        self._clock = clock
        self._ends = None if run_deadline_s is None else clock() + run_deadline_s
        self.run_deadline_s = label_s if label_s is not None else run_deadline_s
        self.usability = Usability(timeout_s=timeout_s, deadline_s=deadline_s, max_response_bytes=max_response_bytes)
        self._deadline_passed = False

    @property
    def stopped(self) -> str | None:
        if self._deadline_passed:
            return f"run deadline: {self.run_deadline_s:g} s passed (--run-deadline)"
        return self.usability.unusable

    def remaining(self) -> float | None:
        return None if self._ends is None else self._ends - self._clock()

    def check(self) -> None:
        """Raise :class:`RunStopped` when nothing more may be sent."""
        if self._ends is not None and self._clock() >= self._ends:
            self._deadline_passed = True
        if self.stopped is not None:
            raise RunStopped(self.stopped)

    def observe(self, http: HttpRecord) -> None:
        self.usability.observe(http)
