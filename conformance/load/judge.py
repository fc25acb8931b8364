"""Judging a load run's answers: the fuzz oracle's rules, with memory bounded for an endless run.

A load run writes no rule of its own. Each lock goes through ``judge_lock`` and each exchange through
the oracle's ``judge`` (decrypt, hash, signature, usage, stream framing, leaks, nonces), which applies the
catalogue's rulebook, so a finding under load is named by the same check as in ``run`` and ``fuzz``.
One thing a load run reads differently: a 429 or 503 is load shed, which the spec allows, so it is
counted rather than judged as a request that was not served. What differs otherwise is what the oracle
remembers between exchanges (see :mod:`conformance.load.audit`): a
fresh within-key ledger per exchange, a bounded index for nonces across keys, and the run's signers.
"""

from __future__ import annotations

from ..checks.judging import mispaired_code, unshaped_error
from ..fuzz.guard import cut_off
from ..fuzz.oracle import Finding, OracleState, judge, judge_lock
from ..protocol.b64 import b64encode
from ..protocol.nonces import NonceLedger
from ..records import ExchangeRecord, LockRecord
from .audit import IndexObserver, NonceIndex, Tally

FINGERPRINT = ("node_public_key", "signer_address", "signature_scheme")
SHED = frozenset({429, 503})


class LoadJudge:
    """One process's judge: every lock and exchange of its users, findings into its :class:`Tally`."""

    def __init__(
        self,
        *,
        api_key: str | None,
        expected_signer: str | None = None,
        index: NonceIndex | None = None,
        origin: int = 0,
    ) -> None:
        self.index = index if index is not None else NonceIndex()
        self.nonces = IndexObserver(self.index, origin)
        self.state = OracleState(expected_signer=expected_signer, api_key=api_key, node_nonces=self.nonces)
        self.tally = Tally()
        # What identifies the deployment that answered (results.json's target): the first of each.
        self.fingerprint: dict[str, str | None] = dict.fromkeys(FINGERPRINT)

    def lock(self, lock: LockRecord) -> bool:
        """Judge a lock; True when it can be used (answered, and nothing found)."""
        if cut_off(lock) is not None:
            self.tally.cut_off += 1
            return False
        if lock.http.status in (401, 403):  # the key was refused: a setup problem (exit 2), not a finding
            self.tally.refused_key += 1
            return False
        if lock.http.status in SHED:
            self._shed(lock)
            return False
        findings = judge_lock(lock)
        self._record(findings)
        if lock.ok and lock.public_key and self.fingerprint["node_public_key"] is None:
            self.fingerprint["node_public_key"] = b64encode(lock.public_key)
        return not findings and lock.ok

    def exchange(self, record: ExchangeRecord) -> list[Finding]:
        """Judge one exchange; its key's ledger lives only as long as this call."""
        if cut_off(record) is not None:
            self.tally.cut_off += 1
            return []
        if record.http.status in SHED:
            self._shed(record)
            return []
        self.state.ledger = NonceLedger()
        self.tally.exchanges += 1
        self.tally.keys += 1
        messages, cross_key = self.index.messages, self.index.cross_key_repeats
        findings = judge(record, None, self.state)
        self.tally.node_nonces += self.index.messages - messages
        self.tally.cross_key_repeats += self.index.cross_key_repeats - cross_key
        for message in record.messages:
            if message.signer is not None:
                self.tally.signer(message.signer)
            verified = message.signature is not None and message.signature_verify_error is None
            if verified and self.fingerprint["signer_address"] is None and message.signature is not None:
                self.fingerprint["signer_address"] = message.signer
                self.fingerprint["signature_scheme"] = message.signature.scheme.label
        self.tally.within_key_reuses += len(self.state.ledger.findings)
        self._record(findings)
        return findings

    def _shed(self, record: LockRecord | ExchangeRecord) -> None:
        """Load shed: Table 10.1 lets a proxy or node answer 429 (overloaded) or 503 (no capacity), so
        such an answer is counted, not judged as a request that should have been served; its shape and
        its code's pairing are still the refusal rules' (ERR-018, ERR-026)."""
        self.tally.shed += 1
        http = record.http
        for check_id, why in (("ERR-018", unshaped_error(http)), ("ERR-026", mispaired_code(http, "proxy"))):
            if why is not None:
                self.tally.finding(check_id, f"a {record.http.status} under load: {why}")

    def _record(self, findings: list[Finding]) -> None:
        for finding in findings:
            self.tally.finding(finding.check_id, finding.reason)
