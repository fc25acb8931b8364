"""Project Wycheproof's test vector files, vendored under ``vectors/wycheproof/``, as data.

Wycheproof is what pyca/cryptography runs its primitives against, in the same shape: the vectors stay
upstream's JSON files (nothing regenerated, nothing edited), and a small loader walks
``testGroups``/``tests`` and hands out one :class:`WycheproofTest` per case with its group beside it.
What a test does with a case (which protocol function it calls, what counts as agreement) is the test
file's business, not the loader's.

The files are read through :func:`conformance.paths.read_json_file`: a regular file within
:data:`MAX_FILE_BYTES`, or one line naming the file. A file whose structure is not Wycheproof's (a result
other than valid/invalid/acceptable, a flag its ``notes`` do not define, a ``numberOfTests`` that does
not match) is refused the same way, so a truncated or hand-edited copy cannot pass as fewer vectors.

The vendored files are test data of this repository; the wheel does not ship them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ..exits import UserError
from ..paths import MiB, read_json_file

__all__ = [
    "FILES",
    "MAX_FILE_BYTES",
    "RESULTS",
    "Result",
    "WycheproofFile",
    "WycheproofTest",
    "load_file",
    "load_tests",
    "source_dir",
]

# The primitives the protocol uses, in upstream's file names (testvectors_v1/).
FILES = (
    "x25519_test.json",
    "hkdf_sha256_test.json",
    "aes_gcm_test.json",
    "ed25519_test.json",
    "ecdsa_secp256k1_sha256_p1363_test.json",
    "ecdsa_secp256k1_sha256_test.json",
    "ecdsa_secp256r1_sha256_p1363_test.json",
    "ecdsa_secp256r1_sha256_test.json",
)
# The largest vendored file is about 330 kB; anything ten times that is not one of them.
MAX_FILE_BYTES = 3 * MiB

Result = Literal["valid", "invalid", "acceptable"]
RESULTS: tuple[Result, ...] = ("valid", "invalid", "acceptable")


@dataclass(frozen=True)
class WycheproofTest:
    """One case, with the group that gives it its key or parameters."""

    file: str
    group: Mapping[str, Any]
    case: Mapping[str, Any]

    @property
    def tc_id(self) -> int:
        return int(self.case["tcId"])

    @property
    def name(self) -> str:
        """``file:tcId``: how a case is named in a failure message."""
        return f"{self.file}:{self.tc_id}"

    @property
    def result(self) -> Result:
        return cast(Result, self.case["result"])

    @property
    def valid(self) -> bool:
        return self.result == "valid"

    @property
    def acceptable(self) -> bool:
        return self.result == "acceptable"

    @property
    def invalid(self) -> bool:
        return self.result == "invalid"

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(self.case["flags"])

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    def hex(self, member: str) -> bytes:
        """A hex member of the case (``msg``, ``sig``, ``key`` …) as bytes."""
        return _unhex(self.case, member, self.name)

    def group_hex(self, member: str) -> bytes:
        """A hex member of the group (``publicKey`` members are reached through ``group``)."""
        return _unhex(self.group, member, self.name)


@dataclass(frozen=True)
class WycheproofFile:
    """One parsed file: its header fields, the meaning of each flag, and its cases in file order."""

    name: str
    algorithm: str
    schema: str
    notes: Mapping[str, Any]
    tests: tuple[WycheproofTest, ...]


def source_dir() -> Path | None:
    """``vectors/wycheproof/`` of a source checkout; None in an installed wheel, which does not ship it."""
    from ..resources import source_vectors_dir

    root = source_vectors_dir()
    return None if root is None else root / "wycheproof"


def load_file(path: Path) -> WycheproofFile:
    """Parse and structurally check one Wycheproof file, or raise :class:`UserError` naming it."""
    field = f"wycheproof:{path.name}"
    doc = read_json_file(path, field, MAX_FILE_BYTES)
    if not isinstance(doc, dict):
        raise UserError(field, "is not a JSON object")
    algorithm, schema, notes, groups = (doc.get(k) for k in ("algorithm", "schema", "notes", "testGroups"))
    if not isinstance(algorithm, str) or not isinstance(schema, str):
        raise UserError(field, "has no 'algorithm' or 'schema' string")
    if not isinstance(notes, dict) or not isinstance(groups, list):
        raise UserError(field, "has no 'notes' object or 'testGroups' list")
    tests: list[WycheproofTest] = []
    seen: set[int] = set()
    for g, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("tests"), list):
            raise UserError(field, f"testGroups[{g}] is not a group with a 'tests' list")
        for case in group["tests"]:
            test = _case(field, path.name, group, case)
            if test.tc_id in seen:
                raise UserError(field, f"tcId {test.tc_id} appears twice")
            seen.add(test.tc_id)
            unknown = [flag for flag in test.flags if flag not in notes]
            if unknown:
                raise UserError(field, f"tcId {test.tc_id} has a flag its notes do not define ({unknown[0][:40]!r})")
            tests.append(test)
    if doc.get("numberOfTests") != len(tests):
        raise UserError(field, f"says numberOfTests {doc.get('numberOfTests')!r} but holds {len(tests)} tests")
    return WycheproofFile(path.name, algorithm, schema, notes, tuple(tests))


def load_tests(directory: Path, names: tuple[str, ...] = FILES) -> Iterator[WycheproofTest]:
    """Every case of the named files, file by file, in file order."""
    for name in names:
        yield from load_file(directory / name).tests


def _case(field: str, file: str, group: Mapping[str, Any], case: object) -> WycheproofTest:
    if not isinstance(case, dict):
        raise UserError(field, "a test is not a JSON object")
    tc_id = case.get("tcId")
    if not isinstance(tc_id, int) or isinstance(tc_id, bool):
        raise UserError(field, "a test has no integer 'tcId'")
    if case.get("result") not in RESULTS:
        raise UserError(field, f"tcId {tc_id}: 'result' is not one of {', '.join(RESULTS)}")
    flags = case.get("flags")
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise UserError(field, f"tcId {tc_id}: 'flags' is not a list of strings")
    return WycheproofTest(file, group, case)


def _unhex(where: Mapping[str, Any], member: str, name: str) -> bytes:
    value = where.get(member)
    if not isinstance(value, str):
        raise UserError(f"wycheproof:{name}", f"has no hex string '{member}'")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise UserError(f"wycheproof:{name}", f"'{member}' is not hex") from None
