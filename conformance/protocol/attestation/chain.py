"""The certificate chain of an attestation report, and the report's signature under its leaf.

Format (confirmed from both ends): the ``certificate`` field is base64 of the bytes NVML returns as
``attestationCertChain`` (atoma-node ``nvml_cc.rs``, ``fetch_device_certificate_chain``), which are
PEM certificates back to back, the signer (leaf) first and NVIDIA's root last: NVIDIA's verifier
splits them at ``-----END CERTIFICATE-----`` (``nvml/gpu_cert_chains.py``, ``extract_cert_chain``),
and the chains in its samples and in atoma-network/nvrust's ``evidence.json`` are five PEM blocks.

Trust. NVIDIA's verifier drops the root the device sends and puts its own copy of the NVIDIA Device
Identity CA in its place (``GpuCertificateChains.__init__``). Here the chain must end *at* a trusted
root (the same DER bytes) or *under* one (its last certificate issued by a trusted root); a
self-signed look-alike is refused as untrusted. Each certificate must be issued by the next (names
and an ECDSA signature), every issuer must be a CA (basic constraints, ``keyCertSign`` when key usage
is present, path length), every certificate must be valid at ``now`` (a parameter: this module reads
no clock), and no certificate may carry a critical extension this code does not process. The
structure is judged before the dates, so a forged chain is called forged even when it has also
expired.

The report is signed with ECDSA P-384 over SHA-384 and the signature is stored raw, r ‖ s, 48 bytes
each, big-endian: NVIDIA verifies it with python-ecdsa's ``VerifyingKey.verify`` whose default
decoder is ``sigdecode_string`` (``attestation/__init__.py``, ``verify_signature``; ``HashFunction =
sha384`` and ``signature_length = 96`` in ``config.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..b64 import b64decode
from ..errors import Base64Error
from . import der
from .errors import (
    CertificateExpired,
    CertificateKeyUsage,
    CertificateNotYetValid,
    CertificateUnhandledCritical,
    ChainIssuerMismatch,
    ChainIssuerNotCa,
    ChainLength,
    ChainMalformed,
    ChainSignatureInvalid,
    ChainUntrustedRoot,
    FwidMismatch,
    ReportKeyUnsupported,
    ReportSignatureInvalid,
)
from .spdm import SIGNATURE_LEN, AttestationReport

MAX_CHAIN_LENGTH = 8  # NVIDIA's GPU and NVSwitch chains have 5 (MAX_CERT_CHAIN_LENGTH)
MAX_CHAIN_BYTES = 64 * 1024
FIELD = "certificate"
# TCG DICE extensions NVIDIA reads the firmware ID from (cc_admin_utils.py, extract_fwid).
FWID_EXTENSION_OIDS = frozenset({x509.ObjectIdentifier("2.23.133.5.4.1"), x509.ObjectIdentifier("2.23.133.5.4.1.1")})
_HANDLED_CRITICAL = frozenset({x509.oid.ExtensionOID.BASIC_CONSTRAINTS, x509.oid.ExtensionOID.KEY_USAGE})
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----")
_WHITESPACE = re.compile(rb"\s+")
_E = TypeVar("_E", bound=x509.ExtensionType)


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A chain that verified: ``path`` from the leaf up (without the anchor), and the trusted ``anchor``."""

    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate

    @property
    def leaf(self) -> x509.Certificate:
        return self.path[0]


# --- parsing ----------------------------------------------------------------------------------------


def parse_chain(data: bytes, *, field: str = FIELD) -> tuple[x509.Certificate, ...]:
    """Parse PEM certificates back to back (only whitespace between them), leaf first."""
    if len(data) > MAX_CHAIN_BYTES:
        raise ChainLength(f"is {len(data):,} bytes, more than the {MAX_CHAIN_BYTES:,} allowed", field=field)
    certificates: list[x509.Certificate] = []
    position = 0
    for match in _PEM_BLOCK.finditer(data):
        if data[position : match.start()].strip():
            raise ChainMalformed(f"has text other than whitespace before certificate {len(certificates)}", field=field)
        position = match.end()
        where = f"{field}[{len(certificates)}]"
        if len(certificates) == MAX_CHAIN_LENGTH:
            raise ChainLength(f"has more than {MAX_CHAIN_LENGTH} certificates", field=field)
        try:
            encoding = b64decode(_WHITESPACE.sub(b"", match.group(1)).decode("ascii"), field=where)
        except Base64Error as exc:
            raise ChainMalformed(f"is not canonical base64 inside its PEM block ({exc.reason})", field=where) from None
        certificates.append(_load_certificate(encoding, where))
    if data[position:].strip():
        raise ChainMalformed("has text other than whitespace after its last certificate", field=field)
    if not certificates:
        raise ChainMalformed("holds no PEM certificate", field=field)
    return tuple(certificates)


def _load_certificate(encoding: bytes, where: str) -> x509.Certificate:
    """Load a DER certificate and read every part that cryptography parses lazily (names, dates,
    extensions, key), so that a malformed one is refused here, named, instead of raising later."""
    try:
        cert = x509.load_der_x509_certificate(encoding)
        _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = list(cert.extensions)
        cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ChainMalformed(
            f"is not a well-formed DER X.509 certificate ({type(exc).__name__})", field=where
        ) from None
    _check_frame(encoding, where)
    return cert


def _check_frame(encoding: bytes, where: str) -> None:
    """What cryptography accepts and OpenSSL (NVIDIA's verifier) refuses, so that one certificate has
    one encoding: the signature BIT STRING must have no unused bits, and the outer signature algorithm
    must be the one the TBS names (RFC 5280 4.1.1.2)."""
    (outer,) = der.items(encoding)  # cryptography has checked the frame: one SEQUENCE of three items
    tbs, algorithm, signature = der.children(outer)
    if signature.content[:1] != b"\x00":
        raise ChainMalformed("has a signature BIT STRING with unused bits", field=where)
    inner = [item for item in der.children(tbs) if item.tag == der.SEQUENCE]
    if not inner or inner[0].encoding != algorithm.encoding:
        raise ChainMalformed("has an outer signature algorithm other than the one its TBS names", field=where)


def parse_roots(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Trusted roots given as PEM (one or more certificates)."""
    return parse_chain(pem, field="trusted_roots")


@cache
def nvidia_device_root() -> x509.Certificate:
    """The NVIDIA Device Identity CA, vendored from NVIDIA's local GPU verifier (see ``data/README.md``)."""
    pem = (resources.files(__package__) / "data" / "verifier_device_root.pem").read_bytes()
    (root,) = parse_chain(pem, field="verifier_device_root.pem")
    return root


def certificate_pem(certificates: Sequence[x509.Certificate]) -> bytes:
    """Certificates as NVML hands them out: PEM blocks back to back."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


# --- the chain --------------------------------------------------------------------------------------


def verify_chain(
    chain: Sequence[x509.Certificate],
    trusted_roots: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    field: str = FIELD,
) -> VerifiedChain:
    """Verify that ``chain`` (leaf first) leads to one of ``trusted_roots`` and is valid at ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not chain:
        raise ChainLength("holds no certificate", field=field)
    path, anchor, anchor_field = _anchor(list(chain), trusted_roots, field)
    if not path:
        raise ChainLength("holds only the trusted root: no certificate for the report's signer", field=field)
    fields = [f"{field}[{i}]" for i in range(len(path))]
    issuers = [*path[1:], anchor]
    for i, (cert, issuer) in enumerate(zip(path, issuers, strict=True)):
        _check_issued(cert, issuer, fields[i], below=i)
    for cert, where in zip([*path, anchor], [*fields, anchor_field], strict=True):
        _check_critical(cert, where)
    _check_leaf_usage(path[0], fields[0])
    for cert, where in zip([*path, anchor], [*fields, anchor_field], strict=True):
        _check_dates(cert, now, where)
    return VerifiedChain(tuple(path), anchor)


def _anchor(
    chain: list[x509.Certificate], trusted_roots: Sequence[x509.Certificate], field: str
) -> tuple[list[x509.Certificate], x509.Certificate, str]:
    """Split ``chain`` into the path to verify and its trust anchor."""
    top = chain[-1]
    top_der = top.public_bytes(serialization.Encoding.DER)
    for root in trusted_roots:
        if root.public_bytes(serialization.Encoding.DER) == top_der:
            return chain[:-1], top, f"{field}[{len(chain) - 1}]"
    for root in trusted_roots:
        if top.issuer == root.subject and _signed_by(top, root):
            return chain, root, "trusted_root"
    where = f"{field}[{len(chain) - 1}]"
    if top.issuer == top.subject:
        raise ChainUntrustedRoot("is a self-issued certificate that is not a trusted root", field=where)
    raise ChainUntrustedRoot("is not issued by any trusted root", field=where)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_issued(cert: x509.Certificate, issuer: x509.Certificate, where: str, *, below: int) -> None:
    """``cert`` was issued by ``issuer``, a CA allowed to have ``below`` intermediate CAs beneath it."""
    if cert.issuer != issuer.subject:
        raise ChainIssuerMismatch("names an issuer that is not the subject of the next certificate", field=where)
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise ChainIssuerNotCa("is issued by a certificate whose basic constraints do not make it a CA", field=where)
    if constraints.path_length is not None and below > constraints.path_length:
        raise ChainIssuerNotCa(
            f"is issued by a CA whose path length {constraints.path_length} allows fewer intermediates", field=where
        )
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise ChainIssuerNotCa("is issued by a certificate whose key usage does not allow keyCertSign", field=where)
    if not _signed_by(cert, issuer):
        raise ChainSignatureInvalid(
            "has a signature that does not verify under the next certificate's key", field=where
        )


def _check_critical(cert: x509.Certificate, where: str) -> None:
    for extension in cert.extensions:
        if extension.critical and extension.oid not in _HANDLED_CRITICAL:
            raise CertificateUnhandledCritical(
                f"has the critical extension {extension.oid.dotted_string}, which this verifier does not process",
                field=where,
            )


def _check_leaf_usage(leaf: x509.Certificate, where: str) -> None:
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise CertificateKeyUsage("signs reports but its key usage does not allow digitalSignature", field=where)


def _check_dates(cert: x509.Certificate, now: dt.datetime, where: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(f"is not valid before {cert.not_valid_before_utc.isoformat()}", field=where)
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(f"expired at {cert.not_valid_after_utc.isoformat()}", field=where)


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


# --- the report under the leaf ----------------------------------------------------------------------


def verify_report_signature(report: AttestationReport, leaf: x509.Certificate, *, field: str = "report") -> None:
    """Verify the report's raw r ‖ s ECDSA P-384/SHA-384 signature under ``leaf``'s key over ``report.signed``."""
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise ReportKeyUnsupported("is signed by a leaf certificate whose key cannot be read", field=field) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise ReportKeyUnsupported("is signed by a leaf certificate whose key is not ECDSA P-384", field=field)
    half = SIGNATURE_LEN // 2
    r = int.from_bytes(report.signature[:half], "big")
    s = int.from_bytes(report.signature[half:], "big")
    try:
        key.verify(encode_dss_signature(r, s), report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise ReportSignatureInvalid(
            "has a signature that does not verify under the leaf certificate's key", field=f"{field}.response.signature"
        ) from None


def certificate_fwid(cert: x509.Certificate) -> bytes | None:
    """The firmware ID a certificate carries in its TCG DICE extension, or None.

    NVIDIA takes the last 48 bytes of the extension on Hopper and ``fwids[0]`` of a DICE TcbInfo on
    Blackwell. Both are the digest of the first ``FWID ::= SEQUENCE { hashAlg OID, digest OCTET
    STRING }`` in the extension, which is what this walks the DER for.
    """
    for extension in cert.extensions:
        if extension.oid in FWID_EXTENSION_OIDS and isinstance(extension.value, x509.UnrecognizedExtension):
            try:
                return _first_fwid(extension.value.value, depth=0)
            except ValueError:
                return None
    return None


def check_fwid(report: AttestationReport, leaf: x509.Certificate, *, field: str = "report") -> bool:
    """Whether the FWID binding applies (the report claims one); raise :class:`FwidMismatch` when it fails."""
    claimed = report.fwid
    if claimed is None:
        return False
    carried = certificate_fwid(leaf)
    if carried is None:
        raise FwidMismatch("claims a firmware ID, but the leaf certificate carries none", field=f"{field}.fwid")
    if carried != claimed:
        raise FwidMismatch("claims a firmware ID other than the leaf certificate's", field=f"{field}.fwid")
    return True


_MAX_DER_DEPTH = 8


def _first_fwid(data: bytes, depth: int) -> bytes | None:
    if depth > _MAX_DER_DEPTH:
        raise ValueError("nested too deeply")
    for item in der.items(data):
        if not item.tag & der.CONSTRUCTED:
            continue
        inner = der.children(item)
        if item.tag == der.SEQUENCE and [c.tag for c in inner] == [der.OID, der.OCTET_STRING]:
            return inner[1].content
        found = _first_fwid(item.content, depth + 1)
        if found is not None:
            return found
    return None
