"""Certificate chains to a trusted root at a given time, and the report's signature under the leaf.

Each refusal has its own class: a conformance check must tell a forged chain from an expired one,
and either from a chain that is sound but not NVIDIA's.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from conformance.protocol import (
    MAX_CHAIN_LENGTH,
    CertificateExpired,
    CertificateKeyUsage,
    CertificateNotYetValid,
    CertificateUnhandledCritical,
    ChainError,
    ChainIssuerMismatch,
    ChainIssuerNotCa,
    ChainLength,
    ChainMalformed,
    ChainSignatureInvalid,
    ChainUntrustedRoot,
    DeviceTestCa,
    FwidMismatch,
    ProtocolError,
    ReportKeyUnsupported,
    ReportSignatureInvalid,
    certificate_fwid,
    certificate_pem,
    check_fwid,
    encode_report,
    nvidia_device_root,
    parse_chain,
    parse_report,
    parse_roots,
    sign_raw,
    signed_bytes,
    verify_chain,
    verify_report_signature,
)
from tests.attestation_samples import DATA, HOPPER, NOW, OLDER, SAMPLES, Sample

ROOT = nvidia_device_root()
VENDORED = DATA.parents[1].parent / "conformance" / "protocol" / "attestation" / "data" / "verifier_device_root.pem"


def _chain(sample: Sample = HOPPER) -> tuple[x509.Certificate, ...]:
    return parse_chain(sample.chain)


def _refused_chain(
    chain: tuple[x509.Certificate, ...] | list[x509.Certificate],
    cls: type[ProtocolError],
    field: str,
    *,
    roots: tuple[x509.Certificate, ...] = (ROOT,),
    now: dt.datetime = NOW,
) -> ProtocolError:
    with pytest.raises(cls) as info:
        verify_chain(chain, roots, now)
    assert type(info.value) is cls, (type(info.value), info.value)
    assert info.value.field == field, info.value
    return info.value


def _key(n: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(
        int.from_bytes(hashlib.sha384(n.to_bytes(4, "big")).digest(), "big") >> 8, ec.SECP384R1()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: x509.Name,
    key: CertificatePublicKeyTypes,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool | None = True,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = None,
    extra: x509.ExtensionType | None = None,
    extra_critical: bool = False,
    not_after: dt.datetime = dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if extra is not None:
        builder = builder.add_extension(extra, critical=extra_critical)
    return builder.sign(issuer_key, hashes.SHA384())


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature, False, False, False, False, key_cert_sign, False, False, False)


def _three(**leaf_options: object) -> tuple[tuple[x509.Certificate, ...], x509.Certificate]:
    """A leaf ← intermediate ← root chain built here; returns (chain without root, root)."""
    root_key, mid_key, leaf_key = _key(1), _key(2), _key(3)
    root = _cert(_name("root"), root_key.public_key(), _name("root"), root_key)
    mid = _cert(_name("mid"), mid_key.public_key(), _name("root"), root_key)
    leaf = _cert(_name("leaf"), leaf_key.public_key(), _name("mid"), mid_key, ca=None, **leaf_options)  # type: ignore[arg-type]
    return (leaf, mid), root


# --- NVIDIA's samples and root ----------------------------------------------------------------------


def test_the_vendored_root_is_nvidia_device_identity_ca() -> None:
    assert ROOT.subject.rfc4514_string() == "O=NVIDIA,CN=NVIDIA Device Identity CA"
    assert ROOT.fingerprint(hashes.SHA256()).hex() == (
        "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
    )
    assert parse_roots(VENDORED.read_bytes()) == (ROOT,)
    assert nvidia_device_root() is ROOT  # parsed once


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_nvidia_sample_chains_reach_the_vendored_root(sample: Sample) -> None:
    chain = _chain(sample)
    assert len(chain) == 5
    verified = verify_chain(chain, [ROOT], NOW)
    assert verified.path == chain[:4]
    assert verified.anchor == ROOT
    assert verified.leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "GH100 A01 GSP FMC LF"


def test_a_chain_sent_without_its_root_is_anchored_under_the_trusted_root() -> None:
    verified = verify_chain(_chain()[:4], [ROOT], NOW)
    assert verified.anchor is ROOT and len(verified.path) == 4


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_nvidia_sample_reports_are_signed_by_their_leaf(sample: Sample) -> None:
    verify_report_signature(parse_report(sample.report), _chain(sample)[0])


def test_a_report_does_not_verify_under_another_devices_leaf() -> None:
    with pytest.raises(ReportSignatureInvalid) as info:
        verify_report_signature(parse_report(HOPPER.report), _chain(OLDER)[0])
    assert info.value.field == "report.response.signature"


def test_the_sample_fwid_binding() -> None:
    hopper, older = parse_report(HOPPER.report), parse_report(OLDER.report)
    assert certificate_fwid(_chain(HOPPER)[0]) == hopper.fwid
    assert check_fwid(hopper, _chain(HOPPER)[0]) is True
    assert check_fwid(older, _chain(OLDER)[0]) is False  # the report claims no FWID: not applicable
    with pytest.raises(FwidMismatch) as info:
        check_fwid(hopper, _chain(OLDER)[0])
    assert info.value.field == "report.fwid"
    assert certificate_fwid(_chain(HOPPER)[1]) is None  # only the leaf carries one


# --- distinct refusals ------------------------------------------------------------------------------


def test_untrusted_root() -> None:
    ca = DeviceTestCa.create()
    exc = _refused_chain(ca.certificates, ChainUntrustedRoot, "certificate[4]")
    assert "self-issued" in exc.reason
    _refused_chain(_chain(), ChainUntrustedRoot, "certificate[4]", roots=(ca.root,))
    exc = _refused_chain(_chain()[:3], ChainUntrustedRoot, "certificate[2]")  # stops below "GH100 Identity"
    assert "not issued by any trusted root" in exc.reason
    _refused_chain(_chain(), ChainUntrustedRoot, "certificate[4]", roots=())


def test_a_look_alike_root_with_nvidias_name_is_untrusted() -> None:
    key = _key(9)
    fake_root = _cert(ROOT.subject, key.public_key(), ROOT.subject, key)
    _refused_chain([*_chain()[:4], fake_root], ChainUntrustedRoot, "certificate[4]")


def test_only_the_root() -> None:
    _refused_chain([ROOT], ChainLength, "certificate")
    _refused_chain([], ChainLength, "certificate")


def test_broken_chain_by_name() -> None:
    """The Hopper leaf above the other sample's BROM: the names do not link."""
    chain = (_chain(HOPPER)[0], *_chain(OLDER)[1:])
    exc = _refused_chain(chain, ChainIssuerMismatch, "certificate[0]")
    assert "issuer" in exc.reason


def test_broken_chain_by_signature() -> None:
    """Same names, same key, but signed by a key that is not the issuer's."""
    (leaf, mid), root = _three()
    forged = _cert(leaf.subject, leaf.public_key(), leaf.issuer, _key(7), ca=None)
    _refused_chain((forged, mid, root), ChainSignatureInvalid, "certificate[0]", roots=(root,))
    verify_chain((leaf, mid, root), (root,), NOW)  # the honest one passes


def test_issuer_must_be_a_ca() -> None:
    root_key, a_key, b_key = _key(1), _key(4), _key(5)
    root = _cert(_name("root"), root_key.public_key(), _name("root"), root_key)
    not_ca = _cert(_name("a"), a_key.public_key(), _name("root"), root_key, ca=False)
    no_bc = _cert(_name("a"), a_key.public_key(), _name("root"), root_key, ca=None)
    no_sign = _cert(_name("a"), a_key.public_key(), _name("root"), root_key, usage=_usage(digital_signature=True))
    leaf = _cert(_name("b"), b_key.public_key(), _name("a"), a_key, ca=None)
    for issuer in (not_ca, no_bc, no_sign):
        _refused_chain((leaf, issuer, root), ChainIssuerNotCa, "certificate[0]", roots=(root,))


def test_path_length_constraint() -> None:
    """pathLen N: at most N intermediate CAs below the certificate that carries it (RFC 5280 4.2.1.9)."""
    root_key, a_key, b_key, c_key = _key(1), _key(4), _key(5), _key(6)
    root = _cert(_name("root"), root_key.public_key(), _name("root"), root_key, path_length=1)
    a = _cert(_name("a"), a_key.public_key(), _name("root"), root_key)
    b = _cert(_name("b"), b_key.public_key(), _name("a"), a_key, ca=None)
    verify_chain((b, a, root), (root,), NOW)  # one intermediate (a) below the root: allowed
    b_ca = _cert(_name("b"), b_key.public_key(), _name("a"), a_key)
    c = _cert(_name("c"), c_key.public_key(), _name("b"), b_key, ca=None)
    exc = _refused_chain((c, b_ca, a, root), ChainIssuerNotCa, "certificate[2]", roots=(root,))
    assert "path length 1" in exc.reason
    a_zero = _cert(_name("a"), a_key.public_key(), _name("root"), root_key, path_length=0)
    _refused_chain((c, b_ca, a_zero, root), ChainIssuerNotCa, "certificate[1]", roots=(root,))


def test_leaf_key_usage_must_allow_signatures() -> None:
    chain, root = _three(usage=_usage(key_cert_sign=True))
    _refused_chain([*chain, root], CertificateKeyUsage, "certificate[0]", roots=(root,))
    chain, root = _three(usage=_usage(digital_signature=True))
    verify_chain([*chain, root], (root,), NOW)


def test_unhandled_critical_extension() -> None:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    chain, root = _three(extra=odd, extra_critical=True)
    _refused_chain([*chain, root], CertificateUnhandledCritical, "certificate[0]", roots=(root,))
    chain, root = _three(extra=odd, extra_critical=False)
    verify_chain([*chain, root], (root,), NOW)


def test_expired_and_not_yet_valid() -> None:
    ca = DeviceTestCa.create(
        not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), not_after=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    roots = (ca.root,)
    verify_chain(ca.certificates, roots, dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    exc = _refused_chain(
        ca.certificates,
        CertificateExpired,
        "certificate[0]",
        roots=roots,
        now=dt.datetime(2025, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
    )
    assert "2025-01-01" in exc.reason
    _refused_chain(
        ca.certificates,
        CertificateNotYetValid,
        "certificate[0]",
        roots=roots,
        now=dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    )
    # The bounds themselves are inside the validity (RFC 5280 4.1.2.5: "inclusive").
    verify_chain(ca.certificates, roots, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    verify_chain(ca.certificates, roots, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_nvidia_samples_before_their_intermediates_existed() -> None:
    """In 2021 NVIDIA's Provisioner ICA (2022-03-01) and Identity (2022-01-12) were not yet valid."""
    _refused_chain(_chain(), CertificateNotYetValid, "certificate[2]", now=dt.datetime(2021, 6, 1, tzinfo=dt.UTC))


def test_an_expired_trusted_root() -> None:
    (leaf, mid), _ = _three()
    short_root = _cert(
        _name("root"), _key(1).public_key(), _name("root"), _key(1), not_after=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    _refused_chain((leaf, mid), CertificateExpired, "trusted_root", roots=(short_root,))
    _refused_chain((leaf, mid, short_root), CertificateExpired, "certificate[2]", roots=(short_root,))


def test_a_forged_chain_is_called_forged_even_when_also_expired() -> None:
    (leaf, mid), root = _three(not_after=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    forged = _cert(
        leaf.subject,
        leaf.public_key(),
        leaf.issuer,
        _key(7),
        ca=None,
        not_after=dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
    )
    _refused_chain((forged, mid, root), ChainSignatureInvalid, "certificate[0]", roots=(root,))
    _refused_chain((leaf, mid, root), CertificateExpired, "certificate[0]", roots=(root,))


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_chain(_chain(), [ROOT], dt.datetime(2025, 1, 1))  # naive: the point of the test


# --- the PEM container ------------------------------------------------------------------------------


def _parse_refused(data: bytes, cls: type[ChainError], field: str) -> ChainError:
    with pytest.raises(cls) as info:
        parse_chain(data)
    assert type(info.value) is cls, (type(info.value), info.value)
    assert info.value.field == field, info.value
    return info.value


def test_pem_layout_variants_that_parse() -> None:
    pem = HOPPER.chain
    assert parse_chain(pem) == parse_chain(pem.replace(b"\n", b"\r\n")) == parse_chain(b"\n\n" + pem + b"\n\n")
    assert parse_chain(certificate_pem(_chain())) == _chain()


def test_pem_refusals() -> None:
    pem = HOPPER.chain
    _parse_refused(b"", ChainMalformed, "certificate")
    _parse_refused(b"junk\n" + pem, ChainMalformed, "certificate")
    _parse_refused(pem + b"\njunk", ChainMalformed, "certificate")
    second = pem.index(b"-----BEGIN CERTIFICATE-----", 10)
    _parse_refused(pem[:second] + b"junk\n" + pem[second:], ChainMalformed, "certificate")
    der = _chain()[0].public_bytes(serialization.Encoding.DER)
    _parse_refused(der, ChainMalformed, "certificate")  # DER concatenation is not what NVML hands out
    not_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    _parse_refused(not_der, ChainMalformed, "certificate[0]")
    bad_b64 = b"-----BEGIN CERTIFICATE-----\nAAB=\n-----END CERTIFICATE-----\n"  # non-zero trailing bits
    exc = _parse_refused(bad_b64, ChainMalformed, "certificate[0]")
    assert "base64" in exc.reason


def test_chain_size_bounds() -> None:
    one = certificate_pem([ROOT])
    assert len(parse_chain(one * MAX_CHAIN_LENGTH)) == MAX_CHAIN_LENGTH
    _parse_refused(one * (MAX_CHAIN_LENGTH + 1), ChainLength, "certificate")
    _parse_refused(b" " * (64 * 1024 + 1), ChainLength, "certificate")


# --- the report signature ---------------------------------------------------------------------------


def test_a_signature_over_other_bytes_is_refused() -> None:
    ca = DeviceTestCa.create()
    report = parse_report(ca.report(bytes(32)))
    verify_report_signature(report, ca.leaf)
    other = sign_raw(ca.leaf_key, report.signed + b"\x00")  # the right key, other bytes
    forged = parse_report(encode_report(report.request, dataclasses.replace(report.response, signature=other)))
    with pytest.raises(ReportSignatureInvalid):
        verify_report_signature(forged, ca.leaf)
    zero = parse_report(encode_report(report.request, dataclasses.replace(report.response, signature=bytes(96))))
    with pytest.raises(ReportSignatureInvalid):
        verify_report_signature(zero, ca.leaf)


def test_a_leaf_key_that_is_not_p384() -> None:
    p256 = ec.derive_private_key(12345, ec.SECP256R1())
    leaf = _cert(_name("p256"), p256.public_key(), _name("p256"), p256)
    report = parse_report(HOPPER.report)
    with pytest.raises(ReportKeyUnsupported):
        verify_report_signature(report, leaf)


def test_signed_bytes_are_request_and_response_without_signature() -> None:
    report = parse_report(HOPPER.report)
    assert signed_bytes(report.request, report.response) == HOPPER.report[:-96]


# --- FWID -------------------------------------------------------------------------------------------


def _leaf_with(extension: x509.UnrecognizedExtension | None) -> x509.Certificate:
    key = _key(11)
    return _cert(_name("leaf"), key.public_key(), _name("leaf"), key, ca=None, extra=extension)


def _fwid_ext(payload: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.23.133.5.4.1"), payload)


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes((tag, len(content))) + content


def test_fwid_forms() -> None:
    digest = bytes(range(48))
    fwid = _tlv(0x30, bytes.fromhex("0609608648016503040202") + _tlv(0x04, digest))  # {sha384, digest}
    hopper_form = _tlv(0x30, b"\x02\x01\x01" + fwid)  # NVIDIA's Hopper leaf, less its SPKI
    assert certificate_fwid(_leaf_with(_fwid_ext(hopper_form))) == digest
    # A DICE TcbInfo (Blackwell): SEQUENCE { [0] vendor, [6] IMPLICIT SEQUENCE OF FWID, ... }.
    tcb_info = _tlv(0x30, _tlv(0x80, b"NVIDIA") + _tlv(0xA6, fwid) + _tlv(0x87, b"\x00"))
    assert certificate_fwid(_leaf_with(_fwid_ext(tcb_info))) == digest
    tcb_info_oid = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.23.133.5.4.1.1"), tcb_info)
    assert certificate_fwid(_leaf_with(tcb_info_oid)) == digest
    assert certificate_fwid(_leaf_with(_fwid_ext(b"\x30\x05\x02\x01\x01\x05\x00"))) is None  # no FWID inside
    assert certificate_fwid(_leaf_with(None)) is None
    long_form = b"\x30\x81" + bytes([len(hopper_form) - 2]) + hopper_form[2:]  # the same, long-form length
    assert certificate_fwid(_leaf_with(_fwid_ext(long_form))) == digest


def _nested(depth: int) -> bytes:
    """An OCTET STRING inside ``depth`` SEQUENCEs: deeper than the FWID walk goes when depth > 9."""
    out = b"\x04\x00"
    for _ in range(depth):
        out = _tlv(0x30, out)
    return out


@pytest.mark.parametrize(
    "malformed",
    [
        b"\x30",  # a header cut short
        b"\x30\x05\x02\x01",  # content shorter than its length
        b"\x30\x85\x00\x00\x00\x00\x01",  # a five-byte length
        b"\x30\x80\x00\x00",  # an indefinite length (BER, not DER)
        b"\x30\x82\xff",  # a long-form length cut short
        _nested(12),
    ],
)
def test_malformed_fwid_extensions_carry_no_fwid(malformed: bytes) -> None:
    leaf = _leaf_with(_fwid_ext(malformed))
    assert certificate_fwid(leaf) is None
    with pytest.raises(FwidMismatch) as info:
        check_fwid(parse_report(HOPPER.report), leaf)
    assert "carries none" in info.value.reason


# --- one certificate, one encoding ------------------------------------------------------------------


def _leaf_der() -> bytes:
    return _chain()[0].public_bytes(serialization.Encoding.DER)


def _pem(encoding: bytes) -> bytes:
    body = base64.encodebytes(encoding).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def test_a_signature_bit_string_with_unused_bits_is_refused() -> None:
    """cryptography reads the same signature bytes; OpenSSL, and so NVIDIA's verifier, refuses it."""
    # A certificate whose signature's last bit is 0, so that "1 unused bit" is itself valid DER.
    cert = next(c for c in _chain() if c.signature[-1] % 2 == 0)
    encoding = bytearray(cert.public_bytes(serialization.Encoding.DER))
    bit_string = encoding.rindex(cert.signature) - 1  # the unused-bits byte before the signature value
    assert encoding[bit_string] == 0
    encoding[bit_string] = 1
    assert x509.load_der_x509_certificate(bytes(encoding)).signature == cert.signature
    exc = _parse_refused(_pem(bytes(encoding)), ChainMalformed, "certificate[0]")
    assert "unused bits" in exc.reason


def test_an_outer_algorithm_other_than_the_tbs_one_is_refused() -> None:
    encoding = _leaf_der()
    cert = _chain()[0]
    tbs_end = encoding.index(cert.tbs_certificate_bytes) + len(cert.tbs_certificate_bytes)
    sha384, sha256 = bytes.fromhex("2a8648ce3d040303"), bytes.fromhex("2a8648ce3d040302")
    assert encoding[tbs_end:].count(sha384) == 1
    swapped = encoding[:tbs_end] + encoding[tbs_end:].replace(sha384, sha256)
    assert x509.load_der_x509_certificate(swapped).signature_algorithm_oid.dotted_string.endswith(".4.3.2")
    exc = _parse_refused(_pem(swapped), ChainMalformed, "certificate[0]")
    assert "outer signature algorithm" in exc.reason


def test_a_key_that_is_not_a_curve_point() -> None:
    """A certificate cryptography loads but whose key it cannot read: refused when parsed, and by the
    signature check when handed over directly."""
    cert = _chain()[0]
    point = cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    encoding = _leaf_der()
    at = encoding.index(point) + 10
    broken = encoding[:at] + bytes([encoding[at] ^ 1]) + encoding[at + 1 :]
    loaded = x509.load_der_x509_certificate(broken)
    _parse_refused(_pem(broken), ChainMalformed, "certificate[0]")
    with pytest.raises(ReportKeyUnsupported) as info:
        verify_report_signature(parse_report(HOPPER.report), loaded)
    assert "cannot be read" in info.value.reason
