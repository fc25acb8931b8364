"""The node face: the mock's node personality, and the suite standing in for the proxy (spec §1.3, §7.3)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.cli import main
from conformance.client import DROP, ConfidentialClient, NodeFace
from conformance.protocol import Scheme, SuiSigner, b64encode, is_sui_address
from mock_node.config import ConfigError, MockConfig
from mock_node.testing import running_node

STACK = 11
SIGNER = SuiSigner(Scheme.ED25519, bytes(range(1, 33)))


@pytest.fixture
def node() -> Iterator[tuple[str, MockConfig]]:
    config = MockConfig(face="node", stack_owners={STACK: SIGNER.address})
    with running_node(config) as url:
        yield url, config


def keystore_file(tmp_path: Path, signer: SuiSigner = SIGNER, *, as_array: bool = False) -> Path:
    path = tmp_path / "owner.key"
    entry = signer.to_keystore()
    path.write_text(json.dumps([entry]) if as_array else entry + "\n", encoding="utf-8")
    return path


def live_args(url: str, config: MockConfig, key: Path, tmp_path: Path) -> list[str]:
    return [
        "run",
        "--face",
        "node",
        "--target",
        url,
        "--model",
        config.models[0],
        "--signer-key",
        str(key),
        "--stack-small-id",
        str(STACK),
        "--node-public-key",
        b64encode(config.node_public_key),
        "--report-dir",
        str(tmp_path / "reports"),
    ]


# --- the done-when of the issue -----------------------------------------------------------------------


def test_the_node_face_run_passes_against_the_strict_node_face(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--face", "node", "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS: every MUST check passed" in out
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    outcomes = {c["id"]: c["outcome"] for c in results["checks"]}
    assert all(outcomes[f"NODE-00{n}"] == "pass" for n in range(1, 8))
    assert outcomes["LOCK-001"] == "skip" and outcomes["NONCE-003"] == "pass"
    assert results["options"]["face"] == "node"


def test_the_compat_node_face_fails_and_names_nonce_reuse_and_500s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--face", "node", "--profile", "atoma-node-compat", "--report-dir", str(tmp_path)])
    assert code == 1
    out = capsys.readouterr().out
    assert "NONCE-003    MUST   FAIL" in out, out
    assert "ERR-017      MUST   FAIL" in out
    assert "NODE-006     MUST   FAIL  refused 500" in out


def test_a_live_node_face_is_certified_with_a_keystore_file(
    node: tuple[str, MockConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = node
    key = keystore_file(tmp_path, as_array=True)  # the upstream sui.keystore shape, one entry
    assert main(live_args(url, config, key, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "PASS" in out
    secret = SIGNER.to_keystore()
    for path in (tmp_path / "reports").iterdir():
        assert secret not in path.read_text(encoding="utf-8"), f"{path.name} holds the signer key"
    assert secret not in out


@pytest.mark.parametrize("scheme", list(Scheme), ids=[s.label for s in Scheme])
def test_every_signature_scheme_can_sign_the_hop(scheme: Scheme) -> None:
    signer = SuiSigner(scheme, bytes(range(2, 34)))
    config = MockConfig(face="node", stack_owners={STACK: signer.address})
    with (
        running_node(config) as url,
        ConfidentialClient(url, None, node_face=NodeFace(signer, STACK, config.node_public_key)) as client,
    ):
        lock = client.lock(config.models[0])
        body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}]}' % config.models[0].encode()
        record = client.send("chat", body, lock=lock, model_name=config.models[0])
        assert record.http.status == 200, record.http.body


# --- the mock's node personality -------------------------------------------------------------------------


def test_the_node_face_has_no_lock_endpoint_and_its_own_health_body(node: tuple[str, MockConfig]) -> None:
    url, _ = node
    with httpx.Client(base_url=url) as http:
        assert http.post("/v1/nodes/lock", json={"model": "m"}).status_code == 404
        assert http.get("/health").json() == {"status": "ok"}


def test_the_hop_headers_are_sent_and_a_dropped_header_is_absent(node: tuple[str, MockConfig]) -> None:
    url, config = node
    face = NodeFace(SIGNER, STACK, config.node_public_key)
    with ConfidentialClient(url, None, node_face=face) as client:
        headers = client.headers(body=b'{"plaintext_body_hash":"' + b64encode(bytes(32)).encode() + b'"}', stream=True)
        assert set(headers) >= {"x-signature", "x-request-id"} and "authorization" not in headers
        assert "x-signature" not in client.headers({"x-signature": DROP}, body=b"{}")
        assert "x-signature" not in client.headers(body=b"not json"), "nothing to sign: no header"
    assert "secret" not in repr(face) and SIGNER.address in repr(face)


def test_mock_usage_errors_name_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mock", "--face", "node", "--stack-owner", "0x12:1"]) == 2
    assert "--stack-owner" in capsys.readouterr().err
    assert main(["mock", "--face", "node", "--stack-owner", SIGNER.address]) == 2
    assert "expected ADDRESS:STACK_ID" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--face: unknown face"):
        MockConfig(face="edge")  # type: ignore[arg-type]  # what a bad --face would give
    with pytest.raises(ConfigError, match="is not a Sui address"):
        MockConfig(face="node", stack_owners={1: "0xabc"})
    with pytest.raises(ConfigError, match="outside 0 to 2"):
        MockConfig(face="node", stack_owners={-1: SIGNER.address})
    assert is_sui_address(SIGNER.address) and not is_sui_address("0x" + "g" * 64)


# --- run's usage errors: one line, exit 2, the option named ------------------------------------------------


def test_run_usage_errors_name_the_option(
    node: tuple[str, MockConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = node
    key = keystore_file(tmp_path)
    cases: list[tuple[list[str], str]] = [
        (["run", "--signer-key", str(key)], "--signer-key: only applies to --face node"),
        (["run", "--face", "node", "--signer-key", str(tmp_path / "nope")], "no such file"),
        (["run", "--face", "node", "--target", url, "--model", "m"], "needs --signer-key, --stack-small-id"),
    ]
    ftp = live_args(url, config, key, tmp_path)
    ftp[ftp.index("--target") + 1] = "ftp://x"
    cases.append((ftp, "must be an http:// or https:// URL"))
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not-base64!", encoding="utf-8")
    args = live_args(url, config, bad_key, tmp_path)
    cases.append((args, "--signer-key: not a Sui keystore entry"))
    two = tmp_path / "two.key"
    two.write_text(json.dumps([SIGNER.to_keystore(), SIGNER.to_keystore()]), encoding="utf-8")
    cases.append((live_args(url, config, two, tmp_path), "exactly one entry"))
    short = live_args(url, config, key, tmp_path)
    short[short.index("--node-public-key") + 1] = b64encode(bytes(31))
    cases.append((short, "--node-public-key"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_keygen_writes_a_private_keystore_entry_and_prints_only_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.hop import load_signer

    out = tmp_path / "owner.key"
    assert main(["keygen", "--scheme", "secp256k1", "--out", str(out)]) == 0
    address = capsys.readouterr().out.strip()
    signer = load_signer(str(out))
    assert signer.address == address and signer.scheme is Scheme.SECP256K1
    assert out.stat().st_mode & 0o077 == 0, "the key file is readable by others"
    assert signer.to_keystore() not in address
    assert main(["keygen", "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["keygen", "--out", str(tmp_path / "no" / "such" / "dir.key")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_docs_relative_key_path_works(
    node: tuple[str, MockConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/node-operators.md passes `--signer-key owner.key`; the run itself starts in another directory."""
    url, config = node
    keystore_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = live_args(url, config, Path("owner.key"), tmp_path)
    assert main(args) == 0


def test_a_setup_the_node_refuses_stops_the_run_naming_the_option(
    node: tuple[str, MockConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Otherwise every refusal probe would pass because of the setup, not because of what it probes."""
    url, config = node
    key = keystore_file(tmp_path)
    foreign_stack = live_args(url, config, key, tmp_path)
    foreign_stack[foreign_stack.index("--stack-small-id") + 1] = str(STACK + 1)
    assert main(foreign_stack) == 2
    assert "--signer-key/--stack-small-id" in capsys.readouterr().err
    other_key = live_args(url, config, key, tmp_path)
    other_key[other_key.index("--node-public-key") + 1] = b64encode(bytes(range(32)))
    assert main(other_key) == 2
    assert "--node-public-key/--model" in capsys.readouterr().err
    low_order = live_args(url, config, key, tmp_path)
    low_order[low_order.index("--node-public-key") + 1] = b64encode(bytes(32))
    assert main(low_order) == 2
    assert "low-order" in capsys.readouterr().err


def test_more_usage_errors_of_the_node_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe\x00")
    bech32 = tmp_path / "bech32.key"
    bech32.write_text("suiprivkey1qq" + "x" * 50, encoding="utf-8")
    cases = [
        (["run", "--face", "node", "--api-key", "k"], "the node face has no bearer tokens"),
        (["run", "--face", "node", "--node-public-key", b64encode(bytes(32))], "only with --target"),
        (["run", "--face", "node", "--stack-small-id", "-5"], "--stack-small-id: must be from 0"),
        (["run", "--face", "node", "--signer-key", str(binary)], "the file is not text"),
        (["run", "--face", "node", "--signer-key", str(bech32)], "bech32"),
        (["mock", "--stack-owner", f"{SIGNER.address}:1", "--port", "0"], "only applies to --face node"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_the_embedded_node_face_honours_the_stack_and_the_signer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = keystore_file(tmp_path, SuiSigner(Scheme.SECP256R1, bytes(range(3, 35))))
    argv = ["run", "--face", "node", "--signer-key", str(key), "--stack-small-id", "42", "-m", "node"]
    assert main([*argv, "--report-dir", str(tmp_path / "r")]) == 0
    assert "PASS" in capsys.readouterr().out


def test_the_compat_node_checks_the_owner_after_decryption_as_upstream_does() -> None:
    """A foreign signer with a tampered ciphertext: strict refuses the signer (401) before decrypting;
    atoma-node decrypts first and answers the tag failure with 500 (protocol §4.3)."""
    stranger = SuiSigner(Scheme.ED25519, bytes(32 * [5]))

    def tamper(envelope: dict[str, object]) -> dict[str, object]:
        raw = bytearray(base64.b64decode(str(envelope["ciphertext"])))
        raw[0] ^= 1
        return envelope | {"ciphertext": b64encode(bytes(raw))}

    for profile, status in (("strict", 401), ("atoma-node-compat", 500)):
        config = MockConfig(face="node", profile=profile, stack_owners={STACK: SIGNER.address})
        with (
            running_node(config) as url,
            ConfidentialClient(url, None, node_face=NodeFace(stranger, STACK, config.node_public_key)) as client,
        ):
            body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}]}' % config.models[0].encode()
            record = client.send(
                "chat", body, lock=client.lock(config.models[0]), model_name=config.models[0], mutate=tamper
            )
            assert record.http.status == status, profile
