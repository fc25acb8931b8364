"""The KEY checks' I/O (conformance.keybinding): what a hostile or broken Sui full node or proxy service
can do to a run (nothing but "not evaluated", in bounded time and memory), what the options refuse,
and that without a key source the KEY checks skip with the option to give, never pass."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conformance.checks import CATALOGUE, Run, Target
from conformance.client import ConfidentialClient
from conformance.embedded import embedded_key_source, embedded_target
from conformance.exits import UserError
from conformance.keybinding import (
    KEY_OPTIONS,
    ChainReader,
    ChainReadError,
    KeySource,
    key_source_from,
)
from conformance.protocol import MAX_SUI_RESPONSE_BYTES, DeviceTestCa, ProtocolError
from mock_node.chain import MOCK_PACKAGE_ID
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.testing import running_node

KEY_CHECKS = [c for c in CATALOGUE if c.category == "KEY"]
SOURCE = KeySource("http://sui.invalid/", MOCK_PACKAGE_ID, "http://service.invalid", True)


def _outcomes(target: Target, make: Callable[[], ConfidentialClient]) -> dict[str, tuple[str, str]]:
    client = make()
    try:
        run = Run(target, client)
        return {c.id: (v.outcome, v.reason) for c in KEY_CHECKS for v in [c.run(run)]}
    finally:
        client.close()


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with running_node(MockConfig()) as url:
        yield url


def test_the_embedded_run_passes_every_key_check_of_the_proxy_face() -> None:
    with embedded_target("strict", known_keys=True) as emb:
        source = emb.target.key_source
        assert source is not None and source.trust_test_ca and source.max_key_age_s == 3660 * 86400
        outcomes = _outcomes(emb.target, lambda: ConfidentialClient(emb.target.base_url, emb.target.api_key))
    assert outcomes.pop("KEY-011")[0] == "skip"  # the node face's
    assert {i: o for i, (o, _) in outcomes.items()} == {c.id: "pass" for c in KEY_CHECKS if c.id != "KEY-011"}


def test_a_max_key_age_younger_than_the_mock_key_fails_key_010_alone() -> None:
    with embedded_target("strict", known_keys=True, max_key_age=86400.0) as emb:
        outcomes = _outcomes(emb.target, lambda: ConfidentialClient(emb.target.base_url, emb.target.api_key))
    assert {i for i, (o, _) in outcomes.items() if o == "fail"} == {"KEY-010"}
    assert "more than the 1.0 allowed" in outcomes["KEY-010"][1]


def test_without_a_key_source_every_key_check_skips_naming_the_option() -> None:
    with embedded_target("strict", known_keys=True) as emb:
        emb.target.key_source = None
        outcomes = _outcomes(emb.target, lambda: ConfidentialClient(emb.target.base_url, emb.target.api_key))
    assert {o for o, _ in outcomes.values()} == {"skip"}
    options = ("--sui-rpc", "--max-key-age", "--rim-dir", "face")
    assert all(any(o in reason for o in options) for _, reason in outcomes.values()), outcomes


def test_without_the_test_ca_the_mock_evidence_fails_the_chain_check_alone() -> None:
    """The mock's evidence is signed by its test CA: trusted only when asked (never by default), so a
    source without --trust-test-ca fails KEY-005 (untrusted root) and nothing else."""
    with embedded_target("strict", known_keys=True) as emb:
        source = emb.target.key_source
        assert source is not None
        emb.target.key_source = KeySource(source.sui_rpc, source.package_id, source.attestation_service, False)
        outcomes = _outcomes(emb.target, lambda: ConfidentialClient(emb.target.base_url, emb.target.api_key))
    assert {i for i, (o, _) in outcomes.items() if o == "fail"} == {"KEY-005"}
    assert "root" in outcomes["KEY-005"][1]


def test_an_unreachable_full_node_leaves_every_key_check_not_evaluated() -> None:
    with embedded_target("strict", known_keys=True) as emb:
        emb.target.key_source = KeySource("http://127.0.0.1:9/", MOCK_PACKAGE_ID, None, True)
        outcomes = _outcomes(emb.target, lambda: ConfidentialClient(emb.target.base_url, emb.target.api_key))
    outcomes.pop("KEY-008")  # no --attestation-service: skips first
    outcomes.pop("KEY-010")  # no --max-key-age in this source
    outcomes.pop("KEY-012")  # no RIMs in it either
    assert outcomes.pop("KEY-011")[0] == "skip"  # the node face's
    assert {o for o, _ in outcomes.values()} == {"error"}
    assert all(reason.startswith("not evaluated: --sui-rpc") for _, reason in outcomes.values())


def test_a_package_the_full_node_does_not_hold_is_not_evaluated(mock_url: str) -> None:
    other = "0x" + "12" * 32
    reader = ChainReader(KeySource(f"{mock_url}/sui", other, None, True))
    with reader, pytest.raises(ProtocolError, match=r"result\.error"):
        reader.read(1, bytes(32))


def test_a_node_without_commitments_on_a_chain_with_others_fails_key_001(mock_url: str) -> None:
    """The mock's chain holds node 1 and its neighbour 2: node 3 committed nothing, so a key handed out
    for it was never committed (KEY-001), and nothing else can be judged."""
    from conformance.keyrules import lock_key_problem

    with ChainReader(embedded_key_source(mock_url, 3)) as reader:
        record = reader.read(3, bytes(range(32)))
    assert record.facts.latest == () and record.facts.events_seen == 3 and record.evidence is None
    problem = lock_key_problem(record.handed_out_key, record.facts)
    assert problem is not None and "never committed" in problem


def _transport(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_an_answer_past_the_cap_is_refused_before_it_is_read_whole() -> None:
    sent = []

    def huge(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for _ in range(MAX_SUI_RESPONSE_BYTES // 65536 + 10):
                sent.append(65536)
                yield b" " * 65536

        return httpx.Response(200, content=body())

    with ChainReader(SOURCE, transport=_transport(huge)) as reader, pytest.raises(ChainReadError, match="larger than"):
        reader.read(1, bytes(32))
    assert sum(sent) <= MAX_SUI_RESPONSE_BYTES // 32 + 2 * 65536  # the package answer is capped at 1 MiB


def test_a_slow_drip_is_cut_at_the_scan_deadline() -> None:
    def drip(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            while True:
                time.sleep(0.02)
                yield b" "

        return httpx.Response(200, content=body())

    started = time.monotonic()
    reader = ChainReader(SOURCE, deadline_s=0.3, transport=_transport(drip))
    with reader, pytest.raises(ChainReadError, match=r"longer than 0\.3 s"):
        reader.read(1, bytes(32))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [301, 404, 500, 502])
def test_a_status_other_than_200_is_a_read_error_naming_the_option(status: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"location": "http://elsewhere.invalid/"}, content=b"{}")

    reader = ChainReader(SOURCE, transport=_transport(answer))
    with reader, pytest.raises(ChainReadError, match=f"--sui-rpc: answered HTTP {status}") as caught:
        reader.read(1, bytes(32))
    assert caught.value.status == status


def test_a_compressed_answer_is_refused_rather_than_inflated_unbounded() -> None:
    def gzipped(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "identity"
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"\x1f\x8b")

    with ChainReader(SOURCE, transport=_transport(gzipped)) as reader, pytest.raises(ChainReadError, match="gzip"):
        reader.read(1, bytes(32))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"jsonrpc": "2.0", "id": 99, "result": {}}', b'{"jsonrpc": "1.0", "id": 1, "result": {}}'],
)
def test_garbage_from_the_full_node_is_refused_naming_the_field(body: bytes) -> None:
    reader = ChainReader(SOURCE, transport=_transport(lambda r: httpx.Response(200, content=body)))
    with reader, pytest.raises(ProtocolError) as caught:
        reader.read(1, bytes(32))
    assert getattr(caught.value, "field", None) is not None


def _values(**given: object) -> dict[str, object]:
    values: dict[str, object] = dict.fromkeys(KEY_OPTIONS)
    values["trust_test_ca"] = False
    values.update(given)
    return values


PKG = "0x" + "ab" * 32


@pytest.mark.parametrize(
    ("embedded", "face", "given", "field"),
    [
        (False, "proxy", {"sui_rpc": "http://x"}, "--sui-rpc"),
        (False, "proxy", {"sui_package": PKG}, "--sui-package"),
        (False, "proxy", {"attestation_service": "http://x"}, "--attestation-service"),
        (False, "proxy", {"max_key_age": 10.0}, "--max-key-age"),
        (False, "proxy", {"trust_test_ca": True}, "--trust-test-ca"),
        (False, "proxy", {"sui_rpc": "http://x", "sui_package": PKG, "node_small_id": 1}, "--node-small-id"),
        (False, "node", {"sui_rpc": "http://x", "sui_package": PKG}, "--node-small-id"),
        (True, "proxy", {"sui_rpc": "http://x"}, "--sui-rpc"),
        (True, "proxy", {"attestation_service": "http://x"}, "--attestation-service"),
        (True, "proxy", {"trust_test_ca": True}, "--trust-test-ca"),
        (True, "node", {"node_small_id": 1}, "--node-small-id"),
    ],
)
def test_option_combinations_that_cannot_work_are_refused_naming_the_option(
    embedded: bool, face: str, given: dict[str, object], field: str
) -> None:
    with pytest.raises(UserError) as caught:
        key_source_from(embedded=embedded, face=face, **_values(**given))  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_options_make_the_source_they_name() -> None:
    source = key_source_from(
        embedded=False,
        face="node",
        **_values(  # type: ignore[arg-type]
            sui_rpc="http://x", sui_package=PKG, attestation_service="http://y", max_key_age=60.0, node_small_id=4
        ),
    )
    assert source == KeySource("http://x", PKG, "http://y", False, 60.0, 4)
    assert len(source.trusted_roots()) == 1  # NVIDIA's root alone, unless --trust-test-ca
    assert key_source_from(embedded=True, face="proxy", **_values(max_key_age=60.0)) is None  # type: ignore[arg-type]
    assert key_source_from(embedded=False, face="proxy", **_values()) is None  # type: ignore[arg-type]


def test_the_rim_dir_is_read_strictly(tmp_path: Path) -> None:
    """Regular files only, each parsed now: a bad RIM is a usage error naming the file, not a verdict."""
    from conformance.keybinding import read_rim_dir
    from conformance.protocol import DeviceTestCa

    good = DeviceTestCa.create(b"atoma-conformance mock node").reference_manifest()
    (tmp_path / "vbios.swidtag").write_bytes(good)
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(read_rim_dir(str(tmp_path))) == 1
    (tmp_path / "bad.xml").write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>")
    with pytest.raises(UserError, match=r"--rim-dir: .*bad\.xml"):
        read_rim_dir(str(tmp_path))
    (tmp_path / "bad.xml").unlink()
    (tmp_path / "link.xml").symlink_to(tmp_path / "vbios.swidtag")
    with pytest.raises(UserError, match=r"link\.xml"):
        read_rim_dir(str(tmp_path))
    (tmp_path / "link.xml").unlink()
    os.mkfifo(tmp_path / "fifo.xml")
    with pytest.raises(UserError, match=r"fifo\.xml: is not a regular file"):
        read_rim_dir(str(tmp_path))
    with pytest.raises(UserError, match="not a directory"):
        read_rim_dir(str(tmp_path / "vbios.swidtag"))


def test_a_report_no_rim_names_is_not_evaluated_and_a_drift_fails() -> None:
    """KEY-012 against RIMs that name another VBIOS: not evaluated (a missing RIM is never a pass); against
    the mock's own RIM, the drifted measurement fails naming its block."""
    import dataclasses

    from conformance.protocol import DeviceTestCa
    from conformance.protocol.attestation import parse_rim

    other = parse_rim(
        DeviceTestCa.create(b"atoma-conformance mock node").reference_manifest(colloquial_version="1.2.3")
    )
    key_012 = next(c for c in KEY_CHECKS if c.id == "KEY-012")
    with embedded_target("strict", known_keys=True) as emb:
        assert emb.target.key_source is not None
        emb.target.key_source = dataclasses.replace(emb.target.key_source, rims=(other,))
        client = ConfidentialClient(emb.target.base_url, emb.target.api_key)
        with client:
            verdict = key_012.run(Run(emb.target, client))
    assert verdict.outcome == "error" and "no RIM given names" in verdict.reason
    with embedded_target("strict", ("evidence-measurement-drift",), known_keys=True) as emb:
        client = ConfidentialClient(emb.target.base_url, emb.target.api_key)
        with client:
            verdict = key_012.run(Run(emb.target, client))
    assert verdict.outcome == "fail" and "measurements[5]" in verdict.reason, verdict.reason


def test_run_against_a_mock_target_judges_the_key_checks_from_the_options(
    mock_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The target path end to end: `run --target` with the chain options reads the chain they name, warns
    that the test CA is trusted, records the options (URLs redacted) and judges the KEY checks."""
    import json

    from conformance.cli import main

    rims = tmp_path / "rims"
    rims.mkdir()
    (rims / "mock.swidtag").write_bytes(DeviceTestCa.create(b"atoma-conformance mock node").reference_manifest())
    argv = ["run", "--target", mock_url, "--model", DEFAULT_MODELS[0], "--api-key", "k-1", "-m", "key"]
    argv += ["--sui-rpc", f"{mock_url}/sui", "--sui-package", MOCK_PACKAGE_ID, "--attestation-service", mock_url]
    argv += ["--trust-test-ca", "--max-key-age", "3660d", "--rim-dir", str(rims), "--report-dir", str(tmp_path / "r")]
    assert main(argv) == 0
    assert "--trust-test-ca" in capsys.readouterr().err
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    outcomes = {c["id"]: c["outcome"] for c in results["checks"] if c["id"].startswith("KEY-")}
    assert outcomes == {f"KEY-{n:03d}": "skip" if n == 11 else "pass" for n in range(1, 13)}
    assert results["options"]["trust_test_ca"] is True and results["options"]["max_key_age"] == 3660 * 86400
    assert results["options"]["sui_package"] == MOCK_PACKAGE_ID
