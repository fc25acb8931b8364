"""Micro-benchmarks of the sans-I/O protocol core, one ``benchmark.group`` per operation and size.

Groups, read side by side in the pytest-benchmark table:

- ``seal_request-<size>``, ``open_request-<size>``, ``seal_response-<size>``, ``open_response-<size>``,
  ``seal_chunk-<size>``, ``open_chunk-<size>`` for plaintexts of 256 B, 4 KiB, 64 KiB and 1 MiB;
- ``sign`` and ``verify``: Sui ``sign_hashed`` / verify over a 32-byte hash, for Ed25519, Secp256k1 and
  Secp256r1;
- ``b64encode-<size>`` and ``b64decode-<size>`` (strict, next to the lenient stdlib decoder for reference)
  and ``blake2b_256-<size>``.

Every input is built once, outside the timed function: plaintexts are JSON-like bytes of exactly the named
size, requests/responses/chunks are sealed once for the ``open_*`` benchmarks. Node-side sealing signs with
Ed25519; client-side opening verifies that signature and pins the signer (the default, conformant path).
``seal_*`` draw their random values from the OS (the production path).

Run: ``python -m pytest benchmarks/test_core.py -p no:cacheprovider --no-cov --benchmark-only``.
These are benchmarks, not tests: nothing asserts on timings.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance.protocol import (
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    Exchange,
    Scheme,
    SeededRandom,
    StreamChunk,
    SuiSigner,
    b64decode,
    b64encode,
    blake2b_256,
    open_chunk,
    open_request,
    open_response,
    seal_chunk,
    seal_request,
    seal_response,
    verify,
    x25519_public_key,
)

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
SIZES = {"256B": 256, "4KiB": 4096, "64KiB": 65536, "1MiB": 1 << 20}
SCHEMES = [Scheme.ED25519, Scheme.SECP256K1, Scheme.SECP256R1]


def json_payload(size: int, role: str = "user") -> bytes:
    """A chat-like JSON object of exactly ``size`` bytes (the content string is padded to fit)."""
    head = b'{"model":"' + MODEL.encode() + b'","messages":[{"role":"' + role.encode() + b'","content":"'
    tail = b'"}]}'
    room = size - len(head) - len(tail)
    if room < 0:
        raise ValueError(f"{size} bytes is too small for the JSON frame")
    words = b"the quick brown fox jumps over the lazy dog "
    body = (words * (room // len(words) + 1))[:room]
    out = head + body + tail
    assert len(out) == size
    return out


@dataclass(frozen=True)
class Fixture:
    """Everything one size needs, built once."""

    plaintext: bytes
    node_sk: bytes
    node_pk: bytes
    request: ConfidentialComputeRequest
    exchange: Exchange  # the client's side of the exchange (same key as the node's)
    node_exchange: Exchange
    signer: SuiSigner
    response: ConfidentialComputeResponse
    chunk: StreamChunk


@cache
def signer_for(scheme: Scheme) -> SuiSigner:
    return SuiSigner(scheme, SeededRandom(f"bench-signer-{scheme.label}").token_bytes(32))


@cache
def fixture(size: int) -> Fixture:
    rng = SeededRandom(f"bench-core-{size}")
    node_sk = rng.token_bytes(32)
    node_pk = x25519_public_key(node_sk)
    plaintext = json_payload(size)
    sealed = seal_request(plaintext, node_public_key=node_pk, model_name=MODEL, stack_small_id=1, rng=rng)
    opened = open_request(sealed.request, node_sk)
    signer = signer_for(Scheme.ED25519)
    answer = json_payload(size, role="assistant")
    response = seal_response(answer, opened.exchange, signer, rng=rng)
    chunk = seal_chunk(answer, opened.exchange, signer, rng=rng)
    # Sanity, untimed: the prepared messages open.
    assert open_response(response, sealed.exchange, expected_signer=signer.address).plaintext == answer
    assert open_chunk(chunk, sealed.exchange, expected_signer=signer.address).plaintext == answer
    return Fixture(
        plaintext, node_sk, node_pk, sealed.request, sealed.exchange, opened.exchange, signer, response, chunk
    )


def run(benchmark: BenchmarkFixture, group: str, fn: Callable[..., Any], *args: Any, **info: Any) -> None:
    benchmark.group = group
    benchmark.extra_info.update(info)
    call: Callable[..., Any] = benchmark
    call(fn, *args)


SIZE_PARAMS = pytest.mark.parametrize("label", list(SIZES))


# --- envelope --------------------------------------------------------------------------------------


@SIZE_PARAMS
def test_seal_request(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])

    def go() -> object:
        return seal_request(f.plaintext, node_public_key=f.node_pk, model_name=MODEL, stack_small_id=1)

    run(benchmark, f"seal_request-{label}", go, plaintext_bytes=len(f.plaintext))


@SIZE_PARAMS
def test_open_request(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])
    run(benchmark, f"open_request-{label}", open_request, f.request, f.node_sk, plaintext_bytes=len(f.plaintext))


@SIZE_PARAMS
def test_seal_response(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])
    run(
        benchmark,
        f"seal_response-{label}",
        seal_response,
        f.plaintext,
        f.node_exchange,
        f.signer,
        plaintext_bytes=len(f.plaintext),
        signer="ed25519",
    )


@SIZE_PARAMS
def test_open_response(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])

    def go() -> object:
        return open_response(f.response, f.exchange, expected_signer=f.signer.address)

    run(benchmark, f"open_response-{label}", go, plaintext_bytes=len(f.plaintext), signer="ed25519")


@SIZE_PARAMS
def test_seal_chunk(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])
    run(
        benchmark,
        f"seal_chunk-{label}",
        seal_chunk,
        f.plaintext,
        f.node_exchange,
        f.signer,
        plaintext_bytes=len(f.plaintext),
        signer="ed25519",
    )


@SIZE_PARAMS
def test_open_chunk(benchmark: BenchmarkFixture, label: str) -> None:
    f = fixture(SIZES[label])

    def go() -> object:
        return open_chunk(f.chunk, f.exchange, expected_signer=f.signer.address)

    run(benchmark, f"open_chunk-{label}", go, plaintext_bytes=len(f.plaintext), signer="ed25519")


# --- signatures ------------------------------------------------------------------------------------

HASH = blake2b_256(b"benchmark message")


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.label for s in SCHEMES])
def test_sign(benchmark: BenchmarkFixture, scheme: Scheme) -> None:
    signer = signer_for(scheme)
    run(benchmark, "sign", signer.sign, HASH, scheme=scheme.label)


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.label for s in SCHEMES])
def test_verify(benchmark: BenchmarkFixture, scheme: Scheme) -> None:
    sig = signer_for(scheme).sign(HASH)
    verify(sig, HASH)  # untimed sanity
    run(benchmark, "verify", verify, sig, HASH, scheme=scheme.label)


# --- base64 and hashing ----------------------------------------------------------------------------


@SIZE_PARAMS
def test_b64encode(benchmark: BenchmarkFixture, label: str) -> None:
    data = json_payload(SIZES[label])
    run(benchmark, f"b64encode-{label}", b64encode, data, raw_bytes=len(data))


@SIZE_PARAMS
def test_b64decode_strict(benchmark: BenchmarkFixture, label: str) -> None:
    text = b64encode(json_payload(SIZES[label]))
    run(benchmark, f"b64decode-{label}", b64decode, text, raw_bytes=SIZES[label], decoder="strict (ours)")


@SIZE_PARAMS
def test_b64decode_lenient_stdlib(benchmark: BenchmarkFixture, label: str) -> None:
    """Reference only: one ``binascii.a2b_base64`` pass, which is not a conformant decoder."""
    text = b64encode(json_payload(SIZES[label]))
    run(
        benchmark,
        f"b64decode-{label}",
        binascii.a2b_base64,
        text,
        raw_bytes=SIZES[label],
        decoder="lenient stdlib (reference)",
    )


@SIZE_PARAMS
def test_blake2b_256(benchmark: BenchmarkFixture, label: str) -> None:
    data = json_payload(SIZES[label])
    run(benchmark, f"blake2b_256-{label}", blake2b_256, data, raw_bytes=len(data))
