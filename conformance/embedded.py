"""The embedded mock node as a suite target: started on loopback for one run, with a clock the suite
may advance instead of sleeping (so the lock-expiry probes cost no wall time)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .checks import Target
from .client import NodeFace
from .keybinding import KeySource
from .protocol import DeviceTestCa
from .protocol.attestation import ReferenceManifest, parse_rim
from .protocol.attestation.testca import DEFAULT_SEED as TEST_CA_SEED
from .protocol.primitives import blake2b_256
from .protocol.sui import Scheme, SuiSigner
from .taxonomy import Face

EMBEDDED_KEYS = ("atoma-conformance-embedded-key-1", "atoma-conformance-embedded-key-2")
EMBEDDED_STACK = 7
# KEY-010 judged in every embedded run: the mock's latest commitment is dated 2025-02-01, so ten years (the
# most --max-key-age takes) passes it until 2035, and the commitment-old fault (1970) fails it.
EMBEDDED_MAX_KEY_AGE_S = 3660 * 86400.0  # the stack the embedded node face registers to the suite's signer


@dataclass
class Embedded:
    target: Target
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    node_face: NodeFace | None = None  # set when the embedded mock serves the node face


def embedded_signer(scheme: Scheme) -> SuiSigner:
    """The fixed stack owner of the embedded node face. Ed25519's seed is the one it always was, so
    its address is unchanged; the ECDSA keys hash the scheme in (a hash is out of a curve's scalar range
    with probability about 2^-128 on secp256k1 and 2^-32 on secp256r1; these two are in range)."""
    if scheme is Scheme.ED25519:
        return SuiSigner(scheme, blake2b_256(b"atoma-conformance embedded proxy signer"))
    return SuiSigner(scheme, blake2b_256(b"atoma-conformance embedded proxy signer:" + scheme.label.encode()))


def fault_owner_scheme(faults: Sequence[str]) -> Scheme:
    """The stack owner's scheme the mock's ``faults`` are proved with (``Fault.owner``): a flaw of the
    node's ECDSA verifier is invisible to an Ed25519 owner, so ``run --face node --mock-fault`` of one
    signs with the scheme that shows it (the first, if faults disagree), else Ed25519."""
    from mock_node.faults import FAULTS

    schemes = sorted({FAULTS[name].owner for name in faults if name in FAULTS} - {Scheme.ED25519})
    return schemes[0] if schemes else Scheme.ED25519


@contextlib.contextmanager
def embedded_target(
    profile: str = "strict",
    faults: Sequence[str] = (),
    *,
    chat_model: str | None = None,
    node_address: str | None = None,
    face: Face = "proxy",
    signer: SuiSigner | None = None,
    stack_small_id: int = EMBEDDED_STACK,
    signer_scheme: Scheme | None = None,
    known_keys: bool = False,
    max_key_age: float | None = None,
) -> Iterator[Embedded]:
    """The mock on loopback. On the node face it registers ``signer`` (by default a fixed test key of
    ``signer_scheme``; without one, Ed25519 or the scheme the named ``faults`` need to show) as the
    owner of ``stack_small_id``, so the suite can stand in for the proxy. With ``known_keys`` the
    proxy face knows the target's two API keys and refuses any other token, as a real proxy does (a
    run's checks of R2.2 and R10.7 need it); without, it lets any token in, which the fuzz campaign
    relies on to give each session stacks of its own."""
    from mock_node.config import DEFAULT_MODELS, MockConfig
    from mock_node.testing import SkewClock, running_node

    clock = SkewClock()
    owners: dict[int, str] = {}
    if face == "node":
        signer = signer or embedded_signer(signer_scheme or fault_owner_scheme(faults))
        owners = {stack_small_id: signer.address}
    keys = EMBEDDED_KEYS if face == "proxy" and known_keys else ()
    config = MockConfig(
        profile=profile, faults=tuple(faults), clock=clock.now, face=face, stack_owners=owners, api_keys=keys
    )
    hop = NodeFace(signer, stack_small_id, config.node_public_key) if signer is not None and face == "node" else None
    with running_node(config) as url:
        target = Target(
            url,
            EMBEDDED_KEYS[0] if face == "proxy" else None,
            chat_model or DEFAULT_MODELS[0],
            DEFAULT_MODELS[1],
            DEFAULT_MODELS[2],
            node_address or config.signer_address,
            EMBEDDED_KEYS[1] if face == "proxy" else None,
            embedded=True,
            profile=config.profile,
            face=face,
            key_source=embedded_key_source(url, config.node_small_id, max_key_age or EMBEDDED_MAX_KEY_AGE_S),
        )
        yield Embedded(target, clock.advance, clock.now, hop)


def embedded_key_source(base_url: str, node_small_id: int, max_key_age: float | None = None) -> KeySource:
    """The embedded mock's own chain faces (``POST /sui``, the attestation service) and its test CA."""
    from mock_node.chain import MOCK_PACKAGE_ID

    base = base_url.rstrip("/")
    return KeySource(
        f"{base}/sui",
        MOCK_PACKAGE_ID,
        base,
        True,
        max_key_age,
        node_small_id,
        (_mock_rim(),),
        "the mock's own test RIM",
    )


@functools.lru_cache(maxsize=1)
def _mock_rim() -> ReferenceManifest:
    """The test device's golden measurements, as the mock's evidence reports them (a test CA costs ~10 ms)."""
    return parse_rim(DeviceTestCa.create(TEST_CA_SEED).reference_manifest(), field="the mock's RIM")
