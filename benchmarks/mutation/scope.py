"""What is mutated: the strict mock node's own modules whole, and the core functions its requests run.

The mock node does its crypto only through :mod:`conformance.protocol`, so a node-side bug can hide
in the core as well as in ``mock_node``. The core functions listed are the ones a strict node's
request runs through, from the body to the sealed answer: parse and decode the envelope (strict JSON,
strict base64, exact lengths), check the addressed key and agree (``node_exchange``), decrypt, name
the key for the replay cache, seal every answer (``seal_response``, ``seal_chunk`` and the steps they
share), verify the proxy's ``X-Signature`` on the node face and derive its signer's address (R7.6),
and serialise what goes back.

Left out on purpose:

- ``open_request``: the mock does not call it. It runs the same steps itself (``app._open``:
  ``node_exchange``, ``AeadKey.open``, the hash check), because each step has a fault that must be able
  to skip it; those lines are mutated in ``mock_node/app.py``. ``open_request`` is held by the
  known-answer vectors (``conformance vectors check``), not by the catalogue.
- ``b64._diagnose``: it only chooses which reason a refusal names; status and code are the same
  whatever it says, and the wording is free (R10.1).
- ``jsonwire.dumps`` and its fast path: the suite parses every answer with its own strict parser, so
  a serialisation bug shows as an unparsable answer in any check; the fast path only decides *how*
  bytes equal to the slow path's are produced (its equivalents would swamp the triage).
- The wrong-variant helpers that only a fault or a probe selects (``Rekey``, ``to_high_s``,
  ``ecdsa_scalars``, ``with_scalars``, ``off_curve_key``): a strict node never runs them, and
  tests/test_meta_faults.py and tests/test_node_face_schemes.py hold them.

The mutants are made in a scratch copy, and the mutated node runs in its own interpreter: the suite
that judges it always runs the unmutated core, even where the node and the suite share a function.
"""

from __future__ import annotations

WHOLE_FILES: tuple[str, ...] = ("mock_node/app.py", "mock_node/sealing.py", "mock_node/locks.py")

CORE_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "conformance/protocol/envelope.py": (
        "key_id",
        "_exchange",
        "node_exchange",
        "draw_response_nonce",
        "_seal_parts",
        "seal_response",
        "seal_chunk",
    ),
    "conformance/protocol/models.py": (
        "_path",
        "_require_object",
        "_str",
        "_int",
        "_bool",
        "_put_optional",
        "LockRequest.from_json",
        "LockRequest.parse",
        "LockResponse.to_json",
        "LockResponse.serialize",
        "ConfidentialComputeRequest.from_json",
        "ConfidentialComputeRequest.parse",
        "ConfidentialComputeRequest.decode",
        "Usage.from_json",
        "Usage.to_json",
        "_details",
        "ConfidentialComputeResponse.to_json",
        "StreamChunk.to_json",
        "ErrorBody.to_json",
        "ErrorBody.serialize",
    ),
    "conformance/protocol/primitives.py": (
        "canonical_public_key",
        "is_low_order",
        "_require_len",
        "x25519_public_key",
        "x25519_shared_secret",
        "x25519_agree",
        "hkdf_sha256",
        "derive_key",
        "AeadKey",
        "blake2b_256",
    ),
    "conformance/protocol/b64.py": ("b64encode", "b64decode", "_canonical_tail", "b64decode_fixed"),
    "conformance/protocol/jsonwire.py": (
        "_reject_constant",
        "_no_duplicates",
        "_finite_float",
        "loads",
        "_too_wide",
        "_has_lone_surrogate",
        "loads_object",
    ),
    "conformance/protocol/sui.py": (
        "sui_address",
        "SuiSignature.to_bytes",
        "SuiSignature.to_b64",
        "SuiSignature.address",
        "parse_signature_bytes",
        "parse_signature",
        "verify",
        "SuiSigner.sign",
    ),
    "conformance/protocol/sse.py": ("encode_event",),
}


def targets() -> dict[str, tuple[str, ...] | None]:
    """Each file to mutate and its qualnames (None: the whole file)."""
    out: dict[str, tuple[str, ...] | None] = dict.fromkeys(WHOLE_FILES)
    out.update(CORE_FUNCTIONS)
    return out
