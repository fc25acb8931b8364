"""Injected randomness, so that every byte the core produces can be made reproducible.

Why injected: known-answer vectors, replayable fuzz cases and deterministic mock faults all need
the "random" salt, nonce and ephemeral key to be chosen by the caller. Production code uses
:data:`SYSTEM_RANDOM`; tests and the vector generator use :class:`SeededRandom`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol


class RandomSource(Protocol):
    """Anything that returns ``n`` bytes on request."""

    def token_bytes(self, n: int) -> bytes: ...


class SystemRandom:
    """The operating system CSPRNG (``os.urandom``)."""

    def token_bytes(self, n: int) -> bytes:
        return os.urandom(n)


class SeededRandom:
    """A deterministic byte stream: SHAKE-256 of the seed, read sequentially.

    Not for secrets. It exists so that a test, a vector or a replay case can name a seed and get the
    same bytes on every machine and every Python version.
    """

    def __init__(self, seed: bytes | str | int) -> None:
        # The type is part of the seed, so 0, b"\x00" and "\x00" name three different streams.
        if isinstance(seed, int):
            material = b"int:" + seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)
        elif isinstance(seed, str):
            material = b"str:" + seed.encode("utf-8")
        else:
            material = b"bytes:" + bytes(seed)
        self._seed = material
        self._offset = 0

    def token_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        end = self._offset + n
        out = hashlib.shake_256(self._seed).digest(end)[self._offset : end]
        self._offset = end
        return out


class FixedBytes:
    """Return pre-set byte strings in order; used to pin exact nonces and salts in vectors."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def token_bytes(self, n: int) -> bytes:
        if not self._chunks:
            raise ValueError("FixedBytes exhausted: the caller asked for more random values than were pinned")
        chunk = self._chunks.pop(0)
        if len(chunk) != n:
            raise ValueError(f"FixedBytes: next pinned value has {len(chunk)} bytes, caller asked for {n}")
        return chunk


SYSTEM_RANDOM: RandomSource = SystemRandom()
