"""A fuzz campaign: first the family sweep (:mod:`.sweep`: every mutation family on every endpoint and
stream mode, whatever the seed), then Hypothesis draws requests (valid, awkward, or mutated), then
the stateful sessions; the client sends them, and the oracle judges every exchange. The campaign ends
with the phase of its first finding. A failure of the random search is shrunk by Hypothesis; every
finding is saved as a replay case.

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
import copy
import dataclasses
import functools
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, Verbosity, find, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from .. import member_table
from .. import strategies as fs
from ..budget import LocalBudget, RequestBudget
from ..checks import Target
from ..client import BudgetExceeded, ClientOptions, ConfidentialClient, Prepared
from ..exits import UserError
from ..progress import format_seconds
from ..protocol import AeadKey, FixedBytes, SeededRandom, b64decode, b64encode, blake2b_256, derive_key, jsonwire
from ..records import ExchangeRecord, HttpRecord, LockRecord
from ..textsafe import one_line
from .cases import ReplayCase
from .guard import Guard
from .oracle import Finding, OracleState, judge, judge_lock
from .sweep import LIVE_PROFILE, NOT_PRODUCIBLE, SWEEP_SHARE, Cell, Mode, Sweep

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
    """Raised inside a Hypothesis example to end the campaign (time, budget, an unusable target or an
    unexpected error), not to fail it. A BaseException, so Hypothesis neither shrinks nor retries it:
    it leaves the engine at once. What ended the campaign is in ``CampaignResult.stopped_by`` (and,
    for an error, in the campaign), never in this exception, so catching it swallows nothing."""


@dataclass(frozen=True)
class Sent:
    """One case sent and judged: its findings, the exchange (None when the lock was already at fault,
    and the request was not sent) and the seal randomness (to save the case)."""

    findings: list[Finding]
    record: ExchangeRecord | None
    secret: bytes


class FindingFailed(AssertionError):
    """A finding, raised inside a Hypothesis example so that Hypothesis shrinks it. The only failure
    the campaign expects from Hypothesis: anything else it re-raises is an error, not a result."""


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
    case_paths: list[Path] = field(default_factory=list)  # one replay case per finding, in the same order
    stopped_by: str = "examples"
    requests_extra: int = 0  # the stateful sessions' share of ``requests``
    estimate: int = 0  # the most the campaign could send: its hard cap
    cut_off: int = 0  # answers cut off (a timeout, the deadline, a cap): counted, never judged
    sweep: Sweep | None = None  # the family sweep's ledger (None for a campaign without mutations)

    @property
    def cases_per_second(self) -> float:
        return self.examples / self.duration_s if self.duration_s else 0.0

    @property
    def case_path(self) -> Path | None:
        """The first finding's case."""
        return self.case_paths[0] if self.case_paths else None


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
      executions are the sweep's cells, the examples, the database replays and a shrinking allowance;
    - the directed sessions and ``sessions`` machine examples of ``STEP_COUNT`` steps, each step
      counted as the costliest one (a replay: a lock with its retries, and a request).

    ``max_requests`` caps the sum. Compute units are counted for the stateless phase, at the most
    expensive endpoint.
    """
    from .stateful import directed_requests, machine_requests

    c = config.resolved()
    lock_cost = 1 + lock_retries
    examples = c.max_examples or 0
    explicit = len(sweep_plan(target, c.profile, mutations=c.mutations).to_send())
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
    expect: Literal["refuse", "accept"] = "refuse"

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


def sweep_families(profile: str, *, mutations: bool = True) -> tuple[dict[str, str], dict[str, str]]:
    """The families the sweep covers (name -> the check each exercises), every envelope family and
    the campaign's own, and those the profile leaves out (name -> why)."""
    if not mutations:
        return {}, {}
    families = {family.name: family.check_id for family in fs.MUTATION_FAMILIES}
    families.update({mutation.name: mutation.check_id for mutation in CAMPAIGN_MUTATIONS})
    excluded = {OVERSIZE.name: LIVE_PROFILE} if profile == "live" else {}
    return families, excluded


def table_depth(profile: str) -> member_table.Depth:
    """The member table a campaign of ``profile`` sweeps: all 85 cases for a deep campaign, the cover of 13
    for the per-commit ci profile and the paid live one (each case costs a lock and a request)."""
    return "full" if profile == "deep" else "cover"


def sweep_plan(target: Target, profile: str, *, mutations: bool = True) -> Sweep:
    """The sweep of a campaign against ``target``: its families over the endpoints the campaign
    fuzzes there (:func:`endpoints_of`, from the models the target was given), in both stream modes
    where an endpoint streams; and the member table's cases on the first mode, as a run sends them: the
    cover in the ci and live profiles, every case in the deep one (as ``run --member-table full``)."""
    families, excluded = sweep_families(profile, mutations=mutations)
    cases = member_table.cases(table_depth(profile))
    table = [case.describe() for case in cases] if families else []
    return Sweep.plan(families, endpoints_of(target, profile) if families else [], excluded, table)


@functools.cache
def _simplest_mutation(family: str) -> fs.Mutation:
    """The family's simplest mutation (cached: finding it costs a shrink, and it never changes)."""
    mutation: fs.Mutation = _simplest(fs._FAMILIES[family].strategy())
    return mutation


@functools.cache
def _simplest_plaintext(endpoint: str, model: str, stream: bool) -> dict[str, Any]:
    """The endpoint's simplest plaintext in one stream mode, with the campaign's ``max_tokens`` cap
    (cached: callers get a copy, so the cache never changes)."""
    value: dict[str, Any] = _simplest(fs.plaintext_requests(endpoint, model, stream=True if stream else None))
    if endpoint in ("chat", "completions"):
        value["max_tokens"] = min(int(value.get("max_tokens") or TEXT_UNITS_CAP), TEXT_UNITS_CAP)
    return value


def _simplest(strategy: st.SearchStrategy[Any]) -> Any:
    """The strategy's simplest example, the same in every run (``find`` with a fixed random)."""
    from random import Random

    quick = settings(
        database=None,
        max_examples=10,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    # Not for secrets: a fixed seed picks the same simplest examples in every run.
    return find(strategy, lambda _: True, settings=quick, random=Random(0))  # noqa: S311


def sweep_cases(target: Target, sweep: Sweep) -> dict[Cell, FuzzCase]:
    """The request of each cell: the family's simplest mutation applied to the mode's simplest
    plaintext, so the sweep sends the same cases in every run, whatever the seed."""
    models = {
        "chat": target.chat_model,
        "completions": target.chat_model,
        "embeddings": target.embedding_model,
        "images": target.image_model,
    }
    mutations: dict[str, fs.Mutation | CampaignMutation] = {m.name: m for m in CAMPAIGN_MUTATIONS}
    for family in fs.MUTATION_FAMILIES:
        if family.name in sweep.families:
            mutations[family.name] = _simplest_mutation(family.name)
    plaintexts: dict[Mode, dict[str, Any]] = {}
    for mode in sweep.modes:
        plaintexts[mode] = _simplest_plaintext(mode.endpoint, models[mode.endpoint] or target.chat_model, mode.stream)
    for case in member_table.TABLE:
        mutations[case.describe()] = case.mutation
    return {
        cell: FuzzCase(
            cell.mode.endpoint,
            cell.mode.stream,
            copy.deepcopy(plaintexts[cell.mode]),
            mutations[cell.case or cell.family],
        )
        for cell in sweep.order
    }


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


NO_SUCH_MODEL = "atoma-conformance/no-such-model"


def final_plaintext(
    value: dict[str, Any], mutation: fs.Mutation | CampaignMutation | None, secret: bytes
) -> dict[str, Any]:
    """The plaintext as sealed: the drawn one, with the random marker (an echo of it is findable) and,
    for the unknown-model mutation, a model nobody serves."""
    out = dict(value, user=leak_marker(secret))
    if mutation is UNKNOWN_MODEL:
        out["model"] = NO_SUCH_MODEL
    return out


def seal_case(
    client: ConfidentialClient,
    lock: LockRecord,
    *,
    endpoint: str,
    stream: bool,
    plaintext_value: dict[str, Any],
    model: str,
    mutation: fs.Mutation | CampaignMutation | None,
    units: int,
    secret: bytes,
) -> Prepared:
    """Seal ``plaintext_value`` under the lock's key with the 60 bytes of ``secret`` and apply
    ``mutation``. One function for the campaign and for ``replay``, so that a replay sends what the
    campaign sent, only under a fresh key.

    A member-table case that this seal cannot carry (``fs.NotProducible``: no '+' or '/' to re-encode,
    no padding to strip) is re-sealed with randomness derived from ``secret`` and a plaintext one byte
    longer every third try; NotProducible once every try has failed."""

    def seal_once(attempt: int, seal: bytes) -> Prepared:
        client.rng = FixedBytes(seal[:32], seal[32:48], seal[48:])
        value = final_plaintext(plaintext_value, mutation, secret)
        if attempt % 3:
            value["user"] += "~" * (attempt % 3)  # the marker stays a prefix, so an echo is still found
        plaintext = jsonwire.dumps(value)
        prepared = client.prepare(
            endpoint,
            plaintext,
            lock,
            model_name=model,
            stream=stream,
            num_compute_units=units,
            mutate=None,
            headers=None,
        )
        envelope = prepared.sealed.request.to_json()
        if mutation is OVERSIZE:
            envelope["ciphertext"] = b64encode(bytes(OVERSIZE_BYTES * 3 // 4))
            prepared = dataclasses.replace(prepared, body=jsonwire.dumps(envelope))
        elif mutation is LONG_HASH:
            envelope["plaintext_body_hash"] = b64encode(b64decode(envelope["plaintext_body_hash"]) + b"\x00")
            prepared = dataclasses.replace(prepared, body=jsonwire.dumps(envelope))
        elif isinstance(mutation, fs.Mutation):
            body = mutation.apply(envelope)
            if mutation.name == "low-order-client-key":
                body = _seal_under_zero_secret(body, plaintext)
            prepared = dataclasses.replace(prepared, body=body)
        return prepared

    for attempt in range(_RESEALS):
        seal = secret if attempt == 0 else hashlib.blake2b(secret + attempt.to_bytes(2, "big"), digest_size=60).digest()
        try:
            return seal_once(attempt, seal)
        except fs.NotProducible:
            if not (isinstance(mutation, fs.Mutation) and mutation in _TABLE_MUTATIONS):
                raise
    shown = mutation.description if isinstance(mutation, fs.Mutation) else "the mutation"
    raise fs.NotProducible(f"no seal of {_RESEALS} could carry {shown}")


_RESEALS = 24
_TABLE_MUTATIONS = frozenset(case.mutation for case in member_table.TABLE)


# Plaintext members whose strings come from a fixed vocabulary (roles, tool names, formats): a case's
# shape keeps them, because a node answers differently to them; every other string is free text.
VOCABULARY_MEMBERS = frozenset(
    {"model", "role", "type", "tool_choice", "response_format", "size", "encoding_format", "name", "required"}
)


def plaintext_shape(value: Any, member: str | None = None) -> Any:
    """``value`` with every free-text string replaced by as many ``x`` (see :mod:`.cases`): the
    structure, the lengths, the knobs and the vocabulary stay, the text does not."""
    if isinstance(value, dict):
        return {key: plaintext_shape(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [plaintext_shape(item, member) for item in value]
    if isinstance(value, str) and member not in VOCABULARY_MEMBERS:
        return "x" * len(value)
    return value


LAYOUT_TAG = "json-layout"  # how a reserialization's layout (a dataclass) is written in a case


def _to_json(value: Any) -> Any:
    """A mutation's drawn parameters as JSON: tuples as lists, a layout as a tagged object."""
    if isinstance(value, fs._Layout):
        return {LAYOUT_TAG: dataclasses.asdict(value)}
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    return value


def _from_json(value: Any) -> Any:
    """The inverse of :func:`_to_json`; TypeError for a layout with other members."""
    if isinstance(value, dict) and set(value) == {LAYOUT_TAG} and isinstance(value[LAYOUT_TAG], dict):
        return fs._Layout(**value[LAYOUT_TAG])
    if isinstance(value, list):
        return tuple(_from_json(item) for item in value)
    return value


def mutation_params_json(mutation: fs.Mutation | CampaignMutation | None) -> list[Any] | None:
    if not isinstance(mutation, fs.Mutation):
        return None
    params: list[Any] = _to_json(mutation.params)
    return params


def mutation_from_case(label: str, params: list[Any] | None) -> fs.Mutation | CampaignMutation:
    """The mutation a case names, rebuilt from its label and drawn parameters; ValueError (with the
    reason) when they do not make the labelled mutation."""
    name = label.split(" ")[1] if " " in label else label
    for campaign_mutation in CAMPAIGN_MUTATIONS:
        if campaign_mutation.name == name:
            return campaign_mutation
    family = fs._FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown mutation family {name[:60]!r}")
    if params is None:
        raise ValueError(f"the {name} mutation needs its drawn parameters")
    try:
        drawn = _from_json(params)
        description = family.describe(drawn)
    except (IndexError, KeyError, TypeError, ValueError):
        raise ValueError(f"not parameters of the {name} mutation") from None
    mutation = fs.Mutation(family.name, family.check_id, family.spec_refs, family.expect, description, drawn)
    if mutation.label() != label:
        raise ValueError("do not make the mutation the label names")
    return mutation


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
        guard: Guard | None = None,
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
        # The wall-time bound and the cut-off count: the caller's (started before its preflight, so
        # --duration covers that too), or one that starts with run().
        self._own_guard = guard is None
        self.guard = guard if guard is not None else Guard(self.config.duration_s, client.options)
        # Whether a session's waits spend the duration budget: real sleeps do, the embedded mock's
        # virtual clock does not (its lock timeouts pass without wall time).
        self.sleep_costs_time = sleep is time.sleep if sleep_costs_time is None else sleep_costs_time
        self.state = OracleState(expected_signer=target.node_address, api_key=target.api_key, face=target.face)
        self.result = CampaignResult(estimate=self.plan.requests)
        self._phase = "stateless"
        self._executions = 0
        # The seed reproduces the cases; this per-run id keeps two runs with one seed from sending
        # byte-identical requests, which a conformant node rightly refuses as replays.
        self._run_id = os.urandom(8).hex()
        self._last_sent = 0.0
        self._failure: tuple[FuzzCase, ExchangeRecord | None, Finding, bytes] | None = None
        self._session_failure: tuple[list[dict[str, Any]], Finding] | None = None
        self._session_examples = 0
        self._error: BaseException | None = None  # the first unexpected error: it ends the campaign
        self.sweep = sweep_plan(target, self.config.profile) if self.config.mutations else None
        self.result.sweep = self.sweep
        self._sweep_failures: list[tuple[FuzzCase, ExchangeRecord | None, Finding, bytes]] = []

    # --- budget -----------------------------------------------------------------------------------

    def _stop(self, why: str) -> CampaignOver:
        self.result.stopped_by = why
        return CampaignOver()

    def _admit(self, units: int) -> None:
        """Refuse (end the campaign) before anything that would break a cap."""
        c, r = self.config, self.result
        if self.guard.expired():
            raise self._stop("duration")
        if self.budget.spent() + 2 > self.cap:
            raise self._stop(self._cap_name)
        if c.max_compute_units is not None and r.compute_units + units > c.max_compute_units:
            raise self._stop("max-compute-units")

    def _pace(self) -> None:
        if self.config.rps:
            gap = 1.0 / self.config.rps - (self.clock() - self._last_sent)
            if gap > 0:
                if self.sleep_costs_time and self.guard.expired(gap):
                    raise self._stop("duration")
                self.sleep(gap)
        self._last_sent = self.clock()

    def _cut(self, answer: HttpRecord | ExchangeRecord | LockRecord) -> bool:
        """Count an answer; True when it was cut off (it is then not judged). Ends the campaign when
        the target proved unusable, or when the duration is what cut the answer."""
        why = self.guard.observe(answer)
        if self.guard.unusable is not None:
            raise self._stop("unusable")
        if why is not None and self.guard.expired():
            raise self._stop("duration")
        return why is not None

    # --- one example ------------------------------------------------------------------------------

    def _execute(self, case: FuzzCase) -> None:
        """One example of the random search. Only a finding (FindingFailed) goes back to Hypothesis."""
        before = self.budget.spent()
        try:
            sent = self._guarded(case)
        finally:
            if self.sweep is not None:  # the family ledger counts the random search's requests too
                family = case.mutation.name if case.mutation else "valid"
                spent = self.budget.spent() - before
                self.sweep.random_requests[family] = self.sweep.random_requests.get(family, 0) + spent
        if sent is not None and sent.findings:
            self._fail(case, sent.record, sent.findings[0], sent.secret)

    def _guarded(self, case: FuzzCase) -> Sent | None:
        """:meth:`_send`, where any error but the stop signal is kept and ends the campaign at once (a
        MemoryError from a decompression bomb, a bug): given to Hypothesis, it would be shrunk and
        retried, and could be lost behind a cap that stops it."""
        try:
            return self._send(case)
        except (CampaignOver, fs.NotProducible):
            raise
        except Exception as exc:
            self._error = self._error or exc
            raise self._stop("error") from exc

    def _send(self, case: FuzzCase) -> Sent | None:
        """Lock, seal, send and judge one case; None when an answer was cut off (nothing to judge)."""
        units = units_for(case.endpoint)
        self._admit(units)
        self._executions += 1
        # Fresh seal randomness for every execution, also when Hypothesis re-runs an example while
        # shrinking: re-sending identical bytes would be a replay, and a node must refuse that.
        secret = SeededRandom(f"{self.config.seed}:{self._run_id}:{self._executions}").token_bytes(60)
        model = str(case.plaintext.get("model"))
        try:
            self._pace()
            self.guard.bound(self.client)
            lock = self.client.lock(model, max_num_tokens=max(units, 8192))
            self._pace()
        except BudgetExceeded:
            raise self._stop(self._cap_name) from None
        if self._cut(lock):
            return None  # no lock to use, and nothing to judge
        lock_findings = judge_lock(lock)
        if lock_findings:
            return Sent(lock_findings, None, secret)  # the request is not sent under a bad lock
        self.result.compute_units += units
        prepared = seal_case(
            self.client,
            lock,
            endpoint=case.endpoint,
            stream=case.stream,
            plaintext_value=case.plaintext,
            model=model,
            mutation=case.mutation,
            units=units,
            secret=secret,
        )
        if self.guard.expired():  # the lock may have taken what was left
            raise self._stop("duration")
        try:
            self.guard.bound(self.client, lock=False)
            record = self.client.post_prepared(prepared)
        except BudgetExceeded:
            raise self._stop(self._cap_name) from None
        self._tick()
        if self._cut(record):
            return None
        return Sent(judge(record, case.mutation, self.state), record, secret)

    # --- the sweep --------------------------------------------------------------------------------

    def _sweep_cells(self) -> None:
        """Send every cell of the sweep once, in its order; CampaignOver when a cap ends it (the cells
        left are marked with the cap). A finding does not end the sweep: the ledger is only worth
        reading whole. The first finding of each check is kept, to be saved as its case."""
        sweep = self.sweep
        assert sweep is not None
        cases = sweep_cases(self.target, sweep)
        todo = sweep.to_send()
        known = {finding.check_id for _, _, finding, _ in self._sweep_failures}
        for n, (position, cell) in enumerate(todo):
            if position >= sweep.first_pass and self._past_sweep_share():
                sweep.leave([c for _, c in todo[n:]], SWEEP_SHARE)
                return
            case, result = cases[cell], sweep.cells[cell]
            units = units_for(cell.mode.endpoint)
            c = self.config
            if c.max_compute_units is not None and self.result.compute_units + units > c.max_compute_units:
                sweep.leave([cell], "max-compute-units")  # a cheaper cell after it may still fit
                continue
            before = self.budget.spent()
            try:
                sent = self._guarded(case)
            except fs.NotProducible:
                result.requests = self.budget.spent() - before
                sweep.leave([cell], NOT_PRODUCIBLE)
                continue
            except CampaignOver:
                result.requests = self.budget.spent() - before
                sweep.leave([c for _, c in todo[n:]], self.result.stopped_by)
                raise
            result.requests = self.budget.spent() - before
            self.result.examples += 1
            if sent is None:
                result.status = "cut off"
                continue
            result.status = "finding" if sent.findings else "no finding"
            for finding in sent.findings:
                if finding.check_id not in result.findings:
                    result.findings.append(finding.check_id)
                if finding.check_id not in known:
                    known.add(finding.check_id)
                    self._sweep_failures.append((case, sent.record, finding, sent.secret))

    def _past_sweep_share(self) -> bool:
        """Whether the passes after the first have had their share: half the request cap, or half
        the duration. The rest is the random search's and the sessions'."""
        if self.budget.spent() * 2 >= self.cap:
            return True
        duration = self.config.duration_s
        return duration is not None and self.guard.elapsed() * 2 >= duration

    def _tick(self) -> None:
        """Hand the progress hook a status line (it throttles; this is cheap)."""
        if self.progress is None:
            return
        elapsed = self.guard.elapsed()
        limit = f" of {format_seconds(self.config.duration_s)}" if self.config.duration_s is not None else ""
        count = len(self._sweep_failures) + (1 if self._failure or self._session_failure else 0)
        found = f", {count} finding{'s' if count > 1 else ''}" if count else ""
        cut = f", {self.guard.cut_total} cut off" if self.guard.cut_total else ""
        self.progress(
            f"fuzz {self._phase}: {self._executions + self._session_examples} examples, "
            f"{self.budget.spent()}/{self.cap} requests, {format_seconds(elapsed)}{limit}{found}{cut}"
        )

    def _fail(self, case: FuzzCase, record: ExchangeRecord | None, finding: Finding, secret: bytes) -> None:
        self._failure = (case, record, finding, secret)
        raise FindingFailed(finding.label())

    # --- the campaign -----------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        """The campaign's result; :class:`UserError` when it reached no verdict (an unusable
        target, an unexpected error), after saving a finding seen before that."""
        c = self.config
        if self._own_guard:
            self.guard = Guard(c.duration_s, self.client.options)  # wall time: the cap is real seconds
        with hypothesis_home(c.report_dir / "hypothesis"):
            try:
                self._explore()
            except Exception as exc:  # outside an example: Hypothesis itself, the sessions' setup
                self._error = self._error or exc
            unusable = self.guard.verdict_at_end() if self._error is None else None
            result = self._finish()
        saved = f" (a finding seen before was saved: {result.case_path})" if result.case_path is not None else ""
        if self._error is not None:
            error = self._error
            what = f"{type(error).__name__}: {one_line(str(error), 120)}"
            raise UserError("fuzz", f"stopped by an unexpected error, no verdict: {what}{saved}") from error
        if unusable is not None:
            result.stopped_by = "unusable"
            raise UserError(f"{unusable}{saved}")
        return result

    def _explore(self) -> None:
        """The sweep; then, if it found nothing and the budget is not spent, the random search; then,
        if that found nothing, the sessions. The campaign ends with the first phase that finds."""
        if self.sweep is not None and self.sweep.order:
            self._phase = "sweep"
            try:
                self._sweep_cells()
            except CampaignOver:
                return  # what stopped it is in result.stopped_by, and an error in self._error
            if self._sweep_failures:
                return
            self.sweep.random_ran = True
        self._phase = "stateless"
        self._search()
        if self._error is not None or self.result.stopped_by != "examples":
            return
        if self._failure is None and self.sessions and self.client_factory:
            self._phase = "sessions"
            self._run_sessions()

    def _search(self) -> None:
        """The random search: Hypothesis draws the cases, shrinks a failure and keeps it in its database."""
        c = self.config
        database = DirectoryBasedExampleDatabase(str(c.report_dir / "hypothesis" / "examples"))
        strategy = fuzz_cases(self.target, c.profile, mutations=c.mutations)

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
            self.result.examples += 1
            self._execute(case)

        try:
            probe()
        except CampaignOver:
            pass  # what stopped it is in result.stopped_by, and an error in self._error
        except (Exception, BaseExceptionGroup) as exc:
            # Hypothesis re-raises what it found alone, in a group, or as flaky (a finding, then the
            # stop signal while it shrank). Findings are results and the stop signal is ours; anything
            # else among them is an error of the campaign, never swallowed.
            other = _other_than_findings(exc)
            if other is not None and not isinstance(other, Exception):
                raise other from None  # Ctrl-C, SystemExit: not ours to turn into a line
            if other is not None:
                self._error = self._error or other

    def _finish(self) -> CampaignResult:
        r = self.result
        r.examples += self._session_examples
        r.requests = self.budget.spent()
        r.duration_s = self.guard.elapsed()
        r.cut_off = self.guard.cut_total
        for case, record, finding, secret in self._sweep_failures:
            r.findings.append(finding)
            r.case_paths.append(self._save(case, record, finding, secret))
        if self._failure is not None:
            case, record, finding, secret = self._failure
            r.findings.append(finding)
            r.case_paths.append(self._save(case, record, finding, secret))
            if self.sweep is not None:
                family = case.mutation.name if case.mutation else "valid"
                self.sweep.random_findings.setdefault(family, []).append(finding.check_id)
        elif self._session_failure is not None:
            steps, finding = self._session_failure
            r.findings.append(finding)
            r.case_paths.append(self._save_session(steps, finding))
        if r.findings and r.stopped_by == "examples":
            r.stopped_by = "finding"  # the campaign ends with the phase of its first finding
        return r

    def _run_sessions(self) -> None:
        """Stateful sessions over two API keys (when a second key is known)."""
        from .stateful import Session, SessionsOver, run_sessions

        assert self.client_factory is not None
        keys = ["a"] + (["b"] if self.target.second_api_key else [])
        opened: list[ConfidentialClient] = []

        def admit(seconds: float) -> None:
            r = self.result
            if self.guard.expired(seconds if self.sleep_costs_time else 0.0):
                r.stopped_by = "duration"
                raise SessionsOver
            if self.budget.spent() + 2 > self.cap:
                r.stopped_by = self._cap_name
                raise SessionsOver
            self._tick()
            if seconds == 0.0:  # a request follows: --rps holds in the sessions too
                self._pace()
                for client in opened:  # and it ends with the campaign
                    self.guard.bound(client)

        def observe(answer: HttpRecord | ExchangeRecord | LockRecord) -> None:
            why = self.guard.observe(answer)
            if self.guard.unusable is not None:
                self.result.stopped_by = "unusable"
                raise SessionsOver
            if why is not None and self.guard.expired():
                self.result.stopped_by = "duration"
                raise SessionsOver

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
                self.guard.bound(client)
                clients[k] = client
            return Session(
                self.target,
                clients,
                self.sleep,
                self.clock,
                OracleState(
                    expected_signer=self.target.node_address, api_key=self.target.api_key, face=self.target.face
                ),
                admit=admit,
                observe=observe,
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
            plaintext_sha256=hashlib.sha256(b"").hexdigest(),
            plaintext_bytes=0,
            extra={"steps": steps, "keys": sorted({s.get("key", "a") for s in steps})},
        )
        return replay.write(self.config.report_dir / "cases")

    def _save(self, case: FuzzCase, record: ExchangeRecord | None, finding: Finding, secret: bytes) -> Path:
        """The case: how to make the request again (see :mod:`.cases`), never the key that opens it."""
        value = final_plaintext(case.plaintext, case.mutation, secret)
        plaintext = record.plaintext if record is not None else jsonwire.dumps(value)
        prior = [m.nonce.hex() for m in record.messages if m.nonce] if record is not None else []
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
            plaintext_sha256=hashlib.sha256(plaintext).hexdigest(),
            plaintext_bytes=len(plaintext),
            shape=plaintext_shape(dict(value, model=case.plaintext.get("model"))),
            mutation_params=mutation_params_json(case.mutation),
            plaintext=plaintext.decode() if self.config.keep_plaintext else None,
            extra={
                "mutation_check": case.mutation.check_id if case.mutation else None,
                # NONCE-004 is a repeat across requests: replay needs the nonces the node already used.
                "prior_nonces": prior if finding.check_id == "NONCE-004" else [],
            },
        )
        return replay.write(self.config.report_dir / "cases")


def _other_than_findings(error: BaseException) -> BaseException | None:
    """The first exception in what Hypothesis raised (a group, a flaky failure) that is neither a
    finding nor the campaign's own stop signal; None when there is none."""
    if isinstance(error, FindingFailed | CampaignOver):
        return None
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        for item in inner:
            other = _other_than_findings(item)
            if other is not None:
                return other
        return None
    if isinstance(error, Flaky):  # a finding that did not reproduce: the finding stands
        return None
    return error
