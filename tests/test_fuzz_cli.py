"""First contact for ``fuzz`` and ``replay``: a dead target, a refused key or a TLS mistake is one line
and exit 2 (never a finding, never FIXED); a bad case file names the member at fault; the dry-run
estimate is a cap the run keeps; ``--json`` is one object on stdout; progress is on stderr only when
it helps; and the current directory gets no ``.hypothesis``."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.fuzz.campaign import TARGET_MAX_REQUESTS
from conformance.progress import Progress, choose_mode
from mock_node.config import DEFAULT_MODELS, MockConfig
from mock_node.testing import running_node
from tests.test_targetopts import closed_port, tls_mock

MODEL = DEFAULT_MODELS[0]
KEY = "any-token-0001"  # the mock accepts any bearer token unless it is given a list


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    # The loopback mock's uvicorn logs a garbled request (TLS bytes on its plain port) to this process' stderr.
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("WARNING:  Invalid HTTP"))
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("atoma-conformance: error: "), err
    return err.removeprefix("atoma-conformance: error: ").rstrip("\n")


# --- a case to replay, made once ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def usage_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real replay case (USAGE, a valid request) from a campaign against a faulty mock."""
    report = tmp_path_factory.mktemp("usage-case")
    sink = io.StringIO()
    with contextlib_redirect(sink):
        assert (
            main(["fuzz", "--mock-fault", "usage-mismatch", "--max-examples", "50", "--report-dir", str(report)]) == 1
        )
    return next((report / "cases").glob("*.json"))


@contextmanager
def contextlib_redirect(sink: io.StringIO) -> Iterator[None]:
    import contextlib

    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def case_data(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- fuzz: first contact --------------------------------------------------------------------------------


def test_fuzz_against_a_dead_target_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    started = time.monotonic()
    code = main(["fuzz", "--target", f"http://127.0.0.1:{port}", "--model", "m", "--report-dir", str(tmp_path)])
    took = time.monotonic() - started
    assert code == 2
    assert one_line_error(capsys) == (
        f"--target: http://127.0.0.1:{port} is unreachable (ConnectError: connection refused)"
    )
    assert not (tmp_path / "cases").exists(), "a dead target is not a finding and leaves no case"
    assert took < 5, f"took {took:.1f} s to give up on a refused connection"


def test_fuzz_with_a_refused_api_key_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig(api_keys=("the-right-key-0001",))) as url:
        code = main(
            ["fuzz", "--target", url, "--model", MODEL, "--api-key", "a-wrong-key-9999", "--report-dir", str(tmp_path)]
        )
    assert code == 2
    line = one_line_error(capsys)
    assert line == f"--api-key: the target refused the API key (401 on /v1/nodes/lock at {url})"
    assert not (tmp_path / "cases").exists()


def test_fuzz_over_https_on_a_plain_http_port_says_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node() as url:
        https = url.replace("http://", "https://")
        assert main(["fuzz", "--target", https, "--model", MODEL, "--report-dir", str(tmp_path)]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"--target: {https}: TLS handshake failed: ")
    assert line.endswith("(is the port plain HTTP? use http://)")


def test_fuzz_against_a_self_signed_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--model", MODEL, "--api-key", "any-token-0001", "--max-examples", "2", "--profile", "live"]
    common += ["--report-dir", str(tmp_path)]
    with tls_mock(tmp_path) as (url, cert):
        assert main(["fuzz", "--target", url, *common]) == 2
        line = one_line_error(capsys)
        assert (
            line
            == f"--target: {url}: certificate verify failed: self-signed certificate (use --ca-bundle or --insecure)"
        )
        assert main(["fuzz", "--target", url, "--ca-bundle", str(cert), *common]) == 0
        out = capsys.readouterr()
        assert "no finding" in out.out and "WARNING" not in out.err
        assert main(["fuzz", "--target", url, "--insecure", *common]) == 0
        out = capsys.readouterr()
        assert "no finding" in out.out
        assert "WARNING: --insecure: the target's TLS certificate is NOT verified" in out.err


@contextmanager
def capturing_server() -> Iterator[tuple[str, list[bytes]]]:
    """A raw loopback server that records each request head and answers 401."""
    seen: list[bytes] = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                seen.append(data.split(b"\r\n\r\n")[0])
                body = b'{"error":{"code":"AUTH_ERROR","message":"no"}}'
                conn.sendall(
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_headers_reach_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with capturing_server() as (url, seen):
        argv = ["fuzz", "--target", url, "--model", "m", "--report-dir", str(tmp_path)]
        assert main([*argv, "--header", "X-Gateway-Key: gw-0001", "--header", "X-Route:  blue "]) == 2
    assert one_line_error(capsys).startswith("--api-key: the target refused the API key (401")
    assert len(seen) == 1, "one preflight lock, no retries"
    head = seen[0].decode().lower()
    assert "x-gateway-key: gw-0001" in head and "x-route: blue" in head


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--header", "X-A: a\r\nX-B: b"], "argument --header: must not contain CR or LF"),
        (["--header", "no colon"], "argument --header: expected 'NAME: VALUE'"),
        (["--header", "Bad Name: v"], "argument --header: the header name must be an HTTP token"),
        (["--header", "X-A: caf\u00e9"], "argument --header: the value of X-A must be printable ASCII"),
        (["--timeout", "nan"], "argument --timeout: must be a positive, finite number of seconds, got 'nan'"),
        (["--timeout", "inf"], "argument --timeout: must be a positive, finite number of seconds, got 'inf'"),
        (["--deadline", "-1"], "argument --deadline: must be a positive, finite number of seconds, got '-1'"),
        (["--rps", "nan"], "argument --rps: must be positive"),
        (["--max-examples", "0"], "argument --max-examples: must be a positive integer"),
        (["--target", "http://::1:8080", "--model", "m"], "--target: an IPv6 address goes in brackets"),
        (["--target", "http://127.0.0.1:70000", "--model", "m"], "--target: the port must be a number from 1 to 65535"),
        (["--target", "127.0.0.1:8080", "--model", "m"], "--target: must be an http:// or https:// URL"),
        (["--target", "http://127.0.0.1:1"], "--model: required with --target"),
        (
            ["--target", "http://127.0.0.1:1", "--model", "m", "--api-key", "   "],
            "--api-key: is empty or only whitespace",
        ),
        (
            ["--target", "http://127.0.0.1:1", "--model", "m", "--api-key", "sk-\u00e9t\u00e9"],
            "--api-key: contains a non-ASCII character at position 4",
        ),
        (
            ["--target", "http://127.0.0.1:1", "--model", "m", "--second-api-key", "a b"],
            "--second-api-key: contains whitespace or a control character at position 2",
        ),
        (["--insecure"], "--insecure: only applies with --target"),
        (["--quiet", "--progress"], "argument --progress: not allowed with argument --quiet"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["fuzz", "--dry-run", "--report-dir", str(tmp_path), *argv]) == 2
    assert one_line_error(capsys).startswith(message)


def test_an_api_key_from_the_environment_is_checked_under_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATOMA_API_KEY", "key with spaces")
    assert main(["fuzz", "--dry-run", "--target", "http://127.0.0.1:1", "--model", "m"]) == 2
    line = one_line_error(capsys)
    assert line.startswith("$ATOMA_API_KEY: contains whitespace") and "key with spaces" not in line


def test_a_target_run_has_a_default_request_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--dry-run", "--target", "http://127.0.0.1:1", "--model", "m"]) == 0
    assert f"at most {TARGET_MAX_REQUESTS} requests (the --max-requests cap)" in capsys.readouterr().out
    assert main(["fuzz", "--dry-run", "--target", "http://127.0.0.1:1", "--model", "m", "--max-requests", "5"]) == 0
    assert "at most 5 requests" in capsys.readouterr().out


# --- the estimate is a cap the run keeps ----------------------------------------------------------------


def fuzz_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(["fuzz", "--json", *argv])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


@pytest.mark.parametrize("extra", [[], ["--max-requests", "45"]], ids=["estimate", "max-requests"])
def test_the_real_request_count_keeps_to_the_dry_run_estimate(
    extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--max-examples", "3", "--report-dir", str(tmp_path), *extra]
    code, dry, _ = fuzz_json([*argv, "--dry-run"], capsys)
    assert code == 0 and dry["dry_run"] is True
    code, done, err = fuzz_json(argv, capsys)
    assert code == 0 and done["exit_code"] == 0
    assert done["estimate"] == dry["estimate"], "the run enforces the estimate the dry run printed"
    assert done["requests"] <= done["estimate"]
    assert f"requests (estimate: at most {dry['estimate']})" in err, "the summary prints both"
    if extra:
        assert dry["estimate"] == 45 and done["requests"] <= 45 and done["stopped_by"] == "max-requests"
    else:
        assert dry["estimate_by_phase"]["sessions"] > 0 and done["stopped_by"] == "examples"


def test_json_output_of_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--mock-fault", "usage-mismatch", "--max-examples", "50", "--report-dir", str(tmp_path)]
    code, done, err = fuzz_json(argv, capsys)
    assert code == 1 and done["exit_code"] == 1
    assert set(done) == {
        "profile",
        "seed",
        "examples",
        "requests",
        "estimate",
        "compute_units",
        "duration_s",
        "stopped_by",
        "cut_off",
        "findings",
        "sweep",
        "exit_code",
    }
    assert done["cut_off"] == 0
    assert done["findings"], "the sweep finds USAGE-003 (non-streaming) and USAGE-004 (streaming)"
    for finding in done["findings"]:  # each check found has its own case
        assert finding["check_id"].startswith("USAGE-") and finding["level"] == "MUST"
        assert Path(finding["case_path"]).is_file()
    assert len({finding["case_path"] for finding in done["findings"]}) == len(done["findings"])
    assert "FINDING USAGE-" in err, "the human text goes to stderr"


def test_json_output_of_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--json", "--target", f"http://127.0.0.1:{closed_port()}", "--model", "m"]) == 2
    out = capsys.readouterr()
    assert json.loads(out.out)["exit_code"] == 2 and "unreachable" in json.loads(out.out)["error"]


# --- no .hypothesis in the current directory --------------------------------------------------------------


def test_fuzz_writes_no_hypothesis_directory_into_the_current_directory(tmp_path: Path) -> None:
    # A fresh process: Hypothesis caches what it computed (its constants cache) per process, so only a
    # process that starts cold shows every file it would write.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTHESIS")}
    done = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "fuzz", "--max-examples", "3", "--report-dir", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".hypothesis").exists(), sorted(p.name for p in tmp_path.iterdir())
    assert (tmp_path / "out" / "hypothesis").is_dir(), "Hypothesis' files go under --report-dir"


# --- replay ---------------------------------------------------------------------------------------------


def test_replay_against_a_dead_target_is_not_fixed(usage_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main(["replay", str(usage_case), "--target", f"http://127.0.0.1:{port}"]) == 2
    assert one_line_error(capsys) == "could not replay: the lock got no answer: ConnectError: connection refused"


def test_replay_over_tls_mistakes_is_not_fixed(
    usage_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_node() as url:
        assert main(["replay", str(usage_case), "--target", url.replace("http://", "https://")]) == 2
    line = one_line_error(capsys)
    assert line.startswith("could not replay: the lock got no answer: TLS handshake failed")
    with tls_mock(tmp_path) as (url, cert):
        assert main(["replay", str(usage_case), "--target", url]) == 2
        assert "certificate verify failed: self-signed certificate (use --ca-bundle or --insecure)" in one_line_error(
            capsys
        )
        assert main(["replay", str(usage_case), "--target", url, "--ca-bundle", str(cert), "--api-key", KEY]) == 0
        assert capsys.readouterr().out.startswith("FIXED: USAGE-")


def test_replay_with_a_refused_key_is_not_fixed(usage_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node(MockConfig(api_keys=("the-right-key-0001",))) as url:
        assert main(["replay", str(usage_case), "--target", url, "--api-key", "a-wrong-key-9999"]) == 2
    assert one_line_error(capsys) == "could not replay: the target refused the API key (401 on /v1/nodes/lock)"


def test_a_valid_request_that_is_not_served_is_not_fixed(usage_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_node() as url:
        assert main(["replay", str(usage_case), "--target", url, "--api-key", KEY]) == 0
        assert capsys.readouterr().out.startswith("FIXED")
        # A replay seals the case afresh: a node that saw it before still gets a request it can judge.
        assert main(["replay", str(usage_case), "--target", url, "--api-key", KEY]) == 0
        assert capsys.readouterr().out.startswith("FIXED")
    from tests.hostile_server import hostile_node

    with hostile_node("redirect") as node:  # answered, but not served: USAGE cannot be judged
        assert main(["replay", str(usage_case), "--target", node.url, "--api-key", KEY]) == 2
    line = one_line_error(capsys)
    assert line.startswith("could not replay: the request was not served (status 307)"), line


def session_case(
    steps: list[dict[str, Any]], check_id: str = "LOCK-010", keys: list[str] | None = None
) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "level": "MUST",
        "reason": "test",
        "seed": 0,
        "endpoint": "chat",
        "stream": False,
        "model": MODEL,
        "mutation": None,
        "expect": "session",
        "plaintext_sha256": "0" * 64,
        "plaintext_bytes": 0,
        "plaintext": None,
        "extra": {"steps": steps, "keys": keys or ["a"]},
        "version": 2,
    }


def test_a_session_case_replays_step_by_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps: list[dict[str, Any]] = [
        {"action": "lock", "key": "a"},
        {"action": "wait", "seconds": 3.0},
        {"action": "use", "lock": 0, "key": "a"},
    ]
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session_case(steps)))
    assert main(["replay", str(path)]) == 0
    assert capsys.readouterr().out.startswith("FIXED: LOCK-010 [MUST]")
    assert main(["replay", str(path), "--mock-fault", "accept-expired-lock"]) == 1
    assert capsys.readouterr().out.startswith("STILL FAILING: LOCK-010")
    assert main(["replay", str(path), "--target", f"http://127.0.0.1:{closed_port()}", "--model", "m"]) == 2
    expected = "could not replay: a lock of the session got no answer: ConnectError: connection refused"
    assert one_line_error(capsys) == expected


def mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


DELETE = object()

REQUEST_CASE_FIELDS: list[tuple[str, Any, str]] = [
    ("check_id", "NOPE-001", "check_id: unknown check 'NOPE-001'"),
    ("check_id", 7, "check_id: must be a string, not a number"),
    ("level", "MAYBE", "level: must be one of MUST, SHOULD, INFO"),
    ("seed", "0", "seed: must be an integer, not a string"),
    ("seed", True, "seed: must be an integer, not a boolean"),
    ("endpoint", "nope", "endpoint: must be one of chat, completions, embeddings, images"),
    ("stream", "yes", "stream: must be true or false, not a string"),
    ("model", "", "model: must not be empty"),
    ("expect", "maybe", "expect: must be one of refuse, accept, session"),
    ("mutation", "ERR-002 no-such-family (x)", "mutation: unknown mutation"),
    ("mutation", 3, "mutation: must be a string, not a number"),
    ("shape", None, "shape: a request case needs the plaintext's shape, a JSON object, not null"),
    ("shape", [], "shape: a request case needs the plaintext's shape, a JSON object, not a list"),
    ("mutation_params", "0", "mutation_params: must be a list or null, not a string"),
    ("exchange_secret_hex", "00" * 60, "'exchange_secret_hex': unknown member"),
    ("plaintext_sha256", "xyz", "plaintext_sha256: must be 64 lowercase hex digits"),
    ("plaintext_bytes", -1, "plaintext_bytes: must be a non-negative integer"),
    ("plaintext", 5, "plaintext: must be a string or null, not a number"),
    ("plaintext", "[1]", "plaintext: must be the text of a JSON object, not a list"),
    ("plaintext", "{", "plaintext: not a JSON text"),
    ("extra", [], "extra: must be an object, not a list"),
    ("extra.mutation_check", "NOPE-002", "extra.mutation_check: unknown check"),
    ("extra.prior_nonces", ["zz"], "extra.prior_nonces[0]: must be 24 lowercase hex digits"),
    ("check_id", DELETE, "check_id: missing"),
    ("plaintext_sha256", DELETE, "plaintext_sha256: missing"),
    ("surprise", 1, "'surprise': unknown member"),
]


@pytest.mark.parametrize(
    ("member", "value", "message"),
    REQUEST_CASE_FIELDS,
    ids=[f"{m}={'<deleted>' if v is DELETE else repr(v)}" for m, v, _ in REQUEST_CASE_FIELDS],
)
def test_a_request_case_with_a_bad_member_names_it(
    usage_case: Path, member: str, value: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(mutate(case_data(usage_case), member, value)))
    assert main(["replay", str(bad)]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"CASE.json: {bad}: ") and message in line, line


SESSION_STEPS_BAD: list[tuple[list[Any], str]] = [
    ([{"action": "wait", "seconds": 1e9}], "extra.steps[0].seconds: must be more than 0 and at most 60 seconds"),
    ([{"action": "wait", "seconds": -1}], "extra.steps[0].seconds: must be more than 0 and at most 60 seconds"),
    ([{"action": "wait", "seconds": "5"}], "extra.steps[0].seconds: must be a number of seconds"),
    ([{"action": "wait", "seconds": 50}] * 13, "extra.steps[12].seconds: the steps wait over 600 seconds in all"),
    ([{"action": "use", "lock": 0, "key": "a"}], "extra.steps[0].lock: must name a lock an earlier step took"),
    ([{"action": "lock", "key": "a"}, {"action": "use", "lock": 5, "key": "a"}], "extra.steps[1].lock: must name"),
    ([{"action": "lock", "key": "c"}], "extra.steps[0].key: must be 'a' or 'b'"),
    ([{"action": "lock", "key": "b"}], "extra.steps[0].key: key 'b' is not among the case's keys"),
    ([{"action": "dance"}], "extra.steps[0].action: unknown action 'dance'"),
    ([{"action": "lock", "key": "a", "x": 1}], "extra.steps[0]: unknown member 'x' for a lock step"),
    (["lock"], "extra.steps[0]: must be an object, not a string"),
    ([], "extra.steps: a session case needs a non-empty list of steps"),
    ([{"action": "lock", "key": "a"}] * 1001, "extra.steps: 1001 steps, more than the 1000"),
]


@pytest.mark.parametrize(
    ("steps", "message"),
    SESSION_STEPS_BAD,
    ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(SESSION_STEPS_BAD)],
)
def test_a_session_case_with_a_bad_step_names_it(
    steps: list[Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(session_case(steps)))
    assert main(["replay", str(bad)]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"CASE.json: {bad}: {message}"), line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON (nested too deeply)"),
        (b'{"version": NaN}', "not JSON (NaN is not a JSON number)"),
        (b"[]", "not an atoma-conformance replay case (version 2)"),
        (b'{"version": 3}', "not an atoma-conformance replay case (version 2)"),
    ],
)
def test_a_case_file_that_is_not_a_case_is_one_line(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["replay", str(bad)]) == 2
    assert one_line_error(capsys) == f"CASE.json: {bad}: {message}"


def test_a_case_path_that_is_not_a_regular_file_or_too_big(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path)]) == 2
    line = one_line_error(capsys)
    assert str(tmp_path) in line and "not a regular file" in line
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert main(["replay", str(fifo)]) == 2  # and does not block reading it
    line = one_line_error(capsys)
    assert str(fifo) in line and ("not a regular file" in line or "FIFO" in line)
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(1024 * 1024 + 1)
    assert main(["replay", str(big)]) == 2
    assert one_line_error(capsys) == f"CASE.json: {big}: 1048577 bytes, over the 1 MiB a case can hold"


# --- progress -------------------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_modes() -> None:
    assert choose_mode(io.StringIO()) == "off", "a short run in a log or a test prints nothing"
    assert choose_mode(io.StringIO(), long_running=True) == "lines"
    assert choose_mode(io.StringIO(), force=True) == "lines"
    assert choose_mode(FakeTerminal()) == "tty"
    assert choose_mode(FakeTerminal(), quiet=True) == "off"


def test_progress_lines_are_throttled_plain_lines() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, mode="lines", interval_s=10, clock=lambda: now[0])
    for step in range(100):
        now[0] = step * 0.5  # 50 s of updates every half second
        progress.update(f"step {step}\x1b[31m")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[0] == "atoma-conformance: step 0 [31m"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_progress_on_a_terminal_rewrites_one_line_and_respects_no_color() -> None:
    plain = FakeTerminal()
    with Progress(plain, mode="tty", environ={"NO_COLOR": "1"}) as progress:
        progress.update("a longer status", force=True)
        progress.update("short", force=True)
    assert "\x1b" not in plain.getvalue()
    assert plain.getvalue().startswith("\ratoma-conformance: a longer status\ratoma-conformance: short          ")
    assert plain.getvalue().endswith("\r"), "the status line is erased before the summary"
    coloured = FakeTerminal()
    with Progress(coloured, mode="tty", environ={"TERM": "xterm"}) as progress:
        progress.update("x")
    assert "\x1b[2m" in coloured.getvalue()


def test_fuzz_progress_is_quiet_by_default_and_on_request_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fuzz", "--max-examples", "2", "--report-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["fuzz", "--max-examples", "2", "--report-dir", str(tmp_path), "--progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("atoma-conformance: fuzz sweep: 1 examples, 2/")
    assert "\r" not in err and "\x1b" not in err
