"""Progress of ``atoma-conformance run`` on stderr: one line per check, so a long run is never silent.

It is a pytest plugin object handed to ``pytest.main`` by the runner (never registered globally). On
a terminal it colours the outcome unless ``NO_COLOR`` is set (conformance.progress.colour_allowed); elsewhere (a CI
log, a pipe) it prints plain lines, and with ``--progress auto`` it stays quiet, since the summary that
follows says everything the log needs. The check's reason is not printed here: it is the target's
text, shown once, sanitised, in the summary.
"""

from __future__ import annotations

import contextlib
import time
from typing import TextIO

import pytest

from .progress import colour_allowed, is_tty

_COLOURS = {"passed": "\x1b[32m", "failed": "\x1b[31m", "skipped": "\x1b[33m"}
_WORDS = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}


class Progress:
    def __init__(self, stream: TextIO, *, colour: bool) -> None:
        self.stream = stream
        self.colour = colour
        self.total = 0
        self.done = 0
        self.started = time.monotonic()

    @classmethod
    def for_stream(cls, stream: TextIO, mode: str) -> Progress | None:
        """``auto``: only on a terminal; ``always``: everywhere; ``never``: not at all."""
        if mode == "never" or (mode == "auto" and not is_tty(stream)):
            return None
        return cls(stream, colour=colour_allowed(stream))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self._write(f"atoma-conformance: running {self.total} checks")

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        """Under xdist the controller never collects: each worker's collection tells it the total."""
        self.total = max(self.total, len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and (report.skipped or report.failed)):
            return
        self.done += 1
        check = report.nodeid.rsplit("[", 1)[-1].rstrip("]")
        word = _WORDS.get(report.outcome, report.outcome)
        if self.colour:
            word = f"{_COLOURS.get(report.outcome, '')}{word}\x1b[0m"
        elapsed = time.monotonic() - self.started
        width = len(str(self.total or self.done))
        of = f"/{self.total}" if self.total else ""
        self._write(f"  [{self.done:>{width}}{of}] {check:<12} {word}  {elapsed:6.1f} s")

    def _write(self, line: str) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader went away; the run goes on
            print(line, file=self.stream, flush=True)
