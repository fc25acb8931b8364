"""A test certificate authority and device for the mock node: evidence our verifier accepts only when
told to trust this CA's root.

The chain has NVIDIA's shape (five certificates, leaf first: ``GSP FMC LF`` ← ``GSP BROM`` ←
``Provisioner ICA 1`` ← ``Identity`` ← ``Device Identity CA``; ECDSA P-384 with SHA-384; CA
certificates with critical basic constraints and ``keyCertSign``; the leaf with a critical
``digitalSignature`` key usage and a TCG DICE FWID extension in the Hopper form), every name marked
TEST. Reports are built with :func:`~.spdm.encode_report`, the exact inverse of the parser, and signed
the way NVIDIA's GPUs sign (raw r ‖ s), so the mock serves evidence through the very code path real
evidence takes.

Everything derives from ``seed``: the keys (SHA-512 of the seed and a label, reduced into the P-384
scalar range), the serial numbers, the measurements, and the signatures (RFC 6979 deterministic
ECDSA, for certificates too: ``ecdsa_deterministic`` needs cryptography 45 or later). The same seed
gives the same bytes on every run, so a test's evidence is a fixed vector.

Never trusted by default: the suite adds :attr:`DeviceTestCa.root` to the trusted roots only when the
operator passes ``--trust-test-ca``; anyone can rebuild these keys from the seed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from .binding import report_nonce
from .chain import certificate_pem
from .evidence import EvidenceEntry, EvidenceType, encode_evidence
from .spdm import (
    SIGNATURE_LEN,
    MeasurementBlock,
    OpaqueField,
    OpaqueType,
    SpdmRequest,
    SpdmResponse,
    encode_report,
    signed_bytes,
)

DEFAULT_SEED = b"atoma-conformance mock node"
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)  # like NVIDIA's device certificates
FWID_LEN = 48
MEASUREMENT_COUNT = 64  # a Hopper report has 64 blocks of 48-byte SHA-384 values
_DOMAIN = b"atoma-conformance test CA v1\0"
_P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
)
_FWID_OID = x509.ObjectIdentifier("2.23.133.5.4.1")
_SHA384_OID_DER = bytes.fromhex("0609608648016503040202")
_ORGANIZATION = "Atoma Conformance (TEST ONLY, not NVIDIA)"
_SHARED = frozenset({"root", "identity", "provisioner"})  # the same for every device of a seed
# (label, common name) from the root down; the leaf is last.
_LEVELS = (
    ("root", "TEST Device Identity CA"),
    ("identity", "TEST GH100 Identity"),
    ("provisioner", "TEST GH100 Provisioner ICA 1"),
    ("brom", "TEST GH100 A01 GSP BROM"),
    ("leaf", "TEST GH100 A01 GSP FMC LF"),
)


def _digest(seed: bytes, label: str) -> bytes:
    return hashlib.sha512(_DOMAIN + len(seed).to_bytes(4, "big") + seed + label.encode()).digest()


def derive_key(seed: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """A P-384 key from ``seed`` and ``label``: 512 hash bits reduced into [1, n-1] (bias below 2**-128)."""
    scalar = 1 + int.from_bytes(_digest(seed, label), "big") % (_P384_ORDER - 1)
    return ec.derive_private_key(scalar, ec.SECP384R1())


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-384/SHA-384 over ``data``, deterministic (RFC 6979), encoded as NVIDIA's raw r ‖ s."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384(), deterministic_signing=True)))
    half = SIGNATURE_LEN // 2
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def fwid_extension(key: ec.EllipticCurvePublicKey, fwid: bytes) -> bytes:
    """The Hopper form NVIDIA's leaf carries under 2.23.133.5.4.1:
    ``SEQUENCE { INTEGER 1, SubjectPublicKeyInfo, SEQUENCE { sha384 OID, OCTET STRING fwid } }``."""
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fwid_seq = _der(0x30, _SHA384_OID_DER + _der(0x04, fwid))
    return _der(0x30, _der(0x02, b"\x01") + spki + fwid_seq)


@dataclass(frozen=True, slots=True)
class DeviceTestCa:
    """A test device: its chain (leaf first, root last, as NVML hands it out) and its signing key."""

    seed: bytes
    device: int
    certificates: tuple[x509.Certificate, ...]
    leaf_key: ec.EllipticCurvePrivateKey
    fwid: bytes

    @property
    def root(self) -> x509.Certificate:
        return self.certificates[-1]

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @classmethod
    def create(
        cls,
        seed: bytes = DEFAULT_SEED,
        *,
        device: int = 0,
        not_before: dt.datetime = NOT_BEFORE,
        not_after: dt.datetime = NOT_AFTER,
    ) -> DeviceTestCa:
        """Build the chain for device ``device`` under the root that ``seed`` derives.

        The root and the CAs above the device's own (``root``, ``identity``, ``provisioner``) are the
        same for every device of a seed; ``brom`` and ``leaf`` are per device, as on real GPUs.
        """
        keys: list[ec.EllipticCurvePrivateKey] = []
        names: list[x509.Name] = []
        scopes = [label if label in _SHARED else f"{label}/{device}" for label, _ in _LEVELS]
        for scoped, (_, common_name) in zip(scopes, _LEVELS, strict=True):
            keys.append(derive_key(seed, scoped))
            names.append(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
                        x509.NameAttribute(NameOID.SERIAL_NUMBER, _digest(seed, scoped)[:10].hex().upper()),
                    ]
                )
            )
        fwid = _digest(seed, f"fwid/{device}")[:FWID_LEN]
        chain: list[x509.Certificate] = []
        for level in range(len(_LEVELS)):
            issuer = max(level - 1, 0)
            is_leaf = level == len(_LEVELS) - 1
            key = keys[level].public_key()
            builder = (
                x509.CertificateBuilder()
                .subject_name(names[level])
                .issuer_name(names[issuer])
                .public_key(key)
                .serial_number(int.from_bytes(_digest(seed, f"serial/{scopes[level]}")[:19], "big") >> 1 or 1)
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[issuer].public_key()), critical=False
                )
            )
            if is_leaf:
                builder = builder.add_extension(_usage(digital_signature=True), critical=True).add_extension(
                    x509.UnrecognizedExtension(_FWID_OID, fwid_extension(key, fwid)), critical=False
                )
            else:
                builder = builder.add_extension(
                    x509.BasicConstraints(ca=True, path_length=None), critical=True
                ).add_extension(_usage(key_cert_sign=True), critical=True)
            chain.append(builder.sign(keys[issuer], hashes.SHA384(), ecdsa_deterministic=True))
        return cls(seed, device, tuple(reversed(chain)), keys[-1], fwid)

    def chain_pem(self) -> bytes:
        """The ``certificate`` bytes of an evidence entry: PEM blocks, leaf first."""
        return certificate_pem(self.certificates)

    def root_pem(self) -> bytes:
        return certificate_pem([self.root])

    def request(self, nonce: bytes) -> SpdmRequest:
        """The GET_MEASUREMENTS request as NVIDIA's driver sends it: SPDM 1.1, signature requested, all blocks."""
        return SpdmRequest(version=0x11, param1=0x01, param2=0xFF, nonce=bytes(nonce), slot_id_param=0x00)

    def response(self, nonce: bytes) -> SpdmResponse:
        """The response, signature still blank: 64 SHA-384-sized measurements and NVIDIA-style opaque data."""
        blocks = tuple(
            MeasurementBlock(index=i, value_type=0x01, value=_digest(self.seed, f"measurement/{self.device}/{i}")[:48])
            for i in range(1, MEASUREMENT_COUNT + 1)
        )
        opaque = (
            OpaqueField(OpaqueType.VBIOS_VERSION, bytes.fromhex("009f009601000000")),
            OpaqueField(OpaqueType.DRIVER_VERSION, b"550.90.07\0"),
            OpaqueField(OpaqueType.FWID, self.fwid),
            OpaqueField(OpaqueType.PROTECTED_PCIE_STATUS, b"\x55"),
        )
        responder_nonce = hashlib.sha256(_digest(self.seed, f"responder/{self.device}") + nonce).digest()
        return SpdmResponse(0x11, 0x00, 0x00, blocks, responder_nonce, opaque, bytes(SIGNATURE_LEN))

    def report(self, nonce: bytes) -> bytes:
        """A signed attestation report answering ``nonce``."""
        request, response = self.request(nonce), self.response(nonce)
        signature = sign_raw(self.leaf_key, signed_bytes(request, response))
        return encode_report(request, dataclasses.replace(response, signature=signature))

    def entry(self, nonce: bytes, evidence_type: EvidenceType = EvidenceType.DEVICE) -> EvidenceEntry:
        return EvidenceEntry(evidence_type, self.chain_pem(), self.report(nonce))

    def reference_manifest(
        self,
        *,
        colloquial_version: str = "96.00.9F.00.01",
        active: Collection[int] | None = None,
        drift: int | None = None,
    ) -> bytes:
        """A RIM for this device: SWID tag XML in NVIDIA's layout, its golden values this device's measurements.

        One Resource per report block (RIM index = SPDM block index - 1), one SHA-384 alternative each,
        every one active unless ``active`` names the SPDM indices to mark active (so a test can split a
        golden set into a driver and a VBIOS RIM). ``drift``, an SPDM index, gets a golden value the
        device does not report. The default ``colloquial_version`` is the VBIOS version this device's
        reports name (``report_vbios_version``). Unsigned: there is no ``ds:Signature``, and nothing in
        the suite verifies one (see :mod:`.rim`).
        """
        blocks = self.response(bytes(32)).blocks  # the measurements do not depend on the nonce
        indices = {block.index for block in blocks}
        if drift is not None and drift not in indices:
            raise ValueError(f"drift {drift} is not a measurement index of the test device")
        chosen = indices if active is None else set(active)
        if not chosen <= indices:
            raise ValueError("active names an index the test device does not report")
        resources = []
        for block in blocks:
            value = block.value
            if block.index == drift:
                value = hashlib.sha384(b"drifted\0" + value).digest()
            rim_index = block.index - 1
            resources.append(
                f'        <ns0:Resource type="Measurement" index="{rim_index}"'
                f' active="{block.index in chosen}" alternatives="1" ns2:Hash0="{value.hex()}"'
                f' name="Measurement_{rim_index}" size="{len(value)}"/>\n'
            )
        tag_id = _digest(self.seed, f"rim/{self.device}/{colloquial_version}")[:48].hex()
        tcg = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
        text = (
            '<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"'
            ' xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"'
            ' xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384" corpus="false" name="GH100" patch="false"'
            f' supplemental="false" tagId="{tag_id}" version="1.0" tagVersion="0">\n'
            f'    <ns0:Entity name={quoteattr(_ORGANIZATION)} role="softwareCreator tagCreator"/>\n'
            f'    <ns0:Meta xmlns:ns1="{tcg}" colloquialVersion={quoteattr(colloquial_version)} edition="GPU"'
            ' product="GH100" revision="r1" PayloadType="direct" ns1:BindingSpec="RIMIM"'
            ' ns1:BindingSpecVersion="1.01" ns1:PlatformModel="GH100"/>\n'
            "    <ns0:Payload>\n" + "".join(resources) + "    </ns0:Payload>\n</SoftwareIdentity>\n"
        )
        return text.encode()


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def mock_evidence(
    contract_nonce: int,
    node_public_key: bytes,
    *,
    seed: bytes = DEFAULT_SEED,
    devices: int = 1,
    nvswitches: int = 0,
) -> bytes:
    """``evidence_bytes`` as a node commits them for ``node_public_key``: ``devices`` GPU entries then
    ``nvswitches`` NVSwitch entries, each its own test device, all answering the same report nonce."""
    nonce = report_nonce(contract_nonce, node_public_key)
    entries: Sequence[EvidenceEntry] = [
        *(DeviceTestCa.create(seed, device=i).entry(nonce) for i in range(devices)),
        *(DeviceTestCa.create(seed, device=devices + i).entry(nonce, EvidenceType.NVSWITCH) for i in range(nvswitches)),
    ]
    return encode_evidence(entries)
