"""The embedded mock node as a suite target: started on loopback for one run, with a clock the suite
may advance instead of sleeping (so the lock-expiry probes cost no wall time)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .checks import Target
from .client import NodeFace
from .protocol.primitives import blake2b_256
from .protocol.sui import Scheme, SuiSigner
from .taxonomy import Face

EMBEDDED_KEYS = ("atoma-conformance-embedded-key-1", "atoma-conformance-embedded-key-2")
EMBEDDED_STACK = 7  # the stack the embedded node face registers to the suite's signer


@dataclass
class Embedded:
    target: Target
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    node_face: NodeFace | None = None  # set when the embedded mock serves the node face


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
) -> Iterator[Embedded]:
    """The mock on loopback. On the node face it registers ``signer`` (a fixed test key by default) as
    the owner of ``stack_small_id``, so the suite can stand in for the proxy."""
    from mock_node.config import DEFAULT_MODELS, MockConfig
    from mock_node.testing import SkewClock, running_node

    clock = SkewClock()
    owners: dict[int, str] = {}
    if face == "node":
        signer = signer or SuiSigner(Scheme.ED25519, blake2b_256(b"atoma-conformance embedded proxy signer"))
        owners = {stack_small_id: signer.address}
    config = MockConfig(profile=profile, faults=tuple(faults), clock=clock.now, face=face, stack_owners=owners)
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
        )
        yield Embedded(target, clock.advance, clock.now, hop)
