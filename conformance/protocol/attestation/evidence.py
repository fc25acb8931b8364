"""The evidence container of a key commitment: zlib-compressed JSON, inflated with a hard cap.

Upstream (atoma-node ``submit_nvidia_cc_attestation``; ``atoma-utils/src/compression.rs``) serializes
``Vec<CombinedEvidence>`` with serde_json, ``#[serde(tag = "evidence_type")]``, and compresses it with
flate2's zlib encoder::

    [{"evidence_type":"device","certificate":"<b64 PEM chain>","evidence":"<b64 SPDM report>"}, ...]

``evidence_bytes`` comes from the chain and is written by whoever holds a node's Sui key, so it is
hostile input. Two refusals go beyond upstream's reader, on purpose:

- A cap on the *inflated* size (16 MiB; a real entry is about 11 KiB, a full PPCIe node twelve of
  them). zlib reaches ratios of 1000:1, so a few kilobytes on chain could otherwise ask a verifier for
  gigabytes. The stream is inflated with ``max_length`` per call, so the memory held never exceeds the
  cap by more than one bounded step, whatever the ratio.
- No bytes after the end of the zlib stream. flate2's ``read_to_end`` stops at the stream's end and
  ignores them; a commitment whose bytes mean different things to different readers has no place in
  an attestation.

Unknown JSON keys are ignored, as serde does by default; duplicate keys are refused (serde refuses a
duplicate field), and base64 must be canonical, as the Rust ``STANDARD`` engine requires.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .. import jsonwire
from ..b64 import b64decode, b64encode
from ..errors import MissingField, WrongType
from ..jsonwire import json_type
from .errors import EvidenceEmpty, EvidenceNotZlib, EvidenceTooLarge, EvidenceTrailingData, UnknownEvidenceType

MAX_INFLATED_SIZE = 16 * 1024 * 1024
MAX_ENTRIES = 64  # 8 GPUs and 4 NVSwitches is the largest node upstream knows (PPCIe)
FIELD = "evidence_bytes"
_STEP = 1024 * 1024


class EvidenceType(StrEnum):
    """The serde tag of a ``CombinedEvidence`` variant."""

    DEVICE = "device"
    NVSWITCH = "nvswitch"


@dataclass(frozen=True, slots=True)
class EvidenceEntry:
    """One device's evidence, decoded from base64: its PEM certificate chain and its SPDM report."""

    evidence_type: EvidenceType
    certificate: bytes
    evidence: bytes

    def to_json(self) -> dict[str, str]:
        """The entry in serde's key order: the tag first, then the struct's fields."""
        return {
            "evidence_type": self.evidence_type.value,
            "certificate": b64encode(self.certificate),
            "evidence": b64encode(self.evidence),
        }


def inflate_evidence(evidence_bytes: bytes, *, max_size: int = MAX_INFLATED_SIZE, field: str = FIELD) -> bytes:
    """Inflate one complete zlib stream of at most ``max_size`` bytes, refusing anything else.

    Each ``decompress`` call produces at most one step (1 MiB), and never more than one byte past the
    room left, so crossing the cap is seen at once: at most ``max_size + 1`` bytes of output and one
    step are ever held, whatever the compression ratio.
    """
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = bytes(evidence_bytes)
    try:
        while True:
            chunk = inflater.decompress(pending, min(max_size + 1 - len(out), _STEP))
            out += chunk
            if len(out) > max_size:
                raise EvidenceTooLarge(f"inflates to more than {max_size:,} bytes (the cap)", field=field)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
            if not pending and not chunk:
                raise EvidenceNotZlib("ends before its zlib stream does (truncated)", field=field)
    except zlib.error as exc:
        raise EvidenceNotZlib(f"is not a valid zlib stream ({exc})", field=field) from None
    if inflater.unused_data:
        raise EvidenceTrailingData(
            f"has {len(inflater.unused_data)} byte(s) after the end of its zlib stream", field=field
        )
    return bytes(out)


def parse_evidence(inflated: bytes, *, field: str = FIELD) -> tuple[EvidenceEntry, ...]:
    """Parse the inflated JSON array into typed entries, strictly (see the module docstring)."""
    value = jsonwire.loads(inflated, field=field)
    if not isinstance(value, list):
        raise WrongType(f"must be a JSON array, got {json_type(value)}", field=field)
    if not value:
        raise EvidenceEmpty("is an empty array: no device is attested", field=field)
    if len(value) > MAX_ENTRIES:
        raise EvidenceTooLarge(f"has {len(value)} entries, more than the {MAX_ENTRIES} allowed", field=field)
    return tuple(_entry(item, f"{field}[{i}]") for i, item in enumerate(value))


def _entry(item: object, where: str) -> EvidenceEntry:
    if not isinstance(item, dict):
        raise WrongType(f"must be a JSON object, got {json_type(item)}", field=where)
    tag = _string(item, "evidence_type", where)
    try:
        evidence_type = EvidenceType(tag)
    except ValueError:
        raise UnknownEvidenceType("must be 'device' or 'nvswitch'", field=f"{where}.evidence_type") from None
    certificate = b64decode(_string(item, "certificate", where), field=f"{where}.certificate")
    evidence = b64decode(_string(item, "evidence", where), field=f"{where}.evidence")
    return EvidenceEntry(evidence_type, certificate, evidence)


def _string(item: dict[str, object], key: str, where: str) -> str:
    if key not in item:
        raise MissingField("is required but missing", field=f"{where}.{key}")
    value = item[key]
    if not isinstance(value, str):
        raise WrongType(f"must be a string, got {json_type(value)}", field=f"{where}.{key}")
    return value


def decode_evidence(evidence_bytes: bytes, *, max_size: int = MAX_INFLATED_SIZE) -> tuple[EvidenceEntry, ...]:
    """``evidence_bytes`` as committed on chain to typed entries: inflate, then parse."""
    return parse_evidence(inflate_evidence(evidence_bytes, max_size=max_size))


def encode_evidence(entries: Iterable[EvidenceEntry]) -> bytes:
    """The inverse of :func:`decode_evidence`: compact JSON in serde's key order, zlib-compressed at
    the default level (flate2's ``Compression::default()`` is level 6 too; the bytes may differ from
    miniz's, the inflated JSON does not)."""
    return zlib.compress(jsonwire.dumps([entry.to_json() for entry in entries]))
