"""``atoma-conformance run`` and the pytest plugin keep one contract (issue 13): prefixed plugin options
that live beside other plugins, one exit-code rule, selection by check id, a request cap that holds
across workers, a preflight that names setup mistakes, and a clean Ctrl-C."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import CATALOGUE, Check
from conformance.cli import main
from conformance.estimate import estimate_run
from mock_node.config import MockConfig
from mock_node.testing import running_node
from tests.test_targetopts import tls_mock

CHAT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def _results(report_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    return data


def _root(tmp_path: Path) -> list[str]:
    return ["--rootdir", str(tmp_path)]


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a subprocess, isolated from this repository's own configuration."""
    (tmp_path / "none.ini").write_text("[pytest]\n", encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "none.ini"),
            *_root(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
    )


# --- a good citizen among pytest plugins ------------------------------------------------------------


def test_pytest_timeout_and_the_plugin_share_an_environment(tmp_path: Path) -> None:
    """pytest-timeout registers --timeout; the plugin's options are all --atoma-*, so an unrelated test
    run in the same environment works, and uses pytest-timeout's option."""
    pytest.importorskip("pytest_timeout", reason="pytest-timeout is in the test extra")
    (tmp_path / "test_unrelated.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    proc = _pytest(tmp_path, "test_unrelated.py", "--timeout", "5", "-q")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


def test_every_plugin_option_carries_the_prefix(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--help")
    assert proc.returncode == 0
    section = proc.stdout.split("Atoma confidential compute conformance", 1)[1].split("\n\n", 1)[0]
    flags = [line.split()[0].rstrip(",") for line in section.splitlines() if line.strip().startswith("--")]
    assert len(flags) >= 20
    assert all(flag.startswith("--atoma-") for flag in flags), flags


def test_the_plugin_is_inert_in_an_unrelated_run(tmp_path: Path) -> None:
    """No suite markers, no results file, no change of exit status outside the suite."""
    (tmp_path / "test_unrelated.py").write_text("def test_fails():\n    assert False\n", encoding="utf-8")
    markers = _pytest(tmp_path, "--markers")
    assert "conformance check" not in markers.stdout and "LOCK-001" not in markers.stdout
    proc = _pytest(tmp_path, "test_unrelated.py", "-q")
    assert proc.returncode == 1
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(("fault", "expected"), [("accept-replay", 0), ("truncated-tag", 1), (None, 0)])
def test_pytest_and_run_give_the_same_exit_code(
    fault: str | None, expected: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """accept-replay fails only REPLAY-001, a SHOULD: listed, not fatal, for both front ends."""
    faults = ["--mock-fault", fault] if fault else []
    run_code = main(["run", *faults, "--report-dir", str(tmp_path / "run")])
    capsys.readouterr()
    plugin_faults = ["--atoma-mock-fault", fault] if fault else []
    proc = _pytest(tmp_path, "--pyargs", "conformance.suite", "-q", *plugin_faults)
    assert (run_code, proc.returncode) == (expected, expected), proc.stdout[-1500:]
    if fault == "accept-replay":
        checks = {c["id"]: c["outcome"] for c in _results(tmp_path / "run")["checks"]}
        assert checks["REPLAY-001"] == "fail", "the SHOULD failure is still reported"


def test_selection_by_check_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-m", "LOCK-001 or NONCE-003", "--report-dir", str(tmp_path)]) == 0
    assert sorted(c["id"] for c in _results(tmp_path)["checks"]) == ["LOCK-001", "NONCE-003"]


def test_a_malformed_selection_is_a_usage_error_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-m", "and (", "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atoma-conformance: error: -m: not a marker expression") and err.count("\n") == 1
    assert not (tmp_path / "r").exists(), "nothing is created for a run that does not start"


# --- budgets -----------------------------------------------------------------------------------------


def test_max_requests_caps_the_whole_run_across_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "-n", "2", "--max-requests", "40", "--report-dir", str(tmp_path)])
    results = _results(tmp_path)
    assert results["requests"] <= 40
    assert results["requests"] >= 30, "the cap is shared, not divided up front"
    assert code == 1, "checks the budget stopped are not evaluated, which fails the run"
    assert any("budget" in c["reason"] for c in results["checks"] if c["outcome"] == "error")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_dry_run_bound_holds_for_the_real_run(
    workers: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--dry-run", "-n", str(workers)]) == 0
    out = capsys.readouterr().out
    assert "nothing was sent" in out
    bound = estimate_run(select_expr=None, workers=workers, face="proxy", embedded=True)
    assert f"at most {bound.requests} requests" in out
    main(["run", "-n", str(workers), "--report-dir", str(tmp_path)])
    sent = _results(tmp_path)["requests"]
    # The embedded mock never answers 429/503 to a lock, so even the bound without retries holds.
    assert 0 < sent <= bound.without_retries <= bound.requests


# --- preflight: setup mistakes named before the budget is spent -------------------------------------


@contextlib.contextmanager
def _html_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _page(self) -> None:
            body = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _preflight(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(["run", *argv, "--api-key", "a-long-enough-key-123", "--report-dir", str(tmp_path)])
    return code, capsys.readouterr().err, time.monotonic() - started


def test_preflight_names_a_mistyped_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig()) as url:
        code, err, _ = _preflight(["--target", url, "--model", "meta-llama/Llama-3.3-70B"], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("atoma-conformance: error: --model: 'meta-llama/Llama-3.3-70B' is not among the 3 models")
    assert CHAT_MODEL in err
    assert not (tmp_path / "results.json").exists()


def test_preflight_names_a_v1_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig()) as url:
        code, err, _ = _preflight(["--target", url + "/v1", "--model", CHAT_MODEL], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "--target:" in err and "ends in /v1" in err and f"use {url}" in err


def test_preflight_names_an_html_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _html_server() as url:
        code, err, _ = _preflight(["--target", url, "--model", CHAT_MODEL], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "--target:" in err and "HTML page" in err


def test_preflight_names_a_node_face_addressed_as_a_proxy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig(face="node")) as url:
        code, err, _ = _preflight(["--target", url, "--model", CHAT_MODEL], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "--face:" in err and "--face node" in err


def test_baseline_is_validated_before_the_first_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text('{"entries": "nope"}', encoding="utf-8")
    # The target is unreachable: had the suite tried it first, the error would name --target.
    code = main(["run", "--target", "http://127.0.0.1:9", "--model", "m", "--baseline", str(bad)])
    assert code == 2
    assert capsys.readouterr().err.startswith("atoma-conformance: error: --baseline:")


def test_the_target_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATOMA_CONFORMANCE_TARGET", "http://127.0.0.1:9")
    assert main(["run", "--model", "m", "--api-key", "k", "--report-dir", str(tmp_path)]) == 2
    assert "--target: http://127.0.0.1:9 is unreachable" in capsys.readouterr().err


def test_https_against_a_plain_http_port_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig()) as url:
        code, err, _ = _preflight(
            ["--target", url.replace("http://", "https://"), "--model", CHAT_MODEL], capsys, tmp_path
        )
    assert code == 2 and "TLS handshake failed" in err and "use http://" in err


def test_a_self_signed_certificate_is_named_and_ca_bundle_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ("--api-key", "a-long-enough-key-123")
    with tls_mock(tmp_path) as (url, cert):
        code, err, _ = _preflight(["--target", url, "--model", CHAT_MODEL], capsys, tmp_path)
        assert code == 2 and "certificate verify failed: self-signed certificate" in err and "--ca-bundle" in err
        trusted = ["--ca-bundle", str(cert), "-m", "LOCK-001", "--report-dir", str(tmp_path / "ok")]
        assert main(["run", "--target", url, "--model", CHAT_MODEL, *key, *trusted]) == 0
        capsys.readouterr()
        insecure = ["--insecure", "-m", "LOCK-001", "--report-dir", str(tmp_path / "insecure")]
        assert main(["run", "--target", url, "--model", CHAT_MODEL, *key, *insecure]) == 0
    assert "WARNING: --insecure" in capsys.readouterr().err
    assert _results(tmp_path / "insecure")["options"]["insecure"] is True


# --- Ctrl-C -----------------------------------------------------------------------------------------


def test_ctrl_c_exits_130_and_marks_partial_results_incomplete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = Check.run

    def interrupted(self: Check, run: Any) -> Any:
        if self.id == "NONCE-001":
            raise KeyboardInterrupt  # as if Ctrl-C arrived while this check was running
        return original(self, run)

    monkeypatch.setattr(Check, "run", interrupted)
    assert main(["run", "--report-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "marked incomplete" in err
    results = _results(tmp_path)
    assert results["incomplete"] is True
    assert 0 < len(results["checks"]) < len(CATALOGUE)


def test_the_preflight_is_billed_to_the_same_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig()) as url:
        main(
            [
                *("run", "--target", url, "--model", CHAT_MODEL, "--api-key", "a-long-enough-key-123"),
                *("--max-requests", "12", "--report-dir", str(tmp_path)),
            ]
        )
    out = capsys.readouterr().out
    assert "requests (1 of them preflight)" in out
    assert _results(tmp_path)["requests"] <= 11, "12 in all, one of them spent by the preflight's lock"


def test_the_junit_report_can_go_where_ci_looks_for_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "ci" / "junit-atoma.xml"
    junit.parent.mkdir()
    assert main(["run", "-m", "lock", "--report-dir", str(tmp_path / "r"), "--junit-xml", str(junit)]) == 0
    assert junit.read_text(encoding="utf-8").startswith("<?xml") and "LOCK-001" in junit.read_text(encoding="utf-8")
    assert main(["run", "--junit-xml", str(tmp_path), "--report-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("atoma-conformance: error: --junit-xml:")


def test_progress_lines_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-m", "lock", "--progress", "always", "--report-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    lock_checks = [c.id for c in CATALOGUE if c.category == "LOCK"]
    assert f"running {len(lock_checks)} checks" in err
    assert re.search(rf"\[ *1/{len(lock_checks)}\] LOCK-001 +pass", err)
    assert "\x1b" not in err, "no escape codes when stderr is not a terminal"
    assert main(["run", "-m", "lock", "--report-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == "", "auto: quiet when stderr is not a terminal"
