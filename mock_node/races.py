"""The shared state of the concurrency faults: one slot per handler, read and written across an await.

A handler is an endpoint in one mode, streaming or not (eight in all), as a node whose handlers each keep
their own module-level state would have them. Every slot is written and read back by the same request
with an await in between (the model's inference, an async entropy source), so a client that sends one
request at a time always finds in a slot what its own request put there and nothing shows. Two requests
to the same handler in flight at once meet in the slot; requests to two different handlers never do,
which is why the suite's own overlap probe (a chat request and a chat stream at once, AEAD-011) passes
and only ``atoma-conformance load`` catches these faults.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from conformance.protocol import NONCE_LEN, Exchange, RandomSource

INFERENCE_S = 0.05  # handler-key-race: the model's time between writing the key slot and reading it back
ENTROPY_S = 0.01  # handler-nonce-race: the async entropy source's time to refill a handler's nonce slot

Handler = tuple[str, bool]  # (endpoint, streaming)


@dataclass
class HandlerSlots:
    keys: dict[Handler, tuple[Exchange, bytes]] = field(default_factory=dict)
    nonces: dict[Handler, bytes] = field(default_factory=dict)

    async def key_after_inference(self, handler: Handler, exchange: Exchange, shared: bytes) -> tuple[Exchange, bytes]:
        """handler-key-race: the handler stores "the current exchange" when it derives K and seals with
        whatever its slot holds once the model has answered: the last request to write it."""
        self.keys[handler] = (exchange, shared)
        await asyncio.sleep(INFERENCE_S)
        return self.keys[handler]

    async def next_nonce(self, handler: Handler, rng: RandomSource) -> bytes:
        """handler-nonce-race: a non-atomic generator. It hands out the handler's pre-drawn nonce and
        refills the slot from an async entropy source (``nonce = slot; slot = await entropy()``), so a
        request that takes the slot while another's refill is pending gets the same nonce. No nonce is
        handed out twice to one request: a value leaves the slot for good once its refill lands, and a
        message is sealed only after its own refill."""
        if handler not in self.nonces:
            self.nonces[handler] = rng.token_bytes(NONCE_LEN)
        nonce = self.nonces[handler]
        await asyncio.sleep(ENTROPY_S)
        self.nonces[handler] = rng.token_bytes(NONCE_LEN)
        return nonce
