"""Turn a plaintext answer into the wire envelope, honouring the node's behaviour knobs.

Every message is sealed by the core's :func:`~conformance.protocol.envelope.seal_response` or
``seal_chunk`` itself. A strict node passes no nonce and the default steps; each sealing knob passes
its named wrong variant to the same call, as the ``nonce`` argument or as one field of
:class:`~conformance.protocol.envelope.SealSteps`. Nothing here derives a key or hashes, and base64 is
only re-laid (a finished member re-encoded the wrong way): this module only says *which* step is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.protocol import (
    Exchange,
    ProtocolError,
    RandomSource,
    Rekey,
    Scheme,
    SealedParts,
    SealSteps,
    SuiSignature,
    SuiSigner,
    Usage,
    b64encode,
    draw_response_nonce,
    jsonwire,
    parse_signature,
    seal_chunk,
    seal_response,
    to_high_s,
)

from .behaviour import Behaviour, NonceMode

# BLAKE2b-256(b"atoma-conformance mock static nonce")[:12], written out (tests/test_sealing_core.py checks it).
STATIC_NONCE = bytes.fromhex("f9d4af12bfa78529d6313938")
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
    _steps: SealSteps = field(init=False)

    def __post_init__(self) -> None:
        self._steps = seal_steps(self.behaviour, self.shared_secret, self.rng)

    def _nonce(self) -> bytes | None:
        """The nonce to pass to the core, or None for the core's own fresh draw (the conformant step)."""
        mode: NonceMode = self.behaviour.stream_nonce if self.streaming else self.behaviour.response_nonce
        if mode == "static":
            return STATIC_NONCE
        if mode == "echo-request":
            return self.exchange.request_nonce
        if mode == "per-stream":
            if self._stream_nonce is None:
                self._stream_nonce = draw_response_nonce(self.exchange, self.rng)
            return self._stream_nonce
        return None

    def seal(self, plaintext: bytes, usage: Any | None, *, drawn: bytes | None = None) -> dict[str, Any]:
        """The envelope members for one message, in the node's key order, as a JSON-ready dict. ``drawn``
        is the nonce a racy generator handed out for it (handler-nonce-race), used where the node would
        draw a fresh one; a nonce fault's own nonce wins over it."""
        clear = _clear_usage(usage, self.behaviour.clear_usage)
        model = _usage_model(clear)
        nonce = self._nonce()
        if nonce is None:
            nonce = drawn
        members: dict[str, Any]
        if self.streaming:
            chunk = seal_chunk(
                plaintext, self.exchange, self.signer, usage=model, nonce=nonce, rng=self.rng, steps=self._steps
            )
            members = chunk.to_json()
        else:
            response = seal_response(
                plaintext, self.exchange, self.signer, usage=model, nonce=nonce, rng=self.rng, steps=self._steps
            )
            members = response.to_json()
        if clear is not None and model is None:
            members["usage"] = clear  # a usage the core's model cannot hold is relayed as the backend sent it
        return members


def seal_steps(behaviour: Behaviour, shared_secret: bytes, rng: RandomSource) -> SealSteps:
    """The core's sealing steps with the behaviour's wrong variants in place (all defaults when strict).

    ``shared_secret`` is only read by the wrong-key variants, and ``rng`` only by ``foreign-signer``
    (a fresh key per message, drawn after the message's nonce).
    """

    def foreign_sign(signer: SuiSigner, data: bytes) -> SuiSignature:
        return SuiSigner(signer.scheme, rng.token_bytes(32)).sign(data)

    rekeys = {
        "other-salt": Rekey(shared_secret, salt_label=b"other salt"),
        "hkdf-info": Rekey(shared_secret, info=b"response"),
    }
    hashed = {"wrong": _other_bytes, "reserialized": _reserialized}
    signs = {"foreign-signer": foreign_sign, "malleated": _malleated_sign}
    return SealSteps(
        key=rekeys.get(behaviour.response_key),
        ciphertext=_truncated_tag if behaviour.tag == "truncated" else None,
        hashed=hashed.get(behaviour.response_hash),
        hash_algorithm="sha-256" if behaviour.response_hash == "sha256" else "blake2b-256",
        signed=_the_ciphertext if behaviour.signature == "wrong-bytes" else None,
        sign=signs.get(behaviour.signature),
        members=_member_changes(behaviour),
    )


def response_body(members: dict[str, Any], shape: frozenset[str] = frozenset()) -> bytes:
    """Non-streaming order: nonce, ciphertext, response_hash, signature[, usage]. ``shape`` holds the
    envelope faults: ``sorted`` (members in alphabetical order, as a sorted JSON map writes them) and
    ``pretty`` (indented JSON, as a pretty-printer writes it)."""
    if "sorted" in shape:
        members = dict(sorted(members.items()))
    if "pretty" in shape:
        return json.dumps(members, indent=2).encode()
    return jsonwire.dumps(members)


def chunk_body(members: dict[str, Any], shape: frozenset[str] = frozenset()) -> bytes:
    """Chunk order: ciphertext, nonce[, usage], signature, response_hash (``sorted``: alphabetical)."""
    ordered: dict[str, Any] = {"ciphertext": members["ciphertext"], "nonce": members["nonce"]}
    if "usage" in members:
        ordered["usage"] = members["usage"]
    ordered["signature"] = members["signature"]
    ordered["response_hash"] = members["response_hash"]
    if "sorted" in shape:
        ordered = dict(sorted(ordered.items()))
    return jsonwire.dumps(ordered)


# --- the wrong variants of single steps --------------------------------------------------------------


def _truncated_tag(sealed: bytes) -> bytes:
    return sealed[:-4]  # the 16-byte GCM tag cut to 12


def _other_bytes(plaintext: bytes) -> bytes:
    return plaintext + b" "


def _reserialized(plaintext: bytes) -> bytes:
    return json.dumps(json.loads(plaintext)).encode()  # Python's separators add spaces


def _the_ciphertext(plaintext: bytes, sealed: bytes) -> bytes:
    return sealed


def _malleated_sign(signer: SuiSigner, data: bytes) -> SuiSignature:
    return _malleate(signer.sign(data))


_URLSAFE = str.maketrans("+/", "-_")
MIME_LINE = 76  # RFC 2045: a MIME base64 encoder breaks its output into lines of at most 76 characters


def _mime(text: str) -> str:
    """``text`` as a MIME base64 encoder writes it (Python's ``base64.encodebytes``): 76-character lines,
    each ended by a newline."""
    return "".join(text[i : i + MIME_LINE] + "\n" for i in range(0, len(text), MIME_LINE))


def _bare(signature: str) -> str:
    """The raw 64-byte signature alone, without the Sui flag byte before it and the public key after it."""
    return b64encode(parse_signature(signature).signature)


def _member_changes(behaviour: Behaviour) -> Callable[[SealedParts], SealedParts] | None:
    """The encoding knobs and a missing signature, as one final change of the core's base64 members."""
    urlsafe = behaviour.ciphertext_encoding == "urlsafe"
    unpadded = behaviour.hash_encoding == "unpadded"
    missing = behaviour.signature == "missing"
    mime_nonce = behaviour.nonce_encoding == "mime"
    form = behaviour.signature_format
    if not (urlsafe or unpadded or missing or mime_nonce or form != "sui"):
        return None

    def change(parts: SealedParts) -> SealedParts:
        hash_text, signature = parts.response_hash, parts.signature
        if signature is not None and form == "mime-wrapped":
            signature = _mime(signature)
        elif signature is not None and form == "bare":
            signature = _bare(signature)
        return replace(
            parts,
            nonce=_mime(parts.nonce) if mime_nonce else parts.nonce,
            ciphertext=parts.ciphertext.translate(_URLSAFE) if urlsafe else parts.ciphertext,
            # 32 bytes always encode with exactly one "="
            response_hash=hash_text.rstrip("=") if unpadded and hash_text is not None else hash_text,
            signature=None if missing else signature,
        )

    return change


def _clear_usage(usage: Any | None, mode: str) -> Any | None:
    if usage is None or mode == "absent":
        return None
    if mode == "mismatch":
        forged = dict(usage)
        forged["completion_tokens"] = int(forged.get("completion_tokens") or 0) + 1
        forged["total_tokens"] = int(forged.get("total_tokens") or 0) + 1
        return forged
    return usage


def _usage_model(usage: Any | None) -> Usage | None:
    """The clear usage as the core's model, which keeps the exact JSON object; None if it cannot hold it."""
    if not isinstance(usage, dict):
        return None
    try:
        return Usage.from_json(usage)
    except ProtocolError:
        return None


def _malleate(sig: SuiSignature) -> SuiSignature:
    if sig.scheme is Scheme.ED25519:
        s = int.from_bytes(sig.signature[32:], "little") + ED25519_L
        if s >= 2**256:  # pragma: no cover - S < L < 2**253, so S + L always fits
            raise AssertionError("unreachable")
        return SuiSignature(sig.scheme, sig.signature[:32] + s.to_bytes(32, "little"), sig.public_key)
    return to_high_s(sig)
