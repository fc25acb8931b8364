"""The mock node's ASGI app: the proxy face of an Atoma node (lock, confidential endpoints, models).

Every request runs the same pipeline, in the order docs/spec.md gives, and each refusal is raised as
a :class:`Refusal` that carries the status and code for the active profile. Crypto happens only in
:mod:`conformance.protocol`; this module decides *what* to do, never *how* to encrypt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance.protocol import (
    DONE,
    HASH_LEN,
    KEEPALIVE,
    AeadError,
    ConfidentialComputeRequest,
    DecodedRequest,
    ErrorBody,
    Exchange,
    HashMismatch,
    KeyMismatch,
    LengthError,
    LockRequest,
    LockResponse,
    LowOrderPoint,
    ProtocolError,
    ZeroSharedSecret,
    b64decode,
    b64encode,
    blake2b_256,
    encode_event,
    jsonwire,
    node_exchange,
    parse_signature,
)
from conformance.protocol import verify as verify_signature

from . import fake_model, misshape, xsig
from .backend import Backend, BackendError
from .behaviour import Behaviour
from .chain import MockChain
from .config import IMAGE_DEFAULT_UNITS, LOCK_DEFAULT_TIMEOUT_S, LOCK_DEFAULT_TOKENS, MockConfig
from .faults import apply_all, resolve
from .locks import LockRefused, LockTable, token_id
from .races import HandlerSlots
from .replays import ReplayMemory
from .sealing import Sealer, chunk_body, response_body

# Proxy-face refusals as the node face reports them (docs/spec.md Table 10.1).
NODE_FACE_CODES: dict[tuple[int, str], tuple[int, str]] = {
    (400, "REQUEST_ERROR"): (400, "INVALID_BODY"),
    (404, "NOT_FOUND"): (400, "INVALID_BODY"),  # a model the node does not serve
    (425, "UNAVAILABLE_STACK"): (425, "UNAVAILABLE_STACK_ERROR"),
}

ENDPOINTS: dict[str, fake_model.Endpoint] = {
    "/v1/confidential/chat/completions": "chat",
    "/v1/confidential/completions": "completions",
    "/v1/confidential/embeddings": "embeddings",
    "/v1/confidential/images/generations": "images",
}
LOCK_BODY_LIMIT = 64 * 1024
SUI_BODY_LIMIT = 64 * 1024  # a JSON-RPC request of the chain face (mock_node/chain.py)
_I64_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
MIDDLEWARE_BODY_LIMIT = 64 * 1024 * 1024  # stands in for upstream's 1 GiB middleware cap (W28), memory-bounded
BACKEND_LATENCY_S = 1.0  # how long the node-wide key slot stays open to another request (shared-key-slot)
REPLAY_MEMORY = 100_000  # at most this many pairs held; the last 50,000 are always refused
ANONYMOUS = "anonymous"  # the one caller a route without the auth middleware knows (the bearer faults)
BINARY_MEMBERS = ("ciphertext", "client_dh_public_key", "node_dh_public_key", "nonce", "plaintext_body_hash", "salt")


class Refusal(Exception):
    """A request the node refuses. ``kind`` decides how the profile maps it to a status; ``validation``
    marks a refusal of the request's form, made before any decryption (what ``validation-errors-200``
    answers with 200)."""

    def __init__(self, status: int, code: str, message: str, *, kind: str = "client") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind
        self.validation = False


def _protocol_message(exc: ProtocolError) -> str:
    """A refusal message from a core error: the field and the reason, never the value."""
    return f"{exc.field}: {exc.reason}" if exc.field else exc.reason


@dataclass
class NodeState:
    config: MockConfig
    locks: LockTable
    replays: ReplayMemory
    key_slot: tuple[Exchange, bytes] | None = None  # the node-wide key of the shared-key-slot fault
    handlers: HandlerSlots = field(default_factory=HandlerSlots)  # the concurrency faults' per-handler slots
    chain: MockChain = field(init=False)  # the chain faces (mock_node/chain.py); also picks the serving key

    def __post_init__(self) -> None:
        self.chain = MockChain(self.config)  # costs nothing: keys and evidence are made on first use

    def serving_keypair(self, behaviour: Behaviour) -> tuple[bytes, bytes]:
        """(private, public): the key the lock hands out and requests are decrypted under (chain_lock_key)."""
        return self.chain.serving_keypair(behaviour)

    def remember(self, key: bytes) -> bool:
        """Record a (key, nonce) pair; True if it was already seen. Memory is bounded (mock_node.replays)."""
        return self.replays.remember(key, REPLAY_MEMORY)


def create_app(config: MockConfig | None = None) -> Starlette:
    """Build the ASGI app. Use it in-process with ``httpx.ASGITransport`` or serve it with uvicorn."""
    config = config or MockConfig()
    state = NodeState(config, LockTable(config.clock), ReplayMemory(REPLAY_MEMORY))
    backend = Backend(config.backend_url, transport=config.backend_transport) if config.backend_url else None

    def json_response(status: int, payload: bytes, headers: dict[str, str] | None = None) -> Response:
        return Response(payload, status_code=status, media_type="application/json", headers=headers)

    def refuse(behaviour: Behaviour, refusal: Refusal) -> Response:
        status, code, message = refusal.status, refusal.code, refusal.message
        unmapped = behaviour.node_unknown_model == "404" and (status, code) == (404, "NOT_FOUND")
        if config.face == "node" and not unmapped:  # the node face's codes (Table 10.1)
            status, code = NODE_FACE_CODES.get((status, code), (status, code))
        if refusal.kind == "crypto" and behaviour.crypto_error_status == 500:
            status, code, message = 500, "INTERNAL_ERROR", "Internal server error occurred"
        if behaviour.client_error_status == "500" and status < 500 and refusal.kind != "auth":
            status, code, message = 500, "INTERNAL_ERROR", "Internal server error occurred"
        if refusal.kind == "oversize" and behaviour.oversize_response == "text":
            return Response("Failed to buffer the request body", status_code=413, media_type="text/plain")
        if behaviour.error_codes == "mispaired" and 400 <= status < 500:
            code = "REQUEST_ERROR" if status == 401 else "AUTH_ERROR"  # each a Table 10.1 code of another status
        if refusal.validation and behaviour.validation_error_status == "200" and status < 500:
            status = 200  # the error body as the "Ok" value of a handler that set no status
        return json_response(status, ErrorBody(code, message).serialize())

    def behaviour_for(request: Request) -> Behaviour:
        behaviour = config.behaviour
        header = request.headers.get("x-mock-fault")
        if header and config.allow_fault_header:
            try:
                behaviour = apply_all(behaviour, resolve(n for n in header.split(",") if n.strip()))
            except ValueError as exc:
                raise Refusal(400, "REQUEST_ERROR", f"X-Mock-Fault: {exc}") from None
        return behaviour

    def authenticate(request: Request, *, required: bool = True) -> str:
        """The caller's token id. ``required=False`` (the bearer faults) lets a caller without a token in as
        :data:`ANONYMOUS`, as a handler that reads the token only when one is sent."""
        header = request.headers.get("authorization", "")
        if not required and not header[7:].strip():
            return ANONYMOUS
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise Refusal(
                401, "AUTH_ERROR", "Authentication failed: a 'Bearer <token>' header is required", kind="auth"
            )
        token = header[7:]
        # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header must not become a 500.
        presented = token.encode("utf-8", "surrogateescape")
        known = not config.api_keys or any(hmac.compare_digest(presented, k.encode()) for k in config.api_keys)
        if not known and config.behaviour.check_api_key:  # any-bearer-token: a well-formed token is enough
            raise Refusal(401, "AUTH_ERROR", "Authentication failed: unknown API key", kind="auth")
        return token_id(token)

    async def read_body(request: Request, limit: int, *, check_type: bool = True) -> bytes:
        content_type = request.headers.get("content-type", "")
        if check_type and content_type.split(";")[0].strip().lower() != "application/json":
            raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise Refusal(413, "PAYLOAD_TOO_LARGE", f"the body exceeds the {limit}-byte limit", kind="oversize")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "PAYLOAD_TOO_LARGE", f"the body exceeds the {limit}-byte limit", kind="oversize")
            chunks.append(chunk)
        return b"".join(chunks)

    async def health(request: Request) -> Response:
        return json_response(200, b'{"message":"ok"}' if config.face == "proxy" else b'{"status":"ok"}')

    async def models(request: Request) -> Response:
        try:
            authenticate(request)
        except Refusal as refusal:
            return refuse(config.behaviour, refusal)
        data = [{"id": m, "object": "model", "created": 1686935002, "owned_by": "atoma"} for m in config.models]
        return json_response(200, jsonwire.dumps({"object": "list", "data": data}))

    async def lock(request: Request) -> Response:
        behaviour = config.behaviour
        try:
            body_first = behaviour.lock_body_first  # a framework's body extractor runs before the handler (W30)
            owner = "" if body_first else authenticate(request, required=behaviour.lock_requires_bearer)  # R2.4
            behaviour = behaviour_for(request)
            try:
                lock_request = await read_lock_request(request, behaviour)
            except Refusal as refusal:
                if behaviour.lock_rejections == "text":  # the framework's rejection, in its words (W30)
                    return Response(refusal.message, status_code=refusal.status, media_type="text/plain; charset=utf-8")
                raise
            if body_first:
                owner = authenticate(request, required=behaviour.lock_requires_bearer)
            if lock_request.model not in config.models:
                if behaviour.unknown_model_lock == "500":
                    raise Refusal(500, "INTERNAL_ERROR", "Internal server error occurred", kind="server")
                raise Refusal(503, "SERVICE_UNAVAILABLE", "no node serves this model confidentially")
            timeout = LOCK_DEFAULT_TIMEOUT_S if lock_request.timeout is None else lock_request.timeout
            granted = state.locks.grant(
                owner,
                lock_request.model,
                LOCK_DEFAULT_TOKENS if lock_request.max_num_tokens is None else lock_request.max_num_tokens,
                timeout,
            )
        except Refusal as refusal:
            return refuse(behaviour, refusal)
        public_key = state.serving_keypair(behaviour)[1]  # the committed key, unless a chain_lock_key fault
        if behaviour.lock_public_key == "low-order":
            public_key = bytes(32)
        elif behaviour.lock_public_key == "short":
            public_key = public_key[:31]
        if config.judge is not None:
            config.judge.on_lock(owner, granted.stack_small_id, public_key, granted.max_num_tokens, timeout)
        reply = LockResponse(b64encode(public_key), config.node_small_id, None, granted.stack_small_id)
        return _lock_reply(reply, behaviour.lock_reply)

    async def read_lock_request(request: Request, behaviour: Behaviour) -> LockRequest:
        """The lock body (R2.1, R2.3), or the refusal of it; ``lock_members`` holds the faults of a parser
        that refuses unknown members (a struct that denies them) or reads a null max_num_tokens as 0."""
        body = await read_body(request, LOCK_BODY_LIMIT, check_type=behaviour.lock_checks_content_type)
        try:
            value = jsonwire.loads(body)
            lock_request = LockRequest.from_json(value)
        except ProtocolError as exc:
            raise Refusal(400, "REQUEST_ERROR", _protocol_message(exc)) from None
        members = value if isinstance(value, dict) else {}
        if behaviour.lock_members == "deny-unknown" and set(members) - {"model", "max_num_tokens", "timeout"}:
            raise Refusal(400, "REQUEST_ERROR", "unknown member in the lock body")
        if behaviour.lock_members == "null-as-zero" and members.get("max_num_tokens", 0) is None:
            lock_request = replace(lock_request, max_num_tokens=0)
        return lock_request

    async def confidential(request: Request) -> Response:
        behaviour = config.behaviour
        try:
            if config.face == "proxy" and not behaviour.token_after_lock:  # an unauthenticated caller learns nothing
                authenticate(request, required=behaviour.confidential_requires_bearer)
            behaviour = behaviour_for(request)
            return await _confidential(request, behaviour)
        except Refusal as refusal:
            return refuse(behaviour, refusal)

    async def _confidential(request: Request, behaviour: Behaviour) -> Response:
        endpoint = ENDPOINTS[request.url.path]
        proxy = config.face == "proxy"
        late = proxy and behaviour.token_after_lock  # the token is checked only once the lock is spent (a fault)
        owner = ANONYMOUS if late else "node-face"
        if proxy and not late:
            owner = authenticate(request, required=behaviour.confidential_requires_bearer)
        try:
            limit = config.max_body_bytes if behaviour.body_limit == "configured" else MIDDLEWARE_BODY_LIMIT
            limit = _framed_limit(request, limit, behaviour)
            body = await read_body(request, limit, check_type=behaviour.check_content_type)
        except Refusal as refusal:
            refusal.validation = True
            raise
        judged = None if config.judge is None else config.judge.on_request(owner, endpoint, body)
        try:
            envelope = ConfidentialComputeRequest.parse(body)
        except ProtocolError as exc:
            malformed = Refusal(400, "REQUEST_ERROR", _protocol_message(exc))
            malformed.validation = True
            raise malformed from None
        if behaviour.unknown_envelope_members == "refuse":
            _refuse_unknown_members(body)
        if behaviour.base64_decoding == "lenient":
            envelope = _lenient(envelope, BINARY_MEMBERS)
        elif behaviour.lenient_base64_members:
            envelope = _lenient(envelope, tuple(sorted(behaviour.lenient_base64_members)))
        signer = authorize_hop(request, envelope, behaviour) if config.face == "node" else None
        try:
            decoded = _decode(envelope, behaviour)
        except Refusal as refusal:
            refusal.validation = True
            raise
        if behaviour.client_key_top_bit == "refuse" and decoded.client_dh_public_key[31] & 0x80:
            raise Refusal(400, "REQUEST_ERROR", "client_dh_public_key: bit 255 is set", kind="crypto")
        units = envelope.num_compute_units
        if units is None:  # R2.12; the null-as-zero fault reads an absent value as 0
            default = IMAGE_DEFAULT_UNITS if endpoint == "images" else LOCK_DEFAULT_TOKENS
            units = 0 if behaviour.compute_units == "null-as-zero" else default
        if behaviour.compute_units == "ignore-capacity":
            units = 0  # any lock on the stack admits the request, whatever its size
        # A request that names a stack the proxy has never heard of passes without a lock check under the
        # pass-through fault (a lookup's "nothing recorded" read as "no restriction").
        stack = envelope.stack_small_id
        locked = proxy and not (behaviour.unknown_stack == "pass-through" and not state.locks.known(stack))
        try:
            if locked:
                state.locks.consume(
                    stack,
                    owner,
                    units,
                    check_owner=not behaviour.accept_foreign_lock and owner != ANONYMOUS,
                    check_expiry=not behaviour.accept_expired_lock,
                    spend=behaviour.spend_lock,
                )
        except LockRefused as exc:
            raise Refusal(425, "UNAVAILABLE_STACK", f"Stack unavailable: {exc.reason}") from None
        if late:
            authenticate(request, required=behaviour.confidential_requires_bearer)
        try:
            return await _serve(request, endpoint, envelope, decoded, behaviour, signer, judged)
        except Refusal:
            if locked and not behaviour.release_stack_on_refusal:
                state.locks.jam(stack)  # the error path never hands the stack back (R10.10)
            raise

    async def _serve(
        request: Request,
        endpoint: fake_model.Endpoint,
        envelope: ConfidentialComputeRequest,
        decoded: DecodedRequest,
        behaviour: Behaviour,
        signer: str | None,
        judged: Any,
    ) -> Response:
        """Everything after the lock: decrypt, check the plaintext, answer and seal."""
        # What a node that ignores the tag answers with: a request consistent with the envelope's model
        # and stream flag, so that the fault shows on every endpoint (accept-tampered-ciphertext).
        made_up = fake_model_request(endpoint, envelope.model_name, bool(envelope.stream))
        exchange, shared, plaintext = _open(decoded, behaviour, made_up)
        if not behaviour.accept_replay and state.remember(exchange.key_id.encode() + decoded.nonce):
            raise Refusal(409, "REPLAYED_REQUEST", "this (key, nonce) pair was already used; requests are single-use")
        inner = _plaintext_request(plaintext, endpoint, envelope, behaviour)
        if config.face == "node" and behaviour.owner_check == "after-plaintext":
            authorize_owner(request, envelope, behaviour, signer)  # upstream's order (protocol §4.3, step 12)
        streaming = inner.get("stream") is True
        if config.face == "node" and streaming and not request.headers.get("x-request-id"):
            if behaviour.missing_request_id == "400":  # R1.7: before any event is sent
                raise Refusal(400, "MISSING_HEADER", "Missing required header: X-Request-Id")
            if behaviour.missing_request_id == "500":
                raise Refusal(500, "INTERNAL_ERROR", "Internal server error occurred", kind="server")
        request_id = blake2b_256(exchange.key_id.encode() + decoded.nonce)[:12].hex()
        created = int(config.wall_clock())
        if behaviour.key_slot == "node-wide":
            # One slot for the node, written at key agreement and read after the backend's latency: a
            # request that arrives meanwhile overwrites it, and this answer is sealed under its key.
            state.key_slot = (exchange, shared)
            await asyncio.sleep(BACKEND_LATENCY_S)
            exchange, shared = state.key_slot
        handler = (endpoint, streaming)
        if behaviour.key_slot == "per-handler":  # the same, with one slot per handler (handler-key-race)
            exchange, shared = await state.handlers.key_after_inference(handler, exchange, shared)
        sealer = Sealer(exchange, config.signer, behaviour, config.rng, shared, streaming=streaming)
        # An endpoint that does not stream, streamed all the same (a fault): one event, the whole answer.
        whole = streaming and endpoint not in fake_model.STREAMABLE
        try:
            if backend is not None:
                if streaming and not whole:
                    chunks = await backend.stream(endpoint, inner)
                else:
                    answer = await backend.respond(endpoint, plaintext)
            elif streaming and not whole:
                chunks = fake_model.stream(endpoint, inner, request_id=request_id, created=created)
            else:
                answer = fake_model.respond(endpoint, inner, request_id=request_id, created=created)
        except fake_model.PlaintextError as exc:
            if behaviour.unservable_plaintext == "500":  # the backend's refusal turned into the node's failure
                raise Refusal(500, "INTERNAL_ERROR", "Internal server error occurred", kind="server") from None
            raise Refusal(
                400, "REQUEST_ERROR", _plaintext_message(exc.field, exc.reason, plaintext, behaviour)
            ) from None
        except BackendError as exc:
            raise Refusal(502, "BAD_GATEWAY", str(exc), kind="server") from None
        if whole:
            chunks = [answer]
        if judged is not None:
            config.judge.on_served(judged, chunks if streaming else answer)
        shape = behaviour.answer_shape
        if not streaming:
            answer = misshape.answer(endpoint, answer, shape)
            usage = answer.get("usage") if endpoint != "images" else None
            drawn = await next_nonce(handler, behaviour)
            members = sealer.seal(misshape.plaintext(endpoint, answer, shape), usage, drawn=drawn)
            if endpoint == "images" and "image-usage" in behaviour.envelope_shape:
                members["usage"] = None  # an Option<Usage> serialized as null rather than skipped (R8.3)
            if "extra-member" in behaviour.envelope_shape:
                members["request_id"] = request_id  # a debugging aid left in the envelope (R8.2)
            media = "text/plain; charset=utf-8" if endpoint in behaviour.plain_text_answers else "application/json"
            body = response_body(members, behaviour.envelope_shape)
            return Response(body, status_code=200, media_type=media, headers=_trace(envelope, behaviour))
        chunks = misshape.chunks(endpoint, chunks, shape)
        envelope_shape = behaviour.envelope_shape
        events = []
        for c in chunks:  # each chunk's nonce is taken as the model emits it (handler-nonce-race)
            drawn = await next_nonce(handler, behaviour)
            events.append(chunk_body(sealer.seal(jsonwire.dumps(c), c.get("usage"), drawn=drawn), envelope_shape))
        # Exactly "text/event-stream" (Starlette would append a charset), as the upstream node sends it.
        headers = {"content-type": behaviour.stream_media_type, **_trace(envelope, behaviour)}
        if behaviour.stream_cache_control:
            headers["cache-control"] = "no-cache"
        return StreamingResponse(_stream(events, behaviour), headers=headers)

    async def next_nonce(handler: tuple[str, bool], behaviour: Behaviour) -> bytes | None:
        """The nonce of the next message from the handler's racy generator (handler-nonce-race); None: the
        sealer draws a fresh one itself."""
        if behaviour.nonce_source != "handler-slot":
            return None
        return await state.handlers.next_nonce(handler, config.rng)

    def authorize_hop(request: Request, envelope: ConfidentialComputeRequest, behaviour: Behaviour) -> str | None:
        """The node face: X-Signature over the supplied 32-byte hash, by the owner of the envelope's stack."""
        try:
            claimed = b64decode(envelope.plaintext_body_hash, field="plaintext_body_hash")
        except ProtocolError as exc:
            raise Refusal(400, behaviour.node_hash_code, _protocol_message(exc)) from None
        if len(claimed) != HASH_LEN and behaviour.node_long_hash == "refuse":
            reason = f"plaintext_body_hash: decodes to {len(claimed)} bytes, expected exactly {HASH_LEN}"
            raise Refusal(400, behaviour.node_hash_code, reason)
        header = request.headers.get("x-signature")
        signer: str | None = None
        if header is None:
            if behaviour.x_signature != "accept-missing":
                raise Refusal(400, "MISSING_HEADER", "Missing required header: X-Signature")
        else:
            try:
                xsig.screen_header(header, behaviour)
                parsed = xsig.screen(parse_signature(header, field="X-Signature"), behaviour)
                if behaviour.x_signature != "parse-only":
                    verify_signature(parsed, claimed, field="X-Signature", any_length=len(claimed) != HASH_LEN)
                signer = xsig.address(parsed, behaviour)
            except (ProtocolError, xsig.Crash) as exc:
                if xsig.crashed(exc, behaviour):  # the faults of mock_node/xsig.py
                    raise Refusal(500, "INTERNAL_ERROR", "Internal server error occurred", kind="server") from None
                if behaviour.x_signature != "accept-invalid":
                    raise Refusal(400, "INVALID_HEADER", "Invalid header value provided") from None
        if behaviour.owner_check == "before-decrypt":
            authorize_owner(request, envelope, behaviour, signer)
        return signer

    def authorize_owner(
        request: Request, envelope: ConfidentialComputeRequest, behaviour: Behaviour, signer: str | None
    ) -> None:
        """R7.12: the signer owns the envelope's stack (the caller's X-Stack-Small-Id is not evidence)."""
        stack = envelope.stack_small_id
        supplied = request.headers.get("x-stack-small-id", "")
        if behaviour.stack_from == "header" and supplied.isascii() and supplied.isdigit():
            stack = int(supplied)  # the fault: trusting what the caller says (R1.8)
        if signer is None or not behaviour.check_stack_owner:
            return  # a node that skipped the signature has nobody to authorize (the faults above)
        if config.stack_owners.get(stack) != signer:
            if behaviour.foreign_owner == "INVALID_HEADER":
                raise Refusal(400, "INVALID_HEADER", "Invalid header value provided")
            raise Refusal(401, "AUTH_ERROR", "Authentication failed: the signer does not own this stack", kind="auth")

    def _decode(envelope: ConfidentialComputeRequest, behaviour: Behaviour) -> DecodedRequest:
        try:
            # R7.13: the proxy checks the hash it is asked to vouch for before anything else.
            b64decode(envelope.plaintext_body_hash, field="plaintext_body_hash")
            if behaviour.accept_long_plaintext_hash or behaviour.node_long_hash == "accept":
                raw = b64decode(envelope.plaintext_body_hash, field="plaintext_body_hash")
                if len(raw) != HASH_LEN:  # the upstream proxy signs it; the node then fails
                    raise Refusal(500, "INTERNAL_ERROR", "Internal server error occurred", kind="server")
            return envelope.decode()
        except ProtocolError as exc:
            kind = "client" if exc.field == "plaintext_body_hash" else "crypto"
            raise Refusal(400, "REQUEST_ERROR", _protocol_message(exc), kind=kind) from None

    def _open(decoded: DecodedRequest, behaviour: Behaviour, made_up: dict[str, Any]) -> tuple[Exchange, bytes, bytes]:
        node_private_key, node_public_key = state.serving_keypair(behaviour)  # the lock's key (chain_lock_key)
        if not behaviour.check_node_key:  # whatever key the client addressed, the node uses its own
            decoded = replace(decoded, node_dh_public_key=node_public_key)
        try:
            exchange, shared = node_exchange(decoded, node_private_key, allow_low_order=behaviour.accept_low_order_key)
        except (KeyMismatch, LowOrderPoint, ZeroSharedSecret, LengthError) as exc:
            raise Refusal(400, "REQUEST_ERROR", _protocol_message(exc), kind="crypto") from None
        try:
            plaintext = exchange.aead.open(decoded.nonce, decoded.ciphertext)
        except AeadError as exc:
            if not behaviour.accept_tampered_ciphertext:
                raise Refusal(400, "REQUEST_ERROR", _protocol_message(exc), kind="crypto") from None
            return exchange, shared, jsonwire.dumps(made_up)
        computed = blake2b_256(_hashed(plaintext, behaviour))
        if not behaviour.accept_wrong_plaintext_hash and not hmac.compare_digest(computed, decoded.plaintext_body_hash):
            message = HashMismatch("does not equal BLAKE2b-256 of the decrypted plaintext", field="plaintext_body_hash")
            text = _protocol_message(message)
            if behaviour.error_leak == "hashes":
                text = (
                    "Invalid request body: Plaintext body hash does not match, computed hash: "
                    f"{list(computed)}, expected hash: {list(decoded.plaintext_body_hash)}"
                )
            raise Refusal(400, "INVALID_BODY" if behaviour.error_leak == "hashes" else "REQUEST_ERROR", text)
        return exchange, shared, plaintext

    def _plaintext_request(
        plaintext: bytes, endpoint: fake_model.Endpoint, envelope: ConfidentialComputeRequest, behaviour: Behaviour
    ) -> dict[str, Any]:
        try:
            inner = jsonwire.loads_object(plaintext, field="plaintext")
        except ProtocolError as exc:
            raise Refusal(
                400, "REQUEST_ERROR", _plaintext_message(exc.field or "plaintext", exc.reason, plaintext, behaviour)
            ) from None
        model = inner.get("model")
        if not isinstance(model, str) and behaviour.plaintext_model == "envelope":
            model = envelope.model_name  # the backend chosen by the clear model_name (R3.14: by the inner one)
            inner = {**inner, "model": model}
        if not isinstance(model, str):
            raise Refusal(400, "REQUEST_ERROR", _plaintext_message("model", "must be a string", plaintext, behaviour))
        if model not in config.models and behaviour.check_model:
            raise Refusal(
                404, "NOT_FOUND", _plaintext_message("model", "is not served by this node", plaintext, behaviour)
            )
        if envelope.stream and endpoint not in fake_model.STREAMABLE and endpoint in behaviour.streamable:
            inner = {**inner, "stream": True}  # the envelope's flag decides (R1.5), whatever the endpoint
        outer_stream = bool(envelope.stream)
        if envelope.stream is None and behaviour.unset_stream == "event-stream" and endpoint in behaviour.streamable:
            outer_stream, inner = True, {**inner, "stream": True}  # absent or null read as a stream (R1.5)
        if behaviour.check_consistency:
            if envelope.model_name != model:
                raise Refusal(400, "REQUEST_ERROR", "model_name: differs from the model inside the plaintext")
            if outer_stream != (inner.get("stream") is True):
                raise Refusal(400, "REQUEST_ERROR", "stream: differs from the stream flag inside the plaintext")
        if inner.get("stream") is True and endpoint not in behaviour.streamable:
            raise Refusal(400, "REQUEST_ERROR", "stream: this endpoint does not stream")
        return inner

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "INTERNAL_ERROR")
        message = {404: "Resource not found", 405: "Method not allowed"}.get(status, "Internal server error occurred")
        if config.behaviour.routing_errors == "text":  # the framework's own answer to a route it does not have
            return Response(message, status_code=status, media_type="text/plain; charset=utf-8")
        return json_response(status, ErrorBody(code, message).serialize())

    async def sui(request: Request) -> Response:
        """The Sui full node's JSON-RPC face (mock_node/chain.py): the node's key commitments."""
        try:
            behaviour = behaviour_for(request)
            body = await read_body(request, SUI_BODY_LIMIT)
        except Refusal as refusal:
            return refuse(config.behaviour, refusal)
        return json_response(200, state.chain.rpc(body, behaviour))

    async def node_attestation(request: Request) -> Response:
        """The proxy service's GET /v1/get_node_attestation/{id}: 404 and 500 with empty bodies, as upstream."""
        try:
            behaviour = behaviour_for(request)
        except Refusal as refusal:
            return refuse(config.behaviour, refusal)
        text = request.path_params["node_small_id"]
        node = int(text) if _I64_TEXT.fullmatch(text) else None
        if node is None or not -(2**63) <= node < 2**63:  # axum's Path<i64> rejection
            return Response(
                "Invalid URL: Cannot parse the node id to a `i64`",
                status_code=400,
                media_type="text/plain; charset=utf-8",
            )
        body = state.chain.attestation(node, behaviour)
        return Response(b"", status_code=404) if body is None else json_response(200, body)

    routes = [
        Route("/health", health, methods=["GET"]),
        *(Route(path, confidential, methods=["POST"]) for path in ENDPOINTS),
        Route("/sui", sui, methods=["POST"]),
        Route("/v1/get_node_attestation/{node_small_id}", node_attestation, methods=["GET"]),
    ]
    if config.face == "proxy":  # the node face has no lock endpoint and no model list (protocol §2.2)
        routes += [Route("/v1/models", models, methods=["GET"]), Route("/v1/nodes/lock", lock, methods=["POST"])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if backend is not None:
            await backend.aclose()

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: not_found, Exception: not_found}, lifespan=lifespan
    )
    app.state.node = state
    return app


def _lock_reply(reply: LockResponse, shape: frozenset[str]) -> Response:
    """The lock reply, or the lock-reply faults' version of it: ``no-digest`` (a null digest left out, as
    a serializer that skips ``None`` does), ``string-ids`` (integers written as strings, as a JavaScript
    proxy guarding u64 precision does), ``sorted`` (alphabetical members) and ``text-plain`` (the body
    written as a string)."""
    members: dict[str, Any] = reply.to_json()
    if "no-digest" in shape and members["stack_entry_digest"] is None:
        del members["stack_entry_digest"]
    if "string-ids" in shape:
        members["node_small_id"], members["stack_small_id"] = str(reply.node_small_id), str(reply.stack_small_id)
    if "sorted" in shape:
        members = dict(sorted(members.items()))
    media = "text/plain; charset=utf-8" if "text-plain" in shape else "application/json"
    return Response(jsonwire.dumps(members), status_code=200, media_type=media)


def _framed_limit(request: Request, limit: int, behaviour: Behaviour) -> int:
    """The body limit as the framing faults apply it, after their own refusals: a body without a
    Content-Length refused 411 (``chunked_bodies``), a charset refused 415 (``content_type_match``), a
    limit that reads the header alone (``body_limit_reads``) or refuses the limit itself (``body_limit_edge``)."""
    declared = "content-length" in request.headers
    if not declared and behaviour.chunked_bodies == "411":
        raise Refusal(411, "LENGTH_REQUIRED", "a Content-Length header is required")
    exact = request.headers.get("content-type", "") == "application/json"
    if behaviour.content_type_match == "exact" and behaviour.check_content_type and not exact:
        raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
    if not declared and behaviour.body_limit_reads == "content-length":
        return MIDDLEWARE_BODY_LIMIT  # no header to judge: only the middleware's cap is left
    return limit - 1 if behaviour.body_limit_edge == "exclusive" else limit


ENVELOPE_MEMBERS = frozenset({*ConfidentialComputeRequest.REQUIRED, "num_compute_units", "stream"})


def _refuse_unknown_members(body: bytes) -> None:
    """The unknown-member fault: a parser that denies unknown fields (R3.2 says ignore them)."""
    if set(jsonwire.loads_object(body)) - ENVELOPE_MEMBERS:
        raise Refusal(400, "REQUEST_ERROR", "the envelope has a member this node does not know")


def _hashed(plaintext: bytes, behaviour: Behaviour) -> bytes:
    """What the node hashes: the decrypted bytes (R6.2), or, under the fault, its own re-serialization
    of them (W11), which equals them only when the client wrote compact JSON."""
    if behaviour.plaintext_hash_input == "reserialized":
        with contextlib.suppress(ProtocolError):
            return jsonwire.dumps(jsonwire.loads(plaintext))
    return plaintext


def _trace(envelope: ConfidentialComputeRequest, behaviour: Behaviour) -> dict[str, str]:
    """The echo-hash-header fault's tracing header: the request's plaintext_body_hash, in clear."""
    return {"x-plaintext-body-hash": envelope.plaintext_body_hash} if behaviour.echo_hash_header else {}


def _lenient(envelope: ConfidentialComputeRequest, members: tuple[str, ...]) -> ConfidentialComputeRequest:
    """The envelope as a forgiving base64 decoder reads ``members`` (Node's ``Buffer.from(s, "base64")``):
    either alphabet, padding optional, whitespace, stray characters and stray low bits skipped. Each is
    re-written canonically, so the strict decode that follows accepts what the forgiving one did."""
    canonical: dict[str, Any] = {}
    for name in members:
        text = "".join(getattr(envelope, name).split()).translate(_FROM_URLSAFE).rstrip("=")
        try:
            canonical[name] = b64encode(base64.b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            continue  # a length no decoder can read: left as sent, for the strict decode to refuse
    return replace(envelope, **canonical)


_FROM_URLSAFE = str.maketrans("-_", "+/")


def fake_model_request(endpoint: fake_model.Endpoint, model: str, stream: bool) -> dict[str, Any]:
    """A minimal valid plaintext for ``endpoint``."""
    if endpoint == "chat":
        return {"model": model, "messages": [{"role": "user", "content": "?"}], "stream": stream}
    if endpoint == "completions":
        return {"model": model, "prompt": "?", "stream": stream}
    if endpoint == "embeddings":
        return {"model": model, "input": "?"}
    return {"model": model, "prompt": "?"}


def _plaintext_message(field: str, reason: str, plaintext: bytes, behaviour: Behaviour) -> str:
    """A plaintext-level refusal. Conformant: field and reason only. The leaky fault quotes the plaintext."""
    message = f"plaintext.{field}: {reason}"
    if behaviour.error_leak == "plaintext":
        message += f" (request was: {plaintext.decode('utf-8', 'replace')[:512]})"
    return message


async def _stream(events: list[bytes], behaviour: Behaviour) -> AsyncIterator[bytes]:
    """Each event is its own HTTP chunk (R9.10); the stream shape faults rearrange whole events, add a
    ``data: keep-alive`` event where a comment belongs (``data-keepalive``), or end the body one newline
    short of the last event's end (``unterminated``: events joined by a blank line, not ended by one)."""
    shape = behaviour.stream_shape
    if "drop-usage" in shape and len(events) > 1:
        events = events[:-1]
    if "duplicate" in shape and len(events) > 2:
        events = [events[0], events[1], events[1], *events[2:]]
    if "reorder" in shape and len(events) > 2:
        # Content deltas swapped among themselves cannot be detected (no sequence numbers, W6); a
        # usage chunk that is not last can.
        events = [*events[:-2], events[-1], events[-2]]
    for _ in range(behaviour.keepalive_comments):
        yield KEEPALIVE
    if "data-keepalive" in shape:
        yield DATA_KEEPALIVE
    for position, event in enumerate(events, 1):
        encoded = encode_event(event)
        yield encoded[:-1] if "unterminated" in shape and position == len(events) else encoded
    if "done" in shape:
        yield DONE


DATA_KEEPALIVE = b"data: keep-alive\n\n"  # a heartbeat sent as an event, not as a comment (R9.3, R9.8)
