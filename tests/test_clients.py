"""Client certification: the adapter contract, the judge, the scenarios, and the matrix they produce.

The meta-test is the client side of "every check can fail": for each CLIENT check a toy client
(tests/client_adapters/misbehave.py) breaks exactly that obligation, through nothing but an adapter
command, and the check must fail; the reference client must pass them all.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance.cli import main
from conformance.clients import builtin as builtin_module
from conformance.clients.checks import BY_ID, CLIENT_CHECKS, JUDGE_CHECKS, SCENARIOS
from conformance.clients.contract import (
    AdapterFailure,
    AdapterResult,
    Instruction,
    content_of,
    run_adapter,
)
from conformance.clients.report import SCHEMA_PATH, to_json
from conformance.clients.runner import ClientUnderTest, Matrix, clean_result, run_matrix
from conformance.protocol import seal_request

TOY = Path(__file__).parent / "client_adapters" / "misbehave.py"
REFERENCE = f"{shlex.quote(sys.executable)} -m conformance.clients.adapters.reference"
SCENARIO_BY_ID = {s.check.id: s for s in SCENARIOS}
# Two requests (chat and a stream): enough for the freshness checks to compare.
CHAT = "meta-llama/Llama-3.3-70B-Instruct"
JUDGE_SCENARIOS = [SCENARIO_BY_ID["CLIENT-020"], SCENARIO_BY_ID["CLIENT-021"]]


def toy(fault: str) -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(TOY))} {fault}"


def outcomes(matrix: Matrix, name: str) -> dict[str, str]:
    report = next(r for r in matrix.clients if r.client.name == name)
    return {c.id: c.outcome for c in report.checks}


# --- the catalogue ---------------------------------------------------------------------------------


def test_client_check_ids_are_unique_and_every_scenario_uses_a_real_fault() -> None:
    from mock_node.faults import resolve

    assert len(BY_ID) == len(CLIENT_CHECKS) == len(JUDGE_CHECKS) + len({s.check.id for s in SCENARIOS})
    for scenario in SCENARIOS:
        resolve(scenario.faults)  # raises on an unknown fault name
    assert {c.level for c in CLIENT_CHECKS} <= {"MUST", "SHOULD", "INFO"}


def test_every_client_check_cites_a_requirement_that_exists() -> None:
    spec = (Path(__file__).parents[1] / "docs" / "spec.md").read_text(encoding="utf-8")
    for check in CLIENT_CHECKS:
        for ref in check.spec:
            assert f"**{ref}**" in spec, f"{check.id} cites {ref}, which docs/spec.md does not define"


# --- the reference client and the meta-test ---------------------------------------------------------


def test_the_reference_client_passes_every_client_check(tmp_path: Path) -> None:
    matrix = run_matrix([ClientUnderTest("reference", REFERENCE)])
    assert outcomes(matrix, "reference") == {c.id: "pass" for c in CLIENT_CHECKS}
    assert matrix.passed
    doc = to_json(matrix)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


# The toy fault that breaks each check. Scenario checks that expect a refusal are broken by a client
# that checks nothing; those that expect acceptance, by one that refuses everything.
BREAKS = {
    "CLIENT-001": "key-reuse",
    "CLIENT-002": "salt-reuse",
    "CLIENT-003": "nonce-reuse",
    "CLIENT-004": "whitespace-base64",
    "CLIENT-005": "short-salt",
    "CLIENT-006": "wrong-hash",
    "CLIENT-007": "model-mismatch",
    "CLIENT-008": "stream-mismatch",
    "CLIENT-009": "overask-units",
    "CLIENT-010": "foreign-node-key",
    "CLIENT-011": "reuse-lock",
    "CLIENT-012": "pretty-json",
    **{s.check.id: ("credulous" if s.expect == "refuse" else "paranoid") for s in SCENARIOS},
}


def test_every_client_check_has_a_toy_client_that_breaks_it() -> None:
    assert set(BREAKS) == set(BY_ID)


@pytest.mark.parametrize("check_id", sorted(BREAKS))
def test_each_client_check_fails_for_the_client_that_breaks_it(check_id: str) -> None:
    scenarios = JUDGE_SCENARIOS if check_id not in SCENARIO_BY_ID else [SCENARIO_BY_ID[check_id]]
    matrix = run_matrix([ClientUnderTest("toy", toy(BREAKS[check_id]))], scenarios=scenarios, timeout_s=10)
    report = matrix.clients[0]
    verdict = next(c for c in report.checks if c.id == check_id)
    assert verdict.outcome == "fail", f"{check_id} did not catch {BREAKS[check_id]}: {verdict.reason}"
    if verdict.level == "MUST":
        assert not matrix.passed


def test_a_new_client_needs_only_an_adapter_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's proof: a toy that reuses salts, certified from the command line, no code change."""
    code = main(["clients", "--adapter", f"salty={toy('salt-reuse')}", "--report-dir", str(tmp_path)])
    assert code == 1
    assert "salty: MUST fail" in capsys.readouterr().out
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    verdicts = {c["id"]: c for c in doc["clients"][0]["checks"]}
    assert verdicts["CLIENT-002"]["outcome"] == "fail"
    assert "the same salt was sent" in verdicts["CLIENT-002"]["reason"]
    assert verdicts["CLIENT-001"]["outcome"] == verdicts["CLIENT-003"]["outcome"] == "pass"
    matrix_md = (tmp_path / "matrix.md").read_text(encoding="utf-8")
    assert "| CLIENT-002 A new salt for every request | MUST |" in matrix_md
    assert "salty" in (tmp_path / "matrix.html").read_text(encoding="utf-8")


def test_a_refusal_before_the_node_served_anything_proves_nothing() -> None:
    """A client whose request the node refused never saw the forged answer: an error, never a pass."""
    scenario = SCENARIO_BY_ID["CLIENT-026"]
    matrix = run_matrix([ClientUnderTest("toy", toy("wrong-hash"))], scenarios=[scenario], timeout_s=10)
    verdict = next(c for c in matrix.clients[0].checks if c.id == "CLIENT-026")
    assert verdict.outcome == "error"
    assert "never served" in verdict.reason and "CLIENT-006" in verdict.reason


def test_reports_hold_no_content_unless_asked(tmp_path: Path) -> None:
    scenario = SCENARIO_BY_ID["CLIENT-020"]
    plain = to_json(run_matrix([ClientUnderTest("reference", REFERENCE)], scenarios=[scenario]))
    kept = to_json(run_matrix([ClientUnderTest("reference", REFERENCE)], scenarios=[scenario], keep_plaintext=True))

    def evidence(doc: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = next(c for c in doc["clients"][0]["checks"] if c["id"] == "CLIENT-020")["evidence"]
        return found

    assert "content" not in evidence(plain) and "client-cert-" not in json.dumps(plain)
    assert isinstance(evidence(kept)["content"], str) and evidence(kept)["content"]


# --- adapters that misbehave are errors, not verdicts about the client -------------------------------


def prints(result: object) -> str:
    """An adapter command that prints ``result`` as JSON."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(f'print({json.dumps(json.dumps(result))})')}"


def _instruction(timeout_s: float = 5.0) -> Instruction:
    return Instruction("http://127.0.0.1:9", "k", "m", "chat", {}, None, timeout_s)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/nonexistent/adapter", "no such file or command"),
        (f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'", "exited with status 3"),
        (f"{shlex.quote(sys.executable)} -c 'print(\"hello\")'", "not JSON"),
        (f"{shlex.quote(sys.executable)} -c 'pass'", "printed nothing"),
        (f"{shlex.quote(sys.executable)} -c 'print(1)'", "not a JSON object"),
        (f'{shlex.quote(sys.executable)} -c \'print("{{\\"outcome\\": \\"maybe\\"}}")\'', "outcome"),
        (f'{shlex.quote(sys.executable)} -c \'print("{{\\"outcome\\": \\"error\\"}}")\'', "error_code"),
        (f'{shlex.quote(sys.executable)} -c \'print("{{\\"outcome\\": \\"ok\\", \\"content\\": 1}}")\'', "content"),
        ("", "empty"),
    ],
)
def test_a_broken_adapter_is_an_adapter_failure(command: str, message: str) -> None:
    with pytest.raises(AdapterFailure, match=message):
        run_adapter(command, _instruction())


def test_a_hanging_adapter_is_killed_at_its_deadline() -> None:
    with pytest.raises(AdapterFailure, match="did not answer"):
        run_adapter(f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'", _instruction(0.2), grace_s=0.3)


def test_a_crashing_adapter_makes_every_scenario_an_error() -> None:
    crash = f"{shlex.quote(sys.executable)} -c 'raise SystemExit(1)'"
    matrix = run_matrix([ClientUnderTest("crash", crash)], scenarios=[SCENARIO_BY_ID["CLIENT-024"]], timeout_s=5)
    verdicts = outcomes(matrix, "crash")
    assert verdicts["CLIENT-024"] == "error" and verdicts["CLIENT-002"] == "error"
    assert not matrix.passed


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        ([], "instruction: must be a JSON object"),
        ({"contract": 2}, "contract: must be 1"),
        ({"contract": 1, "base_url": "u", "api_key": "k", "model": "m"}, "operation: must be a non-empty string"),
        ({"contract": 1, "base_url": "u", "api_key": "k", "model": "m", "operation": "talk"}, "operation: must be one"),
        ({"contract": 1, "base_url": "u", "api_key": "k", "model": "m", "operation": "chat", "params": 1}, "params"),
        (
            {"contract": 1, "base_url": "u", "api_key": "k", "model": "m", "operation": "chat", "node_address": 1},
            "node_address",
        ),
        (
            {"contract": 1, "base_url": "u", "api_key": "k", "model": "m", "operation": "chat", "timeout_s": 0},
            "timeout",
        ),
    ],
)
def test_an_invalid_instruction_is_refused_naming_the_field(instruction: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Instruction.from_json(instruction)


def test_the_reference_adapter_answers_a_bad_instruction_with_a_named_error() -> None:
    from conformance.clients.adapters.reference import answer

    assert answer("not json")["error_code"] == "BAD_INSTRUCTION"
    result = answer(json.dumps({"contract": 1}))
    assert result["outcome"] == "error" and result["detail"].startswith("base_url:")


def test_an_unsupported_operation_is_a_skip_not_a_failure() -> None:
    script = 'print(\'{"outcome": "error", "error_code": "UNSUPPORTED_OPERATION", "content": null}\')'
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    matrix = run_matrix([ClientUnderTest("none", command)], scenarios=[SCENARIO_BY_ID["CLIENT-022"]], timeout_s=5)
    assert outcomes(matrix, "none")["CLIENT-022"] == "skip"


def test_content_of_follows_the_contract() -> None:
    assert content_of({"choices": [{"message": {"content": "hi"}}]}) == "hi"
    assert content_of({"choices": [{"text": "yo"}]}) == "yo"
    assert content_of([{"choices": [{"index": 0, "delta": {"content": "a"}}]}, {"choices": []}]) == "a"
    assert content_of({"data": [{"embedding": [0.1, 0.2]}]}) == "1x2"
    assert content_of({"data": [{"b64_json": "x"}, {"b64_json": "y"}]}) == "2 image(s)"
    parsed = AdapterResult.parse('noise\n{"outcome": "ok", "content": "c", "detail": "' + "d" * 500 + '"}\n')
    assert parsed.accepted and parsed.detail == "d" * 500, "kept whole until the API key is blanked"
    cleaned = clean_result(parsed, _instruction(), keep_plaintext=False)
    assert cleaned.detail == "d" * 200 + "… (500 characters)"


# --- the command line ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name at least one client"),
        (["--adapter", "nosuch"], "not a built-in adapter"),
        (["--adapter", "a b=cmd"], "the name must be"),
        (["--adapter", "a="], "the command after '=' is empty"),
        (["--adapter", "reference", "--adapter", "reference"], "named twice"),
        (["--adapter", "reference", "--scenario", "CLIENT-999"], "unknown scenario check CLIENT-999"),
        (["--adapter", "reference", "--timeout", "0"], "--timeout: must be a positive, finite number of seconds"),
        (["--adapter", "reference", "--timeout", "nan"], "--timeout: must be a positive, finite number of seconds"),
        (["--adapter", 'x=echo "'], "cannot be split"),
    ],
)
def test_clients_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clients", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_without_node_the_typescript_column_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    adapters = ["--adapter", "reference", "--adapter", "atoma-sdk-ts", "--scenario", "CLIENT-020"]
    code = main(["clients", *adapters, "--report-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, "a skipped client does not fail the run; the reference passes"
    assert "atoma-sdk-ts: skipped (node is not on PATH" in capsys.readouterr().out
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    ts = doc["clients"][1]
    assert not ts["tested"] and {c["outcome"] for c in ts["checks"]} == {"skip"}


def test_a_failed_install_is_an_error_in_the_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin_module, "PY_SDK_REQUIREMENT", "atoma-sdk-does-not-exist==0.0.0")
    monkeypatch.setattr(builtin_module, "_run", lambda argv, what: f"{what} failed (exit 1): no such package")
    client = builtin_module.builtin("atoma-sdk-py", tmp_path, lambda text: None)
    assert client.command is None and client.setup_error is not None and "no such package" in client.setup_error
    matrix = run_matrix([client], scenarios=[SCENARIO_BY_ID["CLIENT-020"]])
    assert set(outcomes(matrix, "atoma-sdk-py").values()) == {"error"} and not matrix.passed


def test_the_committed_sdk_matrix_covers_every_client_check() -> None:
    """docs/client-matrix.md is produced by the README's command; a new check means regenerating it."""
    example = (Path(__file__).parents[1] / "docs" / "client-matrix.md").read_text(encoding="utf-8")
    for check in CLIENT_CHECKS:
        assert f"| {check.id} " in example, f"docs/client-matrix.md predates {check.id}: regenerate it"
    for name in ("reference", "atoma-sdk-py", "atoma-sdk-ts"):
        assert f"| {name} |" in example


# --- review findings: ways a client could have passed without earning it -----------------------------------


def test_a_stream_scenario_needs_a_stream(tmp_path: Path) -> None:
    """A client that turns chat-stream into a plain chat never sees the faulty chunks."""
    scenarios = [SCENARIO_BY_ID["CLIENT-021"], SCENARIO_BY_ID["CLIENT-025"]]
    matrix = run_matrix([ClientUnderTest("toy", toy("nostream"))], scenarios=scenarios, timeout_s=10)
    verdicts = {c.id: c for c in matrix.clients[0].checks}
    assert verdicts["CLIENT-021"].outcome == "fail" and "no event stream" in verdicts["CLIENT-021"].reason
    assert verdicts["CLIENT-025"].outcome == "error" and "no chat-stream request" in verdicts["CLIENT-025"].reason


def test_freshness_is_not_judged_on_one_request() -> None:
    matrix = run_matrix([ClientUnderTest("toy", toy("salt-reuse"))], scenarios=[SCENARIO_BY_ID["CLIENT-020"]])
    verdicts = {c.id: c for c in matrix.clients[0].checks}
    assert verdicts["CLIENT-002"].outcome == "skip" and "at least two requests" in verdicts["CLIENT-002"].reason


def test_a_run_without_a_tested_client_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = run_matrix([ClientUnderTest("ts", None, unavailable="node is not on PATH")])
    assert not matrix.passed and to_json(matrix)["verdict"] == "fail"


def test_a_refusal_from_a_client_that_refuses_the_honest_answer_proves_nothing() -> None:
    scenarios = [SCENARIO_BY_ID[i] for i in ("CLIENT-020", "CLIENT-021", "CLIENT-032")]
    matrix = run_matrix([ClientUnderTest("toy", toy("refuse-streams"))], scenarios=scenarios, timeout_s=10)
    verdicts = {c.id: c for c in matrix.clients[0].checks}
    assert verdicts["CLIENT-021"].outcome == "fail"
    assert verdicts["CLIENT-032"].outcome == "error" and "honest control CLIENT-021" in verdicts["CLIENT-032"].reason
    assert verdicts["CLIENT-020"].outcome == "pass"


def test_unsupported_after_being_served_is_an_error() -> None:
    scenario = SCENARIO_BY_ID["CLIENT-026"]
    matrix = run_matrix([ClientUnderTest("toy", toy("unsupported-after-serving"))], scenarios=[scenario])
    verdict = next(c for c in matrix.clients[0].checks if c.id == "CLIENT-026")
    assert verdict.outcome == "error" and "served" in verdict.reason


def test_an_adapters_detail_loses_the_api_key_and_the_request_text(tmp_path: Path) -> None:
    scenario = SCENARIO_BY_ID["CLIENT-020"]
    matrix = run_matrix([ClientUnderTest("toy", toy("leaky-detail"))], scenarios=[scenario])
    doc = json.dumps(to_json(matrix))
    assert "client-cert-" not in doc and "Say hello." not in doc
    assert "[api key]" in doc and "[request text]" in doc


def test_the_judge_picks_locks_the_way_the_proxy_does() -> None:
    """The first unspent, unexpired lock with room, not the newest one."""
    from mock_node.config import MockConfig
    from mock_node.judge import ClientJudge

    now = [0.0]
    config = MockConfig()
    judge = ClientJudge(config.node_private_key, lambda: now[0])
    seal = functools.partial(seal_request, node_public_key=config.node_public_key, model_name=CHAT)
    body = b'{"model":"%s","messages":[]}' % CHAT.encode()
    judge.on_lock("a", 1, config.node_public_key, 100, 60)
    judge.on_lock("a", 1, config.node_public_key, 10, 60)
    seen = judge.on_request(
        "a", "chat", seal(body, stack_small_id=1, stream=False, num_compute_units=50).request.serialize()
    )
    assert "CLIENT-009" not in seen.findings
    judge.on_lock("b", 2, config.node_public_key, 8192, 1)
    judge.on_lock("b", 2, config.node_public_key, 8192, 60)
    now[0] = 0.5
    assert not judge.on_request("b", "chat", seal(body, stack_small_id=2, stream=False).request.serialize()).findings
    now[0] = 2.0
    assert not judge.on_request("b", "chat", seal(body, stack_small_id=2, stream=False).request.serialize()).findings
    absent = seal(body, stack_small_id=2, stream=None).request.serialize()
    judge.on_lock("b", 2, config.node_public_key, 8192, 60)
    assert "CLIENT-008" in judge.on_request("b", "chat", absent).findings, "R13.6: stream is a JSON boolean"
