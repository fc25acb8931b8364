"""In-memory locks, as the proxy keeps them: one reservation per lock call, consumed by one request.

A lock belongs to the API key that took it (R2.14) and expires ``timeout`` seconds after it was
granted (R2.11). Time comes from an injected clock so tests can expire a lock without sleeping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field


def token_id(api_key: str) -> str:
    """A stable, non-reversible name for an API key (we never keep or log the key itself)."""
    return hashlib.blake2b(api_key.encode(), digest_size=8, person=b"mock-api-key").hexdigest()


@dataclass
class Lock:
    stack_small_id: int
    owner: str
    model: str
    max_num_tokens: int
    expires_at: float


class LockRefused(Exception):
    """No usable lock; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LockTable:
    clock: Callable[[], float]
    _locks: dict[int, list[Lock]] = field(default_factory=dict)
    _stacks: dict[tuple[str, str], int] = field(default_factory=dict)
    max_locks_per_stack: int = 1024
    max_stacks: int = 10_000
    _next_stack: int = 0
    _jammed: set[int] = field(default_factory=set)  # stacks an error path never released (a fault)

    def stack_for(self, owner: str, model: str) -> int:
        """The caller's stack for ``model``, bought on first use (ids start at 1, never reused).

        Any bearer token is accepted by default, so the table is bounded: past ``max_stacks`` the
        oldest stack and its locks are forgotten.
        """
        key = (owner, model)
        if key not in self._stacks:
            self._next_stack += 1
            self._stacks[key] = self._next_stack
            if len(self._stacks) > self.max_stacks:
                oldest = next(iter(self._stacks))
                stack = self._stacks.pop(oldest)
                self._locks.pop(stack, None)
                self._jammed.discard(stack)
        return self._stacks[key]

    def grant(self, owner: str, model: str, max_num_tokens: int, timeout_s: int) -> Lock:
        stack = self.stack_for(owner, model)
        pending = self._locks.setdefault(stack, [])
        if len(pending) >= self.max_locks_per_stack:  # bound memory against lock floods
            pending.pop(0)
        lock = Lock(stack, owner, model, max_num_tokens, self.clock() + timeout_s)
        pending.append(lock)
        return lock

    def consume(
        self, stack: int, owner: str, units: int, *, check_owner: bool, check_expiry: bool, spend: bool = True
    ) -> Lock:
        """Take one usable lock on ``stack`` or raise :class:`LockRefused`.

        Expired locks are pruned here, lazily, as the upstream proxy does; ``check_expiry=False`` (a
        fault) keeps them usable, so an expired lock still serves one request, and ``spend=False`` (a
        fault) leaves the lock in place, so it serves every later request too.
        """
        if stack in self._jammed:
            raise LockRefused("the stack is still held by an earlier request")
        if check_expiry:
            self._prune(stack)
        candidates = self._locks.get(stack, [])
        if check_owner:
            owned = [lock for lock in candidates if lock.owner == owner]
            if candidates and not owned:
                raise LockRefused("the lock on this stack was taken with another API key")
            candidates = owned
        for lock in candidates:
            if lock.max_num_tokens >= units:
                if spend:
                    self._locks[stack].remove(lock)
                return lock
        if candidates:
            raise LockRefused(f"no lock on this stack reserves {units} compute units")
        raise LockRefused("no unexpired lock on this stack; call /v1/nodes/lock first")

    def _prune(self, stack: int) -> None:
        now = self.clock()
        if stack in self._locks:
            self._locks[stack] = [lock for lock in self._locks[stack] if lock.expires_at > now]

    def known(self, stack: int) -> bool:
        """Whether ``stack`` was ever handed out (an id no caller holds is unknown)."""
        return 0 < stack <= self._next_stack

    def jam(self, stack: int) -> None:
        """Hold ``stack`` for good, as an error path that never releases it does (the fault of R10.10)."""
        self._jammed.add(stack)

    def owns(self, owner: str, stack: int) -> bool:
        return any(s == stack and o == owner for (o, _), s in self._stacks.items())
