"""The SPDM GET_MEASUREMENTS report parser: NVIDIA's samples, the exact inverse, every refusal named."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.protocol import (
    MAX_REPORT_LEN,
    SIGNATURE_LEN,
    AttestationReport,
    DeviceTestCa,
    MeasurementBlock,
    OpaqueField,
    OpaqueType,
    ProtocolError,
    ReportDuplicate,
    ReportError,
    ReportNoMeasurements,
    ReportTooLarge,
    ReportTrailingBytes,
    ReportTruncated,
    ReportUnexpectedValue,
    SpdmRequest,
    SpdmResponse,
    encode_report,
    parse_report,
    signed_bytes,
)
from tests.attestation_samples import HOPPER, OLDER, SAMPLES, Sample

REQUEST_LEN = 37


def _refused(data: bytes, cls: type[ProtocolError], field: str) -> ProtocolError:
    with pytest.raises(cls) as info:
        parse_report(data)
    assert type(info.value) is cls, (type(info.value), info.value)
    assert info.value.field == field, info.value
    return info.value


def _hopper() -> AttestationReport:
    return parse_report(HOPPER.report)


def _rebuilt(request: SpdmRequest | None = None, response: SpdmResponse | None = None) -> bytes:
    report = _hopper()
    return encode_report(request or report.request, response or report.response)


# --- NVIDIA's samples -------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_nvidia_samples_parse(sample: Sample) -> None:
    report = parse_report(sample.report)
    assert report.request == SpdmRequest(0x11, 0x01, 0xFF, sample.nonce, 0x00)
    assert report.nonce == sample.nonce
    assert (report.response.version, report.response.code) == (0x11, 0x60)
    assert sorted(report.measurements) == list(range(1, 65))
    assert all(len(v) == 48 for v in report.measurements.values())
    assert {b.value_type for b in report.response.blocks} == {1}
    assert len(report.signature) == SIGNATURE_LEN == 96
    assert report.signed == sample.report[:-96]
    assert report.raw == sample.report
    assert report.opaque_field(OpaqueType.DRIVER_VERSION) in (b"545.00\0", b"550.90.07\0")
    assert report.opaque_field(OpaqueType.INVALID) is None
    assert (report.fwid is not None) == sample.has_fwid
    assert len(report.response.responder_nonce) == 32


def test_the_hopper_sample_field_by_field() -> None:
    """Offsets from nvtrust's spdm_msrt_resp_msg.py, read off the sample by hand."""
    raw = HOPPER.report
    response = raw[REQUEST_LEN:]
    assert raw[:4] == bytes.fromhex("11e001ff") and raw[36] == 0
    assert response[:5] == bytes.fromhex("1160000040")  # version, code, param1, param2, 64 blocks
    record_length = int.from_bytes(response[5:8], "little")
    assert record_length == 64 * (4 + 3 + 48) == 3520
    opaque_length = struct.unpack_from("<H", response, 8 + record_length + 32)[0]
    assert 8 + record_length + 32 + 2 + opaque_length + 96 == len(response)
    report = _hopper()
    assert report.fwid == report.opaque_field(20)
    assert [f.type for f in report.response.opaque] == [6, 14, 15, 16, 17, 18, 19, 3, 4, 12, 13, 11, 20, 21]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_encode_is_the_exact_inverse_on_real_reports(sample: Sample) -> None:
    report = parse_report(sample.report)
    assert encode_report(report.request, report.response) == sample.report
    assert signed_bytes(report.request, report.response) == report.signed


def test_encode_is_the_exact_inverse_on_test_ca_reports() -> None:
    raw = DeviceTestCa.create().report(bytes(range(32)))
    report = parse_report(raw)
    assert encode_report(report.request, report.response) == raw


_byte = st.integers(0, 255)
_blocks = st.lists(
    st.builds(MeasurementBlock, index=st.integers(1, 255), value_type=_byte, value=st.binary(max_size=64)),
    min_size=1,
    max_size=8,
    unique_by=lambda b: b.index,
)
_opaque = st.lists(
    st.builds(OpaqueField, type=st.integers(0, 0xFFFF), value=st.binary(max_size=40)),
    max_size=6,
    unique_by=lambda f: f.type,
)


@given(
    version=st.sampled_from([0x11, 0x12]),
    params=st.tuples(_byte, _byte, _byte, _byte, _byte),
    nonces=st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)),
    blocks=_blocks,
    opaque=_opaque,
    signature=st.binary(min_size=96, max_size=96),
)
def test_parse_inverts_encode(
    version: int,
    params: tuple[int, int, int, int, int],
    nonces: tuple[bytes, bytes],
    blocks: list[MeasurementBlock],
    opaque: list[OpaqueField],
    signature: bytes,
) -> None:
    request = SpdmRequest(version, params[0], params[1], nonces[0], params[2])
    response = SpdmResponse(version, params[3], params[4], tuple(blocks), nonces[1], tuple(opaque), signature)
    raw = encode_report(request, response)
    report = parse_report(raw)
    assert (report.request, report.response, report.raw) == (request, response, raw)


def test_encode_refuses_wrong_fixed_lengths() -> None:
    report = _hopper()
    with pytest.raises(ValueError, match="request nonce"):
        encode_report(dataclasses.replace(report.request, nonce=bytes(31)), report.response)
    with pytest.raises(ValueError, match="responder nonce"):
        encode_report(report.request, dataclasses.replace(report.response, responder_nonce=bytes(33)))
    with pytest.raises(ValueError, match="signature"):
        encode_report(report.request, dataclasses.replace(report.response, signature=bytes(64)))


# --- refusals ---------------------------------------------------------------------------------------


def test_every_prefix_is_refused_as_truncated() -> None:
    raw = HOPPER.report
    fields = set()
    for cut in range(len(raw)):
        with pytest.raises(ReportTruncated) as info:
            parse_report(raw[:cut])
        fields.add(info.value.field)
    assert {
        "report.request.version",
        "report.request.nonce",
        "report.request.slot_id_param",
        "report.response.version",
        "report.response.number_of_blocks",
        "report.response.measurement_record_length",
        "report.response.measurement_record",
        "report.response.nonce",
        "report.response.opaque_length",
        "report.response.opaque_data",
        "report.response.signature",
    } <= fields


def test_named_truncation_points() -> None:
    raw = HOPPER.report
    _refused(b"", ReportTruncated, "report.request.version")
    _refused(raw[:20], ReportTruncated, "report.request.nonce")
    _refused(raw[:REQUEST_LEN], ReportTruncated, "report.response.version")
    exc = _refused(raw[:-1], ReportTruncated, "report.response.signature")
    assert "96-byte field: 95 byte(s) left" in exc.reason


def test_bytes_after_the_signature() -> None:
    exc = _refused(HOPPER.report + b"\x00", ReportTrailingBytes, "report.response")
    assert "1 byte(s) after the signature" in exc.reason


def test_size_is_bounded() -> None:
    _refused(bytes(MAX_REPORT_LEN + 1), ReportTooLarge, "report")


@pytest.mark.parametrize("version", [0x10, 0x13, 0x00, 0xFF])
def test_request_version_outside_the_layout(version: int) -> None:
    raw = bytes([version]) + HOPPER.report[1:]
    _refused(raw, ReportUnexpectedValue, "report.request.version")


def test_version_1_2_has_the_same_layout() -> None:
    report = _hopper()
    raw = _rebuilt(
        dataclasses.replace(report.request, version=0x12), dataclasses.replace(report.response, version=0x12)
    )
    assert parse_report(raw).request.version == 0x12


def test_response_version_must_match_the_request() -> None:
    report = _hopper()
    _refused(
        _rebuilt(response=dataclasses.replace(report.response, version=0x12)),
        ReportUnexpectedValue,
        "report.response.version",
    )
    raw = bytearray(HOPPER.report)
    raw[REQUEST_LEN] = 0x10
    _refused(bytes(raw), ReportUnexpectedValue, "report.response.version")


def test_request_and_response_codes() -> None:
    report = _hopper()
    _refused(_rebuilt(dataclasses.replace(report.request, code=0x60)), ReportUnexpectedValue, "report.request.code")
    _refused(
        _rebuilt(response=dataclasses.replace(report.response, code=0x7F)),
        ReportUnexpectedValue,
        "report.response.code",
    )


def test_measurement_specification_must_be_dmtf() -> None:
    report = _hopper()
    blocks = (dataclasses.replace(report.response.blocks[0], specification=0x02), *report.response.blocks[1:])
    _refused(
        _rebuilt(response=dataclasses.replace(report.response, blocks=blocks)),
        ReportUnexpectedValue,
        "report.response.measurement_record.block[0].specification",
    )


def test_no_measurement_blocks() -> None:
    raw = bytearray(HOPPER.report)
    raw[REQUEST_LEN + 4] = 0
    _refused(bytes(raw), ReportNoMeasurements, "report.response.number_of_blocks")


def test_block_count_disagreeing_with_the_record() -> None:
    raw = bytearray(HOPPER.report)
    raw[REQUEST_LEN + 4] = 65  # one more block than the record holds
    _refused(bytes(raw), ReportTruncated, "report.response.measurement_record.block[64].index")
    raw[REQUEST_LEN + 4] = 63  # one fewer: the 64th block is left over
    exc = _refused(bytes(raw), ReportTrailingBytes, "report.response.measurement_record")
    assert "63 measurement blocks" in exc.reason


def test_measurement_size_disagreeing_with_the_dmtf_value_size() -> None:
    raw = bytearray(HOPPER.report)
    first_block = REQUEST_LEN + 8
    assert raw[first_block + 2 : first_block + 4] == (51).to_bytes(2, "little")
    raw[first_block + 5 : first_block + 7] = (47).to_bytes(2, "little")  # value 47 bytes, measurement 51
    _refused(bytes(raw), ReportTrailingBytes, "report.response.measurement_record.block[0].measurement")
    raw[first_block + 5 : first_block + 7] = (49).to_bytes(2, "little")
    _refused(bytes(raw), ReportTruncated, "report.response.measurement_record.block[0].measurement.value")


def test_duplicate_measurement_index() -> None:
    report = _hopper()
    blocks = list(report.response.blocks)
    blocks[5] = dataclasses.replace(blocks[5], index=blocks[4].index)
    exc = _refused(
        _rebuilt(response=dataclasses.replace(report.response, blocks=tuple(blocks))),
        ReportDuplicate,
        "report.response.measurement_record.block[5].index",
    )
    assert "index 5" in exc.reason


def test_duplicate_opaque_type() -> None:
    report = _hopper()
    fwid = OpaqueField(OpaqueType.FWID, bytes(48))
    response = dataclasses.replace(report.response, opaque=(*report.response.opaque, fwid))
    _refused(_rebuilt(response=response), ReportDuplicate, "report.response.opaque_data.field[14].type")


def test_opaque_entry_cut_short() -> None:
    report = _hopper()
    raw = _rebuilt(response=dataclasses.replace(report.response, opaque=()))
    # Splice in an opaque area holding a TLV whose size claims more than the area.
    tlv = struct.pack("<HH", 3, 10) + b"550"
    at = len(raw) - SIGNATURE_LEN - 2
    spliced = raw[:at] + struct.pack("<H", len(tlv)) + tlv + raw[-SIGNATURE_LEN:]
    _refused(spliced, ReportTruncated, "report.response.opaque_data.field[0].value")
    half = raw[:at] + struct.pack("<H", 3) + b"\x03\x00\x0a" + raw[-SIGNATURE_LEN:]
    _refused(half, ReportTruncated, "report.response.opaque_data.field[0].size")


def test_refusals_never_quote_the_report() -> None:
    with pytest.raises(ReportError) as info:
        parse_report(OLDER.report[:-1])
    assert OLDER.report[-40:].hex() not in str(info.value)
    assert OLDER.nonce.hex() not in str(info.value)
