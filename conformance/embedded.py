"""The embedded mock node as a suite target: started on loopback for one run, with a clock the suite
may advance instead of sleeping (so the lock-expiry probes cost no wall time)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .checks import Target

EMBEDDED_KEYS = ("atoma-conformance-embedded-key-1", "atoma-conformance-embedded-key-2")


@dataclass
class Embedded:
    target: Target
    sleep: Callable[[float], None]
    clock: Callable[[], float]


@contextlib.contextmanager
def embedded_target(
    profile: str = "strict",
    faults: Sequence[str] = (),
    *,
    chat_model: str | None = None,
    node_address: str | None = None,
) -> Iterator[Embedded]:
    from mock_node.config import DEFAULT_MODELS, MockConfig
    from mock_node.testing import SkewClock, running_node

    clock = SkewClock()
    config = MockConfig(profile=profile, faults=tuple(faults), clock=clock.now)
    with running_node(config) as url:
        target = Target(
            url,
            EMBEDDED_KEYS[0],
            chat_model or DEFAULT_MODELS[0],
            DEFAULT_MODELS[1],
            DEFAULT_MODELS[2],
            node_address or config.signer_address,
            EMBEDDED_KEYS[1],
            embedded=True,
            profile=config.profile,
        )
        yield Embedded(target, clock.advance, clock.now)
