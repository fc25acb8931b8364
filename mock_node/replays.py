"""The mock node's replay memory: the (key, nonce) pairs it has served, in memory that never churns.

A replay cache must forget, or a long soak grows it without bound. It used to be one ordered dict that
dropped its oldest entry for each new one; a dict that keeps deleting accumulates dead slots and is
rebuilt from time to time, and glibc keeps the high-water mark of those rebuilds, so a 10-minute soak saw
the node's RSS step up long after the cache was full. Two generations of plain sets never delete: the
current one fills to half the capacity, then becomes the previous one and the one before is dropped
whole, so the same memory is reused every cycle. A replay of any of the last ``capacity // 2`` pairs is
always refused, and at most ``capacity`` are held.
"""

from __future__ import annotations


class ReplayMemory:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._current: set[bytes] = set()
        self._previous: set[bytes] = set()

    def remember(self, key: bytes, capacity: int | None = None) -> bool:
        """Record ``key``; True if it was seen before (within the memory). ``capacity`` overrides the
        one given at construction (the app reads its module constant at call time, as tests patch it)."""
        if key in self._current or key in self._previous:
            return True
        self._current.add(key)
        if len(self._current) * 2 >= (capacity if capacity is not None else self.capacity):
            self._previous, self._current = self._current, set()
        return False

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
