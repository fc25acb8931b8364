"""Injected randomness: seeded streams are reproducible, pinned values are exact, the system source is sized."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.protocol import SYSTEM_RANDOM, FixedBytes, RandomSource, SeededRandom, SystemRandom

SEEDS: list[bytes | str | int] = [
    b"",
    b"seed",
    b"\x00",
    "",
    "seed",
    "s\u00e9ed",
    0,
    1,
    -1,
    127,
    128,
    -128,
    -129,
    2**64,
    -(2**64),
]


# --- SeededRandom -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS, ids=repr)
def test_seeded_is_deterministic(seed: bytes | str | int) -> None:
    one, two = SeededRandom(seed), SeededRandom(seed)
    assert one.token_bytes(32) == two.token_bytes(32)
    assert one.token_bytes(7) == two.token_bytes(7)
    assert len(SeededRandom(seed).token_bytes(100)) == 100


@pytest.mark.parametrize("seed", [b"", b"seed", b"\x00\xff"])
def test_seeded_bytes_is_shake256_of_the_typed_seed(seed: bytes) -> None:
    assert SeededRandom(seed).token_bytes(64) == hashlib.shake_256(b"bytes:" + seed).digest(64)


@pytest.mark.parametrize("seed", ["", "seed", "s\u00e9ed"])
def test_seeded_str_is_shake256_of_its_typed_utf8_bytes(seed: str) -> None:
    assert SeededRandom(seed).token_bytes(48) == hashlib.shake_256(b"str:" + seed.encode("utf-8")).digest(48)


def test_seeds_of_different_types_never_share_a_stream() -> None:
    assert SeededRandom(0).token_bytes(32) != SeededRandom(b"\x00").token_bytes(32)
    assert SeededRandom("A").token_bytes(32) != SeededRandom(65).token_bytes(32)
    assert SeededRandom("A").token_bytes(32) != SeededRandom(b"A").token_bytes(32)


def test_seeded_accepts_bytearray() -> None:
    rng = SeededRandom(bytearray(b"seed"))  # type: ignore[arg-type]
    assert rng.token_bytes(16) == SeededRandom(b"seed").token_bytes(16)


def test_distinct_int_seeds_give_distinct_streams() -> None:
    ints = [s for s in SEEDS if isinstance(s, int)]
    streams = {SeededRandom(s).token_bytes(32) for s in ints}
    assert len(streams) == len(ints)


def test_distinct_seeds_of_one_type_give_distinct_streams() -> None:
    assert SeededRandom(b"a").token_bytes(32) != SeededRandom(b"b").token_bytes(32)
    assert SeededRandom("a").token_bytes(32) != SeededRandom("b").token_bytes(32)


@given(st.integers(), st.integers())
def test_int_seed_encoding_is_injective(a: int, b: int) -> None:
    assume(a != b)
    assert SeededRandom(a).token_bytes(16) != SeededRandom(b).token_bytes(16)


@given(st.lists(st.integers(min_value=0, max_value=64), max_size=10), st.binary(max_size=16))
def test_sequential_reads_equal_one_long_read(sizes: list[int], seed: bytes) -> None:
    rng = SeededRandom(seed)
    pieces = b"".join(rng.token_bytes(n) for n in sizes)
    assert pieces == SeededRandom(seed).token_bytes(sum(sizes))


def test_zero_length_read() -> None:
    rng = SeededRandom(1)
    assert rng.token_bytes(0) == b""
    assert rng.token_bytes(8) == SeededRandom(1).token_bytes(8)


@pytest.mark.parametrize("n", [-1, -32])
def test_negative_length_raises_and_does_not_advance(n: int) -> None:
    rng = SeededRandom("x")
    with pytest.raises(ValueError, match="non-negative"):
        rng.token_bytes(n)
    assert rng.token_bytes(8) == SeededRandom("x").token_bytes(8)


# --- FixedBytes -------------------------------------------------------------------------------------


def test_fixed_returns_pinned_values_in_order() -> None:
    rng = FixedBytes(b"\x01" * 32, b"\x02" * 16, b"\x03" * 12, b"")
    assert rng.token_bytes(32) == b"\x01" * 32
    assert rng.token_bytes(16) == b"\x02" * 16
    assert rng.token_bytes(12) == b"\x03" * 12
    assert rng.token_bytes(0) == b""


def test_fixed_exhausted() -> None:
    rng = FixedBytes(b"ab")
    assert rng.token_bytes(2) == b"ab"
    with pytest.raises(ValueError, match="exhausted"):
        rng.token_bytes(2)
    with pytest.raises(ValueError, match="exhausted"):
        FixedBytes().token_bytes(0)


@pytest.mark.parametrize("n", [0, 11, 13])
def test_fixed_length_differs(n: int) -> None:
    rng = FixedBytes(bytes(12))
    with pytest.raises(ValueError, match=f"next pinned value has 12 bytes, caller asked for {n}"):
        rng.token_bytes(n)


def test_fixed_does_not_alias_caller_list() -> None:
    values = [b"a", b"b"]
    rng = FixedBytes(*values)
    rng.token_bytes(1)
    assert values == [b"a", b"b"]


# --- SystemRandom -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 12, 16, 32, 1000])
def test_system_random_returns_n_bytes(n: int) -> None:
    out = SYSTEM_RANDOM.token_bytes(n)
    assert isinstance(out, bytes)
    assert len(out) == n


def test_system_random_is_not_constant() -> None:
    # Two 32-byte draws collide with probability 2**-256.
    assert SystemRandom().token_bytes(32) != SystemRandom().token_bytes(32)
    assert isinstance(SYSTEM_RANDOM, SystemRandom)


def test_every_source_satisfies_the_protocol() -> None:
    sources: list[RandomSource] = [SYSTEM_RANDOM, SystemRandom(), SeededRandom(0), FixedBytes(b"x")]
    for source in sources:
        assert len(source.token_bytes(1)) == 1
