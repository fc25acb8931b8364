"""NVIDIA's GPU/NVSwitch attestation report: an SPDM GET_MEASUREMENTS request and its signed response.

The layout is the one NVIDIA's local verifier reads (NVIDIA/nvtrust,
``guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/attestation/``: ``__init__.py`` splits the
report, ``spdm_msrt_req_msg.py`` and ``spdm_msrt_resp_msg.py`` parse the halves; ``config.py`` fixes
the signature at 96 bytes for Hopper and Blackwell). All integers are little-endian::

    request (37 bytes)                    response
    0  SPDMVersion          1             0   SPDMVersion              1
    1  RequestResponseCode  1  (0xE0)     1   RequestResponseCode      1  (0x60)
    2  Param1               1             2   Param1                   1
    3  Param2               1             3   Param2                   1
    4  Nonce               32             4   NumberOfBlocks           1
    36 SlotIDParam          1             5   MeasurementRecordLength  3  = L1
                                          8   MeasurementRecord       L1
                                          8+L1   Nonce (responder's)  32
                                          40+L1  OpaqueLength          2  = L2
                                          42+L1  OpaqueData           L2
                                          42+L1+L2 Signature          96  ECDSA P-384, r ‖ s

    measurement block: Index 1, MeasurementSpecification 1 (0x01, DMTF), MeasurementSize 2,
                       then DMTF: ValueType 1, ValueSize 2, Value ValueSize (3 + ValueSize = MeasurementSize)
    opaque data:       [DataType 2 | DataSize 2 | Data DataSize] ...  (NVIDIA's own TLV list)

The signature covers every byte of the report before it: request ‖ response-without-signature
(``AttestationReport.concatenate``). The nonce that binds the report is the *request's*, the one
the verifier chose; the response's nonce is the responder's own.

Where NVIDIA's parser is lenient this one refuses, with the field named: a short or long section
(NVIDIA slices past the end silently), bytes after the signature, a measurement size that disagrees
with its DMTF value size, a duplicated block index or opaque type, and an SPDM version whose layout
is not this one (1.0 has no SlotIDParam, 1.3 adds a RequesterContext). A genuine report satisfies all
of them; a report that does not is malformed whatever its signature says. :func:`encode_report` is
the exact inverse of :func:`parse_report`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from .errors import (
    ReportDuplicate,
    ReportNoMeasurements,
    ReportTooLarge,
    ReportTrailingBytes,
    ReportTruncated,
    ReportUnexpectedValue,
)

REQUEST_LEN = 37
NONCE_LEN = 32
SIGNATURE_LEN = 96  # ECDSA P-384: r and s, 48 bytes each, big-endian (python-ecdsa's sigdecode_string)
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
SPDM_VERSIONS = frozenset({0x11, 0x12})  # the versions whose GET_MEASUREMENTS layout is the one above
DMTF_MEASUREMENT_SPECIFICATION = 0x01
# NVML hands out at most 8 KiB (NVML_CC_GPU_ATTESTATION_REPORT_SIZE); eight times that leaves room
# for larger parts without letting a hostile length field ask for megabytes.
MAX_REPORT_LEN = 64 * 1024
_FIELD = "report"


class OpaqueType(IntEnum):
    """The opaque data types NVIDIA's verifier names (``OpaqueData.OPAQUE_DATA_TYPES``); others are kept raw."""

    CERT_ISSUER_NAME = 1
    CERT_AUTHORITY_KEY_IDENTIFIER = 2
    DRIVER_VERSION = 3
    GPU_INFO = 4
    SKU = 5
    VBIOS_VERSION = 6
    MANUFACTURER_ID = 7
    TAMPER_DETECTION = 8
    SMC = 9
    VPR = 10
    NVDEC0_STATUS = 11
    MSRSCNT = 12
    CPRINFO = 13
    BOARD_ID = 14
    CHIP_SKU = 15
    CHIP_SKU_MOD = 16
    PROJECT = 17
    PROJECT_SKU = 18
    PROJECT_SKU_MOD = 19
    FWID = 20
    PROTECTED_PCIE_STATUS = 21
    SWITCH_PDI = 22
    FLOORSWEPT_PORTS = 23
    POSITION_ID = 24
    LOCK_SWITCH_STATUS = 25
    GPU_LINK_CONN = 32
    SYS_ENABLE_STATUS = 33
    OPAQUE_DATA_VERSION = 34
    CHIP_INFO = 35
    FEATURE_FLAG = 36
    INVALID = 255


@dataclass(frozen=True, slots=True)
class SpdmRequest:
    """The GET_MEASUREMENTS request the verifier sent: its nonce is the one the report answers."""

    version: int
    param1: int
    param2: int
    nonce: bytes
    slot_id_param: int
    code: int = GET_MEASUREMENTS


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One measurement block in DMTF form: ``value`` is the digest (48 bytes of SHA-384 on Hopper)."""

    index: int
    value_type: int
    value: bytes
    specification: int = DMTF_MEASUREMENT_SPECIFICATION


@dataclass(frozen=True, slots=True)
class OpaqueField:
    """One entry of NVIDIA's opaque data TLV list, kept as raw bytes."""

    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SpdmResponse:
    """The MEASUREMENTS response, with its measurement blocks and opaque fields in wire order."""

    version: int
    param1: int
    param2: int
    blocks: tuple[MeasurementBlock, ...]
    responder_nonce: bytes
    opaque: tuple[OpaqueField, ...]
    signature: bytes
    code: int = MEASUREMENTS


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """A parsed report; ``raw`` is the report as received and ``signed`` the bytes its signature covers."""

    request: SpdmRequest
    response: SpdmResponse
    raw: bytes = dataclasses.field(repr=False)

    @property
    def nonce(self) -> bytes:
        """The request nonce: what binds the report to a key."""
        return self.request.nonce

    @property
    def signature(self) -> bytes:
        return self.response.signature

    @property
    def signed(self) -> bytes:
        return self.raw[: len(self.raw) - SIGNATURE_LEN]

    @property
    def measurements(self) -> Mapping[int, bytes]:
        """Measurement index → value, read-only."""
        return MappingProxyType({block.index: block.value for block in self.response.blocks})

    def opaque_field(self, kind: int) -> bytes | None:
        """The value of the opaque field of type ``kind``, or None when the report has none."""
        for item in self.response.opaque:
            if item.type == kind:
                return item.value
        return None

    @property
    def fwid(self) -> bytes | None:
        """The firmware ID the report claims (``OPAQUE_FIELD_ID_FWID``), which the leaf certificate must carry."""
        return self.opaque_field(OpaqueType.FWID)


class _Reader:
    """A bounded cursor over the report: every read names the field it is for."""

    def __init__(self, data: bytes, prefix: str) -> None:
        self.view = memoryview(data)
        self.offset = 0
        self.prefix = prefix

    def take(self, size: int, name: str) -> bytes:
        end = self.offset + size
        if end > len(self.view):
            raise ReportTruncated(
                f"ends inside this {size}-byte field: {len(self.view) - self.offset} byte(s) left at its offset"
                f" {self.offset}",
                field=f"{self.prefix}.{name}",
            )
        out = self.view[self.offset : end].tobytes()
        self.offset = end
        return out

    def u8(self, name: str) -> int:
        return self.take(1, name)[0]

    def u16(self, name: str) -> int:
        value: int = struct.unpack("<H", self.take(2, name))[0]
        return value

    def u24(self, name: str) -> int:
        return int.from_bytes(self.take(3, name), "little")

    def sub(self, size: int, name: str) -> _Reader:
        """A reader over the next ``size`` bytes, which it must consume exactly (see :meth:`done`)."""
        return _Reader(self.take(size, name), f"{self.prefix}.{name}")

    def done(self, what: str) -> None:
        left = len(self.view) - self.offset
        if left:
            raise ReportTrailingBytes(f"has {left} byte(s) after {what}", field=self.prefix)


def _expect(value: int, allowed: frozenset[int] | int, name: str, what: str) -> None:
    ok = value in allowed if isinstance(allowed, frozenset) else value == allowed
    if not ok:
        raise ReportUnexpectedValue(f"is 0x{value:02X}, expected {what}", field=name)


def parse_report(data: bytes, *, field: str = _FIELD) -> AttestationReport:
    """Parse an attestation report (request ‖ response) or raise the :class:`ReportError` naming the field."""
    data = bytes(data)
    if len(data) > MAX_REPORT_LEN:
        raise ReportTooLarge(f"is {len(data):,} bytes, more than the {MAX_REPORT_LEN:,} allowed", field=field)
    request = _parse_request(_Reader(data[:REQUEST_LEN], f"{field}.request"))
    response = _parse_response(_Reader(data[REQUEST_LEN:], f"{field}.response"))
    if response.version != request.version:
        raise ReportUnexpectedValue(
            f"is 0x{response.version:02X}, but the request's is 0x{request.version:02X}",
            field=f"{field}.response.version",
        )
    return AttestationReport(request, response, data)


def _parse_request(r: _Reader) -> SpdmRequest:
    """The request has no length field: it is the first REQUEST_LEN bytes, and ``r`` holds at most those."""
    version = r.u8("version")
    _expect(version, SPDM_VERSIONS, f"{r.prefix}.version", "SPDM 1.1 (0x11) or 1.2 (0x12)")
    code = r.u8("code")
    _expect(code, GET_MEASUREMENTS, f"{r.prefix}.code", "GET_MEASUREMENTS (0xE0)")
    param1, param2 = r.u8("param1"), r.u8("param2")
    nonce = r.take(NONCE_LEN, "nonce")
    slot = r.u8("slot_id_param")
    return SpdmRequest(version, param1, param2, nonce, slot, code)


def _parse_response(r: _Reader) -> SpdmResponse:
    version = r.u8("version")
    _expect(version, SPDM_VERSIONS, f"{r.prefix}.version", "SPDM 1.1 (0x11) or 1.2 (0x12)")
    code = r.u8("code")
    _expect(code, MEASUREMENTS, f"{r.prefix}.code", "MEASUREMENTS (0x60)")
    param1, param2 = r.u8("param1"), r.u8("param2")
    count = r.u8("number_of_blocks")
    if count == 0:
        raise ReportNoMeasurements("is 0: the report measures nothing", field=f"{r.prefix}.number_of_blocks")
    record = r.sub(r.u24("measurement_record_length"), "measurement_record")
    blocks = _parse_blocks(record, count)
    responder_nonce = r.take(NONCE_LEN, "nonce")
    opaque = _parse_opaque(r.sub(r.u16("opaque_length"), "opaque_data"))
    signature = r.take(SIGNATURE_LEN, "signature")
    r.done("the signature")
    return SpdmResponse(version, param1, param2, blocks, responder_nonce, opaque, signature, code)


def _parse_blocks(r: _Reader, count: int) -> tuple[MeasurementBlock, ...]:
    blocks: list[MeasurementBlock] = []
    seen: set[int] = set()
    for n in range(count):
        name = f"block[{n}]"
        index = r.u8(f"{name}.index")
        spec = r.u8(f"{name}.specification")
        _expect(spec, DMTF_MEASUREMENT_SPECIFICATION, f"{r.prefix}.{name}.specification", "DMTF (0x01)")
        size = r.u16(f"{name}.size")
        m = r.sub(size, f"{name}.measurement")
        value_type = m.u8("value_type")
        value = m.take(m.u16("value_size"), "value")
        m.done("the DMTF measurement value")
        if index in seen:
            raise ReportDuplicate(f"repeats measurement index {index}", field=f"{r.prefix}.{name}.index")
        seen.add(index)
        blocks.append(MeasurementBlock(index, value_type, value, spec))
    r.done(f"the {count} measurement blocks that number_of_blocks announces")
    return tuple(blocks)


def _parse_opaque(r: _Reader) -> tuple[OpaqueField, ...]:
    fields: list[OpaqueField] = []
    seen: set[int] = set()
    n = 0
    while r.offset < len(r.view):
        name = f"field[{n}]"
        kind = r.u16(f"{name}.type")
        value = r.take(r.u16(f"{name}.size"), f"{name}.value")
        if kind in seen:
            raise ReportDuplicate(f"repeats opaque field type {kind}", field=f"{r.prefix}.{name}.type")
        seen.add(kind)
        fields.append(OpaqueField(kind, value))
        n += 1
    return tuple(fields)


# --- the inverse ------------------------------------------------------------------------------------


def encode_request(request: SpdmRequest) -> bytes:
    if len(request.nonce) != NONCE_LEN:
        raise ValueError(f"the request nonce must be {NONCE_LEN} bytes")
    return (
        bytes((request.version, request.code, request.param1, request.param2))
        + request.nonce
        + bytes((request.slot_id_param,))
    )


def encode_block(block: MeasurementBlock) -> bytes:
    measurement = struct.pack("<BH", block.value_type, len(block.value)) + block.value
    return struct.pack("<BBH", block.index, block.specification, len(measurement)) + measurement


def encode_response_unsigned(response: SpdmResponse) -> bytes:
    """The response up to, not including, its signature: with the request, what the signature covers."""
    record = b"".join(encode_block(block) for block in response.blocks)
    opaque = b"".join(struct.pack("<HH", item.type, len(item.value)) + item.value for item in response.opaque)
    if len(response.responder_nonce) != NONCE_LEN:
        raise ValueError(f"the responder nonce must be {NONCE_LEN} bytes")
    return (
        bytes((response.version, response.code, response.param1, response.param2, len(response.blocks)))
        + len(record).to_bytes(3, "little")
        + record
        + response.responder_nonce
        + struct.pack("<H", len(opaque))
        + opaque
    )


def signed_bytes(request: SpdmRequest, response: SpdmResponse) -> bytes:
    """What the report's signature covers: request ‖ response without its signature."""
    return encode_request(request) + encode_response_unsigned(response)


def encode_report(request: SpdmRequest, response: SpdmResponse) -> bytes:
    """The exact inverse of :func:`parse_report`: ``parse_report(encode_report(q, r))`` gives back q and r."""
    if len(response.signature) != SIGNATURE_LEN:
        raise ValueError(f"the signature must be {SIGNATURE_LEN} bytes")
    return signed_bytes(request, response) + response.signature
