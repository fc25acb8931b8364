"""A fuzz campaign: Hypothesis draws requests (valid, awkward, or mutated), the client sends them, and
the oracle judges every exchange. A failure is shrunk by Hypothesis and saved as a replay case.

Budgets are hard caps, for paid endpoints: the campaign stops before a request that would exceed
``max_requests`` or ``max_compute_units``, and ``rps`` spaces requests out. ``estimate`` answers the
dry run: the most a campaign with these settings can send, sending nothing. It is an upper bound by
construction, not a forecast: every client of the campaign (the sessions' too) draws from one
:class:`~conformance.budget.LocalBudget` of that size, so the promise printed by ``--dry-run`` is the
cap the run enforces. What Hypothesis would spend beyond it (shrinking a failure at length) is cut
short, and the smallest failure found by then is the one saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, example, find, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from .. import strategies as fs
from ..budget import LocalBudget, RequestBudget
from ..checks import Target
from ..client import BudgetExceeded, ClientOptions, ConfidentialClient
from ..evidence import ExchangeRecord
from ..progress import format_seconds
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
# A --target run whose profile sets no cap gets this one: a paid endpoint never runs uncapped by
# default. --max-requests raises or lowers it.
TARGET_MAX_REQUESTS = 1_000
DEFAULT_LOCK_RETRIES = ClientOptions().lock_retries


@contextlib.contextmanager
def hypothesis_home(path: Path) -> Iterator[None]:
    """Point Hypothesis' own storage (its constants cache, charmap, observations) at ``path``.

    Passing ``database=`` is not enough: Hypothesis writes those other files under
    ``$HYPOTHESIS_STORAGE_DIRECTORY`` or ``./.hypothesis``, and a command must not litter the
    directory it was started in. The previous home is restored, so a caller's own Hypothesis use
    (the test suite's) is unchanged.
    """
    from hypothesis import configuration

    previous = vars(configuration).get("__hypothesis_home_directory")  # no public getter
    configuration.set_hypothesis_home_dir(path)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)


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
    preflight: bool = False  # one lock request is sent before the campaign (a --target run)

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
    requests_extra: int = 0  # the stateful sessions' share of ``requests``
    estimate: int = 0  # the most the campaign could send: its hard cap

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


def reuse_allowance(examples: int) -> int:
    """Examples Hypothesis replays from its database before generating (its own sizing rule)."""
    return max(2, math.ceil(0.1 * examples))


def shrink_allowance(examples: int) -> int:
    """Executions granted to shrinking a failure; past them the cap ends shrinking early."""
    return min(100, max(10, examples))


@dataclass(frozen=True)
class Plan:
    """The most a campaign can send, by phase. ``requests`` is the campaign's hard cap."""

    requests: int
    compute_units: int
    preflight: int
    stateless: int
    sessions: int
    uncapped: int  # before --max-requests

    def __iter__(self) -> Iterator[int]:  # ``requests, units = estimate(...)``
        return iter((self.requests, self.compute_units))


def plan(
    config: CampaignConfig,
    target: Target,
    *,
    sessions: int | None = None,
    lock_retries: int = DEFAULT_LOCK_RETRIES,
) -> Plan:
    """An upper bound on what the campaign sends, counting everything a client sends:

    - the preflight lock (``config.preflight``, no retries);
    - per stateless execution a lock (with up to ``lock_retries`` retries on 429/503) and a request;
      executions are the directed cases, the examples, the database replays and a shrinking allowance;
    - the directed sessions and ``sessions`` machine examples of ``STEP_COUNT`` steps, each step
      counted as the costliest one (a replay: a lock with its retries, and a request).

    ``max_requests`` caps the sum. Compute units are counted for the stateless phase, at the most
    expensive endpoint.
    """
    from .stateful import directed_requests, machine_requests

    c = config.resolved()
    lock_cost = 1 + lock_retries
    examples = c.max_examples or 0
    explicit = directed_count(c.profile, mutations=c.mutations)
    executions = explicit + examples + reuse_allowance(examples) + shrink_allowance(examples)
    stateless = executions * (lock_cost + 1)
    count = SESSIONS[c.profile] if sessions is None else sessions
    in_sessions = 0
    if count:
        keys = ["a"] + (["b"] if target.second_api_key else [])
        in_sessions = directed_requests(keys, lock_cost) + machine_requests(count + 1, lock_cost)
    preflight = 1 if c.preflight else 0
    uncapped = preflight + stateless + in_sessions
    requests = uncapped if c.max_requests is None else min(uncapped, c.max_requests)
    units = executions * max(units_for(e) for e in endpoints_of(target, c.profile))
    if c.max_compute_units is not None:
        units = min(units, c.max_compute_units)
    return Plan(requests, units, preflight, stateless, in_sessions, uncapped)


def estimate(
    config: CampaignConfig, target: Target, *, sessions: int | None = None, lock_retries: int = DEFAULT_LOCK_RETRIES
) -> Plan:
    """(requests, compute units) the campaign can spend at most; see :func:`plan`."""
    return plan(config, target, sessions=sessions, lock_retries=lock_retries)


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
CAMPAIGN_MUTATIONS = (UNKNOWN_MODEL, OVERSIZE, LONG_HASH)
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


def directed_count(profile: str, *, mutations: bool = True) -> int:
    """How many directed cases :func:`directed_cases` makes (the plan counts them)."""
    if not mutations:
        return 0
    return len(fs._FAMILY_LIST) + sum(1 for m in CAMPAIGN_MUTATIONS if not (m is OVERSIZE and profile == "live"))


def directed_cases(target: Target, profile: str) -> list[FuzzCase]:
    """One chat request per mutation family, run first as Hypothesis' explicit examples.

    Why: Hypothesis' choices are biased (towards the first branches, and by the string constants of
    the code under test), so a few hundred random examples can miss a family altogether, and which
    one it misses changes with any edit to the code. Like the directed sessions, these make every
    family run in every campaign; the random phase then explores. Each is the family's simplest
    example (``find`` with a fixed random), so the set is the same in every run.
    """
    from random import Random

    quick = settings(
        database=None,
        max_examples=10,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    chat = fs.plaintext_requests("chat", target.chat_model)
    # Not for secrets: a fixed seed picks the same simplest examples in every run.
    plaintext = find(chat, lambda _: True, settings=quick, random=Random(0))  # noqa: S311
    plaintext["max_tokens"] = min(int(plaintext.get("max_tokens") or TEXT_UNITS_CAP), TEXT_UNITS_CAP)
    cases = []
    for family in fs._FAMILY_LIST:
        mutation = find(family.strategy(), lambda _: True, settings=quick, random=Random(0))  # noqa: S311
        cases.append(FuzzCase("chat", False, dict(plaintext), mutation))
    for campaign_mutation in CAMPAIGN_MUTATIONS:
        if campaign_mutation is OVERSIZE and profile == "live":
            continue
        cases.append(FuzzCase("chat", False, dict(plaintext), campaign_mutation))
    return cases


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
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config.resolved()
        self.client_factory = client_factory
        self.sessions = sessions if sessions is not None else SESSIONS[self.config.profile]
        self.progress = progress
        self.plan = plan(
            self.config,
            target,
            sessions=self.sessions if client_factory is not None else 0,
            lock_retries=client.options.lock_retries,
        )
        # One budget for every client of the campaign: the caller's (which may already count a
        # preflight), or one of the plan's size. Session clients are given it as they are made.
        budget = client.options.budget
        if budget is None:
            budget = LocalBudget(self.plan.requests)
            client.options = dataclasses.replace(client.options, budget=budget)
        self.budget: RequestBudget = budget
        self.cap = min(self.plan.requests, budget.cap)
        explicit = self.config.max_requests is not None and self.config.max_requests <= self.plan.uncapped
        self._cap_name = "max-requests" if explicit or budget.cap < self.plan.requests else "request-estimate"
        self.target = target
        self.client = client
        self.clock = clock
        self.sleep = sleep
        # Whether a session's waits spend the duration budget: real sleeps do, the embedded mock's
        # virtual clock does not (its lock timeouts pass without wall time).
        self.sleep_costs_time = sleep is time.sleep if sleep_costs_time is None else sleep_costs_time
        self.state = OracleState(expected_signer=target.node_address, api_key=target.api_key)
        self.result = CampaignResult(estimate=self.plan.requests)
        self._started = time.monotonic()
        self._phase = "stateless"
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
        if self.budget.spent() + 2 > self.cap:
            r.stopped_by = self._cap_name
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
            self.result.stopped_by = self._cap_name
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
            self.result.stopped_by = self._cap_name
            raise CampaignOver from None
        self._tick()
        findings = judge(record, case.mutation, self.state)
        if findings:
            self._fail(case, record, findings[0], secret)

    def _tick(self) -> None:
        """Hand the progress hook a status line (it throttles; this is cheap)."""
        if self.progress is None:
            return
        elapsed = time.monotonic() - self._started
        limit = f" of {format_seconds(self.config.duration_s)}" if self.config.duration_s is not None else ""
        found = ", 1 finding" if self._failure or self._session_failure else ""
        self.progress(
            f"fuzz {self._phase}: {self._executions + self._session_examples} examples, "
            f"{self.budget.spent()}/{self.cap} requests, {format_seconds(elapsed)}{limit}{found}"
        )

    def _fail(self, case: FuzzCase, record: ExchangeRecord | None, finding: Finding, secret: bytes) -> None:
        self._failure = (case, record, finding, secret)
        raise AssertionError(finding.label())

    # --- the campaign -----------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        c = self.config
        self._started = time.monotonic()  # wall time: the duration cap and the throughput are real seconds
        with hypothesis_home(c.report_dir / "hypothesis"):
            return self._run()

    def _run(self) -> CampaignResult:
        c = self.config
        database = DirectoryBasedExampleDatabase(str(c.report_dir / "hypothesis" / "examples"))
        strategy = fuzz_cases(self.target, c.profile, mutations=c.mutations)
        counted: list[int] = [0]
        directed = directed_cases(self.target, c.profile) if c.mutations else []

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

        for case in reversed(directed):
            probe = example(case)(probe)
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
            self._phase = "sessions"
            self._run_sessions()
        r = self.result
        r.examples = counted[0] + self._session_examples
        r.requests = self.budget.spent()
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
            if self.budget.spent() + 2 > self.cap:
                r.stopped_by = self._cap_name
                raise SessionsOver
            self._tick()
            if seconds == 0.0:  # a request follows: --rps holds in the sessions too
                self._pace()

        def make_session() -> Session:
            admit(0.0)
            self._session_examples += 1
            api = session_keys(self.target, f"{self._run_id}-{self._session_examples}")
            clients = {}
            for k in keys:
                client = self.client_factory(api[k])  # type: ignore[misc]
                opened.append(client)
                if client.options.budget is not self.budget:  # every request of the run counts against one cap
                    client.options = dataclasses.replace(client.options, budget=self.budget)
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
