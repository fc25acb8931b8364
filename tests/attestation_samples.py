"""NVIDIA's sample attestation evidence (tests/data/nvidia, see its README) as test fixtures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from conformance.protocol import EvidenceEntry, EvidenceType

DATA = Path(__file__).parent / "data" / "nvidia"
# Inside every sample certificate's validity (the latest notBefore is 2022-03-01; all end in 9999).
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Sample:
    name: str
    report: bytes
    chain: bytes
    nonce: bytes
    has_fwid: bool

    def entry(self) -> EvidenceEntry:
        return EvidenceEntry(EvidenceType.DEVICE, self.chain, self.report)


def _load(report: str, chain: str, nonce: str, *, has_fwid: bool) -> Sample:
    raw = bytes.fromhex((DATA / report).read_text(encoding="ascii"))
    return Sample(report, raw, (DATA / chain).read_bytes(), bytes.fromhex(nonce), has_fwid)


HOPPER = _load(
    "hopperAttestationReport.txt",
    "hopperCertChain.txt",
    "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
    has_fwid=True,
)
OLDER = _load(
    "attestationReport.txt",
    "gpuAkCertChain.txt",
    "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e",
    has_fwid=False,
)
SAMPLES = (HOPPER, OLDER)
