"""Hostile targets for ``fuzz`` and ``replay`` (issue 14): ``--duration`` bounds the wall time whatever the
target does; a target that mostly gives cut-off answers is unusable (exit 2, one line), never "no
finding"; a cut-off answer is never judged as served; an unexpected error (a MemoryError) is never
swallowed; a replay case holds nothing that opens its request, and still replays FIXED / STILL FAILING."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis.errors import FlakyFailure

from conformance import strategies as fs
from conformance.cli import main
from conformance.client import ClientOptions, ConfidentialClient
from conformance.embedded import embedded_target
from conformance.exits import UserError
from conformance.fuzz import campaign as campaign_module
from conformance.fuzz import stateful
from conformance.fuzz.campaign import (
    Campaign,
    CampaignConfig,
    FindingFailed,
    _other_than_findings,
    mutation_from_case,
    mutation_params_json,
    plaintext_shape,
)
from conformance.fuzz.cases import ReplayCase
from conformance.fuzz.guard import Guard, cut_off
from conformance.fuzz.oracle import Finding, OracleState, judge
from conformance.protocol import ProtocolError, client_exchange
from conformance.records import ExchangeRecord, HttpRecord
from tests.hostile_server import hostile_node
from tests.test_fuzz_cli import case_data, one_line_error, session_case

MOCK_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def hostile_fuzz(url: str, report: Path, *extra: str) -> list[str]:
    return [
        "fuzz",
        "--target",
        url,
        "--model",
        "m",
        "--api-key",
        "hostile-key-0001",
        "--report-dir",
        str(report),
        *extra,
    ]


# --- time: --duration is a hard bound ----------------------------------------------------------------


def test_a_slow_drip_target_is_too_slow_within_the_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with hostile_node("slow-drip") as node:
        started = time.monotonic()
        code = main(hostile_fuzz(node.url, tmp_path, "--duration", "5s", "--timeout", "1", "--deadline", "0.5"))
        took = time.monotonic() - started
    assert code == 2
    assert one_line_error(capsys) == "target too slow: 5 of the first 5 exchanges hit the 0.5 s exchange deadline"
    assert took < 15, f"a 5 s campaign ran {took:.1f} s"
    assert not (tmp_path / "cases").exists(), "an unusable target is no finding"


def test_with_the_default_deadline_one_drip_cannot_outlast_the_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default 120 s exchange deadline is cut to what is left of the 5 s: before, one exchange ran
    # until the server gave up (30 s here; 121 s against a real slow node).
    with hostile_node("slow-drip") as node:
        started = time.monotonic()
        code = main(hostile_fuzz(node.url, tmp_path, "--duration", "5s"))
        took = time.monotonic() - started
    assert code == 2
    line = one_line_error(capsys)
    assert re.fullmatch(
        r"target too slow: 1 of 1 exchanges hit the exchange deadline \(cut to \d\.\d s by --duration\)", line
    ), line
    assert took < 8, f"a 5 s campaign ran {took:.1f} s"


def test_an_endless_stream_is_an_unusable_target_not_no_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with hostile_node("endless-stream") as node:
        started = time.monotonic()
        code = main(hostile_fuzz(node.url, tmp_path, "--duration", "5s", "--json"))
        took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 2 and took < 15
    expected = "target unusable: 5 of the first 5 exchanges ran past the 32 MiB response cap"
    assert err == f"atoma-conformance: error: {expected}\n"
    assert json.loads(out) == {"error": expected, "exit_code": 2}
    assert "no finding" not in out + err


def test_the_guard_bounds_each_call_by_the_time_left() -> None:
    now = [0.0]
    guard = Guard(
        10.0, ClientOptions(timeout_s=30, deadline_s=120, backoff_s=0.5, lock_retries=3), clock=lambda: now[0]
    )
    request = guard.options_for(ClientOptions(), lock=False)
    assert request.deadline_s == 10.0
    lock = guard.options_for(ClientOptions())  # 3 retries, 3.5 s of backoff: 4 attempts share 6.5 s
    assert lock.lock_retries == 3 and lock.deadline_s == pytest.approx(6.5 / 4)
    assert lock.deadline_s * 4 + 3.5 <= 10.0
    now[0] = 8.0  # 2 s left: one retry (0.5 s of backoff) fits in half of it
    lock = guard.options_for(ClientOptions())
    assert lock.lock_retries == 1 and lock.deadline_s * 2 + 0.5 <= 2.0
    now[0] = 10.5
    assert guard.expired() and guard.options_for(ClientOptions(), lock=False).deadline_s == 0.05


def _http(error: str | None, status: int | None = 200) -> HttpRecord:
    return HttpRecord("POST", "/v1/confidential/chat/completions", status, error=error, elapsed_s=0.5)


def test_the_guard_judges_a_target_unusable_by_its_cut_off_answers() -> None:
    options = ClientOptions(timeout_s=10, deadline_s=0.5)
    guard = Guard(None, options)
    for error in ("timeout", None, "timeout", "timeout", "timeout"):
        guard.observe(_http(error, None if error else 200))
    assert guard.unusable is None
    guard.observe(_http("timeout", None))
    assert guard.unusable == "target too slow: 5 of the first 6 exchanges hit the 10 s read timeout"
    in_a_row = Guard(None, options)
    for _ in range(6):
        in_a_row.observe(_http(None))
    for _ in range(5):
        in_a_row.observe(_http("RemoteProtocolError"))
    assert in_a_row.unusable is not None and in_a_row.unusable.startswith("target unusable: 5 exchanges in a row")
    at_end = Guard(None, options)
    for error in (None, "too-large", None, "too-large", "too-large", None):
        at_end.observe(_http(error))
    assert at_end.unusable is None
    assert at_end.verdict_at_end() == "target unusable: 3 of 6 exchanges ran past the 32 MiB response cap"


# --- the oracle never judges a cut-off answer as served ----------------------------------------------


@pytest.fixture(scope="module")
def served() -> ExchangeRecord:
    """A real, whole exchange with the strict mock: what the oracle judges."""
    with embedded_target() as embedded:
        client = ConfidentialClient(embedded.target.base_url, embedded.target.api_key)
        lock = client.lock(MOCK_MODEL)
        body = json.dumps({"model": MOCK_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
        record = client.send("chat", body.encode(), lock=lock, model_name=MOCK_MODEL)
        client.close()
    assert judge(record, None, OracleState()) == []
    return record


@pytest.mark.parametrize("error", ["deadline", "timeout", "too-large", "RemoteProtocolError", "content-encoding"])
def test_a_cut_off_answer_is_never_judged(served: ExchangeRecord, error: str) -> None:
    import dataclasses

    cut = dataclasses.replace(served, http=dataclasses.replace(served.http, error=error), response=None)
    assert cut_off(cut) == error
    assert judge(cut, None, OracleState()) == [], "a cut 200 is not a served answer"
    refuse = fs.Mutation("tag-bit-flip", "ERR-002", (), "refuse", "x")
    assert judge(cut, refuse, OracleState()) == [], "nor an accepted one"


def test_a_200_without_a_message_is_an_enc_005_finding(served: ExchangeRecord) -> None:
    import dataclasses

    http = dataclasses.replace(served.http, headers={"content-type": "text/event-stream"}, body=b"")
    empty = dataclasses.replace(served, http=http, response=None)
    findings = judge(empty, None, OracleState())
    assert [f.check_id for f in findings] == ["ENC-005"]
    assert findings[0].level == "MUST"  # the catalogue's level for R8.1
    assert findings[0].reason.endswith("200 text/event-stream")  # the rulebook's ENC-005, as the catalogue says it


# --- unexpected errors are never swallowed ---------------------------------------------------------------


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise MemoryError("decoded body too large (injected)")


def test_a_memory_error_ends_fuzz_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ConfidentialClient, "post_prepared", _explode)
    assert main(["fuzz", "--max-examples", "5", "--duration", "30s", "--report-dir", str(tmp_path)]) == 2
    assert one_line_error(capsys) == (
        "fuzz: stopped by an unexpected error, no verdict: MemoryError: decoded body too large (injected)"
    )


def test_a_memory_error_while_a_finding_shrinks_is_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A finding first (Hypothesis starts shrinking it), then a MemoryError: the old code let the
    # finding's AssertionError path (or the cap's CampaignOver) hide it.
    calls = [0]

    def oracle(record: ExchangeRecord, mutation: Any, state: OracleState) -> list[Finding]:
        calls[0] += 1
        if calls[0] == 1:
            return [Finding("USAGE-003", "injected")]
        raise MemoryError("injected while shrinking")

    monkeypatch.setattr(campaign_module, "judge", oracle)
    assert main(["fuzz", "--max-examples", "5", "--report-dir", str(tmp_path)]) == 2
    line = one_line_error(capsys)
    assert line.startswith("fuzz: stopped by an unexpected error, no verdict: MemoryError: injected while shrinking")
    assert "(a finding seen before was saved: " in line


def test_a_memory_error_in_a_session_ends_fuzz_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stateful, "judge", _explode)
    with embedded_target() as embedded:
        client = ConfidentialClient(embedded.target.base_url, embedded.target.api_key)

        def make(key: str | None) -> ConfidentialClient:
            return ConfidentialClient(embedded.target.base_url, key)

        campaign = Campaign(
            CampaignConfig(max_examples=1, mutations=False, report_dir=tmp_path),
            embedded.target,
            client,
            sleep=embedded.sleep,
            clock=embedded.clock,
            client_factory=make,
            sessions=3,
        )
        with pytest.raises(UserError, match="MemoryError: decoded body too large"):
            campaign.run()
        client.close()


def test_only_findings_are_results_in_what_hypothesis_raises() -> None:
    finding = FindingFailed("USAGE-003 x")
    assert _other_than_findings(finding) is None
    assert _other_than_findings(ExceptionGroup("two", [finding, FindingFailed("y")])) is None
    memory = MemoryError("boom")
    assert _other_than_findings(ExceptionGroup("mixed", [finding, memory])) is memory
    assert _other_than_findings(FlakyFailure("flaky", [memory])) is memory
    assert _other_than_findings(FlakyFailure("flaky", [finding])) is None


# --- replay cases hold no secret, and still replay ----------------------------------------------------


class RecordingTransport(httpx.HTTPTransport):
    """Keeps every confidential request body sent: what an eavesdropper of the campaign would hold."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/confidential/" in request.url.path:
            self.bodies.append(request.read())
        return super().handle_request(request)


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _byte_strings(value: Any) -> Iterator[bytes]:
    """Every string of a case that decodes (hex, or any base64) to 12 bytes or more."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _byte_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _byte_strings(item)
    elif isinstance(value, str):
        for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(value)
            except (ValueError, binascii.Error):
                continue
            if len(raw) >= 12:
                yield raw


def _campaign_case(report: Path, fault: str, transport: RecordingTransport, **config: Any) -> tuple[Path, bytes]:
    with embedded_target(faults=(fault,)) as embedded:
        client = ConfidentialClient(embedded.target.base_url, embedded.target.api_key, transport=transport)
        lock = client.lock(MOCK_MODEL)
        assert lock.public_key is not None
        result = Campaign(
            CampaignConfig(report_dir=report, **config),
            embedded.target,
            client,
            sleep=embedded.sleep,
            clock=embedded.clock,
            sessions=0,
        ).run()
        client.close()
    assert result.case_path is not None
    return result.case_path, lock.public_key


@pytest.mark.parametrize(
    ("fault", "mutations"), [("accept-wrong-plaintext-hash", True), ("usage-mismatch", False)], ids=["ERR", "USAGE"]
)
def test_a_case_without_keep_plaintext_opens_nothing_and_still_replays(
    fault: str, mutations: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = RecordingTransport()
    path, node_key = _campaign_case(tmp_path, fault, transport, max_examples=30, mutations=mutations)
    data = case_data(path)
    assert data["version"] == 2 and data["plaintext"] is None
    members = set(_keys(data))
    for gone in ("exchange_secret_hex", "request_body_b64", "ciphertext", "salt", "nonce", "client_dh_public_key"):
        assert gone not in members, f"the case still holds {gone}"
    assert "atoma-conformance-sentinel-" not in path.read_text()
    # Decrypting needs the client's X25519 secret: try every byte string in the file against every
    # request the campaign sent (its salt and nonce are given away, the file does not have them).
    candidates = [raw[:32] for raw in _byte_strings(data) if len(raw) >= 32]
    assert transport.bodies
    for body in transport.bodies:
        try:
            envelope = json.loads(body)  # the body-not-object family sends bodies that are not one object
            salt, nonce = base64.b64decode(envelope["salt"]), base64.b64decode(envelope["nonce"])
            ciphertext = base64.b64decode(envelope["ciphertext"])
        except (KeyError, TypeError, ValueError):
            continue  # a mutation that broke the envelope
        if len(salt) != 16 or len(nonce) != 12:
            continue
        for secret in candidates:
            exchange = client_exchange(secret, node_key, salt, nonce)
            with pytest.raises(ProtocolError):
                exchange.aead.open(nonce, ciphertext)
    assert main(["replay", str(path), "--mock-fault", fault]) == 1
    assert capsys.readouterr().out.startswith(f"STILL FAILING: {data['check_id']}")
    assert main(["replay", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"FIXED: {data['check_id']}")


def test_a_case_with_keep_plaintext_replays_its_plaintext(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _campaign_case(
        tmp_path, "usage-mismatch", RecordingTransport(), max_examples=30, mutations=False, keep_plaintext=True
    )
    case = ReplayCase.read(path)
    assert case.plaintext is not None and "atoma-conformance-sentinel-" in case.plaintext
    assert "exchange_secret_hex" not in path.read_text()
    value = case.plaintext_value()
    assert value["messages"] == json.loads(case.plaintext)["messages"]
    assert main(["replay", str(path), "--mock-fault", "usage-mismatch"]) == 1
    assert capsys.readouterr().out.startswith("STILL FAILING: USAGE-003")


def test_a_case_of_the_older_format_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"version": 1, "exchange_secret_hex": "00" * 60, "request_body_b64": ""}))
    assert main(["replay", str(old)]) == 2
    assert one_line_error(capsys) == (
        f"CASE.json: {old}: written by an older version of atoma-conformance (case version 1, which kept the "
        "request's secret): re-run the fuzz campaign"
    )


def test_the_shape_keeps_structure_and_vocabulary_not_text() -> None:
    plaintext = {
        "model": "m",
        "messages": [{"role": "user", "content": "secret text é"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "private", "parameters": {}}}],
        "stop": ["\x00a"],
        "max_tokens": 7,
        "user": "atoma-conformance-sentinel-0011223344556677",
    }
    assert plaintext_shape(plaintext) == {
        "model": "m",
        "messages": [{"role": "user", "content": "x" * 13}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "x" * 7, "parameters": {}}}],
        "stop": ["xx"],
        "max_tokens": 7,
        "user": "x" * 43,
    }


@settings(max_examples=60, deadline=None, database=None)
@given(fs.mutations())
def test_a_mutation_is_rebuilt_exactly_from_its_label_and_parameters(mutation: fs.Mutation) -> None:
    params = mutation_params_json(mutation)
    rebuilt = mutation_from_case(mutation.label(), json.loads(json.dumps(params)))
    assert rebuilt == mutation


def test_mutation_parameters_that_do_not_make_the_label_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = session_case([{"action": "lock", "key": "a"}])
    case.update(
        expect="refuse",
        check_id="ERR-002",
        mutation="ERR-002 tag-bit-flip (bit 3 of byte 7 of the GCM tag flipped)",
        mutation_params=[7, 4],
        shape={"model": MOCK_MODEL, "messages": []},
        extra={},
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(case))
    assert main(["replay", str(bad)]) == 2
    assert one_line_error(capsys) == f"CASE.json: {bad}: mutation_params: do not make the mutation the label names"


# --- replay waits -----------------------------------------------------------------------------------------


def test_a_wait_of_a_billion_seconds_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wait.json"
    path.write_text(json.dumps(session_case([{"action": "lock", "key": "a"}, {"action": "wait", "seconds": 1e9}])))
    started = time.monotonic()
    assert main(["replay", str(path)]) == 2
    took = time.monotonic() - started
    assert one_line_error(capsys) == (
        f"CASE.json: {path}: extra.steps[1].seconds: must be more than 0 and at most 60 seconds"
    )
    assert took < 1.0, f"refusing the case took {took:.2f} s"
