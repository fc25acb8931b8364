"""Rebuild every vector file from first principles, deterministically.

Each builder pins its inputs (RFC values, fixed seeds, protocol.md-style end-to-end values), runs
them through :mod:`conformance.protocol`, and asserts the published answers where a standard
publishes one, so a regression in the core cannot silently rewrite a vector. The output is
byte-stable: same code, same bytes, on any machine. Independent libraries (libsodium, pycryptodome,
libsecp256k1) confirm the files in the test suite, not here, so that the generator never depends on
them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from conformance.protocol import (
    AeadKey,
    ConfidentialComputeRequest,
    Exchange,
    FixedBytes,
    ProtocolError,
    Scheme,
    SuiSigner,
    Usage,
    aead_seal,
    b64encode,
    blake2b_256,
    derive_key,
    hkdf_sha256,
    jsonwire,
    low_order_encodings,
    open_request,
    seal_chunk,
    seal_request,
    seal_response,
    to_high_s,
    verify_b64,
    x25519_public_key,
    x25519_shared_secret,
)

from .refs import REFS

SCHEMA_ID = "atoma-conformance-vectors/v1"
FORMAT_VERSION = 1

Doc = dict[str, Any]
Test = dict[str, Any]

# --- fixed inputs ------------------------------------------------------------------------------------

RFC7748_ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_ALICE_PK = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
RFC7748_BOB_SK = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
RFC7748_BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
RFC7748_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

UPSTREAM_KEYSTORE = "AIgaZOcV4LWOsLMY37SfkEalngk2nbUM9S3SDhSe+rHq"  # atoma-node service tests' Ed25519 key
UPSTREAM_ADDRESS = "0xe9068128f7b0955412f8b825cd3bab6e1a5dd49cde8c51a72091481df9bca609"
UPSTREAM_PK_HEX = "6061c0a0b767fe464e818edce3c196dabf5a0b469b99ee80c55eb42257a60e32"
TEST_MESSAGE = b"Test message"
TEST_MESSAGE_HASH_B64 = "C5e8reYTSRI+hjwcD4ZNS3q2tyE9rtrhRyHq5aj9820="
TEST_MESSAGE_SIGNATURE = (
    "APgRgid4ldc9KBrvQ3xJOl9FJbGtB51p5digQX1BsvYYU0ONEUwPlIobL+wJimLMQkxI2Bfxeh6eMDfHZzVunQB"
    "gYcCgt2f+Rk6BjtzjwZbav1oLRpuZ7oDFXrQiV6YOMg=="
)

E2E_SALT = bytes(range(16))
E2E_REQUEST_NONCE = bytes(range(0xA0, 0xAC))
E2E_RESPONSE_NONCE = bytes(range(0xB0, 0xBC))
E2E_STREAM_NONCE = bytes(range(0xC0, 0xCC))
E2E_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
E2E_REQUEST = (
    b'{"model":"meta-llama/Llama-3.3-70B-Instruct","messages":[{"role":"user","content":"Hello!"}],'
    b'"max_tokens":16,"stream":false}'
)
E2E_CIPHERTEXT = (
    "Ghcwn01MugbMblBfajh/0jKcYpMjuyjniNYNf/gTDVtG1saZ/bswO6dt30fnXjo6OkL717zVECTwI8fiwLgCg1RmK3tB3r0shHuwEa7lclTEn"
    "D5NQ93+80Ozck/P3qyVl6RTKiPTTEUiVRMgi6P5Tytrkm8uG4WEjDPsRo3TSmiTPKWpOcZT3fbHO/4="
)
E2E_HASH = "oIk9aF2tAkHAOlG40fE66aDuP7q36EyAgc2AUr8fv1w="
E2E_X_SIGNATURE = (
    "ALb6z1QZcSNIKmQCbPHDQJqkXAFhRCMMYaU9roKpcdMBuTfGu8hcJSxHsstqJmgt9SI0MmyRSskSazjyh86gTw1"
    "gYcCgt2f+Rk6BjtzjwZbav1oLRpuZ7oDFXrQiV6YOMg=="
)
E2E_UPSTREAM_BODY = (
    '{"ciphertext":"' + E2E_CIPHERTEXT + '","stack_small_id":42,"nonce":"oKGio6Slpqeoqaqr",'
    '"salt":"AAECAwQFBgcICQoLDA0ODw==","client_dh_public_key":"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",'
    '"node_dh_public_key":"3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=","plaintext_body_hash":"' + E2E_HASH + '",'
    '"stream":false,"model_name":"meta-llama/Llama-3.3-70B-Instruct","num_compute_units":16}'
)
E2E_RESPONSE = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"meta-llama/Llama-3.3-70B-Instruct",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}'
)
E2E_RESPONSE_HASH = "9M0OL2zEvdfv2VdQuxmlfAbGKIlFYH7wvO+RwvEVb4c="
E2E_CHUNKS = (
    b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}],'
    b'"usage":null}',
    b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}',
)
E2E_CHUNK_HASHES = ("7UuinuqbRwTPDXeSRd03XdS4ADjJAvIjQwApOX1+/CY=", "zLf7dc7Aj6poT5H/4xtOi74REehLlaVxLh4+V0gl93M=")

# The SDK-side vector: built with the official Python SDK's helpers and checked against its
# TypeScript SDK by the research that fixed this protocol's parameters.
SDK_CLIENT_SK = bytes.fromhex("2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40")
SDK_NODE_SK = bytes.fromhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
SDK_SALT = b"\xaa" * 16
SDK_NONCE = b"\xbb" * 12
SDK_PLAINTEXT = (
    b'{"messages":[{"content":"Hi","role":"user"}],"model":"meta-llama/Llama-3.3-70B-Instruct","stream":false}'
)
SDK_KEY = "c8570dad122c0b99066477108ca2e4b593e6faaa8dddb5e9a44bc427b50d90b3"
SDK_HASH = "N6tSsQktZ5uhYBgXSn9VepBlGM0Nl0FPNGSQj6pmcTo="
SDK_CIPHERTEXT = (
    "5CHZH1jaxh8wol1XbL7GzFh5DtVVMWLT8kOJVfZtJbtYnNQmlHkDuXBi/lJYE6eheT26zJGTBwSqQC+9elKC9YzjnPwv23wPwZI4iSoZCej22Ex2"
    "yhbd5dpxeyZDNEyClnKkX+8dz5fDfkCqDI4J+j/vaI9JhbwS"
)


# Deterministic ECDSA test keys: 32-byte secrets derived from a label, so anyone can rebuild them.
def _secret(label: str) -> bytes:
    return hashlib.sha256(b"atoma-conformance test key " + label.encode()).digest()


def _signer(scheme: Scheme, label: str = "node") -> SuiSigner:
    if scheme is Scheme.ED25519 and label == "upstream":
        return SuiSigner.from_keystore(UPSTREAM_KEYSTORE)
    return SuiSigner(scheme, _secret(f"{scheme.label}/{label}"))


# --- helpers -----------------------------------------------------------------------------------------


def _check(condition: bool, what: str) -> None:
    """Fail generation loudly when the core disagrees with a published answer."""
    if not condition:
        raise AssertionError(f"vector generator: core disagrees with the published value for {what}")


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _test(tid: str, comment: str, refs: str | list[str], result: str, flags: list[str], **fields: Any) -> Test:
    spec_refs = REFS[refs] if isinstance(refs, str) else sorted({r for k in refs for r in REFS[k]})
    out: Test = {"id": tid, "comment": comment, "spec_refs": spec_refs, "result": result, "flags": flags}
    out.update(fields)
    return out


def _doc(algorithm: str, header: list[str], notes: dict[str, dict[str, str]], groups: list[dict[str, Any]]) -> Doc:
    ids = [t["id"] for g in groups for t in g["tests"]]
    if len(ids) != len(set(ids)):
        raise AssertionError(f"duplicate vector ids in {algorithm}")
    return {
        "$schema": "./schema.json",
        "schema": SCHEMA_ID,
        "formatVersion": FORMAT_VERSION,
        "algorithm": algorithm,
        "numberOfTests": len(ids),
        "header": header,
        "notes": notes,
        "testGroups": groups,
    }


def _error_code(action: Callable[[], object]) -> str:
    """The stable code of the ProtocolError ``action`` raises; generation fails if it raises none."""
    try:
        action()
    except ProtocolError as exc:
        return exc.code
    raise AssertionError("vector generator: an 'invalid' vector was accepted by the core")


def _note(bug_type: str, description: str, effect: str) -> dict[str, str]:
    return {"bugType": bug_type, "description": description, "effect": effect}


# --- X25519 ------------------------------------------------------------------------------------------


def build_x25519() -> Doc:
    tests: list[Test] = []
    rfc_5_2 = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ]
    for n, (k_hex, u_hex, out) in enumerate(rfc_5_2, 1):
        shared = x25519_shared_secret(bytes.fromhex(k_hex), bytes.fromhex(u_hex))
        _check(shared.hex() == out, f"RFC 7748 5.2 vector {n}")
        high_bit = ["HighBitSet"] if bytes.fromhex(u_hex)[31] & 0x80 else []
        tests.append(
            _test(
                f"x25519-rfc7748-5.2-{n}",
                f"RFC 7748 section 5.2 test vector {n}",
                "x25519",
                "valid",
                high_bit,
                private=k_hex,
                public=u_hex,
                shared=out,
            )
        )
    u_high = bytearray.fromhex(rfc_5_2[0][1])
    u_high[31] |= 0x80
    tests.append(
        _test(
            "x25519-rfc7748-5.2-1-high-bit",
            "RFC 7748 5.2 vector 1 with bit 255 of u set: it MUST be masked",
            "x25519",
            "valid",
            ["HighBitSet"],
            private=rfc_5_2[0][0],
            public=bytes(u_high).hex(),
            shared=rfc_5_2[0][2],
        )
    )
    _check(x25519_public_key(RFC7748_ALICE_SK) == RFC7748_ALICE_PK, "RFC 7748 6.1 Alice public key")
    _check(x25519_public_key(RFC7748_BOB_SK) == RFC7748_BOB_PK, "RFC 7748 6.1 Bob public key")
    for who, sk, pk in (("alice", RFC7748_ALICE_SK, RFC7748_BOB_PK), ("bob", RFC7748_BOB_SK, RFC7748_ALICE_PK)):
        shared = x25519_shared_secret(sk, pk)
        _check(shared == RFC7748_SHARED, f"RFC 7748 6.1 shared secret ({who})")
        tests.append(
            _test(
                f"x25519-rfc7748-6.1-{who}",
                f"RFC 7748 section 6.1 Diffie-Hellman, computed by {who}",
                "x25519",
                "valid",
                [],
                private=sk.hex(),
                public=pk.hex(),
                shared=shared.hex(),
            )
        )
    for n, enc in enumerate(low_order_encodings()):
        u_int = int.from_bytes(enc[:31] + bytes([enc[31] & 0x7F]), "little")
        top = " with bit 255 set" if enc[31] & 0x80 else ""
        tests.append(
            _test(
                f"x25519-low-order-{n:02d}",
                f"low-order point u={u_int if u_int < 2**20 else hex(u_int)}{top}: shared secret is all zeros",
                "x25519_low_order",
                "invalid",
                ["LowOrderPublic", "ZeroSharedSecret"],
                private=RFC7748_ALICE_SK.hex(),
                public=enc.hex(),
                shared=bytes(32).hex(),
            )
        )
    iteration_tests: list[Test] = []
    k = u = (9).to_bytes(32, "little")
    published = {
        1: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
        1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
    }
    for i in range(1, 1001):
        k, u = x25519_shared_secret(k, u), k
        if i in published:
            _check(k.hex() == published[i], f"RFC 7748 5.2 iteration {i}")
            iteration_tests.append(
                _test(
                    f"x25519-rfc7748-5.2-iterated-{i}",
                    f"RFC 7748 5.2 iterated scalar multiplication, {i} iteration(s)",
                    "x25519",
                    "valid",
                    [],
                    iterations=i,
                    result_k=k.hex(),
                )
            )
    return _doc(
        "X25519",
        [
            "X25519 key agreement (RFC 7748) as the protocol uses it: raw 32-byte little-endian u-coordinates.",
            "A conformant party refuses low-order peer keys; 'shared' for those is what a non-checking party computes.",
        ],
        {
            "LowOrderPublic": _note(
                "CONFIDENTIALITY",
                "The public key is a point of order 1, 2, 4 or 8 (or a non-canonical encoding of one).",
                "The shared secret is all zeros whatever the private key, so anyone "
                "can derive the AES key. The upstream node does not check this.",
            ),
            "ZeroSharedSecret": _note(
                "CONFIDENTIALITY",
                "X25519 output is 32 zero bytes (non-contributory).",
                "HKDF then depends only on the public salt.",
            ),
            "HighBitSet": _note(
                "FUNCTIONALITY",
                "Bit 255 of the u-coordinate is set; RFC 7748 requires masking it.",
                "An implementation that does not mask computes a different shared secret.",
            ),
        },
        [
            {"type": "X25519Test", "source": {"name": "RFC 7748 + low-order list"}, "tests": tests},
            {"type": "X25519IterationTest", "source": {"name": "RFC 7748 section 5.2"}, "tests": iteration_tests},
        ],
    )


# --- HKDF --------------------------------------------------------------------------------------------


def build_hkdf() -> Doc:
    rfc: list[Test] = []
    cases = [
        (
            "A.1",
            "0b" * 22,
            "000102030405060708090a0b0c",
            "f0f1f2f3f4f5f6f7f8f9",
            42,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            "A.2",
            bytes(range(0x00, 0x50)).hex(),
            bytes(range(0x60, 0xB0)).hex(),
            bytes(range(0xB0, 0x100)).hex(),
            82,
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b"
            "8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
        (
            "A.3",
            "0b" * 22,
            "",
            "",
            42,
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        ),
    ]
    for name, ikm, salt, info, size, okm in cases:
        out = hkdf_sha256(bytes.fromhex(ikm), bytes.fromhex(salt), bytes.fromhex(info), size)
        _check(out.hex() == okm, f"RFC 5869 {name}")
        rfc.append(
            _test(
                f"hkdf-sha256-rfc5869-{name.lower()}",
                f"RFC 5869 appendix {name}",
                "hkdf",
                "valid",
                ["EmptySalt"] if not salt else [],
                ikm=ikm,
                salt=salt,
                info=info,
                size=size,
                okm=okm,
            )
        )
    protocol: list[Test] = []
    b5 = derive_key(RFC7748_SHARED, E2E_SALT)
    _check(b5.hex() == "193a1658e238ccf07108d772c923f3336a66f156195421b9b3f7cef441f13af7", "end-to-end K")
    sdk_shared = x25519_shared_secret(SDK_CLIENT_SK, x25519_public_key(SDK_NODE_SK))
    sdk_key = derive_key(sdk_shared, SDK_SALT)
    _check(sdk_key.hex() == SDK_KEY, "SDK vector key")
    for tid, comment, ikm_b, salt_b in (
        ("kdf-e2e", "protocol KDF on the RFC 7748 shared secret and salt 00..0f", RFC7748_SHARED, E2E_SALT),
        ("kdf-sdk", "protocol KDF on the official SDK vector (salt 16 x 0xaa)", sdk_shared, SDK_SALT),
    ):
        protocol.append(
            _test(
                tid,
                comment,
                "kdf",
                "valid",
                [],
                ikm=ikm_b.hex(),
                salt=salt_b.hex(),
                info="",
                size=32,
                okm=derive_key(ikm_b, salt_b).hex(),
            )
        )
    wrong = [
        (
            "kdf-wrong-info",
            "HKDF info set to 'atoma' instead of empty",
            ["NonEmptyInfo"],
            hkdf_sha256(RFC7748_SHARED, E2E_SALT, b"atoma", 32),
        ),
        (
            "kdf-wrong-no-salt",
            "salt omitted (HKDF default of 32 zero bytes) instead of the request salt",
            ["SaltOmitted"],
            hkdf_sha256(RFC7748_SHARED, b"", b"", 32),
        ),
        (
            "kdf-wrong-salt-as-ikm",
            "salt and shared secret swapped",
            ["SwappedInputs"],
            hkdf_sha256(E2E_SALT, RFC7748_SHARED, b"", 32),
        ),
        ("kdf-wrong-raw-secret", "the raw X25519 secret used as the AES key with no KDF", ["NoKdf"], RFC7748_SHARED),
    ]
    for tid, comment, flags, okm_b in wrong:
        protocol.append(
            _test(
                tid,
                comment,
                "kdf",
                "invalid",
                flags,
                ikm=RFC7748_SHARED.hex(),
                salt=E2E_SALT.hex(),
                info="",
                size=32,
                okm=okm_b.hex(),
            )
        )
    return _doc(
        "HKDF-SHA256",
        [
            "HKDF-SHA256 (RFC 5869). The protocol KDF is HKDF-SHA256(salt = request salt, IKM = X25519 secret, "
            "info = '', L = 32).",
            "'invalid' protocol vectors hold the key a mis-parameterised implementation derives; "
            "a conformant one never does.",
        ],
        {
            "EmptySalt": _note(
                "EDGE_CASE", "Zero-length salt: HKDF uses HashLen zero bytes.", "None for the protocol."
            ),
            "NonEmptyInfo": _note(
                "INTEROPERABILITY", "info must be empty.", "Every request fails to decrypt at the node."
            ),
            "SaltOmitted": _note(
                "INTEROPERABILITY", "The request salt must be the HKDF salt.", "Every request fails to decrypt."
            ),
            "SwappedInputs": _note("INTEROPERABILITY", "Salt and IKM swapped.", "Every request fails to decrypt."),
            "NoKdf": _note(
                "CONFIDENTIALITY",
                "The shared secret is used directly as the key.",
                "The salt no longer separates keys across requests.",
            ),
        },
        [
            {"type": "HkdfTest", "source": {"name": "RFC 5869 appendix A"}, "tests": rfc},
            {"type": "HkdfTest", "source": {"name": "protocol KDF"}, "tests": protocol},
        ],
    )


# --- AES-256-GCM -------------------------------------------------------------------------------------


def build_aead() -> Doc:
    tests: list[Test] = []
    k15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
    p15 = (
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657"
        "ba637b391aafd255"
    )
    standard = [
        ("13", "00" * 32, "00" * 12, "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
        ("14", "00" * 32, "00" * 12, "00" * 16, "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
        (
            "15",
            k15,
            "cafebabefacedbaddecaf888",
            p15,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
            "bcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c",
        ),
    ]
    for name, key_hex, iv_hex, msg_hex, ct_hex, tag_hex in standard:
        sealed = aead_seal(bytes.fromhex(key_hex), bytes.fromhex(iv_hex), bytes.fromhex(msg_hex))
        _check(sealed.hex() == ct_hex + tag_hex, f"GCM spec test case {name}")
        tests.append(
            _test(
                f"aes-256-gcm-gcmspec-tc{name}",
                f"McGrew-Viega GCM specification test case {name} (no AAD)",
                "aead",
                "valid",
                [],
                key=key_hex,
                iv=iv_hex,
                msg=msg_hex,
                ct=ct_hex,
                tag=tag_hex,
            )
        )
    key = derive_key(RFC7748_SHARED, E2E_SALT)
    sealed = aead_seal(key, E2E_REQUEST_NONCE, E2E_REQUEST)
    _check(b64encode(sealed) == E2E_CIPHERTEXT, "end-to-end request ciphertext")
    base = {"key": key.hex(), "iv": E2E_REQUEST_NONCE.hex(), "msg": E2E_REQUEST.hex()}
    tests.append(
        _test(
            "aes-256-gcm-e2e-request",
            "the end-to-end request plaintext under K",
            "aead",
            "valid",
            [],
            **base,
            ct=sealed[:-16].hex(),
            tag=sealed[-16:].hex(),
        )
    )
    ct, tag = sealed[:-16], sealed[-16:]
    tampered = [
        ("tag-bit-flip", ["ModifiedTag"], ct, _flip(tag, 0), E2E_REQUEST_NONCE),
        ("tag-last-bit-flip", ["ModifiedTag"], ct, _flip(tag, 15, 7), E2E_REQUEST_NONCE),
        ("ct-bit-flip", ["ModifiedCiphertext"], _flip(ct, 0), tag, E2E_REQUEST_NONCE),
        ("ct-truncated", ["ModifiedCiphertext"], ct[:-1], tag, E2E_REQUEST_NONCE),
        ("nonce-bit-flip", ["ModifiedNonce"], ct, tag, _flip(E2E_REQUEST_NONCE, 11)),
        ("tag-truncated-12", ["TruncatedTag"], ct, tag[:12], E2E_REQUEST_NONCE),
        ("tag-zero", ["ModifiedTag"], ct, bytes(16), E2E_REQUEST_NONCE),
    ]
    for name, flags, c, t, iv in tampered:
        tests.append(
            _test(
                f"aes-256-gcm-e2e-{name}",
                f"end-to-end request with {name.replace('-', ' ')}",
                "aead_tamper",
                "invalid",
                flags,
                key=key.hex(),
                iv=iv.hex(),
                msg=E2E_REQUEST.hex(),
                ct=c.hex(),
                tag=t.hex(),
            )
        )
    info_key = hkdf_sha256(RFC7748_SHARED, E2E_SALT, b"response", 32)
    wrong_key_ct = aead_seal(info_key, E2E_REQUEST_NONCE, E2E_REQUEST)
    tests.append(
        _test(
            "aes-256-gcm-e2e-wrong-key",
            "sealed under a key derived with HKDF info 'response'",
            "aead_tamper",
            "invalid",
            ["WrongKey"],
            **base,
            ct=wrong_key_ct[:-16].hex(),
            tag=wrong_key_ct[-16:].hex(),
        )
    )
    return _doc(
        "AES-256-GCM",
        [
            "AES-256-GCM with a 12-byte nonce, the 16-byte tag appended to the ciphertext, and empty AAD.",
            "ct and tag are separate here for readability; on the wire the base64 field is ct || tag.",
        ],
        {
            "ModifiedTag": _note(
                "AUTH_BYPASS", "The tag was altered.", "Accepting it lets an attacker forge messages."
            ),
            "ModifiedCiphertext": _note(
                "AUTH_BYPASS", "The ciphertext was altered.", "Accepting it releases forged plaintext."
            ),
            "ModifiedNonce": _note("AUTH_BYPASS", "The nonce was altered.", "Decryption must fail."),
            "TruncatedTag": _note(
                "AUTH_BYPASS",
                "The tag is shorter than 16 bytes.",
                "Short tags make forgery cheaper; the protocol fixes 16 bytes.",
            ),
            "WrongKey": _note(
                "FUNCTIONALITY",
                "Sealed under a key derived with non-empty HKDF info.",
                "A party using the wrong KDF parameters cannot be read by a conformant peer.",
            ),
        },
        [{"type": "AeadTest", "source": {"name": "GCM specification + protocol"}, "tests": tests}],
    )


# --- BLAKE2b-256 -------------------------------------------------------------------------------------


def build_blake2b() -> Doc:
    tests: list[Test] = []
    published = {
        b"": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
        b"abc": "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
        TEST_MESSAGE: "0b97bcade61349123e863c1c0f864d4b7ab6b7213daedae14721eae5a8fdf36d",
    }
    for label, msg in (("empty", b""), ("abc", b"abc"), ("test-message", TEST_MESSAGE)):
        digest = blake2b_256(msg)
        _check(digest.hex() == published[msg], f"BLAKE2b-256 of {label}")
        tests.append(
            _test(
                f"blake2b-256-{label}",
                f"BLAKE2b-256 of {msg!r}",
                "blake2b",
                "valid",
                [],
                msg=msg.hex(),
                digest=digest.hex(),
            )
        )
    for n in (1, 127, 128, 129, 255, 1024):
        msg = bytes(i & 0xFF for i in range(n))
        tests.append(
            _test(
                f"blake2b-256-bytes-{n}",
                f"BLAKE2b-256 of bytes 0,1,2,... ({n} bytes; block boundary cases)",
                "blake2b",
                "valid",
                [],
                msg=msg.hex(),
                digest=blake2b_256(msg).hex(),
            )
        )
    msg = TEST_MESSAGE
    wrong = [
        (
            "truncated-512",
            ["TruncatedBlake2b512"],
            hashlib.blake2b(msg).digest()[:32],
            "BLAKE2b-512 truncated to 32 bytes",
        ),
        ("sha256", ["Sha256Instead"], hashlib.sha256(msg).digest(), "SHA-256 instead of BLAKE2b-256"),
        ("blake2s", ["Blake2sInstead"], hashlib.blake2s(msg).digest(), "BLAKE2s-256 instead of BLAKE2b-256"),
        ("keyed", ["KeyedBlake2b"], hashlib.blake2b(msg, digest_size=32, key=b"atoma").digest(), "keyed BLAKE2b-256"),
    ]
    for name, flags, digest, comment in wrong:
        tests.append(
            _test(
                f"blake2b-256-wrong-{name}",
                f"{comment}: never the protocol hash",
                "blake2b",
                "invalid",
                flags,
                msg=msg.hex(),
                digest=digest.hex(),
            )
        )
    return _doc(
        "BLAKE2b-256",
        ["H(x) = BLAKE2b with digest length 32 (a parameter of the hash, not a truncation), unkeyed."],
        {
            "TruncatedBlake2b512": _note(
                "INTEROPERABILITY",
                "BLAKE2b-512 truncated to 32 bytes differs from BLAKE2b-256.",
                "Every hash check fails against the node.",
            ),
            "Sha256Instead": _note(
                "INTEROPERABILITY", "SHA-256 was used (as stale upstream comments say).", "Every hash check fails."
            ),
            "Blake2sInstead": _note("INTEROPERABILITY", "BLAKE2s was used.", "Every hash check fails."),
            "KeyedBlake2b": _note("INTEROPERABILITY", "A key was supplied to BLAKE2b.", "Every hash check fails."),
        },
        [{"type": "HashTest", "source": {"name": "RFC 7693 + protocol"}, "tests": tests}],
    )


# --- base64 ------------------------------------------------------------------------------------------


def build_base64() -> Doc:
    valid: list[Test] = []
    for n in range(0, 7):
        data = bytes(range(0xF0, 0xF0 + n))
        valid.append(
            _test(
                f"b64-valid-len-{n}",
                f"canonical encoding of {n} byte(s)",
                "b64",
                "valid",
                [],
                encoded=b64encode(data),
                decoded=data.hex(),
                error=None,
            )
        )
    valid.append(
        _test(
            "b64-valid-plus-slash",
            "standard alphabet '+' and '/'",
            "b64",
            "valid",
            [],
            encoded="+/+/",
            decoded=base64.b64decode("+/+/").hex(),
            error=None,
        )
    )
    invalid_cases = [
        ("urlsafe", "-_-_", "BASE64_URLSAFE_ALPHABET", ["UrlSafeAlphabet"], "URL-safe alphabet"),
        ("urlsafe-mixed", "AAEC-w==", "BASE64_URLSAFE_ALPHABET", ["UrlSafeAlphabet"], "one URL-safe character"),
        ("missing-padding-1", "AAECAwQ", "BASE64_MISSING_PADDING", ["MissingPadding"], "one '=' missing"),
        ("missing-padding-2", "AAECAw", "BASE64_MISSING_PADDING", ["MissingPadding"], "two '=' missing"),
        ("whitespace-space", "AAEC Aw==", "BASE64_WHITESPACE", ["Whitespace"], "an inner space"),
        ("whitespace-newline", "AAECAw==\n", "BASE64_WHITESPACE", ["Whitespace"], "a trailing newline"),
        ("whitespace-crlf", "AAEC\r\nAw==", "BASE64_WHITESPACE", ["Whitespace"], "a CRLF line break"),
        (
            "trailing-bits-1",
            "AAECAx==",
            "BASE64_NONCANONICAL_TRAILING_BITS",
            ["NonCanonicalTrailingBits"],
            "non-zero trailing bits before '=='",
        ),
        (
            "trailing-bits-2",
            "AAECAwR=",
            "BASE64_NONCANONICAL_TRAILING_BITS",
            ["NonCanonicalTrailingBits"],
            "non-zero trailing bits before '='",
        ),
        ("padding-inside", "AA==AAAA", "BASE64_BAD_PADDING", ["BadPadding"], "'=' before the end"),
        ("padding-extra", "AAECAw===", "BASE64_BAD_PADDING", ["BadPadding"], "three '='"),
        ("padding-on-full-block", "AAEC=", "BASE64_BAD_PADDING", ["BadPadding"], "'=' after a complete quantum"),
        ("length-mod-4-is-1", "AAECA", "BASE64_INVALID_LENGTH", ["InvalidLength"], "5 data characters"),
        ("invalid-character", "AA*C", "BASE64_INVALID_CHARACTER", ["InvalidCharacter"], "'*' is not in the alphabet"),
        ("non-ascii", "AAé=", "BASE64_INVALID_CHARACTER", ["InvalidCharacter"], "a non-ASCII character"),
    ]
    invalid = [
        _test(
            f"b64-invalid-{name}", f"refused: {comment}", "b64", "invalid", flags, encoded=enc, decoded=None, error=code
        )
        for name, enc, code, flags, comment in invalid_cases
    ]
    lengths: list[Test] = []
    fields = [
        ("nonce", 12),
        ("salt", 16),
        ("client_dh_public_key", 32),
        ("node_dh_public_key", 32),
        ("plaintext_body_hash", 32),
        ("public_key", 32),
    ]
    for field_name, length in fields:
        for n in (length - 1, length, length + 1):
            data = bytes((i * 7 + 1) & 0xFF for i in range(n))
            ok = n == length
            flags = (
                []
                if ok
                else (
                    ["PlaintextHashNot32Bytes"]
                    if field_name == "plaintext_body_hash" and n > length
                    else ["WrongLength"]
                )
            )
            refs = f"len_{field_name}"
            lengths.append(
                _test(
                    f"length-{field_name.replace('_', '-')}-{n}",
                    f"{field_name} decoding to {n} bytes (exactly {length} required)",
                    refs,
                    "valid" if ok else "invalid",
                    flags,
                    field=field_name,
                    encoded=b64encode(data),
                    length=length,
                    decoded=data.hex() if ok else None,
                    error=None if ok else "WRONG_LENGTH",
                )
            )
    return _doc(
        "base64",
        [
            "Strict base64: RFC 4648 section 4 standard alphabet with canonical '=' padding and zero trailing bits.",
            "'error' is the stable error code the reference core raises for each refusal.",
        ],
        {
            "UrlSafeAlphabet": _note(
                "INTEROPERABILITY", "'-' or '_' (RFC 4648 section 5) used.", "The node refuses the field."
            ),
            "MissingPadding": _note("INTEROPERABILITY", "'=' padding omitted.", "The node refuses the field."),
            "Whitespace": _note(
                "INTEROPERABILITY", "Whitespace inside or around the value.", "The node refuses the field."
            ),
            "NonCanonicalTrailingBits": _note(
                "MALLEABILITY",
                "Unused bits of the last character are not zero.",
                "Two strings decode to the same bytes; the node refuses them.",
            ),
            "BadPadding": _note(
                "INTEROPERABILITY", "Padding in the wrong place or amount.", "The node refuses the field."
            ),
            "InvalidLength": _note(
                "INTEROPERABILITY", "A data length no byte string encodes to.", "The node refuses the field."
            ),
            "InvalidCharacter": _note(
                "INTEROPERABILITY", "A character outside the alphabet.", "The node refuses the field."
            ),
            "WrongLength": _note(
                "INTEROPERABILITY", "Valid base64 of the wrong number of bytes.", "The field must be refused."
            ),
            "PlaintextHashNot32Bytes": _note(
                "SIGNING_ORACLE",
                "A plaintext_body_hash that is not 32 bytes.",
                "The upstream proxy signs it anyway with its wallet key (a raw-digest signing oracle).",
            ),
        },
        [
            {"type": "Base64Test", "source": {"name": "RFC 4648"}, "tests": valid + invalid},
            {"type": "FieldLengthTest", "source": {"name": "protocol field lengths"}, "tests": lengths},
        ],
    )


# --- Sui signatures ----------------------------------------------------------------------------------


def build_sui() -> Doc:
    tests: list[Test] = []
    messages = {"test-message": blake2b_256(TEST_MESSAGE), "e2e-request": blake2b_256(E2E_REQUEST)}
    upstream = _signer(Scheme.ED25519, "upstream")
    _check(upstream.public_key.hex() == UPSTREAM_PK_HEX and upstream.address == UPSTREAM_ADDRESS, "upstream keystore")
    _check(upstream.sign(messages["test-message"]).to_b64() == TEST_MESSAGE_SIGNATURE, "upstream X-Signature")
    _check(upstream.sign(messages["e2e-request"]).to_b64() == E2E_X_SIGNATURE, "end-to-end X-Signature")
    signers = [upstream, _signer(Scheme.SECP256K1), _signer(Scheme.SECP256R1)]
    other = {s.scheme: _signer(s.scheme, "other") for s in signers}
    for signer in signers:
        label = "upstream-ed25519" if signer is upstream else signer.scheme.label
        refs = ["sig_format", "sig_ecdsa"] if signer.scheme is not Scheme.ED25519 else "sig_format"
        for mname, msg in messages.items():
            sig = signer.sign(msg)
            tests.append(
                _test(
                    f"sui-{label}-valid-{mname}",
                    f"{signer.scheme.label} signature over H({mname})",
                    refs,
                    "valid",
                    [],
                    scheme=signer.scheme.label,
                    msg=msg.hex(),
                    signature=sig.to_b64(),
                    address=signer.address,
                    error=None,
                )
            )
        msg = messages["test-message"]
        sig = signer.sign(msg)
        raw = sig.to_bytes()
        wrong_flag = bytes([(raw[0] + 1) % 3]) + raw[1:]
        bad = [
            ("wrong-flag", ["WrongFlag"], wrong_flag),
            ("unknown-flag", ["UnknownFlag"], b"\x03" + raw[1:]),
            ("truncated", ["Truncated"], raw[:-1]),
            ("extended", ["Extended"], raw + b"\x00"),
            ("wrong-key", ["WrongKey"], raw[:65] + other[signer.scheme].public_key),
            ("modified-msg", ["ModifiedMessage"], raw),
            ("modified-sig", ["ModifiedSignature"], raw[:1] + _flip(raw[1:65], 10) + raw[65:]),
        ]
        if signer.scheme is not Scheme.ED25519:
            bad.append(("high-s", ["HighS"], to_high_s(sig).to_bytes()))
        for name, flags, blob in bad:
            signed_msg = _flip(msg, 0) if name == "modified-msg" else msg
            refs_bad: str | list[str] = "sig_high_s" if name == "high-s" else "sig_format"
            text = base64.b64encode(blob).decode()
            code = _error_code(partial(verify_b64, text, signed_msg, expected_address=signer.address))
            tests.append(
                _test(
                    f"sui-{label}-invalid-{name}",
                    f"{signer.scheme.label}: {name.replace('-', ' ')}",
                    refs_bad,
                    "invalid",
                    flags,
                    scheme=signer.scheme.label,
                    msg=signed_msg.hex(),
                    signature=text,
                    address=signer.address,
                    error=code,
                )
            )
    address_tests = [
        _test(
            f"sui-address-{s.scheme.label}{'-upstream' if s is upstream else ''}",
            f"Sui address of a {s.scheme.label} key",
            "address",
            "valid",
            [],
            scheme=s.scheme.label,
            public_key=s.public_key.hex(),
            address=s.address,
        )
        for s in signers
    ]
    doc = _doc(
        "Sui signatures",
        [
            "Sui serialized signatures flag || sig || pubkey over the 32 raw bytes of a BLAKE2b-256 hash "
            "(sign_hashed).",
            "Ed25519 signs the 32 bytes; Secp256k1/Secp256r1 sign SHA-256 of them (RFC 6979, low-s).",
            "Secret keys of the non-upstream signers are SHA-256('atoma-conformance test key <scheme>/<label>').",
        ],
        {
            "WrongFlag": _note("SIGNATURE_MALLEABILITY", "The scheme flag names another scheme.", "Must not verify."),
            "UnknownFlag": _note("SIGNATURE_MALLEABILITY", "A flag other than 0x00, 0x01, 0x02.", "Must be refused."),
            "Truncated": _note("SIGNATURE_MALLEABILITY", "One byte short.", "Must be refused."),
            "Extended": _note("SIGNATURE_MALLEABILITY", "One byte too many.", "Must be refused."),
            "WrongKey": _note("AUTH_BYPASS", "The embedded public key is another key's.", "Must not verify."),
            "ModifiedMessage": _note(
                "AUTH_BYPASS", "The signed hash differs from the one presented.", "Must not verify."
            ),
            "ModifiedSignature": _note("AUTH_BYPASS", "A bit of the signature is flipped.", "Must not verify."),
            "HighS": _note(
                "SIGNATURE_MALLEABILITY",
                "ECDSA s > n/2: the malleable twin of a valid signature.",
                "Sui verifiers refuse it; accepting it allows two encodings of one signature.",
            ),
        },
        [
            {"type": "SuiSignatureTest", "source": {"name": "Sui sign_hashed"}, "tests": tests},
            {"type": "SuiAddressTest", "source": {"name": "Sui address derivation"}, "tests": address_tests},
        ],
    )
    return doc


# --- envelopes ---------------------------------------------------------------------------------------


def _e2e_request() -> tuple[ConfidentialComputeRequest, Exchange]:
    sealed = seal_request(
        E2E_REQUEST,
        node_public_key=RFC7748_BOB_PK,
        model_name=E2E_MODEL,
        stack_small_id=42,
        stream=False,
        num_compute_units=16,
        rng=FixedBytes(RFC7748_ALICE_SK, E2E_SALT, E2E_REQUEST_NONCE),
    )
    _check(
        sealed.request.ciphertext == E2E_CIPHERTEXT and sealed.request.plaintext_body_hash == E2E_HASH,
        "end-to-end request",
    )
    return sealed.request, sealed.exchange


def _exchange_inputs(client_sk: bytes, node_sk: bytes, salt: bytes, nonce: bytes) -> dict[str, str]:
    return {
        "client_private": client_sk.hex(),
        "node_private": node_sk.hex(),
        "salt": salt.hex(),
        "request_nonce": nonce.hex(),
    }


def _replace(body: dict[str, Any], **changes: Any) -> str:
    out = dict(body)
    out.update(changes)
    return jsonwire.dumps(out).decode()


def build_envelopes() -> Doc:
    request, exchange = _e2e_request()
    node_pk_b64 = b64encode(RFC7748_BOB_PK)
    ex = _exchange_inputs(RFC7748_ALICE_SK, RFC7748_BOB_SK, E2E_SALT, E2E_REQUEST_NONCE)
    req_tests: list[Test] = [
        _test(
            "envelope-request-e2e",
            "the end-to-end request as the reference client serializes it (alphabetical keys)",
            ["request", "request_hash"],
            "valid",
            [],
            **ex,
            plaintext=E2E_REQUEST.hex(),
            body=request.serialize().decode(),
            key=derive_key(RFC7748_SHARED, E2E_SALT).hex(),
            error=None,
        ),
        _test(
            "envelope-request-e2e-upstream-order",
            "the same request with the upstream struct's key order",
            ["request", "request_hash"],
            "valid",
            ["KeyOrder"],
            **ex,
            plaintext=E2E_REQUEST.hex(),
            body=E2E_UPSTREAM_BODY,
            key=derive_key(RFC7748_SHARED, E2E_SALT).hex(),
            error=None,
        ),
    ]
    sdk = seal_request(
        SDK_PLAINTEXT,
        node_public_key=x25519_public_key(SDK_NODE_SK),
        model_name=E2E_MODEL,
        stack_small_id=1,
        stream=False,
        rng=FixedBytes(SDK_CLIENT_SK, SDK_SALT, SDK_NONCE),
    )
    _check(sdk.request.ciphertext == SDK_CIPHERTEXT and sdk.request.plaintext_body_hash == SDK_HASH, "SDK vector")
    req_tests.append(
        _test(
            "envelope-request-sdk",
            "a request as the official Python SDK builds it",
            ["request", "request_hash"],
            "valid",
            [],
            **_exchange_inputs(SDK_CLIENT_SK, SDK_NODE_SK, SDK_SALT, SDK_NONCE),
            plaintext=SDK_PLAINTEXT.hex(),
            body=sdk.request.serialize().decode(),
            key=SDK_KEY,
            error=None,
        )
    )
    base = request.to_json()
    ct = base64.b64decode(request.ciphertext)
    invalid = [
        (
            "wrong-hash",
            ["WrongPlaintextHash"],
            "request_hash",
            {"plaintext_body_hash": b64encode(blake2b_256(b"different data"))},
            "HASH_MISMATCH",
        ),
        (
            "hash-of-reserialized-json",
            ["HashOverReserializedJson"],
            "request_hash",
            {"plaintext_body_hash": b64encode(blake2b_256(json.dumps(json.loads(E2E_REQUEST)).encode()))},
            "HASH_MISMATCH",
        ),
        (
            "tampered-ciphertext",
            ["ModifiedCiphertext"],
            "aead_tamper",
            {"ciphertext": b64encode(_flip(ct, 3))},
            "AEAD_AUTHENTICATION_FAILED",
        ),
        (
            "tampered-tag",
            ["ModifiedTag"],
            "aead_tamper",
            {"ciphertext": b64encode(_flip(ct, len(ct) - 1))},
            "AEAD_AUTHENTICATION_FAILED",
        ),
        (
            "tampered-nonce",
            ["ModifiedNonce"],
            "aead_tamper",
            {"nonce": b64encode(_flip(E2E_REQUEST_NONCE, 0))},
            "AEAD_AUTHENTICATION_FAILED",
        ),
        (
            "tampered-salt",
            ["ModifiedSalt"],
            "aead_tamper",
            {"salt": b64encode(_flip(E2E_SALT, 0))},
            "AEAD_AUTHENTICATION_FAILED",
        ),
        (
            "wrong-node-key",
            ["WrongNodeKey"],
            "request",
            {"node_dh_public_key": b64encode(RFC7748_ALICE_PK)},
            "NODE_KEY_MISMATCH",
        ),
        (
            "low-order-client-key",
            ["LowOrderPublic"],
            "x25519_low_order",
            {"client_dh_public_key": b64encode(bytes(32))},
            "LOW_ORDER_POINT",
        ),
        (
            "hash-33-bytes",
            ["PlaintextHashNot32Bytes"],
            "len_plaintext_body_hash",
            {"plaintext_body_hash": b64encode(blake2b_256(E2E_REQUEST) + b"\x00")},
            "WRONG_LENGTH",
        ),
        (
            "urlsafe-ciphertext",
            ["UrlSafeAlphabet"],
            "b64",
            {"ciphertext": base64.urlsafe_b64encode(ct).decode()},
            "BASE64_URLSAFE_ALPHABET",
        ),
        (
            "unpadded-salt",
            ["MissingPadding"],
            "b64",
            {"salt": b64encode(E2E_SALT).rstrip("=")},
            "BASE64_MISSING_PADDING",
        ),
    ]
    for name, flags, refs, changes, code in invalid:
        req_tests.append(
            _test(
                f"envelope-request-invalid-{name}",
                f"refused: {name.replace('-', ' ')}",
                refs,
                "invalid",
                flags,
                **ex,
                plaintext=E2E_REQUEST.hex(),
                body=_replace(base, **changes),
                key=None,
                error=code,
            )
        )
    # Low-order client key, as the upstream node treats it: the all-zero secret decrypts the request.
    zero_key = derive_key(bytes(32), E2E_SALT)
    zero_body = _replace(
        base,
        client_dh_public_key=b64encode(bytes(32)),
        ciphertext=b64encode(AeadKey(zero_key).seal(E2E_REQUEST_NONCE, E2E_REQUEST)),
    )
    req_tests.append(
        _test(
            "envelope-request-invalid-low-order-decryptable",
            "low-order client key with the request sealed under HKDF(salt, 32 zero bytes): any observer "
            "can decrypt it; a conformant node refuses it",
            "x25519_low_order",
            "invalid",
            ["LowOrderPublic", "ZeroSharedSecret"],
            **ex,
            plaintext=E2E_REQUEST.hex(),
            body=zero_body,
            key=zero_key.hex(),
            error="LOW_ORDER_POINT",
        )
    )

    signer = _signer(Scheme.ED25519, "upstream")
    usage = Usage.from_json(jsonwire.loads(E2E_RESPONSE)["usage"])
    response = seal_response(E2E_RESPONSE, exchange, signer, usage=usage, nonce=E2E_RESPONSE_NONCE)
    _check(response.response_hash == E2E_RESPONSE_HASH, "end-to-end response hash")
    resp_base = response.to_json()
    resp_fields = {**ex, "signer_address": signer.address}
    resp_tests: list[Test] = [
        _test(
            "envelope-response-e2e",
            "the end-to-end non-streaming response, keys in upstream order",
            ["response", "usage"],
            "valid",
            [],
            **resp_fields,
            plaintext=E2E_RESPONSE.hex(),
            body=response.serialize().decode(),
            error=None,
        ),
    ]
    for scheme in (Scheme.SECP256K1, Scheme.SECP256R1):
        s = _signer(scheme)
        r = seal_response(E2E_RESPONSE, exchange, s, usage=usage, nonce=E2E_RESPONSE_NONCE)
        resp_tests.append(
            _test(
                f"envelope-response-e2e-{scheme.label}",
                f"the same response signed with {scheme.label}",
                ["response", "sig_ecdsa"],
                "valid",
                [],
                **{**ex, "signer_address": s.address},
                plaintext=E2E_RESPONSE.hex(),
                body=r.serialize().decode(),
                error=None,
            )
        )
    echo = seal_response(E2E_RESPONSE, exchange, signer, usage=usage, nonce=E2E_REQUEST_NONCE)
    other_signer = _signer(Scheme.ED25519, "other")
    forged_usage = dict(usage.to_json(), completion_tokens=1, total_tokens=13)
    bad_resp = [
        ("echoed-request-nonce", ["EchoedRequestNonce"], "response_nonce", echo.to_json(), "NONCE_REUSE"),
        (
            "wrong-response-hash",
            ["WrongResponseHash"],
            "response",
            dict(resp_base, response_hash=b64encode(blake2b_256(b"x"))),
            "HASH_MISMATCH",
        ),
        (
            "sha256-response-hash",
            ["Sha256Instead"],
            "response",
            dict(resp_base, response_hash=b64encode(hashlib.sha256(E2E_RESPONSE).digest())),
            "HASH_MISMATCH",
        ),
        (
            "wrong-signer",
            ["WrongSigner"],
            "signer",
            dict(resp_base, signature=other_signer.sign(blake2b_256(E2E_RESPONSE)).to_b64()),
            "SIGNATURE_WRONG_SIGNER",
        ),
        (
            "signature-over-ciphertext",
            ["SignatureOverWrongBytes"],
            "sig_format",
            dict(resp_base, signature=signer.sign(blake2b_256(base64.b64decode(response.ciphertext))).to_b64()),
            "SIGNATURE_VERIFICATION_FAILED",
        ),
        ("missing-signature", ["MissingSignature"], "response", dict(resp_base, signature=None), "MISSING_FIELD"),
        ("usage-mismatch", ["UsageMismatch"], "usage", dict(resp_base, usage=forged_usage), "USAGE_MISMATCH"),
        (
            "tampered-tag",
            ["ModifiedTag"],
            "aead_tamper",
            dict(resp_base, ciphertext=b64encode(_flip(base64.b64decode(response.ciphertext), -1))),
            "AEAD_AUTHENTICATION_FAILED",
        ),
    ]
    for name, flags, refs, body, code in bad_resp:
        resp_tests.append(
            _test(
                f"envelope-response-invalid-{name}",
                f"refused by a verifying client: {name.replace('-', ' ')}",
                refs,
                "invalid",
                flags,
                **resp_fields,
                plaintext=E2E_RESPONSE.hex(),
                body=jsonwire.dumps(body).decode(),
                error=code,
            )
        )

    stream_tests: list[Test] = []
    chunk_usage = Usage.from_json(jsonwire.loads(E2E_CHUNKS[1])["usage"])
    for name, nonces, result, flags, refs in (
        ("upstream-nonce-reuse", [E2E_STREAM_NONCE, E2E_STREAM_NONCE], "invalid", ["StreamNonceReuse"], "stream_nonce"),
        ("distinct-nonces", [E2E_STREAM_NONCE, _flip(E2E_STREAM_NONCE, 11)], "valid", [], "stream"),
    ):
        events = []
        for i, (pt, nonce) in enumerate(zip(E2E_CHUNKS, nonces, strict=True)):
            chunk = seal_chunk(pt, exchange, signer, usage=chunk_usage if i == 1 else None, nonce=nonce)
            _check(chunk.response_hash == E2E_CHUNK_HASHES[i], f"stream chunk {i} hash")
            events.append(chunk.sse_event().decode())
        stream_tests.append(
            _test(
                f"envelope-stream-{name}",
                "two-chunk chat stream "
                + (
                    "with ONE nonce for every chunk, exactly as the upstream node does; the keystream is reused"
                    if result == "invalid"
                    else "with a fresh nonce per chunk, as a conformant node does"
                ),
                refs,
                result,
                flags,
                **resp_fields,
                chunk_plaintexts=[c.hex() for c in E2E_CHUNKS],
                events=events,
                error="NONCE_REUSE" if result == "invalid" else None,
            )
        )

    keystore_tests = [
        _test(
            "keystore-upstream-ed25519",
            "the atoma-node service tests' keystore entry and its X-Signature over H('Test message')",
            ["address", "sig_format"],
            "valid",
            [],
            keystore=UPSTREAM_KEYSTORE,
            public_key=UPSTREAM_PK_HEX,
            address=UPSTREAM_ADDRESS,
            msg=TEST_MESSAGE.hex(),
            msg_hash=TEST_MESSAGE_HASH_B64,
            signature=TEST_MESSAGE_SIGNATURE,
        ),
        _test(
            "keystore-upstream-ed25519-e2e",
            "the same key's X-Signature over the end-to-end plaintext_body_hash",
            ["address", "sig_format"],
            "valid",
            [],
            keystore=UPSTREAM_KEYSTORE,
            public_key=UPSTREAM_PK_HEX,
            address=UPSTREAM_ADDRESS,
            msg=E2E_REQUEST.hex(),
            msg_hash=E2E_HASH,
            signature=E2E_X_SIGNATURE,
        ),
    ]
    _check(open_request(request, RFC7748_BOB_SK).plaintext == E2E_REQUEST, "end-to-end open")
    _ = node_pk_b64
    return _doc(
        "Envelopes",
        [
            "Whole messages: request bodies, non-streaming response bodies and SSE streams, byte for byte.",
            "Exchange inputs are hex; 'body' is the exact JSON text on the wire; 'events' are exact SSE event texts.",
            "Response and stream vectors reuse the request exchange (same K), as the protocol does.",
        ],
        {
            "KeyOrder": _note("INTEROPERABILITY", "Body keys in another order.", "Any key order must be accepted."),
            "WrongPlaintextHash": _note(
                "INTEGRITY", "plaintext_body_hash does not cover the plaintext.", "Must be refused."
            ),
            "HashOverReserializedJson": _note(
                "INTEROPERABILITY",
                "The hash covers other bytes than those encrypted.",
                "Hashes cover raw bytes; must be refused.",
            ),
            "ModifiedCiphertext": _note("AUTH_BYPASS", "Ciphertext altered.", "Must be refused."),
            "ModifiedTag": _note("AUTH_BYPASS", "Tag altered.", "Must be refused."),
            "ModifiedNonce": _note("AUTH_BYPASS", "Nonce altered.", "Must be refused."),
            "ModifiedSalt": _note("AUTH_BYPASS", "Salt altered: another key is derived.", "Must be refused."),
            "WrongNodeKey": _note("FUNCTIONALITY", "node_dh_public_key is not the node's key.", "Must be refused."),
            "LowOrderPublic": _note(
                "CONFIDENTIALITY", "Low-order client key.", "Anyone can derive K; must be refused."
            ),
            "ZeroSharedSecret": _note(
                "CONFIDENTIALITY", "All-zero X25519 output.", "K depends only on the public salt."
            ),
            "PlaintextHashNot32Bytes": _note(
                "SIGNING_ORACLE", "33-byte plaintext_body_hash.", "Must be refused, never signed."
            ),
            "UrlSafeAlphabet": _note("INTEROPERABILITY", "URL-safe base64.", "Must be refused."),
            "MissingPadding": _note("INTEROPERABILITY", "Unpadded base64.", "Must be refused."),
            "EchoedRequestNonce": _note(
                "CONFIDENTIALITY",
                "The response reuses the request nonce under the same key.",
                "Keystream reuse across directions.",
            ),
            "WrongResponseHash": _note("INTEGRITY", "response_hash does not cover the plaintext.", "Must be refused."),
            "Sha256Instead": _note("INTEROPERABILITY", "SHA-256 instead of BLAKE2b-256.", "Must be refused."),
            "WrongSigner": _note("AUTH_BYPASS", "Valid signature by a key other than the node's.", "Must be refused."),
            "SignatureOverWrongBytes": _note("AUTH_BYPASS", "Signature over the ciphertext hash.", "Must be refused."),
            "MissingSignature": _note("AUTH_BYPASS", "No signature.", "Must be refused."),
            "UsageMismatch": _note("BILLING", "Clear usage differs from the encrypted usage.", "Must be refused."),
            "StreamNonceReuse": _note(
                "CONFIDENTIALITY",
                "Every chunk of a stream uses the same (K, nonce).",
                "ct_i xor ct_j = pt_i xor pt_j, and GCM tags become forgeable.",
            ),
        },
        [
            {"type": "KeystoreTest", "source": {"name": "atoma-node service tests"}, "tests": keystore_tests},
            {"type": "RequestEnvelopeTest", "source": {"name": "protocol"}, "tests": req_tests},
            {"type": "ResponseEnvelopeTest", "source": {"name": "protocol"}, "tests": resp_tests},
            {"type": "StreamEnvelopeTest", "source": {"name": "protocol"}, "tests": stream_tests},
        ],
    )


# --- JSON hashing ------------------------------------------------------------------------------------


def build_json_hashing() -> Doc:
    logical = {
        "messages": [{"content": "Héllo / ünïcode", "role": "user"}],
        "model": E2E_MODEL,
        "stream": False,
        "temperature": 1.0,
    }
    forms = {
        "python-sdk": json.dumps(logical, separators=(",", ":"), ensure_ascii=False),
        "typescript-sdk": '{"messages":[{"content":"Héllo / ünïcode","role":"user"}],"model":"'
        + E2E_MODEL
        + '","stream":false,"temperature":1}',
        "json-dumps-default": json.dumps(logical),
        "ascii-escaped": json.dumps(logical, separators=(",", ":")),
        "escaped-slash": json.dumps(logical, separators=(",", ":"), ensure_ascii=False).replace("/ ", "\\/ "),
        "reordered-keys": json.dumps(dict(reversed(list(logical.items()))), separators=(",", ":"), ensure_ascii=False),
        "trailing-newline": json.dumps(logical, separators=(",", ":"), ensure_ascii=False) + "\n",
        "pretty-printed": json.dumps(logical, indent=2, ensure_ascii=False),
    }
    hashes = {name: b64encode(blake2b_256(text.encode())) for name, text in forms.items()}
    if len(set(hashes.values())) != len(hashes):
        raise AssertionError("two serializations hash alike; the vector set would prove nothing")
    tests: list[Test] = []
    for name, text in forms.items():
        tests.append(
            _test(
                f"json-hash-{name}",
                f"the hash of this exact serialization ({name})",
                "json_hash",
                "valid",
                [],
                logical=logical,
                serialization=text,
                hash=hashes[name],
            )
        )
    canonical = hashes["python-sdk"]
    for name, text in forms.items():
        if name == "python-sdk":
            continue
        tests.append(
            _test(
                f"json-hash-reserialized-{name}",
                f"{name} bytes paired with the hash of another serialization of "
                "the same value: what a node that re-serializes before hashing would accept; must be refused",
                "json_hash",
                "invalid",
                ["HashOverReserializedJson"],
                logical=logical,
                serialization=text,
                hash=canonical,
            )
        )
    return _doc(
        "JSON hashing",
        [
            "plaintext_body_hash and response_hash cover the exact bytes, never a JSON value.",
            "Eight serializations of one logical value hash to eight different values.",
        ],
        {
            "HashOverReserializedJson": _note(
                "INTEROPERABILITY",
                "The hash was computed over a re-serialization.",
                "Clients whose serializer differs are refused, or tampering goes unnoticed.",
            )
        },
        [{"type": "JsonHashTest", "source": {"name": "protocol"}, "tests": tests}],
    )


# --- files -------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], Doc]] = {
    "x25519.json": build_x25519,
    "hkdf_sha256.json": build_hkdf,
    "aes_256_gcm.json": build_aead,
    "blake2b_256.json": build_blake2b,
    "base64.json": build_base64,
    "sui_signatures.json": build_sui,
    "envelopes.json": build_envelopes,
    "json_hashing.json": build_json_hashing,
}


def render(doc: Doc) -> bytes:
    """The exact bytes of a vector file: 2-space indent, UTF-8, insertion order, final newline."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build_all() -> dict[str, bytes]:
    """Every vector file, rendered, keyed by file name."""
    return {name: render(build()) for name, build in BUILDERS.items()}


def write_all(directory: Path) -> dict[str, bytes]:
    """Regenerate every vector file into ``directory``; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = build_all()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files
