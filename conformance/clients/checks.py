"""The CLIENT checks, as data: what a client must do when it builds a request, and what it must refuse.

Two kinds, one id space (``CLIENT-NNN``, never renumbered):

* **judge** checks read what the mock node's client judge (mock_node/judge.py) saw on the wire, over
  every request a client made in a run: fresh secrets, canonical encodings, the right hash, lock use.
* **scenario** checks each serve the client one response from the mock node's fault catalogue and
  ask the adapter whether the client handed it to its user. For a forged or tampered response the
  client MUST refuse; for an honest one (the controls) it MUST accept, with exactly the content the
  node served, or a client that refuses everything would pass.
* **lock-key** scenarios (CLIENT-037, one check over two scenarios) hand the client a lock whose key the
  chain does not commit (never committed; an older rotation's). What is judged is what the client
  *sent*: a request sealed to that key fails, whatever the client did with the answer (R15.14).

Levels follow docs/spec.md §13 (client obligations), §11 (usage) and §15 (key binding).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..taxonomy import Level
from .contract import Operation


@dataclass(frozen=True)
class ClientCheck:
    id: str
    level: Level
    title: str
    spec: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class Scenario:
    """One adversarial (or control) response, served by a mock node running ``faults``.

    ``kind`` says what is judged: ``response``, whether the client handed the served response to its
    caller; ``lock-key``, whether it sent anything to the key the lock handed out (``expect`` is then
    "refuse": refuse to send)."""

    check: ClientCheck
    name: str
    operation: Operation
    faults: tuple[str, ...]
    expect: Literal["accept", "refuse"]
    kind: Literal["response", "lock-key"] = "response"


def _c(id: str, level: Level, title: str, spec: tuple[str, ...], evidence: str) -> ClientCheck:
    return ClientCheck(id, level, title, spec, evidence)


_REQUESTS = "requests judged, violations, the first violation's reason (fingerprints only)"
JUDGE_CHECKS: tuple[ClientCheck, ...] = (
    _c("CLIENT-001", "MUST", "A new X25519 key pair for every request", ("R13.1",), _REQUESTS),
    _c("CLIENT-002", "MUST", "A new salt for every request", ("R13.1",), _REQUESTS),
    _c("CLIENT-003", "MUST", "A new request nonce for every request", ("R13.1",), _REQUESTS),
    _c("CLIENT-004", "MUST", "Every binary member is canonical base64", ("R13.2",), _REQUESTS),
    _c(
        "CLIENT-005",
        "MUST",
        "A well-formed envelope with exact field lengths",
        ("R3.1", "R3.5", "R3.6", "R3.7", "R3.8", "R3.9"),
        _REQUESTS,
    ),
    _c("CLIENT-006", "MUST", "plaintext_body_hash is BLAKE2b-256 of the encrypted bytes", ("R13.4",), _REQUESTS),
    _c("CLIENT-007", "MUST", "model_name equals the model inside the plaintext", ("R13.5",), _REQUESTS),
    _c("CLIENT-008", "MUST", "The envelope's stream flag equals the plaintext's", ("R13.6",), _REQUESTS),
    _c("CLIENT-009", "SHOULD", "num_compute_units fits the lock's max_num_tokens", ("R13.7",), _REQUESTS),
    _c("CLIENT-010", "MUST", "The node key and stack come from the client's own lock", ("R13.3",), _REQUESTS),
    _c("CLIENT-011", "MUST", "Each lock is used once, before it expires", ("R13.3",), _REQUESTS),
    _c("CLIENT-012", "SHOULD", "The envelope is compact JSON without optional escapes", ("R13.8",), _REQUESTS),
)

_SERVED = "the adapter's outcome and error code, whether the node served the scenario, content match"


# id, level, title, spec, scenario name, operation, faults, expectation
_ROWS: tuple[tuple[str, Level, str, tuple[str, ...], str, Operation, tuple[str, ...], str], ...] = (
    # Controls: an honest node. A client must hand over exactly what the node served.
    ("CLIENT-020", "MUST", "Accepts an honest response", ("R13.10", "R13.11"), "honest", "chat", (), "accept"),
    ("CLIENT-021", "MUST", "Accepts an honest stream that ends without [DONE]", ("R13.15",), "honest stream",
     "chat-stream", (), "accept"),
    ("CLIENT-022", "SHOULD", "Accepts honest embeddings", ("R13.10",), "honest embeddings", "embeddings", (),
     "accept"),
    ("CLIENT-023", "SHOULD", "Gets an image from an honest node (locks enough units)", ("R13.7",),
     "honest images", "images", (), "accept"),
    ("CLIENT-035", "MUST", "Accepts a stream that ends with data: [DONE]", ("R13.15",), "[DONE] sent",
     "chat-stream", ("done-sentinel",), "accept"),
    ("CLIENT-036", "MUST", "Accepts a stream with keep-alive comments", ("R13.16",), "keep-alive comments",
     "chat-stream", ("keepalive-flood",), "accept"),
    # Forged or tampered responses: MUST refuse.
    ("CLIENT-024", "MUST", "Refuses a wrong response_hash", ("R13.11",), "bad response_hash", "chat",
     ("wrong-response-hash",), "refuse"),
    ("CLIENT-025", "MUST", "Refuses a stream chunk with a wrong response_hash", ("R13.11",),
     "bad response_hash (stream)", "chat-stream", ("wrong-response-hash",), "refuse"),
    ("CLIENT-026", "MUST", "Refuses an invalid signature", ("R13.11",), "bad signature", "chat",
     ("signature-wrong-bytes",), "refuse"),
    ("CLIENT-027", "MUST", "Refuses a response without a signature", ("R13.11",), "no signature", "chat",
     ("missing-signature",), "refuse"),
    ("CLIENT-028", "MUST", "Refuses a valid signature by a signer other than the node it was told", ("R13.12",),
     "wrong signer", "chat", ("foreign-signer",), "refuse"),
    ("CLIENT-029", "MUST", "Refuses a truncated GCM tag", ("R13.10",), "truncated tag", "chat", ("truncated-tag",),
     "refuse"),
    ("CLIENT-030", "MUST", "Refuses a response that reuses the request nonce", ("R13.13",), "request nonce echoed",
     "chat", ("echo-request-nonce",), "refuse"),
    # Stream integrity and usage: SHOULD refuse (chunks carry no sequence number, W6).
    ("CLIENT-031", "SHOULD", "Refuses a stream whose chunks reuse one nonce", ("R13.14",),
     "nonce reused across chunks", "chat-stream", ("stream-nonce-reuse",), "refuse"),
    ("CLIENT-032", "SHOULD", "Refuses a duplicated chunk", ("R13.14",), "duplicated chunk", "chat-stream",
     ("duplicate-chunk",), "refuse"),
    ("CLIENT-033", "SHOULD", "Refuses a chunk that arrives after the usage chunk", ("R13.14",), "reordered chunks",
     "chat-stream", ("reorder-chunks",), "refuse"),
    ("CLIENT-034", "SHOULD", "Refuses a clear usage that differs from the encrypted one", ("R11.6",),
     "clear usage differs", "chat", ("usage-mismatch",), "refuse"),
)  # fmt: skip

# R15.14: the lock hands out a key the chain does not commit, and the node serves whoever uses it. A
# client that verifies refuses before sending; one that trusts the lock (W32) encrypts to the key.
_KEY_SENT = (
    "the adapter's outcome and error code, locks taken, requests sent and how many were sealed to a key the "
    "chain does not commit, the rule's reason (fingerprints only)"
)
KEY_CHECK = ClientCheck(
    "CLIENT-037", "SHOULD", "Sends nothing to a lock key the chain does not commit", ("R15.14",), _KEY_SENT
)
KEY_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(KEY_CHECK, "lock key never committed", "chat", ("lock-key-uncommitted",), "refuse", "lock-key"),
    Scenario(KEY_CHECK, "lock key of an older rotation", "chat", ("lock-key-stale",), "refuse", "lock-key"),
)

SCENARIOS: tuple[Scenario, ...] = (
    *(
        Scenario(ClientCheck(id, level, title, spec, _SERVED), name, operation, faults, expect)  # type: ignore[arg-type]
        for id, level, title, spec, name, operation, faults, expect in _ROWS
    ),
    *KEY_SCENARIOS,
)


def scenarios_by_check(scenarios: Iterable[Scenario] = SCENARIOS) -> dict[str, tuple[Scenario, ...]]:
    """The scenarios of each scenario check, in the order given (CLIENT-037 has two)."""
    out: dict[str, tuple[Scenario, ...]] = {}
    for scenario in scenarios:
        out[scenario.check.id] = (*out.get(scenario.check.id, ()), scenario)
    return out


SCENARIOS_OF = scenarios_by_check()
CLIENT_CHECKS: tuple[ClientCheck, ...] = tuple(
    sorted((*JUDGE_CHECKS, *(group[0].check for group in SCENARIOS_OF.values())), key=lambda c: int(c.id.split("-")[1]))
)
BY_ID = {c.id: c for c in CLIENT_CHECKS}
# The honest control of each operation: a client must accept it before its refusals mean anything.
CONTROL = {s.operation: s.check.id for s in SCENARIOS if s.expect == "accept" and not s.faults}


def described(check_id: str, *, sep: str = "; ") -> str | None:
    """A scenario check's scenarios in words (operation, faults, what the client must do), or None for a
    judge check."""
    group = SCENARIOS_OF.get(check_id)
    if group is None:
        return None
    first = group[0]
    if first.kind == "lock-key":
        faults = " / ".join(f for s in group for f in s.faults)
        return f"{first.operation}{sep}fault {faults} (one run each){sep}must send nothing to the lock's key"
    faults = ", ".join(first.faults) or "none (honest node)"
    return f"{first.operation}{sep}fault {faults}{sep}must {first.expect}"
