"""The load run's audit: findings, signers and nonces, in memory that does not grow with the run.

A load test may last an hour at hundreds of requests a second, so nothing here may keep one entry per
exchange for ever. What is kept, and why it is enough:

- **Within one key** (NONCE-003, NONCE-005): every exchange has its own key (a fresh client key and
  salt), so a key's nonces can only repeat inside its own exchange. The ledger for them is made when the
  exchange is judged and dropped with it (``LoadJudge``): its size is one exchange's messages.
- **Across keys** (NONCE-004): two answers under different keys should never share a nonce either; a
  repeat means the node's nonce source is broken (a counter shared without a lock, a cached draw). That
  needs a global memory, which is :class:`NonceIndex`: an exact open-addressing table over
  ``array`` buffers (22 bytes a slot), two generations of ``capacity`` slots each. A generation is
  retired when half full, so the index holds at least the last ``capacity // 2`` nonces and never more
  than ``capacity`` (a 2^20-slot index is 44 MiB at most, whatever the run's length). A repeat further
  apart than that is missed, and the report says how many generations were retired, so a reader knows
  whether the whole run was covered.
- **Across workers**: a worker ships the master each nonce that was new to it, so every repeat the
  master finds among them is one no single worker could see (``ingest``).
- **Findings**: a count per check and the first few reasons, already sanitised and capped.
- **Signers**: the distinct addresses, at most :data:`MAX_SIGNERS` kept (the count goes on).

Everything here is plain data with ``to_wire``/``merge`` so that the workers of a distributed run can
ship it to the master, which merges it: a nonce one worker saw and another saw again is found only there
(``cross_worker_repeats``).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from ..protocol.nonces import NonceReuseFinding, NonceUse
from ..textsafe import one_line

MAX_EXAMPLES = 5  # reasons kept per check
EXAMPLE_CHARS = 300
MAX_SIGNERS = 16
DEFAULT_CAPACITY = 1 << 20
NONCE_BYTES = 12
_ENTRY = NONCE_BYTES + 8 + 2  # nonce, key fingerprint, origin (worker index) on the wire


def key_fingerprint(key_id: str) -> int:
    """A 64-bit name for a key: the first half of its public :func:`~conformance.protocol.envelope.key_id`
    (never 0, which marks an empty slot)."""
    try:
        value = int(key_id[:16], 16)
    except ValueError:
        value = hash(key_id) & 0xFFFF_FFFF_FFFF_FFFF
    return value or 1


@dataclass(frozen=True, slots=True)
class Repeat:
    """A nonce seen before: under which key and by which worker it was first seen."""

    first_key: int
    first_origin: int


class _Table:
    """One generation: exact keys (the 12-byte nonce as a 64-bit and a 32-bit half), linear probing."""

    def __init__(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.hi = array("Q", bytes(8 * capacity))
        self.lo = array("I", bytes(4 * capacity))
        self.key = array("Q", bytes(8 * capacity))  # 0: empty
        self.origin = array("H", bytes(2 * capacity))
        self.size = 0

    def find(self, nonce: bytes, hi: int, lo: int) -> int:
        """The slot holding ``nonce``, or the empty slot where it would go."""
        i = hash(nonce) & self.mask
        key, his, los = self.key, self.hi, self.lo
        while key[i] and (his[i] != hi or los[i] != lo):
            i = (i + 1) & self.mask
        return i


@dataclass
class NonceIndex:
    """Every node nonce of the run, bounded: see the module docstring."""

    capacity: int = DEFAULT_CAPACITY
    messages: int = 0
    repeats: int = 0
    cross_key_repeats: int = 0
    cross_origin_repeats: int = 0
    generations: int = 1
    _current: _Table = field(init=False, repr=False)
    _previous: _Table | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.capacity < 16 or self.capacity & (self.capacity - 1):
            raise ValueError("the nonce index capacity must be a power of two, at least 16")
        self._current = _Table(self.capacity)

    def add(self, nonce: bytes, key: int, origin: int = 0) -> Repeat | None:
        """Record a node nonce used under ``key`` (a :func:`key_fingerprint`) by worker ``origin``; the
        earlier use if this nonce was seen before (under any key, by any worker)."""
        self.messages += 1
        nonce = bytes(nonce[:NONCE_BYTES]).ljust(NONCE_BYTES, b"\0")
        hi, lo = int.from_bytes(nonce[:8], "big"), int.from_bytes(nonce[8:], "big")
        for table in (self._current, self._previous):
            if table is None:
                continue
            slot = table.find(nonce, hi, lo)
            if table.key[slot]:
                repeat = Repeat(table.key[slot], table.origin[slot])
                self.repeats += 1
                self.cross_key_repeats += repeat.first_key != key
                self.cross_origin_repeats += repeat.first_origin != origin
                return repeat
        table = self._current
        slot = table.find(nonce, hi, lo)
        table.hi[slot], table.lo[slot], table.key[slot], table.origin[slot] = hi, lo, key or 1, origin & 0xFFFF
        table.size += 1
        if table.size * 2 >= self.capacity:  # retire it before probing gets long
            self._previous, self._current = table, _Table(self.capacity)
            self.generations += 1
        return None

    def totals(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "cross_key_repeats": self.cross_key_repeats,
            "cross_worker_repeats": self.cross_origin_repeats,
            "index_capacity": self.capacity,
            "index_generations": self.generations,
        }


class IndexObserver:
    """The oracle's view of a :class:`NonceIndex` (``observe`` like a ledger's), so that the fuzz oracle's
    NONCE-004 rule runs unchanged over the bounded index. The oracle names a use ``"<key id> <where>"``
    and ``across_keys`` compares those first words, so an earlier use under another key is named by that
    key's fingerprint, and under the same key by the key id itself."""

    def __init__(self, index: NonceIndex, origin: int = 0) -> None:
        self.index = index
        self.origin = origin
        self.shipping = False  # a worker ships its nonces to the master (distributed runs)
        self.outbox: list[bytes] = []  # what the master has not seen yet
        self.outbox_cap = 1 << 20
        self.unsent = 0

    def observe(self, key_id: str, nonce: bytes, where: str) -> NonceReuseFinding | None:
        own_key = where.split(" ")[0]
        key = key_fingerprint(own_key)
        repeat = self.index.add(nonce, key, self.origin)
        if repeat is None:
            # Only a nonce new to this worker is shipped: a repeat among shipped nonces is then one that
            # only the master can see, and is never counted twice.
            self._ship(nonce, key)
            return None
        earlier = own_key if repeat.first_key == key else f"key:{repeat.first_key:016x}"
        return NonceReuseFinding(
            NonceUse(key_id, bytes(nonce), f"{earlier} earlier"), NonceUse(key_id, bytes(nonce), where)
        )

    def _ship(self, nonce: bytes, key: int) -> None:
        if not self.shipping:
            return
        if len(self.outbox) >= self.outbox_cap:
            self.unsent += 1  # the master's merged audit is then partial, and says so
            return
        self.outbox.append(bytes(nonce[:NONCE_BYTES]).ljust(NONCE_BYTES, b"\0") + key.to_bytes(8, "big"))

    def drain(self) -> bytes:
        """The nonces not shipped yet, as one bytes value of 20-byte entries (nonce, key fingerprint)."""
        out, self.outbox = b"".join(self.outbox), []
        return out


def ingest(index: NonceIndex, batch: bytes, origin: int) -> int:
    """Fold a worker's shipped nonces into the master's index; the number of cross-worker repeats found."""
    found = 0
    step = NONCE_BYTES + 8
    for at in range(0, len(batch) - step + 1, step):
        entry = batch[at : at + step]
        repeat = index.add(entry[:NONCE_BYTES], int.from_bytes(entry[NONCE_BYTES:], "big"), origin)
        found += repeat is not None and repeat.first_origin != origin
    return found


@dataclass
class Tally:
    """Findings per check (a count and the first reasons), signers, nonce reuses within a key, cut-offs.
    Mergeable: a worker ships ``to_wire()`` deltas, the master ``merge``s them."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    signers: set[str] = field(default_factory=set)
    signers_seen: int = 0
    within_key_reuses: int = 0
    keys: int = 0
    cut_off: int = 0
    exchanges: int = 0
    refused_key: int = 0  # locks answered 401/403: the API key, not the protocol
    shed: int = 0  # answers 429 or 503: load shed, counted, not judged as unserved
    node_nonces: int = 0  # the node's nonces seen (every message of every answer)
    cross_key_repeats: int = 0

    def finding(self, check_id: str, reason: str) -> None:
        self.counts[check_id] = self.counts.get(check_id, 0) + 1
        kept = self.examples.setdefault(check_id, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(one_line(reason, EXAMPLE_CHARS))

    def signer(self, address: str) -> bool:
        """Note a signer; True when it is new to this tally."""
        if address in self.signers:
            return False
        self.signers_seen += 1
        if len(self.signers) < MAX_SIGNERS:
            self.signers.add(one_line(address, 80))
        return True

    def to_wire(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "signers": sorted(self.signers),
            "within_key_reuses": self.within_key_reuses,
            "keys": self.keys,
            "cut_off": self.cut_off,
            "exchanges": self.exchanges,
            "refused_key": self.refused_key,
            "shed": self.shed,
            "node_nonces": self.node_nonces,
            "cross_key_repeats": self.cross_key_repeats,
        }

    def merge(self, wire: dict[str, Any]) -> None:
        """Fold in a worker's delta (see :meth:`to_wire`); the master trusts its own workers' shape."""
        for check_id, count in wire["counts"].items():
            self.counts[check_id] = self.counts.get(check_id, 0) + int(count)
        for check_id, reasons in wire["examples"].items():
            kept = self.examples.setdefault(check_id, [])
            kept.extend(one_line(str(r), EXAMPLE_CHARS) for r in reasons[: MAX_EXAMPLES - len(kept)])
        for address in wire["signers"]:
            self.signer(str(address))
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + int(wire[name]))

    def take(self) -> dict[str, Any]:
        """This tally's delta since the last take, for shipping; it is then reset (signers stay, so a
        worker does not ship a known signer twice)."""
        wire = self.to_wire()
        self.counts, self.examples = {}, {}
        for name in _COUNTERS:
            setattr(self, name, 0)
        return wire


_COUNTERS = (
    "within_key_reuses",
    "keys",
    "cut_off",
    "exchanges",
    "refused_key",
    "shed",
    "node_nonces",
    "cross_key_repeats",
)
