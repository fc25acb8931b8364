"""The fuzz oracle: what must hold for one exchange, given what was sent.

A request the strategies left valid (or changed in a way the spec allows) must be served, and every
message of the answer must decode, decrypt, hash, verify and keep nonce discipline. A request a
mutation broke must be refused cleanly and leak nothing. The oracle writes none of these rules: it
applies the rulebook (``conformance.checks.judging``) that the catalogue's checks apply, so each
finding is named by the catalogue check it fails ("ERR-002 tampered tag accepted", not a diff) and
a rule cannot mean one thing in a run and another in a campaign.

An answer that was cut off (no answer, a read timeout, the exchange deadline, the size cap, a transport
error: :func:`~conformance.fuzz.guard.cut_off`) is not judged at all: its status line may say 200, but
nothing after it can be trusted to be what the target meant to send, so calling it "served" (or
"accepted") would be a verdict about the client's limits. The campaign counts such answers instead,
and a target that mostly gives them is unusable (exit 2), never "no finding".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..checks import CATALOGUE
from ..checks.judging import (
    across_keys,
    exchange_problems,
    leaks,
    lock_problems,
    message_problems,
    refusal_problems,
    round_trip_problem,
    signer_problems,
)
from ..protocol.nonces import NonceLedger, NonceReuseFinding
from ..records import ExchangeRecord, LockRecord, MessageRecord
from ..textsafe import one_line
from .guard import cut_off


class Expectation(Protocol):
    """What the oracle needs to know of a request that was changed before it was sent: its name, the
    check it violates, and whether a node must refuse it. Both kinds of mutation (``strategies.Mutation``,
    a family's change to the envelope, and ``campaign.CampaignMutation``, one the campaign makes to the
    plaintext or the body) provide it."""

    @property
    def name(self) -> str: ...
    @property
    def check_id(self) -> str: ...
    @property
    def expect(self) -> str: ...


# The catalogue is the one source of levels: a finding is as serious as the check it is named after.
LEVELS: dict[str, str] = {check.id: check.level for check in CATALOGUE}
ENDPOINT_CHECK = {
    "chat": "ENDPOINT-001",
    "completions": "ENDPOINT-002",
    "embeddings": "ENDPOINT-003",
    "images": "ENDPOINT-004",
}
STREAM_CHECK = {"chat": "ENDPOINT-005", "completions": "ENDPOINT-006"}


def level_of(check_id: str) -> str:
    """The catalogue level of ``check_id``. An id the catalogue lacks is a bug in the fuzz layer, not a
    target's fault, so it fails loudly rather than defaulting to a level."""
    try:
        return LEVELS[check_id]
    except KeyError:
        raise LookupError(f"{check_id!r} is not a check of the catalogue") from None


@dataclass(frozen=True)
class Finding:
    check_id: str
    reason: str

    def __post_init__(self) -> None:
        level_of(self.check_id)

    @property
    def level(self) -> str:
        return level_of(self.check_id)

    def label(self) -> str:
        return f"{self.check_id} {self.reason}"


class NonceObserver(Protocol):
    """Where the oracle records the node's nonces across keys (NONCE-004): a campaign's whole ledger,
    or a load run's bounded index (``conformance.load.audit.IndexObserver``)."""

    def observe(self, key_id: str, nonce: bytes, where: str) -> NonceReuseFinding | None: ...


@dataclass
class OracleState:
    """What the oracle remembers across a campaign: the nonce ledgers and the signer."""

    expected_signer: str | None = None
    api_key: str | None = None
    face: str = "proxy"  # which half of Table 10.1 a refusal's code is judged against (ERR-026)
    signer: str | None = None
    ledger: NonceLedger = field(default_factory=NonceLedger)
    node_nonces: NonceObserver = field(default_factory=NonceLedger)


def judge_lock(lock: LockRecord) -> list[Finding]:
    """Findings for a lock; none for a cut-off answer, which the caller must not use (check
    :func:`cut_off` first)."""
    if cut_off(lock) is not None:
        return []
    return [Finding(p.check_id, f"the lock: {p.reason}") for p in lock_problems(lock)]


def judge(record: ExchangeRecord, mutation: Expectation | None, state: OracleState) -> list[Finding]:
    """Every finding for one exchange. Updates the ledgers (so call it once per exchange). A cut-off
    answer gets none: it is no evidence either way (the caller counts it)."""
    if cut_off(record) is not None:
        return []
    if mutation is not None and mutation.expect == "refuse":
        problems = refusal_problems(record, mutation.check_id, state.api_key, state.face)
        return [Finding(p.check_id, f"{mutation.name}: {p.reason}") for p in problems]
    return _judge_success(record, state, mutated=mutation is not None)


def _judge_success(record: ExchangeRecord, state: OracleState, *, mutated: bool) -> list[Finding]:
    endpoint_check = (STREAM_CHECK if record.streaming else ENDPOINT_CHECK)[record.endpoint]
    if record.http.status != 200:
        return [Finding(endpoint_check, f"a valid request was not served ({_refused_because(record)})")]
    if not record.messages:  # a 200 that carried no envelope served nothing; the rulebook may say why
        problems = exchange_problems(record)
        why = f"a valid request was not served ({round_trip_problem(record)})"
        return [Finding(p.check_id, p.reason) for p in problems] or [Finding(endpoint_check, why)]
    if not mutated:
        state.ledger.observe(record.exchange.key_id, record.exchange.request_nonce, "request")
    problems = [*exchange_problems(record), *message_problems(record)]
    findings = [Finding(p.check_id, p.reason) for p in problems]
    findings += [
        Finding("ERR-025", f"{record.endpoint}: the answer echoes the {k}") for k in leaks(record, state.api_key)
    ]
    for message in record.messages:
        findings += _judge_nonce_ledgers(message, record, state)
        if message.signature is not None and message.signature_verify_error is None:
            findings += _judge_signer(message, f"{record.endpoint} {message.where}", state)
    return findings


def _refused_because(record: ExchangeRecord) -> str:
    return f"{record.http.status}, " + one_line((record.http.error_body() or ("", "no error body"))[0], 60)


def _judge_nonce_ledgers(message: MessageRecord, record: ExchangeRecord, state: OracleState) -> list[Finding]:
    """NONCE-004 and NONCE-005 across the campaign: the run's ledgers, fed one exchange at a time."""
    if message.nonce is None:
        return []
    where = f"{record.endpoint} {message.where}"
    findings = []
    repeat = state.node_nonces.observe("any", message.nonce, f"{record.exchange.key_id} {where}")
    if repeat is not None and across_keys([repeat]):
        findings.append(Finding("NONCE-004", f"{where}: a nonce seen under another key"))
    reuse = state.ledger.observe(record.exchange.key_id, message.nonce, where)
    if reuse is not None and not record.streaming:  # within a stream, NONCE-003 says it
        findings.append(Finding("NONCE-005", f"{where}: (key, nonce) already used at {reuse.first.where}"))
    return findings


def _judge_signer(message: MessageRecord, where: str, state: OracleState) -> list[Finding]:
    """SIG-006 and SIG-007 as the catalogue judges them, over the campaign's signers so far."""
    signer = message.signer
    if signer is None:
        return []
    if state.signer is None:
        state.signer = signer
    seen = {state.signer, signer}
    return [Finding(p.check_id, f"{where}: {p.reason}") for p in signer_problems(seen, state.expected_signer)]
