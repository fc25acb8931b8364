"""The wall-time bound of a fuzz campaign, and the judgement that a target is unusable.

Why a guard and not just a check between examples: one exchange with a slow target can outlast the
whole ``--duration`` (a body dripped a byte every 50 ms never trips a 30 s read timeout), and a lock's
retries and backoff add to it. So every exchange is given a deadline that ends no later than the
campaign does, a lock's retries are cut to what still fits, and the clock is read before every
exchange, in the sessions and while Hypothesis shrinks too.

Why "unusable" is a verdict of its own: an answer cut off by a timeout, the deadline, the size cap or
a transport error says nothing about the rules the oracle judges, so it is never judged. When cut-off
answers are most of what a target gives (5 of the first 6 exchanges, 5 in a row, or at the end at
least as many as were judged), the campaign stops with exit 2 and says so; it never reports "no
finding" about a target it could not test.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from ..client import ClientOptions, ConfidentialClient
from ..evidence import ExchangeRecord, HttpRecord, LockRecord
from ..textsafe import one_line
from ..transport_errors import describe_transport_error

WINDOW = 6  # the first exchanges, where a target that cannot be tested shows at once
WINDOW_HITS = 5
IN_A_ROW = 5
MIN_DEADLINE_S = 0.05  # an exchange never gets less (a deadline of 0 would mean "no deadline" to some code)
SLOW = frozenset({"timeout", "deadline"})


Answer = HttpRecord | ExchangeRecord | LockRecord


def cut_off(answer: Answer) -> str | None:
    """Why this answer is not a whole answer (None when it is one): no answer at all, or one a read
    timeout, the exchange deadline, the size or chunk cap or a transport error cut short. A stream the
    client stopped reading because its framing broke is not a cut: that is STREAM-003's evidence."""
    http = answer if isinstance(answer, HttpRecord) else answer.http
    if isinstance(answer, ExchangeRecord) and answer.stream_error == "TOO_MANY_CHUNKS":
        return "too-many-chunks"
    if http.status is None:
        return http.error or "no answer"
    if http.error is not None and http.error != "stopped":
        return http.error
    return None


class TargetUnusable(Exception):
    """The target gave too few whole answers to be judged: exit 2 with this one line."""


class Guard:
    """Ends the campaign at its duration, bounds every exchange by the time left, and counts cut-offs."""

    def __init__(
        self,
        duration_s: float | None,
        options: ClientOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duration_s = duration_s
        self.timeout_s = options.timeout_s
        self.deadline_s = options.deadline_s
        self.max_response_bytes = options.max_response_bytes
        self.max_chunks = options.max_chunks
        self.backoff_s = options.backoff_s
        self.lock_retries = options.lock_retries
        self._clock = clock
        self.started = clock()
        self.judged = 0  # whole answers
        self.cut: Counter[str] = Counter()  # cut-off answers, by why
        self._details: dict[str, str] = {}
        self._seen = 0
        self._cut_in_window = 0
        self._in_a_row = 0
        self._longest_deadline_cut = 0.0
        self.unusable: str | None = None

    # --- time -------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self._clock() - self.started

    def remaining(self) -> float | None:
        return None if self.duration_s is None else self.duration_s - self.elapsed()

    def expired(self, extra_s: float = 0.0) -> bool:
        left = self.remaining()
        return left is not None and left - extra_s <= 0

    def retries_that_fit(self) -> int:
        """A lock's retries on 429/503, cut so that their backoff sleeps take at most half the time left."""
        left = self.remaining()
        retries = self.lock_retries
        while left is not None and retries > 0 and self.backoff_s * (2**retries - 1) > left / 2:
            retries -= 1
        return retries

    def options_for(self, options: ClientOptions, *, lock: bool = True) -> ClientOptions:
        """``options`` for the next call. A request gets the time left; a lock (or a call that may be
        one) shares it with its retries: every attempt gets an equal share of what the backoff sleeps
        leave, so the call ends with the campaign."""
        left = self.remaining()
        if left is None:
            return options
        retries = self.retries_that_fit() if lock else options.lock_retries
        attempts = retries + 1 if lock else 1
        slot = max(MIN_DEADLINE_S, (left - (self.backoff_s * (2**retries - 1) if lock else 0.0)) / attempts)
        return replace(
            options,
            deadline_s=min(self.deadline_s, slot),
            timeout_s=min(self.timeout_s, slot),
            lock_retries=retries,
        )

    def bound(self, client: ConfidentialClient, *, lock: bool = True) -> None:
        """Give ``client``'s next call (a request, or a lock and its retries) a deadline that ends with
        the campaign. The per-read timeout is part of the client's connection pool, so only a new
        client would take a shorter one; the exchange deadline bounds every read anyway."""
        client.options = self.options_for(client.options, lock=lock)

    # --- answers ----------------------------------------------------------------------------------

    def observe(self, answer: Answer) -> str | None:
        """Count one answer; returns why it was cut off (None for a whole answer). Sets
        :attr:`unusable` when cut-offs reach the limit. A lock that was answered whole is not counted:
        a target that locks at once and then drips every answer must not look half usable."""
        why = cut_off(answer)
        if why is None and isinstance(answer, LockRecord):
            return None
        http = answer if isinstance(answer, HttpRecord) else answer.http
        self._seen += 1
        if why is None:
            self.judged += 1
            self._in_a_row = 0
            return None
        self.cut[why] += 1
        if why == "deadline":
            self._longest_deadline_cut = max(self._longest_deadline_cut, http.elapsed_s)
        if http.detail and why not in self._details:
            self._details[why] = one_line(http.detail, 120)
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
        why, _ = self.cut.most_common(1)[0]
        slow = all(reason in SLOW for reason in self.cut)
        head = "target too slow" if slow else "target unusable"
        others = sum(self.cut.values()) - self.cut[why]
        tail = f" ({others} more cut off otherwise)" if others else ""
        return f"{head}: {how_many} {self.describe(why)}{tail}"

    def describe(self, why: str) -> str:
        if why == "timeout":
            return f"hit the {self.timeout_s:g} s read timeout"
        if why == "deadline":
            if self._longest_deadline_cut < self.deadline_s * 0.9:  # the deadline was cut to the time left
                return f"hit the exchange deadline (cut to {self._longest_deadline_cut:.1f} s by --duration)"
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
