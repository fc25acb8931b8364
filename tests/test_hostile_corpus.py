"""The hostile-target corpus, end to end: ``atoma-conformance run`` in a subprocess against each target.

Every target of ``tests.hostile_server.CORPUS`` (stalls, drips, endless streams, ``100 Continue``
forever, chunked framing that never ends, a gzip bomb, bodies and lock keys just under the 32 MiB
cap, a JSON object of millions of members, a spoofed PASS in escape sequences, a redirect loop, a
body cut off half-way) is served on loopback, and the real command runs against it with short
limits, in its own process (``python -m conformance.cli``, cwd and ``--report-dir`` under
``tmp_path``). For each target the test asserts:

- the command ends within :func:`wall_bound` of its options (measured wall time), and is killed (a
  failure) if it does not;
- its peak memory stays under :data:`MEMORY_BOUND`. Peak memory is the child's ``VmHWM`` from
  ``/proc/PID/status``, read every 10 ms until it exits (``hostile_server.run_cli``; not
  ``ru_maxrss``, which Linux carries over from the parent across ``exec``). A child that passes twice
  the bound is killed, so a regression cannot exhaust the machine;
- it exits 1 or 2 (the case says which), without a traceback;
- nothing it prints carries an escape or other control character: stdout anywhere, and every stderr
  line, which is capped in length; an exit 2 is exactly one line ``atoma-conformance: error: …``;
- ``results.json`` exists when checks ran (exit 1, or exit 2 from the run guard, with
  ``stopped_early`` equal to the line printed) and not when the preflight stopped the run; no report
  file carries a raw ESC, and ``summary.md`` stays under 1 MiB.

The spoofed-PASS targets are also checked for the real verdict line. No case takes more than about
15 s on an idle machine (the run guard stops a slow target after 5 cut-off exchanges, each bounded by
a 1 s read timeout or a 2 s deadline), so the file runs in about two minutes on 2 cores.
benchmarks/hostile_corpus.py runs the same corpus with the default options and prints a table.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_server import CORPUS, SPOOF, Measured, run_cli, serve

MiB = 1024 * 1024
pytestmark = pytest.mark.slow  # subprocesses against misbehaving servers; -m "not slow" leaves them out
MEMORY_BOUND = 512 * MiB  # peak RSS of the whole command: a 32 MiB body may cost a few copies, once
STARTUP_S = 8.0  # interpreter, imports, preflight and reports, on a loaded 2-core machine
EXCHANGES_TO_STOP = 6  # the run guard stops after 5 of the first 6 cut-off exchanges (or 5 in a row)
LINE_CAP = 600  # characters of one stderr line
ERROR_PREFIX = "atoma-conformance: error: "
VERDICT_FAIL = "FAIL: at least one MUST check failed"

# Short limits: a slow target costs at most a 1 s read timeout or a 2 s deadline per exchange.
SLOW = ("--timeout", "1", "--deadline", "2", "--run-deadline", "40")
# Room for a 32 MiB body to arrive and be analysed whole on a loaded machine.
BIG = ("--timeout", "2", "--deadline", "6", "--run-deadline", "60")
FAST = ("--timeout", "2", "--deadline", "4", "--run-deadline", "40")


@dataclass(frozen=True)
class Case:
    options: tuple[str, ...]
    codes: frozenset[int]  # the exit codes accepted
    says: str = ""  # with exit 2: a phrase the one stderr line must contain


def wall_bound(options: tuple[str, ...]) -> float:
    """The longest a run with these options may take against a target the guard stops: the startup,
    then up to ``EXCHANGES_TO_STOP`` cut-off exchanges (each ending by its deadline plus the 0.5 s
    watchdog and a read timeout) and one whole exchange between each (a lock answered at once)."""
    value = dict(zip(options[::2], options[1::2], strict=True))
    per_exchange = float(value["--deadline"]) + float(value["--timeout"]) + 0.5
    return STARTUP_S + (EXCHANGES_TO_STOP + 1) * per_exchange


TOO_SLOW = "target too slow"
UNUSABLE = "target unusable"
ONE, TWO, EITHER = frozenset({1}), frozenset({2}), frozenset({1, 2})

CASES: dict[str, Case] = {
    "stall": Case(SLOW, TWO, TOO_SLOW),
    "lock-stall": Case(SLOW, TWO, "--target"),
    "slow-drip": Case(SLOW, TWO, TOO_SLOW),
    "endless-stream": Case(SLOW, TWO, "target "),
    "drip-headers": Case(SLOW, TWO, TOO_SLOW),
    "lock-drip-headers": Case(SLOW, TWO, "--target"),
    "stall-headers": Case(SLOW, TWO, TOO_SLOW),
    "endless-continue": Case(SLOW, TWO, TOO_SLOW),
    "lock-endless-continue": Case(SLOW, TWO, "--target"),
    "chunked-flood": Case(SLOW, TWO, "target "),  # the deadline or the cap, whichever comes first
    "chunked-unterminated": Case(SLOW, TWO, TOO_SLOW),
    "gzip-bomb": Case(FAST, TWO, "content encoding"),
    "lock-gzip-bomb": Case(FAST, TWO, "content encoding"),
    "wide-json": Case(BIG, EITHER, "target "),  # judged (1), or cut off by a loaded machine's deadline (2)
    "big-body": Case(BIG, EITHER, "target "),
    "lock-huge-key": Case(BIG, EITHER, "target "),
    "lock-long-key": Case(FAST, ONE),
    "ansi": Case(FAST, ONE),
    "lock-ansi": Case(FAST, TWO, "--model"),
    "ansi-raw": Case(FAST, ONE),
    "ansi-headers": Case(FAST, ONE),
    "lock-ansi-headers": Case(FAST, ONE),
    "redirect-loop": Case(FAST, ONE),
    "lock-redirect-loop": Case(FAST, ONE),
    "mid-body-close": Case(FAST, TWO, UNUSABLE),
    "lock-mid-body-close": Case(FAST, TWO, UNUSABLE),
}
SPOOFED = ("ansi", "lock-ansi", "ansi-raw", "ansi-headers", "lock-ansi-headers")


def test_every_corpus_target_has_a_case() -> None:
    assert set(CASES) == set(CORPUS)
    assert all(case.codes <= {1, 2} and (case.says or case.codes == ONE) for case in CASES.values())


def _unsafe(text: str) -> list[str]:
    """The control, format and separator characters in ``text`` (what textsafe.one_line escapes)."""
    return sorted({repr(ch) for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")})


@dataclass
class Ran:
    measured: Measured
    stdout: str
    stderr_lines: list[str]
    report_dir: Path


def run_against(name: str, tmp_path: Path) -> Ran:
    case = CASES[name]
    report_dir = tmp_path / "reports"
    args = ["run", "--target", "", "--model", "m", "--api-key", "k", "--report-dir", str(report_dir)]
    with serve(name) as url:
        args[2] = url
        measured = run_cli(
            [*args, *case.options], str(tmp_path), kill_after=wall_bound(case.options) + 10, kill_above=2 * MEMORY_BOUND
        )
    stdout = measured.stdout.decode("utf-8")  # strict: the terminal gets valid UTF-8
    stderr = measured.stderr.decode("utf-8")
    assert stderr == "" or stderr.endswith("\n"), "stderr must end its last line"
    return Ran(measured, stdout, stderr.splitlines(), report_dir)


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_target_ends_in_bounded_time_and_memory_with_clean_output(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    ran = run_against(name, tmp_path)
    m = ran.measured
    shown = f"{name}: exit {m.code}, {m.wall_s:.1f} s, {m.peak_rss_bytes / MiB:.0f} MiB; stderr {ran.stderr_lines[-3:]}"

    # Bounded: time, then memory (a child killed for either is a failure that says which).
    assert not m.killed, f"killed for {m.killed_for}: {shown}"
    assert m.wall_s < wall_bound(case.options), shown
    assert m.peak_rss_bytes < MEMORY_BOUND, f"peak RSS over {MEMORY_BOUND // MiB} MiB: {shown}"

    # The exit code, and never a traceback.
    assert m.code in case.codes, shown
    assert "Traceback" not in ran.stdout and not any("Traceback" in line for line in ran.stderr_lines), shown

    # Nothing the target said reaches the terminal raw.
    assert "\x1b" not in ran.stdout
    assert _unsafe(ran.stdout.replace("\n", "")) == [], shown
    for line in ran.stderr_lines:
        assert _unsafe(line) == [], f"control characters on stderr: {line!r}"
        assert len(line) <= LINE_CAP, f"a {len(line)}-character stderr line"

    results = ran.report_dir / "results.json"
    if m.code == 2:
        assert len(ran.stderr_lines) == 1, shown  # exactly one line
        line = ran.stderr_lines[0]
        assert line.startswith(ERROR_PREFIX) and case.says in line, shown
        message = line.removeprefix(ERROR_PREFIX)
        if message.startswith("target "):  # the run guard stopped a run whose checks had started
            doc: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))
            assert doc["stopped_early"] == message
            assert len(doc["checks"]) == doc["catalogue_size"]
            assert "STOPPED: " + message in ran.stdout
        else:  # the preflight or the options stopped it before any check
            assert not results.exists(), "a run that never started must not leave results.json"
    else:
        doc = json.loads(results.read_text(encoding="utf-8"))
        assert doc.get("stopped_early") is None
        assert len(doc["checks"]) == doc["catalogue_size"]
        assert VERDICT_FAIL in ran.stdout, shown  # a hostile target never passes

    # The reports are as clean as the terminal, and summary.md stays small.
    if ran.report_dir.exists():
        for report in ran.report_dir.iterdir():
            assert b"\x1b" not in report.read_bytes(), f"raw ESC in {report.name}"
        summary = ran.report_dir / "summary.md"
        if summary.exists():
            assert summary.stat().st_size < MiB


@pytest.mark.parametrize("name", SPOOFED)
def test_a_spoofed_pass_never_reaches_the_terminal(name: str, tmp_path: Path) -> None:
    """Escape sequences that would clear the screen and print ``PASS`` over the real verdict: the
    terminal gets no ESC, no line that starts with PASS, and the real verdict (or the real error)."""
    ran = run_against(name, tmp_path)
    terminal = ran.stdout + "".join(line + "\n" for line in ran.stderr_lines)
    assert "\x1b" not in terminal and "\x07" not in terminal
    assert not any(line.lstrip().startswith("PASS") for line in terminal.splitlines()), terminal
    forged = SPOOF.replace("\x1b", "\\e")  # the only way the target's words may appear: escaped
    if ran.measured.code == 1:
        verdicts = [line for line in ran.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
        assert len(verdicts) == 1 and verdicts[0].startswith(VERDICT_FAIL), verdicts
        # results.json too: `jq -r` prints stored strings raw, so they hold the spoof escaped, never raw.
        stored = json.loads((ran.report_dir / "results.json").read_text(encoding="utf-8"))
        assert _unsafe(json.dumps(stored, ensure_ascii=False)) == []
    else:  # the lock's refusal and its model list carry the spoof; the preflight names --model
        assert ran.measured.code == 2 and "--model" in ran.stderr_lines[0]
        assert forged in ran.stderr_lines[0] and "\\x07" in ran.stderr_lines[0]
