"""The nonce ledger finds every reuse under one key, across directions, and merges across workers."""

from __future__ import annotations

import pytest

from conformance.protocol import (
    RANDOM_NONCE_BUDGET,
    LengthError,
    NonceLedger,
    NonceUse,
    client_exchange,
    key_id,
    x25519_public_key,
)

N1, N2, N3 = b"\x01" * 12, b"\x02" * 12, b"\x03" * 12


def test_distinct_nonces_under_one_key_produce_no_finding() -> None:
    ledger = NonceLedger()
    assert ledger.observe("k", N1, "request") is None
    assert ledger.observe("k", N2, "response") is None
    assert ledger.findings == []
    assert ledger.observations == 2 and ledger.keys == 1


def test_a_response_echoing_the_request_nonce_is_found_with_both_places() -> None:
    ledger = NonceLedger()
    ledger.observe("k", N1, "request")
    finding = ledger.observe("k", N1, "response")
    assert finding is not None
    assert (finding.first.where, finding.second.where) == ("request", "response")
    assert ledger.findings == [finding]


def test_the_same_nonce_under_different_keys_is_not_reuse() -> None:
    ledger = NonceLedger()
    ledger.observe("k1", N1, "request")
    assert ledger.observe("k2", N1, "request") is None
    assert ledger.keys == 2


def test_every_repeat_in_a_stream_is_a_separate_finding() -> None:
    ledger = NonceLedger()
    for i in range(4):
        ledger.observe("k", N3, f"chunk[{i}]")
    assert [f.second.where for f in ledger.findings] == ["chunk[1]", "chunk[2]", "chunk[3]"]
    assert all(f.first.where == "chunk[0]" for f in ledger.findings)
    assert ledger.max_uses_per_key() == 4


def test_merge_finds_reuse_split_between_two_workers() -> None:
    worker_a, worker_b = NonceLedger(), NonceLedger()
    worker_a.observe("k", N1, "request")
    worker_b.observe("k", N2, "chunk[0]")
    worker_b.observe("k", N1, "chunk[1]")
    assert worker_a.findings == [] and worker_b.findings == []
    worker_a.merge(worker_b.uses())
    assert len(worker_a.findings) == 1
    assert worker_a.findings[0].second == NonceUse("k", N1, "chunk[1]")


def test_budget_fraction_uses_the_busiest_key() -> None:
    ledger = NonceLedger()
    assert ledger.budget_fraction() == 0.0
    for i in range(3):
        ledger.observe("busy", i.to_bytes(12, "big"), f"m{i}")
    ledger.observe("quiet", N1, "m")
    assert ledger.max_uses_per_key() == 3
    assert ledger.budget_fraction() == 3 / RANDOM_NONCE_BUDGET == 3 / 2**32


def test_client_exchange_rebuilds_the_same_key_id_as_the_sealing_side() -> None:
    client_sk, node_sk = b"\x11" * 32, b"\x22" * 32
    salt, nonce = b"\x33" * 16, b"\x44" * 12
    node_pk = x25519_public_key(node_sk)
    exchange = client_exchange(client_sk, node_pk, salt, nonce)
    assert exchange.key_id == key_id(x25519_public_key(client_sk), node_pk, salt)
    assert exchange.request_nonce == nonce and exchange.salt == salt


@pytest.mark.parametrize(
    ("salt", "nonce", "field"), [(b"s" * 15, b"n" * 12, "salt"), (b"s" * 16, b"n" * 13, "request_nonce")]
)
def test_client_exchange_refuses_wrong_lengths(salt: bytes, nonce: bytes, field: str) -> None:
    with pytest.raises(LengthError) as exc:
        client_exchange(b"\x11" * 32, x25519_public_key(b"\x22" * 32), salt, nonce)
    assert exc.value.field == field


def test_client_exchange_names_the_callers_own_private_key_when_it_is_wrong() -> None:
    with pytest.raises(LengthError) as exc:
        client_exchange(b"\x11" * 31, x25519_public_key(b"\x22" * 32), b"s" * 16, b"n" * 12)
    assert exc.value.field == "private_key"


def test_all_uses_lets_another_ledger_reproduce_the_findings() -> None:
    original = NonceLedger()
    for where in ("request", "chunk[0]", "chunk[1]"):
        original.observe("k", N1, where)
    copy = NonceLedger()
    copy.merge(original.all_uses())
    assert len(copy.findings) == len(original.findings) == 2
    assert copy.observations == original.observations == 3
