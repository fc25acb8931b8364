"""The hostile-target corpus against ``atoma-conformance run`` with its DEFAULT options.

Not a test: tests/test_hostile_corpus.py runs the same corpus with short limits and asserts bounds.
This script shows what a user gets with no ``--timeout``/``--deadline`` overrides (30 s per read,
120 s per exchange, 600 s per run, 32 MiB per body), one target after another, and prints a Markdown
table: behaviour | exit code | wall time | peak RSS | the last stderr line (sanitised, truncated).

    .venv/bin/python benchmarks/hostile_corpus.py                      # the whole corpus (slow: see below)
    .venv/bin/python benchmarks/hostile_corpus.py --only stall --only big-body --timeout-cap 120
    .venv/bin/python benchmarks/hostile_corpus.py --list

``--timeout-cap S`` kills a run after S seconds and reports "killed after S s" (default 660: the
600 s run deadline and a minute of slack). Peak RSS is the child's ``VmHWM`` (tests/hostile_server.py
``run_cli`` says why not ``ru_maxrss``). Every server runs on loopback and ends every response within
the cap plus 30 s; the reports go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.hostile_server import Measured

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def _row(name: str, measured: Measured, cap: float) -> str:
    from conformance.textsafe import one_line

    if measured.killed:
        code = f"killed after {cap:g} s" if measured.killed_for == "time" else "killed (memory)"
    else:
        code = str(measured.code)
    lines = measured.stderr.decode("utf-8", "replace").splitlines()
    last = one_line(lines[-1], 160) if lines else "(empty)"
    verdicts = [
        line
        for line in measured.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith(("PASS", "FAIL", "NOT RUN", "STOPPED"))
    ]
    verdict = one_line(verdicts[-1].split(". Results:")[0], 60) if verdicts else "(none)"
    escapes = "yes" if b"\x1b" in measured.stdout + measured.stderr else "no"
    cells = [
        name,
        code,
        f"{measured.wall_s:.1f} s",
        f"{measured.peak_rss_bytes / MiB:.0f} MiB",
        last.replace("|", "\\|"),
        verdict.replace("|", "\\|"),
        escapes,
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.hostile_server import CORPUS, run_cli, serve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this target (repeatable)")
    parser.add_argument("--timeout-cap", type=float, default=660.0, metavar="SECONDS", help="kill a run after this")
    parser.add_argument("--list", action="store_true", help="list the corpus and exit")
    parser.add_argument("run_args", nargs="*", help="extra arguments for `run` (after --), e.g. -- --deadline 10")
    args = parser.parse_args(argv)
    if args.list:
        for name, what in CORPUS.items():
            print(f"{name:24} {what}")
        return 0
    names = args.only or list(CORPUS)
    unknown = [n for n in names if n not in CORPUS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)} (see --list)")
    print("| behaviour | exit code | wall time | peak RSS | last stderr line | verdict line | ESC on terminal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="hostile-corpus-") as work:
            with serve(name, max_response_s=args.timeout_cap + 30) as url:
                argv_run = ["run", "--target", url, "--model", "m", "--api-key", "k", "--report-dir", f"{work}/r"]
                measured = run_cli([*argv_run, *args.run_args], work, kill_after=args.timeout_cap)
            print(_row(name, measured, args.timeout_cap), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
