"""NVIDIA reference integrity manifests: NVIDIA's own golden set for its sample report, the test device's
RIM, the comparison (index mapping, alternatives, inactive, conflicts), and every refusal named."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.protocol.attestation import (
    MAX_RIM_BYTES,
    AttestationError,
    AttestationReport,
    DeviceTestCa,
    OpaqueField,
    OpaqueType,
    ReferenceManifest,
    RimDigestInvalid,
    RimDuplicateIndex,
    RimError,
    RimForbiddenDeclaration,
    RimIndexConflict,
    RimKind,
    RimMalformed,
    RimTooLarge,
    compare_measurements,
    parse_report,
    parse_rim,
    report_driver_version,
    report_vbios_version,
)
from conformance.protocol.attestation.rim import MAX_ALTERNATIVES, MAX_DEPTH, MAX_ELEMENTS, SHA384_NS
from tests.attestation_samples import DATA, OLDER

VBIOS_RIM = DATA / "1010_0200_882_96005E0001_test_no_gpu.swidtag"
DRIVER_RIM = DATA / "Driver_RIM_test_no_gpu.swidtag"
CA = DeviceTestCa.create()
NONCE = bytes(range(32))
SHA256_NS = "http://www.w3.org/2001/04/xmlenc#sha256"
H = "ab" * 48  # a well-formed digest no measurement has
GOOD = f'active="True" alternatives="1" ns2:Hash0="{H}" size="48"'


def _report(ca: DeviceTestCa = CA) -> AttestationReport:
    return parse_report(ca.report(NONCE))


def _refused(data: bytes, cls: type[RimError], field: str) -> RimError:
    with pytest.raises(RimError) as info:
        parse_rim(data)
    assert type(info.value) is cls, (type(info.value), info.value)
    assert info.value.field == field, info.value
    return info.value


def _resource(rim_index: int | str, attrs: str) -> str:
    return f'<ns0:Resource type="Measurement" index="{rim_index}" {attrs}/>'


def _with_resource(xml: bytes, rim_index: int, replacement: str) -> bytes:
    """The test RIM with the Resource of ``rim_index`` replaced by ``replacement`` (any text)."""
    pattern = re.compile(rf'<ns0:Resource type="Measurement" index="{rim_index}" [^>]*/>'.encode())
    assert len(pattern.findall(xml)) == 1
    return pattern.sub(replacement.encode().replace(b"\\", b"\\\\"), xml)


def _value_hex(spdm_index: int) -> str:
    return _report().measurements[spdm_index].hex()


# --- NVIDIA's own golden set --------------------------------------------------------------------------


def test_nvidia_vbios_rim_parses() -> None:
    rim = parse_rim(VBIOS_RIM.read_bytes())
    assert (rim.name, rim.version, rim.product) == ("GH100", "1.0", "GH100")
    assert rim.colloquial_version == "96.00.5E.00.01"
    assert rim.kind is RimKind.VBIOS
    assert rim.label == "VBIOS RIM 96.00.5E.00.01"
    assert [m.index for m in rim.measurements] == list(range(64))
    assert sorted(rim.active) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]  # SPDM indices: RIM 0-6, 8-12
    twelve = rim.measurements[12]
    assert (twelve.name, twelve.active, len(twelve.alternatives)) == ("Measurement_12", True, 4)
    assert rim.measurements[7].active is False
    assert all(len(value) == 48 for m in rim.measurements for value in m.alternatives)


def test_nvidia_driver_rim_parses() -> None:
    rim = parse_rim(DRIVER_RIM.read_bytes())
    assert rim.colloquial_version == "545.00"
    assert rim.kind is RimKind.DRIVER
    assert len(rim.measurements) == 64
    assert len(rim.active) == 21
    assert 8 in rim.active  # RIM index 7, the driver's first


def test_nvidia_sample_report_matches_its_golden_set() -> None:
    """NVIDIA's --test_no_gpu pair: every active golden value matches, RIM index i against block i + 1.

    The two RIMs list all 64 indices each and overlap on the inactive ones; that is not a conflict.
    """
    report = parse_report(OLDER.report)
    vbios, driver = parse_rim(VBIOS_RIM.read_bytes()), parse_rim(DRIVER_RIM.read_bytes())
    assert report_vbios_version(report) == "96.00.5e.00.01"
    assert report_driver_version(report) == "545.00"
    assert vbios.names_version(report_vbios_version(report) or "")
    assert driver.names_version(report_driver_version(report) or "")
    result = compare_measurements(report, [driver, vbios])
    assert result.ok
    assert result.mismatched == ()
    assert result.missing == ()
    assert len(result.matched) == 12 + 21
    assert set(result.matched) | set(result.uncovered) == set(range(1, 65))
    assert set(result.matched).isdisjoint(result.uncovered)


def test_nvidia_sample_rejects_the_other_index_mapping() -> None:
    """Read with RIM index == SPDM index, almost no golden value would match: the mapping is +1."""
    report = parse_report(OLDER.report)
    rims = [parse_rim(VBIOS_RIM.read_bytes()), parse_rim(DRIVER_RIM.read_bytes())]
    values = report.measurements
    same_index = [m for rim in rims for m in rim.measurements if m.active and values.get(m.index) in m.alternatives]
    plus_one = [m for rim in rims for m in rim.measurements if m.active and values.get(m.index + 1) in m.alternatives]
    assert len(plus_one) == 33
    assert len(same_index) <= 2  # only all-zero golden values can coincide


def test_nvidia_prod_rim_would_not_match_the_test_report() -> None:
    """The same VBIOS RIM with one golden value changed (as NVIDIA's PROD file differs): a mismatch named."""
    xml = VBIOS_RIM.read_bytes()
    hash1 = re.search(rb'index="1" active="True" alternatives="1" ns2:Hash0="([0-9a-f]{96})"', xml)
    assert hash1 is not None
    changed = xml.replace(hash1[1], b"c3" + hash1[1][2:])
    result = compare_measurements(parse_report(OLDER.report), [parse_rim(changed)])
    assert not result.ok
    assert [m.index for m in result.mismatched] == [2]
    assert result.mismatched[0].field == "report.measurements[2]"
    assert "measurement 2 (RIM index 1 of VBIOS RIM 96.00.5E.00.01)" in result.mismatched[0].reason


# --- the test device --------------------------------------------------------------------------------


def test_test_device_matches_its_own_rim() -> None:
    report = _report()
    rim = parse_rim(CA.reference_manifest())
    assert rim.kind is RimKind.VBIOS
    assert rim.names_version(report_vbios_version(report) or "")
    assert report_driver_version(report) == "550.90.07"
    result = compare_measurements(report, [rim])
    assert result.ok
    assert result.matched == tuple(range(1, 65))
    assert (result.mismatched, result.missing, result.uncovered) == ((), (), ())


def test_test_device_rim_is_deterministic_and_per_device() -> None:
    assert CA.reference_manifest() == DeviceTestCa.create().reference_manifest()
    other = DeviceTestCa.create(device=1)
    assert compare_measurements(_report(other), [parse_rim(CA.reference_manifest())]).matched == ()
    assert compare_measurements(_report(other), [parse_rim(other.reference_manifest())]).ok


def test_drifted_measurement_is_a_mismatch_naming_the_index() -> None:
    result = compare_measurements(_report(), [parse_rim(CA.reference_manifest(drift=13))], field="evidence[0].report")
    assert not result.ok
    assert len(result.mismatched) == 1
    mismatch = result.mismatched[0]
    assert mismatch.index == 13
    assert mismatch.field == "evidence[0].report.measurements[13]"
    assert mismatch.reason.startswith("measurement 13 (RIM index 12 of VBIOS RIM 96.00.9F.00.01)")
    assert "\n" not in mismatch.reason
    assert 13 not in result.matched
    assert len(result.matched) == 63


def test_inactive_measurement_is_not_compared() -> None:
    active = set(range(1, 65)) - {13}
    rim = parse_rim(CA.reference_manifest(drift=13, active=active))
    assert rim.measurements[12].active is False
    result = compare_measurements(_report(), [rim])
    assert result.ok
    assert result.uncovered == (13,)
    assert 13 not in result.matched


def test_alternatives_any_one_matches() -> None:
    good = _value_hex(4)
    bad = "ab" * 48
    for hashes in ((bad, good), (good, bad), (bad, bad, bad, good)):
        attrs = " ".join(f'ns2:Hash{i}="{h}"' for i, h in enumerate(hashes))
        xml = _with_resource(
            CA.reference_manifest(), 3, _resource(3, f'active="True" alternatives="{len(hashes)}" {attrs} size="48"')
        )
        rim = parse_rim(xml)
        assert len(rim.measurements[3].alternatives) == len(hashes)
        assert compare_measurements(_report(), [rim]).ok
    attrs = f'ns2:Hash0="{bad}" ns2:Hash1="{"cd" * 48}"'
    xml = _with_resource(CA.reference_manifest(), 3, _resource(3, f'active="True" alternatives="2" {attrs} size="48"'))
    result = compare_measurements(_report(), [parse_rim(xml)])
    assert [m.index for m in result.mismatched] == [4]
    assert "none of the 2 golden alternative(s)" in result.mismatched[0].reason


def test_hex_case_does_not_matter() -> None:
    xml = _with_resource(
        CA.reference_manifest(),
        3,
        _resource(3, f'active="True" alternatives="1" ns2:Hash0="{_value_hex(4).upper()}" size="48"'),
    )
    assert compare_measurements(_report(), [parse_rim(xml)]).ok


def test_golden_index_the_report_lacks_is_missing() -> None:
    xml = CA.reference_manifest().replace(
        b"    </ns0:Payload>",
        (
            _resource(64, f'active="True" alternatives="1" ns2:Hash0="{"00" * 48}" size="48"') + "\n</ns0:Payload>"
        ).encode(),
    )
    result = compare_measurements(_report(), [parse_rim(xml)])
    assert result.missing == (65,)
    assert not result.ok
    assert len(result.matched) == 64


def test_wrong_length_report_value_is_a_mismatch() -> None:
    report = _report()
    blocks = tuple(
        dataclasses.replace(block, value=block.value[:32]) if block.index == 5 else block
        for block in report.response.blocks
    )
    short = dataclasses.replace(report, response=dataclasses.replace(report.response, blocks=blocks))
    result = compare_measurements(short, [parse_rim(CA.reference_manifest())])
    assert [m.index for m in result.mismatched] == [5]
    assert "32 bytes" in result.mismatched[0].reason


def test_split_driver_and_vbios_rims() -> None:
    vbios = parse_rim(CA.reference_manifest(active=range(1, 20)))
    driver = parse_rim(CA.reference_manifest(colloquial_version="550.90.07", active=range(20, 41)))
    assert driver.kind is RimKind.DRIVER
    assert driver.names_version(report_driver_version(_report()) or "")
    result = compare_measurements(_report(), [vbios, driver])
    assert result.ok
    assert result.matched == tuple(range(1, 41))
    assert result.uncovered == tuple(range(41, 65))


def test_overlapping_active_manifests_refused() -> None:
    vbios = parse_rim(CA.reference_manifest(active=range(1, 21)))
    driver = parse_rim(CA.reference_manifest(colloquial_version="550.90.07", active=range(20, 41)))
    with pytest.raises(RimIndexConflict) as info:
        compare_measurements(_report(), [vbios, driver])
    assert info.value.field == "report.measurements[20]"
    assert "VBIOS RIM 96.00.9F.00.01 and driver RIM 550.90.07" in info.value.reason
    assert "RIM index 19" in info.value.reason
    with pytest.raises(RimIndexConflict):  # the same manifest twice is ambiguous too
        compare_measurements(_report(), [vbios, vbios])


def test_no_manifest_judges_nothing() -> None:
    result = compare_measurements(_report(), [])
    assert result.ok
    assert result.matched == ()
    assert result.uncovered == tuple(range(1, 65))


def test_report_versions_absent_or_unreadable() -> None:
    report = _report()
    opaque = tuple(
        f for f in report.response.opaque if f.type not in (OpaqueType.VBIOS_VERSION, OpaqueType.DRIVER_VERSION)
    )

    def with_opaque(*extra: OpaqueField) -> AttestationReport:
        return dataclasses.replace(report, response=dataclasses.replace(report.response, opaque=opaque + extra))

    bare = with_opaque()
    assert (report_vbios_version(bare), report_driver_version(bare)) == (None, None)
    odd = with_opaque(
        OpaqueField(OpaqueType.VBIOS_VERSION, b"\x00" * 7), OpaqueField(OpaqueType.DRIVER_VERSION, b"5\n5")
    )
    assert (report_vbios_version(odd), report_driver_version(odd)) == (None, None)


@pytest.mark.parametrize(
    ("version", "kind"),
    [
        ("550.90.07", RimKind.DRIVER),
        ("545.00", RimKind.DRIVER),
        ("96.00.74.00.1A", RimKind.VBIOS),
        ("96.00.74.00.10", RimKind.VBIOS),
        ("r1", RimKind.UNKNOWN),
        ("96.00", RimKind.DRIVER),
    ],
)
def test_kind_from_colloquial_version(version: str, kind: RimKind) -> None:
    rim = parse_rim(CA.reference_manifest(colloquial_version=version))
    assert rim.kind is kind
    assert rim.names_version(version.lower())


def test_reference_manifest_rejects_unknown_indices() -> None:
    with pytest.raises(ValueError, match="drift"):
        CA.reference_manifest(drift=65)
    with pytest.raises(ValueError, match="active"):
        CA.reference_manifest(active=[0])


# --- hostile input ----------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" name="&lol9;"/>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" name="&x;"/>
"""
DOCTYPE_ONLY = b'<!DOCTYPE SoftwareIdentity SYSTEM "http://example.invalid/x.dtd">\n<SoftwareIdentity/>'


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, DOCTYPE_ONLY], ids=["billion-laughs", "xxe", "doctype"])
def test_declarations_refused_quickly(data: bytes) -> None:
    start = time.perf_counter()
    _refused(data, RimForbiddenDeclaration, "rim")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, DOCTYPE_ONLY], ids=["billion-laughs", "xxe", "doctype"])
def test_declarations_refused_by_the_parser_too(data: bytes) -> None:
    """In UTF-16 the byte pre-scan sees nothing; the expat handlers still refuse at the DOCTYPE."""
    encoded = (
        data.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
    )
    assert b"<!DOCTYPE" not in encoded
    start = time.perf_counter()
    _refused(encoded, RimForbiddenDeclaration, "rim")
    assert time.perf_counter() - start < 0.5


def test_oversize_refused_before_parsing() -> None:
    data = BILLION_LAUGHS + b" " * MAX_RIM_BYTES  # a declaration too, but the size is judged first
    error = _refused(data, RimTooLarge, "rim")
    assert str(MAX_RIM_BYTES) in error.reason
    parse_rim(CA.reference_manifest() + b" " * (MAX_RIM_BYTES - len(CA.reference_manifest())))  # at the cap: read


def test_field_prefix_is_the_callers() -> None:
    with pytest.raises(RimForbiddenDeclaration) as info:
        parse_rim(XXE, field="rim_dir/driver.swidtag")
    assert info.value.field == "rim_dir/driver.swidtag"
    xml = _with_resource(
        CA.reference_manifest(), 3, _resource(3, 'active="True" alternatives="1" ns2:Hash0="00" size="48"')
    )
    with pytest.raises(RimDigestInvalid) as digest:
        parse_rim(xml, field="rim_dir/vbios.swidtag")
    assert digest.value.field == "rim_dir/vbios.swidtag.Payload.Resource[3].Hash0"


def test_element_and_depth_caps() -> None:
    many = b"<a>" + b"<b/>" * MAX_ELEMENTS + b"</a>"
    _refused(many, RimTooLarge, "rim")
    deep = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)
    _refused(deep, RimTooLarge, "rim")


def test_measurement_count_capped() -> None:
    resources = "".join(
        _resource(i % 255, f'active="False" alternatives="1" ns2:Hash0="{"00" * 48}" size="48"') for i in range(256)
    )
    xml = re.sub(
        rb"<ns0:Payload>.*</ns0:Payload>",
        f"<ns0:Payload>{resources}</ns0:Payload>".encode(),
        CA.reference_manifest(),
        flags=re.S,
    )
    _refused(xml, RimTooLarge, "rim.Payload")


@pytest.mark.parametrize(
    ("attrs", "cls", "where"),
    [
        ('active="True" alternatives="1" ns2:Hash0="zz' + "a" * 94 + '" size="48"', RimDigestInvalid, "Hash0"),
        ('active="True" alternatives="1" ns2:Hash0="' + "ab" * 32 + '" size="48"', RimDigestInvalid, "Hash0"),
        ('active="True" alternatives="1" ns2:Hash0="' + "ab" * 49 + '" size="48"', RimDigestInvalid, "Hash0"),
        ('active="True" alternatives="1" ns2:Hash0=" ' + "ab" * 47 + 'a" size="48"', RimDigestInvalid, "Hash0"),
        (f'active="True" alternatives="1" ns2:Hash0="{H}" size="32"', RimDigestInvalid, "size"),
        (f'active="True" alternatives="1" Hash0="{H}" size="48"', RimDigestInvalid, "Hash0"),
        (f'active="True" alternatives="1" xmlns:s="{SHA256_NS}" s:Hash0="{H}" size="48"', RimDigestInvalid, "Hash0"),
        (f'active="True" alternatives="2" ns2:Hash0="{H}" size="48"', RimMalformed, "Hash1"),
        (f'active="True" alternatives="1" ns2:Hash0="{H}" ns2:Hash1="{H}" size="48"', RimMalformed, "Hash1"),
        (f'active="True" alternatives="1" ns2:Hash00="{H}" ns2:Hash0="{H}" size="48"', RimMalformed, "Hash00"),
        (f'active="True" alternatives="0" ns2:Hash0="{H}" size="48"', RimMalformed, "alternatives"),
        (
            f'active="True" alternatives="{MAX_ALTERNATIVES + 1}" ns2:Hash0="{H}" size="48"',
            RimMalformed,
            "alternatives",
        ),
        (f'active="True" alternatives="one" ns2:Hash0="{H}" size="48"', RimMalformed, "alternatives"),
        (f'active="yes" alternatives="1" ns2:Hash0="{H}" size="48"', RimMalformed, "active"),
        (f'alternatives="1" ns2:Hash0="{H}" size="48"', RimMalformed, "active"),
        (f'active="True" alternatives="1" ns2:Hash0="{H}"', RimMalformed, "size"),
    ],
)
def test_bad_resource_refused_naming_the_field(attrs: str, cls: type[RimError], where: str) -> None:
    xml = _with_resource(CA.reference_manifest(), 3, _resource(3, attrs))
    error = _refused(xml, cls, f"rim.Payload.Resource[3].{where}")
    assert H not in str(error)


@pytest.mark.parametrize(
    ("replacement", "cls", "where"),
    [
        (_resource("-1", GOOD), RimMalformed, "index"),
        (_resource("255", GOOD), RimMalformed, "index"),
        (_resource("", GOOD), RimMalformed, "index"),
        (_resource("2", GOOD), RimDuplicateIndex, "index"),
        (_resource("3", GOOD).replace('"Measurement"', '"Firmware"'), RimMalformed, "type"),
        ("<ns0:File name='x'/>", RimMalformed, ""),
        ("<Resource xmlns='' type='Measurement'/>", RimMalformed, ""),  # outside the SWID namespace
    ],
)
def test_bad_payload_child_refused(replacement: str, cls: type[RimError], where: str) -> None:
    xml = _with_resource(CA.reference_manifest(), 3, replacement)
    field = "rim.Payload.Resource[3]" + (f".{where}" if where else "")
    _refused(xml, cls, field)


def _swid(body: str, root_attrs: str = 'name="GH100" tagId="t"') -> bytes:
    return (
        f'<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" '
        f'xmlns:h="{SHA384_NS}" {root_attrs}>{body}</SoftwareIdentity>'
    ).encode()


META = '<Meta colloquialVersion="550.90.07"/>'
PAYLOAD = (
    f'<Payload><Resource type="Measurement" index="0" active="True" alternatives="1" h:Hash0="{H}" size="48"/>'
    "</Payload>"
)


def test_minimal_rim_with_default_namespace() -> None:
    rim = parse_rim(_swid(META + PAYLOAD))
    assert (rim.name, rim.tag_id, rim.version, rim.product) == ("GH100", "t", "0.0", "")
    assert rim.measurements[0].alternatives == (bytes.fromhex(H),)
    assert rim.measurements[0].name == ""
    assert rim.measurements[0].spdm_index == 1
    assert isinstance(rim, ReferenceManifest)


@pytest.mark.parametrize(
    ("data", "cls", "field"),
    [
        (b"", RimMalformed, "rim"),
        (b"not xml", RimMalformed, "rim"),
        (b"<SoftwareIdentity", RimMalformed, "rim"),
        (b"<a/><b/>", RimMalformed, "rim"),
        (b"<a>&undefined;</a>", RimMalformed, "rim"),
        (b'<SoftwareIdentity name="x" tagId="t"/>', RimMalformed, "rim"),
        (_swid(META + PAYLOAD, 'tagId="t"'), RimMalformed, "rim.name"),
        (_swid(META + PAYLOAD, 'name="x"'), RimMalformed, "rim.tagId"),
        (_swid(PAYLOAD), RimMalformed, "rim.Meta"),
        (_swid(META + META + PAYLOAD), RimMalformed, "rim.Meta"),
        (_swid('<Meta colloquialVersion=""/>' + PAYLOAD), RimMalformed, "rim.Meta.colloquialVersion"),
        (_swid("<Meta/>" + PAYLOAD), RimMalformed, "rim.Meta.colloquialVersion"),
        (_swid('<Meta colloquialVersion="' + "9" * 65 + '"/>' + PAYLOAD), RimMalformed, "rim.Meta.colloquialVersion"),
        (_swid('<Meta colloquialVersion="550&#10;90"/>' + PAYLOAD), RimMalformed, "rim.Meta.colloquialVersion"),
        (_swid('<Meta colloquialVersion="550·90"/>' + PAYLOAD), RimMalformed, "rim.Meta.colloquialVersion"),
        (_swid(META), RimMalformed, "rim.Payload"),
        (_swid(META + PAYLOAD + PAYLOAD), RimMalformed, "rim.Payload"),
        (_swid(META + "<Payload/>"), RimMalformed, "rim.Payload"),
    ],
)
def test_bad_document_refused(data: bytes, cls: type[RimError], field: str) -> None:
    _refused(data, cls, field)


def test_errors_are_attestation_errors_with_codes() -> None:
    classes = (
        RimTooLarge,
        RimForbiddenDeclaration,
        RimMalformed,
        RimDigestInvalid,
        RimDuplicateIndex,
        RimIndexConflict,
    )
    codes = {cls.code for cls in classes}
    assert len(codes) == len(classes)
    assert all(issubclass(cls, RimError) for cls in classes)
    assert issubclass(RimError, AttestationError)
    assert RimError.code == "RIM_INVALID"


def test_signature_element_is_skipped() -> None:
    """The real RIMs end with ds:Signature; it is read past (and NOT verified)."""
    xml = VBIOS_RIM.read_bytes()
    assert b"<ds:Signature" in xml
    stripped = re.sub(rb"<ds:Signature.*</ds:Signature>", b"", xml, flags=re.S)
    assert parse_rim(stripped) == parse_rim(xml)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_rim_errors(data: bytes) -> None:
    with contextlib.suppress(RimError):
        parse_rim(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_rim_only_rim_errors(data: st.DataObject) -> None:
    xml = bytearray(CA.reference_manifest())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(xml) - 1))
        xml[position] = data.draw(st.integers(0, 255))
    try:
        rim = parse_rim(bytes(xml))
    except RimError:
        return
    compare_measurements(_report(), [rim])
