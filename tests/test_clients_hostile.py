"""Client certification against hostile adapters and hostile files (issue 14).

An adapter is third-party code the suite runs, and a certifier runs it from whatever directory a
vendor handed over. So: an adapter sees none of the suite's secrets, nothing it prints can reach a
report or a terminal raw or unbounded, it cannot make the suite hold more than the contract's cap in
memory, and nothing planted in the current directory (or in a cache the tool did not make) is
ever executed.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.clients import builtin as builtin_module
from conformance.clients.builtin import OWNER_MARKER, OWNER_TEXT, PY_SDK_REQUIREMENT, claim, user_cache_dir
from conformance.clients.checks import SCENARIOS
from conformance.clients.contract import (
    ENV_ALLOWED,
    MAX_OUTPUT_BYTES,
    AdapterFailure,
    Instruction,
    adapter_environment,
    run_adapter,
)
from conformance.clients.report import to_json
from conformance.clients.runner import ClientUnderTest, run_matrix
from conformance.exits import UserError

PY = shlex.quote(sys.executable)
SCENARIO_BY_ID = {s.check.id: s for s in SCENARIOS}
SENTINEL = "sk-live-SENTINEL-0123456789abcdef"


def script(path: Path, body: str) -> str:
    """An adapter command running ``body`` as a Python script saved at ``path``."""
    path.write_text(body, encoding="utf-8")
    return f"{PY} {shlex.quote(str(path))}"


def instruction(timeout_s: float = 10.0) -> Instruction:
    return Instruction("http://127.0.0.1:9", "client-cert-k", "m", "chat", {}, None, timeout_s)


# --- 1. an allow-listed environment ------------------------------------------------------------------

ENV_DUMP = """
import json, os, sys
sys.stdin.read()
print(json.dumps({"outcome": "ok", "content": json.dumps(dict(os.environ)), "error_code": None}))
"""


def test_an_adapter_never_sees_the_api_key_or_other_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATOMA_API_KEY", "ATOMASDK_BEARER_AUTH", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, SENTINEL)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # would send loopback traffic away
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nowhere"))
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = run_adapter(script(tmp_path / "env.py", ENV_DUMP), instruction())
    assert result.content is not None
    seen = json.loads(result.content)
    assert SENTINEL not in result.content
    assert not {"ATOMA_API_KEY", "ATOMASDK_BEARER_AUTH", "HTTPS_PROXY", "PYTHONPATH"} & set(seen)
    assert seen["PATH"] == os.environ["PATH"] and seen["LANG"] == seen["LC_ALL"] == "C.UTF-8"
    assert seen["TMPDIR"] == str(tmp_path)
    # Only allow-listed names (and what a platform's runtime adds by itself, such as macOS's __CF_*).
    assert all(k in ENV_ALLOWED or k.startswith(("LC_", "__")) for k in seen), sorted(seen)


def test_the_allow_list_keeps_locale_and_windows_essentials_only() -> None:
    source = {"SystemRoot": "C:\\Windows", "LC_MESSAGES": "C", "ATOMA_API_KEY": SENTINEL, "PATHEXT": ".EXE"}
    source |= {"NODE_OPTIONS": "--require /tmp/evil.js", "USER": "me"}
    env = adapter_environment({"PYTHONPATH": "/src"}, source=source)
    assert env == {"SystemRoot": "C:\\Windows", "LC_MESSAGES": "C", "PATHEXT": ".EXE", "PYTHONPATH": "/src"}


def test_install_steps_keep_the_proxy_but_never_the_suites_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOMA_API_KEY", SENTINEL)
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", SENTINEL)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    probe = "import os, sys; sys.exit(1 if any(k.startswith('ATOMA') for k in os.environ) else 0)"
    assert builtin_module._run([sys.executable, "-c", probe], "probe") is None
    proxy = "import os, sys; sys.exit(0 if os.environ.get('HTTPS_PROXY') else 1)"
    assert builtin_module._run([sys.executable, "-c", proxy], "probe") is None


def test_the_reference_adapter_imports_nothing_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m`` puts the current directory first on sys.path; the built-in reference runs with -P."""
    work = tmp_path / "vendor-repo"
    work.mkdir()
    ran = tmp_path / "planted-httpx-ran"
    (work / "httpx.py").write_text(f"open({str(ran)!r}, 'w').write('ran')\nraise SystemExit(9)\n", encoding="utf-8")
    monkeypatch.chdir(work)
    monkeypatch.setenv("ATOMA_API_KEY", SENTINEL)
    reference = builtin_module.builtin("reference", tmp_path / "unused", lambda text: None)
    matrix = run_matrix([reference], scenarios=[SCENARIO_BY_ID["CLIENT-020"]], timeout_s=10)
    verdicts = {c.id: c.outcome for c in matrix.clients[0].checks}
    assert verdicts["CLIENT-020"] == "pass" and not ran.exists()


# --- 2. everything an adapter says is redacted, one line and capped ------------------------------------

HOSTILE = """
import json, sys
instruction = json.loads(sys.stdin.read())
key, mode = instruction["api_key"], sys.argv[1]
ansi = "\\x1b[2J\\x1b[H\\x1b]0;owned\\x07\\u202e"
code = ("ADAPTER_" if mode == "adapter" else "") + ansi + key + "A" * 1_000_000
if mode == "crash":
    print(ansi + "PASS " + key, file=sys.stderr)
    sys.exit(3)
print(json.dumps({"outcome": "error", "content": None, "error_code": code,
                  "detail": ansi + "\\x1b[32mPASS\\x1b[0m key=" + key + "\\nsecond line",
                  "client": ansi + "evil-sdk " + key + "B" * 5000}))
"""


@pytest.mark.parametrize("mode", ["refuse", "adapter", "crash"])
def test_nothing_an_adapter_reports_reaches_a_report_raw(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = script(tmp_path / "hostile.py", HOSTILE) + f" {mode}"
    reports = tmp_path / "reports"
    code = main(["clients", "--adapter", f"evil={command}", "--scenario", "CLIENT-020", "--report-dir", str(reports)])
    assert code == 1
    captured = capsys.readouterr()
    texts = {
        "stdout": captured.out,
        "stderr": captured.err,
        **{p.name: p.read_text(encoding="utf-8") for p in reports.iterdir()},
    }
    assert set(texts) >= {"results.json", "matrix.md", "matrix.html"}
    for where, text in texts.items():
        for raw in ("\x1b", "\x07", "\u202e", "client-cert-"):
            assert raw not in text, f"{raw!r} reached {where}"
        assert len(text) < 64_000, f"{where} holds {len(text)} characters of an adapter's text"
    doc = json.loads(texts["results.json"])
    check = next(c for c in doc["clients"][0]["checks"] if c["id"] == "CLIENT-020")
    assert check["outcome"] == ("fail" if mode == "refuse" else "error")
    assert "\\e[2J" in check["reason"] and "[api key]" in check["reason"]
    if mode == "refuse":
        assert len(check["evidence"]["error_code"]) < 120 and "characters)" in check["evidence"]["error_code"]
        assert "\n" not in check["evidence"]["detail"] and "[api key]" in check["evidence"]["detail"]
        client = doc["clients"][0]["client"]
        assert client.startswith("\\e[2J") and "[api key]" in client and len(client) < 150


def test_a_key_at_the_cut_is_blanked_whole(tmp_path: Path) -> None:
    """Redaction comes before the length cap: a cut through the key would leave its first half."""
    body = """
import json, sys
key = json.loads(sys.stdin.read())["api_key"]
print(json.dumps({"outcome": "error", "error_code": "E" * 70 + key, "detail": "d" * 190 + key, "content": None}))
"""
    matrix = run_matrix(
        [ClientUnderTest("cut", script(tmp_path / "cut.py", body))], scenarios=[SCENARIO_BY_ID["CLIENT-020"]]
    )
    text = json.dumps(to_json(matrix))
    assert "client-cert" not in text and "client-ce" not in text


# --- 3. output is capped while it is read ---------------------------------------------------------------

FLOOD = """
import sys
sys.stdin.read()
stream = sys.stdout.buffer if sys.argv[1] == "stdout" else sys.stderr.buffer
chunk = b"x" * 65536
for _ in range(800):  # 50 MiB
    stream.write(chunk)
stream.flush()
open(sys.argv[2], "w").write("wrote all of it")
print('{"outcome": "ok", "content": "fine", "error_code": null}')
"""


def test_fifty_megabytes_on_stdout_are_not_read_and_the_adapter_is_killed(tmp_path: Path) -> None:
    finished = tmp_path / "finished"
    command = script(tmp_path / "flood.py", FLOOD) + f" stdout {shlex.quote(str(finished))}"
    tracemalloc.start()
    try:
        with pytest.raises(AdapterFailure, match=rf"more than {MAX_OUTPUT_BYTES} bytes \(1 MiB\) on stdout"):
            run_adapter(command, instruction())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_OUTPUT_BYTES, f"held {peak} bytes for a 1 MiB cap"
    time.sleep(0.2)
    assert not finished.exists(), "the adapter was left to write all 50 MiB"


def test_fifty_megabytes_on_stderr_are_drained_in_bounded_memory(tmp_path: Path) -> None:
    finished = tmp_path / "finished"
    command = script(tmp_path / "flood.py", FLOOD) + f" stderr {shlex.quote(str(finished))}"
    tracemalloc.start()
    try:
        result = run_adapter(command, instruction())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.accepted and result.content == "fine" and finished.exists()
    assert peak < 4 * MAX_OUTPUT_BYTES, f"held {peak} bytes of stderr"


def test_a_flooding_adapter_is_an_error_naming_the_cap_never_a_pass_or_a_refusal(tmp_path: Path) -> None:
    command = script(tmp_path / "flood.py", FLOOD) + f" stdout {shlex.quote(str(tmp_path / 'finished'))}"
    scenarios = [SCENARIO_BY_ID["CLIENT-020"], SCENARIO_BY_ID["CLIENT-024"]]
    matrix = run_matrix([ClientUnderTest("flood", command)], scenarios=scenarios, timeout_s=10)
    verdicts = {c.id: c for c in matrix.clients[0].checks}
    for check_id in ("CLIENT-020", "CLIENT-024"):
        assert verdicts[check_id].outcome == "error"
        assert "1 MiB" in verdicts[check_id].reason
    assert not matrix.passed


def test_a_child_left_holding_stdout_does_not_hang_the_suite(tmp_path: Path) -> None:
    body = """
import json, subprocess, sys
sys.stdin.read()
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # inherits stdout and stderr
print(json.dumps({"outcome": "ok", "content": "done", "error_code": None}))
"""
    started = time.monotonic()
    result = run_adapter(script(tmp_path / "linger.py", body), instruction())
    assert result.content == "done" and time.monotonic() - started < 10


# --- 4. the cache: never the current directory, never someone else's -----------------------------------


def _plant(root: Path, sentinel: Path, *, marker: bool) -> Path:
    """A virtual env that would write ``sentinel`` if the suite ever ran its interpreter."""
    venv = root / "atoma-sdk-py"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho executed > {shlex.quote(str(sentinel))}\nexit 1\n", encoding="utf-8")
    python.chmod(0o755)
    (venv / ".installed").write_text(PY_SDK_REQUIREMENT + "\n", encoding="utf-8")
    if marker:
        (venv / OWNER_MARKER).write_text(OWNER_TEXT, encoding="utf-8")
    return venv


class FakeInstaller:
    """Stands in for ``python -m venv`` and pip: the env it makes runs a script that leaves a trace."""

    def __init__(self, trace: Path) -> None:
        self.trace = trace
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], what: str) -> str | None:
        self.calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            python = Path(argv[3]) / "bin" / "python"
            python.parent.mkdir(parents=True, exist_ok=True)
            python.write_text(f"#!/bin/sh\necho ours > {shlex.quote(str(self.trace))}\nexit 1\n", encoding="utf-8")
            python.chmod(0o755)
        return None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user whose cache is in tmp_path, working in a vendor's directory with a planted cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "vendor-repo"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_the_default_cache_follows_xdg_and_never_the_current_directory(tmp_path: Path) -> None:
    assert user_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path("/x/cache/atoma-conformance")
    # A relative XDG_CACHE_HOME is ignored, as the XDG spec says: it would be the current directory.
    assert user_cache_dir({"XDG_CACHE_HOME": ".cache", "HOME": "/h"}) == Path("/h/.cache/atoma-conformance")
    assert user_cache_dir({"HOME": "/h"}) == Path("/h/.cache/atoma-conformance")
    with pytest.raises(UserError, match="--cache-dir: the home directory rel is not absolute"):
        user_cache_dir({"HOME": "rel"})


def test_a_cache_planted_in_the_current_directory_is_never_executed(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    planted_ran = home / "planted-ran"
    _plant(Path.cwd() / ".cache" / "atoma-conformance", planted_ran, marker=True)
    installer = FakeInstaller(home / "ours-ran")
    monkeypatch.setattr(builtin_module, "_run", installer)
    argv = ["clients", "--adapter", "atoma-sdk-py", "--scenario", "CLIENT-020", "--report-dir", str(home / "r")]
    assert main(argv) == 1  # the fake env's interpreter fails: every cell an error, not a pass
    assert not planted_ran.exists(), "the interpreter planted in ./.cache was executed"
    venv = home / "xdg" / "atoma-conformance" / "atoma-sdk-py"
    assert (home / "ours-ran").exists() and installer.calls[0][3] == str(venv)
    assert (venv / OWNER_MARKER).read_text(encoding="utf-8") == OWNER_TEXT
    assert not stat.S_IMODE(venv.parent.stat().st_mode) & 0o077, "the cache directory is private"
    assert "installing atoma-sdk==0.1.3 into" in capsys.readouterr().err


def test_a_cache_without_the_marker_is_refused_and_not_executed(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = home / "ran"
    cache = home / "shared-cache"
    _plant(cache, ran, marker=False)
    monkeypatch.setattr(builtin_module, "_run", FakeInstaller(home / "ours-ran"))
    argv = ["clients", "--adapter", "atoma-sdk-py", "--cache-dir", str(cache), "--report-dir", str(home / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--cache-dir:" in err and "not created by atoma-conformance" in err and OWNER_MARKER in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not ran.exists() and not (home / "ours-ran").exists(), "nothing in a foreign cache may run"


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda venv: venv.chmod(0o777), "writable by every user"),
        (lambda venv: venv.parent.chmod(0o777), "writable by every user"),
        (lambda venv: (venv / "bin").chmod(0o777), "writable by every user"),
        (lambda venv: (venv / OWNER_MARKER).write_text("forged\n", encoding="utf-8"), "not created by"),
    ],
)
def test_a_cache_others_can_change_is_refused(tmp_path: Path, spoil: Callable[[Path], object], message: str) -> None:
    ran = tmp_path / "ran"
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    venv = _plant(cache, ran, marker=True)
    spoil(venv)
    with pytest.raises(UserError, match=message):
        builtin_module.builtin("atoma-sdk-py", cache, lambda text: None)
    assert not ran.exists()


def test_a_link_in_place_of_the_environment_is_refused(tmp_path: Path) -> None:
    elsewhere = _plant(tmp_path / "elsewhere", tmp_path / "ran", marker=True)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "atoma-sdk-py").symlink_to(elsewhere)
    with pytest.raises(UserError, match="not a directory"):
        claim(cache / "atoma-sdk-py")


def test_an_environment_of_our_own_is_installed_once_and_finished_after_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installer = FakeInstaller(tmp_path / "trace")
    monkeypatch.setattr(builtin_module, "_run", installer)
    cache = tmp_path / "cache"
    first = builtin_module.builtin("atoma-sdk-py", cache, lambda text: None)
    assert first.command is not None and str(cache / "atoma-sdk-py" / "bin" / "python") in first.command
    assert len(installer.calls) == 2  # venv, then pip
    assert builtin_module.builtin("atoma-sdk-py", cache, lambda text: None).command == first.command
    assert len(installer.calls) == 2, "the second run installs nothing"
    (cache / "atoma-sdk-py" / ".installed").unlink()  # an install cut short: the env is still ours
    assert builtin_module.builtin("atoma-sdk-py", cache, lambda text: None).command == first.command
    assert len(installer.calls) == 4


def test_a_planted_typescript_cache_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(builtin_module, "_run", FakeInstaller(tmp_path / "trace"))
    cache = tmp_path / "cache"
    (cache / "atoma-sdk-ts" / "node_modules").mkdir(parents=True)
    with pytest.raises(UserError, match="atoma-sdk-ts was not created by atoma-conformance"):
        builtin_module.builtin("atoma-sdk-ts", cache, lambda text: None)
