"""The client judge: what the mock node learns about the *client* from every lock and request it sees.

A node holds the one private key that lets a third party check a client's work from the wire alone:
with it the judge decrypts each envelope and compares it against the plaintext, the lock the client
took, and every earlier request of the same client. Nothing here decides what the node answers; the
app calls the judge beside its own handling, before any refusal, so a request the strict node refuses
is judged all the same.

Per-request findings carry the CLIENT check id they violate (conformance/clients/checks.py); freshness
(R13.1) needs every request of a client, so the judge only records fingerprints and the runner
compares them. Fingerprints are short hashes: a report shows that two salts were equal, never a salt.

The judge also holds the node's chain (:class:`~mock_node.chain.MockChain`, read in process, bytes in and
bytes out, as a client reads a full node): each request's ``node_dh_public_key`` is judged by the
rulebook's :func:`~conformance.keyrules.lock_key_problem` against the facts a ``KeyScan`` reads
from it, so a request sealed to a key the chain does not commit is flagged CLIENT-037 (R15.14) by the
very rule KEY-001 applies to a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.clients.contract import content_of
from conformance.keyrules import Unjudged, lock_key_problem
from conformance.protocol import (
    REQUEST_FIELD_LENGTHS,
    X25519_KEY_LEN,
    ConfidentialComputeRequest,
    KeyFacts,
    KeyScan,
    ProtocolError,
    b64decode,
    blake2b_256,
    canonical_public_key,
    jsonwire,
    node_exchange,
)
from conformance.textsafe import one_line

from .behaviour import Behaviour
from .chain import MockChain
from .config import IMAGE_DEFAULT_UNITS, LOCK_DEFAULT_TOKENS, MockConfig

KEY_CHECK = "CLIENT-037"
MAX_KEYS_CACHED = 64  # chain facts kept per watched key; a client that seals to more keys re-reads the chain

_BINARY = ("ciphertext", *REQUEST_FIELD_LENGTHS)


def fingerprint(value: bytes) -> str:
    """A short public name for a value, enough to show two values were equal without showing them."""
    return blake2b_256(b"atoma-conformance/client-judge\x00" + value)[:6].hex()


@dataclass
class LockSeen:
    owner: str
    stack_small_id: int
    public_key: bytes
    max_num_tokens: int
    expires_at: float
    used: bool = False


@dataclass
class RequestSeen:
    """One confidential request as the judge saw it. ``findings`` maps a CLIENT check id to the reason."""

    owner: str
    endpoint: str
    stream: bool | None = None
    findings: dict[str, str] = field(default_factory=dict)
    salt: str | None = None
    nonce: str | None = None
    client_key: str | None = None
    served: str | None = None  # what the node handed back (content), for the control scenarios
    streamed: bool = False  # whether that answer was an event stream
    node_key: str | None = None  # the fingerprint of the key the client sealed to (node_dh_public_key)
    key_unjudged: str | None = None  # why that key could not be judged against the chain (CLIENT-037)

    def flag(self, check_id: str, reason: str) -> None:
        self.findings.setdefault(check_id, reason)  # the first reason per check is the evidence


def chain_facts(chain: MockChain, behaviour: Behaviour, node_small_id: int, key: bytes) -> KeyFacts:
    """What a client reading the mock's full node learns about ``node_small_id``, watching ``key``: a
    :class:`~conformance.protocol.KeyScan` driven against :meth:`MockChain.rpc` in process."""
    scan = KeyScan(chain.package_id, node_small_id, watch_key=key)
    while (body := scan.next_request()) is not None:
        scan.feed(chain.rpc(body, behaviour))
    return scan.facts()


class ClientJudge:
    """Thread-safe: uvicorn serves from one thread, the runner reads from another.

    ``node_private_key`` is the key the node decrypts under (the lock's key: with a ``chain_lock_key``
    fault, not the node's committed one); ``key_facts`` reads the chain about a key (:func:`chain_facts`),
    without which no request is judged for CLIENT-037. :meth:`for_config` sets both for a mock's config.
    """

    def __init__(
        self,
        node_private_key: bytes,
        clock: Callable[[], float],
        *,
        key_facts: Callable[[bytes], KeyFacts] | None = None,
    ) -> None:
        self._node_private_key = node_private_key
        self._clock = clock
        self._key_facts = key_facts
        self._facts: dict[bytes, KeyFacts] = {}  # the chain does not change during a run
        self._locks: list[LockSeen] = []
        self._requests: list[RequestSeen] = []
        self._mutex = threading.Lock()

    @classmethod
    def for_config(cls, config: MockConfig) -> ClientJudge:
        """The judge of a mock running ``config``: its serving key, and its own chain's facts."""
        chain = MockChain(config)
        behaviour = config.behaviour
        private_key, _ = chain.serving_keypair(behaviour)

        def facts(key: bytes) -> KeyFacts:
            return chain_facts(chain, behaviour, config.node_small_id, key)

        return cls(private_key, config.clock, key_facts=facts)

    # --- what the app reports -----------------------------------------------------------------------

    def on_lock(self, owner: str, stack_small_id: int, public_key: bytes, max_num_tokens: int, timeout_s: int) -> None:
        seen = LockSeen(owner, stack_small_id, public_key, max_num_tokens, self._clock() + timeout_s)
        with self._mutex:
            self._locks.append(seen)

    def on_request(self, owner: str, endpoint: str, body: bytes) -> RequestSeen:
        seen = RequestSeen(owner, endpoint)
        with self._mutex:
            self._judge(seen, body)
            self._requests.append(seen)
        return seen

    def on_served(self, seen: RequestSeen, answer: dict[str, Any] | list[dict[str, Any]]) -> None:
        seen.served = content_of(answer)
        seen.streamed = isinstance(answer, list)

    # --- what the runner reads ----------------------------------------------------------------------

    def requests(self, owners: set[str] | None = None) -> list[RequestSeen]:
        with self._mutex:
            return [r for r in self._requests if owners is None or r.owner in owners]

    def lock_count(self, owners: set[str] | None = None) -> int:
        """How many locks were granted (to ``owners``): a client that took none was never handed a key."""
        with self._mutex:
            return sum(1 for lock in self._locks if owners is None or lock.owner in owners)

    # --- the judgement ------------------------------------------------------------------------------

    def _judge(self, seen: RequestSeen, body: bytes) -> None:
        try:
            raw = jsonwire.loads_object(body, field="body")
            envelope = ConfidentialComputeRequest.from_json(raw)
        except ProtocolError as exc:
            seen.flag("CLIENT-005", f"the envelope is not a valid ConfidentialComputeRequest ({exc})")
            return
        if not jsonwire.is_compact(body):
            seen.flag("CLIENT-012", "the envelope is not compact JSON without optional escapes")
        seen.stream = envelope.stream
        decoded: dict[str, bytes] = {}
        for name in _BINARY:
            try:
                decoded[name] = b64decode(getattr(envelope, name), field=name)
            except ProtocolError as exc:
                seen.flag("CLIENT-004", str(exc))
        for name, length in REQUEST_FIELD_LENGTHS.items():
            if name in decoded and len(decoded[name]) != length:
                seen.flag("CLIENT-005", f"{name}: decodes to {len(decoded[name])} bytes, expected {length}")
        if "salt" in decoded:
            seen.salt = fingerprint(decoded["salt"])
        if "nonce" in decoded:
            seen.nonce = fingerprint(decoded["nonce"])
        if "client_dh_public_key" in decoded and len(decoded["client_dh_public_key"]) == X25519_KEY_LEN:
            seen.client_key = fingerprint(canonical_public_key(decoded["client_dh_public_key"]))
        node_key = decoded.get("node_dh_public_key")
        if node_key is not None and len(node_key) == X25519_KEY_LEN:
            self._judge_key(seen, node_key)
        self._judge_lock(seen, envelope, node_key)
        try:
            plaintext = self._decrypt(envelope)
        except ProtocolError as exc:
            seen.flag("CLIENT-006", f"the envelope does not decrypt under the node key ({exc})")
            return
        digest = decoded.get("plaintext_body_hash")
        if digest is not None and digest != blake2b_256(plaintext):
            seen.flag("CLIENT-006", "plaintext_body_hash is not BLAKE2b-256 of the bytes that were encrypted")
        try:
            inner = jsonwire.loads_object(plaintext, field="plaintext")
        except ProtocolError as exc:
            seen.flag("CLIENT-006", f"the encrypted plaintext is not a JSON object ({exc.reason})")
            return
        if inner.get("model") != envelope.model_name:
            seen.flag("CLIENT-007", "model_name differs from the model inside the plaintext")
        if envelope.stream is None:
            seen.flag("CLIENT-008", "the envelope's stream is absent or null; R13.6 asks for a JSON boolean")
        elif envelope.stream != (inner.get("stream") is True):
            seen.flag("CLIENT-008", "the envelope's stream flag differs from the stream flag inside the plaintext")

    def _judge_key(self, seen: RequestSeen, key: bytes) -> None:
        """R15.14: the key the client sealed to, against the chain (the rulebook's R15.11 rule)."""
        seen.node_key = fingerprint(key)
        if self._key_facts is None:
            seen.key_unjudged = "the judge was given no chain to read"
            return
        try:
            facts = self._facts.get(key)
            if facts is None:
                if len(self._facts) >= MAX_KEYS_CACHED:  # a client picks the keys: the cache stays bounded
                    self._facts.clear()
                facts = self._facts[key] = self._key_facts(key)
            problem = lock_key_problem(key, facts)
        except (Unjudged, ProtocolError) as exc:
            seen.key_unjudged = one_line(str(exc), 300)
            return
        if problem is not None:
            seen.flag(KEY_CHECK, problem)

    def _decrypt(self, envelope: ConfidentialComputeRequest) -> bytes:
        decoded = envelope.decode()
        exchange, _ = node_exchange(decoded, self._node_private_key)
        return exchange.aead.open(decoded.nonce, decoded.ciphertext)

    def _judge_lock(self, seen: RequestSeen, envelope: ConfidentialComputeRequest, node_key: bytes | None) -> None:
        """R13.3: the key and stack of an unspent, unexpired lock of this client; R13.7: its capacity."""
        now = self._clock()
        mine = [lock for lock in self._locks if lock.owner == seen.owner]
        same_stack = [lock for lock in mine if lock.stack_small_id == envelope.stack_small_id]
        if not same_stack:
            seen.flag("CLIENT-010", "stack_small_id is not the stack of any lock this client took")
            return
        usable = [lock for lock in same_stack if not lock.used and lock.expires_at > now]
        if not usable:
            why = "every lock on this stack was already used" if all(lock.used for lock in same_stack) else "expired"
            seen.flag("CLIENT-011", f"the request came without an unspent, unexpired lock ({why})")
            return
        if node_key is not None and node_key != usable[0].public_key:
            seen.flag("CLIENT-010", "node_dh_public_key is not the public_key of the client's lock")
        # As the proxy does: the first usable lock with room for the request's units, which default to
        # the proxy's own assumption when the client sends none (R2.12).
        units = envelope.num_compute_units
        if units is None:
            units = IMAGE_DEFAULT_UNITS if seen.endpoint == "images" else LOCK_DEFAULT_TOKENS
        fitting = [lock for lock in usable if lock.max_num_tokens >= units]
        if not fitting:
            largest = max(lock.max_num_tokens for lock in usable)
            seen.flag("CLIENT-009", f"{units} compute units do not fit the client's locks (largest {largest})")
            return
        fitting[0].used = True
