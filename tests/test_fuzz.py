"""The fuzz layer: it finds nothing on the strict mock, finds every mock fault and saves a case that
replays STILL FAILING under the fault and FIXED without it; budgets are hard caps; cases keep no
plaintext unless asked."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conformance.checks import Target
from conformance.cli import main
from conformance.client import ClientOptions, ConfidentialClient
from conformance.embedded import Embedded, embedded_target
from conformance.fuzz.campaign import (
    SESSIONS,
    TARGET_MAX_REQUESTS,
    Campaign,
    CampaignConfig,
    CampaignResult,
    estimate,
    plan,
)
from conformance.fuzz.cases import ReplayCase
from conformance.fuzz.replay import replay
from conformance.fuzz.stateful import SETTLE_S
from mock_node.faults import CATALOGUE as FAULTS
from mock_node.faults import Fault


@contextmanager
def campaign_on(
    faults: tuple[str, ...] = (), *, transport: httpx.BaseTransport | None = None, options: ClientOptions | None = None
) -> Iterator[tuple[Embedded, Callable[[str | None], ConfidentialClient]]]:
    with embedded_target(faults=faults) as embedded:

        def make(key: str | None) -> ConfidentialClient:
            return ConfidentialClient(embedded.target.base_url, key, transport=transport, options=options)

        yield embedded, make


def run(
    report_dir: Path, faults: tuple[str, ...] = (), *, sessions: int | None = None, **config: object
) -> CampaignResult:
    with campaign_on(faults) as (embedded, make):
        client = make(embedded.target.api_key)
        try:
            campaign = Campaign(
                CampaignConfig(report_dir=report_dir, **config),  # type: ignore[arg-type]
                embedded.target,
                client,
                sleep=embedded.sleep,
                clock=embedded.clock,
                client_factory=make,
                sessions=sessions,
            )
            return campaign.run()
        finally:
            client.close()


def replay_on(case: ReplayCase, faults: tuple[str, ...]) -> str:
    with campaign_on(faults) as (embedded, make):
        client = make(embedded.target.api_key)
        try:
            return replay(
                case, client, embedded.target, client_factory=make, sleep=embedded.sleep, clock=embedded.clock
            ).verdict
        finally:
            client.close()


def test_a_ci_campaign_against_the_strict_mock_finds_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, max_examples=200, sessions=4)
    assert result.findings == [], result.findings
    assert result.examples >= 200 and result.requests >= 400
    assert not (tmp_path / "cases").exists()


# Faults a campaign cannot show, each caught by the catalogue instead (tests/test_meta_faults.py): they
# change the answer to a request a campaign never sends (a lock without a token or for a model nobody
# serves, a request without a token, with another Content-Type or model_name or on a stack nobody holds,
# a stream asked of embeddings, two requests in flight at once), need the state a whole run builds (a
# stack an earlier refusal jammed: a replayed case starts on a fresh node), or break a rule only by a
# status the oracle does not judge (R3.18's 413: a body over the limit refused 400 is still refused).
NOT_SEEN_BY_A_CAMPAIGN = {
    "lock-without-bearer",
    "lock-unknown-model-500",
    "confidential-without-bearer",
    "ignore-content-type",
    "ignore-model-name",
    "unknown-stack-pass-through",
    "stream-embeddings",
    "shared-key-slot",
    "refusal-jams-stack",
    "no-body-limit",
    # The HTTP layer's faults: a campaign presents only the run's keys, sends well-formed lock bodies as
    # JSON to the routes that exist, and asks for no more units than its locks reserve.
    "any-bearer-token",
    "routing-errors-text-plain",
    "lock-body-before-token",
    "lock-rejections-text-plain",
    "lock-ignore-content-type",
    "lock-deny-unknown-members",
    "lock-null-tokens-zero",
    "null-units-free",
    "lock-capacity-ignored",
    # The body framing and plaintext faults (issue 16): a campaign seals only well-formed object plaintexts,
    # compactly, with an explicit boolean `stream`, a Content-Length, a bare application/json, a canonical
    # client key and no 2 MiB body but the oversize one; it asks images for no stream. These are the
    # catalogue's to find (ERR-030..033, ENDPOINT-010..016, STREAM-008); not yet the fuzzer's.
    "stream-images",
    "model-from-envelope",
    "unservable-plaintext-500",
    "size-limit-content-length-only",
    "body-limit-exclusive",
    "chunked-body-refused",
    "charset-refused",
    "request-hash-reserialized",
    "client-key-top-bit-refused",
    "unset-stream-streams",
    # The key binding's faults (issue 18): what the chain says about the lock's key. A campaign judges the
    # exchanges it makes and never reads the chain; the KEY checks (KEY-001..012) do, once per run.
    *(f.name for f in FAULTS if f.category == "key" and f.face == "proxy"),
}
# The fuzz engine speaks the proxy face, one request at a time: a concurrency fault is `load`'s to find.
PROXY_FAULTS = [f for f in FAULTS if f.face == "proxy" and not f.concurrent and f.name not in NOT_SEEN_BY_A_CAMPAIGN]


def test_the_faults_a_campaign_cannot_show_are_in_the_catalogue() -> None:
    assert not NOT_SEEN_BY_A_CAMPAIGN - {f.name for f in FAULTS if f.face == "proxy"}, "names no fault"


# STREAM-007 compares keep-alive comments with the number of chunks, and the mock's answer length
# follows the prompt's text (mock_node.fake_model: 4 + seed % 29 tokens). A case without the plaintext
# replays other text of the same shape, so only a --keep-plaintext case reproduces such a finding
# (docs/fuzzing.md, "Replay cases"); the other faults replay from the shape alone.
TEXT_DEPENDENT = {"keepalive-flood"}


@pytest.mark.parametrize("fault", PROXY_FAULTS, ids=[f.name for f in PROXY_FAULTS])
def test_the_fuzz_layer_finds_each_fault_and_its_case_replays(fault: Fault, tmp_path: Path) -> None:
    result = run(tmp_path, (fault.name,), max_examples=300, keep_plaintext=fault.name in TEXT_DEPENDENT)
    assert result.findings, f"the fuzz layer missed {fault.name}"
    assert result.case_path is not None and result.case_path.exists()
    case = ReplayCase.read(result.case_path)
    assert case.check_id == result.findings[0].check_id
    assert replay_on(case, (fault.name,)) == "STILL FAILING"
    assert replay_on(case, ()) == "FIXED"


class CountingTransport(httpx.HTTPTransport):
    """Counts what actually reaches the network, independently of the client's own counter."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


@pytest.mark.parametrize("cap", [1, 2, 3, 7, 20, 39])  # a campaign runs Hypothesis itself: no nested @given
def test_max_requests_is_a_hard_cap(cap: int) -> None:
    transport = CountingTransport()
    with campaign_on(transport=transport) as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(max_requests=cap, max_examples=100, report_dir=Path("/nonexistent-not-written"))
        result = Campaign(
            config, embedded.target, client, sleep=embedded.sleep, clock=embedded.clock, client_factory=make, sessions=0
        ).run()
        client.close()
    assert transport.sent <= cap and result.requests <= cap
    assert result.stopped_by == "max-requests"


def test_max_requests_caps_the_stateful_sessions_too() -> None:
    transport = CountingTransport()
    with campaign_on(transport=transport) as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(max_requests=30, max_examples=5, report_dir=Path("/nonexistent-not-written"))
        result = Campaign(
            config,
            embedded.target,
            client,
            sleep=embedded.sleep,
            clock=embedded.clock,
            client_factory=make,
            sessions=50,
        ).run()
        client.close()
    assert transport.sent <= 30 and result.requests <= 30
    assert result.stopped_by == "max-requests" and result.examples > 5, "the sessions ran, then hit the cap"


def test_a_duration_cap_ends_the_stateful_sessions_within_one_step(tmp_path: Path) -> None:
    # The stateless phase ends by examples at once; 10,000 sessions would take minutes, so only the
    # duration can end this run. One session step is one request on loopback (milliseconds).
    result = run(tmp_path, max_examples=3, duration_s=1.0, sessions=10_000)
    assert result.stopped_by == "duration"
    assert result.examples > 3, "the stateful phase started before the cap"
    assert result.duration_s < 1.0 + 1.0, f"ran {result.duration_s:.2f} s past a 1 s cap"


def test_a_duration_cap_refuses_a_real_wait_that_would_overrun_it(tmp_path: Path) -> None:
    slept: list[float] = []
    with campaign_on() as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(duration_s=3.0, max_examples=3, report_dir=tmp_path)
        campaign = Campaign(
            config,
            embedded.target,
            client,
            sleep=slept.append,  # stands in for time.sleep: each wait is charged to the duration
            clock=embedded.clock,
            client_factory=make,
            sessions=5,
            sleep_costs_time=True,
        )
        result = campaign.run()
        client.close()
    assert result.stopped_by == "duration"
    assert SETTLE_S not in slept, "a 5.5 s settle wait was started inside a 3 s budget"


def test_max_compute_units_is_a_hard_cap(tmp_path: Path) -> None:
    result = run(tmp_path, max_compute_units=1000, max_examples=100, sessions=0)
    assert 0 < result.compute_units <= 1000 and result.stopped_by == "max-compute-units"


def test_rps_spaces_requests_out_through_the_injected_sleep(tmp_path: Path) -> None:
    slept: list[float] = []
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with campaign_on() as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(rps=10.0, max_examples=5, report_dir=tmp_path, mutations=False)
        result = Campaign(config, embedded.target, client, sleep=sleep, clock=clock, sessions=0).run()
        client.close()
    assert result.requests == 10
    assert sum(slept) >= 0.1 * (result.requests - 1) - 1e-9, "at most 10 requests per second of (fake) time"


def test_dry_run_estimates_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        code = main(["fuzz", "--dry-run", "--target", url, "--model", "m", "--max-examples", "10"])
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert code == 0
    config = CampaignConfig(max_examples=10, max_requests=TARGET_MAX_REQUESTS, preflight=True)
    expected = plan(config, Target(url, None, "m"))
    # Directed cases, examples, database replays and shrinking, each a lock (with its retries) and a
    # request; the directed and the random sessions; and the preflight lock.
    assert expected.preflight == 1 and expected.sessions > 0 and expected.stateless >= 2 * 10
    assert f"at most {expected.requests} requests" in capsys.readouterr().out


def test_estimate_respects_the_caps() -> None:
    with campaign_on() as (embedded, _make):
        requests, units = estimate(CampaignConfig(profile="live", max_requests=30), embedded.target)
    assert requests == 30 and units <= 4000


@pytest.mark.parametrize("cap", [None, 60], ids=["estimate", "max-requests"])
def test_every_request_of_a_campaign_with_sessions_counts_against_its_estimate(cap: int | None, tmp_path: Path) -> None:
    """The network's own count (every client: the campaign's, and each session's) holds to the plan."""
    transport = CountingTransport()
    with campaign_on(transport=transport) as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(max_examples=3, max_requests=cap, report_dir=tmp_path)
        campaign = Campaign(
            config, embedded.target, client, sleep=embedded.sleep, clock=embedded.clock, client_factory=make
        )
        result = campaign.run()
        client.close()
    expected = estimate(config, embedded.target, sessions=SESSIONS["ci"])
    assert result.estimate == expected.requests and expected.sessions > 0
    assert result.requests_extra > 0, "the sessions ran and sent requests"
    assert transport.sent == result.requests, "the summary counts every request sent, sessions included"
    assert transport.sent <= expected.requests
    if cap is not None:
        assert transport.sent <= cap and expected.requests == cap


def test_the_estimate_is_enforced_as_a_cap_when_shrinking_would_overrun_it(tmp_path: Path) -> None:
    # A fault every valid request trips: Hypothesis would go on generating and shrinking; the plan stops it.
    transport = CountingTransport()
    with campaign_on(("usage-mismatch",), transport=transport) as (embedded, make):
        client = make(embedded.target.api_key)
        config = CampaignConfig(max_examples=3, report_dir=tmp_path, mutations=False)
        result = Campaign(config, embedded.target, client, sleep=embedded.sleep, clock=embedded.clock).run()
        client.close()
    assert result.findings and result.case_path is not None
    assert transport.sent <= result.estimate == plan(config, embedded.target, sessions=0).requests


def test_every_check_the_oracle_can_name_is_in_the_catalogue_at_its_level() -> None:
    import re

    import conformance.fuzz.oracle as oracle
    import conformance.fuzz.replay as replay_module
    import conformance.fuzz.stateful as stateful
    from conformance import strategies
    from conformance.checks import CATALOGUE
    from conformance.fuzz.campaign import CAMPAIGN_MUTATIONS
    from conformance.fuzz.oracle import Finding

    levels = {check.id: check.level for check in CATALOGUE}
    named: set[str] = set()
    for module in (oracle, stateful, replay_module):
        named |= set(re.findall(r'"([A-Z]+-\d{3})"', Path(str(module.__file__)).read_text()))
    named |= {family.check_id for family in strategies._FAMILY_LIST}
    named |= {mutation.check_id for mutation in CAMPAIGN_MUTATIONS}
    assert len(named) > 30
    for check_id in sorted(named):
        assert check_id in levels, f"the oracle can report {check_id}, which the catalogue does not have"
        assert Finding(check_id, "x").level == levels[check_id]
    assert Finding("ERR-017", "x").level == "MUST" and Finding("ERR-018", "x").level == "MUST"
    with pytest.raises(LookupError):
        Finding("ERR-999", "a programming error")


def test_a_case_path_that_is_not_a_regular_file_is_refused_before_reading(tmp_path: Path) -> None:
    import os

    from conformance.exits import UserError

    fifo = tmp_path / "case.json"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):
        with pytest.raises(UserError, match="not a regular file"):
            ReplayCase.read(path)  # a FIFO would block a read for ever


def test_cases_hold_no_plaintext_unless_asked(tmp_path: Path) -> None:
    result = run(tmp_path / "redacted", ("usage-mismatch",), max_examples=50)
    assert result.case_path is not None
    text = result.case_path.read_text()
    case = json.loads(text)
    assert case["plaintext"] is None
    assert "atoma-conformance-sentinel" not in text
    # Only the shape: the members and lengths, every piece of free text replaced by "x"s.
    for message in case["shape"]["messages"]:
        assert set(message["content"]) <= {"x"}
    kept = run(tmp_path / "kept", ("usage-mismatch",), max_examples=50, keep_plaintext=True)
    assert kept.case_path is not None
    assert "atoma-conformance-sentinel" in json.loads(kept.case_path.read_text())["plaintext"]


def test_fuzz_and_replay_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--mock-fault", "usage-mismatch", "--report-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FINDING USAGE-00" in out and "cases/s" in out
    case = next((tmp_path / "cases").glob("*.json"))
    assert main(["replay", str(case), "--mock-fault", "usage-mismatch"]) == 1
    assert capsys.readouterr().out.startswith("STILL FAILING")
    assert main(["replay", str(case)]) == 0
    assert capsys.readouterr().out.startswith("FIXED")


def test_deep_profile_stops_at_its_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--profile", "deep", "--duration", "2s", "--report-dir", str(tmp_path)]) == 0
    assert "stopped by duration" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fuzz", "--duration", "soon"], "argument --duration: expected a duration like 90s, 10m or 1h"),
        (["fuzz", "--rps", "0"], "argument --rps: must be positive"),
        (["fuzz", "--mock-fault", "nope"], "--mock-fault: unknown fault 'nope'"),
        (["replay", "missing.json"], "CASE.json: missing.json"),
    ],
)
def test_bad_fuzz_usage_is_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"atoma-conformance: error: {message}") and err.count("\n") == 1


def test_a_corrupt_case_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99}')
    assert main(["replay", str(bad)]) == 2
    assert "not an atoma-conformance replay case" in capsys.readouterr().err
