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
from ..guard import Usability
from ..records import Answer, cut_off

MIN_DEADLINE_S = 0.05  # an exchange never gets less (a deadline of 0 would mean "no deadline" to some code)
__all__ = ["MIN_DEADLINE_S", "Guard", "TargetUnusable", "cut_off"]


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
        self.usability = Usability(
            timeout_s=options.timeout_s,
            deadline_s=options.deadline_s,
            max_response_bytes=options.max_response_bytes,
            max_chunks=options.max_chunks,
            cut_by="--duration",
        )

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

    # --- answers: the shared judgement (conformance.budget.Usability) ---------------------------------

    def observe(self, answer: Answer) -> str | None:
        return self.usability.observe(answer)

    @property
    def unusable(self) -> str | None:
        return self.usability.unusable

    def verdict_at_end(self) -> str | None:
        return self.usability.verdict_at_end()

    @property
    def cut_total(self) -> int:
        return self.usability.cut_total

    @property
    def cut(self) -> Counter[str]:
        return self.usability.cut
