"""Budgets that hold across clients, sessions and processes: requests, and the run's time.

A paid endpoint bills every request, so ``--max-requests`` is a hard cap on the whole run: every
client the run creates (second API keys, fuzz sessions) and every pytest-xdist worker draws from one
budget. ``take()`` is called before a request is sent; once it returns False nothing more is sent.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class RequestBudget(Protocol):
    """Something that grants one request at a time, up to a cap."""

    @property
    def cap(self) -> int: ...

    def take(self) -> bool:
        """Count one request; False (and nothing counted) when the cap is reached."""
        ...

    def spent(self) -> int: ...


class LocalBudget:
    """A budget shared by the clients of one process (thread-safe)."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def cap(self) -> int:
        return self._cap

    def take(self) -> bool:
        with self._lock:
            if self._spent >= self._cap:
                return False
            self._spent += 1
            return True

    def spent(self) -> int:
        return self._spent


class FileBudget:
    """A budget shared by processes (pytest-xdist workers) through a counter file under an exclusive lock.

    The file holds the number of requests spent so far as decimal text. It lives in a directory the
    run created for itself, so nothing else writes it.
    """

    def __init__(self, path: Path, cap: int) -> None:
        self.path = path
        self._cap = cap
        path.touch(exist_ok=True)

    @property
    def cap(self) -> int:
        return self._cap

    def _update(self, add: int) -> tuple[bool, int]:
        import fcntl  # POSIX only; xdist runs on Windows fall back to LocalBudget per worker

        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 32).decode("ascii").strip()
            spent = int(raw) if raw else 0
            if add and spent + add > self._cap:
                return False, spent
            spent += add
            if add:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, str(spent).encode("ascii"))
            return True, spent
        finally:
            os.close(fd)  # closing releases the lock

    def take(self) -> bool:
        return self._update(1)[0]

    def spent(self) -> int:
        return self._update(0)[1]


class RunStopped(Exception):
    """The run must send nothing more: its deadline passed, or the target proved unusable. Checks that
    meet it are "not evaluated"; the command ends with exit 2 and this one line."""


SLOW_ERRORS = frozenset({"timeout", "deadline"})


class RunGuard:
    """The whole run's deadline, and the judgement that a target is too slow to test.

    Per-exchange limits alone do not bound a run: a target that drips one byte a second makes every
    one of ~70 probes wait out its own deadline. So each exchange also draws on the run's remaining
    time, and once ``consecutive`` exchanges in a row (or ``window_hits`` of the first ``window``) end
    in a read timeout or an exchange deadline, the target is declared unusable and nothing more is
    sent. ``clock`` is injected so the rule is tested without waiting.
    """

    def __init__(
        self,
        run_deadline_s: float | None,
        *,
        timeout_s: float,
        deadline_s: float,
        consecutive: int = 3,
        window: int = 6,
        window_hits: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._ends = None if run_deadline_s is None else clock() + run_deadline_s
        self.run_deadline_s = run_deadline_s
        self._timeout_s = timeout_s
        self._limits = f"the {timeout_s:g} s read timeout or the {deadline_s:g} s exchange deadline"
        self._consecutive, self._window, self._window_hits = consecutive, window, window_hits
        self._lock = threading.Lock()
        self.exchanges = 0
        self.slow_in_window = 0
        self.slow_in_a_row = 0
        self.stopped: str | None = None

    def remaining(self) -> float | None:
        return None if self._ends is None else self._ends - self._clock()

    def check(self) -> None:
        """Raise :class:`RunStopped` when nothing more may be sent."""
        if self.stopped is None and self._ends is not None and self._clock() >= self._ends:
            self.stopped = f"run deadline: {self.run_deadline_s:g} s passed (--run-deadline)"
        if self.stopped is not None:
            raise RunStopped(self.stopped)

    def observe(self, error: str | None, elapsed_s: float = 0.0, *, lock: bool = False) -> None:
        """Count one finished exchange by its transport outcome (``HttpRecord.error``): slow when it hit
        a timeout or the deadline, or was cut off only after waiting at least a read timeout (a drip
        that the server itself ends is as useless as one the deadline ends). A lock answered in time
        neither counts nor breaks a run of slow exchanges: a target that locks at once and then stalls
        every answer is the commonest way to be unusable."""
        slow = error in SLOW_ERRORS or (error is not None and elapsed_s >= self._timeout_s)
        if lock and not slow:
            return
        with self._lock:
            self.exchanges += 1
            self.slow_in_a_row = self.slow_in_a_row + 1 if slow else 0
            if slow and self.exchanges <= self._window:
                self.slow_in_window += 1
            if self.stopped is not None:
                return
            if self.slow_in_window >= self._window_hits:
                self.stopped = (
                    f"target too slow: {self.slow_in_window} of the first {self.exchanges} exchanges hit {self._limits}"
                )
            elif self.slow_in_a_row >= self._consecutive:
                self.stopped = f"target too slow: {self.slow_in_a_row} exchanges in a row hit {self._limits}"
