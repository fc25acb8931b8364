"""Budgets that hold across clients, sessions and processes: requests, and the run's time.

A paid endpoint bills every request, so ``--max-requests`` is a hard cap on the whole run: every
client the run creates (second API keys, fuzz sessions) and every pytest-xdist worker draws from one
budget. ``take()`` is called before a request is sent; once it returns False nothing more is sent.
"""

from __future__ import annotations

import os
import threading
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
