"""The suite's reference client behind the adapter contract: ``python -m conformance.clients.adapters.reference``.

It is what docs/spec.md §13 asks of a client, built only from the protocol core: fresh secrets per
request, a lock sized for the request (R13.7), and every response and chunk verified before a byte of
it reaches the caller: tag, hash, signature, signer (R13.10 to R13.13), clear usage (R11.6) and the
whole-stream checks (R13.14). When the instruction names a chain (``chain``), the lock's key is
verified against it before anything is sealed to it, and refused with ``UNVERIFIED_LOCK_KEY`` when it
fails or cannot be judged (R15.14, conformance.keycheck); an instruction without one leaves nothing to
verify against. The client matrix holds it to every MUST and SHOULD; it is also the model an SDK
author can read.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import httpx

from ...client import ENDPOINT_PATHS
from ...protocol import (
    SYSTEM_RANDOM,
    X25519_KEY_LEN,
    ConfidentialComputeResponse,
    LockResponse,
    ProtocolError,
    RandomSource,
    SealedRequest,
    SseParser,
    StreamChunk,
    StreamVerifier,
    b64decode_fixed,
    jsonwire,
    open_response,
    seal_request,
)
from ..contract import ChainInfo, Instruction, content_of

if TYPE_CHECKING:
    from cryptography import x509

CLIENT = "atoma-conformance reference client"
RNG: RandomSource = SYSTEM_RANDOM  # the one source of every key, salt and nonce this client draws
_PATHS = {
    "chat": "chat",
    "chat-stream": "chat",
    "completions": "completions",
    "embeddings": "embeddings",
    "images": "images",
}


class Refused(Exception):
    """The client refuses the exchange; ``code`` is the contract's error_code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def compute_units(instruction: Instruction) -> int:
    """R13.7: an explicit unit count, locked for; images need width x height x n (R2.12)."""
    params = instruction.params
    if instruction.operation == "images":
        width, _, height = str(params.get("size", "1024x1024")).partition("x")
        try:
            return int(width) * int(height) * int(params.get("n", 1))
        except ValueError:
            raise Refused("BAD_INSTRUCTION", "params.size: must look like 256x256") from None
    if instruction.operation == "embeddings":
        return 512
    tokens = params.get("max_tokens", 256)
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0 else 256


def plaintext(instruction: Instruction) -> bytes:
    body: dict[str, Any] = {"model": instruction.model, **instruction.params}
    if instruction.operation == "chat-stream":
        body["stream"] = True
    return jsonwire.dumps(body)


def lock(http: httpx.Client, instruction: Instruction, units: int) -> LockResponse:
    reply = http.post("/v1/nodes/lock", json={"model": instruction.model, "max_num_tokens": units})
    if reply.status_code != 200:
        raise Refused("LOCK_FAILED", f"the lock endpoint answered {reply.status_code}")
    return LockResponse.parse(reply.content)


def verify_key(chain: ChainInfo, granted: LockResponse, key: bytes, timeout_s: float) -> None:
    """R15.14: the lock's key against chain state, before anything is sealed to it (fails closed)."""
    from ...client import UnverifiedLockKey
    from ...keybinding import KeySource
    from ...keycheck import verify_lock_key
    from ...protocol import parse_roots

    roots: tuple[x509.Certificate, ...] = ()
    if chain.test_ca_pem is not None:
        try:
            roots = parse_roots(chain.test_ca_pem.encode())
        except ProtocolError as exc:
            raise Refused("BAD_INSTRUCTION", f"chain.test_ca_pem: {exc}") from None
    source = KeySource(chain.sui_rpc, chain.package_id, extra_roots=roots)
    try:
        verify_lock_key(source, granted.node_small_id, key, timeout_s=timeout_s, deadline_s=timeout_s)
    except UnverifiedLockKey as exc:
        raise Refused("UNVERIFIED_LOCK_KEY", str(exc)) from None


def request(instruction: Instruction) -> str:
    units = compute_units(instruction)
    stream = instruction.operation == "chat-stream"
    headers = {"authorization": f"Bearer {instruction.api_key}"}
    with httpx.Client(base_url=instruction.base_url, headers=headers, timeout=instruction.timeout_s) as http:
        granted = lock(http, instruction, units)
        node_key = b64decode_fixed(granted.public_key, X25519_KEY_LEN, field="public_key")
        if instruction.chain is not None:
            verify_key(instruction.chain, granted, node_key, instruction.timeout_s)
        sealed = seal_request(
            plaintext(instruction),
            node_public_key=node_key,
            model_name=instruction.model,
            stack_small_id=granted.stack_small_id,
            stream=stream,
            num_compute_units=units,
            rng=RNG,
        )
        path = ENDPOINT_PATHS[_PATHS[instruction.operation]]
        body = sealed.request.serialize()
        accept = "text/event-stream" if stream else "application/json"
        post = http.build_request(
            "POST", path, content=body, headers={"content-type": "application/json", "accept": accept}
        )
        reply = http.send(post, stream=True)
        try:
            expected = "text/event-stream" if stream else "application/json"
            media = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if reply.status_code != 200 or media != expected:  # R13.9: no decryption attempted
                raise Refused("HTTP_STATUS", f"status {reply.status_code}, content type {media or 'none'}")
            if stream:
                return read_stream(reply, sealed, instruction.node_address)
            response = ConfidentialComputeResponse.parse(reply.read())
            opened = open_response(response, sealed.exchange, expected_signer=instruction.node_address)
            return content_of(jsonwire.loads_object(opened.plaintext, field="plaintext"))
        finally:
            reply.close()


def read_stream(reply: httpx.Response, sealed: SealedRequest, node_address: str | None) -> str:
    """Every chunk is verified before it counts; an error anywhere discards the whole answer."""
    verifier = StreamVerifier(sealed.exchange, expected_signer=node_address)
    parser, chunks = SseParser(), list[dict[str, Any]]()
    for data in reply.iter_bytes():
        for event in parser.feed(data):
            if event.data == "[DONE]":  # R13.15: accepted as the end of the stream
                return content_of(chunks)
            opened = verifier.open(StreamChunk.parse(event.data.encode()))
            chunks.append(jsonwire.loads_object(opened.plaintext, field="plaintext"))
    for event in parser.close():
        if event.data != "[DONE]":
            chunks.append(jsonwire.loads_object(verifier.open(StreamChunk.parse(event.data.encode())).plaintext))
    return content_of(chunks)


def answer(raw: str) -> dict[str, Any]:
    """One result for one instruction; never raises."""
    try:
        instruction = Instruction.from_json(json.loads(raw))
    except ValueError as exc:
        return _error("BAD_INSTRUCTION", str(exc) if not isinstance(exc, json.JSONDecodeError) else "not JSON")
    try:
        content = request(instruction)
    except Refused as exc:
        return _error(exc.code, exc.detail)
    except ProtocolError as exc:
        return _error(exc.code, str(exc))
    except httpx.HTTPError as exc:
        return _error("HTTP_ERROR", type(exc).__name__)
    return {"outcome": "ok", "content": content, "error_code": None, "detail": None, "client": CLIENT}


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"outcome": "error", "content": None, "error_code": code, "detail": detail[:200], "client": CLIENT}


def main() -> int:
    print(json.dumps(answer(sys.stdin.read())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
