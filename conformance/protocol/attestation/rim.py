"""NVIDIA's reference integrity manifests (RIMs): read one, and compare a report's measurements with them.

A RIM is an ISO/IEC 19770-2:2015 SWID tag (XML) that NVIDIA publishes per driver version and per
VBIOS build; the measurements an honest GPU reports are its golden values. The layout is the one
NVIDIA's local verifier reads (NVIDIA/nvtrust at ``028173093d43dbf37364bdc39ad7e696bccbce2e``,
``guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/``: ``rim/__init__.py`` parses it,
``verifier.py`` compares, ``config.py`` names the hash namespace; ``samples/*.swidtag`` are real
RIMs)::

    <SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
                      xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384"
                      name="GH100" version="1.0" tagId="…">
      <Entity name="NVIDIA Corporation" role="softwareCreator tagCreator"/>
      <Meta colloquialVersion="96.00.5E.00.01" product="GH100" edition="GPU" revision="r1" …/>
      <Payload>
        <Resource type="Measurement" index="0" active="True" alternatives="1"
                  ns2:Hash0="<96 hex digits>" name="Measurement_0" size="48"/>
        … one Resource per measurement index, 0 to 63 on Hopper …
      </Payload>
      <ds:Signature …>…</ds:Signature>      (XML-DSig, enveloped)
    </SoftwareIdentity>

``colloquialVersion`` is the driver version (``550.90.07``) or the VBIOS version (``96.00.5E.00.01``,
the form NVIDIA's ``utils.format_vbios_version`` prints the report's VBIOS_VERSION field in). A
Resource with ``alternatives="n"`` carries ``Hash0`` … ``Hash<n-1>`` in the SHA-384 namespace; the
measurement matches when it equals any one of them. An inactive Resource (``active="False"``) is not
compared: NVIDIA's driver and VBIOS RIMs each list every index and mark active only their own.

**Index numbering.** A RIM index is 0-based; an SPDM measurement block index is 1-based: RIM index
``i`` is the report's block ``i + 1``. NVIDIA's ``attestation/spdm_msrt_resp_msg.py``
(``MeasurementRecord.get_measurements``) stores block ``index`` at list position ``index - 1``, and
``verifier.py`` (``Verifier.verify``) compares RIM index ``i`` with position ``i`` of that list. The
sample pair ``samples/attestationReport.txt`` / ``samples/1010_0200_882_96005E0001_test_no_gpu.swidtag``
agrees under this mapping and under no other (``tests/test_attestation_rim.py`` checks it). Every
index this module returns or names is the report's (SPDM) one; messages add the RIM index.

**The RIM's own signature is NOT verified here.** A RIM is signed with XML-DSig (enveloped, C14N 1.1,
ECDSA P-384) under NVIDIA's RIM signing CA; verifying that needs XML canonicalisation and a
signature-reference processor this suite does not implement (the stdlib has neither C14N 1.1 nor
XML-DSig, and the suite takes no dependency such as signxml/lxml for it). So a manifest read here is
only as trustworthy as the file the operator supplied, and the check that uses it is INFO level and
says so. The ``ds:Signature`` element is skipped (its elements still count towards the cap).

Safety: the input is untrusted. Bytes over :data:`MAX_RIM_BYTES` are refused before parsing; any
DOCTYPE, ENTITY or NOTATION declaration is refused (a byte pre-scan, then expat handlers that raise at
the first declaration, before an internal subset is read), so neither entity expansion ("billion
laughs") nor external entities (XXE) can happen; no text content is kept; elements, depth,
measurements and alternatives are capped. Where NVIDIA's reader is lenient this one refuses, with the
field named (``rim.Payload.Resource[3].Hash0``): a missing or repeated Meta/Payload, a Payload child
that is not a Measurement Resource, ``active`` other than True/False, a hash that is not 48 bytes of
hex, a ``HashN`` beyond ``alternatives``, a digest in another hash namespace, a repeated index.

A measurement is compared by value (bytes), so hex case does not matter; NVIDIA compares lowercase hex
strings. NVIDIA's verifier means to skip RIM index 35 when the report's NVDEC0_STATUS is "disabled"
(``verifier.py``, ``is_msr_35_valid``), but it compares the raw opaque bytes with an ``Enum`` member,
which never holds, so it always compares index 35; this module always compares it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import NoReturn
from xml.parsers import expat

from .errors import AttestationError
from .spdm import AttestationReport, OpaqueType

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"  # NVIDIA's ``HashFunctionNamespace`` (config.py)
DIGEST_LEN = 48  # SHA-384
# A real RIM is about 20 KiB (64 Resources and a four-certificate signature); 4 MiB leaves room.
MAX_RIM_BYTES = 4 * 1024 * 1024
MAX_ELEMENTS = 4096  # a real RIM has about 90
MAX_DEPTH = 16  # a real RIM nests 5 deep (SoftwareIdentity/Signature/KeyInfo/X509Data/X509Certificate)
MAX_RIM_INDEX = 254  # RIM index + 1 is an SPDM block index, a byte (255 would overflow it)
MAX_MEASUREMENTS = MAX_RIM_INDEX + 1  # one per index: repeats are refused
MAX_ALTERNATIVES = 16  # real RIMs give 1 to 4
MAX_VERSION_LEN = 64  # colloquialVersion goes into messages: a version, not a payload
_FIELD = "rim"
_SEP = "\x01"  # expat's namespace separator: "uri\x01local" (a character no URI or name holds)
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!NOTATION", b"<!ELEMENT", b"<!ATTLIST")
_NUMBER = re.compile(r"[0-9]{1,6}")
_HASH_NAME = re.compile(r"Hash([0-9]+)")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_VBIOS_VERSION = re.compile(r"[0-9A-Fa-f]{2}(?:\.[0-9A-Fa-f]{2}){4}")
_DRIVER_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_TRUE = frozenset({"True", "true"})
_FALSE = frozenset({"False", "false"})


# --- errors -----------------------------------------------------------------------------------------


class RimError(AttestationError):
    """A reference integrity manifest was refused, or a set of them is not one golden set."""

    code = "RIM_INVALID"


class RimTooLarge(RimError):
    """The RIM is over :data:`MAX_RIM_BYTES`, or holds more elements, depth or measurements than the caps."""

    code = "RIM_TOO_LARGE"


class RimForbiddenDeclaration(RimError):
    """A DOCTYPE, ENTITY or NOTATION declaration: refused before anything is expanded or fetched."""

    code = "RIM_FORBIDDEN_DECLARATION"


class RimMalformed(RimError):
    """Not well-formed XML, or not the SWID tag layout NVIDIA's RIMs have (the field says where)."""

    code = "RIM_MALFORMED"


class RimDigestInvalid(RimError):
    """A golden value is not 48 bytes of hex, or is in a hash namespace other than SHA-384."""

    code = "RIM_DIGEST_INVALID"


class RimDuplicateIndex(RimError):
    """Two Resources of one RIM share an index: which one is golden?"""

    code = "RIM_DUPLICATE_INDEX"


class RimIndexConflict(RimError):
    """Two manifests both give an active golden value for one index: the golden set is ambiguous."""

    code = "RIM_INDEX_CONFLICT"


# --- the model --------------------------------------------------------------------------------------


class RimKind(StrEnum):
    """What a RIM covers, told by the shape of its ``colloquialVersion`` (the RIM says no more)."""

    DRIVER = "driver"  # digits and dots, "550.90.07"
    VBIOS = "vbios"  # five dotted hex pairs, "96.00.5E.00.01"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ReferenceMeasurement:
    """One Resource: ``index`` is the RIM's (0-based); the report's block is :attr:`spdm_index`."""

    index: int
    active: bool
    alternatives: tuple[bytes, ...]
    name: str = ""

    @property
    def spdm_index(self) -> int:
        """The SPDM measurement block index this golden value is for: RIM index + 1."""
        return self.index + 1


@dataclass(frozen=True, slots=True)
class ReferenceManifest:
    """A parsed RIM. Its XML signature is NOT verified (see the module docstring)."""

    name: str  # SoftwareIdentity/@name, the chip ("GH100")
    version: str  # SoftwareIdentity/@version, the tag's version ("1.0"), not the driver's
    tag_id: str
    colloquial_version: str  # Meta/@colloquialVersion: the driver or VBIOS version the RIM is for
    product: str  # Meta/@product ("GH100"), "" when absent
    kind: RimKind
    measurements: tuple[ReferenceMeasurement, ...]

    @property
    def label(self) -> str:
        """A short name for messages: ``VBIOS RIM 96.00.5E.00.01``."""
        kind = {RimKind.DRIVER: "driver ", RimKind.VBIOS: "VBIOS "}.get(self.kind, "")
        return f"{kind}RIM {self.colloquial_version}"

    def names_version(self, version: str) -> bool:
        """Whether this RIM is for ``version`` (NVIDIA compares the lowercased strings)."""
        return self.colloquial_version.lower() == version.lower()

    @property
    def active(self) -> Mapping[int, ReferenceMeasurement]:
        """SPDM block index → the active golden measurement for it, read-only."""
        return MappingProxyType({m.spdm_index: m for m in self.measurements if m.active})


@dataclass(frozen=True, slots=True)
class MeasurementMismatch:
    """A report measurement that equals none of its golden alternatives; ``reason`` is one line."""

    index: int  # the SPDM block index
    field: str  # e.g. "report.measurements[13]"
    reason: str


@dataclass(frozen=True, slots=True)
class MeasurementComparison:
    """The report against the golden set; every index is an SPDM block index (RIM index + 1).

    ``missing``: active golden indices the report has no block for. ``uncovered``: report blocks no
    manifest gives an active golden value for (not judged).
    """

    matched: tuple[int, ...]
    mismatched: tuple[MeasurementMismatch, ...]
    missing: tuple[int, ...]
    uncovered: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """Every active golden measurement is in the report and matches (NVIDIA's verdict)."""
        return not self.mismatched and not self.missing


# --- parsing ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Element:
    tag: str  # "uri\x01local", or "local" outside any namespace
    attrs: dict[str, str]
    children: list[_Element]


def _local(name: str) -> tuple[str, str]:
    """(namespace, local name) of an expat name."""
    uri, sep, local = name.rpartition(_SEP)
    return (uri, local) if sep else ("", name)


def _refuse_declaration(*_: object) -> NoReturn:
    raise RimForbiddenDeclaration("the RIM holds a DOCTYPE, ENTITY or NOTATION declaration", field=_FIELD)


def _parse_xml(data: bytes, field: str) -> _Element:
    for marker in _FORBIDDEN:
        if marker in data:
            raise RimForbiddenDeclaration(
                f"the RIM holds a {marker[2:].decode()} declaration (refused: entity expansion, external entities)",
                field=field,
            )
    parser = expat.ParserCreate(namespace_separator=_SEP)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_declaration
    parser.EntityDeclHandler = _refuse_declaration
    parser.UnparsedEntityDeclHandler = _refuse_declaration
    parser.NotationDeclHandler = _refuse_declaration
    parser.ElementDeclHandler = _refuse_declaration
    parser.AttlistDeclHandler = _refuse_declaration
    parser.ExternalEntityRefHandler = _refuse_declaration
    parser.SkippedEntityHandler = _refuse_declaration
    stack: list[_Element] = []
    roots: list[_Element] = []
    count = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise RimTooLarge(f"the RIM holds more than {MAX_ELEMENTS} elements", field=field)
        if len(stack) >= MAX_DEPTH:
            raise RimTooLarge(f"the RIM nests elements more than {MAX_DEPTH} deep", field=field)
        element = _Element(tag, attrs, [])
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except RimError as error:
        raise error.with_field(field) from None
    except expat.ExpatError as error:
        where = f"line {error.lineno}, column {error.offset}"
        message = expat.ErrorString(error.code) or "error"
        raise RimMalformed(f"not well-formed XML ({message}, {where})", field=field) from None
    if len(roots) != 1:  # expat allows one root only; kept as a guard
        raise RimMalformed("the document has no single root element", field=field)
    return roots[0]


def _only_child(parent: _Element, local: str, field: str) -> _Element:
    found = [child for child in parent.children if child.tag == f"{SWID_NS}{_SEP}{local}"]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise RimMalformed(f"the SoftwareIdentity has {what} {local} elements (exactly one expected)", field=field)
    return found[0]


def _attr(element: _Element, name: str, field: str, *, required: bool = True, default: str = "") -> str:
    value = element.attrs.get(name)
    if value is None:
        if required:
            raise RimMalformed(f"the required attribute {name} is missing", field=f"{field}.{name}")
        return default
    return value


def _number(element: _Element, name: str, field: str, low: int, high: int) -> int:
    text = _attr(element, name, field)
    if not _NUMBER.fullmatch(text):
        raise RimMalformed(f"{name} is not a decimal integer", field=f"{field}.{name}")
    value = int(text)
    if not low <= value <= high:
        raise RimMalformed(f"{name} is {value}, outside {low}..{high}", field=f"{field}.{name}")
    return value


def _digest(text: str, field: str) -> bytes:
    if len(text) != 2 * DIGEST_LEN:
        raise RimDigestInvalid(
            f"the digest is {len(text)} hex digits, not {2 * DIGEST_LEN} (SHA-384, {DIGEST_LEN} bytes)", field=field
        )
    if not _HEX.fullmatch(text):
        raise RimDigestInvalid("the digest is not hexadecimal", field=field)
    return bytes.fromhex(text)


def _measurement(element: _Element, field: str) -> ReferenceMeasurement:
    if element.tag != f"{SWID_NS}{_SEP}Resource":
        raise RimMalformed(f"a Payload child is {_local(element.tag)[1]}, not a Resource", field=field)
    kind = _attr(element, "type", field)
    if kind != "Measurement":
        raise RimMalformed("the Resource type is not Measurement", field=f"{field}.type")
    index = _number(element, "index", field, 0, MAX_RIM_INDEX)
    alternatives = _number(element, "alternatives", field, 1, MAX_ALTERNATIVES)
    size = _number(element, "size", field, 0, 1 << 16)
    if size != DIGEST_LEN:
        raise RimDigestInvalid(f"size is {size}, not {DIGEST_LEN} (SHA-384)", field=f"{field}.size")
    active_text = _attr(element, "active", field)
    if active_text not in _TRUE | _FALSE:
        raise RimMalformed("active is neither True nor False", field=f"{field}.active")
    values: dict[int, bytes] = {}
    for key, text in element.attrs.items():
        uri, local = _local(key)
        match = _HASH_NAME.fullmatch(local)
        if match is None:
            continue
        if uri != SHA384_NS:
            raise RimDigestInvalid(
                "the digest is not in the SHA-384 namespace (" + SHA384_NS + ")", field=f"{field}.{local}"
            )
        digits = match[1]
        position = int(digits) if len(digits) <= 2 else alternatives  # long or padded: refused below
        if position >= alternatives or digits != str(position):
            raise RimMalformed(
                f"{local} is not one of Hash0..Hash{alternatives - 1} (alternatives={alternatives})",
                field=f"{field}.{local}",
            )
        values[position] = _digest(text, f"{field}.{local}")
    for position in range(alternatives):
        if position not in values:
            raise RimMalformed(
                f"alternatives is {alternatives} but Hash{position} (SHA-384 namespace) is missing",
                field=f"{field}.Hash{position}",
            )
    return ReferenceMeasurement(
        index=index,
        active=active_text in _TRUE,
        alternatives=tuple(values[position] for position in range(alternatives)),
        name=element.attrs.get("name", ""),
    )


def _kind(colloquial_version: str) -> RimKind:
    if _VBIOS_VERSION.fullmatch(colloquial_version):
        return RimKind.VBIOS
    if _DRIVER_VERSION.fullmatch(colloquial_version):
        return RimKind.DRIVER
    return RimKind.UNKNOWN


def parse_rim(data: bytes, *, field: str = _FIELD) -> ReferenceManifest:
    """Read one RIM (SWID tag XML). Refuses, with the field named, anything unsafe or off-layout.

    The RIM's XML signature is NOT verified: this reads what the file says, nothing vouches for it.
    """
    if not isinstance(data, bytes | bytearray):
        raise RimMalformed("the RIM is not bytes", field=field)
    if len(data) > MAX_RIM_BYTES:
        raise RimTooLarge(f"the RIM is {len(data)} bytes, over the cap of {MAX_RIM_BYTES}", field=field)
    data = bytes(data)
    if not data:
        raise RimMalformed("the RIM is empty", field=field)
    root = _parse_xml(data, field)
    if root.tag != f"{SWID_NS}{_SEP}SoftwareIdentity":
        raise RimMalformed("the root element is not a SWID SoftwareIdentity (ISO/IEC 19770-2:2015)", field=field)
    name = _attr(root, "name", field)
    tag_id = _attr(root, "tagId", field)
    version = _attr(root, "version", field, required=False, default="0.0")  # the schema's default
    meta_field = f"{field}.Meta"
    meta = _only_child(root, "Meta", meta_field)
    colloquial = _attr(meta, "colloquialVersion", meta_field)
    if not colloquial or len(colloquial) > MAX_VERSION_LEN or not (colloquial.isascii() and colloquial.isprintable()):
        raise RimMalformed(
            f"colloquialVersion is not 1 to {MAX_VERSION_LEN} printable ASCII characters",
            field=f"{meta_field}.colloquialVersion",
        )
    payload_field = f"{field}.Payload"
    payload = _only_child(root, "Payload", payload_field)
    if not payload.children:
        raise RimMalformed("the Payload holds no measurement", field=payload_field)
    if len(payload.children) > MAX_MEASUREMENTS:
        raise RimTooLarge(f"the Payload holds more than {MAX_MEASUREMENTS} measurements", field=payload_field)
    measurements: list[ReferenceMeasurement] = []
    seen: dict[int, int] = {}
    for position, child in enumerate(payload.children):
        item_field = f"{payload_field}.Resource[{position}]"
        measurement = _measurement(child, item_field)
        if measurement.index in seen:
            raise RimDuplicateIndex(
                f"index {measurement.index} is also Resource[{seen[measurement.index]}]'s", field=f"{item_field}.index"
            )
        seen[measurement.index] = position
        measurements.append(measurement)
    return ReferenceManifest(
        name=name,
        version=version,
        tag_id=tag_id,
        colloquial_version=colloquial,
        product=meta.attrs.get("product", ""),
        kind=_kind(colloquial),
        measurements=tuple(measurements),
    )


# --- the versions a report names --------------------------------------------------------------------


def report_driver_version(report: AttestationReport) -> str | None:
    """The driver version the report names (opaque DRIVER_VERSION, NUL-terminated ASCII), or None."""
    raw = report.opaque_field(OpaqueType.DRIVER_VERSION)
    if raw is None:
        return None
    text = raw.rstrip(b"\0")
    if not text or len(text) > 64 or not all(0x21 <= byte <= 0x7E for byte in text):
        return None
    return text.decode("ascii")


def report_vbios_version(report: AttestationReport) -> str | None:
    """The VBIOS version the report names, as RIMs spell it (``96.00.5e.00.01``; compare case-blind), or None.

    The opaque VBIOS_VERSION field is 8 bytes; the version is bytes 3, 2, 1, 0 then 4, in hex (what
    NVIDIA's ``format_vbios_version`` prints: ``005e009601000000`` is ``96.00.5e.00.01``).
    """
    raw = report.opaque_field(OpaqueType.VBIOS_VERSION)
    if raw is None or len(raw) != 8:
        return None
    return ".".join(f"{raw[i]:02x}" for i in (3, 2, 1, 0, 4))


# --- comparison -------------------------------------------------------------------------------------


def _golden_set(
    manifests: Sequence[ReferenceManifest], field: str
) -> dict[int, tuple[ReferenceManifest, ReferenceMeasurement]]:
    """SPDM block index → the manifest giving the active golden value for it, and that value.

    Two manifests with an active value for one index are refused (NVIDIA's verifier refuses a driver
    and a VBIOS RIM that do, ``Verifier.generate_golden_measurement_list``); inactive entries overlap
    freely, as in every real driver/VBIOS pair (each lists all 64 indices).
    """
    owner: dict[int, tuple[ReferenceManifest, ReferenceMeasurement]] = {}
    for manifest in manifests:
        for measurement in manifest.measurements:
            if not measurement.active:
                continue
            index = measurement.spdm_index
            if index in owner:
                other = owner[index][0]
                raise RimIndexConflict(
                    f"{other.label} and {manifest.label} both give an active golden value for measurement {index}"
                    f" (RIM index {measurement.index}): the golden set is ambiguous",
                    field=f"{field}.measurements[{index}]",
                )
            owner[index] = (manifest, measurement)
    return owner


def compare_measurements(
    report: AttestationReport, manifests: Sequence[ReferenceManifest], *, field: str = "report"
) -> MeasurementComparison:
    """Compare every active golden measurement with the report's block of the same (SPDM) index.

    A block matches when its value equals one of the alternatives. Refuses (:class:`RimIndexConflict`)
    manifests that give one index two active golden values. Nothing here verifies a RIM's signature.
    """
    owner = _golden_set(manifests, field)
    values = report.measurements
    matched: list[int] = []
    mismatched: list[MeasurementMismatch] = []
    missing: list[int] = []
    for index in sorted(owner):
        manifest, golden = owner[index]
        value = values.get(index)
        if value is None:
            missing.append(index)
            continue
        if value in golden.alternatives:
            matched.append(index)
            continue
        where = f"measurement {index} (RIM index {golden.index} of {manifest.label})"
        if len(value) != DIGEST_LEN:
            reason = f"{where}: the report's value is {len(value)} bytes, the RIM's are {DIGEST_LEN}"
        else:
            count = len(golden.alternatives)
            reason = f"{where}: the report's value matches none of the {count} golden alternative(s)"
        mismatched.append(MeasurementMismatch(index, f"{field}.measurements[{index}]", reason))
    uncovered = tuple(sorted(index for index in values if index not in owner))
    return MeasurementComparison(tuple(matched), tuple(mismatched), tuple(missing), uncovered)
