"""A run keeps its records to the end, so a large served body must not be kept whole (issue 14): a
body just under the 32 MiB cap is analysed, then only what the checks read afterwards is kept."""

from __future__ import annotations

import base64
import gc
import json
import tracemalloc

import httpx

from conformance.client import ConfidentialClient
from conformance.protocol import b64encode, x25519_public_key
from conformance.records import RETAINED_BODY_BYTES

NODE = x25519_public_key(bytes(range(1, 33)))
LOCK = json.dumps(
    {"public_key": b64encode(NODE), "node_small_id": 1, "stack_entry_digest": None, "stack_small_id": 7}
).encode()
ENVELOPE = {"nonce": b64encode(bytes(12)), "usage": None, "signature": None, "response_hash": b64encode(bytes(32))}
MiB = 1024 * 1024


def test_a_large_served_body_is_analysed_then_let_go() -> None:
    body = json.dumps(
        {"ciphertext": base64.b64encode(bytes(20 * MiB)).decode(), **ENVELOPE}, separators=(",", ":")
    ).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        content = LOCK if request.url.path == "/v1/nodes/lock" else body
        return httpx.Response(200, headers={"content-type": "application/json"}, content=content)

    with ConfidentialClient("http://hostile.test", "k-123456789", transport=httpx.MockTransport(answer)) as client:
        lock = client.lock("m")
        gc.collect()
        tracemalloc.start()
        try:
            records = [client.send("chat", b'{"model":"m"}', lock=lock, model_name="m") for _ in range(3)]
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert retained < 2 * MiB, f"{retained / MiB:.0f} MiB kept for three {len(body) / MiB:.0f} MiB bodies"
    record = records[0]
    assert len(record.http.body) < RETAINED_BODY_BYTES and record.http.full_bytes == len(body)
    assert record.http.compact is True, "ENC-010's evidence is computed before the body goes"
    assert record.http.summary()["body_bytes"] == len(body)
    message = record.response
    assert message is not None and message.members == ["ciphertext", *ENVELOPE]
    assert message.aead_error is not None and message.ciphertext_bytes == 20 * MiB
    assert message.envelope["ciphertext"].endswith("characters, not kept>")


def test_a_huge_raw_answer_is_kept_as_a_prefix_once_its_error_body_is_judged() -> None:
    """A probe's raw record lives until the run ends; a hostile target that answers every lock-endpoint
    probe with 32 MB would otherwise hold 32 MB per probe (lock-huge-key went past 512 MiB so)."""
    from conformance.records import HttpRecord, analyse_lock, shed_body

    error = json.dumps({"error": {"code": "REQUEST_ERROR", "message": "x" * (2 * RETAINED_BODY_BYTES)}}).encode()
    shed = shed_body(HttpRecord("POST", "/v1/nodes/lock", 400, {"content-type": "application/json"}, error))
    assert shed.shed and len(shed.body) < RETAINED_BODY_BYTES and shed.full_bytes == len(error)
    code, message = shed.error_body() or ("", "")  # judged on the whole body, kept as a prefix
    assert code == "REQUEST_ERROR" and message == "x" * len(message) and len(message) < RETAINED_BODY_BYTES
    small = shed_body(HttpRecord("POST", "/v1/nodes/lock", 400, {}, b'{"error":{"code":"A","message":"b"}}'))
    assert not small.shed and small.error_body() == ("A", "b")
    # A lock reply that is not JSON (or not a lock) is shed too, not only one whose key was parsed.
    junk = analyse_lock(HttpRecord("POST", "/v1/nodes/lock", 200, {}, b"[" * (2 * RETAINED_BODY_BYTES)))
    assert junk.parse_error == "INVALID_JSON" and junk.http.shed and len(junk.http.body) < RETAINED_BODY_BYTES
