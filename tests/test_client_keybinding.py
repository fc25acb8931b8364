"""R15.14 on the client side: a client verifies the key a lock hands out before it encrypts to it.

Three parts, one rulebook (conformance/keyrules.py):

- the reference client's opt-in verification (``ClientOptions.key_source``, conformance/keycheck.py)
  refuses every key fault a client can see, naming the requirement, and sends nothing; it accepts
  the clean mock, and it is off by default (what the official SDKs do, W32);
- the client judge flags a request sealed to a key the chain does not commit (CLIENT-037), and
  ``atoma-conformance clients`` passes the reference adapter (which verifies) and fails a client
  that trusts the lock;
- CLIENT-037 is never a pass for a client that proves nothing: one that never locked, one that
  refuses the honest node too, or one whose honest control was not run.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.client import (
    CLIENT_EXCEPTIONS,
    AsyncConfidentialClient,
    ClientOptions,
    ConfidentialClient,
    UnverifiedLockKey,
)
from conformance.clients.checks import CONTROL, SCENARIOS_OF
from conformance.clients.contract import ChainInfo, Instruction
from conformance.clients.runner import ClientUnderTest, Matrix, chain_info, run_matrix
from conformance.embedded import embedded_key_source
from conformance.keybinding import KeySource
from conformance.protocol import DeviceTestCa, jsonwire, parse_roots
from mock_node.chain import MOCK_PACKAGE_ID, MockChain
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.judge import KEY_CHECK, ClientJudge
from mock_node.testing import running_node

CHAT = DEFAULT_MODELS[0]
PLAINTEXT = jsonwire.dumps({"model": CHAT, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8})
TOY = Path(__file__).parent / "client_adapters" / "misbehave.py"
REFERENCE = f"{shlex.quote(sys.executable)} -m conformance.clients.adapters.reference"
CONTROL_SCENARIOS = list(SCENARIOS_OF[CONTROL["chat"]])
KEY_SCENARIOS = list(SCENARIOS_OF[KEY_CHECK])

# Every key fault a client can see on the chain, and the requirement a verifying client names. The
# proxy service's copy (attestation-service-stale, R15.13) and the key's age (commitment-old, R15.10)
# are not part of R15.14: a client reads the chain itself and is given no age limit.
REFUSED = {
    "lock-key-uncommitted": "R15.11",
    "lock-key-stale": "R15.11",
    "commitment-ambiguous": "R15.2",
    "commitment-behind": "R15.12",
    "evidence-zlib-bomb": "R15.4",
    "evidence-other-key": "R15.5",
    "evidence-broken-chain": "R15.6",
    "evidence-signature-other-bytes": "R15.7",
    "evidence-fwid-mismatch": "R15.8",
}


def _command(script: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"


def toy(fault: str) -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(TOY))} {fault}"


# The reference adapter with the chain taken out of its instruction: the same client, trusting the lock.
TRUSTING = _command(
    "import json, sys\n"
    "from conformance.clients.adapters.reference import answer\n"
    "doc = json.loads(sys.stdin.read()); doc.pop('chain', None)\n"
    "print(json.dumps(answer(json.dumps(doc))))\n"
)


def verdicts(matrix: Matrix, name: str) -> dict[str, tuple[str, str]]:
    report = next(r for r in matrix.clients if r.client.name == name)
    return {c.id: (c.outcome, c.reason) for c in report.checks}


@pytest.fixture
def mock() -> Iterator[tuple[MockConfig, str]]:
    """A clean mock with a judge, to count what reaches it."""
    config = MockConfig()
    config.judge = ClientJudge.for_config(config)
    with running_node(config) as url:
        yield config, url


def _client(url: str, source: KeySource | None) -> ConfidentialClient:
    return ConfidentialClient(url, "key-binding-test", options=ClientOptions(timeout_s=10, key_source=source))


# --- the reference client's verification -----------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(REFUSED))
def test_the_verifying_client_refuses_each_key_fault_and_sends_nothing(fault: str) -> None:
    config = MockConfig(faults=(fault,))
    config.judge = ClientJudge.for_config(config)
    with running_node(config) as url, _client(url, embedded_key_source(url, config.node_small_id)) as client:
        lock = client.lock(CHAT)
        assert lock.ok
        with pytest.raises(UnverifiedLockKey) as caught:
            client.send("chat", PLAINTEXT, lock=lock, model_name=CHAT)
    refusal = caught.value
    assert refusal.rule == REFUSED[fault], f"{fault}: {refusal}"
    assert str(refusal).startswith(f"{REFUSED[fault]}: ") and "\n" not in str(refusal)
    assert isinstance(refusal, CLIENT_EXCEPTIONS), "in the client's exception tree"
    assert client.requests_sent == 1, "the lock, and nothing sealed to its key"
    assert config.judge.requests() == []


def test_the_refusal_says_which_key_problem_it_is() -> None:
    reasons = {}
    for fault in ("lock-key-uncommitted", "lock-key-stale"):
        config = MockConfig(faults=(fault,))
        with running_node(config) as url, _client(url, embedded_key_source(url, config.node_small_id)) as client:
            lock = client.lock(CHAT)
            with pytest.raises(UnverifiedLockKey) as caught:
                client.send("chat", PLAINTEXT, lock=lock, model_name=CHAT)
        reasons[fault] = caught.value.reason
    assert "never committed" in reasons["lock-key-uncommitted"]
    assert "key_rotation_counter 1" in reasons["lock-key-stale"] and "stale rotation" in reasons["lock-key-stale"]


def test_the_verifying_client_is_served_by_the_clean_mock(mock: tuple[MockConfig, str]) -> None:
    config, url = mock
    with _client(url, embedded_key_source(url, config.node_small_id)) as client:
        lock = client.lock(CHAT)
        record = client.send("chat", PLAINTEXT, lock=lock, model_name=CHAT)
        assert record.http.status == 200 and record.response is not None
        # A verified key is not read again within KEY_CHECK_TTL_S; a second lock's request is served too.
        assert client.send("chat", PLAINTEXT, lock=client.lock(CHAT), model_name=CHAT).http.status == 200
    seen = config.judge.requests()
    assert len(seen) == 2 and all(KEY_CHECK not in r.findings and r.key_unjudged is None for r in seen)


def test_the_async_client_verifies_the_same_way() -> None:
    async def attempt(url: str, source: KeySource) -> int | None:
        options = ClientOptions(timeout_s=10, key_source=source)
        async with AsyncConfidentialClient(url, "key-binding-test", options=options) as client:
            lock = await client.lock(CHAT)
            return (await client.send("chat", PLAINTEXT, lock=lock, model_name=CHAT)).http.status

    with running_node(MockConfig()) as url:
        assert asyncio.run(attempt(url, embedded_key_source(url, 1))) == 200
    with running_node(MockConfig(faults=("lock-key-stale",))) as url:
        with pytest.raises(UnverifiedLockKey) as caught:
            asyncio.run(attempt(url, embedded_key_source(url, 1)))
        assert caught.value.rule == "R15.11"


def test_verification_is_off_by_default_as_in_the_sdks() -> None:
    """Without key_source the client seals to whatever the lock hands out (W32), and the node serves it."""
    config = MockConfig(faults=("lock-key-uncommitted",))
    config.judge = ClientJudge.for_config(config)
    with running_node(config) as url, _client(url, None) as client:
        record = client.send("chat", PLAINTEXT, lock=client.lock(CHAT), model_name=CHAT)
    assert record.http.status == 200
    (seen,) = config.judge.requests()
    assert "never committed" in seen.findings[KEY_CHECK]


def test_a_chain_that_cannot_be_read_or_judged_is_a_refusal(mock: tuple[MockConfig, str]) -> None:
    """Fails closed: a chain that cannot be read, a package the full node does not have, and evidence
    signed by a root that is not trusted are refusals, not passes."""
    config, url = mock
    unreachable = KeySource("http://127.0.0.1:9/sui", MOCK_PACKAGE_ID, trust_test_ca=True)
    other_package = KeySource(f"{url}/sui", "0x" + "ab" * 32, trust_test_ca=True)
    untrusted = KeySource(f"{url}/sui", MOCK_PACKAGE_ID)  # the mock's evidence, without its test CA
    rules = {}
    for name, source in (("unreachable", unreachable), ("package", other_package), ("untrusted", untrusted)):
        with _client(url, source) as client:
            lock = client.lock(CHAT)
            with pytest.raises(UnverifiedLockKey) as caught:
                client.send("chat", PLAINTEXT, lock=lock, model_name=CHAT)
        rules[name] = caught.value
    assert rules["unreachable"].rule == "R15.14" and "cannot be verified" in rules["unreachable"].reason
    assert rules["package"].rule == "R15.14" and "answer was refused" in rules["package"].reason, "no such package"
    assert rules["untrusted"].rule == "R15.6", "the test CA is trusted only when asked"
    assert config.judge.requests() == []


# --- the client judge ------------------------------------------------------------------------------------


def test_the_judge_flags_a_request_sealed_to_a_key_the_chain_does_not_commit() -> None:
    """With the lock's key not the committed one, the judge decrypts under the key the node serves (so
    no other check is broken by the fault) and flags CLIENT-037 with the rulebook's reason."""
    from conformance.protocol import seal_request

    config = MockConfig(faults=("lock-key-stale",))
    judge = ClientJudge.for_config(config)
    stale = MockChain(config).serving_keypair(config.behaviour)[1]
    for key in (stale, config.node_public_key):
        judge.on_lock("a", 1, key, 8192, 60)
    sealed = [
        seal_request(PLAINTEXT, node_public_key=key, model_name=CHAT, stack_small_id=1, stream=False).request
        for key in (stale, config.node_public_key)
    ]
    to_stale, to_committed = (judge.on_request("a", "chat", s.serialize()) for s in sealed)
    assert "stale rotation" in to_stale.findings[KEY_CHECK] and "CLIENT-006" not in to_stale.findings
    assert KEY_CHECK not in to_committed.findings and to_committed.key_unjudged is None


# --- CLIENT-037 in the matrix ------------------------------------------------------------------------------


def test_the_reference_adapter_passes_client_037_and_sends_nothing_to_the_key() -> None:
    matrix = run_matrix([ClientUnderTest("reference", REFERENCE)], scenarios=[*CONTROL_SCENARIOS, *KEY_SCENARIOS])
    outcome, reason = verdicts(matrix, "reference")[KEY_CHECK]
    assert outcome == "pass", reason
    cells = [c for c in matrix.clients[0].cells if c.scenario.kind == "lock-key"]
    assert len(cells) == 2
    for cell in cells:
        assert cell.locks == 1 and cell.requests == [], "took the lock, sealed nothing to its key"
        assert cell.result is not None and cell.result.error_code == "UNVERIFIED_LOCK_KEY"
        assert cell.result.detail is not None and cell.result.detail.startswith("R15.11: ")


@pytest.mark.parametrize("command", [TRUSTING, toy("credulous")], ids=["reference-without-chain", "credulous"])
def test_a_client_that_trusts_the_lock_fails_client_037(command: str) -> None:
    for scenario in KEY_SCENARIOS:  # each scenario on its own fails the check
        matrix = run_matrix([ClientUnderTest("trusting", command)], scenarios=[*CONTROL_SCENARIOS, scenario])
        found = verdicts(matrix, "trusting")
        assert found["CLIENT-020"][0] == "pass", "it sends: the control shows it"
        outcome, reason = found[KEY_CHECK]
        assert outcome == "fail" and reason.startswith("encrypted a request to the lock's key"), reason
        expected = "never committed" if scenario.faults == ("lock-key-uncommitted",) else "stale rotation"
        assert expected in reason
        # The fault breaks nothing else: the node decrypts under the key it handed out, and so does the judge.
        assert {i for i, (o, _) in found.items() if o == "fail"} == {KEY_CHECK}


def test_a_client_that_never_locked_is_not_a_pass() -> None:
    matrix = run_matrix([ClientUnderTest("paranoid", toy("paranoid"))], scenarios=[*CONTROL_SCENARIOS, *KEY_SCENARIOS])
    outcome, reason = verdicts(matrix, "paranoid")[KEY_CHECK]
    assert outcome == "error" and "took no lock" in reason


def test_a_client_that_refuses_the_honest_node_too_is_not_a_pass(tmp_path: Path) -> None:
    """It takes the lock and refuses without sending: in the key scenarios that looks like a verifying
    client, but it refuses the honest control as well, so it has shown nothing."""
    script = tmp_path / "locks_then_refuses.py"
    script.write_text(
        "import json, sys\n"
        "import httpx\n"
        "from conformance.clients.adapters import reference\n"
        "from conformance.clients.contract import Instruction\n"
        "ins = Instruction.from_json(json.loads(sys.stdin.read()))\n"
        "headers = {'authorization': f'Bearer {ins.api_key}'}\n"
        "with httpx.Client(base_url=ins.base_url, headers=headers, timeout=ins.timeout_s) as http:\n"
        "    reference.lock(http, ins, reference.compute_units(ins))\n"
        "print(json.dumps(reference._error('NOPE', 'refuses after every lock')))\n",
        encoding="utf-8",
    )
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    matrix = run_matrix([ClientUnderTest("nope", command)], scenarios=[*CONTROL_SCENARIOS, *KEY_SCENARIOS])
    found = verdicts(matrix, "nope")
    assert found["CLIENT-020"][0] == "fail"
    assert found[KEY_CHECK][0] == "error" and "honest control CLIENT-020" in found[KEY_CHECK][1]


def test_client_037_without_its_control_is_not_evaluated() -> None:
    matrix = run_matrix([ClientUnderTest("reference", REFERENCE)], scenarios=KEY_SCENARIOS)
    outcome, reason = verdicts(matrix, "reference")[KEY_CHECK]
    assert outcome == "error" and "control CLIENT-020 was not run" in reason


def test_a_crashing_adapter_is_an_error_for_client_037() -> None:
    crash = _command("raise SystemExit(1)")
    matrix = run_matrix([ClientUnderTest("crash", crash)], scenarios=[*CONTROL_SCENARIOS, *KEY_SCENARIOS])
    assert verdicts(matrix, "crash")[KEY_CHECK][0] == "error"


def test_the_command_runs_the_control_with_the_key_scenarios(tmp_path: Path) -> None:
    code = main(["clients", "--adapter", "reference", "--scenario", KEY_CHECK, "--report-dir", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    checks = {c["id"]: c for c in doc["clients"][0]["checks"]}
    assert checks["CLIENT-020"]["outcome"] == checks[KEY_CHECK]["outcome"] == "pass"
    evidence = checks[KEY_CHECK]["evidence"]
    assert evidence["scenarios"] == {s.name: "pass" for s in KEY_SCENARIOS}
    matrix_md = (tmp_path / "matrix.md").read_text(encoding="utf-8")
    assert "lock-key-uncommitted / lock-key-stale" in matrix_md


# --- the contract --------------------------------------------------------------------------------------


def test_every_adapter_is_told_where_the_chain_is(tmp_path: Path) -> None:
    seen = tmp_path / "instruction.json"
    recorder = _command(
        "import sys, pathlib\n"
        f"pathlib.Path({str(seen)!r}).write_text(sys.stdin.read())\n"
        'print(\'{"outcome": "error", "error_code": "UNSUPPORTED_OPERATION", "content": null}\')\n'
    )
    run_matrix([ClientUnderTest("recorder", recorder)], scenarios=CONTROL_SCENARIOS, timeout_s=5)
    doc = json.loads(seen.read_text(encoding="utf-8"))
    chain = doc["chain"]
    assert chain["sui_rpc"] == doc["base_url"] + "/sui" and chain["attestation_service"] == doc["base_url"]
    assert chain["package_id"] == MOCK_PACKAGE_ID
    (root,) = parse_roots(chain["test_ca_pem"].encode())
    assert root == DeviceTestCa.create(MockConfig().seed.encode()).root
    assert Instruction.from_json(doc).chain == ChainInfo.from_json(chain)


def test_an_instruction_without_a_chain_is_still_valid() -> None:
    """Contract 1 as before: the chain member is optional, and the reference adapter then cannot verify."""
    base = {"contract": 1, "base_url": "http://127.0.0.1:9", "api_key": "k", "model": "m", "operation": "chat"}
    assert Instruction.from_json(base).chain is None
    assert Instruction.from_json({**base, "chain": None}).chain is None
    with pytest.raises(ValueError, match=r"chain\.sui_rpc"):
        Instruction.from_json({**base, "chain": {"package_id": "0x1"}})
    with pytest.raises(ValueError, match=r"chain\.test_ca_pem"):
        Instruction.from_json({**base, "chain": {"sui_rpc": "u", "package_id": "0x1", "test_ca_pem": 7}})


def test_the_reference_adapter_refuses_an_unusable_test_ca_as_a_bad_instruction() -> None:
    from conformance.clients.adapters.reference import answer

    with running_node(MockConfig()) as url:
        chain = chain_info(url, MockConfig())
        bad = ChainInfo(chain.sui_rpc, chain.package_id, chain.attestation_service, "not a certificate")
        instruction = Instruction(url, "k", CHAT, "chat", {"messages": [], "max_tokens": 4}, None, 10, bad)
        result = answer(json.dumps(instruction.to_json()))
    assert result["error_code"] == "BAD_INSTRUCTION" and result["detail"].startswith("chain.test_ca_pem")
