"""The confidential envelope in both directions: seal and open, for client and node.

Both sides end up holding an :class:`Exchange`: the one AES-256 key that the request, its response
and every stream chunk are encrypted under, plus the public values that identify it. Holding it as
an object (instead of re-deriving per message) is both faster and the natural unit of the nonce
audit, because nonce uniqueness only means something *per key*.

Randomness is drawn from the injected :class:`~conformance.protocol.randomness.RandomSource` in a
documented order, so a seed or a list of pinned values reproduces every byte:

- :func:`seal_request` draws the client private key (32), the salt (16), then the nonce (12);
- :func:`seal_response` and :func:`seal_chunk` draw the response nonce (12) unless one is given, and
  draw again (12 more) in the ~2**-96 case that it equals the request nonce (R12.4).

Node-side sealing runs in fixed steps (nonce, key, AEAD, hash, signature, members), and each step can
be replaced through :class:`SealSteps`. A conformant node never does; the mock node does, so that each
of its sealing faults is this module's sealing with one step altered rather than a rebuild of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from hmac import compare_digest
from typing import Literal

from . import jsonwire
from .b64 import b64decode, b64decode_fixed, b64encode
from .errors import (
    HashMismatch,
    KeyMismatch,
    LengthError,
    LowOrderPoint,
    MissingField,
    NonceReuse,
    UsageMismatch,
    ZeroSharedSecret,
)
from .models import ConfidentialComputeRequest, ConfidentialComputeResponse, DecodedRequest, StreamChunk, Usage
from .primitives import (
    HASH_LEN,
    KEY_LEN,
    NONCE_LEN,
    SALT_LEN,
    TAG_LEN,
    X25519_KEY_LEN,
    AeadKey,
    blake2b_256,
    canonical_public_key,
    derive_key,
    hkdf_sha256,
    x25519_agree,
    x25519_public_key,
    x25519_shared_secret,
)
from .randomness import SYSTEM_RANDOM, RandomSource
from .sui import SuiSignature, SuiSigner, verify_b64


@dataclass(frozen=True, repr=False)
class Exchange:
    """The key material of one request/response exchange. ``repr`` never shows the key.

    ``key_id`` is computed on first use, not at construction: a client that never reports its
    nonces (the common case) should not pay a hash per request for a name it never reads.
    """

    aead: AeadKey
    salt: bytes
    client_public_key: bytes
    node_public_key: bytes
    request_nonce: bytes

    @cached_property
    def key_id(self) -> str:
        """See :func:`key_id`."""
        return key_id(self.client_public_key, self.node_public_key, self.salt)

    def __repr__(self) -> str:
        return f"Exchange(key_id={self.key_id})"


def key_id(client_public_key: bytes, node_public_key: bytes, salt: bytes) -> str:
    """A public, stable name for the key K derived from these inputs (hex of a BLAKE2b-256 prefix).

    K is a function of (client key, node key, salt), so this names K without revealing it, and lets
    reports group nonces per key. Keys are canonicalised first: a client key with bit 255 set derives
    the same K, so it must get the same name (or a replay cache keyed on it is bypassed).
    """
    canonical = canonical_public_key(client_public_key) + canonical_public_key(node_public_key)
    return blake2b_256(b"atoma-conformance/key-id\x00" + canonical + salt)[:16].hex()


def _exchange(key: bytes, salt: bytes, client_pk: bytes, node_pk: bytes, request_nonce: bytes) -> Exchange:
    return Exchange(AeadKey(key), salt, client_pk, node_pk, request_nonce)


def client_exchange(client_private_key: bytes, node_public_key: bytes, salt: bytes, request_nonce: bytes) -> Exchange:
    """Rebuild a client's exchange from its secrets (to read a response captured earlier, or a vector)."""
    for value, length, name in ((salt, SALT_LEN, "salt"), (request_nonce, NONCE_LEN, "request_nonce")):
        if len(value) != length:
            raise LengthError(f"is {len(value)} bytes, expected {length}", field=name)
    x25519_public_key(client_private_key)  # a wrong-length private key is the caller's, named as such
    client_pk, shared = _agree_with_node(client_private_key, node_public_key)
    return _exchange(derive_key(shared, salt), salt, client_pk, node_public_key, request_nonce)


def _agree_with_node(client_private_key: bytes, node_public_key: bytes) -> tuple[bytes, bytes]:
    """Client-side X25519, with errors attributed to the node key the caller passed (R4.3).

    The private key is 32 bytes by construction (drawn by ``seal_request``, or checked first by
    ``client_exchange``), so every error left here is about the node's key.
    """
    try:
        return x25519_agree(client_private_key, node_public_key)
    except (LowOrderPoint, ZeroSharedSecret, LengthError) as exc:
        raise exc.with_field("node_public_key") from None


# --- request ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedRequest:
    """What the client sends, and what it must keep to read the answer."""

    request: ConfidentialComputeRequest
    exchange: Exchange
    plaintext_hash: bytes


def seal_request(
    plaintext: bytes,
    *,
    node_public_key: bytes,
    model_name: str,
    stack_small_id: int,
    stream: bool | None = None,
    num_compute_units: int | None = None,
    rng: RandomSource = SYSTEM_RANDOM,
) -> SealedRequest:
    """Client side: encrypt ``plaintext`` (the exact bytes to hash) for the node's X25519 key."""
    if len(node_public_key) != X25519_KEY_LEN:
        raise LengthError(f"is {len(node_public_key)} bytes, expected {X25519_KEY_LEN}", field="node_public_key")
    client_sk = rng.token_bytes(X25519_KEY_LEN)
    salt = rng.token_bytes(SALT_LEN)
    nonce = rng.token_bytes(NONCE_LEN)
    client_pk, shared = _agree_with_node(client_sk, node_public_key)
    exchange = _exchange(derive_key(shared, salt), salt, client_pk, node_public_key, nonce)
    digest = blake2b_256(plaintext)
    request = ConfidentialComputeRequest(
        ciphertext=b64encode(exchange.aead.seal(nonce, plaintext)),
        client_dh_public_key=b64encode(client_pk),
        model_name=model_name,
        node_dh_public_key=b64encode(node_public_key),
        nonce=b64encode(nonce),
        plaintext_body_hash=b64encode(digest),
        salt=b64encode(salt),
        stack_small_id=stack_small_id,
        num_compute_units=num_compute_units,
        stream=stream,
    )
    return SealedRequest(request, exchange, digest)


def node_exchange(
    decoded: DecodedRequest, node_private_key: bytes, *, allow_low_order: bool = False
) -> tuple[Exchange, bytes]:
    """Node side: check the addressed key, agree and derive. Returns the exchange and the shared secret.

    Split from :func:`open_request` so that a node can derive the key before (or without) a successful
    decryption; the mock node needs that to reproduce faulty nodes. The shared secret is returned for
    the same reason and must not outlive the exchange.
    """
    node_pk = x25519_public_key(node_private_key)
    if not compare_digest(decoded.node_dh_public_key, node_pk):
        raise KeyMismatch("is not this node's current X25519 public key", field="node_dh_public_key")
    try:
        shared = x25519_shared_secret(node_private_key, decoded.client_dh_public_key, allow_low_order=allow_low_order)
    except (LowOrderPoint, ZeroSharedSecret) as exc:
        raise exc.with_field("client_dh_public_key") from None
    exchange = _exchange(
        derive_key(shared, decoded.salt), decoded.salt, decoded.client_dh_public_key, node_pk, decoded.nonce
    )
    return exchange, shared


@dataclass(frozen=True, slots=True)
class OpenedRequest:
    """What the node learns from a request it accepted."""

    plaintext: bytes
    exchange: Exchange
    decoded: DecodedRequest


def open_request(
    request: ConfidentialComputeRequest,
    node_private_key: bytes,
    *,
    allow_low_order: bool = False,
    check_hash: bool = True,
) -> OpenedRequest:
    """Node side: decode, agree, derive, decrypt, and check ``plaintext_body_hash`` over raw bytes.

    The steps run in the spec's order, and the first failure raises. ``allow_low_order`` and
    ``check_hash`` exist only so the mock node's upstream-compat profile can reproduce the real
    node; a conformant node leaves both at their defaults.
    """
    decoded = request.decode()
    exchange, _ = node_exchange(decoded, node_private_key, allow_low_order=allow_low_order)
    plaintext = exchange.aead.open(decoded.nonce, decoded.ciphertext)
    if check_hash and not compare_digest(blake2b_256(plaintext), decoded.plaintext_body_hash):
        raise HashMismatch("does not equal BLAKE2b-256 of the decrypted plaintext bytes", field="plaintext_body_hash")
    return OpenedRequest(plaintext, exchange, decoded)


# --- responses and chunks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedParts:
    """The base64 fields a node puts on a response or chunk, before they are arranged in a model.

    ``response_hash`` and ``signature`` are optional only because a :attr:`SealSteps.members` step
    may drop them (the models allow null); the conformant steps always set both.
    """

    nonce: str
    ciphertext: str
    response_hash: str | None
    signature: str | None


HashAlgorithm = Literal["blake2b-256", "sha-256"]

_DIGESTS: dict[HashAlgorithm, Callable[[bytes], bytes]] = {
    "blake2b-256": blake2b_256,
    "sha-256": lambda data: hashlib.sha256(data).digest(),
}


@dataclass(frozen=True, slots=True, repr=False)
class Rekey:
    """A key step that encrypts under other HKDF inputs than the exchange's (a wrong-key node).

    The key is HKDF-SHA256 of ``shared_secret`` with ``info``, and with the request salt as HKDF salt,
    or, when ``salt_label`` is given, BLAKE2b-256(``salt_label`` || request salt)[:16]: a salt that
    differs from the request's without being chosen by the caller. ``repr`` never shows the secret.
    """

    shared_secret: bytes
    salt_label: bytes | None = None
    info: bytes = b""

    def derive(self, request_salt: bytes) -> AeadKey:
        """The AES-256-GCM key these inputs derive for an exchange whose request salt is ``request_salt``."""
        salt = request_salt if self.salt_label is None else blake2b_256(self.salt_label + request_salt)[:SALT_LEN]
        return AeadKey(hkdf_sha256(self.shared_secret, salt, self.info, KEY_LEN))

    def __repr__(self) -> str:
        return f"Rekey(salt_label={self.salt_label!r}, info={self.info!r})"


@dataclass(frozen=True, slots=True)
class SealSteps:
    """Replacements for single steps of :func:`seal_response` and :func:`seal_chunk`.

    Every field left at its default is the conformant step, so ``SealSteps()`` seals exactly as a
    conformant node does. The nonce step is the functions' own ``nonce`` argument. The other steps,
    in the order they run:

    - ``key``: encrypt under :meth:`Rekey.derive` instead of the exchange's key;
    - ``ciphertext``: maps the AEAD output (ciphertext || tag) to the bytes that are sent;
    - ``hashed``: maps the plaintext to the bytes ``response_hash`` is computed over;
    - ``hash_algorithm``: the hash ``response_hash`` is computed with;
    - ``signed``: given (plaintext, the ciphertext bytes sent), the bytes whose BLAKE2b-256 is signed
      instead of the ``response_hash`` digest;
    - ``sign``: given (signer, the 32 bytes to sign), the signature, instead of ``signer.sign``;
    - ``members``: a final transform of the base64 members.
    """

    key: Rekey | None = None
    ciphertext: Callable[[bytes], bytes] | None = None
    hashed: Callable[[bytes], bytes] | None = None
    hash_algorithm: HashAlgorithm = "blake2b-256"
    signed: Callable[[bytes, bytes], bytes] | None = None
    sign: Callable[[SuiSigner, bytes], SuiSignature] | None = None
    members: Callable[[SealedParts], SealedParts] | None = None


_CONFORMANT = SealSteps()


def draw_response_nonce(exchange: Exchange, rng: RandomSource) -> bytes:
    """A fresh 12-byte response nonce from ``rng``, drawn again while it equals the request nonce (R12.4)."""
    nonce = rng.token_bytes(NONCE_LEN)
    while nonce == exchange.request_nonce:
        nonce = rng.token_bytes(NONCE_LEN)
    return nonce


def _seal_parts(
    plaintext: bytes,
    exchange: Exchange,
    signer: SuiSigner,
    nonce: bytes | None,
    rng: RandomSource,
    steps: SealSteps,
) -> SealedParts:
    nonce = draw_response_nonce(exchange, rng) if nonce is None else nonce
    aead = exchange.aead if steps.key is None else steps.key.derive(exchange.salt)
    sealed = aead.seal(nonce, plaintext)
    if steps.ciphertext is not None:
        sealed = steps.ciphertext(sealed)
    digest = _DIGESTS[steps.hash_algorithm](plaintext if steps.hashed is None else steps.hashed(plaintext))
    signed = digest if steps.signed is None else blake2b_256(steps.signed(plaintext, sealed))
    signature = signer.sign(signed) if steps.sign is None else steps.sign(signer, signed)
    parts = SealedParts(
        nonce=b64encode(nonce),
        ciphertext=b64encode(sealed),
        response_hash=b64encode(digest),
        signature=signature.to_b64(),
    )
    return parts if steps.members is None else steps.members(parts)


def seal_response(
    plaintext: bytes,
    exchange: Exchange,
    signer: SuiSigner,
    *,
    usage: Usage | None = None,
    nonce: bytes | None = None,
    rng: RandomSource = SYSTEM_RANDOM,
    steps: SealSteps = _CONFORMANT,
) -> ConfidentialComputeResponse:
    """Node side: encrypt a non-streaming response under the exchange key with a fresh nonce.

    ``steps`` replaces single steps of the sealing (see :class:`SealSteps`); a conformant node leaves it.
    """
    p = _seal_parts(plaintext, exchange, signer, nonce, rng, steps)
    return ConfidentialComputeResponse(p.nonce, p.ciphertext, p.response_hash, p.signature, usage)


def seal_chunk(
    plaintext: bytes,
    exchange: Exchange,
    signer: SuiSigner,
    *,
    usage: Usage | None = None,
    nonce: bytes | None = None,
    rng: RandomSource = SYSTEM_RANDOM,
    steps: SealSteps = _CONFORMANT,
) -> StreamChunk:
    """Node side: encrypt one stream chunk. A conformant node passes ``nonce=None`` (fresh per chunk).

    ``steps`` replaces single steps of the sealing (see :class:`SealSteps`); a conformant node leaves it.
    """
    p = _seal_parts(plaintext, exchange, signer, nonce, rng, steps)
    return StreamChunk(p.ciphertext, p.nonce, p.signature, p.response_hash, usage)


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A verified response or chunk: the plaintext, its hash, the nonce and the signature."""

    plaintext: bytes
    plaintext_hash: bytes
    nonce: bytes
    signature: SuiSignature | None


def _open_message(
    message: ConfidentialComputeResponse | StreamChunk,
    exchange: Exchange,
    *,
    expected_signer: str | None,
    require_hash: bool,
    require_signature: bool,
    reject_request_nonce: bool,
    check_usage: bool,
) -> OpenedMessage:
    nonce = b64decode_fixed(message.nonce, NONCE_LEN, field="nonce")
    if reject_request_nonce and compare_digest(nonce, exchange.request_nonce):
        raise NonceReuse("equals the request nonce under the same key", field="nonce")
    sealed = b64decode(message.ciphertext, field="ciphertext")
    if len(sealed) < TAG_LEN:
        raise LengthError(
            f"decodes to {len(sealed)} bytes, shorter than the {TAG_LEN}-byte GCM tag", field="ciphertext"
        )
    plaintext = exchange.aead.open(nonce, sealed)
    digest = blake2b_256(plaintext)
    if message.response_hash is None:
        if require_hash:
            raise MissingField(
                "is required: without it the plaintext cannot be bound to the signature", field="response_hash"
            )
    else:
        claimed = b64decode_fixed(message.response_hash, HASH_LEN, field="response_hash")
        if not compare_digest(claimed, digest):
            raise HashMismatch("does not equal BLAKE2b-256 of the decrypted plaintext bytes", field="response_hash")
    signature = None
    if message.signature is None:
        if require_signature:
            raise MissingField("is required on every response and chunk", field="signature")
    else:
        signature = verify_b64(message.signature, digest, expected_address=expected_signer)
    if check_usage and message.usage is not None:
        inner = jsonwire.loads_object(plaintext, field="plaintext").get("usage")
        if not jsonwire.strict_equal(inner, message.usage.to_json()):
            raise UsageMismatch("in clear differs from the usage inside the encrypted plaintext", field="usage")
    return OpenedMessage(plaintext, digest, nonce, signature)


def open_response(
    response: ConfidentialComputeResponse,
    exchange: Exchange,
    *,
    expected_signer: str | None = None,
    require_hash: bool = True,
    require_signature: bool = True,
    reject_request_nonce: bool = True,
    check_usage: bool = True,
) -> OpenedMessage:
    """Client side: decrypt and verify a non-streaming response.

    Verifies, in order: the nonce differs from the request nonce, the AEAD tag, ``response_hash``
    against the decrypted bytes, the Sui signature over that hash (and its signer, when known), and
    that the clear ``usage`` equals the encrypted one.
    """
    return _open_message(
        response,
        exchange,
        expected_signer=expected_signer,
        require_hash=require_hash,
        require_signature=require_signature,
        reject_request_nonce=reject_request_nonce,
        check_usage=check_usage,
    )


def open_chunk(
    chunk: StreamChunk,
    exchange: Exchange,
    *,
    expected_signer: str | None = None,
    require_hash: bool = True,
    require_signature: bool = True,
    reject_request_nonce: bool = True,
    check_usage: bool = True,
) -> OpenedMessage:
    """Client side: decrypt and verify one stream chunk (the same checks as :func:`open_response`).

    Nonce reuse *across* chunks is a property of the whole stream, so it is audited by the caller,
    which sees every chunk; see the suite's nonce audit.
    """
    return _open_message(
        chunk,
        exchange,
        expected_signer=expected_signer,
        require_hash=require_hash,
        require_signature=require_signature,
        reject_request_nonce=reject_request_nonce,
        check_usage=check_usage,
    )
