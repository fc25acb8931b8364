"""The node face with a stack owner of every Sui scheme (docs/spec.md §7.1, §7.3): the signatures the
ECDSA probes send (NODE-008 to NODE-010), the empty X-Signature (NODE-011), the owner's R7.6 address
(NODE-012) and ``run --signer-scheme``. The mock's flawed verifiers that prove those checks can fail
have their wire-effect tests in tests/test_mock_faults.py and their catches in tests/test_meta_faults.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coincurve
import pytest
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conformance.checks import CATALOGUE, Run, Target
from conformance.checks.base import Skip
from conformance.checks.judging import refused_with
from conformance.checks.sections import node_face
from conformance.cli import main
from conformance.client import ConfidentialClient, NodeFace
from conformance.embedded import embedded_signer, embedded_target, fault_owner_scheme
from conformance.hop import embedded_owner_scheme
from conformance.protocol import (
    CURVE_ORDER,
    HighS,
    InvalidPublicKey,
    Scheme,
    SignatureVerificationFailed,
    SuiSignature,
    SuiSigner,
    b64decode,
    blake2b_256,
    ecdsa_scalars,
    off_curve_key,
    parse_signature,
    to_high_s,
    verify,
    with_scalars,
)
from conformance.records import HttpRecord
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.testing import running_node

ECDSA = (Scheme.SECP256K1, Scheme.SECP256R1)
ECDSA_IDS = [s.label for s in ECDSA]
HASH = blake2b_256(b"atoma-conformance: a plaintext")
STACK = 5
CURVES = {Scheme.SECP256K1: ec.SECP256K1(), Scheme.SECP256R1: ec.SECP256R1()}
NEW_CHECKS = ("NODE-008", "NODE-009", "NODE-010", "NODE-011", "NODE-012")


def signer_of(scheme: Scheme) -> SuiSigner:
    return SuiSigner(scheme, bytes(range(7, 39)))


def raw_ecdsa_verifies(sig: SuiSignature, message: bytes) -> bool:
    """OpenSSL's ECDSA, which has no low-s rule: whether ``sig`` is a valid signature but for R7.5."""
    r, s = ecdsa_scalars(sig)
    key = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[sig.scheme], sig.public_key)
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


# --- the signatures the probes are made of ------------------------------------------------------------


@pytest.mark.parametrize("scheme", ECDSA, ids=ECDSA_IDS)
def test_the_high_s_twin_has_s_above_half_the_order_and_is_otherwise_valid(scheme: Scheme) -> None:
    sig = signer_of(scheme).sign(HASH)
    twin = to_high_s(sig)
    order = CURVE_ORDER[scheme]
    (r, s), (twin_r, twin_s) = ecdsa_scalars(sig), ecdsa_scalars(twin)
    assert s <= order // 2 < twin_s and twin_r == r and s + twin_s == order
    assert twin.public_key == sig.public_key and twin.scheme is scheme
    assert raw_ecdsa_verifies(twin, HASH), "the twin must be valid ECDSA: only the low-s rule refuses it"
    with pytest.raises(HighS):
        verify(twin, HASH)
    verify(sig, HASH)
    assert to_high_s(twin) == sig


def test_the_high_s_twin_verifies_for_an_independent_p256_library() -> None:
    """pycryptodome, which shares no code with the core: the twin of a P-256 signature verifies there."""
    sig = to_high_s(signer_of(Scheme.SECP256R1).sign(HASH))
    key = ECC.import_key(sig.public_key, curve_name="P-256")
    DSS.new(key, "fips-186-3").verify(SHA256.new(HASH), sig.signature)


@pytest.mark.parametrize("scheme", ECDSA, ids=ECDSA_IDS)
def test_out_of_range_scalars_are_refused_by_the_core_and_by_openssl_alike(scheme: Scheme) -> None:
    sig = signer_of(scheme).sign(HASH)
    r, s = ecdsa_scalars(sig)
    order = CURVE_ORDER[scheme]
    r_order, s_zero = with_scalars(sig, order, s), with_scalars(sig, r, 0)
    assert ecdsa_scalars(r_order) == (order, s) and ecdsa_scalars(s_zero) == (r, 0)
    assert len(r_order.to_bytes()) == len(sig.to_bytes()) == 98
    for bad in (r_order, s_zero):
        with pytest.raises(SignatureVerificationFailed, match="outside"):
            verify(bad, HASH)
        assert not raw_ecdsa_verifies(bad, HASH)
    assert with_scalars(sig, r, s) == sig


def test_scalar_helpers_refuse_what_has_no_scalars() -> None:
    ed = SuiSigner(Scheme.ED25519, bytes(32)).sign(HASH)
    with pytest.raises(ValueError, match="ECDSA"):
        ecdsa_scalars(ed)
    with pytest.raises(ValueError, match="ECDSA"):
        with_scalars(ed, 1, 1)
    with pytest.raises(ValueError, match="ECDSA"):
        off_curve_key(Scheme.ED25519)
    sig = signer_of(Scheme.SECP256K1).sign(HASH)
    for r, s in ((2**256, 1), (1, -1)):
        with pytest.raises(ValueError, match="32-byte"):
            with_scalars(sig, r, s)


@pytest.mark.parametrize("scheme", ECDSA, ids=ECDSA_IDS)
def test_the_off_curve_key_is_the_smallest_x_with_no_point(scheme: Scheme) -> None:
    key = off_curve_key(scheme)
    assert len(key) == 33 and key[0] == 0x02
    x = int.from_bytes(key[1:], "big")
    for prefix in (b"\x02", b"\x03"):  # no y of either parity: x names no point at all
        with pytest.raises(ValueError, match="Invalid EC key"):
            ec.EllipticCurvePublicKey.from_encoded_point(CURVES[scheme], prefix + key[1:])
    for smaller in range(x):
        ec.EllipticCurvePublicKey.from_encoded_point(CURVES[scheme], b"\x02" + smaller.to_bytes(32, "big"))
    sig = signer_of(scheme).sign(HASH)
    with pytest.raises(InvalidPublicKey):
        verify(SuiSignature(scheme, sig.signature, key), HASH)


def test_the_secp256k1_off_curve_key_is_refused_by_libsecp256k1() -> None:
    with pytest.raises(ValueError, match="invalid"):
        coincurve.PublicKey(off_curve_key(Scheme.SECP256K1))


# --- what the probes send -----------------------------------------------------------------------------


class Sent:
    """A node-face run against the strict mock whose X-Signature headers are kept, per request."""

    def __init__(self, url: str, config: MockConfig, signer: SuiSigner) -> None:
        self.headers: list[dict[str, str]] = []
        hop = NodeFace(signer, STACK, config.node_public_key)
        self.client = ConfidentialClient(url, None, node_face=hop)
        original = self.client.request

        def request(method: str, path: str, **kwargs: Any) -> Any:
            self.headers.append(dict(kwargs.get("headers") or {}))
            return original(method, path, **kwargs)

        self.client.request = request  # type: ignore[method-assign]
        target = Target(
            url, None, DEFAULT_MODELS[0], DEFAULT_MODELS[1], DEFAULT_MODELS[2], config.signer_address,
            None, embedded=True, profile="strict", face="node",
        )  # fmt: skip
        self.run = Run(target, self.client)

    def signature(self, probe: Any) -> tuple[SuiSignature | None, int | None]:
        """The X-Signature ``probe`` sent (parsed), and the status it got."""
        before = len(self.headers)
        record = self.run.get(probe)
        (sent,) = self.headers[before:]
        text = sent["x-signature"]
        return (parse_signature(text, field="X-Signature") if text else None), record.http.status


@pytest.fixture(params=list(Scheme), ids=[s.label for s in Scheme])
def sent(request: pytest.FixtureRequest) -> Iterator[Sent]:
    signer = signer_of(request.param)
    config = MockConfig(face="node", stack_owners={STACK: signer.address})
    with running_node(config) as url:
        recorder = Sent(url, config, signer)
        try:
            yield recorder
        finally:
            recorder.client.close()


def test_each_ecdsa_probe_sends_the_owners_signature_altered_in_one_way_only(sent: Sent) -> None:
    signer = sent.client.node_face.signer  # type: ignore[union-attr]
    if signer.scheme is Scheme.ED25519:
        for probe in (node_face.NODE_ECDSA_HIGH_S, node_face.NODE_ECDSA_R_ORDER, node_face.NODE_ECDSA_OFF_CURVE):
            with pytest.raises(Skip, match="not applicable: the owner key is Ed25519"):
                sent.run.get(probe)
        assert sent.headers == [], "a probe that does not apply sends nothing"
        return
    order = CURVE_ORDER[signer.scheme]
    high, status = sent.signature(node_face.NODE_ECDSA_HIGH_S)
    assert high is not None and status == 400
    assert ecdsa_scalars(high)[1] > order // 2 and high.address == signer.address
    assert raw_ecdsa_verifies(to_high_s(high), high_message(sent)), "its low-s twin is the owner's valid signature"
    r_order, status = sent.signature(node_face.NODE_ECDSA_R_ORDER)
    assert r_order is not None and status == 400 and ecdsa_scalars(r_order)[0] == order
    assert 0 < ecdsa_scalars(r_order)[1] <= order // 2, "only r is out of range"
    s_zero, status = sent.signature(node_face.NODE_ECDSA_S_ZERO)
    assert s_zero is not None and status == 400 and ecdsa_scalars(s_zero)[1] == 0
    assert 0 < ecdsa_scalars(s_zero)[0] < order, "only s is out of range"
    off, status = sent.signature(node_face.NODE_ECDSA_OFF_CURVE)
    assert off is not None and status == 400 and off.public_key == off_curve_key(signer.scheme)
    assert off.scheme is signer.scheme and 0 < ecdsa_scalars(off)[1] <= order // 2


def high_message(sent: Sent) -> bytes:
    """The plaintext_body_hash the high-s probe's request carried (what its signature covers)."""
    return b64decode(sent.run.get(node_face.NODE_ECDSA_HIGH_S).request.plaintext_body_hash)


def test_the_empty_signature_probe_sends_a_present_empty_header(sent: Sent) -> None:
    signature, status = sent.signature(node_face.NODE_EMPTY_SIGNATURE)
    assert signature is None and status == 400
    assert sent.headers[-1]["x-signature"] == ""


def test_the_owner_probe_sends_nothing_and_names_the_owner(sent: Sent) -> None:
    owner = sent.run.get(node_face.NODE_OWNER)
    signer = sent.client.node_face.signer  # type: ignore[union-attr]
    assert (owner.scheme, owner.address) == (signer.scheme, signer.address)
    assert sent.headers == []


# --- judging ------------------------------------------------------------------------------------------


def refusal(status: int, code: str) -> HttpRecord:
    body = json.dumps({"error": {"code": code, "message": "refused"}}).encode()
    return HttpRecord("POST", "/v1/confidential/chat/completions", status, {"content-type": "application/json"}, body)


@pytest.mark.parametrize(
    ("status", "code", "ok"),
    [
        (400, "INVALID_HEADER", True),
        (401, "AUTH_ERROR", True),
        (401, "INVALID_HEADER", False),  # the mutant survivors.md named: a status and a code of two rows
        (400, "AUTH_ERROR", False),
        (400, "MISSING_HEADER", False),  # an empty header is present: not a missing one
        (500, "INTERNAL_ERROR", False),
    ],
)
def test_x_signature_refusals_are_judged_as_table_10_1_pairs(status: int, code: str, ok: bool) -> None:
    assert (refused_with(refusal(status, code), node_face._BAD_HEADER) is None) is ok


def test_the_new_checks_cite_their_rules_and_read_chat_first() -> None:
    by_id = {c.id: c for c in CATALOGUE}
    assert set(NEW_CHECKS) <= set(by_id)
    assert by_id["NODE-008"].spec[0] == "R7.5" and "R7.6" in by_id["NODE-012"].spec
    for check_id in NEW_CHECKS:
        assert "chat" in by_id[check_id].probes, check_id


# --- run --signer-scheme -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(Scheme), ids=[s.label for s in Scheme])
def test_a_node_face_run_with_each_owner_scheme_passes_the_clean_mock(
    scheme: Scheme, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--face", "node", "--signer-scheme", scheme.label, "--report-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    outcomes = {c["id"]: (c["outcome"], c["reason"]) for c in results["checks"]}
    assert all(outcomes[f"NODE-0{n:02d}"][0] == "pass" for n in (1, 2, 3, 4, 5, 6, 7, 11, 12))
    assert scheme.label in outcomes["NODE-012"][1]
    for check_id in ("NODE-008", "NODE-009", "NODE-010"):
        if scheme is Scheme.ED25519:
            assert outcomes[check_id][0] == "skip"
            assert outcomes[check_id][1].startswith("not applicable: the owner key is Ed25519")
        else:
            assert outcomes[check_id][0] == "pass", outcomes[check_id]
    assert results["options"]["signer_scheme"] == scheme.label


def exit_code(argv: list[str]) -> int:
    """``main``'s exit code, whether it returns it or argparse raises it (a bad choice)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--signer-scheme", "secp256k2", "--face", "node"], "argument --signer-scheme: invalid choice"),
        (["--signer-scheme", "secp256k1"], "--signer-scheme: only applies to --face node"),
        (
            ["--signer-scheme", "secp256k1", "--face", "node", "--target", "http://127.0.0.1:9", "--model", "m"],
            "--signer-scheme: only for the embedded mock",
        ),
    ],
)
def test_a_bad_signer_scheme_exits_2_naming_the_option(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(["run", *argv, "--report-dir", str(tmp_path)]) == 2
    assert says in capsys.readouterr().err


def test_signer_scheme_and_signer_key_do_not_combine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "owner.key"
    key.write_text(signer_of(Scheme.SECP256R1).to_keystore() + "\n", encoding="utf-8")
    argv = ["run", "--face", "node", "--signer-scheme", "secp256k1", "--signer-key", str(key)]
    assert main([*argv, "--report-dir", str(tmp_path)]) == 2
    assert "--signer-scheme: cannot be combined with --signer-key" in capsys.readouterr().err


def test_the_embedded_owner_keeps_its_ed25519_address_and_gains_one_per_scheme() -> None:
    assert embedded_owner_scheme(None, face="proxy", target=None, signer_key=None) is None
    assert embedded_owner_scheme("SECP256R1", face="node", target=None, signer_key=None) is Scheme.SECP256R1
    ed = embedded_signer(Scheme.ED25519)
    assert ed.address == SuiSigner(Scheme.ED25519, blake2b_256(b"atoma-conformance embedded proxy signer")).address
    addresses = {embedded_signer(s).address for s in Scheme}
    assert len(addresses) == 3
    with embedded_target(face="node", signer_scheme=Scheme.SECP256K1) as embedded:
        assert embedded.node_face is not None and embedded.node_face.signer.scheme is Scheme.SECP256K1


def test_a_mock_fault_of_the_ecdsa_verifier_gets_an_owner_that_shows_it() -> None:
    """``run --face node --mock-fault`` of an ECDSA flaw must not pass by skipping the check it breaks."""
    assert fault_owner_scheme(()) is Scheme.ED25519
    assert fault_owner_scheme(("node-empty-signature-500",)) is Scheme.ED25519
    assert fault_owner_scheme(("node-ecdsa-accept-high-s", "node-empty-signature-500")) is Scheme.SECP256K1


def test_run_with_an_ecdsa_fault_fails_its_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--face", "node", "--mock-fault", "node-ecdsa-accept-high-s", "--report-dir", str(tmp_path)]
    assert main(argv) == 1
    assert "NODE-008     MUST   FAIL  accepted with 200" in capsys.readouterr().out


# --- verdicts over given answers (no node) -----------------------------------------------------------------


class Answer(HttpRecord):
    """An answer standing in for a probe's exchange: its own ``http``, as an ExchangeRecord has one."""

    @property
    def http(self) -> HttpRecord:
        return self


def answer(status: int, code: str | None = None) -> Answer:
    body = json.dumps({"error": {"code": code, "message": "refused"}}).encode() if code else b"{}"
    return Answer("POST", "/v1/confidential/chat/completions", status, {"content-type": "application/json"}, body)


def outcome(check_id: str, answers: dict[str, Any], chat: Answer | None = None) -> tuple[str, str]:
    """The verdict of ``check_id`` when each probe named in ``answers`` got that answer and CHAT ``chat``."""
    target = Target(
        "http://127.0.0.1:9", None, "m", None, None, None, None, embedded=True, profile="strict", face="node"
    )
    with ConfidentialClient(target.base_url, None) as client:
        run = Run(target, client)
        run._cache.update({"chat": chat or answer(200), **answers})  # nothing is sent: every read is cached
        result = next(c for c in CATALOGUE if c.id == check_id).run(run)
    return result.outcome, result.reason


OWNER_K1 = node_face.Owner(Scheme.SECP256K1, signer_of(Scheme.SECP256K1).address)
REFUSED = answer(400, "INVALID_HEADER")


@pytest.mark.parametrize(
    ("check_id", "answers", "chat", "expected"),
    [
        ("NODE-001", {"node_no_signature": answer(401, "AUTH_ERROR")}, None, "fail"),  # no token to blame
        ("NODE-001", {"node_no_signature": answer(429, "TOO_MANY_REQUESTS")}, None, "error"),  # an earlier cause
        ("NODE-008", {"node_ecdsa_high_s": REFUSED}, answer(500, "INTERNAL_ERROR"), "error"),
        ("NODE-008", {"node_ecdsa_high_s": answer(200)}, None, "fail"),
        ("NODE-009", {"node_ecdsa_r_order": REFUSED, "node_ecdsa_s_zero": answer(401, "AUTH_ERROR")}, None, "pass"),
        ("NODE-009", {"node_ecdsa_r_order": REFUSED, "node_ecdsa_s_zero": answer(500, "INTERNAL_ERROR")}, None, "fail"),
        ("NODE-011", {"node_empty_signature": answer(400, "MISSING_HEADER")}, None, "fail"),
        ("NODE-012", {"node_owner": OWNER_K1}, None, "pass"),
        ("NODE-012", {"node_owner": OWNER_K1}, answer(401, "AUTH_ERROR"), "fail"),
        ("NODE-012", {"node_owner": OWNER_K1}, answer(400, "INVALID_HEADER"), "fail"),
        ("NODE-012", {"node_owner": OWNER_K1}, answer(500, "INTERNAL_ERROR"), "error"),  # refused, not as a stranger
    ],
)  # fmt: skip
def test_each_check_fails_only_for_its_own_reason(
    check_id: str, answers: dict[str, Any], chat: Answer | None, expected: str
) -> None:
    got, reason = outcome(check_id, answers, chat)
    assert got == expected, reason
    if check_id == "NODE-009" and got == "fail":
        assert "node_ecdsa_s_zero: refused 500" in reason and "node_ecdsa_r_order:" not in reason
    if check_id == "NODE-012" and got == "fail":
        assert OWNER_K1.address in reason and "secp256k1" in reason
