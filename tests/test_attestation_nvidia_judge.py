"""NVIDIA's own local GPU verifier as a second, independent judge (optional).

``nv-local-gpu-verifier`` pins ``cryptography==43.0.1``, which the suite's ``cryptography>=44`` rules
out, so it cannot live in the suite's environment: it is run as a subprocess from the interpreter named
by ``ATOMA_NV_VERIFIER_PYTHON`` (e.g. ``python -m venv /tmp/nvv && /tmp/nvv/bin/pip install
nv-local-gpu-verifier``; it needs no network at run time). Without it the judge's half is skipped,
but our verifier's half of every case is asserted first, so a skip never hides a failure of ours.

The judge parses the report with NVIDIA's classes, compares the request nonce, verifies the chain as
NVIDIA does (the device's root replaced by the trusted one), the report signature (python-ecdsa), and
the FWID, exactly as ``cc_admin.py`` calls them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from conformance.protocol import (
    DeviceTestCa,
    EntryVerdict,
    EvidenceEntry,
    Step,
    certificate_pem,
    encode_report,
    nvidia_device_root,
    parse_report,
    parse_roots,
    report_nonce,
    sign_raw,
    verify_entry,
)
from tests.attestation_samples import NOW, SAMPLES

JUDGE = r"""
import json, sys
from OpenSSL import crypto
from verifier.attestation import AttestationReport
from verifier.config import HopperSettings
from verifier.cc_admin_utils import CcAdminUtils
from verifier.nvml.gpu_cert_chains import GpuCertificateChains

def judge(report, chain, root, nonce):
    settings = HopperSettings()
    out = {"nonce": False, "chain": False, "signature": False, "fwid": False}
    try:
        parsed = AttestationReport(report, settings)
    except Exception:
        return out
    out["nonce"] = parsed.get_request_message().get_nonce() == nonce
    certs = GpuCertificateChains.extract_cert_chain(chain)[:-1]
    certs.append(crypto.load_certificate(crypto.FILETYPE_PEM, root))
    mode = settings.Certificate_Chain_Verification_Mode.GPU_ATTESTATION
    out["chain"] = bool(CcAdminUtils.verify_certificate_chain(certs, settings, mode)[0])
    leaf = certs[0].to_cryptography()
    out["signature"] = bool(parsed.verify_signature(leaf, settings.signature_length, settings.HashFunction))
    fwid = parsed.get_response_message().get_opaque_data().get_data("OPAQUE_FIELD_ID_FWID").hex()
    out["fwid"] = fwid == "" or CcAdminUtils.extract_fwid(certs[0], settings) == fwid
    return out

cases = json.load(sys.stdin)
args = [[bytes.fromhex(c[k]) for k in ("report", "chain", "root", "nonce")] for c in cases]
print(json.dumps([judge(*a) for a in args]))
"""

NONCE = report_nonce(41, bytes(range(32)))


def _cases() -> list[tuple[str, EvidenceEntry, bytes, bytes]]:
    """(name, entry, trusted root PEM, expected nonce): genuine evidence and one failure of each step."""
    nvidia = certificate_pem([nvidia_device_root()])
    ca = DeviceTestCa.create()
    test_root = ca.root_pem()
    good = ca.entry(NONCE)
    report = parse_report(good.evidence)
    other_bytes = sign_raw(ca.leaf_key, report.signed + b"!")
    forged = encode_report(report.request, dataclasses.replace(report.response, signature=other_bytes))
    foreign = DeviceTestCa.create(b"foreign")
    cases = [(s.name, s.entry(), nvidia, s.nonce) for s in SAMPLES]
    cases += [
        ("test CA, trusted", good, test_root, NONCE),
        ("test CA under NVIDIA's root", good, nvidia, NONCE),
        ("another nonce", ca.entry(report_nonce(42, bytes(range(32)))), test_root, NONCE),
        ("signature over other bytes", dataclasses.replace(good, evidence=forged), test_root, NONCE),
        ("another device's chain", dataclasses.replace(good, certificate=foreign.chain_pem()), test_root, NONCE),
    ]
    return cases


def _ours(verdict: EntryVerdict) -> dict[str, bool]:
    fwid = verdict[Step.FWID]
    return {
        "nonce": verdict[Step.NONCE].passed,
        "chain": verdict[Step.CHAIN].passed,
        "signature": verdict[Step.SIGNATURE].passed,
        "fwid": fwid.passed or fwid.outcome.value == "not_applicable",
    }


EXPECTED = {
    "hopperAttestationReport.txt": {"nonce": True, "chain": True, "signature": True, "fwid": True},
    "attestationReport.txt": {"nonce": True, "chain": True, "signature": True, "fwid": True},
    "test CA, trusted": {"nonce": True, "chain": True, "signature": True, "fwid": True},
    "test CA under NVIDIA's root": {"nonce": True, "chain": False, "signature": True, "fwid": True},
    "another nonce": {"nonce": False, "chain": True, "signature": True, "fwid": True},
    "signature over other bytes": {"nonce": True, "chain": True, "signature": False, "fwid": True},
    # The foreign chain is sound but its leaf did not sign the report, nor carries its FWID.
    "another device's chain": {"nonce": True, "chain": False, "signature": False, "fwid": False},
}


def test_nvidias_verifier_agrees_with_ours(tmp_path: Path) -> None:
    cases = _cases()
    ours = {}
    for name, entry, root_pem, nonce in cases:
        verdict = verify_entry(entry, nonce, parse_roots(root_pem), NOW)
        ours[name] = _ours(verdict)
    assert ours == EXPECTED  # our half: always asserted

    python = os.environ.get("ATOMA_NV_VERIFIER_PYTHON")
    if not python:
        pytest.skip("ATOMA_NV_VERIFIER_PYTHON is not set (a Python with nv-local-gpu-verifier installed)")
    payload = [
        {"report": e.evidence.hex(), "chain": e.certificate.hex(), "root": root.hex(), "nonce": n.hex()}
        for _, e, root, n in cases
    ]
    result = subprocess.run(
        [python, "-c", JUDGE],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the verifier writes verifier.log into its working directory
        timeout=120,
        check=True,
    )
    theirs = dict(zip([name for name, *_ in cases], json.loads(result.stdout.splitlines()[-1]), strict=True))
    assert theirs == ours
