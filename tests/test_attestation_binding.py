"""The report nonce: BLAKE3(u64_le(contract_nonce) ‖ key ‖ u16_le(300)), on our one-chunk BLAKE3.

Our BLAKE3 is judged three ways: BLAKE3's published test vectors (always run), the ``blake3`` package
(the Rust reference, bound to Python) over every single-chunk length and random inputs, and the
nonce itself against a computation that shares nothing with ours but the formula.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    NVIDIA_CC_GPU_DEVICE_SLOT,
    LengthError,
    OutOfRange,
    blake3_single_chunk,
    report_nonce,
)


def _pattern(n: int) -> bytes:
    """The input of BLAKE3's test vectors: 0, 1, ..., 250, 0, 1, ..."""
    return bytes(i % 251 for i in range(n))


# BLAKE3-team/BLAKE3 test_vectors/test_vectors.json, "hash" (first 32 bytes) for the single-chunk lengths.
OFFICIAL = {
    0: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    1: "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
    1023: "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
    1024: "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
}


@pytest.mark.parametrize(("length", "expected"), sorted(OFFICIAL.items()))
def test_blake3_matches_the_official_vectors(length: int, expected: str) -> None:
    assert blake3_single_chunk(_pattern(length)).hex() == expected


def test_blake3_matches_the_reference_at_every_single_chunk_length() -> None:
    blake3 = pytest.importorskip("blake3")
    for n in range(1025):  # every block boundary: 0, 63, 64, 65, ..., 1023, 1024
        data = _pattern(n)
        assert blake3_single_chunk(data) == blake3.blake3(data).digest(), n


@given(st.binary(max_size=1024))
def test_blake3_matches_the_reference_on_random_input(data: bytes) -> None:
    blake3 = pytest.importorskip("blake3")
    assert blake3_single_chunk(data) == blake3.blake3(data).digest()


def test_blake3_refuses_more_than_one_chunk() -> None:
    with pytest.raises(ValueError, match="at most 1024"):
        blake3_single_chunk(bytes(1025))


# A fixed vector: contract nonce 7, the all-zero key. Computed with the blake3 package and held here
# so the nonce is pinned even where that package is not installed.
VECTOR = (7, bytes(32), "80e3ac4e338f84d07dcb1712144cc614b107995364d00f03d4a6d8a509f99b11")


def test_report_nonce_known_answer() -> None:
    contract_nonce, key, expected = VECTOR
    assert report_nonce(contract_nonce, key).hex() == expected


@given(st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
def test_report_nonce_matches_an_independent_computation(contract_nonce: int, key: bytes) -> None:
    blake3 = pytest.importorskip("blake3")
    # The formula written out again (atoma-node service.rs: nonce.to_le_bytes(), key, 300u16.to_le_bytes()).
    preimage = contract_nonce.to_bytes(8, "little") + key + (300).to_bytes(2, "little")
    assert len(preimage) == 42
    assert report_nonce(contract_nonce, key) == blake3.blake3(preimage).digest()


def test_report_nonce_layout_is_the_upstream_one() -> None:
    """Each part of the preimage moves the nonce: the counter's bytes are little-endian, the slot is 300."""
    key = bytes(range(32))
    assert NVIDIA_CC_GPU_DEVICE_SLOT == 300
    preimage = struct.pack("<Q", 1) + key + struct.pack("<H", 300)
    assert report_nonce(1, key) == blake3_single_chunk(preimage)
    assert report_nonce(1, key) != report_nonce(2**56, key)  # not big-endian
    assert report_nonce(1, key) != report_nonce(1, bytes(32))


@pytest.mark.parametrize("bad", [-1, 2**64, True, 1.0])
def test_report_nonce_refuses_a_contract_nonce_outside_u64(bad: object) -> None:
    with pytest.raises(OutOfRange) as info:
        report_nonce(bad, bytes(32))  # type: ignore[arg-type]
    assert info.value.field == "contract_nonce"


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_report_nonce_refuses_a_key_of_the_wrong_length(size: int) -> None:
    with pytest.raises(LengthError) as info:
        report_nonce(0, bytes(size))
    assert info.value.field == "node_public_key"
