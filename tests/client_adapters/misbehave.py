"""A toy client behind the adapter contract that breaks exactly one client obligation, named in argv[1].

It is the client side's fault catalogue: the meta-test runs it once per CLIENT check and requires
that check to fail. It is also the proof that a new client needs only a command: the suite knows
nothing of this file except the command line it is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conformance.client import ENDPOINT_PATHS
from conformance.clients.adapters import reference
from conformance.clients.contract import Instruction, content_of
from conformance.protocol import jsonwire
from conformance.protocol.b64 import b64decode, b64decode_fixed, b64encode
from conformance.protocol.envelope import open_response, seal_request
from conformance.protocol.models import ConfidentialComputeResponse, LockResponse
from conformance.protocol.primitives import blake2b_256, derive_key, x25519_public_key, x25519_shared_secret
from conformance.protocol.randomness import SYSTEM_RANDOM
from conformance.protocol.sse import SseParser


class Repeating:
    """Draws like the system source, except that values of one length repeat (salt 16, nonce 12, key 32)."""

    def __init__(self, length: int) -> None:
        self.length, self.value = length, SYSTEM_RANDOM.token_bytes(length)
        self.drawn: dict[int, bytes] = {}

    def token_bytes(self, n: int) -> bytes:
        value = self.value if n == self.length else SYSTEM_RANDOM.token_bytes(n)
        self.drawn[n] = value
        return value


REPEATING = {"key-reuse": 32, "salt-reuse": 16, "nonce-reuse": 12}


def _source(fault: str) -> Repeating:
    """One request per process, so a value that must repeat across requests is kept in a file."""
    if fault not in REPEATING:
        return Repeating(0)
    length = REPEATING[fault]
    seed = Path(tempfile.gettempdir()) / f"atoma-conformance-misbehave-{length}"
    if not seed.exists():
        seed.write_bytes(SYSTEM_RANDOM.token_bytes(32))
    source = Repeating(length)
    source.value = hashlib.blake2b(seed.read_bytes(), digest_size=length).digest()
    return source


def lax_open(key: bytes, nonce_b64: str, ciphertext_b64: str) -> dict[str, Any]:
    """What a careless client does: AES-CTR without the tag, and a JSON parser that ignores trailing bytes."""
    nonce, sealed = b64decode(nonce_b64), b64decode(ciphertext_b64)
    decryptor = Cipher(algorithms.AES(key), modes.CTR(nonce + b"\x00\x00\x00\x02")).decryptor()
    text = (decryptor.update(sealed) + decryptor.finalize()).decode("utf-8", "replace")
    value, _ = json.JSONDecoder().raw_decode(text)
    assert isinstance(value, dict)
    return value


def envelope_for(fault: str, instruction: Instruction, granted: LockResponse, units: int) -> tuple[bytes, Any, bytes]:
    """The request body, the sealed request, and the key (which only the credulous client uses)."""
    rng = _source(fault)
    stream = instruction.operation == "chat-stream"
    plaintext = reference.plaintext(instruction)
    node_key = b64decode_fixed(granted.public_key, 32)
    sealed = seal_request(
        plaintext,
        node_public_key=x25519_public_key(b"\x07" * 32) if fault == "foreign-node-key" else node_key,
        model_name=instruction.model + ("-other" if fault == "model-mismatch" else ""),
        stack_small_id=granted.stack_small_id,
        stream=(not stream) if fault == "stream-mismatch" else stream,
        num_compute_units=units + 1 if fault == "overask-units" else units,
        rng=rng,
    )
    envelope = sealed.request.to_json()
    if fault == "whitespace-base64":
        envelope["salt"] = str(envelope["salt"]) + "\n"
    elif fault == "short-salt":
        envelope["salt"] = b64encode(b64decode(str(envelope["salt"]))[:15])
    elif fault == "wrong-hash":
        envelope["plaintext_body_hash"] = b64encode(blake2b_256(plaintext + b" "))
    body = json.dumps(envelope, indent=1).encode() if fault == "pretty-json" else jsonwire.dumps(envelope)
    key = derive_key(x25519_shared_secret(rng.drawn[32], node_key), rng.drawn[16])
    return body, sealed, key


def run(fault: str, instruction: Instruction) -> str:
    units = reference.compute_units(instruction)
    stream = instruction.operation == "chat-stream"
    if fault == "paranoid":
        raise reference.Refused("PARANOID", "refuses every response")
    headers = {"authorization": f"Bearer {instruction.api_key}"}
    with httpx.Client(base_url=instruction.base_url, headers=headers, timeout=instruction.timeout_s) as http:
        granted = reference.lock(http, instruction, units)
        body, sealed, key = envelope_for(fault, instruction, granted, units)
        path = ENDPOINT_PATHS[reference._PATHS[instruction.operation]]
        sends = 2 if fault == "reuse-lock" else 1
        for _ in range(sends):
            if fault == "reuse-lock":
                body, sealed, key = envelope_for("none", instruction, granted, units)
            reply = http.post(path, content=body, headers={"content-type": "application/json"})
        if reply.status_code != 200:
            raise reference.Refused("HTTP_STATUS", f"status {reply.status_code}")
        if fault != "credulous":
            return reference_open(reply, sealed, instruction)
        # Credulous: reads whatever decrypts, and checks nothing at all.
        if stream:
            events = [e for e in SseParser().feed(reply.content) if e.data != "[DONE]"]
            chunks = [json.loads(e.data) for e in events]
            return content_of([lax_open(key, c["nonce"], c["ciphertext"]) for c in chunks])
        response = json.loads(reply.content)
        return content_of(lax_open(key, response["nonce"], response["ciphertext"]))


def reference_open(reply: httpx.Response, sealed: Any, instruction: Instruction) -> str:
    if instruction.operation == "chat-stream":
        return reference.read_stream(reply, sealed, instruction.node_address)
    response = ConfidentialComputeResponse.parse(reply.content)
    opened = open_response(response, sealed.exchange, expected_signer=instruction.node_address)
    return content_of(jsonwire.loads_object(opened.plaintext))


# Toys that misbehave only in how they report: the rest of their work is another toy's.
BEHAVES_LIKE = {"nostream": "none", "refuse-streams": "none", "unsupported-after-serving": "credulous"}


def main() -> int:
    fault = sys.argv[1]
    instruction = Instruction.from_json(json.loads(sys.stdin.read()))
    if fault == "nostream" and instruction.operation == "chat-stream":  # quietly asks for a plain answer
        instruction = dataclasses.replace(instruction, operation="chat")
    try:
        if fault == "leaky-detail":
            messages = instruction.params.get("messages") or [{}]
            detail = f"key={instruction.api_key} prompt={messages[0].get('content')}"
            raise reference.Refused("LEAKY", detail)
        content = run(BEHAVES_LIKE.get(fault, fault), instruction)
        if fault == "unsupported-after-serving":
            raise reference.Refused("UNSUPPORTED_OPERATION", "says so only after the node served it")
        if fault == "refuse-streams" and instruction.operation == "chat-stream":  # after reading the stream
            raise reference.Refused("NO_STREAMS", "refuses every stream, honest or not")
    except reference.Refused as exc:
        result = reference._error(exc.code, exc.detail)
    except Exception as exc:  # a toy: any failure is a refusal
        result = reference._error(type(exc).__name__, str(exc))
    else:
        result = {"outcome": "ok", "content": content, "error_code": None, "detail": None, "client": f"toy {fault}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
