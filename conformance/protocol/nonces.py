"""A ledger of every AES-GCM nonce seen under each key, to find reuse anywhere in a session.

Why per key and across directions: the protocol encrypts the request, its response and every
stream chunk under one key K, so a response nonce equal to the request nonce is exactly as fatal
as two chunks sharing a nonce. The ledger is keyed by :func:`~conformance.protocol.envelope.key_id`
(a public name for K) and records where each nonce was used, so a report can say "chunk 3 of the
stream reused the nonce of chunk 0" instead of "a duplicate was found".

It is a plain data structure: mergeable, so that nonces collected by parallel test workers can be
audited together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# NIST SP 800-38D section 8.3: with random 96-bit nonces, at most 2**32 invocations per key keep the
# collision probability below 2**-32.
RANDOM_NONCE_BUDGET = 2**32


@dataclass(frozen=True, slots=True)
class NonceUse:
    """One use of a nonce: under which key, and where (e.g. ``request``, ``response``, ``chunk[3]``)."""

    key_id: str
    nonce: bytes
    where: str


@dataclass(frozen=True, slots=True)
class NonceReuseFinding:
    """A nonce seen twice under one key."""

    first: NonceUse
    second: NonceUse


@dataclass
class NonceLedger:
    """Records nonce uses and reports every reuse under the same key."""

    _uses: dict[str, dict[bytes, NonceUse]] = field(default_factory=dict)
    _findings: list[NonceReuseFinding] = field(default_factory=list)
    _count: int = 0

    def observe(self, key_id: str, nonce: bytes, where: str) -> NonceReuseFinding | None:
        """Record one use; return the finding if this nonce was already used under ``key_id``."""
        self._count += 1
        use = NonceUse(key_id, bytes(nonce), where)
        seen = self._uses.setdefault(key_id, {})
        previous = seen.get(use.nonce)
        if previous is not None:
            finding = NonceReuseFinding(previous, use)
            self._findings.append(finding)
            return finding
        seen[use.nonce] = use
        return None

    def merge(self, uses: Iterable[NonceUse]) -> None:
        """Fold in uses recorded elsewhere (another worker), finding reuse across the two."""
        for use in uses:
            self.observe(use.key_id, use.nonce, use.where)

    def uses(self) -> Iterator[NonceUse]:
        """Every first use recorded, per key (reuses are in :attr:`findings`)."""
        for per_key in self._uses.values():
            yield from per_key.values()

    def all_uses(self) -> Iterator[NonceUse]:
        """Every use recorded, reuses included: what another ledger needs to reproduce this one's findings."""
        yield from self.uses()
        for finding in self._findings:
            yield finding.second

    @property
    def findings(self) -> list[NonceReuseFinding]:
        return list(self._findings)

    @property
    def observations(self) -> int:
        return self._count

    @property
    def keys(self) -> int:
        return len(self._uses)

    def max_uses_per_key(self) -> int:
        """The largest number of nonces drawn under one key, including reuses."""
        per_key: dict[str, int] = {k: len(v) for k, v in self._uses.items()}
        for f in self._findings:
            per_key[f.second.key_id] = per_key.get(f.second.key_id, 0) + 1
        return max(per_key.values(), default=0)

    def budget_fraction(self) -> float:
        """How much of the random-nonce budget (2**32 per key) the busiest key used."""
        return self.max_uses_per_key() / RANDOM_NONCE_BUDGET
