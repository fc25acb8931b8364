"""A fuzz campaign: Hypothesis draws requests (valid, awkward, or mutated), the client sends them, and
the oracle judges every exchange. A failure is shrunk by Hypothesis and saved as a replay case.

Budgets are hard caps, for paid endpoints: the campaign stops before a request that would exceed
``max_requests`` or ``max_compute_units``, and ``rps`` spaces requests out. ``estimate`` answers the
dry run: what a campaign with these settings would spend, sending nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from .. import strategies as fs
from ..checks import Target
from ..client import BudgetExceeded, ConfidentialClient
from ..evidence import ExchangeRecord
from ..protocol import jsonwire
from ..protocol.b64 import b64decode, b64encode
from ..protocol.primitives import AeadKey, blake2b_256, derive_key
from ..protocol.randomness import FixedBytes, SeededRandom
from .cases import ReplayCase
from .oracle import Finding, OracleState, judge, judge_lock

PROFILES: dict[str, dict[str, Any]] = {
    "ci": {"max_examples": 300},
    "deep": {"max_examples": 10**9, "duration_s": 600.0},
    "live": {"max_examples": 25, "max_requests": 60, "max_compute_units": 4_000},
}
TEXT_UNITS_CAP = 64  # max_tokens the strategies ask for, and the compute units each text request reserves
IMAGE_UNITS = 1_048_576
SESSIONS = {"ci": 8, "deep": 200, "live": 0}  # stateful session examples (lock/use/expire/replay)


def session_keys(target: Target, tag: str) -> dict[str, str | None]:
    """API keys for one session. The embedded mock accepts any token, so each session gets its own
    stacks and nothing an earlier step left behind can serve it (which keeps its replay self-contained);
    a live target gets the operator's keys."""
    if target.embedded:
        return {"a": f"session-{tag}-a", "b": f"session-{tag}-b"}
    return {"a": target.api_key, "b": target.second_api_key}


class CampaignOver(BaseException):
    """Raised inside a Hypothesis example to end the campaign (time or budget), not to fail it."""


@dataclass
class CampaignConfig:
    profile: str = "ci"
    seed: int = 0
    max_examples: int | None = None
    duration_s: float | None = None
    max_requests: int | None = None
    max_compute_units: int | None = None
    rps: float | None = None
    report_dir: Path = Path("reports")
    keep_plaintext: bool = False
    mutations: bool = True

    def resolved(self) -> CampaignConfig:
        """Profile defaults for whatever was not set explicitly."""
        defaults = PROFILES[self.profile]
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **changes)


@dataclass
class CampaignResult:
    examples: int = 0
    requests: int = 0
    compute_units: int = 0
    duration_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    case_path: Path | None = None
    stopped_by: str = "examples"
    requests_extra: int = 0

    @property
    def cases_per_second(self) -> float:
        return self.examples / self.duration_s if self.duration_s else 0.0


def endpoints_of(target: Target, profile: str) -> list[str]:
    out = ["chat", "completions"]
    if target.embedding_model:
        out.append("embeddings")
    if target.image_model and profile != "live":  # an image reserves a megapixel of compute units
        out.append("images")
    return out


def units_for(endpoint: str) -> int:
    return IMAGE_UNITS if endpoint == "images" else TEXT_UNITS_CAP


def estimate(config: CampaignConfig, target: Target) -> tuple[int, int]:
    """(requests, compute units) the campaign would spend at most: two requests per example (lock and
    request), plus what Hypothesis' shrinking may re-run, all within the hard caps."""
    config = config.resolved()
    examples = config.max_examples or 0
    endpoints = endpoints_of(target, config.profile)
    requests = 2 * examples
    units = examples * max(units_for(e) for e in endpoints)
    if config.max_requests is not None:
        requests = min(requests, config.max_requests)
    if config.max_compute_units is not None:
        units = min(units, config.max_compute_units)
    return requests, units


@dataclass(frozen=True)
class CampaignMutation:
    """A mutation that needs the plaintext or the whole body, so the campaign applies it itself."""

    name: str
    check_id: str
    expect: str = "refuse"

    def label(self) -> str:
        return f"{self.check_id} {self.name}"


UNKNOWN_MODEL = CampaignMutation("unknown-model", "ERR-011")  # a plaintext naming a model nobody serves
OVERSIZE = CampaignMutation("oversize-body", "ERR-013")  # an envelope over the 2 MiB body limit
LONG_HASH = CampaignMutation("long-plaintext-hash", "ERR-016")  # 33 bytes: the proxy must not sign it (W8)
OVERSIZE_BYTES = 2 * 1024 * 1024 + 1


@dataclass
class FuzzCase:
    endpoint: str
    stream: bool
    plaintext: dict[str, Any]
    mutation: fs.Mutation | CampaignMutation | None

    def __repr__(self) -> str:  # Hypothesis prints failing examples: show the shape, never the text
        mutation = self.mutation.label() if self.mutation else "valid"
        return f"FuzzCase({self.endpoint}, stream={self.stream}, {mutation})"


def fuzz_cases(target: Target, profile: str, *, mutations: bool) -> st.SearchStrategy[FuzzCase]:
    models = {
        "chat": target.chat_model,
        "completions": target.chat_model,
        "embeddings": target.embedding_model,
        "images": target.image_model,
    }

    @st.composite
    def build(draw: st.DrawFn) -> FuzzCase:
        endpoint = draw(st.sampled_from(endpoints_of(target, profile)))
        stream = draw(st.booleans()) if endpoint in ("chat", "completions") else False
        model = models[endpoint] or target.chat_model
        plaintext = draw(fs.plaintext_requests(endpoint, model, stream=stream if stream else None))
        if endpoint in ("chat", "completions"):
            plaintext["max_tokens"] = min(int(plaintext.get("max_tokens") or TEXT_UNITS_CAP), TEXT_UNITS_CAP)
        mutation: fs.Mutation | CampaignMutation | None = None
        if mutations:
            kind = draw(st.sampled_from(["valid", "envelope", "envelope", "envelope", "plaintext", "oversize", "hash"]))
            if kind == "envelope":
                mutation = draw(fs.mutations())
            elif kind == "plaintext":
                mutation = UNKNOWN_MODEL
            elif kind == "oversize" and profile != "live":
                mutation = OVERSIZE
            elif kind == "hash":
                mutation = LONG_HASH
        return FuzzCase(endpoint, stream, plaintext, mutation)

    return build()


def leak_marker(secret: bytes) -> str:
    """The random marker a campaign puts in a plaintext's ``user`` field, derived from the request's
    ephemeral secret: a replay recomputes it (to find an echo of the plaintext) without the case file
    ever holding it."""
    return f"atoma-conformance-sentinel-{secret[:8].hex()}"


def _seal_under_zero_secret(body: bytes, plaintext: bytes) -> bytes:
    """A low-order client key makes the shared secret zero; seal the body under the key a node that
    does not check would derive, so that accepting the key is visible as a served request (W17)."""
    envelope = jsonwire.loads_object(body)
    salt, nonce = b64decode(envelope["salt"]), b64decode(envelope["nonce"])
    envelope["ciphertext"] = b64encode(AeadKey(derive_key(bytes(32), salt)).seal(nonce, plaintext))
    envelope["plaintext_body_hash"] = b64encode(blake2b_256(plaintext))
    return jsonwire.dumps(envelope)


class Campaign:
    def __init__(
        self,
        config: CampaignConfig,
        target: Target,
        client: ConfidentialClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        client_factory: Callable[[str | None], ConfidentialClient] | None = None,
        sessions: int | None = None,
        sleep_costs_time: bool | None = None,
    ) -> None:
        self.config = config.resolved()
        self.client_factory = client_factory
        self.sessions = sessions if sessions is not None else SESSIONS[self.config.profile]
        self.target = target
        self.client = client
        self.clock = clock
        self.sleep = sleep
        # Whether a session's waits spend the duration budget: real sleeps do, the embedded mock's
        # virtual clock does not (its lock timeouts pass without wall time).
        self.sleep_costs_time = sleep is time.sleep if sleep_costs_time is None else sleep_costs_time
        self.state = OracleState(expected_signer=target.node_address, api_key=target.api_key)
        self.result = CampaignResult()
        self._executions = 0
        # The seed reproduces the cases; this per-run id keeps two runs with one seed from sending
        # byte-identical requests, which a conformant node rightly refuses as replays.
        self._run_id = os.urandom(8).hex()
        self._last_sent = 0.0
        self._failure: tuple[FuzzCase, ExchangeRecord | None, Finding, bytes] | None = None
        self._session_failure: tuple[list[dict[str, Any]], Finding] | None = None
        self._session_examples = 0

    # --- budget -----------------------------------------------------------------------------------

    def _admit(self, units: int) -> None:
        """Refuse (end the campaign) before anything that would break a cap."""
        c, r = self.config, self.result
        if c.duration_s is not None and time.monotonic() - self._started > c.duration_s:
            r.stopped_by = "duration"
            raise CampaignOver
        if c.max_requests is not None and self.client.requests_sent + 2 > c.max_requests:
            r.stopped_by = "max-requests"
            raise CampaignOver
        if c.max_compute_units is not None and r.compute_units + units > c.max_compute_units:
            r.stopped_by = "max-compute-units"
            raise CampaignOver

    def _pace(self) -> None:
        if self.config.rps:
            gap = 1.0 / self.config.rps - (self.clock() - self._last_sent)
            if gap > 0:
                self.sleep(gap)
        self._last_sent = self.clock()

    # --- one example ------------------------------------------------------------------------------

    def _execute(self, case: FuzzCase) -> None:
        units = units_for(case.endpoint)
        self._admit(units)
        self._executions += 1
        # Fresh seal randomness for every execution, also when Hypothesis re-runs an example while
        # shrinking: re-sending identical bytes would be a replay, and a node must refuse that.
        secret = SeededRandom(f"{self.config.seed}:{self._run_id}:{self._executions}").token_bytes(60)
        model = str(case.plaintext.get("model"))
        plaintext_value = dict(case.plaintext, user=leak_marker(secret))
        if case.mutation is UNKNOWN_MODEL:
            plaintext_value["model"] = "atoma-conformance/no-such-model"
        try:
            self._pace()
            lock = self.client.lock(model, max_num_tokens=max(units, 8192))
            self._pace()
        except BudgetExceeded:
            self.result.stopped_by = "max-requests"
            raise CampaignOver from None
        lock_findings = judge_lock(lock)
        if lock_findings:
            self._fail(case, None, lock_findings[0], secret)
        self.result.compute_units += units
        self.client.rng = FixedBytes(secret[:32], secret[32:48], secret[48:])
        plaintext = jsonwire.dumps(plaintext_value)  # the sentinel makes any echo of the plaintext findable
        prepared = self.client.prepare(
            case.endpoint,
            plaintext,
            lock,
            model_name=model,
            stream=case.stream,
            num_compute_units=units,
            mutate=None,
            headers=None,
        )
        envelope = prepared.sealed.request.to_json()
        if case.mutation is OVERSIZE:
            envelope["ciphertext"] = b64encode(bytes(OVERSIZE_BYTES * 3 // 4))
            prepared = dataclasses.replace(prepared, body=jsonwire.dumps(envelope))
        elif case.mutation is LONG_HASH:
            envelope["plaintext_body_hash"] = b64encode(b64decode(envelope["plaintext_body_hash"]) + b"\x00")
            prepared = dataclasses.replace(prepared, body=jsonwire.dumps(envelope))
        elif isinstance(case.mutation, fs.Mutation):
            body = case.mutation.apply(envelope)
            if case.mutation.name == "low-order-client-key":
                body = _seal_under_zero_secret(body, plaintext)
            prepared = dataclasses.replace(prepared, body=body)
        try:
            record = self.client.post_prepared(prepared)
        except BudgetExceeded:
            self.result.stopped_by = "max-requests"
            raise CampaignOver from None
        findings = judge(record, case.mutation, self.state)
        if findings:
            self._fail(case, record, findings[0], secret)

    def _fail(self, case: FuzzCase, record: ExchangeRecord | None, finding: Finding, secret: bytes) -> None:
        self._failure = (case, record, finding, secret)
        raise AssertionError(finding.label())

    # --- the campaign -----------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        c = self.config
        self._started = time.monotonic()  # wall time: the duration cap and the throughput are real seconds
        database = DirectoryBasedExampleDatabase(str(c.report_dir / "hypothesis"))
        strategy = fuzz_cases(self.target, c.profile, mutations=c.mutations)
        counted: list[int] = [0]

        @settings(
            max_examples=c.max_examples or 1,
            deadline=None,
            database=database,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        )
        @seed(c.seed)
        @given(strategy)
        def probe(case: FuzzCase) -> None:
            counted[0] += 1
            self._execute(case)

        try:
            probe()
        except CampaignOver:
            pass
        except (AssertionError, Flaky):
            pass
        except BaseExceptionGroup as group:  # several distinct failures: keep the last one recorded
            if not group.subgroup((AssertionError, Flaky)):
                raise
        if self._failure is None and self.result.stopped_by == "examples" and self.sessions and self.client_factory:
            self._run_sessions()
        r = self.result
        r.examples = counted[0] + self._session_examples
        r.requests = self.client.requests_sent + r.requests_extra
        r.duration_s = time.monotonic() - self._started
        if self._failure is not None:
            case, record, finding, secret = self._failure
            r.findings.append(finding)
            r.case_path = self._save(case, record, finding, secret)
        elif self._session_failure is not None:
            steps, finding = self._session_failure
            r.findings.append(finding)
            r.case_path = self._save_session(steps, finding)
        return r

    def _run_sessions(self) -> None:
        """Stateful sessions over two API keys (when a second key is known)."""
        from .stateful import Session, SessionsOver, run_sessions

        assert self.client_factory is not None
        keys = ["a"] + (["b"] if self.target.second_api_key else [])
        opened: list[ConfidentialClient] = []

        def admit(seconds: float) -> None:
            c, r = self.config, self.result
            spent = time.monotonic() - self._started + (seconds if self.sleep_costs_time else 0.0)
            if c.duration_s is not None and spent > c.duration_s:
                r.stopped_by = "duration"
                raise SessionsOver
            sent = self.client.requests_sent + sum(client.requests_sent for client in opened)
            if c.max_requests is not None and sent + 2 > c.max_requests:
                r.stopped_by = "max-requests"
                raise SessionsOver

        def make_session() -> Session:
            admit(0.0)
            self._session_examples += 1
            api = session_keys(self.target, f"{self._run_id}-{self._session_examples}")
            clients = {}
            for k in keys:
                client = self.client_factory(api[k])  # type: ignore[misc]
                opened.append(client)
                clients[k] = client
            return Session(
                self.target,
                clients,
                self.sleep,
                self.clock,
                OracleState(expected_signer=self.target.node_address, api_key=self.target.api_key),
                admit=admit,
            )

        try:
            session, failure = run_sessions(make_session, keys, max_examples=self.sessions, seed=self.config.seed)
        finally:
            self.result.requests_extra = sum(c.requests_sent for c in opened)
            for client in opened:
                client.close()
        if failure is not None and session is not None:
            self._session_failure = (session.log, failure.finding)

    def _save_session(self, steps: list[dict[str, Any]], finding: Finding) -> Path:
        replay = ReplayCase(
            check_id=finding.check_id,
            level=finding.level,
            reason=finding.reason,
            seed=self.config.seed,
            endpoint="chat",
            stream=False,
            model=self.target.chat_model,
            mutation=None,
            expect="session",
            request_body_b64="",
            exchange_secret_hex="",
            plaintext_sha256=hashlib.sha256(b"").hexdigest(),
            plaintext_bytes=0,
            extra={"steps": steps, "keys": sorted({s.get("key", "a") for s in steps})},
        )
        return replay.write(self.config.report_dir / "cases")

    def _save(self, case: FuzzCase, record: ExchangeRecord | None, finding: Finding, secret: bytes) -> Path:
        plaintext = record.plaintext if record is not None else jsonwire.dumps(case.plaintext)
        body = record.request_body if record is not None else b""
        prior = [m.nonce.hex() for m in record.messages if m.nonce] if record is not None else []
        import base64

        replay = ReplayCase(
            check_id=finding.check_id,
            level=finding.level,
            reason=finding.reason,
            seed=self.config.seed,
            endpoint=case.endpoint,
            stream=case.stream,
            model=str(case.plaintext.get("model")),
            mutation=case.mutation.label() if case.mutation else None,
            expect=case.mutation.expect if case.mutation else "accept",
            request_body_b64=base64.b64encode(body).decode(),
            exchange_secret_hex=secret.hex(),
            plaintext_sha256=hashlib.sha256(plaintext).hexdigest(),
            plaintext_bytes=len(plaintext),
            plaintext=plaintext.decode() if self.config.keep_plaintext else None,
            extra={
                "mutation_check": case.mutation.check_id if case.mutation else None,
                # NONCE-004 is a repeat across requests: replay needs the nonces the node already used.
                "prior_nonces": prior if finding.check_id == "NONCE-004" else [],
            },
        )
        return replay.write(self.config.report_dir / "cases")
