"""The meta-test: the suite must catch every fault of the mock's catalogue (Tinfoil's adversarial
oracle, applied to ourselves). For each fault the whole catalogue runs against a mock with that fault
on; the checks the fault table names must fail, and those same checks must pass on the clean mock.

On the node face the suite signs X-Signature as the stack owner, with the owner's scheme the fault
names (``Fault.owner``): an ECDSA verifier's flaws are invisible to an Ed25519 owner, so those faults
are proved with a secp256k1 owner, and again with a secp256r1 one.

A concurrency fault (``Fault.concurrent``) shows only with requests in flight at once, which a serial
run does not send: for it the proof is the opposite one, that the whole serial run passes exactly as on
the clean mock. That is what makes ``atoma-conformance load`` necessary; tests/test_load.py proves load
catches it, so the kill rate here counts the serial faults only."""

from __future__ import annotations

import pytest

from conformance.checks import CATALOGUE, Run, Target
from conformance.client import ConfidentialClient, NodeFace
from conformance.embedded import EMBEDDED_MAX_KEY_AGE_S, embedded_key_source
from conformance.protocol.sui import Scheme, SuiSigner
from conformance.taxonomy import Face
from mock_node.chain import MockChain
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.faults import CATALOGUE as FAULTS
from mock_node.faults import Fault
from mock_node.testing import SkewClock, running_node

CHECK_IDS = {c.id for c in CATALOGUE}
KILLED: dict[str, bool] = {}


# The suite's keys when it stands in for the proxy, one per scheme (0..31 is a valid scalar on both curves).
SIGNERS = {scheme: SuiSigner(scheme, bytes(range(32))) for scheme in Scheme}
ED25519, ECDSA = Scheme.ED25519, (Scheme.SECP256K1, Scheme.SECP256R1)
STACK = 3
# The API keys the suite presents on the proxy face, which the mock knows: a token nobody issued is refused.
API_KEYS = ("meta-test-key-0001", "meta-test-key-0002")
# The checks of R7.5's ECDSA rules, which skip (never pass) when the owner key is Ed25519.
ECDSA_ONLY = {"NODE-008", "NODE-009", "NODE-010"}
RUNS: tuple[tuple[Face, Scheme], ...] = (("proxy", ED25519), ("node", ED25519), *(("node", s) for s in ECDSA))
ECDSA_FAULTS = [f for f in FAULTS if f.owner is not ED25519]
SERIAL_FAULTS = [f for f in FAULTS if not f.concurrent]
CONCURRENCY_FAULTS = [f for f in FAULTS if f.concurrent]


def run_catalogue(faults: tuple[str, ...] = (), face: Face = "proxy", owner: Scheme = ED25519) -> dict[str, str]:
    """Every check's outcome against a mock with ``faults`` on (its clock skips the lock-expiry wait);
    on the node face the suite signs as a stack owner of scheme ``owner``."""
    clock = SkewClock()
    signer = SIGNERS[owner]
    owners = {STACK: signer.address} if face == "node" else {}
    keys = API_KEYS if face == "proxy" else ()
    config = MockConfig(faults=faults, clock=clock.now, face=face, stack_owners=owners, api_keys=keys)
    # The node's key as its operator knows it: the one it serves under (under node-key-uncommitted, not
    # the committed one, so every ordinary check passes and only KEY-011, which reads the chain, fails).
    served_key = MockChain(config).serving_keypair(config.behaviour)[1]
    hop = NodeFace(signer, STACK, served_key) if face == "node" else None
    with running_node(config) as url:

        def make(key: str | None) -> ConfidentialClient:
            return ConfidentialClient(url, key, node_face=hop)

        target = Target(
            url,
            API_KEYS[0] if face == "proxy" else None,
            DEFAULT_MODELS[0],
            DEFAULT_MODELS[1],
            DEFAULT_MODELS[2],
            config.signer_address,
            API_KEYS[1] if face == "proxy" else None,
            embedded=True,
            profile=config.profile,
            face=face,
            key_source=embedded_key_source(url, config.node_small_id, EMBEDDED_MAX_KEY_AGE_S),
        )
        client = make(target.api_key)
        try:
            run = Run(target, client, client_factory=make, sleep=clock.advance)
            return {check.id: check.run(run).outcome for check in CATALOGUE}
        finally:
            client.close()


@pytest.fixture(scope="module")
def clean() -> dict[tuple[Face, Scheme], dict[str, str]]:
    return {(face, owner): run_catalogue(face=face, owner=owner) for face, owner in RUNS}


def test_every_fault_names_existing_checks() -> None:
    for fault in FAULTS:
        assert fault.caught_by, f"{fault.name} names no check that catches it"
        assert set(fault.caught_by) <= CHECK_IDS, f"{fault.name}: unknown checks {set(fault.caught_by) - CHECK_IDS}"


def test_the_clean_mock_passes_every_check_of_its_face(clean: dict[tuple[Face, Scheme], dict[str, str]]) -> None:
    """Each face passes every check; a check skips only when it probes the other face, or, with an
    Ed25519 stack owner, when it probes R7.5's ECDSA rules (an ECDSA owner passes those too)."""
    node_only = {c.id for c in CATALOGUE if c.category == "NODE"} | {"KEY-011"}
    proxy_only = {"LOCK-" + f"{n:03d}" for n in range(1, 20)} | {"ERR-012", "ERR-016", "ERR-021", "ERR-028", "ERR-029"}
    proxy_only |= {"KEY-001"}  # the lock's key: the node face has no lock
    assert node_only >= ECDSA_ONLY
    assert {i: o for i, o in clean[("proxy", ED25519)].items() if o != "pass"} == {i: "skip" for i in node_only}
    skipped = proxy_only | ECDSA_ONLY
    assert {i: o for i, o in clean[("node", ED25519)].items() if o != "pass"} == {i: "skip" for i in skipped}
    for owner in ECDSA:
        assert {i: o for i, o in clean[("node", owner)].items() if o != "pass"} == {i: "skip" for i in proxy_only}


@pytest.mark.parametrize("fault", SERIAL_FAULTS, ids=[f.name for f in SERIAL_FAULTS])
def test_the_suite_catches_the_fault(fault: Fault, clean: dict[tuple[Face, Scheme], dict[str, str]]) -> None:
    outcomes = run_catalogue((fault.name,), fault.face, fault.owner)
    missed = [i for i in fault.caught_by if outcomes[i] != "fail"]
    KILLED[fault.name] = not missed and any(o == "fail" for o in outcomes.values())
    assert not missed, f"{fault.name}: the named checks did not fail: {[(i, outcomes[i]) for i in missed]}"
    passing = clean[(fault.face, fault.owner)]
    assert all(passing[i] == "pass" for i in fault.caught_by), "a named check fails on the clean mock too"
    if fault.category == "key":
        # What the chain says about the lock's key is judged step by step: a fault that breaks one step
        # fails exactly the checks it names. The KEY checks that read what the broken step produced are
        # not evaluated (an error, never a pass), and every other check comes out as on the clean mock.
        assert {i for i, o in outcomes.items() if o == "fail"} == set(fault.caught_by)
        changed = {i: o for i, o in outcomes.items() if o != passing[i] and i not in fault.caught_by}
        assert all(i.startswith("KEY-") and o == "error" for i, o in changed.items()), changed


@pytest.mark.parametrize("fault", CONCURRENCY_FAULTS, ids=[f.name for f in CONCURRENCY_FAULTS])
def test_a_serial_run_passes_under_a_concurrency_fault(
    fault: Fault, clean: dict[tuple[Face, Scheme], dict[str, str]]
) -> None:
    """One request at a time (and the overlap probe's chat request and chat stream, two handlers) every
    check comes out as on the clean mock, its caught_by checks passing: only load can catch the fault."""
    outcomes = run_catalogue((fault.name,), fault.face, fault.owner)
    passing = clean[(fault.face, fault.owner)]
    assert outcomes == passing, {i: (o, passing[i]) for i, o in outcomes.items() if o != passing[i]}
    assert all(outcomes[i] == "pass" for i in fault.caught_by)


@pytest.mark.parametrize("fault", ECDSA_FAULTS, ids=[f.name for f in ECDSA_FAULTS])
def test_an_ecdsa_owner_fault_is_caught_on_the_other_curve_too(
    fault: Fault, clean: dict[tuple[Face, Scheme], dict[str, str]]
) -> None:
    """The ECDSA flaws are the verifier's, not one curve's: the same checks catch them on secp256r1
    as on secp256k1 (its own order, its own off-curve key), and pass there on the clean mock."""
    other = next(scheme for scheme in ECDSA if scheme is not fault.owner)
    outcomes = run_catalogue((fault.name,), fault.face, other)
    missed = [i for i in fault.caught_by if outcomes[i] != "fail"]
    assert not missed, f"{fault.name} ({other.label}): did not fail: {[(i, outcomes[i]) for i in missed]}"
    assert all(clean[(fault.face, other)][i] == "pass" for i in fault.caught_by)


def test_ecdsa_faults_are_proved_with_an_ecdsa_owner() -> None:
    """A fault of the ECDSA path proved with an Ed25519 owner would be proved by nothing: its checks skip."""
    assert ECDSA_FAULTS, "no fault exercises the node face's ECDSA verifier"
    for fault in FAULTS:
        if set(fault.caught_by) & ECDSA_ONLY:
            assert fault.face == "node" and fault.owner in ECDSA, fault.name


def test_fault_kill_rate_is_total() -> None:
    """Runs last in this module: every serial fault above was killed by the checks its table entry names.
    The concurrency faults are left out: a serial run cannot show them (`load` kills them, tests/test_load.py)."""
    assert len(KILLED) == len(SERIAL_FAULTS), "run the whole module to measure the kill rate"
    rate = sum(KILLED.values()) / len(SERIAL_FAULTS)
    excluded = f" ({len(CONCURRENCY_FAULTS)} concurrency faults left out: only load shows them)"
    print(f"\nfault-kill rate: {sum(KILLED.values())}/{len(SERIAL_FAULTS)} = {rate:.0%}{excluded}")
    assert rate == 1.0, [name for name, killed in KILLED.items() if not killed]


@pytest.fixture(autouse=True, scope="module")
def _isolate() -> None:
    KILLED.clear()
