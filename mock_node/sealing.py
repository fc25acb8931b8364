"""Turn a plaintext answer into the wire envelope, honouring the node's behaviour knobs.

The conformant path is exactly :func:`conformance.protocol.seal_response` / ``seal_chunk``; each
knob replaces one step of it with a named wrong variant, still built from the protocol core's
primitives so the mock never re-implements crypto.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol import jsonwire
from conformance.protocol.b64 import b64encode
from conformance.protocol.envelope import Exchange
from conformance.protocol.primitives import NONCE_LEN, AeadKey, blake2b_256, hkdf_sha256
from conformance.protocol.randomness import RandomSource
from conformance.protocol.sui import Scheme, SuiSignature, SuiSigner, to_high_s

from .behaviour import Behaviour, NonceMode

STATIC_NONCE = blake2b_256(b"atoma-conformance mock static nonce")[:NONCE_LEN]
ED25519_L = 2**252 + 27742317777372353535851937790883648493


@dataclass
class Sealer:
    """Seals every message of one exchange (one request's response, or every chunk of its stream)."""

    exchange: Exchange
    signer: SuiSigner
    behaviour: Behaviour
    rng: RandomSource
    shared_secret: bytes
    streaming: bool = False
    _stream_nonce: bytes | None = field(default=None, init=False)
    _key: AeadKey | None = field(default=None, init=False)

    def _nonce(self) -> bytes:
        mode: NonceMode = self.behaviour.stream_nonce if self.streaming else self.behaviour.response_nonce
        if mode == "static":
            return STATIC_NONCE
        if mode == "echo-request":
            return self.exchange.request_nonce
        if mode == "per-stream":
            if self._stream_nonce is None:
                self._stream_nonce = self._fresh()
            return self._stream_nonce
        return self._fresh()

    def _fresh(self) -> bytes:
        # R12.4: a conformant node draws again if the random nonce equals the request nonce.
        while True:
            nonce = self.rng.token_bytes(NONCE_LEN)
            if nonce != self.exchange.request_nonce:
                return nonce

    def _aead(self) -> AeadKey:
        if self._key is None:
            variant = self.behaviour.response_key
            if variant == "request-key":
                self._key = self.exchange.aead
            elif variant == "other-salt":
                other = blake2b_256(b"other salt" + self.exchange.salt)[:16]
                self._key = AeadKey(hkdf_sha256(self.shared_secret, other, b"", 32))
            else:
                self._key = AeadKey(hkdf_sha256(self.shared_secret, self.exchange.salt, b"response", 32))
        return self._key

    def _hash(self, plaintext: bytes, sealed: bytes) -> bytes:
        variant = self.behaviour.response_hash
        if variant == "wrong":
            return blake2b_256(plaintext + b" ")
        if variant == "sha256":
            return hashlib.sha256(plaintext).digest()
        if variant == "reserialized":
            return blake2b_256(json.dumps(json.loads(plaintext)).encode())
        return blake2b_256(plaintext)

    def _signature(self, digest: bytes, sealed: bytes) -> str | None:
        variant = self.behaviour.signature
        if variant == "missing":
            return None
        if variant == "wrong-bytes":
            return self.signer.sign(blake2b_256(sealed)).to_b64()
        if variant == "foreign-signer":
            return SuiSigner(self.signer.scheme, self.rng.token_bytes(32)).sign(digest).to_b64()
        sig = self.signer.sign(digest)
        if variant == "malleated":
            sig = _malleate(sig)
        return sig.to_b64()

    def seal(self, plaintext: bytes, usage: Any | None) -> dict[str, Any]:
        """The envelope members for one message, in the node's key order, as a JSON-ready dict."""
        nonce = self._nonce()
        sealed = self._aead().seal(nonce, plaintext)
        if self.behaviour.tag == "truncated":
            sealed = sealed[:-4]
        digest = self._hash(plaintext, sealed)
        ciphertext = b64encode(sealed)
        if self.behaviour.ciphertext_encoding == "urlsafe":
            ciphertext = ciphertext.replace("+", "-").replace("/", "_")
        nonce_text = b64encode(nonce)
        hash_text = b64encode(digest)
        if self.behaviour.hash_encoding == "unpadded":
            hash_text = hash_text.rstrip("=")  # 32 bytes always encode with exactly one "="
        clear_usage = _clear_usage(usage, self.behaviour.clear_usage)
        members: dict[str, Any] = {
            "nonce": nonce_text,
            "ciphertext": ciphertext,
            "response_hash": hash_text,
            "signature": self._signature(digest, sealed),
        }
        if clear_usage is not None:
            members["usage"] = clear_usage
        return members


def response_body(members: dict[str, Any]) -> bytes:
    """Non-streaming order: nonce, ciphertext, response_hash, signature[, usage]."""
    return jsonwire.dumps(members)


def chunk_body(members: dict[str, Any]) -> bytes:
    """Chunk order: ciphertext, nonce[, usage], signature, response_hash."""
    ordered: dict[str, Any] = {"ciphertext": members["ciphertext"], "nonce": members["nonce"]}
    if "usage" in members:
        ordered["usage"] = members["usage"]
    ordered["signature"] = members["signature"]
    ordered["response_hash"] = members["response_hash"]
    return jsonwire.dumps(ordered)


def _clear_usage(usage: Any | None, mode: str) -> Any | None:
    if usage is None or mode == "absent":
        return None
    if mode == "mismatch":
        forged = dict(usage)
        forged["completion_tokens"] = int(forged.get("completion_tokens") or 0) + 1
        forged["total_tokens"] = int(forged.get("total_tokens") or 0) + 1
        return forged
    return usage


def _malleate(sig: SuiSignature) -> SuiSignature:
    if sig.scheme is Scheme.ED25519:
        s = int.from_bytes(sig.signature[32:], "little") + ED25519_L
        if s >= 2**256:  # pragma: no cover - S < L < 2**253, so S + L always fits
            raise AssertionError("unreachable")
        return SuiSignature(sig.scheme, sig.signature[:32] + s.to_bytes(32, "little"), sig.public_key)
    return to_high_s(sig)
