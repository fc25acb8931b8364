"""Project Wycheproof against the protocol core, the way pyca/cryptography runs it against its own.

Every case of the vendored files (vectors/wycheproof/, see its README.md) goes through the core's public
API (``from conformance.protocol import ...``) and ends in exactly one verdict:

- **agree**: the core's answer is one Wycheproof allows (the right output for a valid case, a refusal
  for an invalid one, either for an acceptable one).
- **by policy**: Wycheproof says valid (or acceptable) and the core refuses, because the protocol
  deliberately narrows the primitive (docs/spec.md, named per :class:`Policy`). Counted only when the
  policy is shown to be the reason, not assumed: with every other applicable policy lifted the core
  refuses with that policy's own error, and with it lifted too the core accepts with the right output.
- **disagree**: anything else. There must be none.

Lifting a policy uses only the public API: ``verify(..., any_length=True)`` for the 32-byte message rule
(the keyword that reproduces the upstream proxy, W8), ``to_high_s`` for the low-s twin (ECDSA accepts
(r, s) exactly when it accepts (r, n - s)), ``allow_low_order=True`` for X25519, and the DER-to-r‖s
re-encoding (done here, with pyca's decoder, since the protocol has no DER form at all). AES-GCM's key
size, IV size and AAD rules cannot be lifted through the core: those are shown by the exact error.

An invalid case the core refuses is "agree" only if the core still refuses it with the policies lifted,
so that a policy never hides a primitive that would accept a broken signature. The table this file
computes is docs/wycheproof.md's, held equal by a test.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conformance import spec
from conformance.exits import UserError
from conformance.protocol import (
    CURVE_ORDER,
    AeadError,
    AeadKey,
    HighS,
    LengthError,
    LowOrderPoint,
    ProtocolError,
    Scheme,
    SignatureLength,
    SuiSignature,
    ZeroSharedSecret,
    aead_open,
    aead_seal,
    hkdf_sha256,
    is_low_order,
    parse_signature_bytes,
    to_high_s,
    verify,
    x25519_shared_secret,
)
from conformance.vectors.wycheproof import FILES, WycheproofTest, load_file, load_tests, source_dir

ROOT = Path(__file__).resolve().parents[1]
DIRECTORY = ROOT / "vectors" / "wycheproof"
DOC = ROOT / "docs" / "wycheproof.md"


class Policy(enum.Enum):
    """A place where the protocol deliberately refuses what the bare primitive accepts.

    Declared in precedence order: a case that meets several is counted under the first. The rules about
    the object under test (its encoding, its key, its s, its point) come before the rules about how
    Wycheproof frames the input (a message of any length, an IV of any size, some AAD), which nearly
    every signature case meets because Wycheproof signs short messages, rarely one of 32 bytes.
    """

    DER = ("DER signature (the wire form is r‖s)", ("R7.1", "R7.2"))
    LOW_S = ("ECDSA high s", ("R7.5",))
    LOW_ORDER = ("low-order X25519 point", ("R4.2", "R4.3"))
    AES_256 = ("AES key not 256-bit", ("R5.1",))
    IV_96 = ("IV not 96-bit", ("R5.1",))
    EMPTY_AAD = ("AAD not empty", ("R5.3",))
    MESSAGE_32 = ("message not 32 bytes", ("R7.3",))

    def __init__(self, label: str, refs: tuple[str, ...]) -> None:
        self.label = label
        self.refs = refs

    @property
    def heading(self) -> str:
        return f"{self.label} ({', '.join(self.refs)})"


Kind = Literal["agree", "policy", "disagree"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    policy: Policy | None = None
    # An invalid case refused as outside the protocol (an AES key, IV or AAD it never takes; a DER blob
    # pyca cannot decode to r and s) where no lift reaches the primitive: true, but it tests the rule.
    shallow: bool = False
    why: str = ""


def agree(*, shallow: bool = False) -> Verdict:
    return Verdict("agree", shallow=shallow)


def disagree(why: str) -> Verdict:
    return Verdict("disagree", why=why)


# --- signatures (Ed25519, ECDSA in DER and P1363 form) -----------------------------------------------------

Outcome = BaseException | None  # None: accepted with the right output


class WrongOutput(Exception):
    """The core answered, with a value other than Wycheproof's: never an agreement, whatever the result."""


@dataclass(frozen=True)
class SignatureCase:
    scheme: Scheme
    public_key: bytes  # as a Sui signature carries it (33-byte SEC1 compressed for ECDSA)
    signature: bytes  # as the file holds it
    message: bytes
    der: bool


def _compressed(test: WycheproofTest) -> bytes:
    """The group's uncompressed key in the compressed form Table 7.1 carries; pyca checks it is on the curve."""
    curve = {"secp256k1": ec.SECP256K1(), "secp256r1": ec.SECP256R1()}[test.group["publicKey"]["curve"]]
    point = bytes.fromhex(test.group["publicKey"]["uncompressed"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    return key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def signature_case(test: WycheproofTest) -> SignatureCase:
    kind = test.group["type"]
    if kind == "EddsaVerify":
        return SignatureCase(
            Scheme.ED25519, bytes.fromhex(test.group["publicKey"]["pk"]), test.hex("sig"), test.hex("msg"), False
        )
    assert kind in ("EcdsaVerify", "EcdsaP1363Verify") and test.group["sha"] == "SHA-256", test.name
    scheme = Scheme.from_label(test.group["publicKey"]["curve"])
    return SignatureCase(scheme, _compressed(test), test.hex("sig"), test.hex("msg"), kind == "EcdsaVerify")


def _r_s(case: SignatureCase) -> tuple[int, int] | None:
    """(r, s) of an ECDSA case, decoded from DER where the file holds DER; None if there is none."""
    if case.scheme is Scheme.ED25519:
        return None
    if case.der:
        try:
            return decode_dss_signature(case.signature)
        except ValueError:
            return None
    if len(case.signature) != 64:
        return None
    return int.from_bytes(case.signature[:32], "big"), int.from_bytes(case.signature[32:], "big")


def _is_high_s(case: SignatureCase) -> bool:
    rs = _r_s(case)
    order = CURVE_ORDER.get(case.scheme, 0)
    return rs is not None and 0 < rs[0] < order and order // 2 < rs[1] < order


def signature_policies(case: SignatureCase) -> list[Policy]:
    found = [Policy.DER] if case.der else []
    if _is_high_s(case):
        found.append(Policy.LOW_S)
    if len(case.message) != 32:
        found.append(Policy.MESSAGE_32)
    return found


def attempt_signature(case: SignatureCase, lifted: Iterable[Policy] = ()) -> Outcome:
    """Verify through the public API with ``lifted`` policies lifted; the refusal, or None."""
    lifted = set(lifted)
    signature = case.signature
    if Policy.DER in lifted:
        rs = _r_s(case)
        if rs is None or max(rs) >= 2**256:
            return ValueError("not a DER signature whose r and s fit 32 bytes")
        signature = rs[0].to_bytes(32, "big") + rs[1].to_bytes(32, "big")
    try:
        sig = parse_signature_bytes(bytes([case.scheme]) + signature + case.public_key)
        if Policy.LOW_S in lifted and case.scheme is not Scheme.ED25519:
            order = CURVE_ORDER[case.scheme]
            if order // 2 < int.from_bytes(sig.signature[32:], "big") < order:
                sig = to_high_s(sig)  # s -> n - s: here, from high to low
        verify(sig, case.message, any_length=Policy.MESSAGE_32 in lifted)
    except ProtocolError as exc:
        return exc
    return None


POLICY_ERROR: dict[Policy, Callable[[BaseException], bool]] = {
    Policy.DER: lambda e: isinstance(e, SignatureLength),
    Policy.LOW_S: lambda e: isinstance(e, HighS),
    Policy.MESSAGE_32: lambda e: isinstance(e, LengthError) and e.field == "message",
    Policy.LOW_ORDER: lambda e: isinstance(e, LowOrderPoint | ZeroSharedSecret),
    Policy.AES_256: lambda e: isinstance(e, LengthError) and e.field == "key",
    Policy.IV_96: lambda e: isinstance(e, LengthError) and e.field == "nonce",
    Policy.EMPTY_AAD: lambda e: isinstance(e, AeadError),
}


def _liftable_verdict(
    test: WycheproofTest,
    policies: list[Policy],
    attempt: Callable[[set[Policy]], Outcome],
    *,
    shallow_if: Callable[[Outcome], bool] = lambda outcome: False,
) -> Verdict:
    """The verdict for a case whose applicable policies can all be lifted (see the module docstring)."""
    conformant = attempt(set())
    lifted = attempt(set(policies))
    if isinstance(conformant, WrongOutput) or isinstance(lifted, WrongOutput):
        return disagree("answered with a different output")
    if test.invalid:
        if conformant is None:
            return disagree("accepted an invalid case")
        if lifted is None:
            return disagree(f"refused only by policy ({type(conformant).__name__}); lifted, the core accepts it")
        return agree(shallow=shallow_if(lifted))
    if conformant is None:
        return agree()
    if policies and lifted is None:
        first = policies[0]
        partial = attempt(set(policies[1:]))
        if partial is not None and POLICY_ERROR[first](partial):
            return Verdict("policy", first)
        return disagree(f"refused with {type(partial).__name__}, not by {first.name}")
    if test.acceptable:
        return agree()
    return disagree(f"refused a valid case: {type(conformant).__name__}: {conformant}")


def judge_signature(test: WycheproofTest) -> Verdict:
    case = signature_case(test)
    return _liftable_verdict(
        test,
        signature_policies(case),
        lambda lifted: attempt_signature(case, lifted),
        shallow_if=lambda outcome: case.der and not isinstance(outcome, ProtocolError),
    )


# --- X25519 --------------------------------------------------------------------------------------------------


def judge_x25519(test: WycheproofTest) -> Verdict:
    private, public, shared = test.hex("private"), test.hex("public"), test.hex("shared")
    policies = [Policy.LOW_ORDER] if shared == bytes(32) else []

    def attempt(lifted: set[Policy]) -> Outcome:
        try:
            out = x25519_shared_secret(private, public, allow_low_order=Policy.LOW_ORDER in lifted)
        except ProtocolError as exc:
            return exc
        return None if out == shared else WrongOutput("a different shared secret")

    return _liftable_verdict(test, policies, attempt)


# --- HKDF-SHA256 ----------------------------------------------------------------------------------------------


def judge_hkdf(test: WycheproofTest) -> Verdict:
    ikm, salt, info, size = test.hex("ikm"), test.hex("salt"), test.hex("info"), int(test.case["size"])
    try:
        out = hkdf_sha256(ikm, salt, info, size)
    except ValueError as exc:  # cryptography refuses L > 255 * HashLen, as RFC 5869 does
        return agree() if test.invalid else disagree(f"refused a valid case: {exc}")
    if test.invalid:
        return disagree("derived output for an invalid case")
    return agree() if out == test.hex("okm") else disagree("a different output keying material")


# --- AES-GCM -----------------------------------------------------------------------------------------------------


def aead_policies(test: WycheproofTest) -> list[Policy]:
    found = []
    if len(test.hex("key")) != 32:
        found.append(Policy.AES_256)
    if len(test.hex("iv")) != 12:
        found.append(Policy.IV_96)
    if test.hex("aad"):
        found.append(Policy.EMPTY_AAD)
    return found


def judge_aead(test: WycheproofTest) -> Verdict:
    """No AES policy can be lifted through the core (it takes no AAD, and no other key or IV size), so a
    refusal is attributed by its exact error: the key, then the nonce, then the tag (the AAD)."""
    if int(test.group["tagSize"]) != 128:
        return disagree("a tag size the protocol never uses (no policy names it)")
    key, iv, msg, sealed = test.hex("key"), test.hex("iv"), test.hex("msg"), test.hex("ct") + test.hex("tag")
    policies = aead_policies(test)
    refusal: ProtocolError | None = None
    try:
        opened: bytes | None = aead_open(key, iv, sealed)
    except ProtocolError as exc:
        opened, refusal = None, exc
    if test.invalid:
        if opened is not None:
            return disagree("opened an invalid case")
        return agree(shallow=bool(policies))
    if refusal is not None:
        if policies and POLICY_ERROR[policies[0]](refusal):
            return Verdict("policy", policies[0])
        return disagree(f"refused a valid case: {type(refusal).__name__}")
    if policies:
        return disagree(f"opened a case outside the protocol ({policies[0].name})")
    if opened != msg:
        return disagree("a different plaintext")
    if aead_seal(key, iv, msg) != sealed or AeadKey(key).seal(iv, msg) != sealed:
        return disagree("sealing gives a different ciphertext or tag")
    return agree()


# --- running and counting -----------------------------------------------------------------------------------------

JUDGES: dict[str, Callable[[WycheproofTest], Verdict]] = {
    "XdhComp": judge_x25519,
    "HkdfTest": judge_hkdf,
    "AeadTest": judge_aead,
    "EddsaVerify": judge_signature,
    "EcdsaVerify": judge_signature,
    "EcdsaP1363Verify": judge_signature,
}


def judge(test: WycheproofTest) -> Verdict:
    return JUDGES[test.group["type"]](test)


@dataclass
class Tally:
    total: int = 0
    agree: int = 0
    shallow: int = 0
    policy: Counter[Policy] = field(default_factory=Counter)
    disagree: list[str] = field(default_factory=list)

    def add(self, test: WycheproofTest, verdict: Verdict) -> None:
        self.total += 1
        if verdict.kind == "agree":
            self.agree += 1
            self.shallow += verdict.shallow
        elif verdict.kind == "policy":
            assert verdict.policy is not None
            self.policy[verdict.policy] += 1
        else:
            self.disagree.append(f"{test.name} ({test.result}, {', '.join(test.flags)}): {verdict.why}")


@cache
def verdicts() -> tuple[tuple[WycheproofTest, Verdict], ...]:
    return tuple((test, judge(test)) for test in load_tests(DIRECTORY))


def tallies() -> dict[str, Tally]:
    out = {name: Tally() for name in FILES}
    for test, verdict in verdicts():
        out[test.file].add(test, verdict)
    return out


def render_table(counts: dict[str, Tally]) -> str:
    """The per-file table of docs/wycheproof.md: total, agree, by policy (per policy), disagree."""
    lines = [
        "| File | Total | Agree | (of which outside the protocol) | By policy | Disagree |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, tally in counts.items():
        by_policy = "; ".join(f"{tally.policy[p]} {p.heading}" for p in Policy if tally.policy[p]) or "0"
        lines.append(
            f"| `{name}` | {tally.total} | {tally.agree} | {tally.shallow} | {by_policy} | {len(tally.disagree)} |"
        )
    return "\n".join(lines) + "\n"


# --- the tests ----------------------------------------------------------------------------------------------------


def test_every_case_agrees_or_is_explained_by_a_policy() -> None:
    counts = tallies()
    problems = [line for tally in counts.values() for line in tally.disagree]
    assert problems == [], f"{len(problems)} disagreements:\n" + "\n".join(problems[:40])


def test_every_vendored_file_is_run_and_every_case_judged() -> None:
    """No silent skips: the verdicts cover every case of every file, each file's count is upstream's."""
    counts = tallies()
    for name in FILES:
        doc = load_file(DIRECTORY / name)
        assert counts[name].total == len(doc.tests) > 0, name
    assert sorted(p.name for p in DIRECTORY.glob("*.json")) == sorted(FILES)
    assert {t.group["type"] for t, _ in verdicts()} == set(JUDGES)


def test_the_doc_table_is_the_computed_one() -> None:
    table = render_table(tallies())
    text = DOC.read_text(encoding="utf-8")
    assert table in text, "docs/wycheproof.md's table is stale; the computed one is:\n" + table


def test_every_policy_names_requirements_of_the_spec() -> None:
    requirements = spec.load().requirements
    for policy in Policy:
        assert policy.refs and all(ref in requirements for ref in policy.refs), policy


def test_every_policy_explains_something() -> None:
    """A policy nothing falls under is a column that cannot fail; each is exercised by these files."""
    used = {v.policy for _, v in verdicts() if v.kind == "policy"}
    assert used == set(Policy)


# Each policy, re-checked from the case's own data rather than from the judge's reasoning.


def _by(policy: Policy) -> list[WycheproofTest]:
    return [t for t, v in verdicts() if v.policy is policy]


@pytest.mark.parametrize("policy", [Policy.DER, Policy.LOW_S, Policy.MESSAGE_32])
def test_a_signature_counted_by_policy_is_valid_and_refused_only_for_it(policy: Policy) -> None:
    cases = _by(policy)
    assert cases
    for test in cases:
        case = signature_case(test)
        assert test.valid, test.name
        everything = signature_policies(case)
        assert everything[0] is policy, test.name
        assert attempt_signature(case, everything) is None, test.name  # the primitive accepts it
        if policy is Policy.LOW_S:
            rs = _r_s(case)
            assert rs is not None and rs[1] > CURVE_ORDER[case.scheme] // 2, test.name
            with pytest.raises(HighS):
                verify(parse_signature_bytes(bytes([case.scheme]) + case.signature + case.public_key),
                       case.message, any_length=True)  # fmt: skip
        elif policy is Policy.MESSAGE_32:
            assert len(case.message) != 32 and Policy.LOW_S not in everything, test.name
            with pytest.raises(LengthError):
                verify(parse_signature_bytes(bytes([case.scheme]) + case.signature + case.public_key), case.message)
        else:
            assert case.der and len(case.signature) != 64, test.name
            with pytest.raises(SignatureLength):
                parse_signature_bytes(bytes([case.scheme]) + case.signature + case.public_key)


def test_a_point_counted_as_low_order_gives_a_zero_secret_and_is_refused() -> None:
    cases = _by(Policy.LOW_ORDER)
    assert cases
    for test in cases:
        assert not test.invalid and test.hex("shared") == bytes(32), test.name
        assert is_low_order(test.hex("public")), test.name
        with pytest.raises(LowOrderPoint):
            x25519_shared_secret(test.hex("private"), test.hex("public"))
    # And the converse: every case whose shared secret is zero is one of them.
    zero = [t.name for t, _ in verdicts() if t.group["type"] == "XdhComp" and t.hex("shared") == bytes(32)]
    assert zero == [t.name for t in cases]


@pytest.mark.parametrize(
    ("policy", "holds"),
    [
        (Policy.AES_256, lambda t: len(t.hex("key")) != 32),
        (Policy.IV_96, lambda t: len(t.hex("key")) == 32 and len(t.hex("iv")) != 12),
        (Policy.EMPTY_AAD, lambda t: len(t.hex("key")) == 32 and len(t.hex("iv")) == 12 and t.hex("aad") != b""),
    ],
    ids=lambda x: x.name if isinstance(x, Policy) else "",
)
def test_an_aead_case_counted_by_policy_is_valid_and_outside_the_protocol(
    policy: Policy, holds: Callable[[WycheproofTest], bool]
) -> None:
    cases = _by(policy)
    assert cases
    for test in cases:
        assert test.valid and holds(test), test.name
        with pytest.raises(AeadError if policy is Policy.EMPTY_AAD else LengthError):
            aead_open(test.hex("key"), test.hex("iv"), test.hex("ct") + test.hex("tag"))


def test_an_invalid_signature_is_refused_by_the_primitive_too() -> None:
    """Not only by a policy: with every policy lifted the core still refuses (the judge's rule, checked
    once more here on the P1363 and Ed25519 files, where every lift reaches the core's verify)."""
    cases = [t for t, _ in verdicts() if t.invalid and t.group["type"] in ("EcdsaP1363Verify", "EddsaVerify")]
    assert len(cases) > 100
    for test in cases:
        case = signature_case(test)
        assert isinstance(attempt_signature(case, signature_policies(case)), ProtocolError), test.name


def test_the_judge_can_say_disagree() -> None:
    """A verdict that cannot come out "disagree" proves nothing: a valid signature moved to another
    message, and a valid case relabelled invalid, must both be disagreements."""
    valid = next(t for t, v in verdicts() if t.group["type"] == "EcdsaP1363Verify" and v.policy is Policy.LOW_S)
    broken = WycheproofTest(valid.file, valid.group, {**valid.case, "msg": "00" + valid.case["msg"]})
    assert judge(broken).kind == "disagree"
    forged = WycheproofTest(valid.file, valid.group, {**valid.case, "result": "invalid"})
    assert judge(forged).kind == "disagree"  # the primitive accepts it once the policies are lifted
    twist = next(t for t, _ in verdicts() if t.acceptable and t.has_flag("Twist") and t.hex("shared") != bytes(32))
    wrong = WycheproofTest(twist.file, twist.group, {**twist.case, "shared": "01" + twist.case["shared"][2:]})
    assert judge(twist).kind == "agree" and judge(wrong).kind == "disagree"  # acceptable is not "anything goes"


def test_a_core_that_forgot_the_low_s_rule_would_disagree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The low-s column is earned: with a malleable verifier in place of the core's, every case counted
    there turns into a disagreement instead of moving silently to another column."""
    real = verify

    def malleable(sig: SuiSignature, message: bytes, *, any_length: bool = False) -> None:
        order = CURVE_ORDER.get(sig.scheme, 0)
        if order // 2 < int.from_bytes(sig.signature[32:], "big") < order:
            sig = to_high_s(sig)
        real(sig, message, any_length=any_length)

    cases = _by(Policy.LOW_S)
    monkeypatch.setattr(sys.modules[__name__], "verify", malleable)
    assert {judge(test).kind for test in cases} == {"disagree"}


def _edited(doc: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(doc))
    edit(copy)
    return copy


def _first_test(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["testGroups"][0]["tests"][0]
    return first


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: _first_test(d).update(result="maybe"), "'result' is not one of"),
        (lambda d: _first_test(d).update(flags=["Unheard"]), "a flag its notes do not define"),
        (lambda d: _first_test(d).update(flags="Normal"), "'flags' is not a list"),
        (lambda d: _first_test(d).update(tcId="1"), "no integer 'tcId'"),
        (lambda d: d["testGroups"][0]["tests"].append(_first_test(d)), "appears twice"),
        (lambda d: d.update(numberOfTests=d["numberOfTests"] - 1), "numberOfTests"),
        (lambda d: d["testGroups"][0].pop("tests"), "is not a group with a 'tests' list"),
        (lambda d: d.pop("notes"), "no 'notes' object"),
        (lambda d: d.pop("algorithm"), "no 'algorithm'"),
    ],
)
def test_the_loader_refuses_a_file_that_is_not_wycheproof(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], needle: str
) -> None:
    good = json.loads((DIRECTORY / "hkdf_sha256_test.json").read_text(encoding="utf-8"))
    path = tmp_path / "hkdf_sha256_test.json"
    path.write_text(json.dumps(_edited(good, edit)), encoding="utf-8")
    with pytest.raises(UserError, match=needle) as refused:
        load_file(path)
    assert str(refused.value).startswith("wycheproof:hkdf_sha256_test.json: ")
    path.write_text(json.dumps(good), encoding="utf-8")
    assert len(load_file(path).tests) == 86  # the unedited copy loads: the edit is what was refused


def test_the_loader_refuses_what_paths_refuses(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(UserError, match="not a JSON object"):
        load_file(tmp_path / "list.json")
    (tmp_path / "big.json").write_bytes(b" " * (3 * 1024 * 1024 + 1))
    with pytest.raises(UserError, match="more than the 3 MiB"):
        load_file(tmp_path / "big.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(UserError, match="directory"):
        load_file(tmp_path / "dir.json")
    case = WycheproofTest("f.json", {}, {"tcId": 1, "msg": "zz"})
    with pytest.raises(UserError, match="'msg' is not hex"):
        case.hex("msg")
    with pytest.raises(UserError, match="no hex string 'sig'"):
        case.hex("sig")


def test_the_loader_reads_upstream_fields() -> None:
    doc = load_file(DIRECTORY / "x25519_test.json")
    first = doc.tests[0]
    assert (doc.algorithm, first.tc_id, first.result, first.flags) == ("XDH", 1, "valid", ("Normal",))
    assert first.valid and not first.invalid and not first.acceptable and first.has_flag("Normal")
    assert "LowOrderPublic" in doc.notes
    assert source_dir() == DIRECTORY


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_the_vendored_files_are_upstreams_unedited_and_small() -> None:
    """README.md names the commit and each file's git blob id there: a hand edit cannot pass as upstream."""
    readme = (DIRECTORY / "README.md").read_text(encoding="utf-8")
    assert "https://github.com/C2SP/wycheproof" in readme
    assert re.search(r"at commit `[0-9a-f]{40}`", readme)
    rows = {
        name: (int(size), blob)
        for name, size, blob in re.findall(r"^\| `([\w.]+)` \| (\d+) \| `([0-9a-f]{40})`", readme, re.M)
    }
    assert list(rows) == list(FILES)
    for name, (size, blob) in rows.items():
        data = (DIRECTORY / name).read_bytes()
        assert (len(data), _git_blob(data)) == (size, blob), name
    licence = (DIRECTORY / "LICENSE").read_bytes()
    assert b"Apache License" in licence and f"blob `{_git_blob(licence)}`" in readme
    assert sorted(p.name for p in DIRECTORY.iterdir()) == sorted([*FILES, "LICENSE", "README.md"])
    assert sum(p.stat().st_size for p in DIRECTORY.iterdir()) < 3 * 1024 * 1024


if __name__ == "__main__":  # pragma: no cover - prints the table for docs/wycheproof.md
    print(render_table(tallies()), end="")
