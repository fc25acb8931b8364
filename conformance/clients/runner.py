"""Run clients through the judge and every scenario, and turn what happened into CLIENT verdicts.

Each scenario gets its own mock node (strict, plus the scenario's faults) on a loopback port, with a
client judge attached. Every client under test runs the scenario's operation once through its
adapter, with an API key of its own, so the judge's records say which client sent what.

A scenario proves something only if the node really served its response: a client whose request the
node refused never saw the forged answer, so its "refusal" is recorded as an error with the judge's
findings on that request, never as a pass. A lock-key scenario (CLIENT-037) proves something only if
the client took the lock and, in the honest control of the same run, does send: a client that never
locked, or that refuses the honest node too, has shown nothing about the key.

Every adapter is told where the mock's chain is (``Instruction.chain``: its ``POST /sui`` full node,
its attestation service and its test CA root), in every scenario, so a client that verifies the lock's
key does so against the honest chain as well as the faulty ones.

Every string an adapter reports is its own to choose, escape sequences and megabytes included, so it
is cleaned once, where it enters (:func:`_run_one`): the API key and the request text blanked, then
one line with a length cap. Everything after that (verdicts, results.json, the matrices, the
terminal) only ever sees the cleaned text.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.judge import KEY_CHECK, ClientJudge, RequestSeen
from mock_node.locks import token_id
from mock_node.testing import running_node

from ..checks.base import Verdict
from ..embedded import embedded_key_source
from ..protocol import DeviceTestCa, certificate_pem
from ..results import CheckResult
from ..textsafe import one_line
from .checks import CLIENT_CHECKS, CONTROL, JUDGE_CHECKS, SCENARIOS, ClientCheck, Scenario, scenarios_by_check
from .contract import (
    CLIENT_CHARS,
    CONTENT_CHARS,
    DETAIL_CHARS,
    ERROR_CODE_CHARS,
    FAILURE_CHARS,
    AdapterFailure,
    AdapterResult,
    ChainInfo,
    Instruction,
    Operation,
    run_adapter,
)

CHAT_MODEL, EMBEDDING_MODEL, IMAGE_MODEL = DEFAULT_MODELS
PARAMS: dict[Operation, tuple[str, dict[str, Any]]] = {
    "chat": (CHAT_MODEL, {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}),
    "chat-stream": (CHAT_MODEL, {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}),
    "completions": (CHAT_MODEL, {"prompt": "Say hello.", "max_tokens": 16}),
    "embeddings": (EMBEDDING_MODEL, {"input": "Say hello."}),
    "images": (IMAGE_MODEL, {"prompt": "a lighthouse", "n": 1, "size": "256x256"}),
}


@dataclass(frozen=True)
class ClientUnderTest:
    name: str
    command: str | None
    unavailable: str | None = None  # why there is no command: every verdict is a skip with this reason
    setup_error: str | None = None  # the adapter could not be installed: every verdict is an error
    # Variables the suite itself sets for its own built-in adapter (added to the allow-listed
    # environment of contract.adapter_environment); a user's adapter gets none.
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Cell:
    """One client in one scenario; ``result`` and ``failure`` hold the cleaned text (see the module)."""

    scenario: Scenario
    result: AdapterResult | None = None
    failure: str | None = None
    requests: list[RequestSeen] = field(default_factory=list)
    instruction: Instruction | None = None
    locks: int = 0  # locks the mock granted this client in this scenario


@dataclass
class ClientReport:
    client: ClientUnderTest
    cells: list[Cell]
    checks: list[CheckResult]
    version: str | None = None

    def certification(self) -> dict[str, str]:
        out = {}
        for level in ("MUST", "SHOULD"):
            bad = [c for c in self.checks if c.level == level and c.outcome in ("fail", "error")]
            out[level] = "fail" if bad else "pass"
        return out

    @property
    def tested(self) -> bool:
        return self.client.unavailable is None


@dataclass
class Matrix:
    clients: list[ClientReport]
    started: float
    duration_s: float
    node_address: str

    @property
    def passed(self) -> bool:
        """At least one client was tested, and every tested client passed every MUST."""
        tested = [r for r in self.clients if r.tested]
        return bool(tested) and all(r.certification()["MUST"] == "pass" for r in tested)


def run_matrix(
    clients: Sequence[ClientUnderTest],
    *,
    scenarios: Sequence[Scenario] = SCENARIOS,
    timeout_s: float = 30.0,
    progress: Callable[[str], None] | None = None,
    keep_plaintext: bool = False,
) -> Matrix:
    started = time.time()
    t0 = time.monotonic()
    runnable = [c for c in clients if c.command is not None and c.setup_error is None]
    cells: dict[str, list[Cell]] = {c.name: [] for c in clients}
    run_tag = os.urandom(4).hex()  # two runs against one judge never share an API key
    node_address = ""
    for scenario in scenarios:
        config = MockConfig(faults=scenario.faults)
        config.judge = judge = ClientJudge.for_config(config)
        node_address = config.signer_address
        if progress:
            progress(f"{scenario.check.id} {scenario.name}")
        with running_node(config) as base_url, _quiet_disconnects():
            chain = chain_info(base_url, config)
            one = partial(_run_one, scenario, base_url, judge, node_address, timeout_s, run_tag, keep_plaintext, chain)
            with ThreadPoolExecutor(max_workers=max(1, min(3, len(runnable)))) as pool:
                for client, cell in zip(runnable, pool.map(one, runnable), strict=True):
                    cells[client.name].append(cell)
    reports = []
    for client in clients:
        mine = cells[client.name]
        version = next((c.result.client for c in mine if c.result is not None and c.result.client), None)
        checks = [CheckResult(
            check.id, check.level, "CLIENT", check.title, list(check.spec), v.outcome, v.reason, v.evidence_json()
        ) for check, v in judge_all(client, mine, scenarios, keep_plaintext=keep_plaintext)]  # fmt: skip
        reports.append(ClientReport(client, mine, checks, version))
    return Matrix(reports, started, time.monotonic() - t0, node_address)


def chain_info(base_url: str, config: MockConfig) -> ChainInfo:
    """Where a mock serving at ``base_url`` keeps its chain, as an adapter is told it."""
    source = embedded_key_source(base_url, config.node_small_id)
    return ChainInfo(source.sui_rpc, source.package_id, source.attestation_service, _test_ca_pem(config.seed))


@cache
def _test_ca_pem(seed: str) -> str:
    """The root of the test device CA the mock of ``seed`` signs its evidence with (mock_node/chain.py)."""
    return certificate_pem([DeviceTestCa.create(seed.encode()).root]).decode("ascii")


@contextmanager
def _quiet_disconnects() -> Iterator[None]:
    """A client that refuses a stream hangs up mid-response, as it should; asyncio then logs
    "socket.send() raised exception." for every write the mock still makes. That is the scenario
    working, not a problem to show the user."""
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_one(
    scenario: Scenario,
    base_url: str,
    judge: ClientJudge,
    node_address: str,
    timeout_s: float,
    run_tag: str,
    keep_plaintext: bool,
    chain: ChainInfo | None,
    client: ClientUnderTest,
) -> Cell:
    """One client, one scenario: the adapter's answer (cleaned) and what the judge saw of this client."""
    api_key = "-".join(("client-cert", run_tag, client.name, scenario.check.id, *scenario.faults))
    model, params = PARAMS[scenario.operation]
    instruction = Instruction(base_url, api_key, model, scenario.operation, params, node_address, timeout_s, chain)
    cell = Cell(scenario, instruction=instruction)
    assert client.command is not None
    try:
        cell.result = clean_result(
            run_adapter(client.command, instruction, env=dict(client.env)), instruction, keep_plaintext=keep_plaintext
        )
    except AdapterFailure as exc:
        cell.failure = said(str(exc), instruction, FAILURE_CHARS, keep_plaintext=False)
    cell.requests = judge.requests({token_id(api_key)})
    cell.locks = judge.lock_count({token_id(api_key)})
    return cell


def judge_all(
    client: ClientUnderTest, cells: list[Cell], scenarios: Sequence[Scenario], *, keep_plaintext: bool = False
) -> list[tuple[ClientCheck, Verdict]]:
    """A verdict for every CLIENT check, in id order."""
    by_id: dict[str, Verdict] = {}
    for check in JUDGE_CHECKS:
        by_id[check.id] = _blanket(client) or judge_requests(check, [r for c in cells for r in c.requests])
    groups = scenarios_by_check(scenarios)
    for check_id, group in groups.items():
        verdicts = []
        for scenario in group:
            cell = next((c for c in cells if c.scenario is scenario), None)
            if cell is None:
                verdicts.append(Verdict("error", "not run"))
            elif scenario.kind == "lock-key":
                verdicts.append(judge_key_scenario(cell))
            else:
                verdicts.append(judge_scenario(cell, keep_plaintext=keep_plaintext))
        by_id[check_id] = _blanket(client) or combined(group, verdicts)
    for check_id, group in groups.items():  # a refusal proves nothing from a client that also refuses the honest answer
        scenario, verdict = group[0], by_id[check_id]
        control = CONTROL.get(scenario.operation)
        if scenario.expect != "refuse" or verdict.outcome != "pass":
            continue
        if control in by_id and by_id[control].outcome != "pass":
            reason = f"it also fails the honest control {control}, so this refusal proves nothing"
            by_id[check_id] = Verdict("error", reason, verdict.evidence)
        elif scenario.kind == "lock-key" and control not in by_id:
            # Nothing was served here: only the control shows that the client sends when the key is bound.
            reason = f"not evaluated: its honest control {control} was not run, so sending nothing proves nothing"
            by_id[check_id] = Verdict("error", reason, verdict.evidence)
    return [(check, by_id[check.id]) for check in CLIENT_CHECKS if check.id in by_id]


def combined(group: Sequence[Scenario], verdicts: Sequence[Verdict]) -> Verdict:
    """One check's verdict over its scenarios: the first failure, else the first error, else the first
    skip, else a pass; each reason names its scenario when there are several."""
    if len(group) == 1:
        return verdicts[0]
    evidence = {"scenarios": {s.name: v.outcome for s, v in zip(group, verdicts, strict=True)}}
    for s, v in zip(group, verdicts, strict=True):
        evidence[s.name] = v.evidence_json()
    for outcome in ("fail", "error", "skip"):
        named = [(s.name, v.reason) for s, v in zip(group, verdicts, strict=True) if v.outcome == outcome]
        if named:
            also = f" (also {outcome}s: {', '.join(name for name, _ in named[1:])})" if len(named) > 1 else ""
            return Verdict(outcome, f"{named[0][0]}: {named[0][1]}{also}", evidence)
    return Verdict("pass", "; ".join(f"{s.name}: {v.reason}" for s, v in zip(group, verdicts, strict=True)), evidence)


def _blanket(client: ClientUnderTest) -> Verdict | None:
    if client.unavailable is not None:
        return Verdict("skip", client.unavailable)
    if client.setup_error is not None:
        return Verdict("error", client.setup_error)
    return None


_FRESH = {"CLIENT-001": ("client_key", "X25519 public key"), "CLIENT-002": ("salt", "salt")}
_FRESH["CLIENT-003"] = ("nonce", "request nonce")


def judge_requests(check: ClientCheck, requests: list[RequestSeen]) -> Verdict:
    """A judge check over every request the client sent in the run."""
    if not requests:
        return Verdict("error", "no confidential request from this client reached the node")
    evidence: dict[str, Any] = {"requests": len(requests)}
    if check.id in _FRESH:
        attribute, label = _FRESH[check.id]
        values = [getattr(r, attribute) for r in requests if getattr(r, attribute) is not None]
        if len(values) < 2:
            return Verdict("skip", f"freshness needs at least two requests; this run saw {len(values)}", evidence)
        repeats = len(values) - len(set(values))
        evidence["distinct"] = len(set(values))
        if repeats:
            return Verdict("fail", f"the same {label} was sent in {repeats + 1} of {len(values)} requests", evidence)
        return Verdict("pass", f"{len(values)} requests, every {label} new", evidence)
    flagged = [r for r in requests if check.id in r.findings]
    evidence["violations"] = len(flagged)
    if flagged:
        return Verdict("fail", f"{len(flagged)} of {len(requests)} requests: {flagged[0].findings[check.id]}", evidence)
    return Verdict("pass", f"{len(requests)} requests, none in violation", evidence)


def _redact(text: str, instruction: Instruction, *, keep_plaintext: bool) -> str:
    """No API key in any report, and no request text unless the user asked to keep plaintext."""
    text = text.replace(instruction.api_key, "[api key]")
    if not keep_plaintext:
        for value in _strings(instruction.params):
            if len(value) >= 4:
                text = text.replace(value, "[request text]")
    return text


def said(text: str, instruction: Instruction, limit: int, *, keep_plaintext: bool) -> str:
    """Adapter-chosen text as a report may hold it: redacted first (a cut must never leave half a key
    behind), then one line of at most ``limit`` characters with control characters escaped."""
    return one_line(_redact(text, instruction, keep_plaintext=keep_plaintext), limit)


def clean_result(result: AdapterResult, instruction: Instruction, *, keep_plaintext: bool) -> AdapterResult:
    """``result`` with every string cleaned, except ``content`` when it must be compared with what the
    node served: that is cleaned only where it is put in a report (``--keep-plaintext``)."""

    def clean(text: str | None, limit: int) -> str | None:
        return None if text is None else said(text, instruction, limit, keep_plaintext=keep_plaintext)

    return dataclasses.replace(
        result,
        error_code=clean(result.error_code, ERROR_CODE_CHARS),
        detail=clean(result.detail, DETAIL_CHARS),
        client=clean(result.client, CLIENT_CHARS),
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


ENDPOINT_OF = {
    "chat": "chat",
    "chat-stream": "chat",
    "completions": "completions",
    "embeddings": "embeddings",
    "images": "images",
}


def judge_key_scenario(cell: Cell) -> Verdict:
    """CLIENT-037 in one lock-key scenario: did the client send anything to a key the chain does not
    commit? The mock's judge applied the rulebook's rule to every request (RequestSeen.findings)."""
    scenario, result = cell.scenario, cell.result
    unbound = [r for r in cell.requests if KEY_CHECK in r.findings]
    evidence: dict[str, Any] = {
        "operation": scenario.operation,
        "faults": list(scenario.faults),
        "locks": cell.locks,
        "requests": len(cell.requests),
        "sent_to_unbound_key": len(unbound),
    }
    if result is not None:
        evidence["outcome"], evidence["error_code"] = result.outcome, result.error_code
        if result.detail:
            evidence["detail"] = result.detail
    if unbound:  # sent: whatever the client did with the answer afterwards, or however its adapter ended
        more = f" ({len(unbound)} of {len(cell.requests)} requests)" if len(cell.requests) > 1 else ""
        return Verdict(
            "fail", f"encrypted a request to the lock's key{more}: {unbound[0].findings[KEY_CHECK]}", evidence
        )
    if cell.failure is not None or result is None:
        return Verdict("error", f"the adapter failed: {cell.failure}", evidence)
    unjudged = [r.key_unjudged for r in cell.requests if r.key_unjudged is not None]
    if unjudged:
        return Verdict("error", f"not evaluated: a request's key could not be judged ({unjudged[0]})", evidence)
    undecoded = [r for r in cell.requests if r.node_key is None]
    if undecoded:
        return Verdict("error", "not evaluated: a request's node_dh_public_key is not a 32-byte key", evidence)
    if result.unsupported:
        if cell.requests:
            return Verdict("error", "the adapter says unsupported, but the client sent a request", evidence)
        return Verdict("skip", f"the client has no confidential {scenario.operation} operation", evidence)
    if cell.locks == 0:
        return Verdict(
            "error",
            "not evaluated: the client took no lock, so it was never handed the key (it stopped before R15.14 applies)",
            evidence,
        )
    if cell.requests:  # every request sealed to a key the chain commits (not the lock's): nothing to the bad key
        return Verdict(
            "pass", f"sent {len(cell.requests)} request(s), each sealed to a key the chain commits", evidence
        )
    if result.accepted:
        return Verdict("error", "reported success although it sent no request, so this proves nothing", evidence)
    return Verdict("pass", f"took the lock and sent nothing to its key ({result.error_code})", evidence)


def judge_scenario(cell: Cell, *, keep_plaintext: bool = False) -> Verdict:
    scenario, result = cell.scenario, cell.result
    want_stream = scenario.operation == "chat-stream"
    # Only an answer of the scenario's own kind counts: a client that quietly turns a stream into a
    # plain request never sees the faulty chunks.
    served = [
        r
        for r in cell.requests
        if r.served is not None and r.endpoint == ENDPOINT_OF[scenario.operation] and r.streamed == want_stream
    ]
    evidence: dict[str, Any] = {
        "operation": scenario.operation,
        "faults": list(scenario.faults),
        "requests": len(cell.requests),
        "served": bool(served),
    }
    if cell.failure is not None or result is None:
        return Verdict("error", f"the adapter failed: {cell.failure}", evidence)
    evidence["outcome"], evidence["error_code"] = result.outcome, result.error_code
    if result.unsupported:
        if served:
            return Verdict("error", "the adapter says unsupported, but the node served this client", evidence)
        return Verdict("skip", f"the client has no confidential {scenario.operation} operation", evidence)
    if result.detail:
        evidence["detail"] = result.detail
    if keep_plaintext and cell.instruction is not None and result.content is not None:
        evidence["content"] = said(result.content, cell.instruction, CONTENT_CHARS, keep_plaintext=True)
    if scenario.expect == "accept":
        if not result.accepted:
            why = f"{result.error_code}: {evidence['detail']}" if result.detail else result.error_code
            return Verdict("fail", f"refused an honest response ({why})", evidence)
        if not served:
            kind = "event stream" if want_stream else f"{scenario.operation} answer"
            return Verdict("fail", f"reported success although the node served it no {kind}", evidence)
        if result.content != served[-1].served:
            evidence["content_length"] = len(result.content or "")
            return Verdict("fail", "handed its caller different content from what the node served", evidence)
        return Verdict("pass", "accepted the response and handed over exactly what the node served", evidence)
    if not served:
        findings = sorted({f"{k}: {v}" for r in cell.requests for k, v in r.findings.items()})
        other = [r for r in cell.requests if r.served is not None]
        if findings:
            why = "; ".join(findings)
        elif other:
            why = f"the client made no {scenario.operation} request that the node served, only other kinds"
        else:
            why = "its request never reached the node or was refused"
        return Verdict(
            "error", f"the node never served this scenario's response, so it proves nothing ({why})", evidence
        )
    if result.accepted:
        return Verdict("fail", "accepted the response and handed its content to the caller", evidence)
    return Verdict("pass", f"refused the response ({result.error_code})", evidence)
