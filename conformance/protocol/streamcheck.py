"""Client side: the checks on a whole stream that no single chunk can show (R13.12, R13.14).

:func:`~conformance.protocol.envelope.open_chunk` verifies one chunk: its tag, its hash, its
signature. Chunks carry no sequence number, so a node or a man in the middle can repeat, drop or
reorder them without breaking any of that; only state kept across the stream can notice. This is
that state, sans-I/O: feed it each chunk as it arrives and hand its plaintext to the user only
when ``open`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import jsonwire
from .envelope import Exchange, OpenedMessage, open_chunk
from .errors import NonceReuse, SignatureError, StreamOrderError
from .models import StreamChunk


def is_usage_chunk(body: dict[str, Any]) -> bool:
    """R9.11: the chunk that ends a stream has ``"choices": []`` and a usage object."""
    return body.get("choices") == [] and isinstance(body.get("usage"), dict)


def identity_of(body: dict[str, Any]) -> tuple[object, object, object]:
    """R9.12: what every chunk of one stream shares (``id``, ``created``, ``model``)."""
    return body.get("id"), body.get("created"), body.get("model")


@dataclass
class StreamVerifier:
    """Opens the chunks of one stream in order and refuses the first one that breaks R13.12/R13.14.

    ``allow_nonce_reuse`` is the explicit opt-in that spec §13.2 permits for upstream nodes, which
    repeat one nonce across a stream (W1); it is off by default because such a stream's
    confidentiality is not ensured.
    """

    exchange: Exchange
    expected_signer: str | None = None
    require_signature: bool = True
    allow_nonce_reuse: bool = False
    _nonces: set[bytes] = field(default_factory=set)
    _ciphertexts: set[str] = field(default_factory=set)
    _signer: str | None = None
    _identity: tuple[object, object, object] | None = None
    _usage_seen: bool = False

    def open(self, chunk: StreamChunk) -> OpenedMessage:
        opened = open_chunk(
            chunk, self.exchange, expected_signer=self.expected_signer, require_signature=self.require_signature
        )
        if chunk.ciphertext in self._ciphertexts:
            raise StreamOrderError("repeats an earlier chunk of this stream", field="ciphertext")
        self._ciphertexts.add(chunk.ciphertext)
        if opened.nonce in self._nonces and not self.allow_nonce_reuse:
            raise NonceReuse("repeats the nonce of an earlier chunk under the same key", field="nonce")
        self._nonces.add(opened.nonce)
        if opened.signature is not None:
            if self._signer is None:
                self._signer = opened.signature.address
            elif opened.signature.address != self._signer:
                raise SignatureError("was made by a different address than earlier chunks", field="signature")
        if self._usage_seen:
            raise StreamOrderError("arrived after the usage chunk, which ends a stream")
        body = jsonwire.loads_object(opened.plaintext, field="plaintext")
        identity = identity_of(body)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            raise StreamOrderError("changes the id, created or model of the stream", field="plaintext")
        self._usage_seen = is_usage_chunk(body)
        return opened
