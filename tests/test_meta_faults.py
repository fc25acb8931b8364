"""The meta-test: the suite must catch every fault of the mock's catalogue (Tinfoil's adversarial
oracle, applied to ourselves). For each fault the whole catalogue runs against a mock with that fault
on; the checks the fault table names must fail, and those same checks must pass on the clean mock."""

from __future__ import annotations

import pytest

from conformance.checks import CATALOGUE, Run, Target
from conformance.client import ConfidentialClient, NodeFace
from conformance.protocol.sui import Scheme, SuiSigner
from conformance.taxonomy import Face
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.faults import CATALOGUE as FAULTS
from mock_node.faults import Fault
from mock_node.testing import SkewClock, running_node

CHECK_IDS = {c.id for c in CATALOGUE}
KILLED: dict[str, bool] = {}


SIGNER = SuiSigner(Scheme.ED25519, bytes(range(32)))  # the suite's key when it stands in for the proxy
STACK = 3


def run_catalogue(faults: tuple[str, ...] = (), face: Face = "proxy") -> dict[str, str]:
    """Every check's outcome against a mock with ``faults`` on (its clock skips the lock-expiry wait)."""
    clock = SkewClock()
    owners = {STACK: SIGNER.address} if face == "node" else {}
    config = MockConfig(faults=faults, clock=clock.now, face=face, stack_owners=owners)
    hop = NodeFace(SIGNER, STACK, config.node_public_key) if face == "node" else None
    with running_node(config) as url:

        def make(key: str | None) -> ConfidentialClient:
            return ConfidentialClient(url, key, node_face=hop)

        target = Target(
            url,
            "meta-test-key-0001" if face == "proxy" else None,
            DEFAULT_MODELS[0],
            DEFAULT_MODELS[1],
            DEFAULT_MODELS[2],
            config.signer_address,
            "meta-test-key-0002" if face == "proxy" else None,
            embedded=True,
            profile=config.profile,
            face=face,
        )
        client = make(target.api_key)
        try:
            run = Run(target, client, client_factory=make, sleep=clock.advance)
            return {check.id: check.run(run).outcome for check in CATALOGUE}
        finally:
            client.close()


@pytest.fixture(scope="module")
def clean() -> dict[str, dict[str, str]]:
    return {face: run_catalogue(face=face) for face in ("proxy", "node")}


def test_every_fault_names_existing_checks() -> None:
    for fault in FAULTS:
        assert fault.caught_by, f"{fault.name} names no check that catches it"
        assert set(fault.caught_by) <= CHECK_IDS, f"{fault.name}: unknown checks {set(fault.caught_by) - CHECK_IDS}"


def test_the_clean_mock_passes_every_check_of_its_face(clean: dict[str, dict[str, str]]) -> None:
    """Each face passes every check; a check skips only when it probes the other face."""
    node_only = {c.id for c in CATALOGUE if c.category == "NODE"}
    proxy_only = {"LOCK-" + f"{n:03d}" for n in range(1, 13)} | {"ERR-012", "ERR-016", "ERR-021"}
    assert {i: o for i, o in clean["proxy"].items() if o != "pass"} == {i: "skip" for i in node_only}
    assert {i: o for i, o in clean["node"].items() if o != "pass"} == {i: "skip" for i in proxy_only}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_the_suite_catches_the_fault(fault: Fault, clean: dict[str, dict[str, str]]) -> None:
    outcomes = run_catalogue((fault.name,), fault.face)
    missed = [i for i in fault.caught_by if outcomes[i] != "fail"]
    KILLED[fault.name] = not missed and any(o == "fail" for o in outcomes.values())
    assert not missed, f"{fault.name}: the named checks did not fail: {[(i, outcomes[i]) for i in missed]}"
    assert all(clean[fault.face][i] == "pass" for i in fault.caught_by), "a named check fails on the clean mock too"


def test_fault_kill_rate_is_total() -> None:
    """Runs last in this module: every fault above was killed by the checks its table entry names."""
    assert len(KILLED) == len(FAULTS), "run the whole module to measure the kill rate"
    rate = sum(KILLED.values()) / len(FAULTS)
    print(f"\nfault-kill rate: {sum(KILLED.values())}/{len(FAULTS)} = {rate:.0%}")
    assert rate == 1.0, [name for name, killed in KILLED.items() if not killed]


@pytest.fixture(autouse=True, scope="module")
def _isolate() -> None:
    KILLED.clear()
