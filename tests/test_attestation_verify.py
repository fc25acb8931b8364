"""Verdicts per entry and per step: NVIDIA's samples, the test CA's evidence, and every mutant refused."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import random
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conformance.protocol import (
    AttestationError,
    DeviceTestCa,
    EntryVerdict,
    EvidenceEntry,
    EvidenceNotZlib,
    EvidenceType,
    Outcome,
    ReportError,
    Step,
    certificate_pem,
    decode_evidence,
    encode_evidence,
    encode_report,
    mock_evidence,
    nvidia_device_root,
    parse_chain,
    parse_report,
    report_nonce,
    sign_raw,
    signed_bytes,
    verify_commitment,
    verify_entry,
    verify_evidence,
    verify_report_signature,
)
from tests.attestation_samples import HOPPER, NOW, OLDER, SAMPLES, Sample

ROOT = nvidia_device_root()
KEY = bytes(range(32))
CONTRACT_NONCE = 41


def _outcomes(verdict: EntryVerdict) -> dict[str, str]:
    return {r.step.value: r.outcome.value for r in verdict.steps}


def _codes(verdict: EntryVerdict) -> dict[str, str]:
    return {r.step.value: r.error.code for r in verdict.steps if r.error is not None}


# --- NVIDIA's samples -------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_nvidia_samples_verify(sample: Sample) -> None:
    (verdict,) = verify_evidence([sample.entry()], sample.nonce, [ROOT], NOW)
    assert verdict.ok, verdict.failures
    assert verdict.failures == ()
    fwid = "pass" if sample.has_fwid else "not_applicable"
    assert _outcomes(verdict) == {
        "report": "pass",
        "certificates": "pass",
        "nonce": "pass",
        "chain": "pass",
        "signature": "pass",
        "fwid": fwid,
    }
    assert verdict[Step.FWID].passed is sample.has_fwid
    assert verdict.report is not None and verdict.report.nonce == sample.nonce
    assert verdict.chain is not None and verdict.chain.anchor == ROOT
    assert verdict.certificates is not None and len(verdict.certificates) == 5


def test_a_sample_answering_another_nonce_is_not_bound() -> None:
    (verdict,) = verify_evidence([HOPPER.entry()], OLDER.nonce, [ROOT], NOW)
    assert not verdict.ok
    assert _codes(verdict) == {"nonce": "REPORT_NONCE_MISMATCH"}
    error = verdict[Step.NONCE].error
    assert error is not None and error.field == "evidence_bytes[0].evidence.request.nonce"
    assert verdict[Step.SIGNATURE].passed and verdict[Step.CHAIN].passed  # the report is genuine, just not ours


# --- the test CA ------------------------------------------------------------------------------------


def test_test_ca_evidence_round_trips_through_the_verifier() -> None:
    evidence = mock_evidence(CONTRACT_NONCE, KEY)
    ca = DeviceTestCa.create()
    verdicts = verify_commitment(
        evidence, contract_nonce=CONTRACT_NONCE, node_public_key=KEY, trusted_roots=[ROOT, ca.root], now=NOW
    )
    assert len(verdicts) == 1 and verdicts[0].ok
    assert verdicts[0].report is not None
    assert verdicts[0].report.nonce == report_nonce(CONTRACT_NONCE, KEY)
    assert verdicts[0].chain is not None and verdicts[0].chain.anchor == ca.root
    assert _outcomes(verdicts[0])["fwid"] == "pass"


def test_test_ca_is_never_trusted_by_default() -> None:
    evidence = mock_evidence(CONTRACT_NONCE, KEY)
    (verdict,) = verify_commitment(
        evidence, contract_nonce=CONTRACT_NONCE, node_public_key=KEY, trusted_roots=[ROOT], now=NOW
    )
    assert _codes(verdict) == {"chain": "CHAIN_UNTRUSTED_ROOT"}
    assert not verdict.ok


def test_a_ppcie_node() -> None:
    evidence = mock_evidence(CONTRACT_NONCE, KEY, devices=8, nvswitches=4)
    verdicts = verify_commitment(
        evidence,
        contract_nonce=CONTRACT_NONCE,
        node_public_key=KEY,
        trusted_roots=[DeviceTestCa.create().root],
        now=NOW,
    )
    assert [v.evidence_type for v in verdicts] == [EvidenceType.DEVICE] * 8 + [EvidenceType.NVSWITCH] * 4
    assert all(v.ok for v in verdicts)
    leaves = {v.certificates[0].public_bytes(serialization.Encoding.DER) for v in verdicts if v.certificates}
    assert len(leaves) == 12  # one device key per GPU and switch, one root for all
    assert len({v.chain.anchor for v in verdicts if v.chain}) == 1


@pytest.mark.parametrize(("other_nonce", "other_key"), [(CONTRACT_NONCE + 1, KEY), (CONTRACT_NONCE, bytes(32))])
def test_evidence_bound_to_another_key_or_rotation_is_detected(other_nonce: int, other_key: bytes) -> None:
    evidence = mock_evidence(CONTRACT_NONCE, KEY, devices=2)
    verdicts = verify_commitment(
        evidence,
        contract_nonce=other_nonce,
        node_public_key=other_key,
        trusted_roots=[DeviceTestCa.create().root],
        now=NOW,
    )
    for verdict in verdicts:
        assert _codes(verdict) == {"nonce": "REPORT_NONCE_MISMATCH"}


def test_the_test_ca_is_deterministic_and_seeded() -> None:
    a, b = DeviceTestCa.create(b"seed"), DeviceTestCa.create(b"seed")
    assert a.chain_pem() == b.chain_pem()
    assert a.report(bytes(32)) == b.report(bytes(32))
    assert mock_evidence(1, KEY, seed=b"seed") == mock_evidence(1, KEY, seed=b"seed")
    other = DeviceTestCa.create(b"other seed")
    assert other.root_pem() != a.root_pem()
    assert a.report(bytes(32)) != a.report(bytes(31) + b"\x01")
    # Device 1 of a seed: its own BROM and leaf, the same root and the same two CAs above them.
    device1 = DeviceTestCa.create(b"seed", device=1)
    assert device1.certificates[2:] == a.certificates[2:]
    assert device1.certificates[0] != a.certificates[0] and device1.certificates[1] != a.certificates[1]


def test_the_test_ca_has_nvidias_shape() -> None:
    ca = DeviceTestCa.create()
    assert len(ca.certificates) == 5
    for cert in ca.certificates:
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)
        assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384
        assert "TEST" in cert.subject.rfc4514_string()
    usage = ca.leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    for issuer in ca.certificates[1:]:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
    assert parse_chain(ca.chain_pem()) == ca.certificates
    assert parse_chain(ca.root_pem()) == (ca.root,)
    report = parse_report(ca.report(bytes(32)))
    assert report.fwid == ca.fwid and len(report.measurements) == 64


# --- the distinct reasons ---------------------------------------------------------------------------


def _scenario(name: str) -> tuple[EvidenceEntry, bytes, list[x509.Certificate], dt.datetime]:
    """One entry that fails exactly one way (plus what depends on it), with the nonce, roots and time."""
    ca = DeviceTestCa.create()
    nonce = report_nonce(CONTRACT_NONCE, KEY)
    entry, roots, now = ca.entry(nonce), [ca.root], NOW
    if name == "other key":
        entry = ca.entry(report_nonce(CONTRACT_NONCE, bytes(32)))
    elif name == "broken chain":  # another seed's BROM in the middle: the leaf's issuer name is not its subject
        foreign = DeviceTestCa.create(b"foreign")
        certs = (ca.certificates[0], foreign.certificates[1], *ca.certificates[2:])
        entry = dataclasses.replace(entry, certificate=certificate_pem(certs))
    elif name == "forged leaf":  # this chain's names, key and extensions, signed by another device's key
        builder = (
            x509.CertificateBuilder()
            .subject_name(ca.leaf.subject)
            .issuer_name(ca.leaf.issuer)
            .public_key(ca.leaf.public_key())
            .serial_number(ca.leaf.serial_number)
            .not_valid_before(ca.leaf.not_valid_before_utc)
            .not_valid_after(ca.leaf.not_valid_after_utc)
        )
        for extension in ca.leaf.extensions:  # the FWID too: only the signature differs
            builder = builder.add_extension(extension.value, extension.critical)
        forged = builder.sign(DeviceTestCa.create(b"forger").leaf_key, hashes.SHA384())
        entry = dataclasses.replace(entry, certificate=certificate_pem([forged, *ca.certificates[1:]]))
    elif name == "signature over other bytes":
        report = parse_report(entry.evidence)
        wrong = sign_raw(ca.leaf_key, report.signed[:-1])
        evidence = encode_report(report.request, dataclasses.replace(report.response, signature=wrong))
        entry = dataclasses.replace(entry, evidence=evidence)
    elif name == "expired":
        stale = DeviceTestCa.create(not_after=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        entry, roots = stale.entry(nonce), [stale.root]
    elif name == "untrusted":
        roots = [ROOT]
    elif name == "fwid":
        report = parse_report(entry.evidence)
        opaque = tuple(dataclasses.replace(f, value=bytes(48)) if f.type == 20 else f for f in report.response.opaque)
        response = dataclasses.replace(report.response, opaque=opaque)
        signature = sign_raw(ca.leaf_key, signed_bytes(report.request, response))
        response = dataclasses.replace(response, signature=signature)
        entry = dataclasses.replace(entry, evidence=encode_report(report.request, response))
    return entry, nonce, roots, now


EXPECTED = {
    "other key": {"nonce": "REPORT_NONCE_MISMATCH"},
    "broken chain": {"chain": "CHAIN_ISSUER_MISMATCH"},
    "forged leaf": {"chain": "CHAIN_SIGNATURE_INVALID"},
    "signature over other bytes": {"signature": "REPORT_SIGNATURE_INVALID"},
    "expired": {"chain": "CERT_EXPIRED"},
    "untrusted": {"chain": "CHAIN_UNTRUSTED_ROOT"},
    "fwid": {"fwid": "REPORT_FWID_MISMATCH"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_failure_has_its_own_step_and_reason(name: str) -> None:
    entry, nonce, roots, now = _scenario(name)
    (verdict,) = verify_evidence([entry], nonce, roots, now)
    assert _codes(verdict) == EXPECTED[name]
    assert not verdict.ok
    (failure,) = verdict.failures
    assert failure.error is not None and failure.error.field is not None
    assert failure.error.field.startswith("evidence_bytes[0].")


def test_the_reasons_are_distinct() -> None:
    codes = [next(iter(v.values())) for v in EXPECTED.values()]
    assert len(set(codes)) == len(codes)


def test_steps_without_their_input_are_not_run_never_passed() -> None:
    ca = DeviceTestCa.create()
    nonce = report_nonce(CONTRACT_NONCE, KEY)
    good = ca.entry(nonce)
    (no_report,) = verify_evidence([dataclasses.replace(good, evidence=b"\x11")], nonce, [ca.root], NOW)
    assert _outcomes(no_report) == {
        "report": "fail",
        "certificates": "pass",
        "nonce": "not_run",
        "chain": "pass",
        "signature": "not_run",
        "fwid": "not_run",
    }
    assert "the report did not parse" in no_report[Step.SIGNATURE].note
    (no_chain,) = verify_evidence([dataclasses.replace(good, certificate=b"junk")], nonce, [ca.root], NOW)
    assert _outcomes(no_chain) == {
        "report": "pass",
        "certificates": "fail",
        "nonce": "pass",
        "chain": "not_run",
        "signature": "not_run",
        "fwid": "not_run",
    }
    assert "certificate chain did not parse" in no_chain[Step.FWID].note


def test_fields_name_the_entry() -> None:
    ca = DeviceTestCa.create()
    nonce = report_nonce(CONTRACT_NONCE, KEY)
    entries = [ca.entry(nonce), dataclasses.replace(ca.entry(nonce), evidence=b"")]
    first, second = verify_evidence(entries, nonce, [ca.root], NOW)
    assert first.ok and first.index == 0 and second.index == 1
    error = second[Step.REPORT].error
    assert isinstance(error, ReportError) and error.field == "evidence_bytes[1].evidence.request.version"


def test_container_errors_raise() -> None:
    with pytest.raises(EvidenceNotZlib):
        verify_commitment(b"nope", contract_nonce=1, node_public_key=KEY, trusted_roots=[ROOT], now=NOW)


def test_expected_nonce_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        verify_entry(HOPPER.entry(), bytes(31), [ROOT], NOW)


def test_encode_evidence_of_samples_round_trips() -> None:
    evidence = encode_evidence([s.entry() for s in SAMPLES])
    assert decode_evidence(evidence) == tuple(s.entry() for s in SAMPLES)


# --- every mutant is refused ------------------------------------------------------------------------


def _flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def test_every_one_byte_mutant_of_a_report_is_refused() -> None:
    """Every position of NVIDIA's Hopper report, flipped: it fails to parse, or its signature fails.

    (The nonce and chain steps are judged too, in the full-verifier sample below; here the signature
    alone must refuse every parseable mutant, since it covers every byte before it and is itself the rest.)
    """
    leaf = parse_chain(HOPPER.chain)[0]
    raw = HOPPER.report
    unparseable = 0
    refused_by_signature = 0
    for position in range(len(raw)):
        mutant = _flip(raw, position, 1 << (position % 8))  # a different bit at each position
        try:
            report = parse_report(mutant)
        except ReportError:
            unparseable += 1
            continue
        try:
            verify_report_signature(report, leaf)
        except AttestationError:
            refused_by_signature += 1
            continue
        raise AssertionError(f"the mutant at byte {position} verified")
    assert unparseable + refused_by_signature == len(raw)
    assert unparseable > 0 and refused_by_signature > len(raw) // 2


def _report_positions(raw: bytes) -> list[int]:
    """Every header field, the nonces, the opaque header, the whole signature, and a random sample."""
    report = parse_report(raw)
    record_end = 37 + 8 + int.from_bytes(raw[37 + 5 : 37 + 8], "little")
    opaque_start = record_end + 32 + 2
    chosen = set(range(37 + 8 + 8))  # request, response header, first block header and value type/size
    chosen |= set(range(record_end, opaque_start + 8))  # responder nonce, opaque length, first TLV header
    chosen |= set(range(len(raw) - len(report.signature), len(raw)))  # the signature
    rng = random.Random(18)
    chosen |= set(rng.sample(range(len(raw)), 150))
    return sorted(chosen)


def test_report_mutants_through_the_full_verifier() -> None:
    raw = HOPPER.report
    positions = _report_positions(raw)
    assert len(positions) >= 300
    entries = [dataclasses.replace(HOPPER.entry(), evidence=_flip(raw, p)) for p in positions]
    for position, verdict in zip(positions, verify_evidence(entries, HOPPER.nonce, [ROOT], NOW), strict=True):
        assert not verdict.ok, position
        assert verdict[Step.CHAIN].passed  # the chain is untouched
        assert not verdict[Step.SIGNATURE].passed, position  # fail, or not run when it did not parse
        if 4 <= position < 36:  # the request nonce
            assert verdict[Step.NONCE].outcome is Outcome.FAIL


def _certificate_positions(cert: x509.Certificate, rng: random.Random) -> list[int]:
    """Positions in ``cert``'s DER: the outer header, a sample of the TBS (its header always), the
    signature algorithm, and the signature value."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs_start = der.index(cert.tbs_certificate_bytes)
    tbs_end = tbs_start + len(cert.tbs_certificate_bytes)
    signature_start = der.rindex(cert.signature)
    chosen = set(range(tbs_start + 8))  # outer SEQUENCE and TBS headers, version
    chosen |= set(rng.sample(range(tbs_start, tbs_end), 30))
    chosen |= set(range(tbs_end, signature_start))  # the outer signatureAlgorithm, BIT STRING header
    chosen |= set(range(signature_start, len(der), 4))  # a quarter of the signature value's bytes
    return sorted(chosen)


def test_every_certificate_mutant_is_refused() -> None:
    """A changed byte in any certificate of NVIDIA's chain (TBS, algorithm or signature) is refused."""
    chain = parse_chain(HOPPER.chain)
    rng = random.Random(5280)
    mutants: list[tuple[int, int]] = []
    entries: list[EvidenceEntry] = []
    for index, cert in enumerate(chain):
        der = cert.public_bytes(serialization.Encoding.DER)
        for position in _certificate_positions(cert, rng):
            pem = _mutant_chain_pem(chain, index, _flip(der, position))
            mutants.append((index, position))
            entries.append(dataclasses.replace(HOPPER.entry(), certificate=pem))
    assert len(entries) >= 300
    for (index, position), verdict in zip(mutants, verify_evidence(entries, HOPPER.nonce, [ROOT], NOW), strict=True):
        assert not verdict.ok, (index, position)
        assert verdict[Step.REPORT].passed and verdict[Step.NONCE].passed
        assert not verdict[Step.CHAIN].passed, (index, position)


def _mutant_chain_pem(chain: tuple[x509.Certificate, ...], index: int, der: bytes) -> bytes:
    """The chain's PEM with certificate ``index`` replaced by ``der`` (base64 wrapped as PEM is)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    block = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()
    pems = [certificate_pem([c]) for c in chain]
    pems[index] = block
    return b"".join(pems)
