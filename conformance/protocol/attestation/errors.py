"""Every way the attestation core can refuse evidence, as a named exception.

The same contract as :mod:`conformance.protocol.errors`: a stable ``code``, the ``field`` at fault
(a dotted path such as ``evidence[1].report.response.opaque_data`` or ``evidence[0].certificate[2]``)
and a ``reason`` sentence that never quotes the refused bytes. A conformance check judges one step of
the binding (is the nonce bound, is the signature good, does the chain reach the root), so each step
refuses with its own classes and a check can tell "forged" from "expired" from "bound to another key"
without parsing a message.
"""

from __future__ import annotations

from ..errors import ProtocolError


class AttestationError(ProtocolError):
    """Base class: attestation evidence was refused."""

    code = "ATTESTATION_INVALID"


# --- the evidence container (zlib + JSON) -----------------------------------------------------------


class EvidenceError(AttestationError):
    """``evidence_bytes`` is not the zlib-compressed JSON array upstream writes."""

    code = "EVIDENCE_INVALID"


class EvidenceNotZlib(EvidenceError):
    """The bytes are not one complete zlib stream (bad header, bad checksum, or cut short)."""

    code = "EVIDENCE_NOT_ZLIB"


class EvidenceTooLarge(EvidenceError):
    """The evidence inflates past the cap, or holds more entries than any node has devices."""

    code = "EVIDENCE_TOO_LARGE"


class EvidenceTrailingData(EvidenceError):
    """Bytes follow the end of the zlib stream: two readers could disagree on what was committed."""

    code = "EVIDENCE_TRAILING_DATA"


class EvidenceEmpty(EvidenceError):
    """The array holds no entry: nothing is attested."""

    code = "EVIDENCE_EMPTY"


class UnknownEvidenceType(EvidenceError):
    """``evidence_type`` is neither ``device`` nor ``nvswitch``."""

    code = "EVIDENCE_UNKNOWN_TYPE"


# --- the SPDM attestation report --------------------------------------------------------------------


class ReportError(AttestationError):
    """The attestation report is not a well-formed SPDM GET_MEASUREMENTS request + response."""

    code = "REPORT_INVALID"


class ReportTooLarge(ReportError):
    code = "REPORT_TOO_LARGE"


class ReportTruncated(ReportError):
    """The report ends inside the named field."""

    code = "REPORT_TRUNCATED"


class ReportTrailingBytes(ReportError):
    """Bytes follow the signature, or a length field claims less than its section holds."""

    code = "REPORT_TRAILING_BYTES"


class ReportUnexpectedValue(ReportError):
    """A fixed field (version, request/response code, measurement specification) has another value."""

    code = "REPORT_UNEXPECTED_VALUE"


class ReportNoMeasurements(ReportError):
    code = "REPORT_NO_MEASUREMENTS"


class ReportDuplicate(ReportError):
    """Two measurement blocks share an index, or two opaque fields a type: which one counts?"""

    code = "REPORT_DUPLICATE"


# --- the certificate chain --------------------------------------------------------------------------


class ChainError(AttestationError):
    """The certificate chain does not lead from the report's signer to a trusted root."""

    code = "CHAIN_INVALID"


class ChainMalformed(ChainError):
    """The ``certificate`` field is not a concatenation of PEM certificates."""

    code = "CHAIN_MALFORMED"


class ChainLength(ChainError):
    """Too few certificates to hold a signer, or more than any device chain has."""

    code = "CHAIN_LENGTH"


class ChainIssuerMismatch(ChainError):
    """A certificate's issuer name is not the subject name of the next certificate up."""

    code = "CHAIN_ISSUER_MISMATCH"


class ChainSignatureInvalid(ChainError):
    """A certificate's signature does not verify under the next certificate's key: a broken chain."""

    code = "CHAIN_SIGNATURE_INVALID"


class ChainIssuerNotCa(ChainError):
    """An issuing certificate is not a CA (basic constraints, key usage or path length)."""

    code = "CHAIN_ISSUER_NOT_CA"


class ChainUntrustedRoot(ChainError):
    """The chain does not end at, or under, one of the trusted roots."""

    code = "CHAIN_UNTRUSTED_ROOT"


class CertificateExpired(ChainError):
    code = "CERT_EXPIRED"


class CertificateNotYetValid(ChainError):
    code = "CERT_NOT_YET_VALID"


class CertificateUnhandledCritical(ChainError):
    """A certificate carries a critical extension this verifier does not process (RFC 5280 4.2)."""

    code = "CERT_UNHANDLED_CRITICAL_EXTENSION"


class CertificateKeyUsage(ChainError):
    """The signing (leaf) certificate's key usage does not allow digital signatures."""

    code = "CERT_KEY_USAGE"


# --- the binding of the report ----------------------------------------------------------------------


class NonceMismatch(AttestationError):
    """The report answers another nonce: it is bound to another key or contract nonce (or replayed)."""

    code = "REPORT_NONCE_MISMATCH"


class ReportSignatureInvalid(AttestationError):
    """The report's signature does not verify under the leaf certificate's key over the signed bytes."""

    code = "REPORT_SIGNATURE_INVALID"


class ReportKeyUnsupported(AttestationError):
    """The leaf certificate's key is not the ECDSA P-384 key NVIDIA reports are signed with."""

    code = "REPORT_KEY_UNSUPPORTED"


class FwidMismatch(AttestationError):
    """The firmware ID in the report's opaque data differs from the one in the leaf certificate."""

    code = "REPORT_FWID_MISMATCH"
