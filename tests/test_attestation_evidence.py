"""The evidence container: zlib with a hard cap on the inflated size, then strict JSON."""

from __future__ import annotations

import time
import tracemalloc
import zlib

import pytest

from conformance.protocol import (
    MAX_ENTRIES,
    MAX_INFLATED_SIZE,
    Base64Error,
    EvidenceEmpty,
    EvidenceEntry,
    EvidenceNotZlib,
    EvidenceTooLarge,
    EvidenceTrailingData,
    EvidenceType,
    InvalidJson,
    MissingField,
    ProtocolError,
    UnknownEvidenceType,
    WrongType,
    b64encode,
    decode_evidence,
    encode_evidence,
    inflate_evidence,
    jsonwire,
    parse_evidence,
)

ENTRY = EvidenceEntry(EvidenceType.DEVICE, b"-----BEGIN CERTIFICATE-----\n", b"\x11\xe0\x01\xff")
SWITCH = EvidenceEntry(EvidenceType.NVSWITCH, b"chain", b"report")


def _refused(data: bytes, cls: type[ProtocolError], field: str) -> ProtocolError:
    with pytest.raises(cls) as info:
        decode_evidence(data)
    assert type(info.value) is cls, type(info.value)
    assert info.value.field == field
    return info.value


def _json(text: bytes) -> bytes:
    return zlib.compress(text)


def zlib_bomb(mebibytes: int) -> bytes:
    """A valid zlib stream of ``mebibytes`` MiB of zeros, built in milliseconds.

    One MiB of zeros is deflated and sync-flushed into a byte-aligned run of blocks whose matches only
    reach back into zeros; repeated, each copy inflates to one more MiB. An empty final block and the
    Adler-32 of n zero bytes ((n mod 65521) << 16 | 1) close the stream.
    """
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    run = deflater.compress(bytes(1 << 20)) + deflater.flush(zlib.Z_SYNC_FLUSH)
    size = mebibytes << 20
    adler = ((size % 65521) << 16) | 1
    return b"\x78\xda" + run * mebibytes + b"\x03\x00" + adler.to_bytes(4, "big")


# --- round trip and shape ---------------------------------------------------------------------------


def test_round_trip_in_serde_key_order() -> None:
    data = encode_evidence([ENTRY, SWITCH])
    assert decode_evidence(data) == (ENTRY, SWITCH)
    text = zlib.decompress(data)
    assert text == (
        b'[{"evidence_type":"device","certificate":"' + b64encode(ENTRY.certificate).encode() + b'",'
        b'"evidence":"' + b64encode(ENTRY.evidence).encode() + b'"},'
        b'{"evidence_type":"nvswitch","certificate":"Y2hhaW4=","evidence":"cmVwb3J0"}]'
    )


def test_unknown_keys_are_ignored_as_serde_does() -> None:
    text = b'[{"evidence":"cmVwb3J0","extra":[1,2],"certificate":"Y2hhaW4=","evidence_type":"nvswitch"}]'
    assert decode_evidence(_json(text)) == (SWITCH,)


def test_whitespace_and_any_compression_level_are_accepted() -> None:
    text = b' [ {"evidence_type" : "nvswitch", "certificate": "Y2hhaW4=", "evidence": "cmVwb3J0"} ]\n'
    for level in (0, 1, 9):
        assert decode_evidence(zlib.compress(text, level)) == (SWITCH,)


# --- zlib -------------------------------------------------------------------------------------------


def test_the_bomb_construction_is_a_valid_stream() -> None:
    assert zlib.decompress(zlib_bomb(3)) == bytes(3 << 20)


def test_a_zlib_bomb_is_refused_in_bounded_memory_and_time() -> None:
    bomb = zlib_bomb(1024)  # 1 GiB of zeros in about 1 MiB
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(EvidenceTooLarge) as info:
            inflate_evidence(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.field == "evidence_bytes"
    assert "16,777,216" in info.value.reason
    # The cap (16 MiB) plus one step and the input, never the gigabyte the bomb asks for.
    assert peak < MAX_INFLATED_SIZE + (8 << 20), peak
    assert time.perf_counter() - started < 5


def test_the_cap_is_exact() -> None:
    data = bytes(range(256)) * 4
    assert inflate_evidence(zlib.compress(data), max_size=len(data)) == data
    with pytest.raises(EvidenceTooLarge):
        inflate_evidence(zlib.compress(data), max_size=len(data) - 1)


def test_a_stream_that_fills_the_cap_exactly_in_steps_is_accepted() -> None:
    data = bytes(3 << 20)
    assert inflate_evidence(zlib.compress(data), max_size=len(data)) == data


def test_not_zlib() -> None:
    exc = _refused(b"\x00\x01not zlib at all", EvidenceNotZlib, "evidence_bytes")
    assert "not zlib at all" not in str(exc)


def test_empty_and_truncated_streams() -> None:
    _refused(b"", EvidenceNotZlib, "evidence_bytes")
    good = encode_evidence([ENTRY])
    for cut in (1, 2, 4, len(good) // 2, len(good) - 1):
        _refused(good[:cut], EvidenceNotZlib, "evidence_bytes")


def test_a_bad_checksum() -> None:
    good = encode_evidence([ENTRY])
    _refused(good[:-1] + bytes([good[-1] ^ 1]), EvidenceNotZlib, "evidence_bytes")


def test_raw_deflate_and_gzip_are_not_zlib() -> None:
    text = jsonwire.dumps([ENTRY.to_json()])
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    _refused(raw.compress(text) + raw.flush(), EvidenceNotZlib, "evidence_bytes")
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    _refused(gz.compress(text) + gz.flush(), EvidenceNotZlib, "evidence_bytes")


@pytest.mark.parametrize("tail", [b"\x00", b"garbage", None])
def test_trailing_bytes_after_the_stream(tail: bytes | None) -> None:
    good = encode_evidence([ENTRY])
    extra = encode_evidence([SWITCH]) if tail is None else tail  # None: a second whole stream
    exc = _refused(good + extra, EvidenceTrailingData, "evidence_bytes")
    assert f"{len(extra)} byte(s)" in exc.reason


# --- JSON -------------------------------------------------------------------------------------------


def test_json_refusals_name_the_field() -> None:
    cert, ev = '"certificate":"Y2hhaW4="', '"evidence":"cmVwb3J0"'
    cases: list[tuple[str, type[ProtocolError], str]] = [
        ("not json", InvalidJson, "evidence_bytes"),
        (
            "[" + "{" + f'"evidence_type":"device","evidence_type":"device",{cert},{ev}' + "}]",
            InvalidJson,
            "evidence_bytes",
        ),
        ('{"evidence_type":"device"}', WrongType, "evidence_bytes"),
        ("[]", EvidenceEmpty, "evidence_bytes"),
        ("[1]", WrongType, "evidence_bytes[0]"),
        ("[{" + f"{cert},{ev}" + "}]", MissingField, "evidence_bytes[0].evidence_type"),
        ('[{"evidence_type":"device",' + ev + "}]", MissingField, "evidence_bytes[0].certificate"),
        ('[{"evidence_type":"device",' + cert + "}]", MissingField, "evidence_bytes[0].evidence"),
        ('[{"evidence_type":300,' + f"{cert},{ev}" + "}]", WrongType, "evidence_bytes[0].evidence_type"),
        ('[{"evidence_type":"Device",' + f"{cert},{ev}" + "}]", UnknownEvidenceType, "evidence_bytes[0].evidence_type"),
        ('[{"evidence_type":"cpu",' + f"{cert},{ev}" + "}]", UnknownEvidenceType, "evidence_bytes[0].evidence_type"),
        ('[{"evidence_type":"device","certificate":null,' + ev + "}]", WrongType, "evidence_bytes[0].certificate"),
    ]
    for text, cls, field in cases:
        _refused(_json(text.encode()), cls, field)


@pytest.mark.parametrize("bad", ["Y2hhaW4", "Y2hhaW5=", "Y2hh aW4=", "Y2hh-W4=", "Y2hhaW4==", "@@@@"])
def test_base64_must_be_canonical(bad: str) -> None:
    text = '[{"evidence_type":"device","certificate":"Y2hhaW4=","evidence":"' + bad + '"}]'
    with pytest.raises(Base64Error) as info:
        decode_evidence(_json(text.encode()))
    assert info.value.field == "evidence_bytes[0].evidence"


def test_entry_count_is_bounded() -> None:
    assert len(parse_evidence(jsonwire.dumps([SWITCH.to_json()] * MAX_ENTRIES))) == MAX_ENTRIES
    with pytest.raises(EvidenceTooLarge) as info:
        parse_evidence(jsonwire.dumps([SWITCH.to_json()] * (MAX_ENTRIES + 1)))
    assert info.value.field == "evidence_bytes"
